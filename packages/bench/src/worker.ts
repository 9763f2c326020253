/**
 * One client, one workload, in a process of its own: `node dist/worker.js CLIENT JOB_JSON` (or the
 * slow-consumer check, its writer, the mirror check, or a scale workload through one client:
 * `watchers-10k:etcd3`, `leases-10k:effect-etcd`). With an array of jobs (the smoke run) it runs
 * them one after the other in this one process and prints an array.
 * Prints the measurement as JSON on its last line.
 *
 * It runs compiled (`pnpm run build:workers`, which builds effect-etcd's package first), so that each
 * client is measured as a user runs it: JavaScript, effect-etcd from its built package, and no
 * TypeScript loader in the process (tsx's loader thread alone added tens of MB to the RSS of a
 * process that loads many ES modules, as effect-etcd does, and far less to etcd3's CommonJS).
 */
import type { ClientName, Job, ScaleName, WatchersReader } from "./workloads.js"

const [client, jobJson] = process.argv.slice(2) as [
  | ClientName
  | "slow-consumer"
  | "writer"
  | "mirror-100k"
  | "config-100k"
  | "effect-etcd-metrics"
  | `${ScaleName}:${ClientName}`
  | `watchers-10k:${WatchersReader}`,
  string
]
const parsed = JSON.parse(jobJson) as Job | ReadonlyArray<Job>
const jobs: ReadonlyArray<Job> = Array.isArray(parsed) ? parsed : [parsed as Job]
const job = jobs[0]

const runOne = async (job: Job): Promise<unknown> => {
  switch (client) {
    case "effect-etcd":
      return (await import("./clients/effect.js")).run(job)
    case "effect-etcd-metrics":
      return (await import("./clients/effect.js")).run(job, { metrics: true })
    case "etcd3":
      return (await import("./clients/etcd3.js")).run(job)
    case "raw-grpc":
      return (await import("./clients/raw.js")).run(job)
    case "slow-consumer":
      return (await import("./clients/effect.js")).slowConsumer(job)
    case "mirror-100k":
      return (await import("./clients/effect.js")).mirror(job)
    case "config-100k":
      return (await import("./clients/effect.js")).configReads(job)
    case "writer":
      return (await import("./clients/raw.js")).write(job, 256)
    case "watchers-10k:effect-etcd":
      return (await import("./clients/effect.js")).watchers10k(job)
    case "watchers-10k:etcd3":
      return (await import("./clients/etcd3.js")).watchers10k(job)
    case "watchers-10k:effect-etcd-watch":
      return (await import("./clients/effect.js")).watchers10k(job, "watch")
    case "watchers-10k:effect-etcd-next":
      return (await import("./clients/effect.js")).watchers10k(job, "next")
    case "watchers-10k:stream-floor":
      return (await import("./clients/effect.js")).streamFloor10k(job)
    case "watchers-10k:raw-grpc":
      return (await import("./clients/raw.js")).watchers10k(job)
    case "leases-10k:effect-etcd":
      return (await import("./clients/effect.js")).leases10k(job)
    case "leases-10k:etcd3":
      return (await import("./clients/etcd3.js")).leases10k(job)
    case "leases-10k:raw-grpc":
      return (await import("./clients/raw.js")).leases10k(job)
  }
}

const main = async (): Promise<unknown> => {
  if (!Array.isArray(parsed)) return runOne(job)
  const results: Array<unknown> = []
  for (const each of jobs) results.push(await runOne(each))
  return results
}

main().then(
  (result) => {
    process.stdout.write(`\n${JSON.stringify(result)}\n`)
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`${client} ${job.workload}: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  }
)
