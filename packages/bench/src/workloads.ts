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
}

/** The arguments a worker gets. */
export interface Job {
  readonly endpoint: string
  readonly workload: WorkloadName
  readonly ops: number
  readonly concurrency: number
  /** A key prefix no other run uses. */
  readonly prefix: string
  /** Run the measured section under the CPU profiler and report its summary (see profile.ts). */
  readonly profile?: boolean | undefined
}

/** A value of `size` bytes, the same for every client. */
export const payload = (size: number): string => "x".repeat(size)

/** Each lane's keys: put/get spread their keys over 1000 names. */
export const keyOf = (prefix: string, i: number): string => `${prefix}k/${i % 1000}`
