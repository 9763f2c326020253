/**
 * vitest global setup: fails the run at once, saying how to install etcd, when it is
 * missing (never a silent skip), and afterwards kills any etcd of this run that a
 * crashed worker left behind and removes its data. A run that was killed outright has no
 * teardown: the next run does that run's cleanup when it starts.
 */
import * as fs from "node:fs"
import { installHint, locate } from "./internal/binaries.js"
import { dirVariable } from "./internal/watchdog.js"

const rootPrefix = "/dev/shm/effect-etcd-test-"
const runId = `${process.pid}-${Date.now().toString(36)}`
const root = () => `${rootPrefix}${runId}`

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Reads a file of /proc, or "" if the process is gone or not ours. */
const readProc = (file: string): string => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return ""
  }
}

/**
 * Kills every process whose command line names `prefix` (the etcd members and gRPC proxies of
 * one run), or whose environment does (the gateways, which have no data dir), then removes it.
 */
const sweep = (prefix: string): void => {
  for (const pid of fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    if (
      !readProc(`/proc/${pid}/cmdline`).includes(prefix) &&
      !readProc(`/proc/${pid}/environ`).includes(`${dirVariable}=${prefix}`)
    ) continue
    try {
      process.kill(Number(pid), "SIGCONT")
      process.kill(Number(pid), "SIGKILL")
    } catch {
      // already gone
    }
  }
  fs.rmSync(prefix, { recursive: true, force: true })
}

/** The leftovers of earlier runs whose vitest process is gone (killed before its teardown). */
const sweepAbandonedRuns = (): void => {
  for (const entry of fs.readdirSync("/dev/shm")) {
    const owner = /^effect-etcd-test-(\d+)-/.exec(entry)
    if (owner !== null && !alive(Number(owner[1]))) sweep(`/dev/shm/${entry}`)
  }
}

/** @internal */
export const setup = (): void => {
  for (const [variable, name] of [["ETCD_BIN", "etcd"], ["ETCDCTL_BIN", "etcdctl"], ["OPENSSL_BIN", "openssl"]]) {
    if (locate(variable, name) === undefined) {
      throw new Error(`${name} not found: the tests run against real etcd processes; ${installHint}`)
    }
  }
  sweepAbandonedRuns()
  process.env.EFFECT_ETCD_TEST_RUN = runId
}

/** @internal */
export const teardown = (): void => sweep(root())
