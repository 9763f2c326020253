/**
 * The one-call runners, in this process: `EtcdClusterSocket.layer` (socket transport) and
 * `layerHttp` (HTTP transport) each register in etcd, lock every shard of the default config
 * (a runner alone holds them all) and serve an entity; closing the layer leaves nothing in etcd.
 */
import { EtcdClusterSocket } from "@effect-etcd/cluster"
import { EtcdServer, Ports } from "@effect-etcd/testing"
import * as Entity from "@effect/cluster/Entity"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as Rpc from "@effect/rpc/Rpc"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Schedule, Schema } from "effect"
import type { Etcd } from "effect-etcd"
import { KeyRange, Kv } from "effect-etcd"

const Echo = Entity.make("Echo", [Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String })])
const EchoLive = Echo.toLayer({ Echo: ({ payload }) => Effect.succeed(payload.text) })

layer(EtcdServer.layerClient(), { excludeTestServices: true })("EtcdClusterSocket", (it) => {
  for (const transport of ["socket", "http"] as const) {
    it.effect(
      `${transport}: a runner registers, holds every shard, serves its entities, and leaves nothing`,
      () =>
        Effect.gen(function*() {
          const port = yield* Ports.freePort
          const prefix = `test/cluster-socket/${transport}/${process.pid}/`
          const options = {
            storage: { prefix, ttl: "5 seconds" as const },
            shardingConfig: { runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)) }
          }
          const server: Layer.Layer<EtcdClusterSocket.Services, unknown, Etcd.Etcd> = transport === "socket"
            ? EtcdClusterSocket.layer(options)
            : EtcdClusterSocket.layerHttp(options)
          const runner = EchoLive.pipe(Layer.provideMerge(server))
          yield* Effect.gen(function*() {
            const locks = Kv.count(KeyRange.prefix(`${prefix}shards/`))
            yield* locks.pipe(
              Effect.filterOrFail((count) => count === 300, () => new Error("not every shard locked yet")),
              Effect.retry({ times: 300, schedule: Schedule.spaced("100 millis") })
            )
            const runners = yield* Kv.getPrefix(`${prefix}runners/`)
            expect([...runners.keys()]).toEqual([`${prefix}runners/127.0.0.1:${port}`])
            const client = yield* Echo.client
            expect(yield* client("e-1").Echo({ text: "hello" })).toBe("hello")
          }).pipe(Effect.provide(runner))
          // the runner released its shards and unregistered, and its lease is revoked
          expect(yield* Kv.count(KeyRange.prefix(prefix))).toBe(0)
        }),
      60_000
    )
  }
})
