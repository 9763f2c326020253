/**
 * Sessions: one lease held for as long as a scope is open and kept alive meanwhile,
 * shared by the locks and elections made on it (clientv3's `concurrency.Session`).
 *
 * Without a session, each lock or campaign grants, keeps alive and revokes a lease of its
 * own. On a session, acquiring costs no lease grant and releasing no revoke: a lock is one
 * key attached to the session's lease, deleted on release. When the session's lease is
 * lost (it expired, or no keepalive was acknowledged within its TTL), every lock and
 * leadership held on it is told at once through its `lost` and `guard`, and their keys go
 * with the lease on the server. Closing the session's scope revokes the lease, which
 * deletes every key still attached to it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lock, Session } from "effect-etcd"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const session = yield* Session.make({ ttl: "10 seconds" })
 *   for (let i = 0; i < 100; i++) {
 *     // each acquisition is one txn, each release one delete: no lease calls
 *     yield* Effect.log(`round ${i}`).pipe(Lock.withLock("locks/report", { session }))
 *   }
 * }))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Etcd } from "./Etcd.js"
import type * as EtcdError from "./EtcdError.js"
import * as Printable from "./internal/base/printable.js"
import * as Lease from "./Lease.js"

/** A session prints its lease (ID and TTL), never throwing on its bigint. */
const SessionProto = Printable.Proto("Session")

/**
 * Options of a session.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionOptions {
  /**
   * The TTL of the session's lease (default 60 seconds): how long the keys of a crashed
   * holder block others.
   */
  readonly ttl?: Lease.Ttl | undefined
  /** How often the lease is refreshed (TTL/3 by default). */
  readonly interval?: Duration.DurationInput | undefined
  /** The bound of the revoke when the session's scope closes (default 5 seconds). */
  readonly revokeTimeout?: Duration.DurationInput | undefined
}

/**
 * A session: a lease kept alive for the life of a scope.
 *
 * @since 0.1.0
 * @category models
 */
export interface Session {
  /** The session's lease: attach keys to it to have them live as long as the session. */
  readonly lease: Lease.Lease
  /** Fails with `LeaseLost` as soon as the session's lease is lost, and never succeeds. */
  readonly lost: Effect.Effect<never, EtcdError.LeaseLost>
  /** Whether the session's lease was lost. */
  readonly isLost: Effect.Effect<boolean>
  /** Runs an effect, interrupting it and failing with `LeaseLost` if the session is lost first. */
  readonly guard: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | EtcdError.LeaseLost, R>
}

/**
 * The session a service shares, provided by {@link layer}. Locks (`Lock`, `RwLock`) and
 * campaigns (`Election`) made where it is provided hold their keys on its lease, unless
 * their options name a `session` or a `ttl` of their own.
 *
 * @since 0.1.0
 * @category tags
 */
export const Session: Context.Tag<Session, Session> = Context.GenericTag<Session>("effect-etcd/Session")

/**
 * The default TTL of a session's lease, as in clientv3.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTtl: Duration.Duration = Duration.seconds(60)

/**
 * Opens a session for the life of the scope: grants its lease, keeps it alive from the
 * client's shared keepalive stream, and revokes it (deleting every key still attached)
 * when the scope closes, within `revokeTimeout`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: SessionOptions
): Effect.Effect<Session, EtcdError.LeaseGrantError, Etcd | Scope.Scope> =>
  Effect.map(
    Lease.make(options?.ttl ?? defaultTtl, { interval: options?.interval, revokeTimeout: options?.revokeTimeout }),
    (lease): Session =>
      Printable.make(SessionProto, { lease, lost: lease.lost, isLost: lease.isLost, guard: lease.guard })
  ).pipe(Effect.withSpan("Session.make", { captureStackTrace: false }))

/**
 * A layer holding one session for the life of the layer, for services that share it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lock, Session } from "effect-etcd"
 *
 * // the lock is held on the session of the context: no lease of its own
 * const job = Effect.log("working").pipe(Lock.withLock("locks/job"))
 * const runnable = job.pipe(Effect.provide(Session.layer({ ttl: 10 })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: SessionOptions): Layer.Layer<Session, EtcdError.LeaseGrantError, Etcd> =>
  Layer.scoped(Session, make(options))
