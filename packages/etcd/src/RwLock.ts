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
 * const readConfig = RwLock.withRead("locks/config", Kv.getPrefix("config/"))
 * const writeConfig = RwLock.withWrite("locks/config", Kv.put("config/mode", "b"), { timeout: "5 seconds" })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Queue from "./internal/queue.js"
import * as Scoped from "./internal/scoped.js"
import * as Validate from "./internal/validate.js"
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

const acquire = (
  name: string,
  mode: Mode,
  options: Lock.LockOptions | undefined
): Effect.Effect<RwLock, EtcdError.LockError, Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    yield* Validate.check(() => Validate.queueOptions(name, options))
    if (name.length === 0) return yield* new EtcdError.EmptyKey({})
    // a reader waits for the older writers only; a writer for every older key
    const waitOn = KeyRange.prefix(mode === "read" ? `${name}/write/` : `${name}/`)
    const place = yield* Queue.attempt(
      Queue.enqueue(`${name}/${mode}/`, "", waitOn, options),
      options?.timeout,
      (timeout) => new EtcdError.LockTimeout({ lockName: name, timeout })
    )
    return { name, mode, ...Queue.held(place) } satisfies RwLock
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

/**
 * Runs `effect` holding the lock `name` for reading, then releases it; `effect` is
 * interrupted, and this fails with `LeaseLost`, if the lock is lost meanwhile.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRead = <A, E, R>(
  name: string,
  effect: Effect.Effect<A, E, R>,
  options?: Lock.LockOptions
): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>> =>
  Scoped.scoped(Effect.flatMap(read(name, options), (lock) => lock.guard(effect)))

/**
 * Runs `effect` holding the lock `name` for writing, then releases it; `effect` is
 * interrupted, and this fails with `LeaseLost`, if the lock is lost meanwhile.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withWrite = <A, E, R>(
  name: string,
  effect: Effect.Effect<A, E, R>,
  options?: Lock.LockOptions
): Effect.Effect<A, E | EtcdError.LockError, Etcd | Exclude<R, Scope.Scope>> =>
  Scoped.scoped(Effect.flatMap(write(name, options), (lock) => lock.guard(effect)))
