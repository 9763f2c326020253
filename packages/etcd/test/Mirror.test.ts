/**
 * Mirrors against a real etcd: the first list, following changes, read-your-writes with
 * `waitFor`, resyncs after compaction, and a mirror kept through member kills on a
 * 3-member cluster. Every loop is bounded; all traffic is loopback.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Fiber, Option, Random, Ref, Schema, Stream } from "effect"
import { Etcd, Keyspace, Kv, Mirror } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

/** Waits (bounded) until the mirror holds exactly what etcd holds under the prefix at its revision. */
const expectInSync = (mirror: Mirror.Mirror<string, string>, prefix: string) =>
  Effect.gen(function*() {
    // a put under the prefix gives a revision the mirror is certain to see
    const marker = yield* Kv.put(`${prefix}~marker`, "end")
    yield* mirror.waitFor(marker.revision).pipe(Effect.timeout(Duration.seconds(20)))
    const { revision, values } = yield* mirror.snapshot
    expect(revision).toBeGreaterThanOrEqual(marker.revision)
    const stored = yield* Kv.getPrefix(prefix, { revision: marker.revision })
    expect(values.size).toBe(stored.size)
    expect(new Map(values)).toEqual(stored)
  })

/**
 * Waits (bounded) until `fiber` is suspended: a fiber that starts consuming `changes`
 * subscribes before it first waits, so the subscription exists once it is.
 */
const awaitSubscribed = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if ((yield* Fiber.status(fiber))._tag === "Suspended") return
      yield* Effect.yieldNow()
    }
    throw new Error("the consumer never waited for a change")
  })

layer(withServer(), { excludeTestServices: true })("Mirror", (it) => {
  it.scoped("lists the prefix, then follows puts and deletes, each change with its revision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("follow")
      yield* Kv.put(`${p}a`, "1")
      yield* Kv.put(`${p}b`, "2")
      yield* Kv.put(`${p.slice(0, -1)}-outside`, "x")
      const mirror = yield* Mirror.prefix(p)
      yield* mirror.ready
      const first = yield* mirror.snapshot
      expect([...first.values]).toEqual([[`${p}a`, "1"], [`${p}b`, "2"]])

      const changes = yield* Effect.fork(mirror.changes.pipe(Stream.take(3), Stream.runCollect))
      yield* awaitSubscribed(changes)
      const put = yield* Kv.put(`${p}a`, "one")
      const created = yield* Kv.put(`${p}c`, "3")
      const deleted = yield* Kv.delete(`${p}b`)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(changes))).toEqual([
        { _tag: "Put", key: `${p}a`, value: "one", previous: Option.some("1"), revision: put.revision },
        { _tag: "Put", key: `${p}c`, value: "3", previous: Option.none(), revision: created.revision },
        { _tag: "Delete", key: `${p}b`, previous: "2", revision: deleted.revision }
      ])
      expect(yield* mirror.get(`${p}a`)).toEqual(Option.some("one"))
      expect(yield* mirror.get(`${p}b`)).toEqual(Option.none())
      // the first snapshot did not change under its holder
      expect([...first.values]).toEqual([[`${p}a`, "1"], [`${p}b`, "2"]])
      expect((yield* mirror.snapshot).revision).toBe(deleted.revision)
    }))

  it.scoped(
    "matches a fresh getPrefix after 5 000 random puts and deletes from 8 fibers",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("random")
        for (let i = 0; i < 50; i++) yield* Kv.put(`${p}${i}`, "seed")
        // small pages: the first list takes eight
        const mirror = yield* Mirror.prefix(p, { pageSize: 7 })
        yield* mirror.ready
        expect(new Map((yield* mirror.snapshot).values)).toEqual(yield* Kv.getPrefix(p))
        const writer = (fiber: number) =>
          Effect.gen(function*() {
            for (let i = 0; i < 625; i++) {
              const key = `${p}${yield* Random.nextIntBetween(0, 200)}`
              if ((yield* Random.nextIntBetween(0, 4)) === 0) yield* Kv.delete(key)
              else yield* Kv.put(key, `${fiber}-${i}`)
            }
          })
        yield* Effect.all(Array.from({ length: 8 }, (_, fiber) => writer(fiber)), { concurrency: 8 })
        yield* expectInSync(mirror, p)
      }),
    120_000
  )

  it.scoped("waitFor(put revision) then get always sees the put", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ryw")
      const mirror = yield* Mirror.prefix(p)
      const misses: Array<string> = []
      const writer = (fiber: number) =>
        Effect.gen(function*() {
          for (let i = 0; i < 100; i++) {
            const key = `${p}${fiber}`
            const value = `${i}`
            const { revision } = yield* Kv.put(key, value)
            yield* mirror.waitFor(revision)
            const seen = yield* mirror.get(key)
            if (!Option.contains(seen, value)) {
              misses.push(`${key}=${value} saw ${Option.getOrElse(seen, () => "none")}`)
            }
          }
        })
      yield* Effect.all([0, 1, 2, 3].map(writer), { concurrency: 4 })
      expect(misses).toEqual([])
    }), 120_000)

  it.scoped("waitFor a revision that changed nothing under the prefix resolves, the map right at it", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("elsewhere")
      const other = uniquePrefix("elsewhere-other")
      const mirror = yield* Mirror.prefix(p)
      yield* mirror.ready
      yield* Kv.put(`${p}a`, "1")
      const outside = yield* Kv.put(`${other}x`, "1")
      yield* mirror.waitFor(outside.revision).pipe(Effect.timeout(Duration.seconds(20)))
      expect(yield* mirror.get(`${p}a`)).toEqual(Option.some("1"))
      expect((yield* mirror.snapshot).revision).toBeGreaterThanOrEqual(outside.revision)

      // a key created and deleted again in between leaves nothing behind
      yield* Kv.put(`${p}b`, "brief")
      yield* Kv.delete(`${p}b`)
      const later = yield* Kv.put(`${other}y`, "1")
      yield* mirror.waitFor(later.revision).pipe(Effect.timeout(Duration.seconds(20)))
      expect(new Map((yield* mirror.snapshot).values)).toEqual(yield* Kv.getPrefix(p, { revision: later.revision }))

      // a delete of a key that does not exist writes no event, and its revision is reached too
      const nothing = yield* Kv.delete(`${p}missing`)
      expect(nothing.deleted).toBe(0)
      yield* mirror.waitFor(nothing.revision).pipe(Effect.timeout(Duration.seconds(20)))
      yield* expectInSync(mirror, p)
    }))

  it.scoped("catchUp: the map reflects the member's revision, learned without a write", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("catch-up")
      const other = uniquePrefix("catch-up-other")
      const mirror = yield* Mirror.prefix(p)
      yield* mirror.ready
      yield* Kv.put(`${p}a`, "1")
      const outside = yield* Kv.put(`${other}x`, "1")
      const revision = yield* mirror.catchUp.pipe(Effect.timeout(Duration.seconds(20)))
      expect(revision).toBeGreaterThanOrEqual(outside.revision)
      expect(yield* mirror.revision).toBeGreaterThanOrEqual(revision)
      expect(yield* mirror.get(`${p}a`)).toEqual(Option.some("1"))
      expect(new Map((yield* mirror.snapshot).values)).toEqual(yield* Kv.getPrefix(p, { revision }))
      // nothing written since: caught up again at once, at the same revision or later
      expect(yield* mirror.catchUp.pipe(Effect.timeout(Duration.seconds(20)))).toBeGreaterThanOrEqual(revision)
    }))

  it.scoped("waitFor with a timeout fails with MirrorTimeout for a revision not reached, and the mirror goes on", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("wait-timeout")
      const mirror = yield* Mirror.prefix(p)
      const first = yield* Kv.put(`${p}a`, "1")
      // reached in time: the same as without a timeout
      yield* mirror.waitFor(first.revision, { timeout: "20 seconds" })
      expect(yield* mirror.get(`${p}a`)).toEqual(Option.some("1"))
      // a revision far ahead of the store: the wait gives up, saying where the mirror is
      const far = first.revision + 1_000_000n
      const error = yield* Effect.flip(mirror.waitFor(far, { timeout: "300 millis" }))
      expect(error).toMatchObject({ _tag: "MirrorTimeout", revision: far })
      expect(error._tag === "MirrorTimeout" && error.reached).toBeGreaterThanOrEqual(first.revision)
      expect(error._tag === "MirrorTimeout" && Duration.toMillis(error.timeout)).toBe(300)
      // the mirror still follows, and waits with no timeout still work
      const second = yield* Kv.put(`${p}b`, "2")
      yield* mirror.waitFor(second.revision)
      expect(yield* mirror.get(`${p}b`)).toEqual(Option.some("2"))
    }))

  it.scoped("metadata: changes carry entries with their revisions; a typed mirror has them too", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("metadata")
      const mirror = yield* Mirror.prefix(`${p}text/`, { metadata: true })
      yield* mirror.ready
      const changes = yield* Effect.fork(Stream.runCollect(Stream.take(mirror.changes, 3)))
      yield* awaitSubscribed(changes)
      const first = yield* Kv.put(`${p}text/k`, "1")
      const second = yield* Kv.put(`${p}text/k`, "2")
      const removed = yield* Kv.delete(`${p}text/k`)
      const [put1, put2, deleted] = Chunk.toReadonlyArray(yield* Fiber.join(changes))
      expect(put1).toMatchObject({
        _tag: "Put",
        revision: first.revision,
        value: { value: "1", createRevision: first.revision, modRevision: first.revision, version: 1 },
        previous: Option.none()
      })
      expect(put2._tag === "Put" && [put2.value.modRevision, put2.value.version]).toEqual([second.revision, 2])
      expect(put2._tag === "Put" && Option.map(put2.previous, (entry) => entry.modRevision)).toEqual(
        Option.some(first.revision)
      )
      expect(deleted).toMatchObject({
        _tag: "Delete",
        revision: removed.revision,
        previous: { value: "2", version: 2 }
      })

      // a typed keyspace: the decoded value, and the metadata of its key
      const flags = Keyspace.make({ prefix: `${p}flags/`, key: Schema.String, value: Schema.parseJson(Schema.Boolean) })
      const written = yield* flags.put("dark", true)
      const typed = yield* Keyspace.mirror(flags, { metadata: true })
      const dark = Option.getOrThrow(yield* typed.get("dark"))
      expect(dark).toMatchObject({ value: true, modRevision: written.revision, version: 1 })
      // without the option, values stay plain
      const plain = yield* Keyspace.mirror(flags)
      expect(yield* plain.get("dark")).toEqual(Option.some(true))
    }))

  it.scoped("a typed mirror decodes; undecodable entries fail it, or are left out with skip", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("typed")
      const flags = Keyspace.make({ prefix: p, key: Schema.String, value: Schema.parseJson(Schema.Boolean) })
      yield* flags.put("dark", true)
      const bad = yield* Kv.put(`${p}broken`, "{")
      const strict = yield* Keyspace.mirror(flags)
      const error = yield* Effect.flip(strict.ready)
      expect(error._tag === "EtcdDecodeError" && [error.key, error.revision]).toEqual([`${p}broken`, bad.revision])
      expect((yield* Effect.flip(strict.get("dark")))._tag).toBe("EtcdDecodeError")

      yield* flags.put("light", false)
      const lenient = yield* Keyspace.mirror(flags, { onDecodeError: "skip", pageSize: 1 })
      expect([...(yield* lenient.snapshot).values]).toEqual([["dark", true], ["light", false]])
      yield* flags.put("broken", false)
      const { revision } = yield* Kv.put(`${p}dark`, "nope")
      yield* lenient.waitFor(revision)
      // the key whose value no longer decodes is gone from the map, not stale
      expect([...(yield* lenient.snapshot).values]).toEqual([["light", false], ["broken", false]])
    }))

  it.scoped(
    "after its watcher fell behind a compaction, it lists again and emits one Resynced",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("resync")
        const value = "v".repeat(1024)
        for (let i = 0; i < 10; i++) yield* Kv.put(`${p}${i}`, "old")
        const mirror = yield* Mirror.prefix(p, { changesBuffer: 1 })
        yield* mirror.ready
        // a consumer that stops at its first change holds the mirror back: its watcher is
        // suspended on the server once 256 KiB wait
        const gate = yield* Deferred.make<void>()
        const seen: Array<Mirror.Change<string, string>> = []
        const consumer = yield* Effect.fork(
          Stream.runForEach(
            mirror.changes,
            (change) => Effect.zipRight(Deferred.await(gate), Effect.sync(() => seen.push(change)))
          )
        )
        yield* awaitSubscribed(consumer)
        // more revisions than one answer can carry (etcd sends a watcher that fell behind at most
        // 1000 revisions an answer): a watcher suspended at its 256 KiB, even by one catching-up
        // answer that took all it could, still has history left to ask for once the consumer
        // goes on, and the compaction below has removed it (with 400, a loaded CI run once saw
        // no resync: the rest can come in one answer, leaving nothing to resume)
        for (let i = 0; i < 1500; i++) yield* Kv.put(`${p}${i % 20}`, `${value}${i}`)
        yield* Kv.delete(`${p}19`)
        const last = yield* Kv.put(`${p}new`, "fresh")
        yield* Kv.compact(last.revision)
        yield* Deferred.succeed(gate, undefined)

        yield* mirror.waitFor(last.revision).pipe(Effect.timeout(Duration.seconds(20)))
        expect(new Map((yield* mirror.snapshot).values)).toEqual(yield* Kv.getPrefix(p))
        for (let attempt = 0; attempt < 600 && !seen.some((c) => c._tag === "Resynced"); attempt++) {
          yield* Effect.sleep(Duration.millis(50))
        }
        const resyncs = seen.filter((change) => change._tag === "Resynced")
        expect(resyncs).toHaveLength(1)
        const resynced = resyncs[0]
        if (resynced._tag !== "Resynced") return
        expect(resynced.revision).toBeGreaterThanOrEqual(last.revision)
        expect(resynced.puts.map((put) => put.key)).toContain(`${p}new`)
        // puts before the resync were applied one by one or by the resync; the map is right either way
        yield* expectInSync(mirror, p)
      }),
    60_000
  )
})

/** Reads `read` until it equals `expected` (at most 600 times, 50 ms apart), then returns it once more. */
const settle = <A, E, R>(read: Effect.Effect<A, E, R>, expected: A) =>
  Effect.gen(function*() {
    for (let i = 0; i < 600 && (yield* read) !== expected; i++) yield* Effect.sleep(Duration.millis(50))
    return yield* read
  })

// a server of its own: the member's count of watchers is then this test's alone
layer(withServer(), { excludeTestServices: true })("Mirror's scope", (it) => {
  it.scoped("stops with the scope: its watcher is cancelled on the server, its map stays as it was", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const watchers = server.metric(0, "etcd_debugging_mvcc_watcher_total")
      const p = uniquePrefix("scope")
      yield* Kv.put(`${p}a`, "0")
      expect(yield* settle(watchers, 0)).toBe(0)
      const mirror = yield* Effect.scoped(Effect.gen(function*() {
        const mirror = yield* Mirror.prefix(p)
        yield* mirror.ready
        // the mirror watches once it has listed the range
        expect(yield* settle(watchers, 1)).toBe(1)
        return mirror
      }))
      expect(yield* settle(watchers, 0)).toBe(0)
      const before = yield* mirror.revision
      // a put a live mirror is seen to apply: the closed one would have had it by then too
      const put = yield* Kv.put(`${p}a`, "1")
      const live = yield* Mirror.prefix(p)
      yield* live.waitFor(put.revision)
      expect(yield* live.get(`${p}a`)).toEqual(Option.some("1"))
      expect(yield* mirror.get(`${p}a`)).toEqual(Option.some("0"))
      expect(yield* mirror.revision).toBe(before)
      expect(before).toBeLessThan(put.revision)
    }))
})

const cluster = {
  requestTimeout: "2 seconds",
  connectTimeout: "5 seconds",
  keepAliveTime: "5 seconds",
  keepAliveTimeout: "2 seconds"
} as const

const memberInUse = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  return server.endpoints.indexOf(yield* Etcd.currentEndpoint)
})

layer(withServer({ members: 3 }, cluster), { excludeTestServices: true })("Mirror on a 3-member cluster", (it) => {
  it.scoped("resyncs after a compaction past its revision while its member was paused", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("paused")
      for (let i = 0; i < 20; i++) yield* Kv.put(`${p}${i}`, "before")
      const mirror = yield* Mirror.prefix(p)
      yield* mirror.ready
      const resynced = yield* Effect.fork(
        mirror.changes.pipe(Stream.filter((change) => change._tag === "Resynced"), Stream.take(1), Stream.runCollect)
      )
      const paused = yield* memberInUse
      expect(paused).toBeGreaterThanOrEqual(0)
      yield* server.pause(paused)
      yield* Effect.gen(function*() {
        // a read moves the client to a live member; then writes and a compaction there
        yield* Kv.get(`${p}0`)
        for (let i = 0; i < 20; i++) {
          if (i % 3 === 0) yield* Kv.delete(`${p}${i}`)
          else yield* Kv.put(`${p}${i}`, "during")
        }
        const { revision } = yield* Kv.put(`${p}new`, "during")
        yield* Kv.compact(revision)
        // long enough for the keepalive to give up on the paused member
        yield* Effect.sleep(Duration.seconds(8))
      }).pipe(Effect.ensuring(server.resume(paused)))
      const [change] = yield* Fiber.join(resynced).pipe(Effect.timeout(Duration.seconds(30)))
      expect(change._tag).toBe("Resynced")
      yield* expectInSync(mirror, p)
    }), 90_000)

  it.scoped(
    "a mirror kept while members are killed equals the server's state at the end",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("chaos")
        const mirror = yield* Mirror.prefix(p)
        yield* mirror.ready
        const stopped = yield* Ref.make(false)
        const faults: Array<string> = []
        let landed = 0
        const writer = (fiber: number) =>
          Effect.gen(function*() {
            for (let i = 0; i < 10_000 && !(yield* Ref.get(stopped)); i++) {
              const key = `${p}${yield* Random.nextIntBetween(0, 100)}`
              const write = (yield* Random.nextIntBetween(0, 4)) === 0
                ? Effect.asVoid(Kv.delete(key))
                : Effect.asVoid(Kv.put(key, `${fiber}-${i}`))
              const result = yield* Effect.either(write)
              if (result._tag === "Left") faults.push(result.left._tag)
              else landed++
              yield* Effect.sleep(Duration.millis(10))
            }
          })
        const writers = yield* Effect.fork(Effect.all([0, 1, 2, 3].map(writer), { concurrency: 4, discard: true }))

        yield* Effect.sleep(Duration.seconds(2))
        const inUse = yield* memberInUse
        yield* server.kill(inUse)
        yield* Effect.sleep(Duration.seconds(5))
        yield* server.start(inUse)
        yield* Effect.sleep(Duration.seconds(3))
        yield* server.kill((inUse + 1) % 3)
        yield* Effect.sleep(Duration.seconds(4))
        yield* server.start((inUse + 1) % 3)
        yield* Effect.sleep(Duration.seconds(2))
        yield* Ref.set(stopped, true)
        yield* Fiber.join(writers)

        expect(
          faults.filter((tag) => !["AmbiguousOutcome", "EtcdTimeout", "EtcdUnavailable", "NoLeader"].includes(tag))
        )
          .toEqual([])
        expect(landed).toBeGreaterThan(100)
        yield* expectInSync(mirror, p)
      }),
    120_000
  )
})
