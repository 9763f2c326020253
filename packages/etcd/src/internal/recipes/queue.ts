/**
 * The fair queue behind locks, readers–writer locks and elections (Go's
 * `concurrency/key.go` and the first half of `Mutex.Lock` / `Election.Campaign`).
 *
 * Like the recipes themselves, it is written on the public `Kv`, `Txn` and `Watch`
 * calls, so namespaces and every later layer apply; only recipes import it, never the
 * core modules, so no import circle can form.
 *
 * A place in the queue is a key attached to a lease; its create revision is its place.
 * A candidate holds the head when no key of the range it waits on was created before
 * its own. It waits without a thundering herd: it watches only the newest older key,
 * and looks again when that key goes, until none is left.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Compare from "../../Compare.js"
import type { Etcd } from "../../Etcd.js"
import * as EtcdError from "../../EtcdError.js"
import type * as KeyRange from "../../KeyRange.js"
import * as Kv from "../../Kv.js"
import * as Lease from "../../Lease.js"
import * as Op from "../../Op.js"
import { Session } from "../../Session.js"
import * as Txn from "../../Txn.js"
import * as Watch from "../../Watch.js"

/** How long a crashed holder blocks others when no session is given. */
export const defaultTtl: Duration.Duration = Duration.seconds(60)

/** The default bound of a release. */
export const defaultReleaseTimeout: Duration.Duration = Duration.seconds(5)

/**
 * Waits until no key of `range` created at or before `maxCreateRevision` is left.
 * Each pass reads the newest such key and watches it from the read's revision; when
 * that history is gone (compacted while the watch was away), it reads again instead of
 * failing: the read alone says whether the predecessor is still there.
 */
export const waitForOlder = (
  range: KeyRange.KeyRange,
  maxCreateRevision: bigint
): Effect.Effect<void, EtcdError.EtcdError, Etcd> =>
  Effect.gen(function*() {
    while (true) {
      const newestOlder = yield* Kv.range(range, {
        maxCreateRevision,
        sortTarget: "create",
        sortOrder: "descend",
        limit: 1,
        // Stryker disable next-line BooleanLiteral: equivalent because only the key is read; the value would come along unused
        keysOnly: true
      })
      const predecessor = newestOlder.kvs[0]
      if (predecessor === undefined) return
      // from the revision after the read: a delete in between is still seen
      // Stryker disable next-line ArithmeticOperator,BooleanLiteral: equivalent because a watch that wakes on more (a put, an older revision) reads again and waits again
      yield* Watch.watch(predecessor.keyBytes, { startRevision: newestOlder.revision + 1n, noPut: true }).pipe(
        Stream.take(1),
        Stream.runDrain,
        Effect.catchTag("Compacted", () => Effect.void)
      )
    }
  })

/** What a place in the queue is held with: a session, or a lease of its own. */
export interface EnqueueOptions {
  readonly session?: Session | undefined
  readonly ttl?: Lease.Ttl | undefined
  readonly releaseTimeout?: Duration.DurationInput | undefined
}

/**
 * Runs `f` with `options`, whose session is the `Session` of the context when they name
 * neither a `session` nor a `ttl` (which asks for a lease of its own): a session provided
 * (`Session.layer`) is the default of every lock and campaign made under it.
 */
export const withDefaultSession = <O extends EnqueueOptions, A, E, R>(
  options: O | undefined,
  f: (options: O | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  // options that are no object are left as they are, for the validation to refuse
  (options !== undefined && (typeof options !== "object" || options === null)) ||
    options?.session !== undefined || options?.ttl !== undefined
    ? f(options)
    : Effect.flatMap(
      Effect.serviceOption(Session),
      (session) => f(Option.isSome(session) ? { ...options, session: session.value } as O : options)
    )

/** A place at the head of the queue. */
export interface Place {
  readonly key: string
  /** The key's create revision. */
  readonly revision: bigint
  readonly lease: Lease.Lease
}

/** What a held place gives its holder: the fencing compare and the lease's loss signal. */
export const held = (place: Place) => ({
  key: place.key,
  revision: place.revision,
  lease: place.lease,
  isOwner: Compare.createRevision(place.key).equals(place.revision),
  lost: place.lease.lost,
  guard: place.lease.guard
})

let sequence = 0

/**
 * Deletes a key within `timeout` in total, logging instead of failing: the key of a
 * place held on a session, which outlives the place.
 */
const deleteWithin = (key: string, timeout: Duration.Duration): Effect.Effect<void, never, Etcd> =>
  // the call's timeout bounds all of it, every attempt included
  Kv.delete(key, { timeout }).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning("could not delete a lock key; it stays until its session ends").pipe(
        Effect.annotateLogs({ key, error: error.message })
      )
    ),
    Effect.asVoid
  )

/**
 * Adds `release` to the scope, run with this client (the context of the caller) and
 * uninterruptibly. Unlike `Effect.addFinalizer`, it does not save the fiber's state to
 * restore it around the release (a diff and two patches of every fiber ref): a delete
 * needs only the client.
 */
const addRelease = (release: Effect.Effect<void, never, Etcd>): Effect.Effect<void, never, Etcd | Scope.Scope> =>
  Effect.contextWithEffect((context: Context.Context<Etcd | Scope.Scope>) =>
    Scope.addFinalizer(
      Context.get(context, Scope.Scope),
      Effect.uninterruptible(Effect.mapInputContext(release, () => context))
    )
  )

/**
 * Takes a place in the queue `keyPrefix` (the key is `keyPrefix` + the lease ID in hex,
 * plus a sequence number on a session, which many places share) and waits until no key
 * of `waitOn` is older. The place is removed when the scope closes: the lease revoked,
 * or on a session, the key deleted.
 */
export const enqueue = (
  keyPrefix: string,
  value: string,
  waitOn: KeyRange.KeyRange,
  options: EnqueueOptions | undefined
): Effect.Effect<Place, EtcdError.EtcdError, Etcd | Scope.Scope> =>
  Effect.suspend(() => {
    const releaseTimeout = Duration.decode(options?.releaseTimeout ?? defaultReleaseTimeout)
    const session = options?.session
    if (session === undefined) {
      // releasing is revoking the lease: that deletes the key too, in one call
      return Effect.flatMap(
        Lease.make(options?.ttl ?? defaultTtl, { revokeTimeout: releaseTimeout }),
        (lease) => takePlace(`${keyPrefix}${lease.id.toString(16)}`, value, waitOn, lease)
      )
    }
    const lease = session.lease
    return Effect.flatMap(lease.isLost, (isLost) => {
      if (isLost) return lease.lost
      const key = sessionKey(keyPrefix, lease)
      // before the put: an interrupted put that landed anyway is deleted too
      return Effect.zipRight(addRelease(deleteWithin(key, releaseTimeout)), takePlace(key, value, waitOn, lease))
    })
  })

/** The key of a place on a session's lease: many places share the lease, so a sequence number follows its ID. */
const sessionKey = (keyPrefix: string, lease: Lease.Lease): string =>
  `${keyPrefix}${lease.id.toString(16)}-${(sequence++).toString(16)}`

/**
 * Takes a place on `session` as `enqueue` does (its failures mapped by `narrow`) and runs
 * `use` once it is at the head, with no `Scope`: the key is deleted when `use` ends, fails
 * or is interrupted, and when taking the place fails or is interrupted (an interrupted put
 * may have landed). For a caller whose scope would hold nothing else (`Lock.withLock`): a
 * scope and a finalizer in it cost more Effect steps than the two calls of an uncontended
 * lock. With a finite `timeout`, taking the place fails with `onTimeout()` after that long,
 * and the key's delete, itself bounded, goes on in the background, as in `attempt`.
 */
export const usingPlace = <A, E, R, EA>(
  keyPrefix: string,
  value: string,
  waitOn: KeyRange.KeyRange,
  session: Session,
  options: {
    readonly releaseTimeout: Duration.DurationInput | undefined
    readonly timeout: Duration.DurationInput | undefined
    readonly onTimeout: (timeout: Duration.Duration) => EA
  },
  narrow: <X>(taking: Effect.Effect<X, EtcdError.EtcdError, Etcd>) => Effect.Effect<X, EA, Etcd>,
  use: (place: Place) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | EA, Etcd | R> =>
  Effect.uninterruptibleMask((restore) => {
    const lease = session.lease
    return Effect.flatMap(lease.isLost, (isLost): Effect.Effect<A, E | EA, Etcd | R> => {
      if (isLost) return narrow(lease.lost)
      const key = sessionKey(keyPrefix, lease)
      const release = deleteWithin(key, Duration.decode(options.releaseTimeout ?? defaultReleaseTimeout))
      const taking = narrow(takePlace(key, value, waitOn, lease))
      const timeout = options.timeout === undefined ? undefined : Duration.decode(options.timeout)
      // set only when the timeout wins the race: Effect.timeoutFail builds its error then, not before
      let timedOut: EA | undefined
      const bounded = timeout === undefined || !Duration.isFinite(timeout) ? taking : Effect.timeoutFail(taking, {
        duration: timeout,
        onTimeout: () => (timedOut = options.onTimeout(timeout))
      })
      return Effect.matchCauseEffect(restore(Effect.flatMap(bounded, use)), {
        onFailure: (cause) =>
          Effect.zipRight(
            // after a timeout the caller has waited long enough: the delete goes on without it
            // (`use` never ran, and the failure is the timeout's)
            timedOut !== undefined
              ? Effect.asVoid(Effect.forkDaemon(release))
              : release,
            Effect.failCause(cause)
          ),
        onSuccess: (a) => Effect.as(release, a)
      })
    })
  })

/** Puts `key` on `lease` unless it exists, and waits until no key of `waitOn` is older. */
const takePlace = (
  key: string,
  value: string,
  waitOn: KeyRange.KeyRange,
  lease: Lease.Lease
): Effect.Effect<Place, EtcdError.EtcdError, Etcd> => {
  // Stryker disable next-line BooleanLiteral: equivalent because only the head's create revision is read
  const head = Op.get(waitOn, { sortTarget: "create", sortOrder: "ascend", limit: 1, keysOnly: true })
  return Effect.flatMap(
    Txn.txnCompare(
      [Compare.createRevision(key).equals(0)],
      [Op.put(key, value, { lease }), head],
      [Op.get(key), head]
    ),
    (result): Effect.Effect<Place, EtcdError.EtcdError, Etcd> => {
      // Stryker disable next-line OptionalChaining: equivalent because the compare failed only if the key exists, so its get has a kv
      const revision = result.succeeded ? result.revision : result.results[0].kvs[0]?.createRevision ?? 0n
      const first = result.results[1].kvs[0]
      const place: Place = { key, revision, lease }
      // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: equivalent because this is the fast path: the wait below finds no older key and gives the same place
      if (first === undefined || first.createRevision >= revision) return Effect.succeed(place)
      return Effect.zipRight(
        lease.guard(waitForOlder(waitOn, revision - 1n)),
        // the lease may have expired while waiting, taking the key with it
        Effect.flatMap(Kv.getKeyValue(key), (mine) =>
          Option.isNone(mine) || mine.value.createRevision !== revision
            ? Effect.fail(new EtcdError.LeaseLost({ leaseId: lease.id, reason: "expired" }))
            : Effect.succeed(place))
      )
    }
  )
}

/**
 * Runs an acquisition in a scope of its own, closed at once if it fails, so a failed or
 * interrupted attempt leaves nothing behind until the caller's scope closes. With a
 * `timeout`, it fails with `onTimeout()` after that long, and the attempt's cleanup,
 * itself bounded, goes on in the background: the caller's scope, closed right after,
 * does not wait for it either (its finalizer no longer closes the attempt's scope).
 */
export const attempt = <A, E extends { readonly _tag: string }>(
  acquire: Effect.Effect<A, E, Etcd | Scope.Scope>,
  timeout: Duration.DurationInput | undefined,
  onTimeout: (timeout: Duration.Duration) => E
): Effect.Effect<A, E, Etcd | Scope.Scope> =>
  Effect.flatMap(Effect.scope, (parent) => {
    if (timeout === undefined) {
      return Effect.flatMap(Scope.fork(parent, ExecutionStrategy.sequential), (scope) =>
        Effect.onExit(
          Scope.extend(acquire, scope),
          (exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)
        ))
    }
    const duration = Duration.decode(timeout)
    // not a fork of the caller's scope: after a timeout, the caller's scope may close before
    // the fiber that closes this one has started, and it must not close it, and wait, itself
    let inBackground = false
    return Effect.flatMap(Scope.make(ExecutionStrategy.sequential), (scope) =>
      Effect.zipRight(
        Scope.addFinalizerExit(parent, (exit) => inBackground ? Effect.void : Scope.close(scope, exit)),
        Effect.suspend(() => {
          // set only when the timeout wins the race: Effect.timeoutFail builds its error then, not before
          let timeoutError: E | undefined
          return Scope.extend(acquire, scope).pipe(
            Effect.timeoutFail({ duration, onTimeout: () => (timeoutError = onTimeout(duration)) }),
            Effect.onExit((exit) => {
              if (Exit.isSuccess(exit)) return Effect.void
              // after a timeout the caller has waited long enough: the cleanup goes on without it
              if (timeoutError === undefined) return Scope.close(scope, exit)
              inBackground = true
              return Effect.asVoid(Effect.forkDaemon(Scope.close(scope, exit)))
            })
          )
        })
      ))
  })

/** The tracer a program has when it provides none: its spans go nowhere. */
const defaultTracer = Effect.runSync(Effect.tracer)

/**
 * Runs a recipe's call in a span named `name`; under Effect's default tracer, which
 * records nothing, the span is left out, so that a program without tracing does not pay
 * for it (as the transport does for each RPC).
 */
export const traced = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  attributes: Record<string, unknown>
): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) =>
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent because the default tracer records nothing, with or without a span (and a stack trace)
    tracer === defaultTracer ? effect : Effect.withSpan(effect, name, { attributes, captureStackTrace: false })
  )
