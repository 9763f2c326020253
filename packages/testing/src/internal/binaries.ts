/** Finding the etcd and etcdctl binaries. */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { EtcdServerError } from "../EtcdServerError.js"

/** How to get etcd on Debian, for error messages. */
export const installHint =
  "install it with: apt-get install -y etcd-server etcd-client (or set ETCD_BIN and ETCDCTL_BIN)"

/** The path of an executable: `$variable` if set, else the first `name` on the PATH, or undefined. */
export const locate = (variable: string, name: string): string | undefined => {
  const explicit = process.env[variable]
  if (explicit !== undefined && explicit !== "") return isExecutable(explicit) ? explicit : undefined
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, name)
    if (dir !== "" && isExecutable(candidate)) return candidate
  }
  return undefined
}

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** The path of an executable, or an EtcdServerError that says how to install it. */
export const findBinary = (variable: string, name: string): Effect.Effect<string, EtcdServerError> =>
  Effect.suspend(() => {
    const found = locate(variable, name)
    return found === undefined
      ? Effect.fail(
        new EtcdServerError({
          message: `${name} not found (${variable}=${process.env[variable] ?? "unset"}): ${installHint}`
        })
      )
      : Effect.succeed(found)
  })
