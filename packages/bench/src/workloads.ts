/** The workloads, their sizes, and what a worker reports for one of them. */

export type WorkloadName =
  | "put-1"
  | "put-128"
  | "get-1"
  | "get-128"
  | "range-1000x1KiB"
  | "txn-cas-64"
  | "watch-20000"
  | "lease-grant-revoke"
  | "lock-acquire-release"
  | "lock-on-session"

export interface Workload {
  readonly name: WorkloadName
  /** Operations per run (events, for the watch), full and quick. */
  readonly ops: number
  readonly quickOps: number
  /** Operations in flight at once. */
  readonly concurrency: number
}

export const workloads: ReadonlyArray<Workload> = [
  { name: "put-1", ops: 2_000, quickOps: 20, concurrency: 1 },
  { name: "put-128", ops: 20_000, quickOps: 256, concurrency: 128 },
  { name: "get-1", ops: 2_000, quickOps: 20, concurrency: 1 },
  { name: "get-128", ops: 20_000, quickOps: 256, concurrency: 128 },
  { name: "range-1000x1KiB", ops: 100, quickOps: 3, concurrency: 1 },
  { name: "txn-cas-64", ops: 10_000, quickOps: 128, concurrency: 64 },
  { name: "watch-20000", ops: 20_000, quickOps: 256, concurrency: 128 },
  { name: "lease-grant-revoke", ops: 500, quickOps: 10, concurrency: 1 },
  { name: "lock-acquire-release", ops: 500, quickOps: 10, concurrency: 1 },
  // acquire + release on one lease held throughout (effect-etcd's Session; etcd3 has no
  // such thing, so its figure is its ordinary lock cycle, the counterpart a user has)
  { name: "lock-on-session", ops: 500, quickOps: 10, concurrency: 1 }
]

export type ClientName = "effect-etcd" | "etcd3" | "raw-grpc"
export const clients: ReadonlyArray<ClientName> = ["effect-etcd", "etcd3", "raw-grpc"]

/** What a worker prints (as JSON) for one workload. */
export interface Measurement {
  readonly client: string
  readonly workload: string
  readonly ops: number
  readonly ops_per_s: number
  readonly cpu_us_per_op: number
  readonly p50_ms: number
  readonly p99_ms: number
  readonly rss_mb: number
  /** What the garbage collector did in the measured section (see `gcSummary` in measure.ts). */
  readonly gc: GcFigures
}

/**
 * The garbage collector's work over a measured section, from V8's `GCProfiler`: what it
 * moved into the old generation, how large that grew before a full collection emptied it,
 * and how much was live after one. The peak RSS at many calls in flight follows the second,
 * and V8 lets the old generation grow further before a full collection the more is live.
 */
export interface GcFigures {
  readonly scavenges: number
  readonly full_gcs: number
  /** Bytes moved from the young generation to the old one, per op, in KB. */
  readonly promoted_kb_per_op: number
  /** The old generation's largest size (used) when a collection began, in MB. */
  readonly old_peak_mb: number
  /** The heap used after the section's last full collection, in MB (NaN when there was none). */
  readonly live_mb: number
}

/** The arguments a worker gets. */
export interface Job {
  readonly endpoint: string
  readonly workload: WorkloadName
  readonly ops: number
  readonly concurrency: number
  /** A key prefix no other run uses. */
  readonly prefix: string
  /** How long the idle part of a scale workload lasts (leases-10k's keepalive window), in seconds. */
  readonly idleSeconds?: number | undefined
  /** The server's plain-HTTP metrics URL (`watchers-10k` through `Watch.watch` counts the server's watchers there). */
  readonly metricsUrl?: string | undefined
  /** Run the measured section under the CPU profiler and report its summary (see profile.ts). */
  readonly profile?: boolean | undefined
}

/**
 * The scale workloads: many watchers or many leases on one client, each client in a
 * process of its own, reporting times and memory rather than ops/s.
 */
export type ScaleName = "watchers-10k" | "leases-10k"
export const scaleNames: ReadonlyArray<ScaleName> = ["watchers-10k", "leases-10k"]
/** The clients the scale workloads run through (raw grpc-js is the floor). */
export const scaleClients: ReadonlyArray<ClientName> = ["effect-etcd", "etcd3", "raw-grpc"]

/**
 * The processes of one scale workload: each client, and for `watchers-10k` also
 * effect-etcd's watchers read in the two other ways (`Watch.watch`, the Stream-only API;
 * `watcher.next`, no Stream), and the floor of Effect's own Stream machinery (the same
 * consumers on an in-memory source: no etcd, no client).
 */
export const scaleRunners = (name: ScaleName): ReadonlyArray<ScaleRunner> =>
  name === "watchers-10k" ? [...scaleClients, "effect-etcd-watch", "effect-etcd-next", "stream-floor"] : scaleClients

/** A process of a scale workload: a client, or one of `watchers-10k`'s other effect-etcd readers, or its floor. */
export type ScaleRunner = ClientName | WatchersReader
/** `watchers-10k`'s runners besides the clients: see `scaleRunners`. */
export type WatchersReader = "effect-etcd-watch" | "effect-etcd-next" | "stream-floor"

/**
 * The name a scale runner's row carries in the report: effect-etcd's `watchers-10k` rows
 * say how the watchers are read.
 */
export const runnerLabel = (name: ScaleName, runner: ScaleRunner): string => {
  if (name === "leases-10k") return runner
  switch (runner) {
    case "effect-etcd":
      return "effect-etcd (watcher.events)"
    case "effect-etcd-watch":
      return "effect-etcd (Watch.watch)"
    case "effect-etcd-next":
      return "effect-etcd (watcher.next)"
    case "stream-floor":
      return "Effect Stream floor (no etcd)"
    default:
      return runner
  }
}
/** The TTL of each lease of leases-10k, in seconds (a keepalive every 2 s). */
export const scaleLeaseTtl = 6
/** How many creates, puts, grants and revokes a scale workload has in flight at once. */
export const scaleConcurrency = 64

/**
 * What `watchers-10k` reports: N watchers, each on its own prefix and consumed by its own
 * fiber (or listener) taking one event; created 64 at a time, then one put per prefix,
 * 64 at a time.
 */
export interface WatchersFigures {
  readonly client: string
  readonly watchers: number
  /** Seconds to create every watcher (each acknowledged by the server). */
  readonly create_s: number
  /** Seconds from the first put to the last watcher's event. */
  readonly deliver_s: number
  /** RSS after a warm-up and a GC, before any watcher. */
  readonly rss_base_mb: number
  /** RSS once every watcher exists. */
  readonly rss_watchers_mb: number
  /** What the process held (heap and buffers, after a full GC) after a warm-up, before any watcher. */
  readonly held_base_mb: number
  /** What the process held (heap and buffers, after a full GC) once every watcher exists and waits. */
  readonly held_watchers_mb: number
  /** The highest RSS sampled from the first create to the last delivery. */
  readonly rss_peak_mb: number
  /** Watchers that got their event (all of them, or the run fails). */
  readonly delivered: number
}

/**
 * What `leases-10k` reports: N leases of 6 s granted 64 at a time and kept alive, an idle
 * window, then all revoked at once (effect-etcd: the scope they were made in closes).
 */
export interface LeasesFigures {
  readonly client: string
  readonly leases: number
  /** Seconds to grant them all (and start their keepalives). */
  readonly grant_s: number
  /** The process's CPU over the idle window, in % of one core. */
  readonly idle_cpu_pct: number
  /** The idle window, in seconds. */
  readonly idle_s: number
  /** Of the leases, how many the client reported lost during the grants and the idle window (none, if it keeps up). */
  readonly lost: number
  /** Of the leases, how many the server still listed at the end of the idle window. */
  readonly alive_after_idle: number
  /** Seconds to revoke them all (effect-etcd: Scope.close). */
  readonly close_s: number
  /** Of the leases, how many the server still lists after the close. */
  readonly left: number
}

/** A value of `size` bytes, the same for every client. */
export const payload = (size: number): string => "x".repeat(size)

/** Each lane's keys: put/get spread their keys over 1000 names. */
export const keyOf = (prefix: string, i: number): string => `${prefix}k/${i % 1000}`
