/**
 * etcd's own proxies in front of a test cluster, as Effect layers: `etcd grpc-proxy start`
 * (a gRPC server that forwards to the members and serves watchers of one range from one
 * upstream watch, as large deployments use it) and `etcd gateway start` (a plain TCP proxy).
 * Both come with Debian's etcd-server package, listen on a free loopback port and are stopped
 * when the layer's scope closes, also when a test fails.
 *
 * @example
 * ```ts
 * import { EtcdProxy, EtcdServer } from "@effect-etcd/testing"
 * import { Effect, Layer } from "effect"
 * import { Etcd } from "effect-etcd"
 *
 * // a client that reaches a 3-member cluster only through etcd's gRPC proxy
 * const Proxied = Layer.unwrapEffect(
 *   Effect.map(EtcdProxy.EtcdProxy, (proxy) => Etcd.layer({ endpoints: proxy.endpoints }))
 * ).pipe(
 *   Layer.provideMerge(EtcdProxy.layerGrpcProxy()),
 *   Layer.provideMerge(EtcdServer.layer({ members: 3 }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { dataRoot, EtcdServer } from "./EtcdServer.js"
import { EtcdServerError } from "./EtcdServerError.js"
import { findBinary } from "./internal/binaries.js"
import { onSystemClock } from "./internal/systemClock.js"
import { dirVariable, guard } from "./internal/watchdog.js"
import { freePorts } from "./Ports.js"

/**
 * Which proxy: `grpc-proxy` (`etcd grpc-proxy start`) or `gateway` (`etcd gateway start`).
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = "grpc-proxy" | "gateway"

/**
 * A running proxy.
 *
 * @since 0.1.0
 * @category models
 */
export interface EtcdProxy {
  readonly kind: Kind
  /** The proxy's client URL (`http://127.0.0.1:<port>`), the one endpoint a client behind it uses. */
  readonly endpoints: ReadonlyArray<string>
  /** The members' client URLs it forwards to. */
  readonly upstream: ReadonlyArray<string>
  /** The PID of the proxy process. */
  readonly pid: number
}

/**
 * The service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export const EtcdProxy: Context.Tag<EtcdProxy, EtcdProxy> = Context.GenericTag<EtcdProxy>(
  "@effect-etcd/testing/EtcdProxy"
)

/**
 * What to start.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly kind: Kind
  /** The members' client URLs (plain `http://`: the proxies are started without TLS). */
  readonly endpoints: ReadonlyArray<string>
  /** More flags for the proxy. */
  readonly extraArgs?: ReadonlyArray<string> | undefined
}

const logLines = 100

const fail = (message: string, cause?: unknown) => new EtcdServerError({ message, cause })

/** Whether `/health` answers through the proxy (both serve etcd's HTTP endpoints on their port). */
const healthy = (url: string) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.any([signal, AbortSignal.timeout(1000)]) })
      const body = (await response.json()) as { health?: string }
      return body.health === "true"
    },
    catch: () => false
  }).pipe(Effect.orElseSucceed(() => false))

/**
 * Starts a proxy in front of `endpoints`; it is killed when the scope closes. The gRPC proxy's
 * data dir is under the test run's root in `/dev/shm`, and the gateway (which has none) carries
 * that root in its environment, so that the run's global teardown finds either if a crashed
 * worker leaves it behind.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<EtcdProxy, EtcdServerError, Scope.Scope | CommandExecutor.CommandExecutor | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (options.endpoints.length === 0 || options.endpoints.some((url) => !url.startsWith("http://"))) {
      return yield* Effect.fail(fail(`an etcd proxy needs plain http:// endpoints, got ${options.endpoints.join(",")}`))
    }
    const etcdBin = yield* findBinary("ETCD_BIN", "etcd")
    const fs = yield* FileSystem.FileSystem
    const root = dataRoot()
    yield* fs.makeDirectory(root, { recursive: true }).pipe(Effect.mapError((e) => fail(`cannot create ${root}`, e)))
    const dir = yield* fs.makeTempDirectoryScoped({ directory: root, prefix: `${process.pid}-${options.kind}-` }).pipe(
      Effect.mapError((e) => fail(`cannot create a data dir under ${root}`, e))
    )
    // a program killed before its scope closes leaves no proxy running and no data behind
    yield* guard(dir)
    const [port] = yield* freePorts(1)
    const address = `127.0.0.1:${port}`
    const args = options.kind === "grpc-proxy"
      ? [
        "grpc-proxy",
        "start",
        `--endpoints=${options.endpoints.join(",")}`,
        `--listen-addr=${address}`,
        `--advertise-client-url=${address}`,
        `--data-dir=${dir}/data`
      ]
      : [
        "gateway",
        "start",
        `--endpoints=${options.endpoints.join(",")}`,
        `--listen-addr=${address}`,
        // a member that refused a connection is tried again after this (1 minute by default)
        "--retry-delay=1s"
      ]
    const log: Array<string> = []
    // finalizers run in reverse order: the process is killed before its data dir goes
    const child = yield* Command.make(etcdBin, ...args, ...(options.extraArgs ?? [])).pipe(
      Command.env({ [dirVariable]: dir }),
      Command.stdout("pipe"),
      Command.stderr("pipe"),
      Command.start,
      Effect.mapError((e) => fail(`cannot start ${etcdBin} ${options.kind}: ${e.message}`, e))
    )
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Effect.sync(() => {
          try {
            process.kill(child.pid, "SIGKILL")
          } catch {
            // already gone
          }
        })
        yield* child.exitCode.pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
      }).pipe(onSystemClock)
    )
    const keep = (stream: Stream.Stream<Uint8Array, unknown>) =>
      stream.pipe(
        Stream.decodeText(),
        Stream.splitLines,
        Stream.runForEach((line) =>
          Effect.sync(() => {
            log.push(line)
            if (log.length > logLines) log.splice(0, log.length - logLines)
          })
        ),
        Effect.ignore,
        Effect.forkScoped
      )
    yield* keep(child.stdout)
    yield* keep(child.stderr)
    const url = `http://${address}`
    for (let attempt = 0; attempt < 200; attempt++) {
      if (yield* healthy(url)) {
        return { kind: options.kind, endpoints: [url], upstream: options.endpoints, pid: child.pid }
      }
      const running = yield* child.isRunning.pipe(Effect.orElseSucceed(() => false))
      if (!running) break
      yield* Effect.sleep(Duration.millis(100))
    }
    return yield* Effect.fail(
      fail(`etcd ${options.kind} on ${address} did not become healthy; its log:\n${log.slice(-30).join("\n")}`)
    )
  }).pipe(onSystemClock, Effect.annotateLogs({ module: "EtcdProxy" }))

const layerOf = (
  kind: Kind,
  extraArgs: ReadonlyArray<string> | undefined
): Layer.Layer<EtcdProxy, EtcdServerError, EtcdServer> =>
  Layer.scoped(
    EtcdProxy,
    Effect.flatMap(EtcdServer, (server) =>
      Option.isSome(server.tls)
        ? Effect.fail(fail("the etcd proxies are started without TLS: use a cluster without tls"))
        : make({ kind, endpoints: server.endpoints, extraArgs }))
  ).pipe(Layer.provide(NodeContext.layer))

/**
 * `etcd grpc-proxy start` in front of every member of the `EtcdServer` in context. etcd 3.4's
 * gRPC proxy numbers each stream's watchers itself (from 0, whatever ID a client asks for),
 * answers a create that joins a watched range at once and one that opens a new range only when
 * its member has: a client behind it has to go by the IDs it answers with.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGrpcProxy = (
  options: { readonly extraArgs?: ReadonlyArray<string> | undefined } = {}
): Layer.Layer<EtcdProxy, EtcdServerError, EtcdServer> => layerOf("grpc-proxy", options.extraArgs)

/**
 * `etcd gateway start` (a TCP proxy that picks a member per connection, and the next one when
 * a member refuses) in front of every member of the `EtcdServer` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGateway = (
  options: { readonly extraArgs?: ReadonlyArray<string> | undefined } = {}
): Layer.Layer<EtcdProxy, EtcdServerError, EtcdServer> => layerOf("gateway", options.extraArgs)
