/**
 * How a failed call is classified (internal/transport/grpcError.ts) and what the transport does with it
 * (the retry decision of internal/transport/retryPolicy.ts, applied by retry.ts): which failures a
 * read retries, which writes may be sent again, and which become AmbiguousOutcome. The
 * transport's side runs against a plain HTTP/2 server on loopback that answers as etcd's gRPC
 * server would, with the status each test asks for.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, Schedule } from "effect"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import * as Etcd from "../src/Etcd.js"
import * as EtcdError from "../src/EtcdError.js"
import { fromGrpc, neverSent } from "../src/internal/transport/grpcError.js"
import { Status } from "../src/internal/transport/grpcStatus.js"
import { frame } from "../src/internal/wire/grpcFrames.js"
import * as Kv from "../src/Kv.js"

const context = {
  method: "/etcdserverpb.KV/Put",
  endpoint: "http://127.0.0.1:1",
  endpoints: ["http://127.0.0.1:1", "http://127.0.0.1:2"],
  timeout: Duration.seconds(3),
  revision: 5n,
  leaseId: 0x99n,
  username: "bob"
}
const map = (code: number, details: string) => fromGrpc({ code, details }, context)

describe("fromGrpc", () => {
  it("UNAVAILABLE from the member itself: NoLeader for a missing leader, EtcdUnavailable with its reason otherwise", () => {
    for (const reason of ["no leader", "leader changed", "not leader", "not capable"]) {
      expect(map(Status.UNAVAILABLE, `etcdserver: ${reason}`)).toMatchObject({ _tag: "NoLeader", reason })
    }
    const timedOut = map(Status.UNAVAILABLE, "etcdserver: request timed out")
    expect(timedOut).toMatchObject({
      _tag: "EtcdUnavailable",
      method: context.method,
      endpoints: [context.endpoint],
      reason: "request timed out"
    })
    expect(neverSent(timedOut as EtcdError.EtcdError)).toBe(false)
  })

  it("UNAVAILABLE from the connection: EtcdTlsError for a TLS failure, EtcdUnavailable with the whole text otherwise", () => {
    for (
      const text of [
        "SSL routines::wrong version number",
        "self-signed certificate in certificate chain",
        "unable to verify the first certificate",
        "ERR_TLS_CERT_ALTNAME_INVALID: CERT_ mismatch",
        "handshake failed"
      ]
    ) {
      expect(map(Status.UNAVAILABLE, text)).toMatchObject({
        _tag: "EtcdTlsError",
        reason: text,
        endpoints: [context.endpoint]
      })
    }
    const reset = map(Status.UNAVAILABLE, "read ECONNRESET")
    expect(reset).toMatchObject({ _tag: "EtcdUnavailable", reason: "read ECONNRESET", endpoints: [context.endpoint] })
  })

  it("grpc-js's connection text loses its noise; a refused connection proves the call was never sent", () => {
    const refused = map(
      Status.UNAVAILABLE,
      "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: "
    )
    expect(refused).toMatchObject({
      _tag: "EtcdUnavailable",
      reason: "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1"
    })
    expect(neverSent(refused)).toBe(true)
    const remembered = map(Status.UNAVAILABLE, "No connection established. Last error: null. Resolution note: ")
    expect(remembered).toMatchObject({ _tag: "EtcdUnavailable", reason: "No connection established" })
    expect(neverSent(remembered)).toBe(true)
    for (const text of ["connect ECONNREFUSED 127.0.0.1:1", "connect ECONNRESET", "Name resolution failed"]) {
      expect(neverSent(map(Status.UNAVAILABLE, text))).toBe(true)
    }
    expect(neverSent(map(Status.UNAVAILABLE, "read ECONNRESET"))).toBe(false)
    // only an EtcdUnavailable can prove it: a timeout with the same words cannot
    expect(neverSent(new EtcdError.EtcdTimeout({ timeout: Duration.seconds(1), endpoint: "ECONNREFUSED" }))).toBe(false)
    expect(neverSent(new EtcdError.NoLeader({ reason: "No connection established" }))).toBe(false)
  })

  it("a resolution note that says something is kept; only an empty one is noise", () => {
    expect(
      map(
        Status.UNAVAILABLE,
        "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: no address"
      )
    )
      .toMatchObject({
        _tag: "EtcdUnavailable",
        reason: "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: no address"
      })
  })

  it("only the transport's word proves a call was never sent: its cause says unprocessed, and nothing else does", () => {
    const broken = (cause: unknown) =>
      new EtcdError.EtcdUnavailable({ endpoints: [context.endpoint], reason: "the stream was reset", cause })
    expect(neverSent(broken({ unprocessed: true }))).toBe(true)
    for (const cause of [{ unprocessed: false }, { unprocessed: "true" }, {}, null, undefined, "unprocessed"]) {
      expect({ cause, neverSent: neverSent(broken(cause)) }).toStrictEqual({ cause, neverSent: false })
    }
  })

  it("a call that broke without a status is EtcdUnavailable at the member it was sent to, with the transport's text", () => {
    for (const code of [Status.UNAVAILABLE, Status.INTERNAL, Status.UNKNOWN]) {
      const cause = { code, details: "etcdserver: no leader (the stream was reset: code 7)", rstCode: 7 }
      expect(fromGrpc(cause, context)).toMatchObject({
        _tag: "EtcdUnavailable",
        method: context.method,
        endpoints: [context.endpoint],
        reason: cause.details,
        cause
      })
    }
  })

  it("FAILED_PRECONDITION: a member that is not the leader, and names that already exist, keep the member's words", () => {
    expect(map(Status.FAILED_PRECONDITION, "etcdserver: not leader")).toMatchObject({
      _tag: "NoLeader",
      method: context.method,
      reason: "not leader"
    })
    for (const reason of ["user name already exists", "member ID already exist", "Peer URLs already exists"]) {
      expect(map(Status.FAILED_PRECONDITION, `etcdserver: ${reason}`)).toMatchObject({
        _tag: "EtcdAlreadyExists",
        method: context.method,
        reason
      })
    }
  })

  it("the receive limit is read from grpc-js's message too, when it gives no details", () => {
    const error = fromGrpc(
      { code: Status.RESOURCE_EXHAUSTED, message: "8 RESOURCE_EXHAUSTED: Received message larger than max (5 vs. 4)" },
      context
    )
    expect(error).toMatchObject({ _tag: "ResponseTooLarge", method: context.method, size: 5, limit: 4 })
  })

  it("deadlines: DEADLINE_EXCEEDED, and etcd 3.4's UNKNOWN context deadline exceeded, are an EtcdTimeout of the call", () => {
    for (
      const error of [
        map(Status.DEADLINE_EXCEEDED, "Deadline exceeded"),
        map(Status.UNKNOWN, "context deadline exceeded")
      ]
    ) {
      expect(error).toMatchObject({ _tag: "EtcdTimeout", method: context.method, endpoint: context.endpoint })
      expect(error._tag === "EtcdTimeout" && Duration.toMillis(error.timeout)).toBe(3_000)
    }
    expect(map(Status.UNKNOWN, "something else")).toMatchObject({ _tag: "EtcdUnknown", code: Status.UNKNOWN })
  })

  it("CANCELLED is an EtcdUnavailable that keeps its text; a closed PERMISSION_DENIED needs no text", () => {
    expect(map(Status.CANCELLED, "Cancelled on client")).toMatchObject({
      _tag: "EtcdUnavailable",
      reason: "Cancelled on client",
      endpoints: [context.endpoint]
    })
    expect(map(Status.PERMISSION_DENIED, "")).toMatchObject({ _tag: "EtcdPermissionDenied", method: context.method })
  })

  it("the etcdserver prefix is dropped from reasons; a message without it is kept whole", () => {
    expect(map(Status.INVALID_ARGUMENT, "etcdserver: something new")).toMatchObject({
      _tag: "EtcdInvalidArgument",
      reason: "something new"
    })
    expect(map(Status.INVALID_ARGUMENT, "grpc: something new")).toMatchObject({
      _tag: "EtcdInvalidArgument",
      reason: "grpc: something new"
    })
  })

  it("anything that is not a gRPC error is EtcdUnknown, with its message or its text, and kept as the cause", () => {
    const thrown = new Error("boom")
    expect(fromGrpc(thrown, context)).toMatchObject({ _tag: "EtcdUnknown", code: Status.UNKNOWN, details: "boom" })
    expect(fromGrpc("plain text", context)).toMatchObject({
      _tag: "EtcdUnknown",
      details: "plain text",
      cause: "plain text"
    })
    expect(fromGrpc(null, context)).toMatchObject({ _tag: "EtcdUnknown", details: "null" })
    expect(fromGrpc({ code: "14", details: "x" }, context)).toMatchObject({ _tag: "EtcdUnknown", code: Status.UNKNOWN })
    // a code with no case of its own keeps its number
    expect(map(Status.DATA_LOSS, "etcdserver: lost")).toMatchObject({ _tag: "EtcdUnknown", code: Status.DATA_LOSS })
  })

  it("every mapped error names the method that failed", () => {
    const answers: ReadonlyArray<readonly [number, string]> = [
      [Status.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"],
      [Status.OUT_OF_RANGE, "etcdserver: too large lease TTL"],
      [Status.INVALID_ARGUMENT, "etcdserver: key is not provided"],
      [Status.INVALID_ARGUMENT, "etcdserver: request is too large"],
      [Status.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"],
      [Status.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"],
      [Status.INVALID_ARGUMENT, "etcdserver: revision of auth store is old"],
      [Status.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"],
      [Status.RESOURCE_EXHAUSTED, "grpc: received message larger than max (5 vs. 4)"],
      [Status.FAILED_PRECONDITION, "etcdserver: lease already exists"],
      [Status.FAILED_PRECONDITION, "etcdserver: learner is not in sync with leader"],
      [Status.UNAUTHENTICATED, "etcdserver: authentication failed, invalid user ID or password"],
      [Status.UNAUTHENTICATED, "etcdserver: invalid auth token"]
    ]
    for (const [code, message] of answers) expect(map(code, message)).toMatchObject({ method: context.method })
  })

  it("a lease TTL too large is an invalid ttl option; UNAUTHENTICATED tells bad credentials from a bad token", () => {
    expect(map(Status.OUT_OF_RANGE, "etcdserver: too large lease TTL")).toMatchObject({
      _tag: "EtcdInvalidArgument",
      option: "ttl",
      reason: "too large lease TTL"
    })
    expect(map(Status.UNAUTHENTICATED, "etcdserver: authentication failed, invalid user ID or password"))
      .toMatchObject({ _tag: "EtcdAuthFailed", username: "bob" })
    expect(map(Status.UNAUTHENTICATED, "etcdserver: invalid auth token")._tag).toBe("InvalidAuthToken")
  })

  it("grpc-js's noise is dropped however it is spaced", () => {
    const reason = (details: string) => (map(Status.UNAVAILABLE, details) as EtcdError.EtcdUnavailable).reason
    expect(reason("No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1. Resolution note:"))
      .toBe("No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1")
    expect(reason("No connection established Last error: null")).toBe("No connection established")
    expect(reason("No connection established.Last error: null")).toBe("No connection established")
    expect(reason("\n  connection reset by peer \n")).toBe("connection reset by peer")
  })

  it("codes whose message is not one etcd sends under them are EtcdUnknown, not a guess", () => {
    expect(map(Status.OUT_OF_RANGE, "etcdserver: other")._tag).toBe("EtcdUnknown")
    expect(map(Status.RESOURCE_EXHAUSTED, "etcdserver: other")._tag).toBe("EtcdUnknown")
    expect(map(Status.NOT_FOUND, "etcdserver: other")._tag).toBe("EtcdUnknown")
  })
})

// ---------------------------------------------------------------------------
// The retry decision, seen from a client
// ---------------------------------------------------------------------------

interface Answer {
  readonly code: number
  readonly message: string
}

/** What each method answers next (then OK), and how many calls of it came. */
const plans = new Map<string, Array<Answer>>()
const calls = new Map<string, number>()
let server: http2.Http2Server
let endpoint = ""

beforeAll(async () => {
  server = http2.createServer()
  server.on("stream", (stream, headers) => {
    const path = String(headers[":path"])
    calls.set(path, (calls.get(path) ?? 0) + 1)
    stream.resume()
    const failure = plans.get(path)?.shift()
    if (failure !== undefined) {
      stream.respond({
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": String(failure.code),
        "grpc-message": encodeURIComponent(failure.message)
      }, { endStream: true })
      return
    }
    // an empty message is every response with its fields unset
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
    stream.end(frame(Buffer.alloc(0)))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const put = "/etcdserverpb.KV/Put"
const range = "/etcdserverpb.KV/Range"

/** Runs `effect` on a client of the fake server, with `answers` planned for `path`; returns its exit and the calls of `path`. */
const against = <A>(
  path: string,
  answers: ReadonlyArray<Answer>,
  effect: Effect.Effect<A, EtcdError.EtcdError, Etcd.Etcd>,
  retrySchedule: Schedule.Schedule<unknown, EtcdError.EtcdError> = Schedule.spaced("10 millis")
) =>
  Effect.gen(function*() {
    plans.set(path, [...answers])
    calls.set(path, 0)
    const result = yield* Effect.either(effect.pipe(
      Effect.provide(Etcd.layer({
        endpoints: [endpoint],
        requestTimeout: "5 seconds",
        retrySchedule
      }))
    ))
    return { result, calls: calls.get(path) }
  })

const unavailable = (message: string): Answer => ({ code: Status.UNAVAILABLE, message })

/**
 * etcd 3.4's own errors, each with the code its server sends it under (etcdserver/api/v3rpc/
 * rpctypes/error.go, copied here by hand so that the table in grpcError.ts is checked against
 * etcd's, not against itself).
 */
const etcdErrors: ReadonlyArray<readonly [code: number, text: string]> = [
  [Status.INVALID_ARGUMENT, "key is not provided"],
  [Status.INVALID_ARGUMENT, "key not found"],
  [Status.INVALID_ARGUMENT, "value is provided"],
  [Status.INVALID_ARGUMENT, "lease is provided"],
  [Status.INVALID_ARGUMENT, "too many operations in txn request"],
  [Status.INVALID_ARGUMENT, "duplicate key given in txn request"],
  [Status.OUT_OF_RANGE, "mvcc: required revision has been compacted"],
  [Status.OUT_OF_RANGE, "mvcc: required revision is a future revision"],
  [Status.RESOURCE_EXHAUSTED, "mvcc: database space exceeded"],
  [Status.NOT_FOUND, "requested lease not found"],
  [Status.FAILED_PRECONDITION, "lease already exists"],
  [Status.OUT_OF_RANGE, "too large lease TTL"],
  [Status.CANCELLED, "watch canceled"],
  [Status.FAILED_PRECONDITION, "member ID already exist"],
  [Status.FAILED_PRECONDITION, "Peer URLs already exists"],
  [Status.FAILED_PRECONDITION, "re-configuration failed due to not enough started members"],
  [Status.INVALID_ARGUMENT, "given member URLs are invalid"],
  [Status.NOT_FOUND, "member not found"],
  [Status.FAILED_PRECONDITION, "can only promote a learner member"],
  [Status.FAILED_PRECONDITION, "can only promote a learner member which is in sync with leader"],
  [Status.FAILED_PRECONDITION, "too many learner members in cluster"],
  [Status.INVALID_ARGUMENT, "request is too large"],
  [Status.RESOURCE_EXHAUSTED, "too many requests"],
  [Status.FAILED_PRECONDITION, "root user does not exist"],
  [Status.FAILED_PRECONDITION, "root user does not have root role"],
  [Status.FAILED_PRECONDITION, "user name already exists"],
  [Status.INVALID_ARGUMENT, "user name is empty"],
  [Status.FAILED_PRECONDITION, "user name not found"],
  [Status.FAILED_PRECONDITION, "role name already exists"],
  [Status.FAILED_PRECONDITION, "role name not found"],
  [Status.INVALID_ARGUMENT, "role name is empty"],
  [Status.INVALID_ARGUMENT, "authentication failed, invalid user ID or password"],
  [Status.PERMISSION_DENIED, "permission denied"],
  [Status.FAILED_PRECONDITION, "role is not granted to the user"],
  [Status.FAILED_PRECONDITION, "permission is not granted to the role"],
  [Status.FAILED_PRECONDITION, "authentication is not enabled"],
  [Status.UNAUTHENTICATED, "invalid auth token"],
  [Status.INVALID_ARGUMENT, "invalid auth management"],
  [Status.INVALID_ARGUMENT, "revision of auth store is old"],
  [Status.UNAVAILABLE, "no leader"],
  [Status.FAILED_PRECONDITION, "not leader"],
  [Status.UNAVAILABLE, "leader changed"],
  [Status.UNAVAILABLE, "not capable"],
  [Status.UNAVAILABLE, "server stopped"],
  [Status.UNAVAILABLE, "request timed out"],
  [Status.UNAVAILABLE, "request timed out, possibly due to previous leader failure"],
  [Status.UNAVAILABLE, "request timed out, possibly due to connection lost"],
  [Status.UNAVAILABLE, "request timed out, waiting for the applied index took too long"],
  [Status.UNAVAILABLE, "unhealthy cluster"],
  [Status.DATA_LOSS, "corrupt cluster"],
  [Status.UNAVAILABLE, "rpc not supported for learner"],
  [Status.FAILED_PRECONDITION, "bad leader transferee"]
]

/** An error's tag and own fields, but not its cause (the raw error, whose code differs by design). */
const fieldsOf = (error: EtcdError.EtcdError) =>
  Object.fromEntries(Object.entries({ ...error, _tag: error._tag }).filter(([key]) => key !== "cause"))

describe("etcd's errors through its gRPC proxy", () => {
  it("each of etcd's texts under UNKNOWN (as the proxy passes them on) is the error its own code gives", () => {
    expect(etcdErrors.length).toBe(52)
    for (const [code, text] of etcdErrors) {
      const direct = map(code, `etcdserver: ${text}`)
      const proxied = map(Status.UNKNOWN, `etcdserver: ${text}`)
      expect({ text, error: fieldsOf(proxied) }).toStrictEqual({ text, error: fieldsOf(direct) })
    }
  })

  it("a code other than UNKNOWN is kept: an etcd text under it does not change it", () => {
    // "etcdserver: requested lease not found" is NOT_FOUND when etcd sends it; under UNAVAILABLE
    // (or any code the server chose) the code is what the call failed with
    expect(map(Status.UNAVAILABLE, "etcdserver: requested lease not found")._tag).toBe("EtcdUnavailable")
    expect(map(Status.PERMISSION_DENIED, "etcdserver: mvcc: required revision has been compacted")._tag)
      .toBe("EtcdPermissionDenied")
  })

  it("a text etcd does not send, or one without etcd's prefix, stays UNKNOWN", () => {
    for (const [, text] of etcdErrors) {
      expect(map(Status.UNKNOWN, text)).toMatchObject({ _tag: "EtcdUnknown", code: Status.UNKNOWN })
      expect(map(Status.UNKNOWN, `etcdserver: ${text}!`)).toMatchObject({ _tag: "EtcdUnknown", code: Status.UNKNOWN })
    }
  })
})

describe("the retry decision", () => {
  it.live("a read is sent again after any transient failure", () =>
    Effect.gen(function*() {
      const { calls, result } = yield* against(range, [
        unavailable("etcdserver: request timed out"),
        unavailable("etcdserver: leader changed"),
        { code: Status.DEADLINE_EXCEEDED, message: "Deadline exceeded" }
      ], Kv.get("k"))
      expect(result).toMatchObject({ _tag: "Right", right: Option.none() })
      expect(calls).toBe(4)
    }))

  it.live("a read is not sent again after a failure of the request itself", () =>
    Effect.gen(function*() {
      const { calls, result } = yield* against(range, [
        { code: Status.OUT_OF_RANGE, message: "etcdserver: mvcc: required revision is a future revision" }
      ], Kv.get("k"))
      expect(result).toMatchObject({ _tag: "Left", left: { _tag: "FutureRevision" } })
      expect(calls).toBe(1)
    }))

  it.live("a write refused before it was proposed (no leader, unhealthy cluster) is sent again", () =>
    Effect.gen(function*() {
      const { calls, result } = yield* against(put, [
        unavailable("etcdserver: no leader"),
        unavailable("etcdserver: unhealthy cluster")
      ], Kv.put("k", "v"))
      expect(result._tag).toBe("Right")
      expect(calls).toBe(3)
    }))

  it.live("a write whose outcome is open fails at once with AmbiguousOutcome, naming what happened", () =>
    Effect.gen(function*() {
      for (
        const [answer, tag] of [
          [unavailable("etcdserver: request timed out"), "EtcdUnavailable"],
          [unavailable("etcdserver: leader changed"), "NoLeader"],
          [{ code: Status.DEADLINE_EXCEEDED, message: "Deadline exceeded" }, "EtcdTimeout"]
        ] as const
      ) {
        const { calls, result } = yield* against(put, [answer], Kv.put("k", "v"))
        expect(result).toMatchObject({ _tag: "Left", left: { _tag: "AmbiguousOutcome", cause: { _tag: tag } } })
        expect(calls).toBe(1)
      }
    }))

  it.live("a write's failure that is not transient stays as it is", () =>
    Effect.gen(function*() {
      const { calls, result } = yield* against(put, [
        { code: Status.INVALID_ARGUMENT, message: "etcdserver: request is too large" }
      ], Kv.put("k", "v"))
      expect(result).toMatchObject({ _tag: "Left", left: { _tag: "RequestTooLarge" } })
      expect(calls).toBe(1)
    }))

  it.live("a write is sent again for \"no leader\" or \"unhealthy cluster\" only as etcd's refusal before proposal", () =>
    Effect.gen(function*() {
      // the same texts under another code (here INVALID_ARGUMENT) are not that refusal:
      // the decision looks at the error's tag, not at its text alone
      for (const reason of ["no leader", "unhealthy cluster"]) {
        const { calls, result } = yield* against(put, [
          { code: Status.INVALID_ARGUMENT, message: `etcdserver: ${reason}` }
        ], Kv.put("k", "v"))
        expect(result).toMatchObject({ _tag: "Left", left: { _tag: "EtcdInvalidArgument", reason } })
        expect(calls).toBe(1)
      }
    }))

  it.live("a read's transient failure is returned as it is when the deadline cuts the pause before a retry", () =>
    Effect.gen(function*() {
      // the pause (a minute) outlasts the deadline (2 seconds) whatever the machine's load: the
      // pause is cut short at the deadline, which returns the last failure, not EtcdTimeout
      const { calls, result } = yield* against(
        range,
        Array.from({ length: 10 }, () => unavailable("etcdserver: request timed out")),
        Kv.get("k", { timeout: "2 seconds" }),
        Schedule.spaced("1 minute")
      )
      expect(result).toMatchObject({ _tag: "Left", left: { _tag: "EtcdUnavailable", reason: "request timed out" } })
      expect(calls).toBe(1)
      plans.set(range, [])
    }))

  it.live("a read's transient failures that outlast its retries are returned as they are, not as AmbiguousOutcome", () =>
    Effect.gen(function*() {
      const { calls, result } = yield* against(
        range,
        Array.from({ length: 10 }, () => unavailable("etcdserver: request timed out")),
        Kv.get("k", { timeout: "1 minute" }),
        Schedule.recurs(2)
      )
      expect(result).toMatchObject({ _tag: "Left", left: { _tag: "EtcdUnavailable", reason: "request timed out" } })
      expect(calls).toBe(3)
      plans.set(range, [])
    }))
})
