/**
 * Readers–writer locks (etcd's `contrib/recipes/rwmutex.go`): many readers at once, or
 * one writer alone, built only on the public `Kv`, `Txn`, `Watch` and `Lease` modules,
 * with the guarantees of `Lock`.
 *
 * - A reader puts `<name>/read/<lease ID in hex>`, a writer `<name>/write/<lease ID in
 *   hex>` (on a session, followed by `-<sequence number>`). A reader holds the lock when
 *   no writer's key is older than its own; a writer when no key at all is older.
 * - Fair, and writers are not starved: requests are served in the order they arrived, so
 *   a reader that comes after a waiting writer waits for that writer.
 * - Scoped, with `LockTimeout` and the same cleanup as `Lock`: releasing, failing, timing
 *   out or being interrupted leaves no key behind. The held lock exposes its key, its
 *   create revision (a fencing token) with a ready `isOwner` compare, and `lost`/`guard`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Kv, RwLock } from "effect-etcd"
 *
 * const readConfig = Kv.getPrefix("config/").pipe(RwLock.withRead("locks/config"))
 * const writeConfig = Kv.put("config/mode", "b").pipe(RwLock.withWrite("locks/config", { timeout: "5 seconds" }))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type Etcd, Etcd as EtcdTag } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Metrics from "./internal/base/metrics.js"
import * as Printable from "./internal/base/printable.js"
import * as Scoped from "./internal/base/scoped.js"
import * as Validate from "./internal/data/validate.js"
import * as Queue from "./internal/recipes/queue.js"
import * as Protocol from "./internal/rpc/protocol.js"
import * as KeyRange from "./KeyRange.js"
import type * as Lock from "./Lock.js"

/**
 * Whether a lock is held for reading (shared) or writing (exclusive).
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "read" | "write"

/**
 * A held readers–writer lock: a `Lock` with its mode.
 *
 * @since 0.1.0
 * @category models
 */
export interface RwLock extends Lock.Lock {
  readonly mode: Mode
}

/** A held lock prints its data (name, mode, key, revision, lease), never throwing on its bigints. */
const RwLockProto = Printable.Proto("RwLock")

const acquire = (
  name: string,
  mode: Mode,
  options: Lock.LockOptions | undefined
): Effect.Effect<RwLock, EtcdError.LockError, Etcd | Scope.Scope> =>
  Queue.withDefaultSession(options, (options) => acquireWith(name, mode, options))

const acquireWith = (
  name: string,
  mode: Mode,
  options: Lock.LockOptions | undefined
): Effect.Effect<RwLock, EtcdError.LockError, Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    yield* Validate.check(() => Validate.queueOptions(name, options))
    if (name.length === 0) return yield* new EtcdError.EmptyKey({})
    // a reader waits for the older writers only; a writer for every older key
    const waitOn = KeyRange.prefix(mode === "read" ? `${name}/write/` : `${name}/`)
    const etcd = yield* EtcdTag
    const place = yield* Metrics.measureWait(
      Protocol.of(etcd).metrics,
      "rwlock",
      Queue.attempt(
        Queue.enqueue(`${name}/${mode}/`, "", waitOn, options),
        options?.timeout,
        (timeout) => new EtcdError.LockTimeout({ lockName: name, timeout })
      )
    )
    return Printable.make(RwLockProto, { name, mode, ...Queue.held(place) } satisfies RwLock)
  }).pipe(
    EtcdError.within("lock"),
    Effect.withSpan("RwLock.acquire", {
      attributes: { "etcd.lock": name, "etcd.lock.mode": mode },
      captureStackTrace: false
    })
  )

/**
 * Acquires the lock `name` for reading and holds it until the scope closes: other
 * readers may hold it at the same time, no writer can.
 *
 * @since 0.1.0
 * @category constructors
 */
export const read = (
  name: string,
  options?: Lock.LockOptions
): Effect.Effect<RwLock, EtcdError.LockError, Etcd | Scope.Scope> => acquire(name, "read", options)

/**
 * Acquires the lock `name` for writing and holds it until the scope closes: nobody
 * else, reader or writer, holds it meanwhile.
 *
 * @since 0.1.0
 * @category constructors
 */
export const write = (
  name: string,
  options?: Lock.LockOptions
): Effect.Effect<RwLock, EtcdError.LockError, Etcd | Scope.Scope> => acquire(name, "write", options)

type WithMode = {
  (name: string, options?: Lock.LockOptions): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    name: string,
    options?: Lock.LockOptions
  ): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>>
  /** The earlier order, kept working. */
  <A, E, R>(
    name: string,
    effect: Effect.Effect<A, E, R>,
    options?: Lock.LockOptions
  ): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>>
}

/** `withRead` or `withWrite`: dual, and the earlier order `(name, effect, options)` still works. */
const withMode = (mode: Mode): WithMode =>
  function() {
    // a name is never an effect: where the effect is tells the form apart
    const args = arguments
    const holding = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>, options: Lock.LockOptions | undefined) =>
      Scoped.scoped(Effect.flatMap(acquire(name, mode, options), (lock) => lock.guard(effect)))
    if (Effect.isEffect(args[0])) return holding(args[1], args[0], args[2])
    if (Effect.isEffect(args[1])) return holding(args[0], args[1], args[2])
    return (effect: Effect.Effect<any, any, any>) => holding(args[0], effect, args[1])
  } as any

/**
 * Runs `effect` holding the lock `name` for reading, then releases it; `effect` is
 * interrupted, and this fails with `LeaseLost`, if the lock is lost meanwhile.
 *
 * Dual: `RwLock.withRead(effect, name, options)`, or piped,
 * `effect.pipe(RwLock.withRead(name, options))`; the earlier order
 * `RwLock.withRead(name, effect, options)` still works.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Kv, RwLock } from "effect-etcd"
 *
 * const readConfig = Kv.getPrefix("config/").pipe(RwLock.withRead("locks/config", { timeout: "5 seconds" }))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRead: WithMode = withMode("read")

/**
 * Runs `effect` holding the lock `name` for writing, then releases it; `effect` is
 * interrupted, and this fails with `LeaseLost`, if the lock is lost meanwhile.
 *
 * Dual: `RwLock.withWrite(effect, name, options)`, or piped,
 * `effect.pipe(RwLock.withWrite(name, options))`; the earlier order
 * `RwLock.withWrite(name, effect, options)` still works.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withWrite: WithMode = withMode("write")
