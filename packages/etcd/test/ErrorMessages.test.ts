/** What a user reads when an error is printed: its tag first, then a message that says what happened. */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit } from "effect"
import { Etcd, EtcdError } from "effect-etcd"
import { closedPort, silentPort } from "./support.js"

const method = "/etcdserverpb.KV/Range"
const unavailable = new EtcdError.EtcdUnavailable({
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
  new EtcdError.ResponseTooLarge({ method, limit: 1024, size: 2048 }),
  new EtcdError.TooManyOps({ method }),
  new EtcdError.DuplicateKey({ method }),
  new EtcdError.EtcdInvalidArgument({ method, reason: "bad" }),
  new EtcdError.NoSpace({ method }),
  new EtcdError.LeaseNotFound({ method, leaseId: 0x1234n }),
  new EtcdError.LeaseExists({ method, leaseId: 0x1234n }),
  new EtcdError.LeaseLost({ leaseId: 0x1234n, reason: "expired" }),
  new EtcdError.NoLeader({ method, reason: "no leader" }),
  new EtcdError.EtcdTimeout({ method, timeout: Duration.seconds(1), endpoint: "http://127.0.0.1:1" }),
  unavailable,
  new EtcdError.ClientClosed({ method }),
  new EtcdError.EtcdConnectionFailed({
    endpoints: ["http://127.0.0.1:1"],
    timeout: Duration.seconds(5),
    failures: [{ endpoint: "http://127.0.0.1:1", address: "127.0.0.1:1", error: unavailable }]
  }),
  new EtcdError.AmbiguousOutcome({ method, cause: unavailable }),
  new EtcdError.EtcdAuthFailed({ method, username: "alice" }),
  new EtcdError.EtcdPermissionDenied({ method }),
  new EtcdError.InvalidAuthToken({ method }),
  new EtcdError.EtcdTlsError({ method, endpoints: ["https://127.0.0.1:1"], reason: "unknown CA" }),
  new EtcdError.EtcdNotFound({ method, reason: "member not found" }),
  new EtcdError.EtcdAlreadyExists({ method, reason: "user name already exists" }),
  new EtcdError.LearnerNotReady({ method }),
  new EtcdError.EtcdPreconditionFailed({ method, reason: "authentication is not enabled" }),
  new EtcdError.SnapshotFailed({ path: "/var/backups/etcd.db", bytesReceived: 4096, cause: unavailable }),
  new EtcdError.LockTimeout({ lockName: "jobs/lock", timeout: Duration.millis(300) }),
  new EtcdError.CampaignTimeout({ electionName: "jobs/leader", timeout: Duration.millis(300) }),
  new EtcdError.MirrorTimeout({ revision: 120n, reached: 117n, timeout: Duration.millis(300) }),
  new EtcdError.NotLeader({ electionName: "jobs/leader", key: "jobs/leader/1234" }),
  new EtcdError.StmRetriesExhausted({ attempts: 11 }),
  new EtcdError.WatchCanceled({ reason: "permission denied" }),
  new EtcdError.EtcdDecodeError({
    key: "flags/dark",
    revision: 12n,
    part: "value",
    direction: "decode",
    reason: "Expected number, actual \"abc\"",
    cause: new Error("parse")
  }),
  new EtcdError.EtcdUnknown({ method, code: 15, details: "corrupt", cause: new Error("raw") })
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
      // `cause` may be a field: it means what Error's own `cause` means
      expect(Object.keys(error).filter((key) => key === "name" || key === "message" || key === "stack")).toEqual([])
    }
  )

  it("LockTimeout names its lock in lockName and says LockTimeout when printed", () => {
    const error = new EtcdError.LockTimeout({ lockName: "err/lock", timeout: Duration.millis(300) })
    expect(String(error)).toBe(`LockTimeout: lock "err/lock" not acquired within 300ms`)
    expect(error.lockName).toBe("err/lock")
  })
})

/** How a program that dies of this failure prints it (what `NodeRuntime.runMain` logs). */
const printed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(
    Effect.exit(effect),
    (exit) => Exit.isFailure(exit) ? Cause.pretty(exit.cause, { renderErrorCause: true }) : ""
  )

describe("EtcdConnectionFailed says what happened", () => {
  it.scopedLive("a closed port: refused, at once, the cause told once in one line", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const endpoint = `http://127.0.0.1:${port}`
      // a connect timeout far longer than the test's: only an immediate failure passes
      const make = Etcd.make({ endpoints: [endpoint], connectTimeout: "10 minutes" })
      const error = yield* Effect.flip(make)
      expect(error._tag).toBe("EtcdConnectionFailed")
      expect(error.message).toBe(`could not connect to etcd at ${endpoint}: connection refused by 127.0.0.1:${port}`)
      expect(error._tag === "EtcdConnectionFailed" && error.failures.map((failure) => failure.error._tag)).toEqual([
        "EtcdUnavailable"
      ])

      // another closed port: grpc-js remembers a refused address for a while, then says less
      const other = yield* closedPort
      const text = yield* printed(Effect.scoped(Etcd.make({ endpoints: `http://127.0.0.1:${other}` })))
      expect(text.split("\n")[0]).toBe(
        `EtcdConnectionFailed: could not connect to etcd at http://127.0.0.1:${other}: connection refused by 127.0.0.1:${other}`
      )
      expect(text).not.toContain("[cause]")
      expect(text).not.toContain("Resolution note")
      expect(text.match(/refused|ECONNREFUSED/g)).toHaveLength(1)
    }))

  it.scopedLive("a member that never answers: no answer within the connect timeout, per endpoint", () =>
    Effect.gen(function*() {
      const closed = yield* closedPort
      const silent = yield* silentPort
      const endpoints = [`http://127.0.0.1:${closed}`, `127.0.0.1:${silent}`]
      const error = yield* Effect.flip(Etcd.make({ endpoints, connectTimeout: "500 millis" }))
      expect(error.message).toBe(
        `could not connect to etcd at any of 2 endpoints: ` +
          `${endpoints[0]}: connection refused by 127.0.0.1:${closed}; ` +
          `${endpoints[1]}: no answer from 127.0.0.1:${silent} within 500ms`
      )
    }))

  it("an endpoint without a port says it meant etcd's default port 2379", () => {
    // never dialled: 2379 may be a real etcd on this machine
    const error = new EtcdError.EtcdConnectionFailed({
      endpoints: ["localhost"],
      timeout: Duration.seconds(5),
      failures: [{
        endpoint: "localhost",
        address: "localhost:2379",
        error: new EtcdError.EtcdUnavailable({
          endpoints: ["localhost"],
          reason: "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379"
        })
      }]
    })
    expect(error.message).toBe(
      "could not connect to etcd at localhost (no port given, so etcd's default 2379): connection refused by 127.0.0.1:2379"
    )
  })

  it.effect("a parsed endpoint without a port dials 2379", () =>
    Effect.gen(function*() {
      // what the error above reports as `address` comes from here
      const { parse } = yield* Effect.promise(() => import("../src/internal/base/endpoint.js"))
      expect(parse("localhost")).toMatchObject({ address: "localhost:2379", port: 2379 })
      expect(parse("http://localhost:1234")).toMatchObject({ address: "localhost:1234", port: 1234 })
    }))
})
