/**
 * Finds the store's compact revision. No RPC reports it directly, but a watch that
 * starts at revision 1 is answered with it once anything was compacted.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as EtcdError from "../../EtcdError.js"
import { fromInt64 } from "../data/codec.js"
import type { Transport } from "../transport/transport.js"
import type { WatchRequest } from "../wire/proto/generated/etcdserverpb/WatchRequest.js"
import type { WatchResponse__Output } from "../wire/proto/generated/etcdserverpb/WatchResponse.js"
import { methods } from "../wire/proto/loader.js"

// a key nobody uses, so that an uncompacted store sends no events for it
const probeKey = Buffer.from("\u0000effect-etcd/compaction-probe", "utf8")

/**
 * The oldest revision still available, or 0n when nothing was compacted. Called only
 * after the server said a revision was compacted, so the answer comes at once; bounded
 * by the call's own timeout (the request timeout by default) all the same.
 */
export const compactRevision = (
  transport: Transport,
  timeoutInput?: Duration.DurationInput | undefined
): Effect.Effect<bigint, EtcdError.EtcdError> => {
  const timeout = timeoutInput === undefined ? transport.requestTimeout : Duration.decode(timeoutInput)
  return Effect.acquireUseRelease(
    transport.duplex<WatchRequest, WatchResponse__Output>(methods.watch.watch),
    ({ call, endpoint }) =>
      Effect.async<bigint, EtcdError.EtcdError>((resume) => {
        call.on("data", (response: WatchResponse__Output) => {
          const revision = fromInt64(response.compactRevision)
          if (revision > 0n || response.canceled) resume(Effect.succeed(revision))
        })
        call.on(
          "error",
          (error) => resume(Effect.fail(transport.streamError(methods.watch.watch.path, endpoint, error)))
        )
        call.on("end", () => resume(Effect.succeed(0n)))
        call.write({ createRequest: { key: probeKey, startRevision: "1" } })
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new EtcdError.Timeout({ method: methods.watch.watch.path, timeout })
        })
      ),
    ({ call }) =>
      Effect.sync(() => {
        call.removeAllListeners("data")
        call.on("error", () => {})
        call.cancel()
      })
  )
}
