import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Option, Ref, Scope, Stream } from "effect"
import { Etcd, EtcdError, KeyRange, Kv, Lease, Lock, Op, Txn, Watch } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

/** A second client of the test's server, as a layer of its own. */
const clientLayer = Effect.map(
  EtcdServer.EtcdServer,
  (server) => Layer.fresh(Etcd.layer({ endpoints: server.endpoints }))
)

/** A client built in a scope that is closed before it is returned. */
const closedClient = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  const scope = yield* Scope.make()
  const etcd = yield* Scope.extend(Etcd.make({ endpoints: server.endpoints }), scope)
  yield* Scope.close(scope, Exit.void)
  return etcd
})

/** Runs `effect` and returns how it ended, failing the test on a hang. */
const outcome = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    // a hang guard, not a timing assertion
    Effect.timeoutFail({ duration: Duration.seconds(20), onTimeout: () => "hung" as const }),
    Effect.exit
  )

const expectClientClosed = (name: string, exit: Exit.Exit<unknown, unknown>) => {
  expect(Exit.isFailure(exit), name).toBe(true)
  if (Exit.isFailure(exit)) {
    expect(Cause.isDie(exit.cause), `${name}: ${Cause.pretty(exit.cause)}`).toBe(false)
    const error = Option.getOrThrow(Cause.failureOption(exit.cause)) as { _tag: string; message: string }
    expect(error._tag, `${name}: ${error.message}`).toBe("ClientClosed")
    expect(error.message, name).toContain("closed")
    // no empty field in the message ("at : ...", "with : ...")
    expect(error.message, name).not.toMatch(/ (at|with) :/)
  }
}

layer(withServer(), { excludeTestServices: true })("A closed client", (it) => {
  it.effect("every call fails at once with ClientClosed; nothing dies or hangs", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("closed")
      const etcd = yield* closedClient
      const calls: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown, Etcd.Etcd | Scope.Scope>]> = [
        ["Kv.get", Kv.get(`${p}k`)],
        ["Kv.get serializable", Kv.get(`${p}k`, { serializable: true })],
        ["Kv.get with a timeout", Kv.get(`${p}k`, { timeout: "1 second" })],
        ["Kv.getPrefix", Kv.getPrefix(p)],
        ["Kv.put", Kv.put(`${p}k`, "v")],
        ["Kv.delete", Kv.delete(`${p}k`)],
        ["Kv.compact", Kv.compact(1n)],
        ["Kv.stream", Stream.runDrain(Kv.stream(KeyRange.prefix(p)))],
        ["Txn.txn", Txn.txn([Op.get(`${p}k`), Op.put(`${p}k`, "v")])],
        ["Lease.grant", Lease.grant("10 seconds")],
        ["Lease.revoke", Lease.revoke(1n)],
        ["Lease.timeToLive", Lease.timeToLive(1n)],
        ["Lease.leases", Lease.leases()],
        ["Lease.keepAliveOnce", Lease.keepAliveOnce(1n)],
        ["Lease.keepAlive", Lease.keepAlive(1n)],
        ["Lease.make", Lease.make("10 seconds")],
        ["Lock.make", Lock.make(`${p}lock`, { timeout: "5 seconds" })],
        ["Watch.subscribe", Watch.subscribe(`${p}k`)],
        ["Watch.watch", Stream.runDrain(Watch.watch(`${p}k`))],
        ["Etcd.addFinalizer", Etcd.addFinalizer(Effect.void)],
        ["a namespaced Kv.get", Kv.get("k").pipe(Etcd.withNamespace(p))]
      ]
      for (const [name, call] of calls) {
        const exit = yield* outcome(Effect.scoped(call).pipe(Effect.provideService(Etcd.Etcd, etcd)))
        expectClientClosed(name, exit)
      }
      // and the server never saw the write
      expect(yield* Kv.count(`${p}k`)).toBe(0)
    }))

  it.effect("watch streams open when the client closes end with ClientClosed", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("closing-watch")
      const server = yield* EtcdServer.EtcdServer
      const clientScope = yield* Scope.make()
      const etcd = yield* Scope.extend(Etcd.make({ endpoints: server.endpoints }), clientScope)
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const watcher = yield* Watch.subscribe(`${p}k`)
        yield* Kv.put(`${p}k`, "before")
        yield* Scope.close(clientScope, Exit.void)
        return yield* outcome(Stream.runCollect(watcher.events))
      })).pipe(Effect.provideService(Etcd.Etcd, etcd))
      expectClientClosed("the open watch", exit)
    }))

  it.effect("a lease made inside a scope the layer closes before is revoked, and nothing dies", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("order-lease")
      const layer = yield* clientLayer
      // the easy mistake: the layer is provided inside the scope, so it closes first
      const exit = yield* outcome(Effect.scoped(
        Effect.gen(function*() {
          const lease = yield* Lease.make("30 seconds")
          yield* Kv.put(`${p}k`, "v", { lease })
          return lease
        }).pipe(Effect.provide(layer))
      ))
      expect(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toBe(true)
      if (Exit.isFailure(exit)) return
      const id = exit.value.id
      // work still waiting on the lease is told it is gone, rather than waiting forever
      const lost = yield* outcome(exit.value.lost)
      expect(lost).toEqual(Exit.fail(new EtcdError.LeaseLost({ leaseId: id, reason: "revoked" })))
      // revoked on the server, not left to its 30 s TTL
      expect(yield* Effect.flip(Lease.timeToLive(id))).toMatchObject({ _tag: "LeaseNotFound" })
      expect(yield* Kv.count(`${p}k`)).toBe(0)
    }))

  it.effect("a lock held inside a scope the layer closes before is released, and nothing dies", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("order-lock")
      const layer = yield* clientLayer
      const exit = yield* outcome(Effect.scoped(
        Effect.gen(function*() {
          const lock = yield* Lock.make(`${p}lock`, { ttl: "30 seconds" })
          return { key: lock.key, lease: lock.lease.id }
        }).pipe(Effect.provide(layer))
      ))
      expect(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toBe(true)
      if (Exit.isSuccess(exit)) {
        expect(yield* Kv.count(exit.value.key)).toBe(0)
        expect(yield* Effect.flip(Lease.timeToLive(exit.value.lease))).toMatchObject({ _tag: "LeaseNotFound" })
      }
      // and the lock can be taken at once by someone else
      yield* Effect.scoped(Lock.make(`${p}lock`, { timeout: "5 seconds" }))
    }))

  it.effect("the usual order still works: the scope closes first, then the client; each release runs once", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("order-usual")
      const layer = yield* clientLayer
      const runs = yield* Ref.make(0)
      const id = yield* Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lease.make("30 seconds")
        yield* Kv.put(`${p}k`, "v", { lease })
        yield* Etcd.addFinalizer(Ref.update(runs, (n) => n + 1))
        return lease.id
      })).pipe(Effect.provide(layer))
      expect(yield* Ref.get(runs)).toBe(1)
      expect(yield* Effect.flip(Lease.timeToLive(id))).toMatchObject({ _tag: "LeaseNotFound" })
      // and the other way round: the client closes first, the scope later finds it done
      yield* Effect.scoped(
        Etcd.addFinalizer(Ref.update(runs, (n) => n + 1)).pipe(Effect.provide(layer))
      )
      expect(yield* Ref.get(runs)).toBe(2)
    }))

  it.effect("a client finalizer runs with its context: a namespaced lock key is deleted in its namespace", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("order-namespace")
      const layer = yield* clientLayer
      const exit = yield* outcome(Effect.scoped(
        Effect.gen(function*() {
          const lock = yield* Lock.make("lock", { ttl: "30 seconds" })
          return lock.key
        }).pipe(Etcd.withNamespace(p), Effect.provide(layer))
      ))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(yield* Kv.count(KeyRange.prefix(p))).toBe(0)
    }))
})
