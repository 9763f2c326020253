/**
 * Whether a process is stopped: what `EtcdServer.pause` waits for. `kill(2)` returns once a
 * SIGSTOP is queued, and Linux wakes one thread to act on it; that thread stops the others
 * when it runs. On a loaded machine it may run late, and meanwhile the other threads go on
 * serving (a CI run saw a write sent just after the signal answered in 1 ms, which this
 * explains). Linux tells each thread's state in `/proc/<pid>/task/<tid>/stat` ("T" once stopped).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"

/** What `/proc` says of a process's threads; `unknown` where there is no `/proc` to ask. */
export type ProcessState = "stopped" | "running" | "gone" | "unknown"

/** The state of `pid` now: `stopped` only when every one of its threads is. */
export const stateOf = (pid: number): Effect.Effect<ProcessState> =>
  Effect.sync(() => {
    if (!fs.existsSync("/proc/self/task")) return "unknown"
    let states: Array<string>
    try {
      states = fs.readdirSync(`/proc/${pid}/task`).map((tid) => stateLetter(`/proc/${pid}/task/${tid}/stat`))
    } catch {
      return "gone"
    }
    if (states.length === 0 || states.every((state) => state === "Z" || state === "X")) return "gone"
    return states.every((state) => state === "T" || state === "t") ? "stopped" : "running"
  })

/** "pid (comm) S ...": the command may hold spaces and parentheses, so the state follows the last ")". */
const stateLetter = (file: string): string => {
  try {
    const stat = fs.readFileSync(file, "utf8")
    return stat.charAt(stat.lastIndexOf(")") + 2)
  } catch {
    // a thread that ended between the listing and the read
    return "X"
  }
}

/**
 * Waits (every 10 ms, up to `within`) until `pid` is in `want`: `stopped` after a SIGSTOP, or
 * not stopped after a SIGCONT. Returns the last state seen, so that the caller can say what
 * went wrong when it is not the one wanted; `unknown` at once where there is no `/proc`.
 */
export const awaitState = (
  pid: number,
  want: "stopped" | "running",
  within: Duration.DurationInput
): Effect.Effect<ProcessState> =>
  Effect.gen(function*() {
    const attempts = Math.max(1, Math.ceil(Duration.toMillis(Duration.decode(within)) / 10))
    let state = yield* stateOf(pid)
    for (let attempt = 1; attempt < attempts && state !== want && state !== "gone" && state !== "unknown"; attempt++) {
      yield* Effect.sleep(Duration.millis(10))
      state = yield* stateOf(pid)
    }
    return state
  })
