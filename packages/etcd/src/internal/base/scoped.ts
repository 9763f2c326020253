/**
 * `Effect.scoped` in a third of its Effect steps, for the recipes' hot paths.
 *
 * `Effect.scoped` provides the scope through `Effect.provideService`, which sets the
 * fiber's context inside an `acquireUseRelease` of its own and adds an `onExit` to close
 * the scope: about 37 steps around an effect that may take only two RPCs (a lock on a
 * session). Here one uninterruptible region sets the context, runs the effect
 * interruptibly, and on every exit puts the context back and closes the scope with the
 * effect's exit: about a dozen steps, the same semantics.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Scope from "effect/Scope"

/**
 * Runs `effect` with a new `Scope`, closed with the effect's exit when it ends, fails
 * or is interrupted, after the fiber's context is back as it was.
 */
export const scoped = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Scope.make(), (scope) =>
      Effect.flatMap(
        FiberRef.getAndUpdate(FiberRef.currentContext, (context) => Context.add(context, Scope.Scope, scope)),
        (context) => {
          const end = (exit: Exit.Exit<A, E>): Effect.Effect<A, E> =>
            Effect.zipRight(
              FiberRef.set(FiberRef.currentContext, context),
              Effect.zipRight(Scope.close(scope, exit), exit)
            )
          return Effect.matchCauseEffect(restore(effect as Effect.Effect<A, E>), {
            onFailure: (cause) => end(Exit.failCause(cause)),
            onSuccess: (a) => end(Exit.succeed(a))
          })
        }
      ))
  ) as Effect.Effect<A, E, Exclude<R, Scope.Scope>>
