/**
 * The client's metrics: Effect `Metric`s, named after OpenTelemetry's semantic conventions
 * where one exists (`rpc.client.duration`, with `rpc.*`, `server.address` and `server.port`)
 * and `etcd.client.*` otherwise. Every metric carries a `unit` tag, which
 * `@effect/opentelemetry` exports as the instrument's unit.
 *
 * Metrics are off unless a client is built with `metrics` (see `Settings`): every hook is
 * behind a boolean its caller checks, so a client without metrics pays for nothing more.
 * The hooks update synchronously (`unsafeUpdate`), so that they fit in the callbacks of
 * the streams. Cardinality is bounded: tags are methods, members, status codes and reasons,
 * never keys (an election's name is a tag only when `electionNames` is on).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type { Names } from "../../EtcdMetrics.js"
import type { Endpoint } from "./endpoint.js"

/** Whether a client records metrics, and whether elections are tagged with their names. */
export interface Settings {
  readonly enabled: boolean
  readonly electionNames: boolean
}

/** No metrics. */
export const disabled: Settings = { enabled: false, electionNames: false }

/** The settings of the `metrics` option of a layer. */
export const settingsOf = (
  option: boolean | { readonly electionNames?: boolean | undefined } | undefined
): Settings =>
  option === undefined || option === false
    ? disabled
    : { enabled: true, electionNames: option === true ? false : option.electionNames === true }

/** The metrics' names, in one place. */
export const names: Names = {
  rpcDuration: "rpc.client.duration",
  callsInFlight: "etcd.client.calls.in_flight",
  retries: "etcd.client.retries",
  failovers: "etcd.client.failovers",
  ambiguousOutcomes: "etcd.client.ambiguous_outcomes",
  connects: "etcd.client.connections.opened",
  disconnects: "etcd.client.connections.closed",
  keepAliveTimeouts: "etcd.client.connections.keepalive_timeouts",
  preferredMember: "etcd.client.preferred_member",
  watchersOpen: "etcd.client.watch.watchers",
  watchEvents: "etcd.client.watch.events",
  watchResumes: "etcd.client.watch.resumes",
  watchCompactions: "etcd.client.watch.compactions",
  watchLag: "etcd.client.watch.lag",
  watchBufferWait: "etcd.client.watch.buffer_wait",
  watchSlowConsumers: "etcd.client.watch.slow_consumers",
  leasesHeld: "etcd.client.lease.held",
  keepAliveDuration: "etcd.client.lease.keepalive.duration",
  leaseTtlMin: "etcd.client.lease.ttl_remaining.min",
  leasesLost: "etcd.client.lease.lost",
  lockWait: "etcd.client.lock.wait",
  lockTimeouts: "etcd.client.lock.timeouts",
  leaderChanges: "etcd.client.election.leader_changes",
  leaderHeld: "etcd.client.election.leader",
  readBatchSize: "etcd.client.read_batch.size",
  readsSaved: "etcd.client.read_batch.saved",
  mirrorEntries: "etcd.client.mirror.entries",
  mirrorResyncs: "etcd.client.mirror.resyncs",
  mirrorLag: "etcd.client.mirror.lag"
}

const millis = MetricBoundaries.fromIterable([
  0.25,
  0.5,
  1,
  2,
  4,
  8,
  16,
  32,
  64,
  128,
  256,
  512,
  1_024,
  2_048,
  4_096,
  8_192,
  16_384
])
const counts = MetricBoundaries.fromIterable([1, 2, 4, 8, 16, 32, 64, 128, 256, 1_024, 4_096, 16_384, 65_536])

const withUnit = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  unit: string
): MetricKey.MetricKey<Type> => MetricKey.tagged(key, "unit", unit)

const counter = (name: string, unit: string, description: string) =>
  withUnit(MetricKey.counter(name, { incremental: true, description }), unit)
const gauge = (name: string, unit: string, description: string) =>
  withUnit(MetricKey.gauge(name, { description }), unit)
const histogram = (
  name: string,
  boundaries: MetricBoundaries.MetricBoundaries,
  unit: string,
  description: string
) => withUnit(MetricKey.histogram(name, boundaries, description), unit)

/** The metrics' keys, each with its `unit` tag. */
const keys = {
  rpcDuration: histogram(names.rpcDuration, millis, "ms", "How long unary calls take, per method, status and member"),
  callsInFlight: gauge(names.callsInFlight, "{call}", "Unary calls in flight"),
  retries: counter(names.retries, "{retry}", "Attempts sent again, by reason"),
  failovers: counter(names.failovers, "{failover}", "Moves of the preferred member"),
  ambiguousOutcomes: counter(names.ambiguousOutcomes, "{call}", "Writes whose outcome is unknown (AmbiguousOutcome)"),
  connects: counter(names.connects, "{connection}", "Connections made to a member"),
  disconnects: counter(names.disconnects, "{connection}", "Connections to a member closed"),
  keepAliveTimeouts: counter(
    names.keepAliveTimeouts,
    "{connection}",
    "Connections dropped for an unanswered keepalive ping"
  ),
  preferredMember: gauge(names.preferredMember, "1", "1 for the member calls go to, 0 for the others"),
  watchersOpen: gauge(names.watchersOpen, "{watcher}", "Watchers open"),
  watchEvents: counter(names.watchEvents, "{event}", "Watch events delivered"),
  watchResumes: counter(names.watchResumes, "{resume}", "Watchers resumed after a broken stream"),
  watchCompactions: counter(names.watchCompactions, "{watcher}", "Watchers that met a compacted revision"),
  watchLag: histogram(
    names.watchLag,
    counts,
    "{revision}",
    "Revisions between a delivered batch and the newest revision the client had seen"
  ),
  watchBufferWait: histogram(names.watchBufferWait, millis, "ms", "How long events waited in a watcher's buffer"),
  watchSlowConsumers: counter(
    names.watchSlowConsumers,
    "{watcher}",
    "Watchers cut off the shared stream because their buffer was full"
  ),
  leasesHeld: gauge(names.leasesHeld, "{lease}", "Leases kept alive"),
  keepAliveDuration: histogram(names.keepAliveDuration, millis, "ms", "Round trip of a lease keepalive"),
  leaseTtlMin: gauge(names.leaseTtlMin, "s", "The smallest TTL left of the leases kept alive"),
  leasesLost: counter(names.leasesLost, "{lease}", "Leases lost, by reason"),
  lockWait: histogram(names.lockWait, millis, "ms", "How long a lock or an election's leadership was waited for"),
  lockTimeouts: counter(names.lockTimeouts, "{wait}", "Lock waits that timed out"),
  leaderChanges: counter(names.leaderChanges, "{change}", "Leadership changes observed"),
  leaderHeld: gauge(names.leaderHeld, "1", "1 while a campaign of this client leads the election (electionNames only)"),
  readBatchSize: histogram(names.readBatchSize, counts, "{read}", "Reads sent together in one batch"),
  readsSaved: counter(names.readsSaved, "{call}", "Calls saved by batching reads"),
  mirrorEntries: gauge(names.mirrorEntries, "{entry}", "Entries held by mirrors"),
  mirrorResyncs: counter(names.mirrorResyncs, "{resync}", "Mirror resyncs (full reloads)"),
  mirrorLag: histogram(names.mirrorLag, counts, "{revision}", "Revisions a mirror's update was behind the server's")
}

/** The metrics, as Effect `Metric`s (what a program reads with `Metric.value`, or `EtcdMetrics.snapshot`). */
export const metrics: { readonly [K in keyof Names]: Metric.Metric<any, number, any> } = Object.fromEntries(
  Object.entries(keys).map(([name, key]) => [name, Metric.fromMetricKey(key as MetricKey.MetricKey<any>)])
) as any

type Hook = MetricHook.MetricHook<number, unknown>

/**
 * The hook of one series, looked up in the registry once and kept: `Metric.unsafeUpdate`
 * builds the tagged key and hashes it on every update. Label arrays are made once per
 * series (`cached`), so that their identity names the series.
 */
const hooks = new Map<MetricKey.MetricKey<any>, WeakMap<ReadonlyArray<MetricLabel.MetricLabel>, Hook>>()
const series = (key: MetricKey.MetricKey<any>, labels: ReadonlyArray<MetricLabel.MetricLabel>): Hook => {
  let byLabels = hooks.get(key)
  if (byLabels === undefined) {
    byLabels = new WeakMap()
    hooks.set(key, byLabels)
  }
  let hook = byLabels.get(labels)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(key, labels)) as unknown as Hook
    byLabels.set(labels, hook)
  }
  return hook
}

const update = (key: MetricKey.MetricKey<any>, value: number, labels: ReadonlyArray<MetricLabel.MetricLabel>): void =>
  series(key, labels).update(value)
const modify = (key: MetricKey.MetricKey<any>, delta: number, labels: ReadonlyArray<MetricLabel.MetricLabel>): void =>
  series(key, labels).modify(delta)

const label = MetricLabel.make
const noLabels: ReadonlyArray<MetricLabel.MetricLabel> = []
const labelCache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

const cached = (key: string, make: () => ReadonlyArray<MetricLabel.MetricLabel>) => {
  let labels = labelCache.get(key)
  if (labels === undefined) {
    labels = make()
    labelCache.set(key, labels)
  }
  return labels
}

const memberLabels = (endpoint: Endpoint): ReadonlyArray<MetricLabel.MetricLabel> =>
  cached(`member ${endpoint.host} ${endpoint.port}`, () => [
    label("server.address", endpoint.host),
    label("server.port", String(endpoint.port))
  ])

const methodLabelsByPath = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
const methodLabels = (path: string): ReadonlyArray<MetricLabel.MetricLabel> => {
  let labels = methodLabelsByPath.get(path)
  if (labels === undefined) {
    const [service, method] = (path.startsWith("/") ? path.slice(1) : path).split("/")
    labels = [label("rpc.system", "grpc"), label("rpc.service", service), label("rpc.method", method ?? "")]
    methodLabelsByPath.set(path, labels)
  }
  return labels
}

/** The hooks of a method's calls in flight, and of its durations by member and status (no text built per call). */
interface MethodSeries {
  readonly inFlight: Hook
  readonly durations: Map<Endpoint, Map<number, Hook>>
}
const methodSeries = new Map<string, MethodSeries>()
const seriesOf = (path: string): MethodSeries => {
  let found = methodSeries.get(path)
  if (found === undefined) {
    found = { inFlight: series(keys.callsInFlight, methodLabels(path)), durations: new Map() }
    methodSeries.set(path, found)
  }
  return found
}
const durationOf = (path: string, endpoint: Endpoint, code: number): Hook => {
  const byMember = seriesOf(path).durations
  let byCode = byMember.get(endpoint)
  if (byCode === undefined) {
    byCode = new Map()
    byMember.set(endpoint, byCode)
  }
  let hook = byCode.get(code)
  if (hook === undefined) {
    hook = series(
      keys.rpcDuration,
      cached(`call ${path} ${endpoint.host} ${endpoint.port} ${code}`, () => [
        ...methodLabels(path),
        label("rpc.grpc.status_code", String(code)),
        ...memberLabels(endpoint)
      ])
    )
    byCode.set(code, hook)
  }
  return hook
}

/** A unary call started: one more in flight. */
export const callStarted = (path: string): void => seriesOf(path).inFlight.modify(1)

/** A unary call ended after `durationMillis` with gRPC status `code` on `endpoint`. */
export const callEnded = (path: string, endpoint: Endpoint, code: number, durationMillis: number): void => {
  seriesOf(path).inFlight.modify(-1)
  durationOf(path, endpoint, code).update(durationMillis)
}

/** An attempt of `path` is sent again after a failure tagged `reason`. */
export const retried = (path: string, reason: string): void =>
  update(keys.retries, 1, cached(`retry ${path} ${reason}`, () => [...methodLabels(path), label("reason", reason)]))

/** A write of `path` ended with its outcome unknown. */
export const ambiguous = (path: string): void => update(keys.ambiguousOutcomes, 1, methodLabels(path))

/** Calls go to `to` from now on instead of `from`. */
export const failedOver = (from: Endpoint, to: Endpoint): void => {
  update(keys.failovers, 1, memberLabels(to))
  preferredIs(from, 0)
  preferredIs(to, 1)
}

/** Whether `endpoint` is the member calls go to. */
export const preferredIs = (endpoint: Endpoint, value: 0 | 1): void =>
  update(keys.preferredMember, value, memberLabels(endpoint))

/** What became of a connection to a member. */
export type ConnectionEvent = "connect" | "disconnect" | "keepaliveTimeout"

/** A connection to `endpoint` was made, closed or dropped for an unanswered ping. */
export const connectionEvent = (endpoint: Endpoint, event: ConnectionEvent): void => {
  const key = event === "connect"
    ? keys.connects
    : event === "disconnect"
    ? keys.disconnects
    : keys.keepAliveTimeouts
  update(key, 1, memberLabels(endpoint))
}

/** A watcher opened (1) or closed (-1). */
export const watcherOpened = (delta: 1 | -1): void => modify(keys.watchersOpen, delta, noLabels)

/**
 * `events` events were handed to a watcher's buffer; or, with `lag`, its consumer took
 * batches `lag` revisions behind the newest the client had heard, the oldest of which
 * waited `waitMillis` in the buffer.
 */
export const watchDelivered = (events: number, lag?: number, waitMillis?: number): void => {
  if (events > 0) update(keys.watchEvents, events, noLabels)
  if (lag !== undefined) update(keys.watchLag, Math.max(0, lag), noLabels)
  if (waitMillis !== undefined) update(keys.watchBufferWait, Math.max(0, waitMillis), noLabels)
}

/** A watcher was resumed after its stream broke. */
export const watchResumed = (): void => update(keys.watchResumes, 1, noLabels)

/** A watcher met a compacted revision. */
export const watchCompacted = (): void => update(keys.watchCompactions, 1, noLabels)

/** A watcher's full buffer cut it off the shared stream. */
export const watchSlowConsumer = (): void => update(keys.watchSlowConsumers, 1, noLabels)

/** A lease started (1) or stopped (-1) being kept alive. */
export const leaseHeld = (delta: 1 | -1): void => modify(keys.leasesHeld, delta, noLabels)

/** A keepalive came back after `millis`, and the smallest TTL left of the leases kept alive is `ttlSeconds`. */
export const keepAliveAnswered = (millis: number, ttlSeconds: number | undefined): void => {
  update(keys.keepAliveDuration, Math.max(0, millis), noLabels)
  if (ttlSeconds !== undefined) update(keys.leaseTtlMin, ttlSeconds, noLabels)
}

/** A lease was lost for `reason`. */
export const leaseLost = (reason: string): void =>
  update(keys.leasesLost, 1, cached(`lost ${reason}`, () => [label("reason", reason)]))

/** A `recipe`'s wait ended after `millis`, with the lock (or leadership) or by its timeout. */
export const lockWaited = (recipe: string, millis: number, outcome: "acquired" | "timeout"): void => {
  const labels = cached(`lock ${recipe} ${outcome}`, () => [label("recipe", recipe), label("outcome", outcome)])
  update(keys.lockWait, Math.max(0, millis), labels)
  if (outcome === "timeout") update(keys.lockTimeouts, 1, cached(`lock ${recipe}`, () => [label("recipe", recipe)]))
}

/** An observer saw the leader of an election change. */
export const leaderChanged = (): void => update(keys.leaderChanges, 1, noLabels)

/**
 * A campaign of this client started (1) or stopped (-1) leading `election`: only with
 * `electionNames`. Counted, not set, so that a leadership that ends (a resign, then its scope
 * closing) never zeroes another campaign's of the same name.
 */
export const leaderHeld = (election: string, delta: 1 | -1): void =>
  modify(keys.leaderHeld, delta, cached(`election ${election}`, () => [label("election", election)]))

/** `size` reads went to the server as one call. */
export const readBatch = (size: number): void => {
  update(keys.readBatchSize, size, noLabels)
  if (size > 1) update(keys.readsSaved, size - 1, noLabels)
}

/** A mirror's entries changed by `delta`. */
export const mirrorEntries = (delta: number): void => {
  if (delta !== 0) modify(keys.mirrorEntries, delta, noLabels)
}

/** A mirror reloaded everything. */
export const mirrorResynced = (): void => update(keys.mirrorResyncs, 1, noLabels)

/** A mirror applied an update `lag` revisions behind the server's revision. */
export const mirrorLagged = (lag: number): void => update(keys.mirrorLag, Math.max(0, lag), noLabels)

/**
 * A recipe's wait (`Lock.make`, `RwLock`, `Election.campaign`): how long it took, and whether
 * it ended by its timeout (a failure whose tag ends in `Timeout`).
 */
export const measureWait = <A, E, R>(
  settings: Settings,
  recipe: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  !settings.enabled ? effect : Effect.suspend(() => {
    const start = performance.now()
    return Effect.onExit(effect, (exit) =>
      Effect.sync(() => {
        if (exit._tag === "Success") return lockWaited(recipe, performance.now() - start, "acquired")
        const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
        const tag = typeof failure === "object" && failure !== null && "_tag" in failure ? String(failure._tag) : ""
        if (tag.endsWith("Timeout")) lockWaited(recipe, performance.now() - start, "timeout")
      }))
  })
