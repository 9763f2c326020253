/**
 * The `cluster-3-runners` entry: 3 `@effect/cluster` runners (in this process, each with its own
 * etcd client, session lease, socket server and `Sharding`) on `EtcdRunnerStorage`, with the
 * default `ShardingConfig` but for the runner's address and a 1 s `shardLockRefreshInterval`
 * (the default's 10 s would make the second figure take a minute). It reports
 *
 * - the time from the start of the 3 runners until the 300 shards of the default config are
 *   all locked in etcd, by the 3 runners;
 * - the etcd txns per refresh tick per runner: every `Txn` RPC made inside a
 *   `EtcdRunnerStorage.refresh` span, over the refreshes that had shards to check, during a
 *   5 s window once the shards are spread.
 */
import { EtcdClusterSocket } from "@effect-etcd/cluster"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import { Duration, Effect, Exit, Layer, Option, Schedule, Scope, Tracer } from "effect"
import { Etcd, KeyRange, Kv } from "effect-etcd"
import * as net from "node:net"

/** What the entry reports. */
export interface ClusterFigures {
  readonly shards: number
  readonly acquire_all_s: number
  readonly refresh_ticks: number
  readonly txns_per_refresh_tick: number
}

interface SpanRecord {
  readonly name: string
  readonly parent: string | undefined
  readonly attributes: Map<string, unknown>
}

/** A tracer that keeps each span's name, parent and attributes. */
const recordingTracer = () => {
  const spans = new Map<string, SpanRecord>()
  let next = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const spanId = `s${next++}`
      const attributes = new Map<string, unknown>()
      spans.set(spanId, { name, parent: Option.getOrUndefined(Option.map(parent, (p) => p.spanId)), attributes })
      return {
        _tag: "Span",
        name,
        spanId,
        traceId: "bench",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links,
        sampled: true,
        kind,
        end: () => {},
        attribute: (key, value) => attributes.set(key, value),
        event: () => {},
        addLinks: () => {}
      }
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Runs the entry against the etcd at `endpoints`, under `prefix`. */
export const cluster3Runners = (
  endpoints: ReadonlyArray<string>,
  prefix: string
): Effect.Effect<ClusterFigures, unknown> => {
  const { spans, tracer } = recordingTracer()
  return Effect.gen(function*() {
    const ports = [yield* freePort, yield* freePort, yield* freePort]
    const scope = yield* Scope.make()
    const client = yield* Etcd.make({ endpoints: endpoints.slice() }).pipe(Scope.extend(scope))
    const locks = KeyRange.prefix(`${prefix}shards/`)
    const spread = Effect.map(Kv.range(locks), (result) => ({
      shards: result.kvs.length,
      holders: new Set(result.kvs.map((kv) => kv.value)).size
    })).pipe(Effect.provideService(Etcd.Etcd, client))

    const start = performance.now()
    yield* Effect.forEach(ports, (port) =>
      Layer.buildWithScope(
        EtcdClusterSocket.layer({
          storage: { prefix },
          shardingConfig: {
            runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)),
            shardLockRefreshInterval: "1 second"
          }
        }).pipe(Layer.provide(Etcd.layer({ endpoints: endpoints.slice() }))),
        scope
      ), { concurrency: "unbounded", discard: true })
    const all = yield* spread.pipe(
      Effect.filterOrFail(({ holders, shards }) => shards === 300 && holders === 3, () => new Error("not yet")),
      Effect.retry({ times: 1200, schedule: Schedule.spaced("50 millis") })
    )
    const acquireAll = (performance.now() - start) / 1000

    // the refresh window: spans from now on
    const before = new Set(spans.keys())
    yield* Effect.sleep(Duration.seconds(5))
    const inWindow = [...spans.entries()].filter(([id]) => !before.has(id))
    const refreshes = new Set(
      inWindow.filter(([, span]) =>
        span.name === "EtcdRunnerStorage.refresh" && (span.attributes.get("shards") as number) > 0
      ).map(([id]) => id)
    )
    const underRefresh = (id: string | undefined): boolean => {
      for (let at = id; at !== undefined; at = spans.get(at)?.parent) if (refreshes.has(at)) return true
      return false
    }
    const txns = inWindow.filter(([, span]) => span.name === "etcdserverpb.KV/Txn" && underRefresh(span.parent)).length
    yield* Scope.close(scope, Exit.void)
    return {
      shards: all.shards,
      acquire_all_s: acquireAll,
      refresh_ticks: refreshes.size,
      txns_per_refresh_tick: refreshes.size === 0 ? Number.NaN : txns / refreshes.size
    } satisfies ClusterFigures
  }).pipe(Effect.withTracer(tracer))
}
