/**
 * The deadline sweep on its own (internal/transport/deadlineSweep.ts): one timer for the
 * deadlines of every unary attempt in flight. What a caller relies on: each watched call is
 * expired once, never before its deadline; a call forgotten (it ended in time) never is;
 * and a deadline earlier than the one the timer waits for is kept by it, not held back.
 * Real timers (`it.live`), short deadlines, and no assertion on how late an expiry comes.
 * Deadlines are on the monotonic clock (internal/base/monotonic.ts), as the transport's are.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import * as Monotonic from "../src/internal/base/monotonic.js"
import * as DeadlineSweep from "../src/internal/transport/deadlineSweep.js"

/** A watched call that records when it expired, and says so once all of `expected` have. */
const recorder = (expected: number) =>
  Effect.map(Deferred.make<void>(), (allExpired) => {
    const expiries: Array<{ readonly name: string; readonly deadline: number; readonly at: number }> = []
    const expiring = (name: string, inMillis: number): DeadlineSweep.Expiring => {
      const deadline = Monotonic.now() + inMillis
      return {
        deadline,
        expire: () => {
          expiries.push({ name, deadline, at: Monotonic.now() })
          if (expiries.length === expected) Deferred.unsafeDone(allExpired, Effect.void)
        }
      }
    }
    return { allExpired, expiries, expiring }
  })

describe("DeadlineSweep", () => {
  it.live("expires each watched call once, never before its deadline; a forgotten one never", () =>
    Effect.gen(function*() {
      const sweep = yield* DeadlineSweep.make
      const { allExpired, expiries, expiring } = yield* recorder(3)
      const forgotten = expiring("forgotten", 1)
      sweep.watch(expiring("late", 30))
      sweep.watch(forgotten)
      sweep.watch(expiring("early", 5))
      sweep.watch(expiring("middle", 15))
      sweep.forget(forgotten)
      yield* Deferred.await(allExpired)
      // a later call's expiry shows that no earlier one is expired twice
      const { allExpired: laterExpired, expiries: later, expiring: expiringLater } = yield* recorder(1)
      sweep.watch(expiringLater("later", 1))
      yield* Deferred.await(laterExpired)

      expect(expiries.map((expiry) => expiry.name).sort()).toEqual(["early", "late", "middle"])
      expect(later.map((expiry) => expiry.name)).toEqual(["later"])
      for (const expiry of [...expiries, ...later]) expect(expiry.at).toBeGreaterThanOrEqual(expiry.deadline)
    }).pipe(Effect.scoped))

  it.live("a deadline earlier than the one the timer waits for re-arms it", () =>
    Effect.gen(function*() {
      const sweep = yield* DeadlineSweep.make
      const { allExpired, expiries, expiring } = yield* recorder(1)
      // the timer waits for this one first: an hour away, past the test's own timeout
      sweep.watch(expiring("in an hour", 3_600_000))
      sweep.watch(expiring("soon", 5))
      yield* Deferred.await(allExpired)
      expect(expiries.map((expiry) => expiry.name)).toEqual(["soon"])
    }).pipe(Effect.scoped))
})
