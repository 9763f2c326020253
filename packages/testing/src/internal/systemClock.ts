/**
 * The system's clock for what the test servers wait on (a member becoming healthy, a process
 * exiting or stopping), whatever clock the calling fiber has: `it.effect` runs a test on
 * `TestClock`, whose time moves only when the test adjusts it, and a restart that waited on it
 * never ended.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

const systemClock = Clock.make()

/** Runs `effect` with the system's clock. */
export const onSystemClock = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withClock(effect, systemClock)
