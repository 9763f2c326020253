/**
 * Distributed locks as scoped resources (etcetra's `with_lock`), built only on the
 * public `Kv`, `Txn`, `Watch` and `Lease` modules, the way Go's `concurrency.Mutex` is.
 *
 * - Each attempt holds its own lease, kept alive while waiting and while held, and puts
 *   the key `<name>/<lease ID in hex>` attached to it. The holder is the key with the
 *   lowest create revision. On a shared `Session` (option `session`), attempts put their
 *   keys on the session's lease instead: no lease grant or revoke per lock.
 * - Fair and without a thundering herd: a waiter watches only the newest key older than
 *   its own, and looks again when that key goes, until no older key is left.
 * - Nothing is left behind: releasing, failing, timing out (`LockTimeout`) or being
 *   interrupted while waiting or holding deletes the key and revokes the lease (on a
 *   session, deletes the key; the session's lease stays).
 * - The held lock exposes its key and create revision (a fencing token, with a ready
 *   `Compare` for "still the owner" guards in a txn) and its lease's loss signal.
 *
 * etcetra's `ttl` released a lock that many seconds after acquisition even while its
 * holder still ran, without telling it. Here `ttl` is the lease's TTL: it bounds how
 * long a crashed holder blocks others, while a live holder keeps the lock and is told
 * (`lost`, `guard`) if it ever cannot.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Kv, Lock } from "effect-etcd"
 *
 * const increment = Effect.gen(function*() {
 *   const current = yield* Kv.get("counter")
 *   const next = Number(current._tag === "Some" ? current.value : "0") + 1
 *   yield* Kv.put("counter", String(next))
 *   return next
 * }).pipe(Lock.withLock("locks/counter", { timeout: "5 seconds" }))
 * ```
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Compare from "./Compare.js"
import { type DurationWithUnit, type Etcd, Etcd as EtcdTag } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Metrics from "./internal/base/metrics.js"
import * as Printable from "./internal/base/printable.js"
import * as Scoped from "./internal/base/scoped.js"
import * as Validate from "./internal/data/validate.js"
import * as Queue from "./internal/recipes/queue.js"
import * as Protocol from "./internal/rpc/protocol.js"
import * as KeyRange from "./KeyRange.js"
import type * as Lease from "./Lease.js"
import type { Session } from "./Session.js"

/**
 * Options of a lock.
 *
 * @since 0.1.0
 * @category models
 */
export interface LockOptions {
  /** Give up with `LockTimeout` after waiting this long; wait forever by default (or with `Duration.infinity`). */
  readonly timeout?: DurationWithUnit | undefined
  /**
   * Hold the lock on this session's lease instead of a lease of its own: acquiring and
   * releasing then cost no lease grant or revoke, and the lock is lost when the session is.
   * By default, the `Session` of the context, when one is provided (`Session.layer`) and
   * no `ttl` is given.
   */
  readonly session?: Session | undefined
  /**
   * The TTL of the lock's own lease: how long a crashed holder blocks others (default 60
   * seconds). Not used with a `session`, whose TTL counts. Giving it asks for a lease of
   * the lock's own even when the context provides a `Session`.
   */
  readonly ttl?: Lease.Ttl | undefined
  /**
   * The bound of the release, retries included (default 5 seconds): revoking the lock's
   * own lease, which deletes its key, or on a session, deleting the key. A release that
   * cannot be done in time is logged; the key then goes when the lease, no longer kept
   * alive, expires after `ttl`, or on a session, when the session ends.
   */
  readonly releaseTimeout?: DurationWithUnit | undefined
}

/**
 * A held lock.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lock {
  /** The lock's name, as given. */
  readonly name: string
  /** This holder's key, `<name>/<lease ID in hex>` (on a session, followed by `-<sequence number>`). */
  readonly key: string
  /** The create revision of the key: increases with every new holder, so it fences writes. */
  readonly revision: bigint
  /** The lease the key is attached to (the session's, on a session). */
  readonly lease: Lease.Lease
  /**
   * "Still the owner": a compare that holds only while this key is the one this holder
   * created. Put it in a txn to make a write conditional on holding the lock.
   */
  readonly isOwner: Compare.Compare
  /** Fails with `LeaseLost` as soon as the lock can no longer be trusted to be held. */
  readonly lost: Effect.Effect<never, EtcdError.LeaseLost>
  /** Runs an effect, interrupting it and failing with `LeaseLost` if the lock is lost first. */
  readonly guard: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | EtcdError.LeaseLost, R>
}

/**
 * The default TTL of a lock's lease.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTtl: Duration.Duration = Queue.defaultTtl

const withinLock = EtcdError.within("lock")

/** A held lock prints its data (name, key, revision, lease), never throwing on its bigints. */
const LockProto = Printable.Proto("Lock")

const acquire = (
  name: string,
  options: LockOptions | undefined
): Effect.Effect<Lock, EtcdError.LockError, Etcd | Scope.Scope> =>
  Effect.map(
    Queue.enqueue(`${name}/`, "", KeyRange.prefix(`${name}/`), options),
    (place): Lock => Printable.make(LockProto, { name, ...Queue.held(place) })
  ).pipe(withinLock)

/**
 * Acquires a lock and holds it until the scope closes (etcetra's `with_lock`). Waits
 * until acquired, or fails with `LockTimeout` after `timeout`. Whatever happens —
 * release, failure, timeout, interruption while waiting or holding — the attempt's key
 * and lease are removed from the server.
 *
 * Bounds: `timeout` bounds the whole acquisition: `LockTimeout` comes back about
 * `timeout` after the call, and the attempt's cleanup then goes on in the background
 * (within `releaseTimeout`); closing the caller's scope right after does not wait for
 * it either, so on a stalled cluster the caller is back after `timeout`, not after
 * `timeout` plus `releaseTimeout`. Releasing a held lock when the scope closes, and the
 * cleanup after a failure or an interruption, take at most `releaseTimeout`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lock } from "effect-etcd"
 *
 * const job = Effect.scoped(Effect.gen(function*() {
 *   const lock = yield* Lock.make("locks/nightly-report", { timeout: "30 seconds", ttl: "15 seconds" })
 *   yield* Effect.log(`holding ${lock.key} with fencing token ${lock.revision}`)
 *   yield* lock.guard(Effect.sleep("1 second"))
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  name: string,
  options?: LockOptions
): Effect.Effect<Lock, EtcdError.LockError, Etcd | Scope.Scope> =>
  Queue.withDefaultSession(options, (options) => checked(name, options, true))

/**
 * `make`, the acquisition in a scope of its own (`Queue.attempt`) when `inOwnScope`; without
 * it, a failed or interrupted acquisition is cleaned up when the caller's scope closes,
 * which `withLock`, whose scope holds nothing else, does at once.
 */
const checked = (
  name: string,
  options: LockOptions | undefined,
  inOwnScope: boolean
): Effect.Effect<Lock, EtcdError.LockError, Etcd | Scope.Scope> =>
  validated(name, options, () =>
    // a LockTimeout returns before the cleanup is done: that needs a scope of its own
    measured(
      "lock",
      !inOwnScope && options?.timeout === undefined ? acquire(name, options) : Queue.attempt(
        acquire(name, options),
        options?.timeout,
        (timeout) => new EtcdError.LockTimeout({ lockName: name, timeout })
      )
    ))

/** The wait of a recipe, measured when the client records metrics (`EtcdMetrics`). */
const measured = <A, E, R>(recipe: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Etcd> =>
  Effect.flatMap(EtcdTag, (etcd) => Metrics.measureWait(Protocol.of(etcd).metrics, recipe, effect))

/** Checks the name and options when the effect runs, then runs `f()` in the span `Lock.make`. */
const validated = <A, E, R>(
  name: string,
  options: LockOptions | undefined,
  f: () => Effect.Effect<A, E, R>
): Effect.Effect<A, E | EtcdError.LockError, R> =>
  Queue.traced(
    Effect.suspend((): Effect.Effect<A, E | EtcdError.LockError, R> => {
      const problem = Validate.problemOf(() => Validate.queueOptions(name, options))
      if (problem !== undefined) return Effect.fail(problem)
      if (name.length === 0) return Effect.fail(new EtcdError.EmptyKey({}))
      return f()
    }),
    "Lock.make",
    { "etcd.lock": name }
  )

/**
 * Runs `effect` while holding the lock `name`, then releases it. `effect` is
 * interrupted, and this fails with `LeaseLost`, if the lock's lease is lost meanwhile.
 *
 * Dual, the effect first as in Effect's own combinators: `Lock.withLock(effect, name,
 * options)`, or piped, `effect.pipe(Lock.withLock(name, options))`. The earlier order
 * `Lock.withLock(name, effect, options)` still works.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lock } from "effect-etcd"
 *
 * const nightly = Effect.log("building the report").pipe(
 *   Lock.withLock("locks/nightly-report", { timeout: "5 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLock: {
  (name: string, options?: LockOptions): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    name: string,
    options?: LockOptions
  ): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>>
  /** The earlier order, kept working. */
  <A, E, R>(
    name: string,
    effect: Effect.Effect<A, E, R>,
    options?: LockOptions
  ): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>>
} = function() {
  // a name is never an effect: where the effect is tells the form apart
  const args = arguments
  if (Effect.isEffect(args[0])) return holding(args[1], args[0], args[2])
  if (Effect.isEffect(args[1])) return holding(args[0], args[1], args[2])
  return (effect: Effect.Effect<any, any, any>) => holding(args[0], effect, args[1])
} as any

/**
 * `withLock`. On a session, the lock is taken and released with no scope of its own
 * (`Queue.usingPlace`), and `effect` gets a scope only for itself: an uncontended lock then
 * costs a third fewer Effect steps.
 */
const holding = <A, E, R>(
  name: string,
  effect: Effect.Effect<A, E, R>,
  options: LockOptions | undefined
): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>> =>
  Queue.withDefaultSession(options, (options) => holdingWith(name, effect, options))

const holdingWith = <A, E, R>(
  name: string,
  effect: Effect.Effect<A, E, R>,
  options: LockOptions | undefined
): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>> => {
  const session = options?.session
  if (session === undefined) {
    return Scoped.scoped(Effect.flatMap(checked(name, options, false), (lock) => lock.guard(effect)))
  }
  return validated(name, options, () => {
    const prefix = `${name}/`
    return Queue.usingPlace(
      prefix,
      "",
      KeyRange.prefix(prefix),
      session,
      {
        releaseTimeout: options?.releaseTimeout,
        timeout: options?.timeout,
        onTimeout: (timeout): EtcdError.LockError => new EtcdError.LockTimeout({ lockName: name, timeout })
      },
      withinLock,
      (place) => Queue.held(place).guard(Scoped.scoped(effect))
    )
  })
}
