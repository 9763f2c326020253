/**
 * What a client must release before its channels close: the leases and lock keys held in
 * scopes of their own (`Lease.make`, `Lock.make`).
 *
 * A release is registered in the caller's scope and with the client. It runs once, when
 * the first of the two closes: when the caller's scope closes first (the usual case), the
 * client forgets it; when the client closes first (its layer was provided inside the
 * caller's scope), the client runs it, bounded, before the channels close, and the
 * caller's scope later finds it done. Registering after the client closed fails with
 * `ClientClosed`.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as EtcdError from "../EtcdError.js"

/** The releases a client owes. */
export interface Resources {
  /** Runs `release` when the current scope or the client closes, whichever is first; once. */
  readonly register: (release: Effect.Effect<void>) => Effect.Effect<void, EtcdError.ClientClosed, Scope.Scope>
}

/** How long a closing client waits for what it still has to release. */
export const releaseTimeout: Duration.Duration = Duration.seconds(10)

/** How many releases a closing client runs at once. */
const concurrency = 32

/** The registry; what is still registered is released when the scope closes. */
/**
 * `effect` run by the first fiber that runs the result; the others wait for its end.
 * (`Effect.cached` without its cost: this is on every lock's and lease's path.)
 */
const runOnce = (effect: Effect.Effect<void>): Effect.Effect<void> => {
  let done: Deferred.Deferred<void> | undefined
  return Effect.suspend(() => {
    if (done !== undefined) return Deferred.await(done)
    const mine = Deferred.unsafeMake<void>(FiberId.none)
    done = mine
    return Effect.ensuring(effect, Deferred.done(mine, Exit.void))
  })
}

export const make: Effect.Effect<Resources, never, Scope.Scope> = Effect.gen(function*() {
  const pending = new Set<Effect.Effect<void>>()
  let closed = false

  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      closed = true
      // the newest first, as a scope would
      const releases = [...pending].reverse()
      pending.clear()
      if (releases.length === 0) return Effect.void
      return Effect.forEach(releases, (release) => release, { concurrency, discard: true }).pipe(
        Effect.timeoutOption(releaseTimeout),
        Effect.flatMap((done) =>
          done._tag === "Some" ? Effect.void : Effect.logWarning(
            "the etcd client closed before its leases and locks were released; they expire with their TTL"
          ).pipe(Effect.annotateLogs({ pending: releases.length, timeout: Duration.format(releaseTimeout) }))
        )
      )
    })
  )

  const register = (release: Effect.Effect<void>) =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        if (closed) return Effect.fail(new EtcdError.ClientClosed({}))
        return Effect.sync(
          () => {
            const once = runOnce(Effect.catchAllCause(release, (cause) => Effect.logWarning("a release failed", cause)))
            pending.add(once)
            return once
          }
        )
      }),
      (once) =>
        Effect.suspend(() => {
          pending.delete(once)
          // done already when the client ran it: then this returns at once
          return Effect.asVoid(Effect.exit(once))
        })
    ).pipe(Effect.asVoid)

  return { register }
})
