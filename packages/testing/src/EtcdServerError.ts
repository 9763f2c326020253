/**
 * The error of the test servers and proxies (`EtcdServer`, `EtcdProxy`), in a module of its
 * own so that `Ports` and the helpers under `internal/` (binaries, TLS material) can fail with
 * it without importing the server that uses them. `EtcdServer` re-exports it under the same name.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * Starting or talking to a test etcd failed; the message says why, with the member's
 * last log lines where they help.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdServerError extends Data.TaggedError("EtcdServerError")<{
  readonly message: string
  readonly cause?: unknown
}> {}
