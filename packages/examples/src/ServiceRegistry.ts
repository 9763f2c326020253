/**
 * A service registry: each instance registers `<prefix><name> = <address>` on a lease of its
 * own, kept alive for as long as the instance's scope is open. Peers follow the registry with
 * one read and a watch that starts at the revision after it, so no change in between is lost.
 *
 * - An instance that stops cleanly (its scope closes) revokes its lease: its key goes at once.
 * - An instance that crashes stops sending keepalives: its key goes when the lease's TTL runs out.
 *
 * `pnpm example registry` runs `program` against a throwaway etcd.
 */
import type { Scope } from "effect"
import { Console, Effect, Fiber, Stream, SubscriptionRef } from "effect"
import type { Etcd, EtcdError } from "effect-etcd"
import { KeyRange, Kv, Lease, Watch } from "effect-etcd"

/** The instances registered under `prefix`, by name. */
export type Peers = ReadonlyMap<string, string>

/**
 * Registers an instance for the life of the scope: a lease kept alive by a fiber, and the key
 * attached to it. Closing the scope revokes the lease, which deletes the key.
 */
export const register = (
  prefix: string,
  name: string,
  address: string,
  ttl: Lease.Ttl = "5 seconds"
): Effect.Effect<Lease.Lease, EtcdError.EtcdError, Etcd.Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    const lease = yield* Lease.make(ttl)
    yield* Kv.put(`${prefix}${name}`, address, { lease })
    return lease
  })

/**
 * The registry as a Stream of views: the current peers first, then the peers after each change.
 * The watch starts at the revision after the read, so nothing that happens in between is missed.
 */
export const peers = (prefix: string): Stream.Stream<Peers, EtcdError.EtcdError, Etcd.Etcd> =>
  Stream.unwrap(Effect.gen(function*() {
    const snapshot = yield* Kv.range(KeyRange.prefix(prefix))
    const initial: Peers = new Map(snapshot.kvs.map((kv) => [kv.key.slice(prefix.length), kv.value]))
    return Watch.watchPrefix(prefix, { startRevision: snapshot.revision + 1n }).pipe(
      Stream.scan(initial, (current, event) => {
        const next = new Map(current)
        const name = event.key.slice(prefix.length)
        if (event.type === "put") next.set(name, event.value)
        else next.delete(name)
        return next
      })
    )
  }))

const describe = (view: Peers): string =>
  view.size === 0 ? "(none)" : [...view].map(([name, address]) => `${name}@${address}`).join(", ")

/**
 * Three instances come and go while a peer follows the registry. Returns every view the peer
 * saw, as sorted lists of names.
 */
export const program = (prefix = "services/api/"): Effect.Effect<
  ReadonlyArray<ReadonlyArray<string>>,
  EtcdError.EtcdError,
  Etcd.Etcd
> =>
  Effect.scoped(Effect.gen(function*() {
    const current = yield* SubscriptionRef.make<Peers | undefined>(undefined)
    const seen: Array<ReadonlyArray<string>> = []
    /** Waits until the peer's view satisfies `predicate`. */
    const until = (predicate: (view: Peers) => boolean) =>
      current.changes.pipe(
        Stream.filter((view) => view !== undefined && predicate(view)),
        Stream.take(1),
        Stream.runDrain
      )

    yield* Console.log(`following the registry under ${prefix}`)
    const follower = yield* peers(prefix).pipe(
      Stream.runForEach((view) =>
        Console.log(`   peers: ${describe(view)}`).pipe(
          Effect.zipRight(Effect.sync(() => seen.push([...view.keys()].sort()))),
          Effect.zipRight(SubscriptionRef.set(current, view))
        )
      ),
      Effect.forkScoped
    )
    yield* until(() => true)

    // an instance is a fiber holding its registration; interrupting it closes its scope
    const instance = (name: string, address: string) =>
      Effect.forkScoped(Effect.scoped(Effect.zipRight(register(prefix, name, address), Effect.never)))

    yield* Console.log("api-1 starts")
    const api1 = yield* instance("api-1", "10.0.0.1:8080")
    yield* until((view) => view.has("api-1"))

    yield* Console.log("api-2 starts")
    const api2 = yield* instance("api-2", "10.0.0.2:8080")
    yield* until((view) => view.has("api-2"))

    // api-3 will crash: its lease is kept alive by a fiber that, once gone, leaves the lease to expire
    yield* Console.log("api-3 starts, with a 2 s lease")
    const api3Lease = yield* Lease.grant("2 seconds")
    yield* Kv.put(`${prefix}api-3`, "10.0.0.3:8080", { lease: api3Lease.id })
    const api3 = yield* Effect.forkScoped(Effect.scoped(Effect.zipRight(Lease.keepAlive(api3Lease.id), Effect.never)))
    yield* until((view) => view.has("api-3"))

    yield* Console.log("api-2 stops cleanly: its lease is revoked, its key goes at once")
    yield* Fiber.interrupt(api2)
    yield* until((view) => !view.has("api-2"))

    yield* Console.log("api-3 crashes: no more keepalives, its key goes when the 2 s TTL runs out")
    yield* Fiber.interrupt(api3)
    yield* until((view) => !view.has("api-3"))

    yield* Console.log("api-1 stops cleanly")
    yield* Fiber.interrupt(api1)
    yield* until((view) => view.size === 0)

    yield* Fiber.interrupt(follower)
    return seen
  }))
