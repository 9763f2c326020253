/** What a user reads when an error is printed: its tag first, then a message that says what happened. */
import { describe, expect, it } from "@effect/vitest"
import { Duration } from "effect"
import { EtcdError } from "effect-etcd"

const method = "/etcdserverpb.KV/Range"
const unavailable = new EtcdError.Unavailable({
  method,
  endpoints: ["http://127.0.0.1:1"],
  reason: "connection refused"
})

/** One instance of every error class of EtcdError.ts, each with every field a caller may read. */
const everyError: ReadonlyArray<EtcdError.EtcdError> = [
  new EtcdError.Compacted({ method, compactRevision: 7n, requestedRevision: 3n }),
  new EtcdError.FutureRevision({ method }),
  new EtcdError.EmptyKey({ method }),
  new EtcdError.RequestTooLarge({ method, size: 10 }),
  new EtcdError.TooManyOps({ method }),
  new EtcdError.DuplicateKey({ method }),
  new EtcdError.InvalidArgument({ method, reason: "bad" }),
  new EtcdError.NoSpace({ method }),
  new EtcdError.LeaseNotFound({ method, leaseId: 0x1234n }),
  new EtcdError.LeaseExists({ method, leaseId: 0x1234n }),
  new EtcdError.LeaseLost({ leaseId: 0x1234n, reason: "expired" }),
  new EtcdError.NoLeader({ method, reason: "no leader" }),
  new EtcdError.Timeout({ method, timeout: Duration.seconds(1), endpoint: "http://127.0.0.1:1" }),
  unavailable,
  new EtcdError.ConnectionFailed({
    endpoints: ["http://127.0.0.1:1"],
    timeout: Duration.seconds(5),
    cause: unavailable
  }),
  new EtcdError.AmbiguousOutcome({ method, cause: unavailable }),
  new EtcdError.AuthFailed({ method, username: "alice" }),
  new EtcdError.PermissionDenied({ method }),
  new EtcdError.InvalidAuthToken({ method }),
  new EtcdError.TlsError({ method, endpoints: ["https://127.0.0.1:1"], reason: "unknown CA" }),
  new EtcdError.LockTimeout({ lockName: "jobs/lock", timeout: Duration.millis(300) }),
  new EtcdError.WatchCanceled({ reason: "permission denied" }),
  new EtcdError.Unknown({ method, code: 15, details: "corrupt", cause: new Error("raw") })
]

describe("printed errors", () => {
  it("the table above covers every error class EtcdError exports", () => {
    const classes = Object.entries(EtcdError)
      .filter(([, value]) => typeof value === "function" && value.prototype instanceof Error)
      .map(([name]) => name)
      .sort()
    expect(everyError.map((error) => error._tag).sort()).toEqual(classes)
  })

  it.each(everyError.map((error) => [error._tag, error] as const))(
    "%s prints as its tag and its message, and no field hides Error's own",
    (tag, error) => {
      expect(error.name).toBe(tag)
      expect(String(error)).toBe(`${tag}: ${error.message}`)
      expect(error.message.length).toBeGreaterThan(0)
      expect(error.stack?.startsWith(`${tag}: `)).toBe(true)
    }
  )

  it("LockTimeout names its lock in lockName and says LockTimeout when printed", () => {
    const error = new EtcdError.LockTimeout({ lockName: "err/lock", timeout: Duration.millis(300) })
    expect(String(error)).toBe(`LockTimeout: lock "err/lock" not acquired within 300ms`)
    expect(error.lockName).toBe("err/lock")
  })
})
