/**
 * `pnpm bench [--quick | --smoke] [--json FILE] [--chart FILE] [--rounds N] [--only NAME,...] [--runners NAME,...]
 * [--v8-flag FLAG ...]`: starts one
 * etcd (data under /dev/shm, free loopback ports), runs every workload through effect-etcd, etcd3 and raw
 * grpc-js, each client in a process of its own, in interleaved rounds, and prints the medians;
 * then effect-etcd's own checks, `slow-consumer`, `mirror-100k` and `config-100k`, and the scale workloads
 * `watchers-10k` and `leases-10k` (10 000 watchers, 10 000 leases on one client; every client,
 * each in a process of its own; times, memory and idle CPU rather than ops/s).
 * `--quick` runs tiny counts; `--smoke` runs the same counts with one process per client
 * (not per client and workload), for `pnpm bench:check`: it proves the bench runs, not how fast.
 * `metrics-cost` (only when named in `--only`) runs put-128 and watch-20000 through effect-etcd with its
 * metrics on and off, and prints the ratios.
 * `memory-100k` (first, in this process, no server) times 100 000 puts and 100 000 gets on
 * `EtcdMemory`, the in-memory etcd; `--only memory-100k` runs just that and starts no etcd.
 */
import { EtcdServer } from "@effect-etcd/testing"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ratios, svg } from "./chart.js"
import type { ConfigFigures } from "./clients/effect.js"
import { cluster3Runners } from "./cluster.js"
import type { MemoryPeaks } from "./measure.js"
import { memory100k } from "./memory.js"
import { type ProfileSummary, render } from "./profile.js"
import { gcTable, leasesTable, medians, scaleMedians, table, watchersFloorNote, watchersTable } from "./report.js"
import {
  type ClientName,
  clients,
  type Job,
  type LeasesFigures,
  type Measurement,
  scaleConcurrency,
  type ScaleName,
  scaleNames,
  type ScaleRunner,
  scaleRunners,
  type WatchersFigures,
  workloads
} from "./workloads.js"

const args = process.argv.slice(2)
const smoke = args.includes("--smoke")
const quick = smoke || args.includes("--quick")
const jsonFile = args.includes("--json") ? args[args.indexOf("--json") + 1] : undefined
/** `--chart docs/bench.svg`: also draws the README's chart of this run (as `pnpm bench:chart` does from `--json`). */
const chartFile = args.includes("--chart") ? args[args.indexOf("--chart") + 1] : undefined
/** `--only put-1,slow-consumer`: just these workloads (the slow consumer's name is `slow-consumer`). */
const only = args.includes("--only") ? new Set(args[args.indexOf("--only") + 1].split(",")) : undefined
const selected = workloads.filter((workload) => only === undefined || only.has(workload.name))
/**
 * `--runners etcd3,effect-etcd-watch`: of the scale workloads' runners (the clients, and for
 * `watchers-10k` also `effect-etcd-watch`, `effect-etcd-next` and `stream-floor`), just these.
 */
const onlyRunners = args.includes("--runners") ? new Set(args[args.indexOf("--runners") + 1].split(",")) : undefined
/**
 * `--v8-flag --no-allocation-site-pretenuring` (repeatable): a V8 flag for every worker
 * process, every client alike, to see what a V8 heuristic costs; the run's last line names
 * them. Never for the figures the README quotes.
 */
const v8Flags = args.flatMap((arg, i) => arg === "--v8-flag" && args[i + 1] !== undefined ? [args[i + 1]] : [])
/** Whether the in-memory entry runs, and whether anything needs a real etcd. */
const memoryEntry = only === undefined || only.has("memory-100k")
const selectedScale = scaleNames.filter((name) => only === undefined || only.has(name))
/** `cluster-3-runners` runs in full runs and when named, not in the smoke run. */
const clusterEntry = only === undefined ? !smoke : only.has("cluster-3-runners")
/**
 * `metrics-cost` (only when named): put-128 and watch-20000 through effect-etcd with its metrics on
 * and off, interleaved, each in a process of its own; reported as ratios (on / off) of CPU per op
 * and of ops/s, per round and as the median.
 */
const metricsCost = only?.has("metrics-cost") === true
const needsServer = only === undefined || selected.length > 0 || only.has("slow-consumer") || metricsCost ||
  only.has("mirror-100k") || only.has("config-100k") || selectedScale.length > 0 || clusterEntry
/** The workloads whose garbage collection is reported after the table: the ones with many calls in flight. */
const manyInFlight: ReadonlyArray<string> = ["put-128", "get-128", "txn-cas-64", "watch-20000", "range-1000x1KiB"]

/**
 * `--profile put-128,lock-on-session`: the workloads whose effect-etcd run is repeated once under the CPU
 * profiler after the rounds, with a summary of its self time (default: put-128 and watch-20000, when selected;
 * `--profile none` for none).
 */
const profiledNames = args.includes("--profile")
  ? new Set(args[args.indexOf("--profile") + 1].split(","))
  : new Set(["put-128", "watch-20000"])
const rounds = args.includes("--rounds") ? Number(args[args.indexOf("--rounds") + 1]) : quick ? 1 : 3
const packageDir = path.resolve(import.meta.dirname, "..")

/** Runs one worker process and parses the JSON it prints last. */
const worker = (
  client:
    | ClientName
    | "effect-etcd-metrics"
    | "slow-consumer"
    | "mirror-100k"
    | "config-100k"
    | `${ScaleName}:${ScaleRunner}`,
  job: Job | ReadonlyArray<Job>
) =>
  Effect.async<unknown, Error>((resume) => {
    const child = execFile(
      process.execPath,
      [...v8Flags, "--expose-gc", "dist/worker.js", client, JSON.stringify(job)],
      { cwd: packageDir, maxBuffer: 16 * 1024 * 1024, timeout: 10 * 60_000 },
      (error, stdout, stderr) => {
        const what = Array.isArray(job) ? "smoke run" : (job as Job).workload
        if (error) return resume(Effect.fail(new Error(`${client} ${what} failed: ${stderr || error.message}`)))
        const last = stdout.trim().split("\n").pop() ?? ""
        try {
          resume(Effect.succeed(JSON.parse(last)))
        } catch {
          resume(Effect.fail(new Error(`${client} ${what} printed no result: ${stdout}`)))
        }
      }
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const version = (name: string) => {
  try {
    const file = path.join(packageDir, "node_modules", name, "package.json")
    return JSON.parse(fs.readFileSync(file, "utf8")).version as string
  } catch {
    return "?"
  }
}

const program = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  const endpoint = server.endpoints[0]
  const etcdVersion = (yield* server.etcdctl(["version"])).split("\n")[0]
  yield* Console.log(
    `etcd at ${endpoint} (${etcdVersion}); ${rounds} round(s)${smoke ? ", smoke" : quick ? ", quick" : ""}`
  )
  const runs: Array<Measurement> = []
  const jobOf = (round: number, workload: (typeof workloads)[number], client: ClientName): Job => ({
    endpoint,
    workload: workload.name,
    ops: quick ? workload.quickOps : workload.ops,
    concurrency: workload.concurrency,
    prefix: `bench/${round}/${workload.name}/${client}/`
  })
  for (let round = 0; smoke && selected.length > 0 && round < rounds; round++) {
    // one process per client, every workload in it: the process start-ups are most of a tiny run
    for (const client of clients) {
      const results = (yield* worker(client, selected.map((workload) => jobOf(round, workload, client)))) as Array<
        Measurement
      >
      runs.push(...results)
      yield* Console.log(`round ${round + 1} ${client}: ${results.length} workloads`)
    }
  }
  for (let round = 0; !smoke && round < rounds; round++) {
    for (const workload of selected) {
      // interleaved: every client once per workload per round, in a rotating order
      const order = clients.map((_, i) => clients[(i + round) % clients.length])
      for (const client of order) {
        const job = jobOf(round, workload, client)
        const result = (yield* worker(client, job)) as Measurement
        runs.push(result)
        yield* Console.log(
          `round ${round + 1} ${workload.name.padEnd(22)} ${client.padEnd(12)} ${
            result.ops_per_s.toFixed(0).padStart(8)
          } ops/s ${result.cpu_us_per_op.toFixed(1).padStart(8)} µs CPU/op`
        )
      }
    }
  }
  const costRatios: Array<{ workload: string; round: number; cpu: number; throughput: number }> = []
  for (let round = 0; metricsCost && round < rounds; round++) {
    for (const workload of workloads.filter((w) => w.name === "put-128" || w.name === "watch-20000")) {
      const variants = ["effect-etcd", "effect-etcd-metrics"] as const
      const order = round % 2 === 0 ? variants : [...variants].reverse()
      const results: Record<string, Measurement> = {}
      for (const variant of order) {
        const job = { ...jobOf(round, workload, "effect-etcd"), prefix: `bench/${round}/${workload.name}/${variant}/` }
        results[variant] = (yield* worker(variant, job)) as Measurement
      }
      const off = results["effect-etcd"]
      const on = results["effect-etcd-metrics"]
      const ratio = {
        workload: workload.name,
        round,
        cpu: on.cpu_us_per_op / off.cpu_us_per_op,
        throughput: on.ops_per_s / off.ops_per_s
      }
      costRatios.push(ratio)
      yield* Console.log(
        `round ${round + 1} metrics-cost ${workload.name.padEnd(12)} off ${off.cpu_us_per_op.toFixed(1)} µs CPU/op ${
          off.ops_per_s.toFixed(0)
        } ops/s; on ${on.cpu_us_per_op.toFixed(1)} µs CPU/op ${on.ops_per_s.toFixed(0)} ops/s; CPU/op on/off ${
          ratio.cpu.toFixed(3)
        }`
      )
    }
  }
  if (metricsCost) {
    const median = (values: Array<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
    yield* Console.log("\nmetrics-cost: effect-etcd with metrics on / off (median of the rounds; > 1 costs more)")
    for (const name of ["put-128", "watch-20000"]) {
      const of = costRatios.filter((ratio) => ratio.workload === name)
      if (of.length === 0) continue
      yield* Console.log(
        `  ${name.padEnd(12)} CPU/op ${median(of.map((r) => r.cpu)).toFixed(3)} (rounds ${
          of.map((r) => r.cpu.toFixed(3)).join(", ")
        }), ops/s ${median(of.map((r) => r.throughput)).toFixed(3)}`
      )
    }
  }
  const profiles: Array<ProfileSummary> = []
  for (const workload of selected.filter((workload) => profiledNames.has(workload.name))) {
    const result = (yield* worker("effect-etcd", { ...jobOf(rounds, workload, "effect-etcd"), profile: true })) as {
      readonly profile: ProfileSummary
    }
    profiles.push(result.profile)
  }
  const events = smoke ? 200 : quick ? 500 : 50_000
  // once per round, like every workload, and the median reported: the peak is the heap's
  // growth before a full collection, and V8 sizes that from its timing of earlier ones
  const slowPeaks: Array<MemoryPeaks> = []
  for (let round = 0; (only === undefined || only.has("slow-consumer")) && round < rounds; round++) {
    const result = (yield* worker("slow-consumer", {
      endpoint,
      workload: "watch-20000",
      ops: events,
      concurrency: 128,
      prefix: `bench/slow/${round}/`
    })) as MemoryPeaks
    slowPeaks.push(result)
  }
  const mirrorKeys = smoke ? 2_000 : quick ? 10_000 : 100_000
  const mirror = only !== undefined && !only.has("mirror-100k")
    ? undefined
    : (yield* worker("mirror-100k", {
      endpoint,
      workload: "watch-20000",
      ops: mirrorKeys,
      concurrency: 8,
      prefix: "bench/mirror/"
    })) as { keys: number; build_s: number; raw_mb: number; heap_mb: number }
  const configReads = smoke ? 2_000 : quick ? 10_000 : 100_000
  const config = only !== undefined && !only.has("config-100k")
    ? undefined
    : (yield* worker("config-100k", {
      endpoint,
      workload: "get-1",
      ops: configReads,
      concurrency: 1,
      prefix: "bench/config/"
    })) as ConfigFigures

  const clusterFigures = clusterEntry
    ? yield* cluster3Runners(server.endpoints, "bench/cluster/").pipe(Effect.orDie)
    : undefined

  /**
   * Compacts etcd's history and defragments it. The scale runs share one etcd, one client
   * after another, and each leaves the history of its 11 000 puts and their deletion: left
   * uncompacted, that history makes etcd 3.4 several times slower to create watchers (raw
   * grpc-js's 10 000 creates: 1.1 s on a compacted etcd, 5-8 s after two runs' history), so
   * the clients that ran later in a round were measured on a slower server. Each now starts
   * from the same state.
   */
  const compactHistory = Effect.gen(function*() {
    const status = JSON.parse(yield* server.etcdctl(["endpoint", "status", "--write-out=json"]))
    const revision = Number(status[0].Status.header.revision)
    // compacted already at this revision (a run that wrote nothing) is fine
    if (revision > 1) yield* Effect.ignore(server.etcdctl(["compact", String(revision), "--physical"]))
    yield* server.etcdctl(["defrag"])
  })

  // the scale workloads: every client once per round, in a rotating order
  const scaleSize = smoke ? 200 : quick ? 1_000 : 10_000
  const idleSeconds = smoke ? 1 : quick ? 3 : 10
  const scaleRuns: Record<ScaleName, Array<WatchersFigures | LeasesFigures>> = { "watchers-10k": [], "leases-10k": [] }
  for (let round = 0; round < rounds; round++) {
    for (const name of selectedScale) {
      const runners = scaleRunners(name).filter((runner) => onlyRunners === undefined || onlyRunners.has(runner))
      const order = runners.map((_, i) => runners[(i + round) % runners.length])
      for (const client of order) {
        const runner: `${ScaleName}:${ScaleRunner}` = `${name}:${client}`
        yield* compactHistory
        const outcome = yield* Effect.either(worker(runner, {
          endpoint,
          workload: "watch-20000",
          ops: scaleSize,
          concurrency: scaleConcurrency,
          prefix: `bench/${round}/${name}/${client}/`,
          metricsUrl: server.members[0].metricsUrl,
          idleSeconds
        }))
        if (outcome._tag === "Left") {
          // a client that cannot take the load is a result too (etcd3's circuit breaker opens,
          // say): the row stays out and the reason is printed; bench:check reports the missing row
          const reason = outcome.left.message.split("\n").find((line) => line.includes("Error")) ?? outcome.left.message
          yield* Console.log(`round ${round + 1} ${name.padEnd(22)} ${client.padEnd(12)} failed: ${reason.trim()}`)
          continue
        }
        const result = outcome.right as WatchersFigures | LeasesFigures
        scaleRuns[name].push(result)
        yield* Console.log(
          `round ${round + 1} ${name.padEnd(22)} ${client.padEnd(12)} ${
            Object.entries(result).filter(([, value]) => typeof value === "number").map(([field, value]) =>
              `${field} ${Number.isInteger(value) ? value : (value as number).toFixed(2)}`
            ).join(", ")
          }`
        )
      }
    }
  }
  const watchersRows = scaleMedians(scaleRuns["watchers-10k"] as Array<WatchersFigures>)
  const leasesRows = scaleMedians(scaleRuns["leases-10k"] as Array<LeasesFigures>)

  const rows = medians(runs)
  const cpu = os.cpus()
  if (rows.length > 0) yield* Console.log(`\n${table(rows)}\n`)
  if (rows.some((row) => manyInFlight.includes(row.workload))) {
    yield* Console.log(
      `garbage collection in the measured sections (V8's GCProfiler), workloads with many calls in flight:\n${
        gcTable(rows, manyInFlight)
      }\n`
    )
  }
  for (const profile of profiles) yield* Console.log(`${render(profile)}\n`)
  if (slowPeaks.length > 0) {
    const median = (key: keyof MemoryPeaks) => {
      const sorted = slowPeaks.map((peaks) => peaks[key]).sort((a, b) => a - b)
      return sorted[Math.floor((sorted.length - 1) / 2)].toFixed(1)
    }
    const each = (key: keyof MemoryPeaks) => slowPeaks.map((peaks) => peaks[key].toFixed(1)).join(", ")
    yield* Console.log(
      `slow consumer (1 ms per event, ${events} events written 128 at a time): peak RSS ${
        median("rss_mb")
      } MB above baseline (median of ${slowPeaks.length}; each: ${each("rss_mb")})\n` +
        `  peaks above baseline, median (each), MB: heap committed ${median("heap_total_mb")} (${
          each("heap_total_mb")
        }), heap used ${median("heap_used_mb")} (${each("heap_used_mb")}), external ${median("external_mb")} (${
          each("external_mb")
        }), of it array buffers ${median("array_buffers_mb")} (${each("array_buffers_mb")})`
    )
  }
  if (mirror !== undefined) {
    yield* Console.log(
      `mirror-100k (Mirror.prefix of ${mirror.keys} keys of 100 B, from empty): built in ${
        mirror.build_s.toFixed(2)
      } s; heap ${mirror.heap_mb.toFixed(1)} MB for ${mirror.raw_mb.toFixed(1)} MB of keys and values (${
        (mirror.heap_mb / mirror.raw_mb).toFixed(2)
      }×)`
    )
  }
  if (config !== undefined) {
    yield* Console.log(
      `config-100k (EtcdConfig's provider over ${config.keys} keys, one Config.string per read): ${config.config_reads} reads at ${
        Math.round(config.config_reads_per_s)
      }/s with ${config.config_range_rpcs} Range RPCs; Kv.get of the same keys, one at a time: ${config.kv_reads} reads at ${
        Math.round(config.kv_reads_per_s)
      }/s, ${config.kv_range_rpcs_per_read.toFixed(2)} Range RPC per read (${
        (config.config_reads_per_s / config.kv_reads_per_s).toFixed(1)
      }×); ConfigProvider.fromMap of the same keys and values (Effect's floor): ${config.from_map_reads} reads at ${
        Math.round(config.from_map_reads_per_s)
      }/s (EtcdConfig at ${(config.config_reads_per_s / config.from_map_reads_per_s).toFixed(2)}× of it)`
    )
  }
  if (clusterFigures !== undefined) {
    yield* Console.log(
      `cluster-3-runners (3 @effect/cluster runners on EtcdRunnerStorage, default ShardingConfig but a 1 s shardLockRefreshInterval): ${clusterFigures.shards} shards locked by the 3 in ${
        clusterFigures.acquire_all_s.toFixed(2)
      } s; ${
        clusterFigures.txns_per_refresh_tick.toFixed(2)
      } etcd txn per refresh tick per runner (${clusterFigures.refresh_ticks} ticks)`
    )
  }
  if (watchersRows.length > 0) {
    yield* Console.log(
      `\nwatchers-10k (${scaleSize} watchers on one client, each on its own prefix and taking one event in its own fiber; created ${scaleConcurrency} at a time (Watch.watch: all forked at once), then one put per prefix ${scaleConcurrency} at a time):\n${
        watchersTable(watchersRows)
      }`
    )
    const floorNote = watchersFloorNote(watchersRows)
    if (floorNote !== undefined) yield* Console.log(`\n${floorNote}`)
  }
  if (leasesRows.length > 0) {
    yield* Console.log(
      `\nleases-10k (${scaleSize} leases of 6 s on one client, granted ${scaleConcurrency} at a time, kept alive through ${idleSeconds} s idle, then revoked all at once; effect-etcd: Lease.make in one scope, then Scope.close):\n${
        leasesTable(leasesRows)
      }\n`
    )
  }
  yield* Console.log(
    `load: ${os.loadavg().map((load) => load.toFixed(2)).join(" ")}; machine: ${cpu.length} × ${
      cpu[0]?.model ?? "?"
    }, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; ` +
      `${etcdVersion}; effect ${version("effect")}, etcd3 ${version("etcd3")}, @grpc/grpc-js ${
        version("@grpc/grpc-js")
      }` + (v8Flags.length === 0 ? "" : `; every worker with V8 flags: ${v8Flags.join(" ")}`)
  )
  if (jsonFile !== undefined) {
    const out = rows.map(({ client, cpu_us_per_op, gc, ops_per_s, p50_ms, p99_ms, rss_mb, workload }) => ({
      client,
      workload,
      ops_per_s,
      cpu_us_per_op,
      p50_ms,
      p99_ms,
      rss_mb,
      gc
    }))
    // the scale workloads' rows carry their own figures, tagged with their workload's name
    const scale = [
      ...watchersRows.map((row) => ({ workload: "watchers-10k", ...row })),
      ...leasesRows.map((row) => ({ workload: "leases-10k", ...row }))
    ]
    fs.writeFileSync(jsonFile, JSON.stringify([...out, ...scale], null, 2) + "\n")
    yield* Console.log(`wrote ${jsonFile}`)
  }
  const chartData = ratios(rows)
  if (chartFile !== undefined && chartData.length === 0) {
    yield* Console.log(`no chart: no workload of this run has both effect-etcd's and etcd3's figures`)
  } else if (chartFile !== undefined) {
    const run = new Date().toISOString().slice(0, 10)
    fs.writeFileSync(
      chartFile,
      svg(chartData, `${run}: medians of the bench's rounds, one local etcd (packages/bench)`)
    )
    yield* Console.log(`wrote ${chartFile}`)
  }
})

/** The `memory-100k` entry: puts then gets of distinct keys on `EtcdMemory`, in this process. */
const memory = Effect.gen(function*() {
  const ops = quick ? 2_000 : 100_000
  // a warm-up of a fifth, unmeasured, as for the clients: the figure is of JIT-compiled code
  yield* memory100k(Math.ceil(ops / 5))
  const result = yield* memory100k(ops)
  yield* Console.log(
    `memory-100k (EtcdMemory, in process): ${ops} puts ${result.put_s.toFixed(2)} s, ${ops} gets ${
      result.get_s.toFixed(2)
    } s, total ${result.total_s.toFixed(2)} s`
  )
})

Effect.gen(function*() {
  if (memoryEntry) yield* memory
  if (needsServer) yield* program.pipe(Effect.provide(EtcdServer.layer()))
}).pipe(NodeRuntime.runMain)
