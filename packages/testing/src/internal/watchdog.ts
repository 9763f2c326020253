/**
 * What a test server starts never outlives the program that started it. A scope that closes
 * stops its etcd processes and removes their data; a program killed outright (SIGTERM,
 * SIGKILL, a crash) runs no finalizer, and without this its members went on running with
 * their data left under `/dev/shm`.
 *
 * One watchdog per server: a shell in a process group of its own (a terminal's Ctrl-C does not
 * reach it), reading a pipe from the program. Its scope's finalizer tells it `done` and it
 * exits. When the pipe closes with nothing said, the program is gone: it kills every process
 * whose command line names the server's directory (the members, whose data dirs are under
 * it) or whose environment names it (the gateways, which have no data dir), then removes the
 * directory. It holds no pid, so a pid the system gave to another process since is never hit.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import { EtcdServerError } from "../EtcdServerError.js"

/** The variable that names the directory in a gateway's environment (it has no data dir). */
export const dirVariable = "EFFECT_ETCD_TEST_PROXY_DIR"

// $dir comes from the environment: on the command line it would name the directory, and the
// watchdog would match itself
const script = `
while IFS= read -r line; do
  [ "$line" = done ] && exit 0
done
for proc in /proc/[0-9]*; do
  pid=\${proc#/proc/}
  [ "$pid" = "$$" ] && continue
  if tr '\\0' '\\n' < "$proc/cmdline" 2>/dev/null | grep -qF -- "$dir" ||
    tr '\\0' '\\n' < "$proc/environ" 2>/dev/null | grep -qxF -- "${dirVariable}=$dir"; then
    kill -CONT "$pid" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
  fi
done
rm -rf -- "$dir"
`

/**
 * Watches `dir` until the scope closes: if the program ends first, whatever runs from `dir`
 * is killed and `dir` is removed. Fails with `EtcdServerError` when no shell can be started.
 */
export const guard = (dir: string): Effect.Effect<void, EtcdServerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const watchdog = spawn("sh", ["-c", script], {
          detached: true,
          stdio: ["pipe", "ignore", "ignore"],
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", dir }
        })
        // without a shell the servers still stop with their scope, as they did before
        watchdog.on("error", () => {})
        // neither the watchdog nor its pipe keeps the program running
        watchdog.unref()
        const pipe = watchdog.stdin!
        pipe.on("error", () => {})
        ;(pipe as unknown as { unref?: () => void }).unref?.()
        return pipe
      },
      catch: (cause) => new EtcdServerError({ message: "cannot start the watchdog shell (sh)", cause })
    }),
    (pipe) => Effect.sync(() => pipe.end("done\n"))
  )
