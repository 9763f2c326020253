/**
 * `pnpm bench:check`: the benchmark end to end in its smoke mode (`--smoke`: tiny counts, one
 * process per client), so that it cannot rot. It checks the report's shape (every client on
 * every workload, finite figures, a slow-consumer figure, the scale workloads' figures for every
 * client, the profile summaries), never speed, and exits 1 when
 * anything is wrong. It runs as its own CI step, outside `pnpm test`: the bench's processes
 * would starve the test workers of a 2-core machine.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { clients, runnerLabel, scaleClients, scaleNames, scaleRunners, workloads } from "./workloads.js"

/** The figures each scale workload must report, all finite. */
const scaleFigures: Record<string, ReadonlyArray<string>> = {
  "watchers-10k": [
    "watchers",
    "create_s",
    "deliver_s",
    "rss_base_mb",
    "rss_watchers_mb",
    "held_base_mb",
    "held_watchers_mb",
    "rss_peak_mb",
    "delivered"
  ],
  "leases-10k": ["leases", "grant_s", "idle_cpu_pct", "idle_s", "lost", "alive_after_idle", "close_s", "left"]
}

const packageDir = path.resolve(import.meta.dirname, "..")
const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bench-check-")), "smoke.json")
const problems: Array<string> = []
let printed = ""
try {
  printed = execFileSync(process.execPath, ["--import", "tsx", "src/main.ts", "--smoke", "--json", out], {
    cwd: packageDir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 10 * 60_000
  })
  const all = JSON.parse(fs.readFileSync(out, "utf8")) as Array<Record<string, unknown>>
  const isScale = (row: Record<string, unknown>) => scaleNames.includes(row.workload as never)
  const rows = all.filter((row) => !isScale(row))
  for (const name of scaleNames) {
    const reported = scaleRunners(name).map((runner) => runnerLabel(name, runner))
    for (const client of reported) {
      const row = all.find((row) => row.workload === name && row.client === client)
      if (row === undefined) {
        problems.push(`no ${name} row for ${client}`)
        continue
      }
      for (const figure of scaleFigures[name]) {
        if (!Number.isFinite(row[figure])) problems.push(`${name} ${client}: ${figure} is ${row[figure]}`)
      }
    }
    if (!printed.includes(`\n${name} (`)) problems.push(`no ${name} section in the report`)
  }
  const seen = rows.map((row) => `${row.workload} ${row.client}`).sort()
  const expected = workloads.flatMap((w) => clients.map((c) => `${w.name} ${c}`)).sort()
  for (const missing of expected.filter((row) => !seen.includes(row))) problems.push(`no row for ${missing}`)
  for (const extra of seen.filter((row) => !expected.includes(row))) problems.push(`unexpected row ${extra}`)
  for (const row of rows) {
    for (const figure of ["ops_per_s", "cpu_us_per_op", "p50_ms", "p99_ms", "rss_mb"]) {
      if (!Number.isFinite(row[figure])) problems.push(`${row.workload} ${row.client}: ${figure} is ${row[figure]}`)
    }
    if (!((row.ops_per_s as number) > 0)) problems.push(`${row.workload} ${row.client}: ops_per_s is not positive`)
    const gc = row.gc as Record<string, unknown> | undefined
    for (const figure of ["scavenges", "full_gcs", "promoted_kb_per_op", "old_peak_mb"]) {
      if (!Number.isFinite(gc?.[figure])) {
        problems.push(`${row.workload} ${row.client}: gc.${figure} is ${gc?.[figure]}`)
      }
    }
  }
  if (!printed.includes("garbage collection in the measured sections")) {
    problems.push("no garbage collection table in the report")
  }
  if (!/memory-100k \(EtcdMemory, in process\): \d+ puts [\d.]+ s, \d+ gets [\d.]+ s/.test(printed)) {
    problems.push("no memory-100k figure in the report")
  }
  for (const workload of ["put-128", "watch-20000"]) {
    const profile = new RegExp(
      `profile of effect-etcd ${workload} \\(\\d+ ops.*\\): \\d+ µs busy per op\\n  .*Effect runtime`
    )
    if (!profile.test(printed)) problems.push(`no profile summary of ${workload} in the report`)
  }
  if (!/slow consumer .* peak RSS -?\d+(\.\d+)? MB above baseline/.test(printed)) {
    problems.push("no slow-consumer figure in the report")
  }
  if (!/mirror-100k .* built in \d+(\.\d+)? s; heap -?\d+(\.\d+)? MB/.test(printed)) {
    problems.push("no mirror-100k figure in the report")
  }
  if (!/config-100k .*: \d+ reads at \d+\/s with 0 Range RPCs; Kv\.get .* \d+ reads at \d+\/s/.test(printed)) {
    problems.push("no config-100k figure in the report, or Config reads that made Range RPCs")
  }
} catch (error) {
  problems.push(`the smoke run failed: ${error instanceof Error ? error.message : String(error)}`)
} finally {
  fs.rmSync(path.dirname(out), { recursive: true, force: true })
}
process.stdout.write(printed)
if (problems.length > 0) {
  process.stderr.write(`bench:check failed:\n${problems.map((problem) => `- ${problem}`).join("\n")}\n`)
  process.exit(1)
}
process.stdout.write(
  `bench:check: ${workloads.length} workloads × ${clients.length} clients and ${scaleNames.length} scale workloads × ${scaleClients.length} clients reported, figures finite\n`
)
