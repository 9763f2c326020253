import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Exit, Fiber, Option, Schedule, Scope, Stream } from "effect"
import { Etcd, KeyRange, Kv, Op, Txn, Watch } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), Chunk.toReadonlyArray)

const watcherTotal = Effect.flatMap(
  EtcdServer.EtcdServer,
  (server) => server.metric(0, "etcd_debugging_mvcc_watcher_total")
)

/** Polls the server's watcher count until it equals `expected` (bounded), returning the last reading. */
const settleWatchers = (expected: number) =>
  watcherTotal.pipe(
    // repeat's result is the schedule's output, not the reading: read once more
    Effect.repeat({ schedule: Schedule.spaced(Duration.millis(50)), until: (count) => count === expected, times: 100 }),
    Effect.zipRight(watcherTotal)
  )

layer(withServer(), { excludeTestServices: true })("Watch", (it) => {
  it.scoped("subscribe resolves once the watcher exists: a later put is delivered", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ready")
      const watcher = yield* Watch.subscribe(`${p}k`)
      const { revision } = yield* Kv.put(`${p}k`, "v1")
      const [event] = yield* collect(watcher.events, 1)
      expect(event.type).toBe("put")
      expect(event.key).toBe(`${p}k`)
      expect(event.value).toBe("v1")
      expect(event.revision).toBe(revision)
      expect(event.isCreate).toBe(true)
      expect(watcher.createdRevision).toBeLessThan(revision)
    }))

  it.scoped("watch on one key ignores its neighbours; deletes carry their revision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("single")
      const watcher = yield* Watch.subscribe(`${p}k`)
      yield* Kv.put(`${p}k0`, "neighbour")
      yield* Kv.put(`${p}k`, "mine")
      const removed = yield* Kv.delete(`${p}k`)
      const events = yield* collect(watcher.events, 2)
      expect(events.map((e) => [e.type, e.key, e.value])).toEqual([["put", `${p}k`, "mine"], [
        "delete",
        `${p}k`,
        ""
      ]])
      expect(events[1].revision).toBe(removed.revision)
    }))

  it.effect("watchPrefix sees every key under the prefix, in revision order", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("prefix")
      // from the revision after this one, however late the stream's watcher is created
      const { revision } = yield* Kv.put(`${p}before`, "x")
      const fiber = yield* Watch.watchPrefix(`${p}dir/`, { startRevision: revision + 1n }).pipe(
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      yield* Kv.put(`${p}dir/a`, "1")
      yield* Kv.put(`${p}dir0`, "outside")
      yield* Kv.put(`${p}dir/b`, "2")
      yield* Kv.delete(`${p}dir/a`)
      const events = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      expect(events.map((e) => `${e.type} ${e.key}`)).toEqual([`put ${p}dir/a`, `put ${p}dir/b`, `delete ${p}dir/a`])
      expect(events[0].revision < events[1].revision && events[1].revision < events[2].revision).toBe(true)
    }))

  it.scoped("watchRange covers [start, end)", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("range")
      const watcher = yield* Watch.subscribe(KeyRange.between(`${p}b`, `${p}d`))
      for (const k of ["a", "b", "c", "d"]) yield* Kv.put(`${p}${k}`, k)
      const events = yield* collect(watcher.events, 2)
      expect(events.map((e) => e.value)).toEqual(["b", "c"])
    }))

  it.scoped("prevKv attaches the previous pair to updates and deletes", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("prevkv")
      yield* Kv.put(`${p}k`, "before")
      const watcher = yield* Watch.subscribe(`${p}k`, { prevKv: true })
      yield* Kv.put(`${p}k`, "after")
      yield* Kv.delete(`${p}k`)
      const [update, removal] = yield* collect(watcher.events, 2)
      expect(update.prevValue).toEqual(Option.some("before"))
      expect(removal.prevValue).toEqual(Option.some("after"))
      const plain = yield* Watch.subscribe(`${p}k`)
      yield* Kv.put(`${p}k`, "again")
      const [withoutPrev] = yield* collect(plain.events, 1)
      expect(withoutPrev.prevKv).toEqual(Option.none())
    }))

  it.scoped("noPut and noDelete filter events out", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("filters")
      const deletesOnly = yield* Watch.subscribe(`${p}k`, { noPut: true })
      const putsOnly = yield* Watch.subscribe(`${p}k`, { noDelete: true })
      yield* Kv.put(`${p}k`, "1")
      yield* Kv.delete(`${p}k`)
      yield* Kv.put(`${p}k`, "2")
      yield* Kv.delete(`${p}k`)
      expect((yield* collect(deletesOnly.events, 2)).map((e) => e.type)).toEqual(["delete", "delete"])
      expect((yield* collect(putsOnly.events, 2)).map((e) => e.value)).toEqual(["1", "2"])
    }))

  it.scoped("startRevision replays history from that revision on", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("history")
      const first = yield* Kv.put(`${p}k`, "1")
      yield* Kv.put(`${p}k`, "2")
      yield* Kv.put(`${p}k`, "3")
      const watcher = yield* Watch.subscribe(`${p}k`, { startRevision: first.revision + 1n })
      expect((yield* collect(watcher.events, 2)).map((e) => e.value)).toEqual(["2", "3"])
    }))

  it.scoped("a chosen watchId is used, and a watchId in use is refused", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("watchid")
      const watcher = yield* Watch.subscribe(`${p}k`, { watchId: 7_000 })
      expect(watcher.watchId).toBe(7_000n)
      const error = yield* Effect.flip(Watch.subscribe(`${p}other`, { watchId: 7_000 }))
      expect(error._tag).toBe("EtcdInvalidArgument")
      yield* Kv.put(`${p}k`, "still works")
      expect((yield* collect(watcher.events, 1))[0].value).toBe("still works")
    }))

  it.scoped("requireLeader: false watches share a stream of their own; IDs stay unique across both", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("no-leader-stream")
      const led = yield* Watch.subscribe(`${p}k`, { watchId: 7_100 })
      const error = yield* Effect.flip(Watch.subscribe(`${p}k`, { watchId: 7_100, requireLeader: false }))
      expect(error).toMatchObject({ _tag: "EtcdInvalidArgument" })
      const free = yield* Watch.subscribe(`${p}k`, { requireLeader: false })
      const picked = yield* Watch.subscribe(`${p}k`)
      expect(new Set([led.watchId, free.watchId, picked.watchId]).size).toBe(3)
      yield* Kv.put(`${p}k`, "seen by all")
      for (const watcher of [led, free, picked]) {
        expect((yield* collect(watcher.events, 1))[0].value).toBe("seen by all")
      }
      // a progress request goes on either stream
      const revision = yield* Watch.requestProgress({ requireLeader: false })
      expect(revision).toBeGreaterThanOrEqual(led.createdRevision)
      const invalid = yield* Effect.flip(Watch.subscribe(`${p}k`, { requireLeader: "yes" as never }))
      expect(invalid).toMatchObject({ _tag: "EtcdInvalidArgument", option: "requireLeader" })
    }))

  it.scoped("all events of one txn arrive in one response, at one revision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("txn")
      const watcher = yield* Watch.subscribe(KeyRange.prefix(p))
      const [a] = yield* Txn.txn([Op.put(`${p}a`, "1"), Op.put(`${p}b`, "2"), Op.put(`${p}c`, "3")])
      const [response] = yield* collect(watcher.responses, 1)
      expect(response.progress).toBe(false)
      expect(response.events.map((e) => e.key)).toEqual([`${p}a`, `${p}b`, `${p}c`])
      expect(response.events.every((e) => e.revision === a.revision)).toBe(true)
    }))

  it.effect("next: the changes in order without a Stream, progress alone skipped, None once the watcher ended", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("next")
      const scope = yield* Scope.make()
      const watcher = yield* Watch.subscribe(KeyRange.prefix(p), { progressNotify: true }).pipe(Scope.extend(scope))
      yield* Txn.txn([Op.put(`${p}a`, "1"), Op.put(`${p}b`, "2")])
      yield* Kv.put(`${p}a`, "3")
      yield* Kv.delete(`${p}b`)
      const seen: Array<string> = []
      while (seen.length < 4) {
        const events = Option.getOrThrow(yield* watcher.next)
        expect(events.length).toBeGreaterThan(0)
        for (const event of events) seen.push(`${event.type} ${event.kv.key.slice(p.length)}=${event.kv.value}`)
      }
      expect(seen).toEqual(["put a=1", "put b=2", "put a=3", "delete b="])
      yield* Scope.close(scope, Exit.void)
      expect(yield* watcher.next).toEqual(Option.none())
    }))

  it.effect("ending one Stream cancels its watcher on the server and no other", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("cancel")
      // the watchers of earlier tests are canceled as their scopes close: wait for that
      const before = yield* settleWatchers(0)
      expect(before).toBe(0)
      const survivor = yield* Watch.watch(`${p}survivor`).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* settleWatchers(before + 1)
      // take(1): the stream ends after one event, and its watcher must go
      const taken = yield* Watch.watch(`${p}taken`).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      expect(yield* settleWatchers(before + 2)).toBe(before + 2)
      yield* Kv.put(`${p}taken`, "x")
      yield* Fiber.join(taken)
      expect(yield* settleWatchers(before + 1)).toBe(before + 1)
      // interruption: the watcher must go as well
      const interrupted = yield* Watch.watch(`${p}interrupted`).pipe(Stream.runDrain, Effect.fork)
      expect(yield* settleWatchers(before + 2)).toBe(before + 2)
      yield* Fiber.interrupt(interrupted)
      expect(yield* settleWatchers(before + 1)).toBe(before + 1)
      // the survivor still delivers
      yield* Kv.put(`${p}survivor`, "alive")
      const [event] = Chunk.toReadonlyArray(yield* Fiber.join(survivor))
      expect(event.value).toBe("alive")
      expect(yield* settleWatchers(before)).toBe(before)
    }))

  it.effect("one Watch.watch Stream run twice at once holds a watcher per run, and each run's end releases its own", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("rerun")
      const before = yield* settleWatchers(0)
      expect(before).toBe(0)
      const stream = Watch.watchPrefix(p)
      const first = yield* stream.pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      expect(yield* settleWatchers(1)).toBe(1)
      const second = yield* stream.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      expect(yield* settleWatchers(2)).toBe(2)
      // the first run ends after one event: its watcher goes, the second run's stays
      yield* Kv.put(`${p}a`, "1")
      expect(Chunk.toReadonlyArray(yield* Fiber.join(first)).map((event) => event.value)).toEqual(["1"])
      expect(yield* settleWatchers(1)).toBe(1)
      yield* Kv.put(`${p}b`, "2")
      expect(Chunk.toReadonlyArray(yield* Fiber.join(second)).map((event) => event.value)).toEqual(["1", "2"])
      expect(yield* settleWatchers(0)).toBe(0)
    }))

  it.effect("a subscribe interrupted while its create is in flight leaves no watcher behind", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("interrupted-create")
      const before = yield* settleWatchers(0)
      expect(before).toBe(0)
      // interrupted at once: before, during or after the create, its scope releases the watcher
      const subscribers = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => Effect.fork(Effect.scoped(Effect.zipRight(Watch.subscribe(`${p}${i}`), Effect.never))),
        { concurrency: "unbounded" }
      )
      yield* Fiber.interruptAll(subscribers)
      // the server has none of them, and the client still creates and delivers
      expect(yield* settleWatchers(0)).toBe(0)
      yield* Effect.scoped(Effect.gen(function*() {
        const watcher = yield* Watch.subscribe(KeyRange.prefix(p))
        yield* Kv.put(`${p}a`, "1")
        yield* Kv.put(`${p}b`, "2")
        expect((yield* collect(watcher.events, 2)).map((e) => e.value)).toEqual(["1", "2"])
      }))
    }))

  it.effect("a Watch.watch or Watch.responses run interrupted while its create is in flight leaves no watcher behind", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("interrupted-watch")
      const before = yield* settleWatchers(0)
      expect(before).toBe(0)
      // interrupted at once: before, during or after the create, the run's end releases the watcher
      const runs = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) =>
          Effect.fork(
            i % 2 === 0 ? Stream.runDrain(Watch.watch(`${p}${i}`)) : Stream.runDrain(Watch.responses(`${p}${i}`))
          ),
        { concurrency: "unbounded" }
      )
      yield* Fiber.interruptAll(runs)
      expect(yield* settleWatchers(0)).toBe(0)
      // the client still creates and delivers, and a run that completes leaves none either
      const events = yield* Watch.watchPrefix(p).pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      expect(yield* settleWatchers(1)).toBe(1)
      yield* Kv.put(`${p}a`, "1")
      yield* Kv.put(`${p}b`, "2")
      expect(Chunk.toReadonlyArray(yield* Fiber.join(events)).map((event) => event.value)).toEqual(["1", "2"])
      expect(yield* settleWatchers(0)).toBe(0)
    }))

  it.scoped("a next or a Stream interrupted while it waits loses nothing: later reads get every change", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("interrupted-take")
      const watcher = yield* Watch.subscribe(KeyRange.prefix(p))
      /** Forks `read`, waits until it is suspended (waiting for a change), then interrupts it. */
      const interruptWhileWaiting = <A, E>(read: Effect.Effect<A, E>) =>
        Effect.gen(function*() {
          const reader = yield* Effect.fork(read)
          yield* Effect.yieldNow().pipe(
            Effect.zipRight(reader.status),
            Effect.repeat({ until: (status) => status._tag === "Suspended" })
          )
          yield* Fiber.interrupt(reader)
        })
      yield* interruptWhileWaiting(watcher.next)
      yield* Kv.put(`${p}a`, "1")
      expect(Option.getOrThrow(yield* watcher.next).map((e) => e.value)).toEqual(["1"])
      yield* interruptWhileWaiting(collect(watcher.events, 1))
      yield* interruptWhileWaiting(watcher.next)
      yield* Kv.put(`${p}b`, "2")
      yield* Kv.put(`${p}c`, "3")
      expect((yield* collect(watcher.events, 2)).map((e) => e.value)).toEqual(["2", "3"])
    }))

  it.effect("a consumer that does not pull holds the stream back and loses nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("backpressure")
      const ready = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const consumer = yield* Effect.scoped(Effect.gen(function*() {
        const watcher = yield* Watch.subscribe(KeyRange.prefix(p), { bufferBytes: 1 })
        yield* Deferred.succeed(ready, undefined)
        yield* Deferred.await(release)
        return yield* collect(watcher.events, 300)
      })).pipe(Effect.fork)
      yield* Deferred.await(ready)
      for (let i = 0; i < 300; i++) yield* Kv.put(`${p}${i}`, `${i}`)
      yield* Deferred.succeed(release, undefined)
      const events = yield* Fiber.join(consumer)
      expect(events.map((e) => e.value)).toEqual(Array.from({ length: 300 }, (_, i) => `${i}`))
    }))
})

layer(
  withServer({ extraArgs: ["--experimental-watch-progress-notify-interval=300ms"], maxRequestBytes: 64 * 1024 }),
  { excludeTestServices: true }
)("Watch progress and fragments", (it) => {
  it.scoped("progressNotify delivers progress notifications with the current revision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("progress")
      const { revision } = yield* Kv.put(`${p}other`, "x")
      const watcher = yield* Watch.subscribe(`${p}quiet`, { progressNotify: true })
      const [progress] = yield* collect(watcher.responses, 1)
      expect(progress.progress).toBe(true)
      expect(progress.events).toEqual([])
      expect(progress.revision).toBeGreaterThanOrEqual(revision)
    }))

  it.scoped(
    "endRevision with no change after it in the range: the Stream ends at a progress notification",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("end-quiet")
        const first = yield* Kv.put(`${p}k`, "1")
        const second = yield* Kv.put(`${p}k`, "2")
        // writes elsewhere only: no event of the range lands on endRevision or after it
        const outside = yield* Kv.put(`${p}other`, "x")
        const events = yield* Stream.runCollect(
          Watch.watch(`${p}k`, { startRevision: first.revision, endRevision: outside.revision })
        )
        expect(Chunk.toReadonlyArray(events).map((e) => [e.value, e.revision])).toEqual([
          ["1", first.revision],
          ["2", second.revision]
        ])
        // the responses say the same, with the notification that ended them when asked for
        const responses = Chunk.toReadonlyArray(
          yield* Stream.runCollect(
            Watch.responses(`${p}k`, {
              startRevision: first.revision,
              endRevision: outside.revision,
              progressNotify: true
            })
          )
        )
        expect(responses.flatMap((r) => r.events.map((e) => e.value))).toEqual(["1", "2"])
        const last = responses[responses.length - 1]
        expect(last.progress && last.revision >= outside.revision).toBe(true)
        // a future end revision: what comes up to it, then the end
        const watcher = yield* Watch.subscribe(`${p}k`, { endRevision: outside.revision + 2n })
        const third = yield* Kv.put(`${p}k`, "3")
        yield* Kv.put(`${p}other`, "y")
        expect(third.revision).toBe(outside.revision + 1n)
        const later = yield* Stream.runCollect(watcher.events)
        expect(Chunk.toReadonlyArray(later).map((e) => e.value)).toEqual(["3"])
        expect(yield* watcher.next).toEqual(Option.none())
      }),
    30_000
  )

  it.scoped("fragment: a response larger than the server's limit arrives whole", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("fragment")
      const value = "x".repeat(20 * 1024)
      const first = yield* Kv.put(`${p}0`, value)
      for (let i = 1; i < 10; i++) yield* Kv.put(`${p}${i}`, value)
      const watcher = yield* Watch.subscribe(KeyRange.prefix(p), { startRevision: first.revision, fragment: true })
      const responses = yield* collect(watcher.responses, 1)
      expect(responses[0].events).toHaveLength(10)
      expect(responses[0].events.map((e) => e.key)).toEqual(Array.from({ length: 10 }, (_, i) => `${p}${i}`))
    }))
})

layer(withServer(), { excludeTestServices: true })("Watch compaction", (it) => {
  it.scoped("a start revision older than the last compaction fails with Compacted", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("compacted")
      const old = yield* Kv.put(`${p}k`, "1")
      const latest = yield* Kv.put(`${p}k`, "2")
      yield* Kv.compact(latest.revision)
      const error = yield* Watch.watch(`${p}k`, { startRevision: old.revision }).pipe(Stream.runDrain, Effect.flip)
      expect(error).toMatchObject({ _tag: "Compacted", compactRevision: latest.revision })
    }))
})

layer(withServer(), { excludeTestServices: true })("Watch resume", (it) => {
  it.effect(
    "a prefix watcher sees each of 2000 writes exactly once, in order, across a SIGKILL and restart",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("resume")
        const total = 2000
        const client = Etcd.layer({ endpoints: server.endpoints, requestTimeout: "2 seconds" })
        const run = Effect.gen(function*() {
          const watcher = yield* Watch.subscribe(KeyRange.prefix(p))
          const lastKey = `${p}${total - 1}`
          const consumer = yield* watcher.events.pipe(
            Stream.takeUntil((event) => event.key === lastKey),
            Stream.runCollect,
            Effect.fork
          )
          const killedAt = Math.floor(total / 3)
          for (let i = 0; i < total; i++) {
            if (i === killedAt) {
              yield* server.kill(0, "SIGKILL")
              yield* Effect.sleep(Duration.millis(300))
              yield* server.start(0)
            }
            // a write whose outcome is unknown is written again: it may then appear twice,
            // at two revisions, which the checks below allow
            yield* Kv.put(`${p}${i}`, `${i}`).pipe(
              Effect.retry({ schedule: Schedule.spaced(Duration.millis(100)), times: 100 })
            )
          }
          const events = Chunk.toReadonlyArray(yield* Fiber.join(consumer))
          const revisions = events.map((event) => event.revision)
          for (let i = 1; i < revisions.length; i++) {
            if (revisions[i] !== revisions[i - 1] + 1n) {
              throw new Error(`revision ${revisions[i]} follows ${revisions[i - 1]}: lost or repeated`)
            }
          }
          expect(new Set(events.map((event) => event.value)).size).toBe(total)
          const history = yield* Kv.range(KeyRange.prefix(p), { countOnly: true })
          expect(history.count).toBe(total)
          expect(revisions[revisions.length - 1]).toBeLessThanOrEqual(history.revision)
        })
        yield* Effect.scoped(run).pipe(Effect.provide(client))
      }),
    120_000
  )
})
