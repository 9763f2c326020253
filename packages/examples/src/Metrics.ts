/**
 * The client's metrics, scraped by Prometheus: a client built with `metrics: true` records
 * Effect `Metric`s (`EtcdMetrics`), `@effect/opentelemetry`'s NodeSdk layer hands them to an
 * OpenTelemetry `MetricReader`, and `@opentelemetry/exporter-prometheus` is that reader: it
 * serves them on `http://127.0.0.1:<port>/metrics` in Prometheus's text format. The program
 * runs a small workload (puts, a read, a watch, a lease, a lock), then scrapes itself once and
 * prints the client's series; `inspect` runs while the endpoint serves (the test scrapes it).
 *
 * `pnpm example metrics` runs `program` against a throwaway etcd (the client is built with
 * `metrics: true` for it; `ETCD_METRICS=true` does the same through `Etcd.config`).
 */
import { Ports } from "@effect-etcd/testing"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { Chunk, Console, Effect, Stream } from "effect"
import type { Etcd } from "effect-etcd"
import { KeyRange, Kv, Lease, Lock, Watch } from "effect-etcd"

/** Reads what the endpoint serves now. */
export const scrape = (url: string): Effect.Effect<string> =>
  Effect.promise(() => fetch(url).then((response) => response.text()))

/** A little of everything the client measures. */
export const workload = (prefix: string): Effect.Effect<void, unknown, Etcd.Etcd> =>
  Effect.gen(function*() {
    const first = yield* Kv.put(`${prefix}jobs/1`, "queued")
    yield* Kv.put(`${prefix}jobs/2`, "queued")
    yield* Kv.put(`${prefix}jobs/3`, "queued")
    yield* Kv.get(`${prefix}jobs/1`)
    const events = yield* Watch.watch(KeyRange.prefix(`${prefix}jobs/`), { startRevision: first.revision }).pipe(
      Stream.take(3),
      Stream.runCollect
    )
    yield* Console.log(`watched ${Chunk.size(events)} events`)
    yield* Effect.scoped(Effect.gen(function*() {
      const lease = yield* Lease.make("5 seconds")
      yield* Kv.put(`${prefix}workers/a`, "alive", { lease })
      yield* Lock.withLock(`${prefix}lock`, Kv.put(`${prefix}jobs/1`, "done"))
    }))
  })

/**
 * Serves the metrics on a loopback port while the workload runs, prints the client's series
 * from one scrape, and runs `inspect` with the endpoint's URL before it closes. Returns what
 * the scrape read.
 */
export const program = <A = void>(
  prefix: string,
  options?: { readonly inspect?: ((url: string) => Effect.Effect<A>) | undefined }
): Effect.Effect<{ readonly url: string; readonly text: string }, unknown, Etcd.Etcd> =>
  Effect.gen(function*() {
    const port = yield* Ports.freePort
    const exporter = new PrometheusExporter({ host: "127.0.0.1", port })
    const url = `http://127.0.0.1:${port}/metrics`
    return yield* Effect.gen(function*() {
      yield* Console.log(`serving Prometheus metrics on ${url}`)
      yield* workload(prefix)
      const text = yield* scrape(url)
      const series = text.split("\n").filter((line) =>
        (line.startsWith("etcd_client_") || line.startsWith("rpc_client_duration")) && !line.includes("_bucket")
      )
      yield* Console.log(`the client's series (${series.length}, buckets left out):`)
      for (const line of series) yield* Console.log(`  ${line}`)
      if (options?.inspect !== undefined) yield* options.inspect(url)
      return { url, text }
    }).pipe(
      Effect.provide(
        NodeSdk.layer(() => ({ resource: { serviceName: "effect-etcd-example" }, metricReader: exporter }))
      )
    )
  })
