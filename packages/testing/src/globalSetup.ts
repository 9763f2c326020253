/**
 * vitest global setup: fails the run at once, saying how to install etcd, when it is
 * missing (never a silent skip), and afterwards kills any etcd of this run that a
 * crashed worker left behind and removes its data.
 */
import * as fs from "node:fs"
import { installHint, locate } from "./internal/binaries.js"

const runId = `${process.pid}-${Date.now().toString(36)}`
const root = () => `/dev/shm/effect-etcd-test-${runId}`

/** @internal */
export const setup = (): void => {
  for (const [variable, name] of [["ETCD_BIN", "etcd"], ["ETCDCTL_BIN", "etcdctl"], ["OPENSSL_BIN", "openssl"]]) {
    if (locate(variable, name) === undefined) {
      throw new Error(`${name} not found: the tests run against real etcd processes; ${installHint}`)
    }
  }
  process.env.EFFECT_ETCD_TEST_RUN = runId
}

/** @internal */
export const teardown = (): void => {
  const prefix = root()
  for (const pid of fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    let commandLine = ""
    try {
      commandLine = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
    } catch {
      continue
    }
    if (!commandLine.includes(prefix)) continue
    try {
      process.kill(Number(pid), "SIGCONT")
      process.kill(Number(pid), "SIGKILL")
    } catch {
      // already gone
    }
  }
  fs.rmSync(prefix, { recursive: true, force: true })
}
