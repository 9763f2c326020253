/**
 * `pnpm example <name>`: runs one example against a throwaway etcd started for it, or against the
 * cluster named by ETCD_ENDPOINTS, under a key prefix of its own that it deletes at the end.
 */
import { EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, Console, Effect, Layer } from "effect"
import { Etcd, Kv } from "effect-etcd"
import * as ConfigFollower from "./ConfigFollower.js"
import * as LeaderWorker from "./LeaderWorker.js"
import * as Metrics from "./Metrics.js"
import * as ServiceRegistry from "./ServiceRegistry.js"
import * as ShardedCounter from "./ShardedCounter.js"

/** Each example's program, given the key prefix it works under. */
const examples: Record<string, (prefix: string) => Effect.Effect<unknown, unknown, Etcd.Etcd>> = {
  registry: ServiceRegistry.program,
  leader: LeaderWorker.program,
  config: ConfigFollower.program,
  cluster: ShardedCounter.program,
  metrics: (prefix) => Metrics.program(prefix)
}

const usage = `usage: pnpm example <${Object.keys(examples).join("|")}>`

const name = process.argv[2]
/** The metrics example turns the client's metrics on (they are off by default). */
const metrics = name === "metrics"

const etcd: Layer.Layer<Etcd.Etcd, unknown> = process.env.ETCD_ENDPOINTS
  ? Etcd.layerConfig(Config.map(Etcd.config, (config) => ({ ...config, metrics: metrics || config.metrics }))).pipe(
    Layer.provide(NodeContext.layer)
  )
  : Layer.unwrapScoped(Effect.gen(function*() {
    yield* Console.log("starting a throwaway etcd (set ETCD_ENDPOINTS to use your own)")
    const server = yield* EtcdServer.EtcdServer
    return Etcd.layer({ endpoints: server.endpoints, metrics })
  })).pipe(Layer.provide(EtcdServer.layer()))

if (name === undefined || !Object.hasOwn(examples, name)) {
  process.stderr.write(`${usage}\n`)
  process.exit(2)
}

const prefix = `examples/${name}/${Date.now().toString(36)}/`
examples[name](prefix).pipe(
  Effect.ensuring(Effect.ignore(Kv.deletePrefix(prefix))),
  Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`${name} took more than 60 seconds`) }),
  Effect.zipRight(Console.log(`\n${name}: done`)),
  Effect.provide(etcd),
  NodeRuntime.runMain
)
