/**
 * A TLS member stopped with SIGTERM under put load: the member refuses the streams it will
 * not serve (RST_STREAM REFUSED_STREAM, or a GOAWAY whose last-stream-id is below them) and
 * closes. Those puts were never processed: they are sent again, to another member, and
 * succeed. Only a put the member had taken can be AmbiguousOutcome (etcd 3.4 stops its gRPC
 * server while such calls run: they end without a status, and may have been applied).
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Option } from "effect"
import type { EtcdError } from "effect-etcd"
import { Etcd, KeyRange, Kv } from "effect-etcd"
import { neverSent } from "../src/internal/transport/grpcError.js"
import { notLeader } from "./faults.js"
import { uniquePrefix } from "./support.js"

layer(EtcdServer.layer({ members: 3, tls: true }), { excludeTestServices: true })("a TLS cluster", (it) => {
  it.effect(
    "puts in flight when the member in use gets SIGTERM succeed, sent again when never processed",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const tls = yield* Option.match(server.tls, {
          onNone: () => Effect.dieMessage("the server was started without TLS"),
          onSome: Effect.succeed
        })
        const p = uniquePrefix("sigterm")
        const etcd = yield* Etcd.make({ endpoints: server.endpoints, tls: { ca: tls.ca } })
        yield* Effect.gen(function*() {
          yield* Kv.put(`${p}warm`, "x")
          const inUse = server.endpoints.indexOf(yield* Etcd.currentEndpoint)
          // a follower: a leader's shutdown hands its leadership over, which leaves the writes it
          // was proposing open ("leader changed"), whatever the client does
          yield* notLeader(inUse)
          // 64 writers, each putting keys of its own one after another
          const acked: Array<string> = []
          const failures: Array<EtcdError.PutError> = []
          let stop = false
          const writer = (name: number) =>
            Effect.gen(function*() {
              for (let seq = 0; seq < 10_000 && !stop; seq++) {
                const key = `${p}w/${name}/${seq}`
                const exit = yield* Effect.exit(Kv.put(key, "v"))
                if (Exit.isSuccess(exit)) acked.push(key)
                else failures.push(...Cause.failures(exit.cause))
              }
            })
          const writers = yield* Effect.fork(
            Effect.all(Array.from({ length: 64 }, (_, i) => writer(i)), { concurrency: "unbounded", discard: true })
          )
          for (let attempt = 0; attempt < 600 && acked.length < 500; attempt++) yield* Effect.sleep(Duration.millis(10))
          yield* server.kill(inUse, "SIGTERM")
          const atKill = acked.length
          for (let attempt = 0; attempt < 1_000 && acked.length < atKill + 500; attempt++) {
            yield* Effect.sleep(Duration.millis(10))
          }
          stop = true
          yield* Fiber.join(writers)
          yield* server.start(inUse)
          // no put the member refused, or never got, failed: each was sent again
          const notProcessed = failures.filter((error) =>
            error._tag !== "AmbiguousOutcome" || /REFUSED_STREAM|GOAWAY|not processed/.test(error.message) ||
            (error.cause._tag === "Unavailable" && neverSent(error.cause))
          )
          expect(notProcessed.map((error) => error.message)).toEqual([])
          expect(acked.length).toBeGreaterThanOrEqual(atKill + 500)
          // every acknowledged put is there; of the ambiguous ones, some may be
          const stored = yield* Kv.count(KeyRange.prefix(`${p}w/`))
          expect(stored).toBeGreaterThanOrEqual(acked.length)
          expect(stored).toBeLessThanOrEqual(acked.length + failures.length)
        }).pipe(Effect.provideService(Etcd.Etcd, etcd))
      }).pipe(Effect.scoped),
    120_000
  )
})
