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
import { Ports } from "@effect-etcd/testing"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import { Duration, Effect, Exit, Layer, Option, Schedule, Scope, Tracer } from "effect"
import { Etcd, KeyRange, Kv } from "effect-etcd"

/** What the entry reports. */
export interface ClusterFigures {
  readonly shards: number
  readonly acquire_all_s: number
  readonly refresh_ticks: number
  readonly txns_per_refresh_tick: number
}

/**
 * Records the spans of the tracer in use: `recorded(effect)` runs `effect` under that tracer
 * wrapped, which makes every span as the tracer does and keeps it in `spans`, by span ID, with
 * its name, parent and attributes as the tracer holds them.
 */
const spanRecorder = () => {
  const spans = new Map<string, Tracer.Span>()
  const recorded = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((current) =>
      Effect.withTracer(
        effect,
        Tracer.make({
          span: (name, parent, context, links, startTime, kind, options) => {
            const span = current.span(name, parent, context, links, startTime, kind, options)
            spans.set(span.spanId, span)
            return span
          },
          context: (f, fiber) => current.context(f, fiber)
        })
      )
    )
  return { spans, recorded }
}

/** Runs the entry against the etcd at `endpoints`, under `prefix`. */
export const cluster3Runners = (
  endpoints: ReadonlyArray<string>,
  prefix: string
): Effect.Effect<ClusterFigures, unknown> => {
  const { recorded, spans } = spanRecorder()
  return Effect.gen(function*() {
    const ports = yield* Ports.freePorts(3)
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
    const parentOf = (span: Tracer.Span | undefined): string | undefined =>
      span === undefined ? undefined : Option.getOrUndefined(Option.map(span.parent, (parent) => parent.spanId))
    const underRefresh = (id: string | undefined): boolean => {
      for (let at = id; at !== undefined; at = parentOf(spans.get(at))) if (refreshes.has(at)) return true
      return false
    }
    const txns = inWindow.filter(([, span]) => span.name === "etcdserverpb.KV/Txn" && underRefresh(parentOf(span)))
      .length
    yield* Scope.close(scope, Exit.void)
    return {
      shards: all.shards,
      acquire_all_s: acquireAll,
      refresh_ticks: refreshes.size,
      txns_per_refresh_tick: refreshes.size === 0 ? Number.NaN : txns / refreshes.size
    } satisfies ClusterFigures
  }).pipe(recorded)
}
