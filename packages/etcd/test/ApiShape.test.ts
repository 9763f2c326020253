import { EtcdServer } from "@effect-etcd/testing"
import { describe, expect, expectTypeOf, it, layer } from "@effect/vitest"
import type { ConfigError } from "effect"
import { Chunk, ConfigProvider, Deferred, Effect, Fiber, Layer, Match, Option, pipe, Schema, Stream } from "effect"
import type { EtcdError } from "effect-etcd"
import {
  Compare,
  Election,
  Etcd,
  EtcdMemory,
  KeyRange,
  Keyspace,
  Kv,
  Lease,
  Lock,
  Mirror,
  Op,
  RwLock,
  Session,
  Txn,
  Watch
} from "effect-etcd"
import { uniquePrefix } from "./support.js"

// The shape of the API: with* are dual (effect first, pipeable), changes share one `_tag`,
// handles carry the client they were made with, a Session in the context is the default of
// locks and campaigns, and layerConfig requires a FileSystem only to read files.

const memory = EtcdMemory.layer()

describe("with* are dual", () => {
  it.effect("Lock.withLock: piped, data-first and the earlier order give the same types and results", () =>
    Effect.gen(function*() {
      const work = Effect.map(Lock.make("jobs-probe"), () => 1).pipe(Effect.scoped, Effect.as("done"))
      const piped = work.pipe(Lock.withLock("jobs", { timeout: "5 seconds" }))
      const dataFirst = Lock.withLock(work, "jobs", { timeout: "5 seconds" })
      const earlier = Lock.withLock("jobs", work, { timeout: "5 seconds" })
      const inPipe = pipe(Effect.succeed(7), Lock.withLock("jobs"))
      expectTypeOf(piped).toEqualTypeOf<Effect.Effect<string, EtcdError.LockError, Etcd.Etcd>>()
      expectTypeOf(dataFirst).toEqualTypeOf<Effect.Effect<string, EtcdError.LockError, Etcd.Etcd>>()
      expectTypeOf(earlier).toEqualTypeOf<Effect.Effect<string, EtcdError.LockError, Etcd.Etcd>>()
      expectTypeOf(inPipe).toEqualTypeOf<Effect.Effect<number, EtcdError.LockError, Etcd.Etcd>>()
      expect([yield* piped, yield* dataFirst, yield* earlier, yield* inPipe]).toEqual(["done", "done", "done", 7])
      // the lock is held while the effect runs, and released after
      const held = yield* Kv.count(KeyRange.prefix("jobs/")).pipe(Lock.withLock("jobs"))
      expect(held).toBe(1)
      expect(yield* Kv.count(KeyRange.prefix("jobs/"))).toBe(0)
    }).pipe(Effect.provide(memory)))

  it.effect("RwLock.withRead and withWrite pipe, and take the effect first", () =>
    Effect.gen(function*() {
      const readers = yield* Kv.count(KeyRange.prefix("rw/read/")).pipe(RwLock.withRead("rw", { timeout: "1 second" }))
      const writers = yield* RwLock.withWrite(Kv.count(KeyRange.prefix("rw/write/")), "rw")
      const earlier = yield* RwLock.withRead("rw", Kv.count(KeyRange.prefix("rw/")))
      expectTypeOf(Effect.succeed(1).pipe(RwLock.withWrite("rw"))).toEqualTypeOf<
        Effect.Effect<number, EtcdError.LockError, Etcd.Etcd>
      >()
      expect([readers, writers, earlier]).toEqual([1, 1, 1])
    }).pipe(Effect.provide(memory)))

  it.effect("Lease.withLease and Election.withLeadership pipe the function they run", () =>
    Effect.gen(function*() {
      const ttl = yield* pipe((lease: Lease.Lease) => Effect.succeed(lease.ttl), Lease.withLease(30))
      const withOptions = yield* Lease.withLease((lease) => Effect.succeed(lease.ttl), 20, {
        revokeTimeout: "1 second"
      })
      const earlier = yield* Lease.withLease(10, (lease) => Effect.succeed(lease.ttl))
      expect([ttl, withOptions, earlier]).toEqual([30, 20, 10])
      const leader = yield* pipe(
        (leadership: Election.Leadership) =>
          Effect.map(Election.leader("e"), Option.map((l) => l.key === leadership.key)),
        Election.withLeadership("e", "me", { timeout: "5 seconds" })
      )
      const dataFirst = yield* Election.withLeadership((leadership) => Effect.succeed(leadership.name), "e", "me")
      const earlierLeader = yield* Election.withLeadership("e", "me", (leadership) => Effect.succeed(leadership.name))
      expectTypeOf(Election.withLeadership("e", "me")((leadership) => Effect.succeed(leadership.revision)))
        .toEqualTypeOf<Effect.Effect<bigint, EtcdError.CampaignError, Etcd.Etcd>>()
      expect([leader, dataFirst, earlierLeader]).toEqual([Option.some(true), "e", "e"])
    }).pipe(Effect.provide(memory)))
})

describe("one shape for changes", () => {
  const describeChange = Match.type<Watch.WatchEvent | Keyspace.Event<string, string> | Mirror.Change<string, string>>()
    .pipe(
      Match.tag("Put", (change) => `put ${change.key}`),
      Match.tag("Delete", (change) => `delete ${change.key}`),
      Match.tag("Resynced", () => "resynced"),
      Match.exhaustive
    )

  it.effect("Match.tag sees the same Put and Delete in a watch, a Keyspace and a Mirror", () =>
    Effect.gen(function*() {
      const { revision } = yield* Kv.put("m/a", "\"1\"")
      yield* Kv.delete("m/a")
      const events = yield* Watch.watchPrefix("m/", { startRevision: revision }).pipe(Stream.take(2), Stream.runCollect)
      const watched = Chunk.toReadonlyArray(events)
      expectTypeOf(watched[0]._tag).toEqualTypeOf<"Put" | "Delete">()
      expect(watched.map((event) => [event._tag, event.type])).toEqual([["Put", "put"], ["Delete", "delete"]])
      expect(watched.map(describeChange)).toEqual(["put m/a", "delete m/a"])
      // narrowed by the tag, as for a tagged union
      const put = watched[0]
      if (put._tag === "Put") expectTypeOf(put).toEqualTypeOf<Watch.PutEvent>()

      const space = Keyspace.json("m/", Schema.String)
      const typed = yield* space.watch({ startRevision: revision }).pipe(Stream.take(2), Stream.runCollect)
      expect(Chunk.toReadonlyArray(typed).map(describeChange)).toEqual(["put a", "delete a"])

      const mirror = yield* Mirror.prefix("m/")
      yield* mirror.ready
      const changes = yield* mirror.changes.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      // the Stream sees what is applied once it runs: write until it has two changes (bounded)
      for (let i = 0; i < 100 && Option.isNone(yield* Fiber.poll(changes)); i++) {
        const { revision } = yield* Kv.put("m/b", `${i}`)
        yield* mirror.waitFor(revision)
        yield* Effect.yieldNow()
      }
      const mirrored = Chunk.toReadonlyArray(yield* Fiber.join(changes))
      expect(mirrored.map(describeChange)).toEqual(["put m/b", "put m/b"])
    }).pipe(Effect.scoped, Effect.provide(memory)))
})

describe("handles carry their client", () => {
  it.effect("a Leadership made under one namespace proclaims and resigns there, whatever namespace its caller has", () =>
    Effect.gen(function*() {
      const made = yield* Deferred.make<Election.Leadership>()
      const done = yield* Deferred.make<void>()
      const holder = yield* Election.campaign("election", "first").pipe(
        Effect.flatMap((leadership) => Effect.zipRight(Deferred.succeed(made, leadership), Deferred.await(done))),
        Effect.scoped,
        Etcd.withNamespace("tenant-a/"),
        Effect.fork
      )
      const leadership = yield* Deferred.await(made)
      // another fiber, another namespace in its context
      yield* Effect.gen(function*() {
        yield* leadership.proclaim("second")
        expect(yield* Kv.keysPrefix("")).toEqual([])
      }).pipe(Etcd.withNamespace("tenant-b/"), Effect.fork, Effect.flatMap(Fiber.join))
      const kv = Option.getOrThrow(yield* Kv.getKeyValue(`tenant-a/${leadership.key}`))
      expect(kv.value).toBe("second")
      expect(yield* Kv.keysPrefix("tenant-b/")).toEqual([])
      // the handle needs no client from its caller
      expectTypeOf(leadership.proclaim).returns.toEqualTypeOf<Effect.Effect<void, EtcdError.ProclaimError>>()
      yield* leadership.resign
      expect(yield* Kv.count(KeyRange.prefix("tenant-a/election/"))).toBe(0)
      yield* Deferred.succeed(done, void 0)
      yield* Fiber.join(holder)
    }).pipe(Effect.provide(memory)))

  it.effect("a Session in the context is the lease of the locks and campaigns made under it", () =>
    Effect.gen(function*() {
      const session = yield* Session.Session
      const leasesBefore = (yield* Lease.leases()).length
      const lockLease = yield* Effect.map(Lock.make("s/lock"), (lock) => lock.lease.id).pipe(Effect.scoped)
      const rwLease = yield* Effect.map(RwLock.write("s/rw"), (lock) => lock.lease.id).pipe(Effect.scoped)
      const leaderLease = yield* Effect.map(Election.campaign("s/e", "me"), (l) => l.lease.id).pipe(Effect.scoped)
      const keyLease = yield* Kv.range(KeyRange.prefix("s/with/")).pipe(
        Effect.map((result) => result.kvs.map((kv) => kv.lease)),
        Lock.withLock("s/with")
      )
      expect([lockLease, rwLease, leaderLease]).toEqual([session.lease.id, session.lease.id, session.lease.id])
      expect(keyLease).toEqual([session.lease.id])
      // no lease of their own was granted
      expect((yield* Lease.leases()).length).toBe(leasesBefore)
      // a ttl asks for a lease of the lock's own
      const own = yield* Effect.map(Lock.make("s/own", { ttl: 30 }), (lock) => lock.lease.id).pipe(Effect.scoped)
      expect(own).not.toBe(session.lease.id)
    }).pipe(Effect.provide(Session.layer({ ttl: 30 }).pipe(Layer.provideMerge(memory)))))
})

describe("layerConfig", () => {
  it("requires no FileSystem", () => {
    expectTypeOf(Etcd.layerConfig(Etcd.config)).toEqualTypeOf<
      Layer.Layer<
        Etcd.Etcd,
        | ConfigError.ConfigError
        | EtcdError.ConnectionFailed
        | EtcdError.AuthFailed
        | EtcdError.InvalidArgument
        | EtcdError.TlsError,
        never
      >
    >()
  })

  it.effect("naming a TLS file with no FileSystem provided fails with TlsError", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(
        new Map([["ETCD_ENDPOINTS", "https://127.0.0.1:1"], ["ETCD_CA_FILE", "/nonexistent/ca.crt"]])
      )
      const error = yield* Effect.flip(
        Layer.build(Etcd.layerConfig(Etcd.config)).pipe(Effect.scoped, Effect.withConfigProvider(provider))
      )
      expect(error).toMatchObject({ _tag: "TlsError" })
      expect(error.message).toContain("FileSystem")
    }))
})

layer(EtcdServer.layerClient(), { excludeTestServices: true })("against a real etcd", (it) => {
  it.effect("layerConfig with no TLS file builds and works without a FileSystem", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("api-config")
      const provider = ConfigProvider.fromMap(new Map([["ETCD_ENDPOINTS", server.endpoints.join(",")]]))
      const value = yield* Kv.put(`${p}k`, "v").pipe(
        Effect.zipRight(Kv.get(`${p}k`)),
        Effect.provide(Etcd.layerConfig(Etcd.config)),
        Effect.withConfigProvider(provider)
      )
      expect(value).toEqual(Option.some("v"))
    }))

  it.effect("compare operands take any int64, as etcd does: version > -1 always holds", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("api-compare")
      const missing = yield* Txn.txnCompare([Compare.version(`${p}k`).greaterThan(-1)], [Op.put(`${p}k`, "1")])
      expect(missing.succeeded).toBe(true)
      const present = yield* Txn.txnCompare([Compare.version(`${p}k`).greaterThan(-1n)], [Op.put(`${p}k`, "2")])
      expect(present.succeeded).toBe(true)
      const lowest = yield* Txn.txnCompare([Compare.modRevision(`${p}k`).greaterThan(-(2n ** 63n))], [])
      expect(lowest.succeeded).toBe(true)
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("2"))
      // beyond int64 is still refused before anything is sent
      const beyond = yield* Effect.flip(Txn.txnCompare([Compare.version(`${p}k`).greaterThan(-(2n ** 63n) - 1n)], []))
      expect(beyond).toMatchObject({ _tag: "InvalidArgument" })
    }))

  it.effect("a FutureRevision from the server names the revision asked for", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("api-future")
      const { revision } = yield* Kv.put(`${p}k`, "v")
      const error = yield* Effect.flip(Kv.get(`${p}k`, { revision: revision + 1000n }))
      expect(error).toMatchObject({ _tag: "FutureRevision", requestedRevision: revision + 1000n })
      expect(JSON.parse(JSON.stringify(error))).toMatchObject({ requestedRevision: (revision + 1000n).toString() })
    }))

  it.effect("layerClient gives a client of the server it starts", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      expect(yield* Etcd.currentEndpoint).toBe(server.endpoints[0])
    }))
})
