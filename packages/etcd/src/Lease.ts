/**
 * Leases: time-limited grants that keys (and locks) can be attached to; when a lease
 * ends, its keys are deleted.
 *
 * The plain calls map etcetra's `grant_lease`, `revoke_lease` and `lease_keepalive`, plus
 * time-to-live, the list of leases and keepalive-once. {@link make} is the scoped form:
 * it grants the lease, keeps it alive from a fiber for as long as the scope is open
 * (all leases of a client share one keepalive stream), and revokes it when the scope
 * closes, whether normally, on failure or on interruption. The held lease tells its
 * holder at once when it is lost, so work that depends on it can stop first.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Kv, Lease } from "effect-etcd"
 *
 * const register = Effect.scoped(Effect.gen(function*() {
 *   const lease = yield* Lease.make("10 seconds")
 *   yield* Kv.put("services/api/node-1", "10.0.0.7:8080", { lease })
 *   // serve until interrupted, or stop with LeaseLost if the lease cannot be kept
 *   yield* lease.guard(Effect.never)
 * }))
 * ```
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Printable from "./internal/base/printable.js"
import * as Scoped from "./internal/base/scoped.js"
import { fromCount, fromInt64, toInt64, toText } from "./internal/data/codec.js"
import * as Validate from "./internal/data/validate.js"
import type { KeepAlive } from "./internal/streams/keepAliveHub.js"
import { methods } from "./internal/wire/proto/loader.js"

/**
 * A lease's TTL: a number of seconds (as etcd and etcetra count), or a duration such as
 * `"1500 millis"` or `Duration.minutes(1)`, rounded up to whole seconds.
 *
 * A plain number is seconds here, unlike `Duration.DurationInput` where it means milliseconds:
 * `Lease.grant(30)` grants 30 seconds, as `grant_lease(30)` does in etcetra.
 *
 * It must be above zero and at most etcd's maximum, 9,000,000,000 seconds; anything else
 * (NaN, Infinity, a negative number, a string that is no duration) fails with
 * `InvalidArgument` before anything is sent. The server raises a TTL below its minimum
 * (about 2 seconds by default) to that minimum.
 *
 * @since 0.1.0
 * @category models
 */
export type Ttl = number | Exclude<Duration.DurationInput, number>

/**
 * A granted lease.
 *
 * @since 0.1.0
 * @category models
 */
export interface Grant {
  readonly id: bigint
  /** The TTL the server granted, in seconds (it may raise a too-small TTL). */
  readonly ttl: number
}

/**
 * What the server knows of a lease.
 *
 * @since 0.1.0
 * @category models
 */
export interface TimeToLive {
  readonly id: bigint
  /** Seconds left. */
  readonly ttl: number
  /** The TTL it was granted with. */
  readonly grantedTtl: number
  /** The keys attached to it (when asked for). */
  readonly keys: ReadonlyArray<string>
  /** The same keys as bytes. */
  readonly keyBytes: ReadonlyArray<Uint8Array>
}

/**
 * A lease held for the life of a scope and kept alive meanwhile.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  readonly id: bigint
  /** The TTL granted, in seconds. */
  readonly ttl: number
  /**
   * Fails with `LeaseLost` as soon as the lease is lost, and never succeeds: race work
   * against it, or use {@link Lease.guard}.
   */
  readonly lost: Effect.Effect<never, EtcdError.LeaseLost>
  /** Whether the lease was lost. */
  readonly isLost: Effect.Effect<boolean>
  /** Runs an effect, interrupting it and failing with `LeaseLost` if the lease is lost first. */
  readonly guard: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | EtcdError.LeaseLost, R>
}

const seconds = (ttl: Ttl): number =>
  Math.max(1, Math.ceil((typeof ttl === "number" ? ttl : Duration.toSeconds(Duration.decode(ttl))) - 1e-9))

/** Checks a lease ID and a call's options. */
const checkId = (id: unknown, options: unknown) =>
  Validate.check(() =>
    Validate.first(
      () => Validate.leaseId("id", id),
      () => Validate.timeout(options)
    )
  )

// grants, time-to-live answers and held leases print safely (their IDs are bigints)
const GrantProto = Printable.Proto("Lease.Grant")
const TimeToLiveProto = Printable.Proto("Lease.TimeToLive")
const LeaseProto = Printable.Proto("Lease")

/**
 * Grants a lease of `ttl` (etcetra's `grant_lease`), with the ID asked for (1 to
 * 2^63 - 1; 0 or none lets the server pick one). Nobody keeps it alive: see
 * {@link keepAlive} and {@link make}.
 *
 * @since 0.1.0
 * @category leases
 */
export const grant = (
  ttl: Ttl,
  options?: { readonly id?: bigint | undefined; readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<Grant, EtcdError.LeaseGrantError, Etcd> =>
  Effect.zipRight(
    Validate.check(() =>
      Validate.first(
        () => Validate.ttl("ttl", ttl),
        () => Validate.timeout(options),
        () => Validate.optionalInt64("id", options?.id, 0n, " (0: the server picks one)")
      )
    ),
    grantChecked(ttl, options)
  )

const grantChecked = (
  ttl: Ttl,
  options?: { readonly id?: bigint | undefined; readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<Grant, EtcdError.LeaseGrantError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.flatMap(
      etcd.leases.grant({
        TTL: toInt64(seconds(ttl)),
        ...(options?.id === undefined || BigInt(options.id) === 0n ? {} : { ID: toInt64(options.id) })
      }, options),
      (response) =>
        response.error !== ""
          ? Effect.fail(new EtcdError.Unknown({ method: methods.lease.grant.path, code: 2, details: response.error }))
          : Effect.succeed(Printable.make(GrantProto, { id: fromInt64(response.ID), ttl: fromCount(response.TTL) }))
    ))

/**
 * Revokes a lease: its keys are deleted at once (etcetra's `revoke_lease`). Fails with
 * `LeaseNotFound` for a lease that does not exist.
 *
 * @since 0.1.0
 * @category leases
 */
export const revoke = (
  id: bigint,
  options?: { readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<void, EtcdError.LeaseError, Etcd> =>
  Effect.zipRight(checkId(id, options), Effect.flatMap(Etcd, (etcd) => Effect.asVoid(etcd.leases.revoke(id, options))))

/**
 * What the server knows of a lease: seconds left, granted TTL and, with `keys`, the
 * keys attached to it. Fails with `LeaseNotFound` when it does not exist (any more).
 *
 * @since 0.1.0
 * @category leases
 */
export const timeToLive = (
  id: bigint,
  options?: { readonly keys?: boolean | undefined; readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<TimeToLive, EtcdError.LeaseError, Etcd> =>
  Effect.zipRight(
    Validate.check(() =>
      Validate.first(
        () => Validate.leaseId("id", id),
        () => Validate.timeout(options),
        () => Validate.flag("keys", options?.keys)
      )
    ),
    timeToLiveChecked(id, options)
  )

const timeToLiveChecked = (
  id: bigint,
  options?: { readonly keys?: boolean | undefined; readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<TimeToLive, EtcdError.LeaseError, Etcd> =>
  Effect.flatMap(
    Etcd,
    (etcd) =>
      Effect.flatMap(etcd.leases.timeToLive({ ID: toInt64(id), keys: options?.keys ?? false }, options), (response) => {
        const ttl = fromCount(response.TTL)
        if (ttl < 0) {
          return Effect.fail(new EtcdError.LeaseNotFound({ method: methods.lease.timeToLive.path, leaseId: id }))
        }
        return Effect.succeed(Printable.make(TimeToLiveProto, {
          id,
          ttl,
          grantedTtl: fromCount(response.grantedTTL),
          keys: response.keys.map(toText),
          keyBytes: response.keys
        }))
      })
  )

/**
 * The IDs of every lease the cluster holds.
 *
 * @since 0.1.0
 * @category leases
 */
export const leases = (
  options?: { readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<Array<bigint>, EtcdError.CallError, Etcd> =>
  Effect.zipRight(
    Validate.check(() => Validate.timeout(options)),
    Effect.flatMap(
      Etcd,
      (etcd) =>
        Effect.map(
          etcd.leases.leases(options),
          // an array of bigints: it gets a toJSON of its own, so that loggers can print it
          (response) => Printable.bigints(response.leases.map((lease) => fromInt64(lease.ID)))
        )
    )
  )

/**
 * Refreshes a lease once and returns its new TTL in seconds. Fails with `LeaseNotFound`
 * when it does not exist (any more).
 *
 * @since 0.1.0
 * @category leases
 */
export const keepAliveOnce = (
  id: bigint,
  options?: { readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<number, EtcdError.LeaseError, Etcd> =>
  Effect.zipRight(checkId(id, options), keepAliveOnceChecked(id, options))

const keepAliveOnceChecked = (
  id: bigint,
  options?: { readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<number, EtcdError.LeaseError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.flatMap(etcd.leases.keepAliveOnce(id, options), (response) => {
      const ttl = fromCount(response.TTL)
      return ttl > 0
        ? Effect.succeed(ttl)
        : Effect.fail(new EtcdError.LeaseNotFound({ method: methods.lease.keepAlive.path, leaseId: id }))
    }))

/** A held lease, and what its holder calls once it has revoked it. */
interface Held {
  readonly lease: Lease
  readonly revoked: () => void
  /** Whether the lease was lost (or revoked), known at once. */
  readonly isLost: () => boolean
}

const holdOf = (id: bigint, ttl: number, keepAlive: KeepAlive): Held => {
  const lost = Deferred.await(keepAlive.lost)
  // `guard` races its effect against the loss with no fiber waiting on the loss: the hub
  // calls `tell` when it loses the lease, and the holder when it revokes it. The error of
  // a revoke is built only for a guard that is told of it.
  const waiting = new Set<(error: EtcdError.LeaseLost) => void>()
  let lostWith: (() => EtcdError.LeaseLost) | undefined
  const tell = (error: () => EtcdError.LeaseLost): void => {
    if (lostWith !== undefined) return
    lostWith = error
    if (waiting.size === 0) return
    const built = error()
    lostWith = () => built
    for (const onLost of waiting) onLost(built)
    waiting.clear()
  }
  keepAlive.onLost((error) => tell(() => error))
  const revoked = () => tell(() => new EtcdError.LeaseLost({ leaseId: id, reason: "revoked" }))
  const guard = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | EtcdError.LeaseLost, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.fork(restore(effect)), (fiber) =>
        Effect.async<A, E | EtcdError.LeaseLost>((resume) => {
          // the first of the effect's end and the loss wins: on a loss the effect is
          // interrupted (not awaited, as in a race) and the guard fails with LeaseLost
          const onLost = (error: EtcdError.LeaseLost) => {
            resume(Effect.zipRight(Effect.fiberIdWith((id) => fiber.interruptAsFork(id)), Effect.fail(error)))
          }
          fiber.addObserver((exit) => {
            waiting.delete(onLost)
            resume(exit)
          })
          // lost before this guard started to wait
          if (lostWith !== undefined) onLost(lostWith())
          else waiting.add(onLost)
          return Effect.suspend(() => {
            waiting.delete(onLost)
            return Fiber.interrupt(fiber)
          })
        }))
    )
  return {
    lease: Printable.make(LeaseProto, { id, ttl, lost, isLost: Deferred.isDone(keepAlive.lost), guard }),
    revoked,
    isLost: () => lostWith !== undefined
  }
}

/**
 * Keeps an existing lease alive until the scope closes, without revoking it then
 * (etcetra's `lease_keepalive`); refreshes every `interval`, TTL/3 by default. The
 * returned `Lease` tells when it is lost.
 *
 * @since 0.1.0
 * @category leases
 */
export const keepAlive = (
  id: bigint,
  options?: { readonly interval?: Duration.DurationInput | undefined }
): Effect.Effect<Lease, EtcdError.LeaseError, Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    yield* Validate.check(() =>
      Validate.first(
        () => Validate.leaseId("id", id),
        () => Validate.options("options", options),
        () => Validate.duration("interval", options?.interval)
      )
    )
    const etcd = yield* Etcd
    const ttl = yield* keepAliveOnce(id)
    const registration = yield* etcd.keepAlives.keepAlive(
      id,
      ttl,
      options?.interval === undefined ? undefined : Duration.decode(options.interval),
      yield* Effect.scope
    )
    return holdOf(id, ttl, registration).lease
  })

/**
 * The default bound of the revoke that ends a scoped lease.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRevokeTimeout: Duration.Duration = Duration.seconds(5)

/**
 * A lease for the life of the scope: granted now, kept alive by a fiber, revoked when
 * the scope closes (normally, on failure or on interruption).
 *
 * Bounds: the grant can be interrupted (a grant interrupted in flight that the server
 * carried out anyway leaves a lease with no keys that expires after its TTL). The revoke
 * when the scope closes takes at most `revokeTimeout` (default 5 seconds), retries
 * included; when it cannot be done in that time it is logged and given up, and the
 * lease, no longer kept alive, expires after its TTL. A lease that already expired is
 * not an error. A lease known lost by then (`LeaseLost`: expired, or no keepalive
 * acknowledged within its TTL) is not revoked at all: the scope closes at once, with no
 * warning.
 *
 * The revoke is registered with the client too (as with `Etcd.addFinalizer`): if the client
 * closes before the scope (its layer was provided inside the scope), the lease is revoked
 * just before the channels close, and the scope's own release then has nothing to do. Once
 * revoked, the lease counts as lost (`LeaseLost`, reason `"revoked"`) for anything still
 * waiting on it.
 *
 * Many leases in one scope: the revokes of all the leases made in one scope run together,
 * 64 at a time, when the scope's closing reaches the first of them (a scope runs its
 * finalizers one after another, newest first), each within its `revokeTimeout`; once one
 * gives up (the server is unreachable, say), those not sent yet are skipped, logged, and
 * expire after their TTL, so an outage costs about one `revokeTimeout`, not one per lease. So
 * `Effect.forEach(ids, () => Lease.make(ttl), { concurrency: 64 })` in one scope closes
 * in about as many round trips as 64 revokes in flight take, not one per lease (revokes go
 * over `node:http2` directly rather than through grpc-js, whose own cost per call was most of
 * the client's work at that scale). Their
 * keepalives share one stream and one schedule (no timer or fiber per lease), and each
 * lease is kept alive until its own revoke is sent: one still waiting for its turn while
 * the scope closes does not expire on the server meanwhile.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  ttl: Ttl,
  options?: {
    readonly id?: bigint | undefined
    readonly interval?: Duration.DurationInput | undefined
    readonly revokeTimeout?: Duration.DurationInput | undefined
  }
): Effect.Effect<Lease, EtcdError.LeaseGrantError, Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    yield* Validate.check(() =>
      Validate.first(
        () => Validate.options("options", options),
        () => Validate.duration("interval", options?.interval),
        () => Validate.duration("revokeTimeout", options?.revokeTimeout)
      )
    )
    const etcd = yield* Etcd
    const revokeTimeout = Duration.decode(options?.revokeTimeout ?? defaultRevokeTimeout)
    let registration: KeepAlive | undefined = undefined
    let held: Held | undefined = undefined
    const release = (granted: Grant) =>
      // a lease known lost is gone, or no longer kept alive and soon gone: revoking it
      // would only wait, on a server that may well be unreachable, and warn
      Effect.suspend(() => held?.isLost() === true ? Effect.void : revokeWithin(etcd, granted.id, revokeTimeout)).pipe(
        // whoever still waits on it (work that outlived a closing client) is told; the error
        // is built only for someone who waits: most revoked leases have no one
        Effect.ensuring(Effect.suspend(() => {
          held?.revoked()
          return registration === undefined ? Effect.void : Deferred.failSync(
            registration.lost,
            () => new EtcdError.LeaseLost({ leaseId: granted.id, reason: "revoked" })
          )
        }))
      )
    // the grant can be interrupted; once it has succeeded, its keepalive and its release are
    // registered before anything can interrupt. The revokes of one scope's leases run together
    // when it closes (see above), so that a scope of ten thousand leases closes in a few round
    // trips. The keepalive lives in a scope of its own that the release closes just before it
    // revokes (or instead, when the revoke is skipped): a lease waiting for its turn to be
    // revoked is still kept alive, and does not expire on the server meanwhile.
    const { lease } = yield* Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const granted = yield* restore(grant(ttl, options))
        const keepAliveScope = yield* Scope.make()
        const stopKeepAlive = Scope.close(keepAliveScope, Exit.void)
        const kept = yield* etcd.keepAlives.keepAlive(
          granted.id,
          granted.ttl,
          options?.interval === undefined ? undefined : Duration.decode(options.interval),
          keepAliveScope
        )
        registration = kept
        held = holdOf(granted.id, granted.ttl, kept)
        yield* etcd.resources.registerGrouped(
          Effect.zipRight(stopKeepAlive, release(granted)),
          stopKeepAlive
        ).pipe(Effect.tapError(() => stopKeepAlive))
        return held
      })
    )
    return lease
  })

/**
 * Revokes a lease within `timeout` in total; a lease already gone is not an error. Fails
 * (after a log line) when it gives up: the scope's other revokes are then skipped.
 */
const revokeWithin = (
  etcd: Etcd,
  id: bigint,
  timeout: Duration.Duration
): Effect.Effect<void, EtcdError.EtcdError> =>
  etcd.leases.revoke(id, { timeout }).pipe(
    // the transport's deadline covers every attempt; this also covers a token refresh,
    // which only a client with credentials can take
    (revoke) =>
      etcd.transport.authenticates
        ? Effect.timeoutFail(revoke, {
          duration: timeout,
          onTimeout: () => new EtcdError.Timeout({ method: methods.lease.revoke.path, timeout })
        })
        : revoke,
    Effect.asVoid,
    Effect.catchAll((error) =>
      error._tag === "LeaseNotFound"
        ? Effect.void
        : Effect.zipRight(
          Effect.logWarning("could not revoke lease; it will expire after its TTL").pipe(
            Effect.annotateLogs({ leaseId: id.toString(16), error: error.message })
          ),
          Effect.fail(error)
        )
    )
  )

/**
 * Options of {@link make} (and {@link withLease}).
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions {
  /** The ID to grant the lease with (1 to 2^63 - 1); the server picks one by default. */
  readonly id?: bigint | undefined
  /** How often the lease is refreshed (TTL/3 by default). */
  readonly interval?: Duration.DurationInput | undefined
  /** The bound of the revoke when the scope closes (default 5 seconds). */
  readonly revokeTimeout?: Duration.DurationInput | undefined
}

/**
 * Runs `f` with a lease held for its duration (see {@link make}), failing with
 * `LeaseLost` and interrupting `f` if the lease is lost.
 *
 * Dual: `Lease.withLease(f, ttl, options)`, or piped,
 * `pipe((lease) => ..., Lease.withLease(ttl, options))`. The earlier order
 * `Lease.withLease(ttl, f, options)` still works.
 *
 * @example
 * ```ts
 * import { Effect, pipe } from "effect"
 * import { Kv, Lease } from "effect-etcd"
 *
 * const announce = pipe(
 *   (lease: Lease.Lease) => Kv.put("services/api", "10.0.0.7", { lease }),
 *   Lease.withLease("10 seconds", { revokeTimeout: "2 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const withLease: {
  (ttl: Ttl, options?: MakeOptions): <A, E, R>(
    f: (lease: Lease) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | EtcdError.LeaseGrantError | EtcdError.LeaseLost, Etcd | Exclude<R, Scope.Scope>>
  <A, E, R>(
    f: (lease: Lease) => Effect.Effect<A, E, R>,
    ttl: Ttl,
    options?: MakeOptions
  ): Effect.Effect<A, E | EtcdError.LeaseGrantError | EtcdError.LeaseLost, Etcd | Exclude<R, Scope.Scope>>
  /** The earlier order, kept working. */
  <A, E, R>(
    ttl: Ttl,
    f: (lease: Lease) => Effect.Effect<A, E, R>,
    options?: MakeOptions
  ): Effect.Effect<A, E | EtcdError.LeaseGrantError | EtcdError.LeaseLost, Etcd | Exclude<R, Scope.Scope>>
} = function() {
  // a TTL is never a function: which argument is the function tells the form apart
  const args = arguments
  if (typeof args[0] === "function") return leased(args[1], args[0], args[2])
  if (typeof args[1] === "function") return leased(args[0], args[1], args[2])
  return (f: (lease: Lease) => Effect.Effect<any, any, any>) => leased(args[0], f, args[1])
} as any

const leased = <A, E, R>(
  ttl: Ttl,
  f: (lease: Lease) => Effect.Effect<A, E, R>,
  options: MakeOptions | undefined
): Effect.Effect<A, E | EtcdError.LeaseGrantError | EtcdError.LeaseLost, Etcd | Exclude<R, Scope.Scope>> =>
  Scoped.scoped(Effect.flatMap(make(ttl, options), (lease) => lease.guard(f(lease))))
