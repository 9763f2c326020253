/**
 * The client's metrics, exported with the real components: `@effect/opentelemetry`'s
 * NodeSdk layer and `@opentelemetry/sdk-metrics`'s in-memory exporter, after a workload of
 * puts, a read, a watch, a lease and a lock on a real etcd, and the same calls on
 * EtcdMemory. Values are compared as differences of `EtcdMetrics.snapshot` around each
 * step (Effect's metrics are process-wide); names, units and attributes as OpenTelemetry
 * exports them. Spans: a call's span follows the RPC conventions, and a retried call shows
 * each attempt.
 */
import { EtcdServer } from "@effect-etcd/testing"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { expect, layer } from "@effect/vitest"
import { SpanKind } from "@opentelemetry/api"
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  type MetricData,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Chunk, ConfigProvider, Deferred, Duration, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { Election, Etcd, EtcdMemory, EtcdMetrics, KeyRange, Kv, Lease, Lock, Mirror, Watch } from "effect-etcd"
import { parse } from "../src/internal/base/endpoint.js"
import * as Protocol from "../src/internal/rpc/protocol.js"
import { revokeElsewhere } from "./faults.js"
import { delta, total } from "./metricTotals.js"
import { closedPort, uniquePrefix } from "./support.js"

const names = EtcdMetrics.names

/** The OpenTelemetry side: the NodeSdk layer, its reader and exporters. */
const telemetry = () => {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // exports only when asked (forceFlush): the interval is longer than any test
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
  const spanExporter = new InMemorySpanExporter()
  const layer = NodeSdk.layer(() => ({
    resource: { serviceName: "effect-etcd-metrics-test" },
    metricReader: reader,
    spanProcessor: new SimpleSpanProcessor(spanExporter)
  }))
  /** The metrics as exported now, by name. */
  const exported = Effect.promise(async () => {
    metricExporter.reset()
    await reader.forceFlush()
    const byName = new Map<string, MetricData>()
    for (const resource of metricExporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric)
      }
    }
    return byName
  })
  return { layer, exported, spanExporter }
}

const kvTags = (method: string, address: string) => ({
  "rpc.system": "grpc",
  "rpc.service": "etcdserverpb.KV",
  "rpc.method": method,
  "rpc.grpc.status_code": "0",
  "server.address": address
})

/** Waits until a metric's total reaches `n`, a bounded number of short looks (the keepalive's answer is the signal). */
const awaitTotal = (name: string, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 400; i++) {
      if (total(yield* EtcdMetrics.snapshot, name) >= n) return
      yield* Effect.sleep(Duration.millis(25))
    }
    throw new Error(`${name} never reached ${n}`)
  })

/** The puts, the read and the lock, on any client: what both the real etcd and EtcdMemory count. */
const calls = (p: string, address: string) =>
  Effect.gen(function*() {
    const [puts] = yield* delta(
      names.rpcDuration,
      kvTags("Put", address),
      Effect.forEach([1, 2, 3, 4, 5], (i) => Kv.put(`${p}k${i}`, `v${i}`), { discard: true })
    )
    expect(puts).toBe(5)
    const [reads, value] = yield* delta(names.rpcDuration, kvTags("Range", address), Kv.get(`${p}k1`))
    expect(reads).toBe(1)
    expect(value._tag).toBe("Some")
    const [waits] = yield* delta(
      names.lockWait,
      { recipe: "lock", outcome: "acquired" },
      Lock.withLock(`${p}lock`, Kv.put(`${p}locked`, "1"))
    )
    expect(waits).toBe(1)
    const inFlight = total(yield* EtcdMetrics.snapshot, names.callsInFlight, { "rpc.method": "Put" })
    expect(inFlight).toBe(0)
  })

const withTelemetry = <A, E, R>(f: (t: ReturnType<typeof telemetry>) => Effect.Effect<A, E, R>) => {
  const t = telemetry()
  return Effect.provide(f(t), t.layer)
}

const serverLayer = EtcdServer.layer()

layer(serverLayer, { excludeTestServices: true })("Metrics", (it) => {
  const clientOf = (options: Omit<Etcd.EtcdOptions, "endpoints"> = {}, extra: ReadonlyArray<string> = []) =>
    Layer.unwrapEffect(
      Effect.map(
        EtcdServer.EtcdServer,
        (server) => Etcd.layer({ ...options, endpoints: [...extra, ...server.endpoints] })
      )
    )

  it.effect("a workload on a real etcd: exported names, units, attributes and values", () =>
    withTelemetry(({ exported }) =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const member = parse(server.endpoints[0])
        if (typeof member === "string") throw new Error(member)
        const p = uniquePrefix("metrics")
        yield* calls(p, member.host)

        // a watch of 3 events, from a revision before them
        const first = yield* Kv.put(`${p}w/0`, "a")
        yield* Kv.put(`${p}w/1`, "b")
        yield* Kv.put(`${p}w/2`, "c")
        const [events, taken] = yield* delta(
          names.watchEvents,
          {},
          Watch.watch(KeyRange.prefix(`${p}w/`), { startRevision: first.revision }).pipe(
            Stream.take(3),
            Stream.runCollect
          )
        )
        expect(Chunk.size(taken)).toBe(3)
        expect(events).toBeGreaterThanOrEqual(3)
        expect(total(yield* EtcdMetrics.snapshot, names.watchersOpen)).toBe(0)

        // a lease kept alive: held while its scope is open, its keepalives answered
        yield* Effect.scoped(Effect.gen(function*() {
          const before = total(yield* EtcdMetrics.snapshot, names.keepAliveDuration)
          yield* Lease.make("6 seconds", { interval: "100 millis" })
          expect(total(yield* EtcdMetrics.snapshot, names.leasesHeld)).toBe(1)
          yield* awaitTotal(names.keepAliveDuration, before + 1)
          const ttl = total(yield* EtcdMetrics.snapshot, names.leaseTtlMin)
          expect(ttl).toBeGreaterThan(0)
          expect(ttl).toBeLessThanOrEqual(6)
        }))
        expect(total(yield* EtcdMetrics.snapshot, names.leasesHeld)).toBe(0)

        const metrics = yield* exported
        const duration = metrics.get(names.rpcDuration)!
        expect(duration.descriptor.unit).toBe("ms")
        expect(duration.dataPointType).toBe(DataPointType.HISTOGRAM)
        const put = duration.dataPoints.find((point) =>
          point.attributes["rpc.method"] === "Put" && point.attributes["server.address"] === member.host
        )!
        expect(put.attributes).toMatchObject({
          "rpc.system": "grpc",
          "rpc.service": "etcdserverpb.KV",
          "rpc.grpc.status_code": "0",
          "server.port": String(member.port)
        })
        const histogram = put.value as { count: number; sum: number }
        expect(histogram.count).toBeGreaterThanOrEqual(9)
        expect(histogram.sum).toBeGreaterThan(0)
        // no series is tagged with a key
        for (const metric of metrics.values()) {
          for (const point of metric.dataPoints) {
            for (const value of Object.values(point.attributes)) expect(String(value)).not.toContain(p)
          }
        }
        const units: Record<string, string> = {
          [names.watchEvents]: "{event}",
          [names.watchLag]: "{revision}",
          [names.watchBufferWait]: "ms",
          [names.leasesHeld]: "{lease}",
          [names.keepAliveDuration]: "ms",
          [names.leaseTtlMin]: "s",
          [names.lockWait]: "ms",
          [names.connects]: "{connection}",
          [names.callsInFlight]: "{call}",
          [names.preferredMember]: "1"
        }
        for (const [name, unit] of Object.entries(units)) {
          expect(metrics.get(name)?.descriptor.unit, name).toBe(unit)
        }
        const connects = metrics.get(names.connects)!.dataPoints.find((point) =>
          point.attributes["server.port"] === String(member.port)
        )
        expect(connects?.value).toBeGreaterThanOrEqual(1)
        const preferred = metrics.get(names.preferredMember)!.dataPoints.find((point) =>
          point.attributes["server.port"] === String(member.port)
        )
        expect(preferred?.value).toBe(1)
      })
    ).pipe(Effect.provide(clientOf({ metrics: true }))))

  it.effect("the same calls on EtcdMemory are counted, on the member `memory`", () =>
    withTelemetry(({ exported }) =>
      Effect.gen(function*() {
        yield* calls(uniquePrefix("memory"), "memory")
        const duration = (yield* exported).get(names.rpcDuration)!
        const put = duration.dataPoints.find((point) =>
          point.attributes["rpc.method"] === "Put" && point.attributes["server.address"] === "memory"
        )
        expect((put?.value as { count: number }).count).toBeGreaterThanOrEqual(6)
      })
    ).pipe(Effect.provide(EtcdMemory.layer({ metrics: true }))))

  it.effect("mirrors, read batches and a lock's timeout are counted", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("recipes")
      yield* Effect.forEach([1, 2, 3, 4], (i) => Kv.put(`${p}m/${i}`, "v"), { discard: true })
      // a mirror of 4 keys, then one more: its entries follow, and go when its scope closes
      const [entries] = yield* delta(
        names.mirrorEntries,
        {},
        Effect.scoped(Effect.gen(function*() {
          const mirror = yield* Mirror.prefix(`${p}m/`)
          yield* mirror.ready
          expect(total(yield* EtcdMetrics.snapshot, names.mirrorEntries)).toBeGreaterThanOrEqual(4)
          const put = yield* Kv.put(`${p}m/5`, "v")
          yield* mirror.waitFor(put.revision)
          return (yield* mirror.snapshot).values.size
        }))
      )
      expect(entries).toBe(0)
      // 64 reads at once: all but the first wait and go in batches, each saving calls
      const [saved] = yield* delta(
        names.readsSaved,
        {},
        Effect.forEach(Array.from({ length: 64 }, (_, i) => i), (i) => Kv.get(`${p}m/${(i % 4) + 1}`), {
          concurrency: "unbounded",
          discard: true
        })
      )
      expect(saved).toBeGreaterThan(0)
      // a lock held elsewhere: the second waiter times out, and is counted as such
      const [timeouts, error] = yield* delta(
        names.lockTimeouts,
        { recipe: "lock" },
        Effect.scoped(Effect.gen(function*() {
          yield* Lock.make(`${p}lock`)
          return yield* Effect.flip(Lock.withLock(`${p}lock`, Effect.void, { timeout: "200 millis" }))
        }))
      )
      expect(error._tag).toBe("LockTimeout")
      expect(timeouts).toBe(1)
    }).pipe(Effect.provide(clientOf({ metrics: true }))))

  it.effect("a watcher whose buffer fills is cut off the shared stream, and counted once", () =>
    Effect.scoped(Effect.gen(function*() {
      const p = uniquePrefix("slow-consumer")
      const before = total(yield* EtcdMetrics.snapshot, names.watchSlowConsumers)
      // never pulled, with a buffer smaller than one event: the first batch cuts it off, and
      // it stays off (it would resume only once its buffer drains)
      yield* Watch.subscribe(KeyRange.prefix(p), { bufferBytes: 10 })
      const fast = yield* Watch.subscribe(KeyRange.prefix(p))
      const seen = yield* fast.events.pipe(Stream.take(5), Stream.runCollect, Effect.fork)
      yield* Effect.forEach([1, 2, 3, 4, 5], (i) => Kv.put(`${p}k${i}`, "v".repeat(100)), { discard: true })
      expect(Chunk.size(yield* Fiber.join(seen))).toBe(5)
      // the cut-off watcher's events may come after the other's: its count is the signal
      yield* awaitTotal(names.watchSlowConsumers, before + 1)
      expect(total(yield* EtcdMetrics.snapshot, names.watchSlowConsumers)).toBe(before + 1)
    })).pipe(Effect.provide(clientOf({ metrics: true }))))

  it.effect("a lease revoked behind the client's back is lost once, as expired, and no longer held", () =>
    Effect.scoped(Effect.gen(function*() {
      const held = total(yield* EtcdMetrics.snapshot, names.leasesHeld)
      const lease = yield* Lease.make("30 seconds", { interval: "200 millis" })
      expect(total(yield* EtcdMetrics.snapshot, names.leasesHeld)).toBe(held + 1)
      const [lost, error] = yield* delta(
        names.leasesLost,
        { reason: "expired" },
        // another client revokes it: the next keepalive's answer says it is gone (TTL 0)
        Effect.zipRight(revokeElsewhere(lease.id), Effect.flip(lease.lost))
      )
      expect(error.reason).toBe("expired")
      expect(lost).toBe(1)
      expect(total(yield* EtcdMetrics.snapshot, names.leasesHeld)).toBe(held)
    })).pipe(Effect.provide(clientOf({ metrics: true }))))

  it.effect("leaders seen by Election.observe are counted; the leader gauge per election only with electionNames", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("election")
      const name = `${p}named`
      const leaderHeld = (election: string) =>
        Effect.map(
          EtcdMetrics.snapshot,
          (values) => values.filter((value) => value.name === names.leaderHeld && value.tags.election === election)
        )
      const [changes, leaders] = yield* delta(
        names.leaderChanges,
        {},
        Effect.gen(function*() {
          const first = yield* Deferred.make<void>()
          const done = yield* Deferred.make<void>()
          const observer = yield* Election.observe(name).pipe(
            Stream.tap(() => Deferred.succeed(first, undefined)),
            Stream.take(2),
            Stream.map((leader) => leader.value),
            Stream.runCollect,
            Effect.map(Chunk.toArray),
            Effect.fork
          )
          yield* Effect.scoped(Effect.gen(function*() {
            const a = yield* Election.campaign(name, "a")
            expect((yield* leaderHeld(name)).map((value) => value.value)).toEqual([1])
            // the observer has seen a; b waits behind it (on a client without metrics)
            yield* Deferred.await(first)
            yield* Effect.scoped(Effect.zipRight(
              Election.campaign(name, "b"),
              Deferred.await(done)
            )).pipe(Effect.provide(clientOf()), Effect.forkScoped)
            for (let i = 0; i < 200 && (yield* Kv.count(KeyRange.prefix(`${name}/`))) < 2; i++) {
              yield* Effect.sleep(Duration.millis(25))
            }
            yield* a.resign
          }))
          // a's scope is closed: it leads no more
          expect((yield* leaderHeld(name)).map((value) => value.value)).toEqual([0])
          const leaders = yield* Fiber.join(observer)
          yield* Deferred.succeed(done, undefined)
          return leaders
        })
      )
      expect(leaders).toEqual(["a", "b"])
      expect(changes).toBe(2)
      // without electionNames, a leadership adds no series named after its election
      const unnamed = `${p}unnamed`
      yield* Effect.scoped(Election.campaign(unnamed, "c")).pipe(Effect.provide(clientOf({ metrics: true })))
      expect(yield* leaderHeld(unnamed)).toEqual([])
    }).pipe(Effect.provide(clientOf({ metrics: { electionNames: true } }))))

  it.effect("the leader gauge ends with a resign, and a leadership that ended never zeroes the next one's", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("election")}handover`
      const gauge = Effect.map(
        EtcdMetrics.snapshot,
        (values) =>
          values.filter((value) => value.name === names.leaderHeld && value.tags.election === name).map((value) =>
            value.value
          )
      )
      const scopeA = yield* Scope.make()
      const a = yield* Election.campaign(name, "a").pipe(Scope.extend(scopeA))
      expect(yield* gauge).toEqual([1])
      yield* a.resign
      expect(yield* gauge).toEqual([0])
      yield* Effect.scoped(Effect.gen(function*() {
        // b, a campaign of the same client, leads once a resigned
        const b = yield* Election.campaign(name, "b", { timeout: "10 seconds" })
        expect(b.key).not.toBe(a.key)
        expect(yield* gauge).toEqual([1])
        // a's scope closes while b leads: b's leadership is still counted
        yield* Scope.close(scopeA, Exit.void)
        expect(yield* gauge).toEqual([1])
      }))
      expect(yield* gauge).toEqual([0])
    }).pipe(Effect.provide(clientOf({ metrics: { electionNames: true } }))))

  it.effect("the option: ETCD_METRICS through Etcd.config; a value that is no flag is refused", () =>
    Effect.gen(function*() {
      const read = (value: string) =>
        Effect.withConfigProvider(Etcd.config, ConfigProvider.fromMap(new Map([["ETCD_METRICS", value]])))
      expect((yield* read("true")).metrics).toBe(true)
      expect((yield* read("false")).metrics).toBe(false)
      const unset = yield* Effect.withConfigProvider(Etcd.config, ConfigProvider.fromMap(new Map()))
      expect(unset.metrics).toBeUndefined()
      const server = yield* EtcdServer.EtcdServer
      const refused = yield* Effect.flip(Effect.scoped(Etcd.make({
        endpoints: server.endpoints,
        metrics: { electionNames: "yes" as unknown as boolean }
      })))
      expect(refused._tag).toBe("EtcdInvalidArgument")
      expect(refused.message).toContain("metrics.electionNames")
    }))

  it.effect("a client without metrics records nothing", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const member = parse(server.endpoints[0])
      if (typeof member === "string") throw new Error(member)
      const p = uniquePrefix("off")
      const [puts] = yield* delta(
        names.rpcDuration,
        { "rpc.method": "Put", "server.port": String(member.port) },
        Effect.forEach([1, 2, 3], (i) => Kv.put(`${p}k${i}`, "v"), { discard: true }).pipe(
          Effect.provide(clientOf())
        )
      )
      expect(puts).toBe(0)
    }))

  it.effect("spans: RPC names and attributes; a retried call shows each attempt, and is counted", () =>
    Effect.gen(function*() {
      const dead = yield* closedPort
      const server = yield* EtcdServer.EtcdServer
      const member = parse(server.endpoints[0])
      if (typeof member === "string") throw new Error(member)
      const t = telemetry()
      const p = uniquePrefix("spans")
      const [retries, spans] = yield* delta(
        names.retries,
        { "rpc.method": "Range", reason: "EtcdUnavailable" },
        Effect.gen(function*() {
          yield* Kv.put(`${p}a`, "1")
          // calls go to the dead member first: the read fails there, then goes to the live one
          const etcd = yield* Etcd.Etcd
          const transport = Protocol.of(etcd).transport
          transport.reportFailure(transport.current())
          expect(transport.current().port).toBe(dead)
          const value = yield* Kv.get(`${p}a`)
          expect(value._tag).toBe("Some")
          // read before the SDK shuts down, which empties the exporter
          return t.spanExporter.getFinishedSpans()
        }).pipe(
          Effect.provide(clientOf({ metrics: true, readBatching: false }, [`http://127.0.0.1:${dead}`])),
          Effect.provide(t.layer)
        )
      )
      expect(retries).toBe(1)
      const put = spans.find((span) => span.name === "etcdserverpb.KV/Put")!
      expect(put.kind).toBe(SpanKind.CLIENT)
      expect(put.attributes).toMatchObject({
        "rpc.system": "grpc",
        "rpc.service": "etcdserverpb.KV",
        "rpc.method": "Put",
        "server.address": member.host,
        "server.port": member.port
      })
      const get = spans.find((span) => span.name === "etcdserverpb.KV/Range")!
      const attempts = get.events.filter((event) => event.name === "rpc.attempt")
      expect(attempts).toHaveLength(1)
      expect(attempts[0].attributes).toMatchObject({
        "rpc.attempt": 2,
        "error.type": "EtcdUnavailable",
        "server.port": member.port
      })
      // the span names the member that answered
      expect(get.attributes["server.port"]).toBe(member.port)
    }))
})
