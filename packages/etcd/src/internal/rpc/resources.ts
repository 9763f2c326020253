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
 *
 * Releases a scope may hold by the thousand (the revokes of `Lease.make`) are registered
 * as a group instead: all those of one scope run together when the scope reaches the first
 * of them (the group's one finalizer), `groupConcurrency` at a time, each within its own
 * bound; once one gives up, the rest are skipped. A scope's finalizers run one after another by default, so ten
 * thousand leases made in one scope would otherwise be revoked one round trip at a time.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as EtcdError from "../../EtcdError.js"

/** The releases a client owes. */
export interface Resources {
  /** Runs `release` when the current scope or the client closes, whichever is first; once. */
  readonly register: (release: Effect.Effect<void>) => Effect.Effect<void, EtcdError.ClientClosed, Scope.Scope>
  /**
   * Like `register`, but the releases registered in one scope run together, concurrently
   * (bounded), when the scope reaches the first of them. Each bounds itself and fails
   * when it gives up; once one has, those not started yet are skipped (they would give
   * up too), `skip` runs instead of each (what must end even when the release is not
   * sent: a lease's keepalive), and one log line counts them.
   */
  readonly registerGrouped: (
    release: Effect.Effect<void, unknown>,
    skip?: Effect.Effect<void>
  ) => Effect.Effect<void, EtcdError.ClientClosed, Scope.Scope>
}

/** How many releases of one group (one scope) run at once. */
export const groupConcurrency = 64

/** A grouped release: as given (it fails when it gives up), and as the client runs it (failures logged). */
interface Member {
  readonly release: Effect.Effect<void, unknown>
  readonly logged: Effect.Effect<void>
  /** What runs instead of `release` when it is skipped. */
  readonly skip: Effect.Effect<void>
}

/** The grouped releases of one scope. */
interface Group {
  readonly members: Array<Member>
}

/** How long a closing client waits for what it still has to release. */
export const releaseTimeout: Duration.Duration = Duration.seconds(10)

/** How many releases a closing client runs at once. */
const concurrency = 32

/**
 * `effect` run by the first fiber that runs the result; the others wait for its end and
 * get its outcome. (`Effect.cached` without its cost: this is on every lock's and lease's
 * path; nor a `Deferred`, whose making copies a large prototype object, some 9 µs, ten
 * thousand times when a scope of ten thousand leases closes.)
 */
const runOnce = <E>(effect: Effect.Effect<void, E>): Effect.Effect<void, E> => {
  let outcome: Exit.Exit<void, E> | undefined
  let waiters: Array<(exit: Exit.Exit<void, E>) => void> | undefined
  return Effect.suspend(() => {
    if (outcome !== undefined) return outcome
    if (waiters !== undefined) {
      const waiting = waiters
      return Effect.async<void, E>((resume) => {
        waiting.push(resume)
      })
    }
    const mine: Array<(exit: Exit.Exit<void, E>) => void> = []
    waiters = mine
    return Effect.onExit(effect, (exit) =>
      Effect.sync(() => {
        outcome = exit
        for (const resume of mine) resume(exit)
      }))
  })
}

/** The registry; what is still registered is released when the scope closes. */
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

  /** The release, run once whoever asks first (the scope or the client); a failure is logged. */
  const once = (release: Effect.Effect<void>) =>
    runOnce(Effect.catchAllCause(release, (cause) => Effect.logWarning("a release failed", cause)))

  const groups = new WeakMap<Scope.Scope, Group>()

  const runGroup = (scope: Scope.Scope, group: Group): Effect.Effect<void> =>
    Effect.suspend(() => {
      groups.delete(scope)
      // the newest first, as a scope would
      const members = group.members.reverse()
      for (const member of members) pending.delete(member.logged)
      let released = 0
      let failed = 0
      let skipped = 0
      const logged = Effect.suspend(() =>
        failed === 0 ? Effect.void : Effect.logWarning(
          "gave up releasing leases when their scope closed; they expire with their TTL"
        ).pipe(Effect.annotateLogs({ released, failed, skipped }))
      )
      // the usual group, one lease (a lock's own), is released without the fibers of a
      // concurrent forEach
      if (members.length === 1) {
        return Effect.zipRight(
          Effect.map(Effect.exit(members[0].release), (exit) => {
            if (exit._tag === "Success") released++
            else failed++
          }),
          logged
        )
      }
      return Effect.forEach(members, (member) =>
        Effect.suspend(() => {
          // once one has given up (the server is unreachable, say), the others would too
          if (failed > 0) {
            skipped++
            return member.skip
          }
          return Effect.map(Effect.exit(member.release), (exit) => {
            if (exit._tag === "Success") released++
            else failed++
          })
        }), { concurrency: groupConcurrency, discard: true }).pipe(Effect.zipRight(logged))
    })

  const registerGrouped = (release: Effect.Effect<void, unknown>, skip: Effect.Effect<void> = Effect.void) =>
    Effect.flatMap(Effect.scope, (scope) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(new EtcdError.ClientClosed({}))
        const cached = runOnce(release)
        const member: Member = {
          release: cached,
          logged: Effect.catchAllCause(cached, (cause) => Effect.logWarning("a release failed", cause)),
          skip
        }
        pending.add(member.logged)
        const group = groups.get(scope)
        if (group !== undefined) {
          group.members.push(member)
          return Effect.void
        }
        const created: Group = { members: [member] }
        groups.set(scope, created)
        // added once the release is in the group: a scope closed already runs it at once
        return Scope.addFinalizer(scope, runGroup(scope, created))
      }))

  const register = (release: Effect.Effect<void>) =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        if (closed) return Effect.fail(new EtcdError.ClientClosed({}))
        return Effect.sync(() => {
          const cached = once(release)
          pending.add(cached)
          return cached
        })
      }),
      (once) =>
        Effect.suspend(() => {
          pending.delete(once)
          // done already when the client ran it: then this returns at once
          return Effect.asVoid(Effect.exit(once))
        })
    ).pipe(Effect.asVoid)

  return { register, registerGrouped }
})
