/**
 * The deadlines of the unary calls in flight, kept by one timer instead of a timer per call
 * (the server still gets each deadline, as `grpc-timeout`). The timer is armed for the
 * earliest deadline; a call found past its deadline is expired (cancelled, and failed with
 * Timeout by its owner) at most `deadlineSlack` ms late, as a timer of its own could be.
 * Calls that end in time are just dropped from the set; the timer is re-armed only for a
 * deadline earlier than the one it waits for.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Monotonic from "../base/monotonic.js"

/** Something with a deadline (`monotonic.ts` milliseconds), and what ends it when the deadline passes. */
export interface Expiring {
  readonly deadline: number
  readonly expire: () => void
}

/** The sweep: `watch` a call when it starts, `forget` it when it ends. */
export interface DeadlineSweep {
  readonly watch: (expiring: Expiring) => void
  readonly forget: (expiring: Expiring) => void
}

/** How late past its deadline the sweep may expire a call. */
export const deadlineSlack = 5

/** Makes a sweep whose timer is cleared when the scope closes. */
export const make: Effect.Effect<DeadlineSweep, never, Scope.Scope> = Effect.suspend(() => {
  const expiries = new Set<Expiring>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let armedFor = Number.POSITIVE_INFINITY
  const arm = (at: number) => {
    if (timer !== undefined) clearTimeout(timer)
    armedFor = at
    timer = setTimeout(sweep, Math.max(0, at - Monotonic.now()))
    // a pending deadline alone does not keep the process alive (grpc-js's timers do not either)
    timer.unref?.()
  }
  const sweep = () => {
    timer = undefined
    armedFor = Number.POSITIVE_INFINITY
    const now = Monotonic.now()
    let next = Number.POSITIVE_INFINITY
    for (const expiring of expiries) {
      if (expiring.deadline <= now) {
        expiries.delete(expiring)
        expiring.expire()
      } else if (expiring.deadline < next) {
        next = expiring.deadline
      }
    }
    if (next !== Number.POSITIVE_INFINITY) arm(next + deadlineSlack)
  }
  const deadlineSweep: DeadlineSweep = {
    watch: (expiring) => {
      expiries.add(expiring)
      if (expiring.deadline + deadlineSlack < armedFor) arm(expiring.deadline + deadlineSlack)
    },
    forget: (expiring) => {
      expiries.delete(expiring)
    }
  }
  return Effect.as(
    Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (timer !== undefined) clearTimeout(timer)
      })
    ),
    deadlineSweep
  )
})
