import { describe, expect, it } from "@effect/vitest"
import { status } from "@grpc/grpc-js"
import { Duration } from "effect"
import { EtcdError } from "effect-etcd"
import { fromGrpc } from "../src/internal/transport/grpcError.js"
import { Status } from "../src/internal/transport/grpcStatus.js"

// The transport maps every gRPC failure through this one function; these are the
// server's real status codes and messages (etcdserver/api/v3rpc/rpctypes).
const context = {
  method: "/etcdserverpb.KV/Range",
  endpoint: "http://127.0.0.1:1",
  endpoints: ["http://127.0.0.1:1"],
  timeout: Duration.seconds(1),
  revision: 5n,
  leaseId: 0x1234n,
  username: "alice"
}
const map = (code: number, details: string) => fromGrpc({ code, details }, context)

describe("EtcdError mapping", () => {
  it("numbers the status codes as gRPC does (the client's table, so that mapping loads no grpc-js)", () => {
    const grpcJs = Object.fromEntries(Object.entries(status).filter(([name]) => Number.isNaN(Number(name))))
    expect(Status).toEqual(grpcJs)
  })

  it("maps etcd's revision errors", () => {
    const compacted = map(status.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
    expect(compacted._tag).toBe("Compacted")
    expect(compacted).toMatchObject({ requestedRevision: 5n })
    expect(map(status.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")._tag).toBe(
      "FutureRevision"
    )
  })

  it("maps etcd's request errors", () => {
    expect(map(status.INVALID_ARGUMENT, "etcdserver: key is not provided")._tag).toBe("EmptyKey")
    expect(map(status.INVALID_ARGUMENT, "etcdserver: request is too large")._tag).toBe("RequestTooLarge")
    expect(map(status.RESOURCE_EXHAUSTED, "Attempted to send message with a size larger than 2097152")._tag).toBe(
      "RequestTooLarge"
    )
    expect(map(status.RESOURCE_EXHAUSTED, "grpc: received message larger than max (3 vs. 2)")._tag).toBe(
      "RequestTooLarge"
    )
    expect(map(status.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")._tag).toBe("TooManyOps")
    expect(map(status.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")._tag).toBe("DuplicateKey")
    expect(map(status.INVALID_ARGUMENT, "etcdserver: key not found")).toMatchObject({
      _tag: "InvalidArgument",
      reason: "key not found"
    })
    expect(map(status.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")._tag).toBe("NoSpace")
  })

  it("maps lease errors with the lease ID", () => {
    expect(map(status.NOT_FOUND, "etcdserver: requested lease not found")).toMatchObject({
      _tag: "LeaseNotFound",
      leaseId: 0x1234n
    })
    expect(map(status.FAILED_PRECONDITION, "etcdserver: lease already exists")._tag).toBe("LeaseExists")
  })

  it("maps the errors of member, user and role administration", () => {
    expect(map(status.NOT_FOUND, "etcdserver: member not found")).toMatchObject({
      _tag: "NotFound",
      reason: "member not found"
    })
    for (const reason of ["user name not found", "role name not found", "role is not granted to the user"]) {
      expect(map(status.FAILED_PRECONDITION, `etcdserver: ${reason}`)).toMatchObject({ _tag: "NotFound", reason })
    }
    for (const reason of ["user name already exists", "role name already exists", "member ID already exist"]) {
      expect(map(status.FAILED_PRECONDITION, `etcdserver: ${reason}`)).toMatchObject({ _tag: "AlreadyExists", reason })
    }
    expect(
      map(status.FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader")
        ._tag
    ).toBe("LearnerNotReady")
    expect(map(status.FAILED_PRECONDITION, "etcdserver: authentication is not enabled")).toMatchObject({
      _tag: "PreconditionFailed",
      reason: "authentication is not enabled"
    })
    expect(map(status.FAILED_PRECONDITION, "etcdserver: not leader")._tag).toBe("NoLeader")
  })

  it("maps auth errors without leaking secrets", () => {
    const failed = map(status.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password")
    expect(failed).toMatchObject({ _tag: "AuthFailed", username: "alice" })
    expect(failed.message).toContain("alice")
    expect(map(status.PERMISSION_DENIED, "etcdserver: permission denied")._tag).toBe("PermissionDenied")
    expect(map(status.UNAUTHENTICATED, "etcdserver: invalid auth token")._tag).toBe("InvalidAuthToken")
    // a token older than the last auth change: refreshed and sent again, like an expired one
    expect(map(status.INVALID_ARGUMENT, "etcdserver: revision of auth store is old")._tag).toBe("InvalidAuthToken")
  })

  it("tells a cluster without leader from an unreachable member", () => {
    expect(map(status.UNAVAILABLE, "etcdserver: no leader")).toMatchObject({ _tag: "NoLeader", reason: "no leader" })
    expect(map(status.UNAVAILABLE, "etcdserver: leader changed")._tag).toBe("NoLeader")
    // what a member says of itself is not a missing leader
    expect(map(status.UNAVAILABLE, "etcdserver: request timed out")).toMatchObject({
      _tag: "Unavailable",
      reason: "request timed out"
    })
    expect(map(status.UNAVAILABLE, "etcdserver: server stopped")).toMatchObject({
      _tag: "Unavailable",
      reason: "server stopped"
    })
    const down = map(status.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1")
    expect(down).toMatchObject({ _tag: "Unavailable", endpoints: ["http://127.0.0.1:1"] })
    expect(map(status.UNAVAILABLE, "unable to verify the first certificate")._tag).toBe("TlsError")
    expect(map(status.DEADLINE_EXCEEDED, "Deadline exceeded")._tag).toBe("Timeout")
    // etcd 3.4 when the deadline the call carried passed on the server
    expect(map(status.UNKNOWN, "context deadline exceeded")._tag).toBe("Timeout")
    expect(map(status.UNKNOWN, "something else")._tag).toBe("Unknown")
  })

  it("knows etcd's errors by their text whatever the code, as etcd's gRPC proxy passes them on (UNKNOWN)", () => {
    expect(map(status.UNKNOWN, "etcdserver: leader changed")).toMatchObject({
      _tag: "NoLeader",
      reason: "leader changed"
    })
    expect(map(status.UNKNOWN, "etcdserver: no leader")).toMatchObject({ _tag: "NoLeader", reason: "no leader" })
    expect(map(status.UNKNOWN, "etcdserver: request timed out, possibly due to previous leader failure")).toMatchObject(
      {
        _tag: "Unavailable",
        reason: "request timed out, possibly due to previous leader failure"
      }
    )
    expect(map(status.UNKNOWN, "etcdserver: request timed out")._tag).toBe("Unavailable")
    expect(map(status.UNKNOWN, "etcdserver: mvcc: required revision has been compacted")._tag).toBe("Compacted")
    expect(map(status.UNKNOWN, "etcdserver: key is not provided")._tag).toBe("EmptyKey")
    expect(map(status.UNKNOWN, "etcdserver: requested lease not found")._tag).toBe("LeaseNotFound")
    expect(map(status.UNKNOWN, "etcdserver: key not found")).toMatchObject({
      _tag: "InvalidArgument",
      reason: "key not found"
    })
    expect(map(status.UNKNOWN, "etcdserver: not leader")._tag).toBe("NoLeader")
    // a text etcd does not have stays what it was
    expect(map(status.UNKNOWN, "etcdserver: something new")._tag).toBe("Unknown")
  })

  it("an answer over the client's receive limit is ResponseTooLarge with the limit; the server's limit is the request's", () => {
    const tooLarge = map(status.RESOURCE_EXHAUSTED, "Received message larger than max (73400320 vs 67108864)")
    expect(tooLarge).toMatchObject({ _tag: "ResponseTooLarge", size: 73400320, limit: 67108864 })
    expect(tooLarge.message).toContain("67108864")
    expect(map(status.RESOURCE_EXHAUSTED, "grpc: received message larger than max (3 vs. 2)")._tag).toBe(
      "RequestTooLarge"
    )
  })

  it("a call that broke without a status is Unavailable whatever code grpc-js's table gives it", () => {
    for (const code of [status.INTERNAL, status.CANCELLED, status.RESOURCE_EXHAUSTED]) {
      expect(fromGrpc({ code, details: "the server reset the stream", rstCode: 2 }, context)._tag).toBe("Unavailable")
    }
    // with a status from the server, the code is the server's
    expect(map(status.INTERNAL, "oops")._tag).toBe("Unknown")
  })

  it("an ambiguous write names its method once, after what happened", () => {
    const timeout = map(status.DEADLINE_EXCEEDED, "Deadline exceeded")
    const ambiguous = new EtcdError.AmbiguousOutcome({ method: context.method, cause: timeout as EtcdError.Timeout })
    expect(ambiguous.message.startsWith("the write may or may not have been applied: ")).toBe(true)
    expect(ambiguous.message.split(context.method).length - 1).toBe(1)
    expect(ambiguous.isRetryable).toBe(false)
  })

  it("keeps code, message and cause of anything else", () => {
    const raw = { code: status.DATA_LOSS, details: "etcdserver: corrupt cluster" }
    const unknown = fromGrpc(raw, context)
    expect(unknown).toMatchObject({ _tag: "Unknown", code: status.DATA_LOSS, details: "etcdserver: corrupt cluster" })
    expect(unknown._tag === "Unknown" && unknown.cause).toBe(raw)
    expect(EtcdError.isEtcdError(unknown)).toBe(true)
    expect(EtcdError.isEtcdError(new Error("x"))).toBe(false)
  })
})
