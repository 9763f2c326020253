/** Medians over rounds, ratios, and the markdown table. */
import type { LeasesFigures, Measurement, WatchersFigures } from "./workloads.js"

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
    rss_mb: median(group.map((m) => m.rss_mb)),
    gc: {
      scavenges: median(group.map((m) => m.gc.scavenges)),
      full_gcs: median(group.map((m) => m.gc.full_gcs)),
      promoted_kb_per_op: median(group.map((m) => m.gc.promoted_kb_per_op)),
      old_peak_mb: median(group.map((m) => m.gc.old_peak_mb)),
      live_mb: median(group.map((m) => m.gc.live_mb))
    }
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

/**
 * The garbage collector's figures of the workloads with many calls in flight (medians over
 * the rounds): where the peak RSS of the main table comes from.
 */
export const gcTable = (rows: ReadonlyArray<Measurement>, workloads: ReadonlyArray<string>): string => {
  const lines = [
    "| workload | client | RSS MB | scavenges | full GCs | promoted KB/op | old generation peak MB | live after a full GC MB |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  ]
  for (const row of rows.filter((row) => workloads.includes(row.workload))) {
    const gc = row.gc
    lines.push(
      `| ${row.workload} | ${row.client} | ${fixed(row.rss_mb, 0)} | ${fixed(gc.scavenges, 0)} | ${
        fixed(gc.full_gcs, 0)
      } | ${fixed(gc.promoted_kb_per_op, 2)} | ${fixed(gc.old_peak_mb, 0)} | ${fixed(gc.live_mb, 1)} |`
    )
  }
  return lines.join("\n")
}

/** The median of each numeric figure over rounds, per client (the first round's other fields). */
export const scaleMedians = <A extends { readonly client: string }>(runs: ReadonlyArray<A>): Array<A> => {
  const groups = new Map<string, Array<A>>()
  for (const run of runs) groups.set(run.client, [...(groups.get(run.client) ?? []), run])
  return [...groups.values()].map((group) => {
    const out: Record<string, unknown> = { ...group[0] }
    for (const [field, value] of Object.entries(group[0])) {
      if (typeof value === "number") out[field] = median(group.map((run) => (run as Record<string, any>)[field]))
    }
    return out as A
  })
}

/** `watchers-10k`: times, memory, and each client against etcd3 (rates: > 1 is faster; memory: < 1 is less). */
export const watchersTable = (rows: ReadonlyArray<WatchersFigures>): string => {
  const etcd3 = rows.find((row) => row.client === "etcd3")
  const lines = [
    "| client | watchers | create s | create rate × etcd3 | delivery s | delivery rate × etcd3 | RSS base MB | with watchers MB | peak MB | peak above base MB | above base × etcd3 | held MB | held × etcd3 |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  ]
  for (const row of rows) {
    lines.push(
      `| ${row.client} | ${row.watchers} | ${fixed(row.create_s, 2)} | ${
        etcd3 ? fixed(etcd3.create_s / row.create_s, 2) : "-"
      } | ${fixed(row.deliver_s, 2)} | ${etcd3 ? fixed(etcd3.deliver_s / row.deliver_s, 2) : "-"} | ${
        fixed(row.rss_base_mb, 0)
      } | ${fixed(row.rss_watchers_mb, 0)} | ${fixed(row.rss_peak_mb, 0)} | ${fixed(peakAbove(row), 0)} | ${
        etcd3 ? fixed(peakAbove(row) / peakAbove(etcd3), 2) : "-"
      } | ${fixed(held(row), 0)} | ${etcd3 ? fixed(held(row) / held(etcd3), 2) : "-"} |`
    )
  }
  return lines.join("\n")
}

/** The peak RSS above the baseline, in MB. */
const peakAbove = (row: WatchersFigures): number => row.rss_peak_mb - row.rss_base_mb

/** What the waiting watchers hold (heap and buffers after a full GC) above the baseline, in MB. */
const held = (row: WatchersFigures): number => row.held_watchers_mb - row.held_base_mb

/**
 * `watchers-10k`'s Stream rows against the floor row (Effect's Stream machinery on an
 * in-memory source, no etcd): how much of each row's memory (peak RSS and held) above the
 * baseline and of its delivery time the floor alone takes, and the row against etcd3 with
 * the floor taken out.
 */
export const watchersFloorNote = (rows: ReadonlyArray<WatchersFigures>): string | undefined => {
  const etcd3 = rows.find((row) => row.client === "etcd3")
  const floor = rows.find((row) => row.client.startsWith("Effect Stream floor"))
  if (etcd3 === undefined || floor === undefined) return undefined
  const streams = rows.filter((row) => row.client.includes("watcher.events") || row.client.includes("Watch.watch"))
  const beyond = (of: (row: WatchersFigures) => number, row: WatchersFigures) =>
    fixed((of(row) - of(floor)) / of(etcd3), 2)
  return streams.map((row) =>
    `${row.client}: the floor is ${fixed(peakAbove(floor), 0)} of its ${
      fixed(peakAbove(row), 0)
    } MB of peak above the baseline, ${fixed(held(floor), 0)} of its ${fixed(held(row), 0)} MB held, and ${
      fixed(floor.deliver_s, 2)
    } of its ${fixed(row.deliver_s, 2)} s of delivery; without it, peak ${beyond(peakAbove, row)}× etcd3's, held ${
      beyond(held, row)
    }× etcd3's, delivery rate ${fixed(etcd3.deliver_s / (row.deliver_s - floor.deliver_s), 2)}× etcd3's`
  ).join("\n")
}

/** `leases-10k`: grant time, idle keepalive CPU, revoke-all time, and what the server still lists. */
export const leasesTable = (rows: ReadonlyArray<LeasesFigures>): string => {
  const lines = [
    "| client | leases | grant s | idle CPU % of a core | idle s | lost (client) | alive after idle (server) | close (revoke all) s | left on server |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  ]
  for (const row of rows) {
    lines.push(
      `| ${row.client} | ${row.leases} | ${fixed(row.grant_s, 2)} | ${fixed(row.idle_cpu_pct, 1)} | ${
        fixed(row.idle_s, 1)
      } | ${row.lost} | ${row.alive_after_idle} | ${fixed(row.close_s, 2)} | ${row.left} |`
    )
  }
  return lines.join("\n")
}
