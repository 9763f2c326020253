/**
 * The client's metrics: Effect `Metric`s, read by any Effect metrics backend, named after
 * OpenTelemetry's semantic conventions (`rpc.client.duration`, with `rpc.system`,
 * `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, `server.address`, `server.port`)
 * and `etcd.client.*` where none exists. They are recorded only by a client built with
 * `metrics: true` (`Etcd.layer`, `EtcdMemory.layer`, or `ETCD_METRICS=true` through
 * `Etcd.config`): off by default, since their cost could not be shown to stay within 3% of
 * the client's CPU per operation. Every metric carries a `unit` tag, which
 * `@effect/opentelemetry` exports as its unit. Keys never become tags; an election's name
 * does only with `metrics: { electionNames: true }`. docs/metrics.md has the table.
 *
 * @example
 * ```ts
 * import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
 * import { PeriodicExportingMetricReader, ConsoleMetricExporter } from "@opentelemetry/sdk-metrics"
 * import { Effect, Layer } from "effect"
 * import { Etcd, Kv } from "effect-etcd"
 *
 * const Telemetry = NodeSdk.layer(() => ({
 *   resource: { serviceName: "my-service" },
 *   metricReader: new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter() })
 * }))
 *
 * export const main = Kv.put("greeting", "hello").pipe(
 *   Effect.provide(Layer.merge(Etcd.layer({ endpoints: ["http://127.0.0.1:2379"], metrics: true }), Telemetry))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Metrics from "./internal/base/metrics.js"

/**
 * The names of the client's metrics, by what each measures (see {@link names}).
 *
 * @since 0.2.0
 * @category models
 */
export interface Names {
  readonly rpcDuration: "rpc.client.duration"
  readonly callsInFlight: "etcd.client.calls.in_flight"
  readonly retries: "etcd.client.retries"
  readonly failovers: "etcd.client.failovers"
  readonly ambiguousOutcomes: "etcd.client.ambiguous_outcomes"
  readonly connects: "etcd.client.connections.opened"
  readonly disconnects: "etcd.client.connections.closed"
  readonly keepAliveTimeouts: "etcd.client.connections.keepalive_timeouts"
  readonly preferredMember: "etcd.client.preferred_member"
  readonly watchersOpen: "etcd.client.watch.watchers"
  readonly watchEvents: "etcd.client.watch.events"
  readonly watchResumes: "etcd.client.watch.resumes"
  readonly watchCompactions: "etcd.client.watch.compactions"
  readonly watchLag: "etcd.client.watch.lag"
  readonly watchBufferWait: "etcd.client.watch.buffer_wait"
  readonly watchSlowConsumers: "etcd.client.watch.slow_consumers"
  readonly leasesHeld: "etcd.client.lease.held"
  readonly keepAliveDuration: "etcd.client.lease.keepalive.duration"
  readonly leaseTtlMin: "etcd.client.lease.ttl_remaining.min"
  readonly leasesLost: "etcd.client.lease.lost"
  readonly lockWait: "etcd.client.lock.wait"
  readonly lockTimeouts: "etcd.client.lock.timeouts"
  readonly leaderChanges: "etcd.client.election.leader_changes"
  readonly leaderHeld: "etcd.client.election.leader"
  readonly readBatchSize: "etcd.client.read_batch.size"
  readonly readsSaved: "etcd.client.read_batch.saved"
  readonly mirrorEntries: "etcd.client.mirror.entries"
  readonly mirrorResyncs: "etcd.client.mirror.resyncs"
  readonly mirrorLag: "etcd.client.mirror.lag"
}

/**
 * The name of every metric the client records, by what it measures.
 *
 * | name | type | unit | tags |
 * | --- | --- | --- | --- |
 * | `rpc.client.duration` | histogram | ms | `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, `server.address`, `server.port` |
 * | `etcd.client.calls.in_flight` | gauge | {call} | `rpc.system`, `rpc.service`, `rpc.method` |
 * | `etcd.client.retries` | counter | {retry} | `rpc.*`, `reason` (the failure's tag) |
 * | `etcd.client.failovers` | counter | {failover} | `server.address`, `server.port` (the member calls moved to) |
 * | `etcd.client.ambiguous_outcomes` | counter | {call} | `rpc.*` |
 * | `etcd.client.connections.opened` / `.closed` / `.keepalive_timeouts` | counter | {connection} | `server.address`, `server.port` |
 * | `etcd.client.preferred_member` | gauge | 1 | `server.address`, `server.port` |
 * | `etcd.client.watch.watchers` | gauge | {watcher} | |
 * | `etcd.client.watch.events` | counter | {event} | |
 * | `etcd.client.watch.resumes` | counter | {resume} | |
 * | `etcd.client.watch.compactions`, `.slow_consumers` | counter | {watcher} | |
 * | `etcd.client.watch.lag` | histogram | {revision} | |
 * | `etcd.client.watch.buffer_wait` | histogram | ms | |
 * | `etcd.client.lease.held` | gauge | {lease} | |
 * | `etcd.client.lease.keepalive.duration` | histogram | ms | |
 * | `etcd.client.lease.ttl_remaining.min` | gauge | s | |
 * | `etcd.client.lease.lost` | counter | {lease} | `reason` (`expired`, `keepalive-timeout`) |
 * | `etcd.client.lock.wait` | histogram | ms | `recipe`, `outcome` |
 * | `etcd.client.lock.timeouts` | counter | {wait} | `recipe` |
 * | `etcd.client.election.leader_changes` | counter | {change} | |
 * | `etcd.client.election.leader` | gauge | 1 | `election` (only with `electionNames`) |
 * | `etcd.client.read_batch.size` | histogram | {read} | |
 * | `etcd.client.read_batch.saved` | counter | {call} | |
 * | `etcd.client.mirror.entries` | gauge | {entry} | |
 * | `etcd.client.mirror.resyncs` | counter | {resync} | |
 * | `etcd.client.mirror.lag` | histogram | {revision} | |
 *
 * @since 0.2.0
 * @category constants
 */
export const names: Names = Metrics.names

/**
 * The metrics themselves, to read them in a program (`Metric.value`) or to give them to a
 * backend that wants them one by one. Their values are process-wide, as every Effect
 * metric's: the clients of one process add up.
 *
 * @since 0.2.0
 * @category metrics
 */
export const metrics: { readonly [K in keyof Names]: Metric.Metric<any, number, any> } = Metrics.metrics

/**
 * One metric's state in a {@link snapshot}: its name, its tags (the `unit` tag left out)
 * and its value (a counter's count, a gauge's value, a histogram's count, sum and
 * approximate quantiles from its buckets).
 *
 * @since 0.2.0
 * @category models
 */
export interface MetricValue {
  readonly name: string
  readonly tags: Readonly<Record<string, string>>
  readonly value: number
  readonly count?: number | undefined
  readonly sum?: number | undefined
  /** The median, as the upper bound of the bucket that holds it (a histogram's only). */
  readonly p50?: number | undefined
  /** The 99th percentile, as the upper bound of the bucket that holds it (a histogram's only). */
  readonly p99?: number | undefined
}

const quantile = (buckets: ReadonlyArray<readonly [number, number]>, count: number, q: number): number => {
  const rank = Math.ceil(count * q)
  for (const [bound, cumulative] of buckets) if (cumulative >= rank) return bound
  return Infinity
}

const valueOf = (pair: MetricPair.MetricPair.Untyped): MetricValue | undefined => {
  const tags: Record<string, string> = {}
  for (const label of pair.metricKey.tags) if (label.key !== "unit") tags[label.key] = label.value
  const name = pair.metricKey.name
  const state = pair.metricState
  if (MetricState.isCounterState(state)) return { name, tags, value: Number(state.count) }
  if (MetricState.isGaugeState(state)) return { name, tags, value: Number(state.value) }
  if (MetricState.isHistogramState(state)) {
    const count = state.count
    return {
      name,
      tags,
      value: count,
      count,
      sum: state.sum,
      p50: count === 0 ? 0 : quantile(state.buckets, count, 0.5),
      p99: count === 0 ? 0 : quantile(state.buckets, count, 0.99)
    }
  }
  return undefined
}

const known = new Set<string>(Object.values(Metrics.names))

/**
 * The current values of the client's metrics (every series of every `etcd.client.*` and
 * `rpc.client.duration` metric recorded so far in this process), for a report or a test.
 * Histograms give their count, sum, p50 and p99 (bucket bounds).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EtcdMetrics } from "effect-etcd"
 *
 * export const report = Effect.map(EtcdMetrics.snapshot, (values) =>
 *   values.filter((metric) => metric.name === EtcdMetrics.names.rpcDuration)
 * )
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const snapshot: Effect.Effect<ReadonlyArray<MetricValue>> = Effect.map(
  Metric.snapshot,
  (pairs) => {
    const values: Array<MetricValue> = []
    for (const pair of pairs) {
      if (!known.has(pair.metricKey.name)) continue
      const value = valueOf(pair)
      if (value !== undefined) values.push(value)
    }
    return values
  }
)
