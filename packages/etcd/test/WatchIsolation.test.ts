/**
 * Watch isolation: no watcher's consumer, however slow, failed or abandoned, holds back
 * the other watchers of the client; quiet watchers survive compaction and restarts.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import {
  Chunk,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Scope,
  Stream,
  TestClock,
  TestContext
} from "effect"
import { Etcd, KeyRange, Kv, Lease, Lock, Watch } from "effect-etcd"
import * as Protocol from "../src/internal/rpc/protocol.js"
import { uniquePrefix, withServer } from "./support.js"

const bytes = (size: number, fill: string) => fill.repeat(size)

/** Puts `count` keys `<prefix><i>` with values of `size` bytes, 8 at a time; returns their revisions in order. */
const putMany = (prefix: string, count: number, size: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) => Effect.map(Kv.put(`${prefix}${String(i).padStart(5, "0")}`, bytes(size, "v")), (r) => r.revision),
    { concurrency: 8 }
  ).pipe(Effect.map((revisions) => [...revisions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))))

const revisionsOf = (stream: Stream.Stream<Watch.WatchEvent, unknown>, n: number) =>
  stream.pipe(Stream.take(n), Stream.map((event) => event.revision), Stream.runCollect, Effect.map(Chunk.toArray))

/** The number of watch streams the member has open. */
const watchStreams = Effect.flatMap(
  EtcdServer.EtcdServer,
  (server) => server.metric(0, "etcd_debugging_mvcc_watch_stream_total")
)

/** The number of watchers the member has. */
const watchers = Effect.flatMap(
  EtcdServer.EtcdServer,
  (server) => server.metric(0, "etcd_debugging_mvcc_watcher_total")
)

/** Reads `read` until it equals `expected` (at most 100 times, 50 ms apart), then returns it once more. */
const settle = <A, E, R>(read: Effect.Effect<A, E, R>, expected: A) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      if ((yield* read) === expected) break
      yield* Effect.sleep(Duration.millis(50))
    }
    return yield* read
  })

layer(withServer(), { excludeTestServices: true })("Watch isolation", (it) => {
  it.scoped("a consumer that is slow and then fails with a full buffer holds back no other watcher", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("abandoned")
      const good = yield* Watch.subscribe(KeyRange.prefix(p))
      const goodSeen: Array<bigint> = []
      const goodHasAll = yield* Deferred.make<void>()
      const goodEvents = yield* good.events.pipe(
        Stream.take(140),
        Stream.runForEach((event) => {
          goodSeen.push(event.revision)
          return goodSeen.length === 100 ? Deferred.succeed(goodHasAll, undefined) : Effect.void
        }),
        Effect.fork
      )
      // default buffer (256 KiB): 100 values of 8 KiB are far more than it holds; the
      // consumer is stuck on its first event until all are written, then fails
      const written = yield* Deferred.make<void>()
      const created = yield* Deferred.make<void>()
      const failing = yield* Effect.scoped(Effect.gen(function*() {
        const watcher = yield* Watch.subscribe(KeyRange.prefix(p))
        yield* Deferred.succeed(created, undefined)
        return yield* watcher.events.pipe(
          Stream.mapEffect(() => Effect.zipRight(Deferred.await(written), Effect.fail("consumer gave up" as const))),
          Stream.runDrain
        )
      })).pipe(Effect.fork)
      // the stuck watcher is on the server before the first put
      yield* Deferred.await(created)
      const revisions = yield* putMany(p, 100, 8 * 1024)
      // the shared stream carried all 100 events past the stuck watcher's full buffer
      yield* Deferred.await(goodHasAll)
      yield* Deferred.succeed(written, undefined)
      expect(yield* Fiber.join(failing).pipe(Effect.flip)).toBe("consumer gave up")
      // after the failure: more events, a new watcher, and a lock that has to wait
      const later = yield* putMany(`${p}later/`, 40, 16)
      yield* Fiber.join(goodEvents)
      expect(goodSeen).toEqual([...revisions, ...later])
      const fresh = yield* Watch.subscribe(`${p}fresh`)
      const { revision } = yield* Kv.put(`${p}fresh`, "x")
      expect(yield* revisionsOf(fresh.events, 1)).toEqual([revision])
      const held = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Lock.withLock(
        `${p}lock`,
        Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))
      ).pipe(Effect.fork)
      yield* Deferred.await(held)
      const waiter = yield* Lock.withLock(`${p}lock`, Effect.succeed("acquired after waiting"), {
        timeout: "20 seconds"
      }).pipe(Effect.fork)
      // the waiter is queued behind the holder before the holder lets go
      expect(yield* settle(Kv.count(KeyRange.prefix(`${p}lock/`)), 2)).toBe(2)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(waiter)).toBe("acquired after waiting")
    }))

  it.scoped("a subscriber with a 10-byte buffer that never pulls, then closes, stalls nobody", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("tiny")
      const scope = yield* Scope.make()
      yield* Watch.subscribe(KeyRange.prefix(p), { bufferBytes: 10 }).pipe(Scope.extend(scope))
      const watcher = yield* Watch.subscribe(KeyRange.prefix(p))
      const events = yield* revisionsOf(watcher.events, 30).pipe(Effect.fork)
      const first = yield* putMany(p, 20, 100)
      yield* Scope.close(scope, Exit.void)
      const second = yield* putMany(`${p}after/`, 10, 100)
      expect(yield* Fiber.join(events)).toEqual([...first, ...second])
      const fresh = yield* Effect.scoped(Effect.gen(function*() {
        const w = yield* Watch.subscribe(`${p}new`)
        const { revision } = yield* Kv.put(`${p}new`, "x")
        return [revision, yield* revisionsOf(w.events, 1)] as const
      }))
      expect(fresh[1]).toEqual([fresh[0]])
    }))

  it.scoped(
    "50 watchers: one never pulled then closed, one failing mid-stream; the other 48 get every event once, in order",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("fifty")
        const count = 120
        const healthy = yield* Effect.forEach(
          Array.from({ length: 48 }, (_, i) => i),
          () => Watch.subscribe(KeyRange.prefix(p)),
          { concurrency: 8 }
        )
        const stalledScope = yield* Scope.make()
        yield* Watch.subscribe(KeyRange.prefix(p)).pipe(Scope.extend(stalledScope))
        const failing = yield* Watch.watchPrefix(p).pipe(
          Stream.zipWithIndex,
          Stream.mapEffect(([event, i]) =>
            i === 10 ? Effect.fail("mid-stream failure" as const) : Effect.succeed(event)
          ),
          Stream.runDrain,
          Effect.fork
        )
        const collectors = yield* Effect.forEach(healthy, (watcher) => Effect.fork(revisionsOf(watcher.events, count)))
        // 4 KiB values: the never-pulled watcher's 256 KiB buffer fills after about 64
        const firstHalf = yield* putMany(p, count / 2, 4096)
        yield* Scope.close(stalledScope, Exit.void)
        const secondHalf = yield* putMany(`${p}b/`, count / 2, 4096)
        expect(yield* Fiber.join(failing).pipe(Effect.flip)).toBe("mid-stream failure")
        const expected = [...firstHalf, ...secondHalf]
        const seen = yield* Effect.forEach(collectors, Fiber.join)
        expect(seen.length).toBe(48)
        for (const revisions of seen) expect(revisions).toEqual(expected)
        const { revision } = yield* Effect.scoped(Effect.gen(function*() {
          const w = yield* Watch.subscribe(`${p}new`)
          const put = yield* Kv.put(`${p}new`, "x")
          expect(yield* revisionsOf(w.events, 1)).toEqual([put.revision])
          return put
        }))
        expect(revision).toBeGreaterThan(expected[expected.length - 1])
      }),
    { timeout: 120_000 }
  )

  it.scoped("a slow consumer gets every event exactly once, in order, while a fast one is not held back", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("slow")
      // both watchers are on the server before the first put
      const slowWatcher = yield* Watch.subscribe(KeyRange.prefix(p), { bufferBytes: 8 * 1024 })
      const fastWatcher = yield* Watch.subscribe(KeyRange.prefix(p))
      const slow = yield* slowWatcher.events.pipe(
        Stream.mapEffect((event) => Effect.as(Effect.sleep(Duration.millis(2)), event.revision)),
        Stream.take(200),
        Stream.runCollect,
        Effect.map(Chunk.toArray),
        Effect.fork
      )
      const fastDone = yield* Deferred.make<ReadonlyArray<bigint>>()
      const fast = yield* fastWatcher.events.pipe(
        Stream.map((event) => event.revision),
        Stream.take(200),
        Stream.runCollect,
        Effect.flatMap((chunk) => Deferred.succeed(fastDone, Chunk.toArray(chunk))),
        Effect.fork
      )
      const revisions = yield* putMany(p, 200, 1024)
      // the fast consumer finishes on its own: it does not wait for the slow one
      const fastSeen = yield* Deferred.await(fastDone)
      expect(fastSeen).toEqual(revisions)
      expect(yield* Fiber.join(slow)).toEqual(revisions)
      yield* Fiber.join(fast)
    }))

  it.effect("two concurrent subscribes with the same chosen watch ID: exactly one gets it", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("sameid")
      const results = yield* Effect.all(
        [Watch.subscribe(`${p}a`, { watchId: 4242 }), Watch.subscribe(`${p}b`, { watchId: 4242 })].map((s) =>
          Effect.either(s)
        ),
        { concurrency: "unbounded" }
      ).pipe(Effect.scoped)
      const failures = results.filter((r) => r._tag === "Left").map((r) => r._tag === "Left" ? r.left._tag : "")
      expect(failures).toEqual(["EtcdInvalidArgument"])
    }))

  it.effect("when the last watcher ends through an error, the shared stream is closed", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("laststream")
      yield* settle(watchStreams, 0)
      for (let i = 0; i < 3; i++) yield* Kv.put(`${p}k`, String(i))
      const { revision } = yield* Kv.put(`${p}k`, "last")
      yield* Kv.compact(revision)
      // the watcher's scope stays open: only its end on the server's side can close the stream
      const scope = yield* Scope.make()
      const watcher = yield* Watch.subscribe(`${p}k`, { startRevision: 2n }).pipe(Scope.extend(scope))
      const error = yield* watcher.events.pipe(Stream.runDrain, Effect.flip)
      expect(error._tag).toBe("Compacted")
      expect(yield* settle(watchStreams, 0)).toBe(0)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("Kv.stream asks for no sort, so etcd reads only each page", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("pages")
      yield* Effect.forEach(Array.from({ length: 25 }, (_, i) => i), (i) =>
        Kv.put(`${p}${String(i).padStart(3, "0")}`, "v"), { concurrency: 8 })
      const requests: Array<{ sortOrder?: unknown; sortTarget?: unknown; limit?: unknown }> = []
      const spying = Layer.effect(
        Etcd.Etcd,
        Effect.map(Etcd.Etcd, (etcd) => {
          const parts = Protocol.of(etcd)
          return {
            ...etcd,
            protocol: Protocol.wrap({
              ...parts,
              kv: {
                ...parts.kv,
                range: (request: any, options?: any) => {
                  requests.push(request)
                  return parts.kv.range(request, options)
                }
              }
            })
          }
        })
      )
      const keys = yield* Kv.stream(KeyRange.prefix(p), { pageSize: 10 }).pipe(
        Stream.map((kv) =>
          kv.key
        ),
        Stream.runCollect,
        Effect.map(Chunk.toArray),
        Effect.provide(spying)
      )
      expect(keys).toEqual(Array.from({ length: 25 }, (_, i) => `${p}${String(i).padStart(3, "0")}`))
      expect(requests.length).toBe(3)
      for (const request of requests) {
        expect(request.sortOrder ?? "NONE").toBe("NONE")
        expect(request.sortTarget ?? "KEY").toBe("KEY")
      }
    }))
})

const progressEvery = "300ms"

layer(
  withServer({ extraArgs: [`--experimental-watch-progress-notify-interval=${progressEvery}`] }),
  { excludeTestServices: true }
)("Quiet watchers across compaction and restart", (it) => {
  it.scoped("a quiet watcher resumes after compaction and a member restart without Compacted", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("quiet")
      const watcher = yield* Watch.subscribe(`${p}quiet`)
      const next = yield* revisionsOf(watcher.events, 1).pipe(Effect.fork)
      yield* Effect.scoped(Effect.gen(function*() {
        // a watcher of the same key that hands out its progress notifications: the member
        // notifies every quiet watcher of the stream on each tick, so once this one has had
        // two ticks past the busy writes, the quiet watcher has had one
        const observer = yield* Watch.subscribe(`${p}quiet`, { progressNotify: true })
        let busy = 0n
        for (let i = 0; i < 20; i++) busy = (yield* Kv.put(`${p}busy`, String(i))).revision
        yield* observer.responses.pipe(
          Stream.filter((response) => response.progress && response.revision >= busy),
          Stream.take(2),
          Stream.runDrain
        )
      }))
      const { revision } = yield* Kv.put(`${p}busy`, "last")
      yield* Kv.compact(revision)
      yield* server.restart(0)
      const put = yield* Kv.put(`${p}quiet`, "finally")
      expect(yield* Fiber.join(next)).toEqual([put.revision])
    }))

  it.effect("a waiting lock survives compaction and a member restart, and acquires when the holder goes", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("lockwait")
      // the watchers of the test before are gone
      expect(yield* settle(watchers, 0)).toBe(0)
      const release = yield* Deferred.make<void>()
      const held = yield* Deferred.make<void>()
      const holder = yield* Lock.withLock(
        `${p}lock`,
        Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))
      ).pipe(Effect.fork)
      yield* Deferred.await(held)
      const waiter = yield* Lock.withLock(`${p}lock`, Effect.succeed("acquired")).pipe(Effect.fork)
      // the waiter is queued and watches the holder's key before compaction and restart
      expect(yield* settle(Kv.count(KeyRange.prefix(`${p}lock/`)), 2)).toBe(2)
      expect(yield* settle(watchers, 1)).toBe(1)
      for (let i = 0; i < 20; i++) yield* Kv.put(`${p}busy`, String(i))
      const { revision } = yield* Kv.put(`${p}busy`, "last")
      yield* Kv.compact(revision)
      yield* server.restart(0)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(waiter)).toBe("acquired")
    }))
})

/** Pauses member 0 for the life of the scope. */
const paused = Effect.flatMap(
  EtcdServer.EtcdServer,
  (server) => Effect.acquireRelease(server.pause(0), () => server.resume(0))
)

/** The lines logged while `effect` runs, at every level. */
const logged = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const result = yield* effect.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => lines.push(String(message))))),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
    return [result, lines] as const
  })

/**
 * Waits until the test clock has `n` timers: the fiber that set them waits for them, or
 * for something else (a call to a member, whose deadline is kept on wall time).
 */
const awaitTimers = (n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      if ((yield* TestClock.sleeps()).length >= n) return
      yield* Effect.yieldNow()
    }
    throw new Error(`the test clock never had ${n} timers`)
  })

// Wall time belongs to the bench: these tests say what bounds a call, not how long it took. The client's
// own bounds (a call's default `requestTimeout`, the connect probe's, the keepalive PING's) are 10 minutes,
// and no deadline sweep is armed early by its own calls, so only the bound under test can end a call on the
// paused member within the test's time.
const longBounds = {
  connectTimeout: "10 minutes",
  requestTimeout: "10 minutes",
  keepAliveTime: "10 minutes",
  keepAliveTimeout: "10 minutes"
} as const

layer(withServer({}, longBounds), { excludeTestServices: true })(
  "Deadlines per operation",
  (it) => {
    it.effect("a read's timeout bounds the call, retries included, on a paused member", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("readdeadline")
        yield* Kv.put(`${p}k`, "v")
        const exit = yield* Effect.scoped(
          Effect.zipRight(paused, Effect.exit(Kv.get(`${p}k`, { timeout: "1 second" })))
        )
        const error = yield* Effect.flip(exit)
        expect(error._tag).toBe("EtcdTimeout")
        expect(error._tag === "EtcdTimeout" && Duration.toMillis(error.timeout)).toBe(1_000)
        expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("v"))
      }))

    it.effect("closing the scope of a lease and a lock with the member paused ends within their release bounds", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("closebound")
        const scope = yield* Scope.make()
        const lease = yield* Lease.make("30 seconds", { revokeTimeout: "1 second" }).pipe(Scope.extend(scope))
        const lock = yield* Lock.make(`${p}lock`, { releaseTimeout: "1 second", ttl: "30 seconds" }).pipe(
          Scope.extend(scope)
        )
        // the releases give up after their bounds, and say so
        const [exit, lines] = yield* logged(
          Effect.scoped(Effect.zipRight(paused, Effect.exit(Scope.close(scope, Exit.void))))
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(lines.some((line) => line.includes("could not revoke lease"))).toBe(true)
        // once the member is back, what could not be revoked is still there, and goes with a revoke
        yield* Lease.revoke(lease.id).pipe(Effect.ignore)
        yield* Lease.revoke(lock.lease.id).pipe(Effect.ignore)
      }))

    it.effect("Lock.make's timeout bounds the whole acquisition on a paused cluster: LockTimeout when it passes", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("locktimeout")
        // on the test clock: the lease's grant hangs on the paused member, and only the
        // lock's timeout can end the acquisition, when the clock reaches it
        const exit = yield* Effect.scoped(Effect.gen(function*() {
          yield* paused
          const attempt = yield* Effect.fork(Effect.scoped(Lock.make(`${p}lock`, { timeout: "1 second" })))
          yield* awaitTimers(1)
          yield* TestClock.adjust("999 millis")
          expect(Option.isNone(yield* Fiber.poll(attempt))).toBe(true)
          yield* TestClock.adjust("1 millis")
          return yield* Fiber.await(attempt)
        })).pipe(Effect.provide(TestContext.TestContext))
        const error = yield* Effect.flip(exit)
        expect(error).toMatchObject({ _tag: "LockTimeout", lockName: `${p}lock` })
        expect(error._tag === "LockTimeout" && Duration.toMillis(error.timeout)).toBe(1_000)
        // nothing is left under the lock once the member is back and the background cleanup ran
        const left = yield* settle(Kv.count(KeyRange.prefix(`${p}lock/`)), 0)
        expect(left).toBe(0)
      }))
  }
)
