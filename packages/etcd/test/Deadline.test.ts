/**
 * Deadlines of unary calls: the transport keeps them with one sweep over the calls in
 * flight, not a timer per call. Against a member paused with SIGSTOP (it accepts the
 * calls and never answers), each call ends with EtcdTimeout carrying its own timeout, a call
 * asked for first with a far later deadline does not hold back the earlier deadlines,
 * and the client works again once the member answers. What is asserted is what ended
 * and with what, never how long it took: wall time belongs to the bench.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Option } from "effect"
import { Kv, Lease, Txn } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

/**
 * No bound of the client's own within the test's time: only the calls' deadlines can end
 * them (not a connection found dead by a keepalive PING), and the deadline sweep is never
 * already armed for an earlier time by the client's own calls (its connect probe, the
 * put before the pause), which would end the calls in time even if a new, earlier
 * deadline did not move the sweep.
 */
const client = {
  connectTimeout: "10 minutes",
  requestTimeout: "10 minutes",
  keepAliveTime: "10 minutes",
  keepAliveTimeout: "10 minutes"
} as const

layer(withServer({}, client), { excludeTestServices: true })("Deadline", (it) => {
  it.effect(
    "calls to a member that never answers each end with EtcdTimeout, none held back by a later deadline",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("deadline")
        yield* Kv.put(`${p}k`, "before")
        /** A call that must time out, with its name and the error it ends with. */
        const timesOut = <A, E extends { readonly _tag: string }>(name: string, call: Effect.Effect<A, E, any>) =>
          Effect.map(Effect.flip(call), (error) => ({ name, error }))
        const { latest, results } = yield* Effect.scoped(Effect.gen(function*() {
          yield* Effect.acquireRelease(server.pause(0), () => server.resume(0))
          // the latest deadline is asked first: the sweep must be moved earlier for the others
          const latest = yield* Effect.fork(Kv.get(`${p}k`, { timeout: "10 minutes" }))
          const results = yield* Effect.all([
            timesOut("read 1500 ms", Kv.get(`${p}k`, { timeout: "1500 millis" })),
            timesOut("write 900 ms", Kv.put(`${p}k`, "during", { timeout: "900 millis" })),
            timesOut("read 300 ms", Kv.get(`${p}k`, { timeout: "300 millis" })),
            timesOut("txn 600 ms", Txn.txn([], { timeout: "600 millis" })),
            timesOut("lease 1200 ms", Lease.grant("30 seconds", { timeout: "1200 millis" }))
          ], { concurrency: "unbounded" })
          // every shorter deadline has passed; the member has still not answered the first call
          expect(yield* Fiber.poll(latest)).toEqual(Option.none())
          return { latest, results }
        }))
        const timeoutOf = (error: unknown): number | undefined => {
          const timeout = (error as { readonly timeout?: Duration.Duration }).timeout
          return timeout === undefined ? undefined : Duration.toMillis(timeout)
        }
        expect(results.map(({ error, name }) => [name, error._tag])).toEqual([
          ["read 1500 ms", "EtcdTimeout"],
          // a write that may have been applied is never reported as a plain timeout
          ["write 900 ms", "AmbiguousOutcome"],
          ["read 300 ms", "EtcdTimeout"],
          ["txn 600 ms", "EtcdTimeout"],
          ["lease 1200 ms", "AmbiguousOutcome"]
        ])
        expect(
          results.map(({ error }) =>
            timeoutOf(error._tag === "AmbiguousOutcome" ? (error as { readonly cause: unknown }).cause : error)
          )
        ).toEqual([1500, 900, 300, 600, 1200])
        // the member is back: the first call is answered, and nothing of the timed-out calls holds the client up
        const isBeforeOrDuring = (value: Option.Option<string>) =>
          Option.isSome(value) && (value.value === "before" || value.value === "during")
        expect(yield* Fiber.join(latest)).toSatisfy(isBeforeOrDuring)
        expect(yield* Kv.get(`${p}k`)).toSatisfy(isBeforeOrDuring)
      }),
    30_000
  )
})
