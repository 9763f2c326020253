import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, Ref, Scope } from "effect"
import type { Etcd } from "effect-etcd"
import { KeyRange, Kv, Lease } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

/** How many LeaseKeepAlive streams the server has seen opened, from its gRPC metrics. */
const keepAliveStreams = Effect.flatMap(EtcdServer.EtcdServer, (server) =>
  Effect.map(server.metrics(0), (text) => {
    const line = text.split("\n").find((l) =>
      l.startsWith("grpc_server_started_total{") && l.includes("grpc_method=\"LeaseKeepAlive\"")
    )
    return line === undefined ? 0 : Number(line.split(" ").pop())
  }))

/** How many LeaseKeepAlive streams the server has seen end, whatever their status. */
const keepAliveStreamsEnded = Effect.flatMap(
  EtcdServer.EtcdServer,
  (server) =>
    Effect.map(server.metrics(0), (text) =>
      text.split("\n")
        .filter((l) => l.startsWith("grpc_server_handled_total{") && l.includes("grpc_method=\"LeaseKeepAlive\""))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0))
)

layer(withServer(), { excludeTestServices: true })("Lease", (it) => {
  it.effect("grant, timeToLive with keys, and revoke (etcetra's grant_lease/revoke_lease)", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("grant")
      const grant = yield* Lease.grant("30 seconds")
      expect(grant.ttl).toBe(30)
      yield* Kv.put(`${p}a`, "1", { lease: grant.id })
      yield* Kv.put(`${p}b`, "2", { lease: grant })
      const info = yield* Lease.timeToLive(grant.id, { keys: true })
      expect(info.grantedTtl).toBe(30)
      expect(info.ttl).toBeGreaterThan(0)
      expect(info.ttl).toBeLessThanOrEqual(30)
      expect([...info.keys].sort()).toEqual([`${p}a`, `${p}b`])
      expect(yield* Lease.leases()).toContain(grant.id)
      yield* Lease.revoke(grant.id)
      expect(yield* Kv.count(`${p}a`)).toBe(0)
      expect(yield* Lease.leases()).not.toContain(grant.id)
    }))

  it.effect("a chosen lease ID is used; granting it twice fails with LeaseExists", () =>
    Effect.gen(function*() {
      const id = 0x7e57_0000_0000_0001n + BigInt(Math.floor(Math.random() * 1_000_000))
      const grant = yield* Lease.grant("10 seconds", { id })
      expect(grant.id).toBe(id)
      const error = yield* Effect.flip(Lease.grant("10 seconds", { id }))
      expect(error).toMatchObject({ _tag: "LeaseExists", leaseId: id })
      yield* Lease.revoke(id)
    }))

  it.effect("unknown leases fail with LeaseNotFound carrying the ID", () =>
    Effect.gen(function*() {
      const unknown = 0x0bad_1eafn
      expect(yield* Effect.flip(Lease.revoke(unknown))).toMatchObject({ _tag: "LeaseNotFound", leaseId: unknown })
      expect(yield* Effect.flip(Lease.timeToLive(unknown))).toMatchObject({ _tag: "LeaseNotFound", leaseId: unknown })
      expect(yield* Effect.flip(Lease.keepAliveOnce(unknown))).toMatchObject({ _tag: "LeaseNotFound" })
    }))

  it.effect("a lease ID above 2^53 survives the round trip exactly", () =>
    Effect.gen(function*() {
      const id = 2n ** 62n + 12345n
      const grant = yield* Lease.grant("10 seconds", { id })
      expect(grant.id).toBe(id)
      expect((yield* Lease.timeToLive(id)).id).toBe(id)
      yield* Lease.revoke(id)
      // the revoke (its request written by hand) named this lease and no other
      expect((yield* Effect.flip(Lease.timeToLive(id)))._tag).toBe("LeaseNotFound")
    }))

  it.effect(
    "leases with IDs above 2^53 are kept alive past their TTL on the shared stream",
    () =>
      Effect.gen(function*() {
        const base = 2n ** 62n + BigInt(Math.floor(Math.random() * 1_000_000)) * 1000n
        const ids = [base + 1n, base + 2n ** 40n + 3n, 2n ** 63n - 1n - BigInt(Math.floor(Math.random() * 1_000_000))]
        for (const id of ids) yield* Lease.grant("2 seconds", { id })
        yield* Effect.scoped(Effect.gen(function*() {
          const held = yield* Effect.forEach(ids, (id) => Lease.keepAlive(id))
          yield* Effect.sleep(Duration.seconds(5))
          expect(yield* Effect.forEach(held, (lease) => lease.isLost)).toEqual([false, false, false])
          const infos = yield* Effect.forEach(ids, (id) => Lease.timeToLive(id))
          expect(infos.map((info) => info.id)).toEqual(ids)
          expect(infos.every((info) => info.ttl > 0)).toBe(true)
        }))
        yield* Effect.forEach(ids, (id) => Lease.revoke(id))
      }),
    30_000
  )

  it.effect("keepAliveOnce restores the full TTL", () =>
    Effect.gen(function*() {
      const grant = yield* Lease.grant("5 seconds")
      yield* Effect.sleep(Duration.millis(1_200))
      const before = yield* Lease.timeToLive(grant.id)
      expect(before.ttl).toBeLessThan(5)
      expect(yield* Lease.keepAliveOnce(grant.id)).toBe(5)
      expect((yield* Lease.timeToLive(grant.id)).ttl).toBeGreaterThan(before.ttl)
      yield* Lease.revoke(grant.id)
    }))

  it.effect("a 2 s scoped lease survives 10 s; its keys vanish when the scope closes", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("scoped")
      const scope = yield* Scope.make()
      const lease = yield* Scope.extend(Lease.make("2 seconds"), scope)
      yield* Kv.put(`${p}k`, "v", { lease })
      yield* Effect.sleep(Duration.seconds(10))
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("v"))
      expect(yield* lease.isLost).toBe(false)
      yield* Scope.close(scope, Exit.void)
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.none())
      expect(yield* Effect.flip(Lease.timeToLive(lease.id))).toMatchObject({ _tag: "LeaseNotFound" })
    }), 30_000)

  it.effect("the scoped lease is revoked on failure and on interruption", () =>
    Effect.gen(function*() {
      let failedId = 0n
      const failed = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lease.make("30 seconds")
        failedId = lease.id
        return yield* Effect.fail("boom")
      })))
      expect(Exit.isFailure(failed)).toBe(true)
      expect(yield* Effect.flip(Lease.timeToLive(failedId))).toMatchObject({ _tag: "LeaseNotFound" })

      let interruptedId = 0n
      const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lease.make("30 seconds")
        interruptedId = lease.id
        return yield* Effect.never
      })))
      while (interruptedId === 0n) yield* Effect.sleep(Duration.millis(20))
      yield* Fiber.interrupt(fiber)
      expect(yield* Effect.flip(Lease.timeToLive(interruptedId))).toMatchObject({ _tag: "LeaseNotFound" })
    }))

  it.effect("all scoped leases of a client share one keepalive stream", () =>
    Effect.gen(function*() {
      const before = yield* keepAliveStreams
      const leases = yield* Effect.scoped(Effect.gen(function*() {
        const held = yield* Effect.forEach([1, 2, 3, 4, 5], () => Lease.make("3 seconds"), { concurrency: "unbounded" })
        yield* Effect.sleep(Duration.seconds(4))
        return yield* Effect.forEach(held, (lease) => Lease.timeToLive(lease.id))
      }))
      expect(leases.every((info) => info.ttl > 0)).toBe(true)
      // one stream for all five (none, if the stream of an earlier test is still open)
      expect((yield* keepAliveStreams) - before).toBeLessThanOrEqual(1)
    }), 30_000)

  it.effect(
    "300 leases of 3 s in one scope are all kept alive past their TTL, then all revoked with their keys",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("many")
        const scope = yield* Scope.make()
        const leases = yield* Effect.forEach(
          Array.from({ length: 300 }, (_, i) => i),
          (i) =>
            Effect.tap(
              Lease.make("3 seconds"),
              (lease) => i % 10 === 0 ? Kv.put(`${p}${i}`, "v", { lease }) : Effect.void
            ),
          { concurrency: 32 }
        ).pipe(Scope.extend(scope))
        const ids = leases.map((lease) => lease.id)
        // over two TTLs: every lease needed at least two keepalives on the shared stream
        yield* Effect.sleep(Duration.seconds(7))
        const lost = yield* Effect.filter(leases, (lease) => lease.isLost)
        expect(lost.map((lease) => lease.id)).toEqual([])
        const listed = new Set(yield* Lease.leases())
        expect(ids.filter((id) => !listed.has(id))).toEqual([])
        expect(yield* Kv.count(KeyRange.prefix(p))).toBe(30)

        yield* Scope.close(scope, Exit.void)
        const left = new Set(yield* Lease.leases())
        expect(ids.filter((id) => left.has(id))).toEqual([])
        expect(yield* Kv.count(KeyRange.prefix(p))).toBe(0)
        // each held lease now reports itself revoked
        expect(yield* Effect.flip(leases[leases.length - 1].lost)).toMatchObject({
          _tag: "LeaseLost",
          reason: "revoked"
        })
      }),
    60_000
  )

  it.effect("a scope's leases are revoked before the finalizers added ahead of them run", () =>
    Effect.gen(function*() {
      let seenByEarlier: ReadonlyArray<bigint> | undefined
      let seenByLater: ReadonlyArray<bigint> | undefined
      let ids: ReadonlyArray<bigint> = []
      yield* Effect.scoped(Effect.gen(function*() {
        // added before the leases: runs after them
        yield* Effect.addFinalizer(() =>
          Effect.map(Effect.orDie(Lease.leases()), (listed) => {
            seenByEarlier = ids.filter((id) => listed.includes(id))
          })
        )
        const leases = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], () => Lease.make("30 seconds"), {
          concurrency: 4
        })
        ids = leases.map((lease) => lease.id)
        // added after the leases: runs before them
        yield* Effect.addFinalizer(() =>
          Effect.map(Effect.orDie(Lease.leases()), (listed) => {
            seenByLater = ids.filter((id) => listed.includes(id))
          })
        )
      }))
      expect(seenByLater).toEqual(ids)
      expect(seenByEarlier).toEqual([])
    }))

  it.effect(
    "a lease waiting for its revoke while its scope closes is still kept alive, then revoked",
    () =>
      Effect.gen(function*() {
        let during: Exit.Exit<Lease.TimeToLive, unknown> | undefined
        let lost: Exit.Exit<boolean> | undefined
        const context = yield* Effect.context<Etcd.Etcd>()
        const scope = yield* Scope.make()
        // the first lease adds the scope's revokes: they run after everything added later
        yield* Lease.make("30 seconds").pipe(Scope.extend(scope))
        // added before the second lease: runs after its own finalizers, before the revokes
        yield* Scope.addFinalizer(
          scope,
          Effect.suspend(() =>
            // past two TTLs of the second lease: it is gone unless still kept alive
            Effect.zipRight(
              Effect.sleep(Duration.seconds(7)),
              Effect.flatMap(Effect.exit(Lease.timeToLive(second.id)), (exit) =>
                Effect.map(Effect.exit(second.isLost), (isLost) => {
                  during = exit
                  lost = isLost
                }))
            ).pipe(Effect.provide(context))
          )
        )
        const second = yield* Lease.make("3 seconds").pipe(Scope.extend(scope))
        yield* Scope.close(scope, Exit.void)
        expect(during).toMatchObject({ _tag: "Success", value: { id: second.id } })
        expect(lost).toMatchObject({ _tag: "Success", value: false })
        expect((yield* Lease.leases()).includes(second.id)).toBe(false)
        expect(yield* Effect.flip(second.lost)).toMatchObject({ _tag: "LeaseLost", reason: "revoked" })
      }),
    30_000
  )

  it.effect(
    "leases held one after another keep the one stream: it stays open a while after the last goes",
    () =>
      Effect.gen(function*() {
        const before = yield* keepAliveStreams
        for (let i = 0; i < 5; i++) {
          // each is kept alive at least once, on the stream, before it goes
          yield* Effect.scoped(
            Effect.zipRight(Lease.make("3 seconds", { interval: "100 millis" }), Effect.sleep("300 millis"))
          )
        }
        expect((yield* keepAliveStreams) - before).toBeLessThanOrEqual(1)
      }),
    30_000
  )

  it.effect(
    "the stream closes once no lease was kept alive for the linger time (10 s), not at each lease's end",
    () =>
      Effect.gen(function*() {
        yield* Effect.scoped(
          Effect.zipRight(Lease.make("3 seconds", { interval: "100 millis" }), Effect.sleep("300 millis"))
        )
        const ended = yield* keepAliveStreamsEnded
        // a lease that comes and goes within the linger time keeps the stream
        yield* Effect.scoped(
          Effect.zipRight(Lease.make("3 seconds", { interval: "100 millis" }), Effect.sleep("300 millis"))
        )
        expect(yield* keepAliveStreamsEnded).toBe(ended)
        let waited = 0
        while ((yield* keepAliveStreamsEnded) === ended && waited < 20_000) {
          yield* Effect.sleep("200 millis")
          waited += 200
        }
        expect(yield* keepAliveStreamsEnded).toBe(ended + 1)
      }),
    40_000
  )

  it.effect("a lease revoked behind its holder's back is reported lost as expired", () =>
    Effect.gen(function*() {
      const grant = yield* Lease.grant("30 seconds")
      yield* Effect.scoped(Effect.gen(function*() {
        const held = yield* Lease.keepAlive(grant.id, { interval: "200 millis" })
        yield* Lease.revoke(grant.id)
        const lost = yield* Effect.flip(held.lost)
        expect(lost).toMatchObject({ _tag: "LeaseLost", leaseId: grant.id, reason: "expired" })
        expect(yield* held.isLost).toBe(true)
      }))
    }))

  it.effect("guard interrupts the work and fails with LeaseLost when the lease goes", () =>
    Effect.gen(function*() {
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lease.make("30 seconds", { interval: "200 millis" })
        yield* Effect.fork(Effect.delay(Lease.revoke(lease.id), Duration.millis(300)))
        return yield* Effect.flip(lease.guard(Effect.never))
      }))
      expect(result._tag).toBe("LeaseLost")
      const kept = yield* Lease.withLease("10 seconds", (lease) => Effect.succeed(lease.ttl))
      expect(kept).toBe(10)
    }))

  it.effect("every guard of a lost lease fails with LeaseLost: those waiting, their work interrupted, and later ones", () =>
    Effect.gen(function*() {
      const grant = yield* Lease.grant("30 seconds")
      yield* Effect.scoped(Effect.gen(function*() {
        const held = yield* Lease.keepAlive(grant.id, { interval: "200 millis" })
        // work that ends first keeps its value and its failure
        expect(yield* held.guard(Effect.succeed(1))).toBe(1)
        expect(yield* Effect.flip(held.guard(Effect.fail("boom" as const)))).toBe("boom")
        const interrupted = yield* Deferred.make<void>()
        const waiting = yield* Effect.fork(Effect.all([
          Effect.flip(held.guard(Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined)))),
          Effect.flip(held.guard(Effect.never))
        ], { concurrency: "unbounded" }))
        yield* Lease.revoke(grant.id)
        const [first, second] = yield* Fiber.join(waiting)
        expect(first).toMatchObject({ _tag: "LeaseLost", leaseId: grant.id })
        expect(second).toMatchObject({ _tag: "LeaseLost", leaseId: grant.id })
        yield* Deferred.await(interrupted)
        // a guard started after the loss does not let its work finish
        const ran = yield* Ref.make(false)
        const late = yield* Effect.flip(held.guard(Effect.zipRight(Effect.sleep("1 second"), Ref.set(ran, true))))
        expect(late).toMatchObject({ _tag: "LeaseLost", leaseId: grant.id })
        expect(yield* Ref.get(ran)).toBe(false)
      }))
    }))
})

layer(withServer(), { excludeTestServices: true })("Lease with its etcd stopped", (it) => {
  it.effect("a lease whose etcd is stopped longer than its TTL reports itself lost", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const lost = yield* Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lease.make("2 seconds", { revokeTimeout: "1 second" })
        yield* server.kill(0, "SIGKILL")
        return yield* Effect.flip(lease.lost)
      }))
      expect(lost).toMatchObject({ _tag: "LeaseLost", reason: "keepalive-timeout" })
      yield* server.start(0)
    }), 30_000)
})
