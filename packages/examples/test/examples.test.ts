import { EtcdProxy, EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import type { Console } from "effect"
import { Effect, Layer } from "effect"
import { Etcd, KeyRange, Kv } from "effect-etcd"
import * as ConfigFollower from "../src/ConfigFollower.js"
import * as LeaderWorker from "../src/LeaderWorker.js"
import * as Metrics from "../src/Metrics.js"
import * as ServiceRegistry from "../src/ServiceRegistry.js"
import * as ShardedCounter from "../src/ShardedCounter.js"

/** A fresh etcd, and a client of it: direct, or through etcd's gRPC proxy or its gateway. */
const etcd = (through: "direct" | EtcdProxy.Kind) =>
  Layer.provideMerge(
    through === "direct"
      ? Layer.unwrapEffect(Effect.map(EtcdServer.EtcdServer, (server) => Etcd.layer({ endpoints: server.endpoints })))
      : Layer.unwrapEffect(Effect.map(EtcdProxy.EtcdProxy, (proxy) => Etcd.layer({ endpoints: proxy.endpoints }))).pipe(
        Layer.provide(through === "grpc-proxy" ? EtcdProxy.layerGrpcProxy() : EtcdProxy.layerGateway())
      ),
    EtcdServer.layer()
  )

let counter = 0
const uniquePrefix = (name: string) => `examples/${name}/${process.pid}-${Date.now().toString(36)}-${counter++}/`

/** Runs an example, keeping what it prints (as `pnpm example` would show it) in `lines`. */
const printed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const console = yield* Effect.console
    const recording: Console.Console = {
      ...console,
      log: (...args) => Effect.sync(() => void lines.push(args.join(" ")))
    }
    const result = yield* Effect.withConsole(effect, recording)
    return { result, lines }
  })

for (const through of ["direct", "grpc-proxy", "gateway"] as const) {
  layer(etcd(through), { excludeTestServices: true })(
    through === "direct" ? "examples" : `examples through ${through}`,
    (it) => {
      it.effect("registry: a peer sees instances join, leave cleanly and crash, and nothing is left", () =>
        Effect.gen(function*() {
          const prefix = uniquePrefix("registry")
          const { lines, result } = yield* printed(ServiceRegistry.program(prefix))
          expect(result).toEqual([
            [],
            ["api-1"],
            ["api-1", "api-2"],
            ["api-1", "api-2", "api-3"],
            ["api-1", "api-3"],
            ["api-1"],
            []
          ])
          expect(lines).toContain("api-3 crashes: no more keepalives, its key goes when the 2 s TTL runs out")
          expect(lines).toContain("   peers: api-1@10.0.0.1:8080, api-3@10.0.0.3:8080")
          expect(yield* Kv.count(KeyRange.prefix(prefix))).toBe(0)
        }))

      it.effect("leader: each worker leads once, in turn, and a stepped-down leader's fenced write is refused", () =>
        Effect.gen(function*() {
          const prefix = uniquePrefix("leader")
          const { lines, result } = yield* printed(LeaderWorker.program(prefix))
          expect(result.map((term) => term.worker).sort()).toEqual(["worker-1", "worker-2", "worker-3"])
          for (const term of result) {
            expect(term.steps).toEqual([1, 2, 3])
            expect(term.staleWriteApplied).toBe(false)
          }
          const tokens = result.map((term) => term.fencingToken)
          expect(tokens).toEqual([...new Set(tokens)].sort((a, b) => (a < b ? -1 : 1)))
          // terms never overlap: each leader's steps come as one block, after its predecessor stepped down
          const order = lines.filter((line) => / (leading|stepping down)/.test(line)).map((line) => line.split(":")[0])
          expect(order).toEqual(result.flatMap((term) => [term.worker, term.worker]))
          expect(yield* Kv.get(`${prefix}progress`)).toEqual(
            expect.objectContaining({ value: `${result[2].worker} step 3` })
          )
          expect(yield* Kv.count(KeyRange.prefix(`${prefix}leader/`))).toBe(0)
        }))

      it.effect("config: a service follows its settings from EtcdConfig, a txn as one value, a bad value refused", () =>
        Effect.gen(function*() {
          const prefix = uniquePrefix("config")
          const { lines, result } = yield* printed(ConfigFollower.program(prefix))
          expect(result).toEqual([
            { logLevel: "info", maxConnections: 100, featureX: false },
            { logLevel: "debug", maxConnections: 100, featureX: false },
            { logLevel: "debug", maxConnections: 200, featureX: true },
            { logLevel: "debug", maxConnections: 300, featureX: true },
            { logLevel: "debug", maxConnections: 300, featureX: false }
          ])
          expect(lines.filter((line) => line.includes("refused revision"))).toHaveLength(1)
          expect(lines.find((line) => line.includes("refused revision"))).toContain("lots")
          // the service's answers follow the settings in force
          expect(lines.filter((line) => line.includes("GET /"))).toEqual([
            "   frontend[info] GET /: served (up to 100 connections)",
            "   frontend[debug] GET /: served (up to 100 connections)",
            "   frontend[debug] GET /: served by feature X (up to 200 connections)",
            "   frontend[debug] GET /: served by feature X (up to 300 connections)",
            "   frontend[debug] GET /: served (up to 300 connections)"
          ])
        }))
    }
  )
}

layer(etcd("direct"), { excludeTestServices: true })("cluster example", (it) => {
  it.effect(
    "cluster: 3 runners serve the counters; after one stops, the counts go on from where they were",
    () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("cluster")
        const { lines, result } = yield* printed(ShardedCounter.program(prefix))
        expect(result).toEqual({ apples: 3, pears: 6, plums: 9, figs: 12, limes: 15, kiwis: 18 })
        expect(lines.filter((line) => line.startsWith("round 3")).length).toBe(6)
        yield* Kv.deletePrefix(prefix)
      }),
    60_000
  )
})

/** The samples of a Prometheus text exposition: each series' name, labels and value; and each family's type. */
const parseExposition = (text: string) => {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = []
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [, , family, type] = line.split(" ")
      types.set(family, type)
      continue
    }
    if (line === "" || line.startsWith("#")) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line)
    if (match === null) throw new Error(`not a sample: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2]
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) })
  }
  return { samples, types }
}

const withMetrics = Layer.provideMerge(
  Layer.unwrapEffect(
    Effect.map(EtcdServer.EtcdServer, (server) => Etcd.layer({ endpoints: server.endpoints, metrics: true }))
  ),
  EtcdServer.layer()
)

layer(withMetrics, { excludeTestServices: true })("examples with metrics", (it) => {
  it.effect("metrics: the Prometheus endpoint serves the client's metrics, scraped and parsed", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("metrics")
      const scraped: Array<string> = []
      const { lines, result } = yield* printed(
        Metrics.program(prefix, {
          inspect: (url) => Effect.map(Metrics.scrape(url), (text) => void scraped.push(text))
        })
      )
      expect(result.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
      expect(lines).toContain("watched 3 events")
      expect(scraped).toHaveLength(1)
      const { samples, types } = parseExposition(scraped[0])
      expect(types.get("rpc_client_duration")).toBe("histogram")
      expect(types.get("etcd_client_watch_events_total")).toBe("counter")
      expect(types.get("etcd_client_lease_held")).toBe("gauge")
      const names = new Set(samples.map((sample) => sample.name))
      for (
        const name of [
          "rpc_client_duration_bucket",
          "rpc_client_duration_count",
          "rpc_client_duration_sum",
          "etcd_client_calls_in_flight",
          "etcd_client_connections_opened_total",
          "etcd_client_preferred_member",
          "etcd_client_watch_watchers",
          "etcd_client_watch_events_total",
          "etcd_client_watch_lag_count",
          "etcd_client_watch_buffer_wait_count",
          "etcd_client_lease_held",
          "etcd_client_lock_wait_count"
        ]
      ) expect(names, name).toContain(name)
      const puts = samples.find((sample) =>
        sample.name === "rpc_client_duration_count" && sample.labels.rpc_method === "Put"
      )
      expect(puts?.labels).toMatchObject({
        rpc_system: "grpc",
        rpc_service: "etcdserverpb.KV",
        rpc_grpc_status_code: "0"
      })
      // 3 puts, the leased key and the put under the lock (and those of other tests of this process)
      expect(puts?.value).toBeGreaterThanOrEqual(5)
      const events = samples.find((sample) => sample.name === "etcd_client_watch_events_total")
      expect(events?.value).toBeGreaterThanOrEqual(3)
      // no key is a label
      for (const sample of samples) {
        for (const value of Object.values(sample.labels)) expect(value).not.toContain(prefix)
      }
    }))
})
