/**
 * Deadlines of unary calls: the transport keeps them with one sweep over the calls in
 * flight, not a timer per call. Against a member paused with SIGSTOP (it accepts the
 * calls and never answers), each call ends with Timeout carrying its own timeout, the
 * earliest deadline first whatever the order the calls were made in, and the client
 * works again once the member answers.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Option, Ref } from "effect"
import { Kv, Lease, Txn } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

layer(withServer(), { excludeTestServices: true })("Deadline", (it) => {
  it.effect(
    "calls to a member that never answers each end with Timeout, the earliest deadline first",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("deadline")
        yield* Kv.put(`${p}k`, "before")
        const ended = yield* Ref.make<Array<string>>([])
        /** A call that must time out, noting its name and the timeout its error carries. */
        const timesOut = <A, E extends { readonly _tag: string }>(name: string, call: Effect.Effect<A, E, any>) =>
          Effect.flip(call).pipe(
            Effect.tap(() => Ref.update(ended, (names) => [...names, name])),
            Effect.map((error) => ({ name, error }))
          )
        yield* server.pause(0)
        const results = yield* Effect.all([
          // the latest deadline is asked first: the sweep must be moved earlier for the others
          timesOut("read 1500 ms", Kv.get(`${p}k`, { timeout: "1500 millis" })),
          timesOut("write 900 ms", Kv.put(`${p}k`, "during", { timeout: "900 millis" })),
          timesOut("read 300 ms", Kv.get(`${p}k`, { timeout: "300 millis" })),
          timesOut("txn 600 ms", Txn.txn([], { timeout: "600 millis" })),
          timesOut("lease 1200 ms", Lease.grant(30, { timeout: "1200 millis" }))
        ], { concurrency: "unbounded" }).pipe(Effect.ensuring(server.resume(0)))
        const timeoutOf = (error: unknown): number | undefined => {
          const timeout = (error as { readonly timeout?: Duration.Duration }).timeout
          return timeout === undefined ? undefined : Duration.toMillis(timeout)
        }
        expect(results.map(({ error, name }) => [name, error._tag])).toEqual([
          ["read 1500 ms", "Timeout"],
          // a write that may have been applied is never reported as a plain timeout
          ["write 900 ms", "AmbiguousOutcome"],
          ["read 300 ms", "Timeout"],
          ["txn 600 ms", "Timeout"],
          ["lease 1200 ms", "AmbiguousOutcome"]
        ])
        expect(
          results.map(({ error }) =>
            timeoutOf(error._tag === "AmbiguousOutcome" ? (error as { readonly cause: unknown }).cause : error)
          )
        ).toEqual([1500, 900, 300, 600, 1200])
        expect(yield* Ref.get(ended)).toEqual([
          "read 300 ms",
          "txn 600 ms",
          "write 900 ms",
          "lease 1200 ms",
          "read 1500 ms"
        ])
        // nothing of the timed-out calls is left to hold the client up
        expect(yield* Kv.get(`${p}k`)).toSatisfy((value: Option.Option<string>) =>
          Option.isSome(value) && (value.value === "before" || value.value === "during")
        )
      }),
    30_000
  )
})
