/**
 * Deadlines include cleanup: what a caller waits for ends within the bound it gave, and
 * cleanup that cannot be done in time goes on without it. Against a member paused with
 * SIGSTOP (it accepts calls and never answers); every wait is bounded by an outer
 * timeout well below the 5 s release bound, so a cleanup waited out shows as that outer
 * timeout, not as the outcome asked for.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Logger, Scope, Stream } from "effect"
import { Lease, Lock, Watch } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

/** A logger that keeps every line's message in `lines`. */
const capturingLogs = (lines: Array<string>) =>
  Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => lines.push(String(message))))

/** Fails with "outer timeout" after 4 seconds: what a caller waiting out a 5 s cleanup would see. */
const withinFourSeconds = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: "4 seconds", onTimeout: () => "outer timeout" as const })

layer(withServer(), { excludeTestServices: true })("Cleanup", (it) => {
  it.effect(
    "Lock.make's timeout on a stalled cluster bounds the close of the caller's scope too",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const name = uniquePrefix("cleanup-lock")
        const holder = yield* Scope.make()
        const held = yield* Lock.make(name).pipe(Scope.extend(holder))
        // the member stops once the waiter has its lease and its key in the queue: the
        // waiter's cleanup (revoking that lease) then cannot be done
        yield* Watch.watchPrefix(`${name}/`, { startRevision: held.revision + 1n }).pipe(
          Stream.take(1),
          Stream.runDrain,
          Effect.zipRight(server.pause(0)),
          Effect.fork
        )
        const lines: Array<string> = []
        const outcome = yield* Effect.scoped(Lock.make(name, { timeout: "1 second" })).pipe(
          withinFourSeconds,
          Effect.flip,
          Effect.provide(capturingLogs(lines)),
          Effect.ensuring(server.resume(0))
        )
        yield* Scope.close(holder, Exit.void)
        expect(typeof outcome === "string" ? outcome : outcome._tag).toBe("LockTimeout")
      }),
    30_000
  )

  it.effect(
    "a lease known lost is not revoked when its scope closes: no wait, no warning",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const lines: Array<string> = []
        const outcome = yield* Effect.scoped(Effect.gen(function*() {
          const lease = yield* Lease.make("2 seconds")
          yield* server.pause(0)
          // no keepalive is answered within the TTL: the lease is lost
          return (yield* Effect.flip(lease.lost))._tag
        })).pipe(
          withinFourSeconds,
          Effect.merge,
          Effect.provide(capturingLogs(lines)),
          Effect.ensuring(server.resume(0))
        )
        expect(outcome).toBe("LeaseLost")
        expect(lines).toEqual([])
      }),
    30_000
  )
})
