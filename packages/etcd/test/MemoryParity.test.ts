/**
 * EtcdMemory behaves as a default etcd 3.4 where a test could otherwise pass on it and
 * fail in production: a watcher forked before two puts is not starved of both, a kept
 * lease costs no clock wake-ups, the least TTL is 2, time to live rounds down, and
 * errors name the method as the real transport does. (Checked against a default etcd
 * 3.4.23: `etcdctl lease grant 1` grants 2 seconds; `lease timetolive` right after a
 * grant of 10 says 9.)
 */
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Scope, Stream, TestClock } from "effect"
import { EtcdMemory, Kv, Lease, Watch } from "effect-etcd"

it.live("a watch forked before two puts sees the second, as on etcd, instead of hanging", () =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(Watch.watchPrefix("cfg/").pipe(Stream.take(1), Stream.runCollect))
    yield* Kv.put("cfg/a", "1")
    yield* Kv.put("cfg/b", "2")
    // the bound is only there to fail instead of hanging
    const events = yield* Fiber.join(fiber).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "hung" }))
    expect(Chunk.toReadonlyArray(events).map((event) => event.key)).toEqual(["cfg/b"])
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect(
  "an hour of TestClock with leases kept alive costs no keepalive ticks, and they stay alive",
  () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      // a keepalive every 667 ms each would be 5,400 clock wake-ups per lease for the hour
      const leases = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) =>
          Effect.tap(
            Scope.extend(Lease.make("2 seconds"), scope),
            (lease) => Kv.put(`kept/${i}`, "v", { lease })
          )
      )
      yield* TestClock.adjust("1 hour")
      for (const lease of leases) expect(yield* lease.isLost).toBe(false)
      expect((yield* Kv.keysPrefix("kept/")).length).toBe(20)
      const left = yield* Lease.timeToLive(leases[0].id)
      expect(left.grantedTtl).toBe(2)
      // let go: the leases are revoked, their keys with them
      yield* Scope.close(scope, Exit.void)
      expect((yield* Kv.keysPrefix("kept/")).length).toBe(0)
    }).pipe(Effect.provide(EtcdMemory.layer())),
  60_000
)

it.effect("a lease let go without a revoke expires a TTL after its keepalives stop", () =>
  Effect.gen(function*() {
    const grant = yield* Lease.grant("10 seconds")
    const scope = yield* Scope.make()
    yield* Scope.extend(Lease.keepAlive(grant.id), scope)
    yield* TestClock.adjust("1 minute")
    expect((yield* Lease.timeToLive(grant.id)).ttl).toBe(9)
    yield* Scope.close(scope, Exit.void)
    yield* TestClock.adjust("9 seconds")
    expect((yield* Lease.timeToLive(grant.id)).ttl).toBe(0)
    yield* TestClock.adjust("2 seconds")
    expect(yield* Effect.flip(Lease.timeToLive(grant.id))).toMatchObject({ _tag: "LeaseNotFound" })
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("the least TTL is 2 seconds, as with etcd's default election timeout; an option changes it", () =>
  Effect.gen(function*() {
    expect((yield* Lease.grant("1 second")).ttl).toBe(2)
    expect((yield* Lease.grant("1 second").pipe(Effect.provide(EtcdMemory.layer({ minLeaseTtl: "1 second" })))).ttl)
      .toBe(1)
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("time to live right after a grant of 10 is 9: whole seconds left, rounded down", () =>
  Effect.gen(function*() {
    const grant = yield* Lease.grant("10 seconds")
    expect((yield* Lease.timeToLive(grant.id)).ttl).toBe(9)
    yield* TestClock.adjust("2500 millis")
    expect((yield* Lease.timeToLive(grant.id)).ttl).toBe(7)
  }).pipe(Effect.provide(EtcdMemory.layer())))

it.effect("errors name the method with its leading slash, as the real transport does", () =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(Lease.revoke(0x0bad_1eafn))
    expect(error).toMatchObject({ _tag: "LeaseNotFound", method: "/etcdserverpb.Lease/LeaseRevoke" })
    expect(error.message).toContain("(/etcdserverpb.Lease/LeaseRevoke)")
    const put = yield* Effect.flip(Kv.put("k", "v", { lease: 0x0bad_1eafn }))
    expect(put).toMatchObject({ _tag: "LeaseNotFound", method: "/etcdserverpb.KV/Put" })
    expect(Option.isNone(yield* Kv.get("k"))).toBe(true)
  }).pipe(Effect.provide(EtcdMemory.layer())))
