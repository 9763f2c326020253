import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { scoped } from "../src/internal/base/scoped.js"

// The recipes' `scoped` is `Effect.scoped` in fewer steps: the same scope, closed with
// the same exit, and the fiber's context as it was afterwards, whatever the ending.
class Marker extends Context.Tag("Marker")<Marker, string>() {}

/** Runs `body` in `scoped` with a finalizer that records the exit the scope closed with. */
const recording = <A, E>(body: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const closedWith: Array<Exit.Exit<unknown, unknown>> = []
    const exit = yield* scoped(
      Effect.zipRight(Effect.addFinalizer((exit) => Effect.sync(() => closedWith.push(exit))), body)
    ).pipe(Effect.exit)
    return { exit, closedWith }
  })

describe("scoped", () => {
  it.effect("closes the scope with the effect's success", () =>
    Effect.gen(function*() {
      const { closedWith, exit } = yield* recording(Effect.succeed(7))
      expect(exit).toStrictEqual(Exit.succeed(7))
      expect(closedWith).toStrictEqual([Exit.succeed(7)])
    }))

  it.effect("closes the scope with the effect's failure and fails with it", () =>
    Effect.gen(function*() {
      const { closedWith, exit } = yield* recording(Effect.fail("boom"))
      expect(exit).toStrictEqual(Exit.fail("boom"))
      expect(closedWith).toStrictEqual([Exit.fail("boom")])
    }))

  it.effect("closes the scope when the effect is interrupted, and only once", () =>
    Effect.gen(function*() {
      const closed: Array<boolean> = []
      const started = yield* Deferred.make<void>()
      const fiber = yield* scoped(
        Effect.zipRight(
          Effect.addFinalizer((exit) => Effect.sync(() => closed.push(Exit.isInterrupted(exit)))),
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
        )
      ).pipe(Effect.fork)
      yield* Deferred.await(started)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(closed).toStrictEqual([true])
    }))

  it.effect("gives the effect a scope of its own and leaves the caller's context as it was", () =>
    Effect.gen(function*() {
      const outer = yield* Effect.scope
      const inner = yield* scoped(
        Effect.zipLeft(Effect.scope, Effect.fail("after")).pipe(
          Effect.catchAll(() => Effect.scope)
        )
      )
      expect(inner).not.toBe(outer)
      // the caller's scope and services are back, after a success and after a failure
      expect(yield* Effect.scope).toBe(outer)
      expect(yield* Marker).toBe("kept")
      yield* Effect.exit(scoped(Effect.fail("again")))
      expect(yield* Effect.scope).toBe(outer)
      expect(yield* Marker).toBe("kept")
    }).pipe(Effect.provideService(Marker, "kept"), Effect.scoped))

  it.effect("closes the scope before it returns", () =>
    Effect.gen(function*() {
      let inner: Scope.CloseableScope | undefined
      yield* scoped(Effect.flatMap(Effect.scope, (scope) => Effect.sync(() => (inner = scope as Scope.CloseableScope))))
      // a closed scope runs a finalizer added to it at once
      let ran = false
      yield* Scope.addFinalizer(inner!, Effect.sync(() => (ran = true)))
      expect(ran).toBe(true)
    }))
})
