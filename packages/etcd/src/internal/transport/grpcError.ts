/**
 * Maps gRPC status errors (codes and etcd's messages) to effect-etcd's tagged errors.
 * This is the only place that looks at a raw gRPC error.
 */
import type * as Duration from "effect/Duration"
import * as EtcdError from "../../EtcdError.js"
import { Status } from "./grpcStatus.js"

/** What the transport knows about the call that failed. */
export interface CallContext {
  readonly method: string
  readonly endpoint: string
  readonly endpoints: ReadonlyArray<string>
  readonly timeout: Duration.Duration
  readonly revision?: bigint | undefined
  readonly leaseId?: bigint | undefined
  readonly username?: string | undefined
}

interface GrpcLikeError {
  readonly code?: number
  readonly details?: string
  readonly message?: string
  /** Set by `http2Duplex` on a call that ended without a status (a reset stream, a dropped connection). */
  readonly rstCode?: number
  /** Set by `http2Duplex` on a call the server provably never processed. */
  readonly unprocessed?: boolean
}

/**
 * etcd's errors by their text, with the code etcd gives them (`rpctypes/error.go`).
 * etcd's gRPC proxy passes them on as UNKNOWN: read by the text, they are what etcd meant
 * (a "leader changed" behind the proxy leaves a write's outcome open, as it does direct).
 */
const etcdCodes: ReadonlyMap<string, number> = new Map([
  ["key is not provided", Status.INVALID_ARGUMENT],
  ["key not found", Status.INVALID_ARGUMENT],
  ["value is provided", Status.INVALID_ARGUMENT],
  ["lease is provided", Status.INVALID_ARGUMENT],
  ["too many operations in txn request", Status.INVALID_ARGUMENT],
  ["duplicate key given in txn request", Status.INVALID_ARGUMENT],
  ["request is too large", Status.INVALID_ARGUMENT],
  ["authentication failed, invalid user ID or password", Status.INVALID_ARGUMENT],
  ["revision of auth store is old", Status.INVALID_ARGUMENT],
  ["user name is empty", Status.INVALID_ARGUMENT],
  ["role name is empty", Status.INVALID_ARGUMENT],
  ["given member URLs are invalid", Status.INVALID_ARGUMENT],
  ["invalid auth management", Status.INVALID_ARGUMENT],
  ["mvcc: required revision has been compacted", Status.OUT_OF_RANGE],
  ["mvcc: required revision is a future revision", Status.OUT_OF_RANGE],
  ["too large lease TTL", Status.OUT_OF_RANGE],
  ["mvcc: database space exceeded", Status.RESOURCE_EXHAUSTED],
  ["too many requests", Status.RESOURCE_EXHAUSTED],
  ["requested lease not found", Status.NOT_FOUND],
  ["member not found", Status.NOT_FOUND],
  ["lease already exists", Status.FAILED_PRECONDITION],
  ["not leader", Status.FAILED_PRECONDITION],
  ["member ID already exist", Status.FAILED_PRECONDITION],
  ["Peer URLs already exists", Status.FAILED_PRECONDITION],
  ["re-configuration failed due to not enough started members", Status.FAILED_PRECONDITION],
  ["can only promote a learner member", Status.FAILED_PRECONDITION],
  ["can only promote a learner member which is in sync with leader", Status.FAILED_PRECONDITION],
  ["too many learner members in cluster", Status.FAILED_PRECONDITION],
  ["root user does not exist", Status.FAILED_PRECONDITION],
  ["root user does not have root role", Status.FAILED_PRECONDITION],
  ["user name already exists", Status.FAILED_PRECONDITION],
  ["user name not found", Status.FAILED_PRECONDITION],
  ["role name already exists", Status.FAILED_PRECONDITION],
  ["role name not found", Status.FAILED_PRECONDITION],
  ["role is not granted to the user", Status.FAILED_PRECONDITION],
  ["permission is not granted to the role", Status.FAILED_PRECONDITION],
  ["authentication is not enabled", Status.FAILED_PRECONDITION],
  ["bad leader transferee", Status.FAILED_PRECONDITION],
  ["permission denied", Status.PERMISSION_DENIED],
  ["invalid auth token", Status.UNAUTHENTICATED],
  ["no leader", Status.UNAVAILABLE],
  ["leader changed", Status.UNAVAILABLE],
  ["not capable", Status.UNAVAILABLE],
  ["server stopped", Status.UNAVAILABLE],
  ["request timed out", Status.UNAVAILABLE],
  ["request timed out, possibly due to previous leader failure", Status.UNAVAILABLE],
  ["request timed out, possibly due to connection lost", Status.UNAVAILABLE],
  ["request timed out, waiting for the applied index took too long", Status.UNAVAILABLE],
  ["unhealthy cluster", Status.UNAVAILABLE],
  ["rpc not supported for learner", Status.UNAVAILABLE],
  ["watch canceled", Status.CANCELLED],
  ["corrupt cluster", Status.DATA_LOSS]
])

/**
 * grpc-js's text for an answer over the client's receive limit (also `http2Duplex`'s), in its
 * details or after the code in its message.
 */
const receiveLimitPattern = /Received message larger than max \((\d+) vs\.? (\d+)\)/

const etcdPrefix = "etcdserver: "

// (node's self-signed texts all say "certificate")
const tlsPattern = /ssl|tls|certificate|handshake|unable to verify|CERT_|wrong version number/i

/** The server's own text, without the `etcdserver: ` prefix. */
const reasonOf = (details: string): string =>
  details.startsWith(etcdPrefix) ? details.slice(etcdPrefix.length) : details

/**
 * grpc-js's connection text without its noise: `No connection established. Last error: Error:
 * connect ECONNREFUSED 127.0.0.1:1. Resolution note: ` (an empty note) becomes
 * `No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1`. (A retry soon after has
 * `Last error: null`: grpc-js has kept the address's state, not its error.)
 */
const tidy = (details: string): string =>
  details.replace(/[.\s]*Resolution note:\s*$/, "").replace(/Last error: Error: /g, "Last error: ")
    .replace(/\.?\s*Last error: null\b/, "").trim()

/** Turns any error from a gRPC call into the matching tagged error. */
export const fromGrpc = (error: unknown, context: CallContext): EtcdError.EtcdError => {
  const grpcError = (typeof error === "object" && error !== null ? error : {}) as GrpcLikeError
  const details = tidy(grpcError.details ?? grpcError.message ?? String(error))
  const reason = reasonOf(details)
  const given = typeof grpcError.code === "number" ? grpcError.code : Status.UNKNOWN
  // etcd's own errors are known by their text whatever the code they come with (UNKNOWN
  // through etcd's gRPC proxy)
  const code = given === Status.UNKNOWN && details.startsWith(etcdPrefix) ? etcdCodes.get(reason) ?? given : given
  const method = context.method
  if (typeof grpcError.rstCode === "number") {
    // the call broke without a status (a reset stream, a dropped connection): whatever code
    // grpc-js's table gives it, the member may be going away, a read may go to another and
    // a write's outcome is open
    return new EtcdError.EtcdUnavailable({ method, endpoints: [context.endpoint], reason: details, cause: error })
  }
  switch (code) {
    case Status.OUT_OF_RANGE: {
      if (reason.includes("compacted")) {
        return new EtcdError.Compacted({ method, compactRevision: 0n, requestedRevision: context.revision })
      }
      if (reason.includes("future revision")) {
        return new EtcdError.FutureRevision({ method, requestedRevision: context.revision })
      }
      if (reason.includes("too large lease TTL")) {
        return new EtcdError.EtcdInvalidArgument({ method, reason, option: "ttl" })
      }
      break
    }
    case Status.INVALID_ARGUMENT: {
      if (reason.includes("key is not provided")) return new EtcdError.EmptyKey({ method })
      if (reason.includes("request is too large")) return new EtcdError.RequestTooLarge({ method })
      if (reason.includes("too many operations")) return new EtcdError.TooManyOps({ method })
      if (reason.includes("duplicate key")) return new EtcdError.DuplicateKey({ method })
      if (reason.includes("authentication failed")) {
        return new EtcdError.EtcdAuthFailed({ method, username: context.username })
      }
      // the token predates a change of users or roles: etcd refused the request before
      // running it, and a fresh token lets it through (clientv3 refreshes here too)
      if (reason.includes("revision of auth store is old")) return new EtcdError.InvalidAuthToken({ method })
      return new EtcdError.EtcdInvalidArgument({ method, reason })
    }
    case Status.RESOURCE_EXHAUSTED: {
      if (reason.includes("database space exceeded")) return new EtcdError.NoSpace({ method })
      // the client's receive limit (grpc-js's words, which http2Duplex uses too)
      const overLimit = receiveLimitPattern.exec(details)
      if (overLimit !== null) {
        return new EtcdError.ResponseTooLarge({ method, size: Number(overLimit[1]), limit: Number(overLimit[2]) })
      }
      // the server's gRPC limit ("grpc: received message larger than max") or the client's
      // send limit ("Attempted to send message with a size larger than ...")
      if (/larger than/i.test(reason)) {
        return new EtcdError.RequestTooLarge({ method })
      }
      break
    }
    case Status.NOT_FOUND: {
      if (reason.includes("lease not found")) return new EtcdError.LeaseNotFound({ method, leaseId: context.leaseId })
      if (reason.includes("member not found")) return new EtcdError.EtcdNotFound({ method, reason })
      break
    }
    case Status.FAILED_PRECONDITION: {
      if (reason.includes("lease already exists")) {
        return new EtcdError.LeaseExists({ method, leaseId: context.leaseId })
      }
      if (reason.includes("not leader")) return new EtcdError.NoLeader({ method, reason })
      if (/not found|not granted/.test(reason)) return new EtcdError.EtcdNotFound({ method, reason })
      if (reason.includes("already exist")) return new EtcdError.EtcdAlreadyExists({ method, reason })
      if (reason.includes("in sync with leader")) return new EtcdError.LearnerNotReady({ method })
      return new EtcdError.EtcdPreconditionFailed({ method, reason })
    }
    case Status.PERMISSION_DENIED:
      return new EtcdError.EtcdPermissionDenied({ method })
    case Status.UNAUTHENTICATED: {
      if (reason.includes("authentication failed")) {
        return new EtcdError.EtcdAuthFailed({ method, username: context.username })
      }
      return new EtcdError.InvalidAuthToken({ method })
    }
    case Status.DEADLINE_EXCEEDED:
      return new EtcdError.EtcdTimeout({ method, timeout: context.timeout, endpoint: context.endpoint })
    case Status.UNKNOWN: {
      // etcd 3.4's gRPC server answers a call whose deadline (the `grpc-timeout` it was
      // sent) passed while it ran with UNKNOWN "context deadline exceeded"
      if (details.includes("context deadline exceeded")) {
        return new EtcdError.EtcdTimeout({ method, timeout: context.timeout, endpoint: context.endpoint })
      }
      break
    }
    case Status.UNAVAILABLE: {
      if (details.startsWith(etcdPrefix)) {
        // the member answered: the cluster has no leader, or the member cannot reach it
        if (/no leader|leader changed|not leader|not capable/.test(reason)) {
          return new EtcdError.NoLeader({ method, reason })
        }
        // anything else the member says of itself ("request timed out", "server stopped",
        // "too many requests") leaves the outcome of a write open: EtcdUnavailable
        return new EtcdError.EtcdUnavailable({ method, endpoints: [context.endpoint], reason })
      }
      if (tlsPattern.test(details)) {
        return new EtcdError.EtcdTlsError({ method, endpoints: [context.endpoint], reason: details, cause: error })
      }
      return new EtcdError.EtcdUnavailable({ method, endpoints: [context.endpoint], reason: details, cause: error })
    }
    case Status.CANCELLED: {
      return new EtcdError.EtcdUnavailable({ method, endpoints: [context.endpoint], reason: details, cause: error })
    }
  }
  return new EtcdError.EtcdUnknown({ method, code, details, cause: error })
}

/**
 * Whether the failure proves the server never processed the request (safe to send again,
 * even a write): no connection could be made, or the server refused the call's stream
 * (REFUSED_STREAM), or took no stream past the call's in its GOAWAY, or its side of the
 * connection closed before the request had left this process (`http2Duplex` says so as
 * `unprocessed`).
 */
export const neverSent = (error: EtcdError.EtcdError): boolean =>
  error._tag === "EtcdUnavailable" &&
  (unprocessed(error.cause) || /No connection established|ECONNREFUSED|connect ECONN|Name resolution/i.test(
    error.reason
  ))

const unprocessed = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && (cause as GrpcLikeError).unprocessed === true
