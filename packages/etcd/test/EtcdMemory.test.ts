import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Schedule, Stream, TestClock } from "effect"
import { Etcd, EtcdError, EtcdMemory, KeyRange, Kv, Lease, Watch } from "effect-etcd"

// The guide's example (docs/testing-your-service.md): the service under test registers itself under a lease for as
// long as its scope is open.
const register = (name: string, address: string) =>
  Effect.gen(function*() {
    const lease = yield* Lease.make("10 seconds")
    yield* Kv.put(`services/${name}`, address, { lease })
    return lease
  })

it.scoped("a service whose keepalives hang loses its registration once the TTL has passed", () =>
  Effect.gen(function*() {
    const lease = yield* register("api", "10.0.0.7:8080")
    // keepalives run on the TestClock: half a minute later the registration is still there
    yield* TestClock.adjust("30 seconds")
    expect(yield* Kv.get("services/api")).toEqual(Option.some("10.0.0.7:8080"))
    expect(yield* lease.isLost).toBe(false)
    // the server stops answering keepalives
    yield* EtcdMemory.hangFor("1 minute", { methods: ["leaseKeepAlive"] })
    yield* TestClock.adjust("11 seconds")
    expect(yield* Kv.get("services/api")).toEqual(Option.none())
    expect(yield* lease.isLost).toBe(true)
    expect(yield* Effect.flip(lease.lost)).toMatchObject({ _tag: "LeaseLost", leaseId: lease.id, reason: "expired" })
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("failNext: the next calls fail with the given error, and a retry gets through", () =>
  Effect.gen(function*() {
    yield* Kv.put("config/mode", "primary")
    const unavailable = new EtcdError.Unavailable({ endpoints: ["memory://etcd"], reason: "injected" })
    yield* EtcdMemory.failNext(2, unavailable, { methods: ["range"] })
    // a put is not aimed at: it goes through
    yield* Kv.put("config/other", "x")
    expect(yield* Effect.flip(Kv.get("config/mode"))).toBe(unavailable)
    let attempts = 0
    const read = Effect.suspend(() => {
      attempts++
      return Kv.get("config/mode")
    }).pipe(Effect.retry(Schedule.recurs(3)))
    expect(yield* read).toEqual(Option.some("primary"))
    expect(attempts).toBe(2)
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("hangUntil: a hung read times out with Timeout, a hung write with AmbiguousOutcome", () =>
  Effect.gen(function*() {
    yield* Kv.put("k", "v")
    yield* EtcdMemory.hangFor("1 minute")
    const read = yield* Effect.fork(Effect.flip(Kv.get("k", { timeout: "5 seconds" })))
    const write = yield* Effect.fork(Effect.flip(Kv.put("k", "w", { timeout: "5 seconds" })))
    yield* TestClock.adjust("6 seconds")
    expect(yield* Fiber.join(read)).toMatchObject({ _tag: "Timeout" })
    expect(yield* Fiber.join(write)).toMatchObject({ _tag: "AmbiguousOutcome", cause: { _tag: "Timeout" } })
    // a call whose deadline outlasts the hang waits for its end and is answered
    const late = yield* Effect.fork(Kv.get("k", { timeout: "2 minutes" }))
    yield* TestClock.adjust("1 minute")
    expect(yield* Fiber.join(late)).toEqual(Option.some("v"))
    yield* EtcdMemory.clearFaults
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("a quiet watcher with progressNotify hears of progress on the clock", () =>
  Effect.gen(function*() {
    const { revision } = yield* Kv.put("quiet/k", "v")
    const responses = yield* Effect.fork(
      Watch.responses("quiet/", { progressNotify: true }).pipe(Stream.take(1), Stream.runCollect)
    )
    yield* TestClock.adjust("5 seconds")
    yield* TestClock.adjust("11 minutes")
    const [progress] = Chunk.toReadonlyArray(yield* Fiber.join(responses))
    expect(progress).toMatchObject({ progress: true, events: [] })
    expect(progress.revision).toBe(revision)
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("the handle reports the revision; the endpoint names the memory store", () =>
  Effect.gen(function*() {
    const first = yield* EtcdMemory.revision
    expect(first).toBe(1n)
    const { revision } = yield* Kv.put("a", "1")
    expect(revision).toBe(2n)
    expect(yield* EtcdMemory.revision).toBe(2n)
    expect(yield* Etcd.currentEndpoint).toBe("memory://etcd")
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("limits can be set as etcd's flags set them", () =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(Kv.put("k", "x".repeat(2_000)))
    expect(error).toMatchObject({ _tag: "RequestTooLarge" })
  }).pipe(Effect.provide(EtcdMemory.layer({ maxRequestBytes: 1_024 }))))

it.effect("namespaces work on the memory store", () =>
  Effect.gen(function*() {
    yield* Kv.put("mode", "primary").pipe(Etcd.withNamespace("tenants/acme/"))
    expect(yield* Kv.keysPrefix("tenants/")).toEqual(["tenants/acme/mode"])
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("ranges see deleted keys only at the revisions they lived in, and keys put in any order come sorted", () =>
  Effect.gen(function*() {
    // keys that do not come last when put (a lock queue's `-10` after `-9`)
    const names = Array.from({ length: 30 }, (_, i) => `queue/k-${i.toString(16)}`)
    for (const name of names) yield* Kv.put(name, "v")
    const full = yield* Kv.range(KeyRange.prefix("queue/"))
    expect(full.kvs.map((kv) => kv.key)).toEqual([...names].sort())
    // each put once and deleted, as a lock's keys are
    for (const name of names.slice(0, 20)) yield* Kv.delete(name)
    const now = yield* Kv.range(KeyRange.prefix("queue/"))
    expect(now.kvs.map((kv) => kv.key)).toEqual(names.slice(20).sort())
    expect(now.count).toBe(10)
    // the history is still there for a read of an older revision
    const then = yield* Kv.range(KeyRange.prefix("queue/"), { revision: full.revision })
    expect(then.kvs.map((kv) => kv.key)).toEqual([...names].sort())
    // a key put again after its delete is live again, once
    yield* Kv.put(names[0], "again")
    const again = yield* Kv.range(KeyRange.prefix("queue/"))
    expect(again.kvs.map((kv) => kv.key)).toEqual([names[0], ...names.slice(20)].sort())
    expect((yield* Kv.deletePrefix("queue/")).deleted).toBe(11)
    expect(yield* Kv.count(KeyRange.prefix("queue/"))).toBe(0)
  }).pipe(Effect.provide(EtcdMemory.layer())))
