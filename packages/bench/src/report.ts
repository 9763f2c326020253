/** Medians over rounds, ratios, and the markdown table. */
import type { Measurement } from "./workloads.js"

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** One row per client and workload: the median of each figure over the rounds. */
export const medians = (runs: ReadonlyArray<Measurement>): Array<Measurement> => {
  const groups = new Map<string, Array<Measurement>>()
  for (const run of runs) {
    const key = `${run.workload}\u0000${run.client}`
    groups.set(key, [...(groups.get(key) ?? []), run])
  }
  return [...groups.values()].map((group) => ({
    client: group[0].client,
    workload: group[0].workload,
    ops: group[0].ops,
    ops_per_s: median(group.map((m) => m.ops_per_s)),
    cpu_us_per_op: median(group.map((m) => m.cpu_us_per_op)),
    p50_ms: median(group.map((m) => m.p50_ms)),
    p99_ms: median(group.map((m) => m.p99_ms)),
    rss_mb: median(group.map((m) => m.rss_mb))
  }))
}

const fixed = (n: number, digits: number) => Number.isFinite(n) ? n.toFixed(digits) : "-"

/** The table: figures per client, and ops/s and CPU per op relative to raw grpc-js and to etcd3. */
export const table = (rows: ReadonlyArray<Measurement>): string => {
  const find = (workload: string, client: string) =>
    rows.find((row) => row.workload === workload && row.client === client)
  const lines = [
    "| workload | client | ops/s | CPU µs/op | p50 ms | p99 ms | RSS MB | ops/s × raw | CPU × raw | ops/s × etcd3 |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  ]
  for (const row of rows) {
    const raw = find(row.workload, "raw-grpc")
    const etcd3 = find(row.workload, "etcd3")
    lines.push(
      `| ${row.workload} | ${row.client} | ${fixed(row.ops_per_s, 0)} | ${fixed(row.cpu_us_per_op, 1)} | ${
        fixed(row.p50_ms, 2)
      } | ${fixed(row.p99_ms, 2)} | ${fixed(row.rss_mb, 0)} | ${
        raw ? fixed(row.ops_per_s / raw.ops_per_s, 2) : "-"
      } | ${raw ? fixed(row.cpu_us_per_op / raw.cpu_us_per_op, 2) : "-"} | ${
        etcd3 ? fixed(row.ops_per_s / etcd3.ops_per_s, 2) : "-"
      } |`
    )
  }
  return lines.join("\n")
}
