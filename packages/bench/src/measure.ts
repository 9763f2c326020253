/** Timing, CPU and memory of one measured section of a worker. */
import * as v8 from "node:v8"
import { profiled, type ProfileSummary, summarize } from "./profile.js"
import type { GcFigures, Job, Measurement } from "./workloads.js"

/** Samples the resident set while a section runs; `peak` is the highest reading in MB. */
export const rssSampler = () => {
  let peak = process.memoryUsage.rss()
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 5)
  return {
    stop: (): number => {
      clearInterval(timer)
      peak = Math.max(peak, process.memoryUsage.rss())
      return peak / (1024 * 1024)
    }
  }
}

/** Peaks of `process.memoryUsage()` (sampled every 5 ms), in MB above the values when it started. */
export interface MemoryPeaks {
  readonly rss_mb: number
  readonly heap_total_mb: number
  readonly heap_used_mb: number
  readonly external_mb: number
  readonly array_buffers_mb: number
}

/**
 * Samples the whole of `process.memoryUsage()`, not only the RSS: what the RSS counts is
 * the heap V8 has committed (heapTotal) and the memory outside it (external, of which
 * arrayBuffers are the backing stores of Buffers), so the peaks tell which one grew.
 */
export const memorySampler = () => {
  const start = process.memoryUsage()
  const peak = { ...start }
  const sample = () => {
    const now = process.memoryUsage()
    peak.rss = Math.max(peak.rss, now.rss)
    peak.heapTotal = Math.max(peak.heapTotal, now.heapTotal)
    peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed)
    peak.external = Math.max(peak.external, now.external)
    peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers)
  }
  const timer = setInterval(sample, 5)
  const mb = (bytes: number) => bytes / (1024 * 1024)
  return {
    stop: (): MemoryPeaks => {
      clearInterval(timer)
      sample()
      return {
        rss_mb: mb(peak.rss - start.rss),
        heap_total_mb: mb(peak.heapTotal - start.heapTotal),
        heap_used_mb: mb(peak.heapUsed - start.heapUsed),
        external_mb: mb(peak.external - start.external),
        array_buffers_mb: mb(peak.arrayBuffers - start.arrayBuffers)
      }
    }
  }
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]

/** Per-op latencies in ms, recorded by the workload while it runs. */
export class Latencies {
  readonly values: Array<number> = []
  /** Starts one op; call the returned function when it ends. */
  start(): () => void {
    const t0 = process.hrtime.bigint()
    return () => {
      this.values.push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
  }
  /** Runs one op and records how long it took. */
  async time(op: () => PromiseLike<unknown>): Promise<void> {
    const done = this.start()
    await op()
    done()
  }
}

/** Operations run before the measured ones, so that every client is measured warm. */
export const warmupOps = (job: Job): number => Math.max(1, Math.ceil(job.ops / 5))

/**
 * Measures `section(n)` (which runs `n` operations and records their latencies): a warm-up
 * of `warmupOps(job)` operations first, unmeasured, then `job.ops` measured ones. Set-up
 * and clean-up stay outside.
 */
export const measure = async (
  client: string,
  job: Job,
  latencies: Latencies,
  section: (ops: number) => Promise<void>
): Promise<Measurement & { readonly profile?: ProfileSummary }> => {
  await section(warmupOps(job))
  latencies.values.length = 0
  if (global.gc) global.gc()
  const rss = rssSampler()
  const gc = new v8.GCProfiler()
  gc.start()
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  // a profiled run reports its profile; its figures carry the profiler's overhead
  const profile = job.profile === true ? await profiled(`${client}-${job.workload}`, () => section(job.ops)) : undefined
  if (profile === undefined) await section(job.ops)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  const collections = gc.stop()
  const peak = rss.stop()
  const sorted = [...latencies.values].sort((a, b) => a - b)
  return {
    client,
    workload: job.workload,
    ops: job.ops,
    ops_per_s: job.ops / seconds,
    cpu_us_per_op: (cpu.user + cpu.system) / job.ops,
    p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99),
    rss_mb: peak,
    gc: gcSummary(collections, job.ops),
    ...(profile === undefined ? {} : { profile: summarize(profile, job.workload, job.ops) })
  }
}

/** One collection as `v8.GCProfiler` reports it (the fields read here). */
interface Collection {
  readonly gcType: string
  readonly beforeGC: HeapState
  readonly afterGC: HeapState
}
interface HeapState {
  readonly heapStatistics: { readonly usedHeapSize: number }
  readonly heapSpaceStatistics: ReadonlyArray<{ readonly spaceName: string; readonly spaceUsedSize: number }>
}

const oldSpaceUsed = (state: HeapState): number =>
  state.heapSpaceStatistics.find((space) => space.spaceName === "old_space")?.spaceUsedSize ?? 0

/** The collections of a measured section of `ops` operations, summed up. */
const gcSummary = (profile: { readonly statistics: ReadonlyArray<Collection> }, ops: number): GcFigures => {
  let scavenges = 0
  let fullGcs = 0
  let promoted = 0
  let oldPeak = 0
  let live = Number.NaN
  for (const collection of profile.statistics) {
    const before = oldSpaceUsed(collection.beforeGC)
    oldPeak = Math.max(oldPeak, before)
    if (collection.gcType === "Scavenge") {
      scavenges++
      promoted += Math.max(0, oldSpaceUsed(collection.afterGC) - before)
    } else if (collection.gcType === "MarkSweepCompact") {
      fullGcs++
      live = collection.afterGC.heapStatistics.usedHeapSize
    }
  }
  const mb = 1024 * 1024
  return {
    scavenges,
    full_gcs: fullGcs,
    promoted_kb_per_op: promoted / 1024 / ops,
    old_peak_mb: oldPeak / mb,
    live_mb: live / mb
  }
}

/** Runs `op(i)` for i in [0, n) with at most `concurrency` in flight (plain promises). */
export const pool = async (n: number, concurrency: number, op: (i: number) => Promise<void>): Promise<void> => {
  let next = 0
  const lane = async () => {
    while (next < n) await op(next++)
  }
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, lane))
}

/** Two full GCs (when `--expose-gc` is on): what is left is what is held. */
export const collect = (): void => {
  if (global.gc) global.gc()
  if (global.gc) global.gc()
}

/**
 * What the process holds, in MB, after two full GCs: the JS heap in use and the memory
 * outside it that JS objects own (buffers). Unlike the resident set, it does not follow
 * when the last GC ran nor what the allocator kept.
 */
export const heldMb = (): number => {
  collect()
  const usage = process.memoryUsage()
  return (usage.heapUsed + usage.external) / (1024 * 1024)
}

/** The resident set now, in MB. */
export const rssMb = (): number => process.memoryUsage.rss() / (1024 * 1024)

/** Seconds since `start` (from `process.hrtime.bigint()`). */
export const secondsSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9

/** Starts counting this process's CPU; `stop` gives it in % of one core over the wall time since. */
export const cpuMeter = () => {
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  return {
    stop: (): { readonly percent: number; readonly seconds: number } => {
      const cpu = process.cpuUsage(cpu0)
      const seconds = secondsSince(t0)
      return { percent: (cpu.user + cpu.system) / 1e6 / seconds * 100, seconds }
    }
  }
}
