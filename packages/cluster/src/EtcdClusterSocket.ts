/**
 * A cluster runner in one call: `@effect/cluster`'s `Sharding` over its socket transport
 * (`@effect/platform-node`'s `NodeClusterSocket`), with {@link EtcdRunnerStorage} keeping runner
 * membership and shard locks in etcd.
 *
 * Message storage is `MessageStorage.layerNoop`: messages go straight from the sender to the
 * runner that holds the entity's shard and are not persisted, so a message in flight when its
 * runner dies is lost (the sender sees the failure), and durable messages, workflows and
 * delivery after a restart need a persistent `MessageStorage` (`SqlMessageStorage`) instead: build
 * the layer yourself from `NodeClusterSocket.layer({ storage: "byo" })` then.
 *
 * @since 0.1.0
 */
import * as MessageStorage from "@effect/cluster/MessageStorage"
import type * as Runners from "@effect/cluster/Runners"
import type * as RunnerStorage from "@effect/cluster/RunnerStorage"
import type { Sharding } from "@effect/cluster/Sharding"
import type * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as NodeClusterHttp from "@effect/platform-node/NodeClusterHttp"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import type * as SocketServer from "@effect/platform/SocketServer"
import type { Etcd, EtcdError } from "effect-etcd"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import * as EtcdRunnerStorage from "./EtcdRunnerStorage.js"

/**
 * The options of {@link layer} and {@link layerHttp}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where and how the runner keeps its membership and shard locks in etcd. */
  readonly storage?: EtcdRunnerStorage.EtcdRunnerStorageOptions | undefined
  /** The serialization of runner-to-runner messages; MessagePack by default. */
  readonly serialization?: "msgpack" | "ndjson" | undefined
  /**
   * `ShardingConfig` settings (read from the environment otherwise, as `NodeClusterSocket` does):
   * the runner's address above all. Keep `shardLockRefreshInterval` well under the lease TTL.
   */
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/**
 * What a runner built by {@link layer} provides.
 *
 * @since 0.1.0
 * @category models
 */
export type Services =
  | Sharding
  | Runners.Runners
  | MessageStorage.MessageStorage
  | RunnerStorage.RunnerStorage
  | EtcdRunnerStorage.ShardLocks

/**
 * A runner on the socket transport with etcd storage and no-op message storage. It needs an
 * `Etcd` client; the session lease, the socket server and the runner live as long as the layer.
 *
 * @example
 * ```ts
 * import { EtcdClusterSocket } from "@effect-etcd/cluster"
 * import * as RunnerAddress from "@effect/cluster/RunnerAddress"
 * import { Etcd } from "effect-etcd"
 * import { Layer, Option } from "effect"
 *
 * const runner = EtcdClusterSocket.layer({
 *   storage: { ttl: "10 seconds" },
 *   shardingConfig: {
 *     runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", 34431)),
 *     shardLockRefreshInterval: "2 seconds"
 *   }
 * }).pipe(Layer.provide(Etcd.layer({ endpoints: ["http://127.0.0.1:2379"] })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  Services,
  SocketServer.SocketServerError | ConfigError.ConfigError | EtcdError.LeaseGrantError,
  Etcd.Etcd
> =>
  NodeClusterSocket.layer({
    storage: "byo",
    serialization: options.serialization,
    shardingConfig: options.shardingConfig
  }).pipe(
    Layer.provideMerge(MessageStorage.layerNoop),
    Layer.provideMerge(EtcdRunnerStorage.layer(options.storage))
  )

/**
 * The same runner on `@effect/cluster`'s HTTP (or WebSocket) transport
 * (`@effect/platform-node`'s `NodeClusterHttp`, which serves it on the runner's listen
 * address). It needs an `Etcd` client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (
  options: Options & { readonly transport?: "http" | "websocket" | undefined } = {}
): Layer.Layer<
  Services,
  HttpServerError.ServeError | ConfigError.ConfigError | EtcdError.LeaseGrantError,
  Etcd.Etcd
> =>
  NodeClusterHttp.layer({
    transport: options.transport ?? "http",
    storage: "byo",
    serialization: options.serialization,
    shardingConfig: options.shardingConfig
  }).pipe(
    Layer.provideMerge(MessageStorage.layerNoop),
    Layer.provideMerge(EtcdRunnerStorage.layer(options.storage))
  )
