/**
 * Maps gRPC status errors (codes and etcd's messages) to effect-etcd's tagged errors.
 * This is the only place that looks at a raw gRPC error.
 */
import type * as Duration from "effect/Duration"
import * as EtcdError from "../EtcdError.js"
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
}

const etcdPrefix = "etcdserver: "

const tlsPattern = /ssl|tls|certificate|handshake|self[- ]signed|unable to verify|CERT_|wrong version number/i

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
  const code = typeof grpcError.code === "number" ? grpcError.code : Status.UNKNOWN
  const details = tidy(grpcError.details ?? grpcError.message ?? String(error))
  const reason = reasonOf(details)
  const method = context.method
  switch (code) {
    case Status.OUT_OF_RANGE: {
      if (reason.includes("compacted")) {
        return new EtcdError.Compacted({ method, compactRevision: 0n, requestedRevision: context.revision })
      }
      if (reason.includes("future revision")) {
        return new EtcdError.FutureRevision({ method, requestedRevision: context.revision })
      }
      if (reason.includes("too large lease TTL")) {
        return new EtcdError.InvalidArgument({ method, reason, option: "ttl" })
      }
      break
    }
    case Status.INVALID_ARGUMENT: {
      if (reason.includes("key is not provided")) return new EtcdError.EmptyKey({ method })
      if (reason.includes("request is too large")) return new EtcdError.RequestTooLarge({ method })
      if (reason.includes("too many operations")) return new EtcdError.TooManyOps({ method })
      if (reason.includes("duplicate key")) return new EtcdError.DuplicateKey({ method })
      if (reason.includes("authentication failed")) {
        return new EtcdError.AuthFailed({ method, username: context.username })
      }
      // the token predates a change of users or roles: etcd refused the request before
      // running it, and a fresh token lets it through (clientv3 refreshes here too)
      if (reason.includes("revision of auth store is old")) return new EtcdError.InvalidAuthToken({ method })
      return new EtcdError.InvalidArgument({ method, reason })
    }
    case Status.RESOURCE_EXHAUSTED: {
      if (reason.includes("database space exceeded")) return new EtcdError.NoSpace({ method })
      // the server's gRPC limit ("received message larger than max") or the client's own
      // ("Attempted to send message with a size larger than ...")
      if (/larger than/i.test(reason)) {
        return new EtcdError.RequestTooLarge({ method })
      }
      break
    }
    case Status.NOT_FOUND: {
      if (reason.includes("lease not found")) return new EtcdError.LeaseNotFound({ method, leaseId: context.leaseId })
      if (reason.includes("member not found")) return new EtcdError.NotFound({ method, reason })
      break
    }
    case Status.FAILED_PRECONDITION: {
      if (reason.includes("lease already exists")) {
        return new EtcdError.LeaseExists({ method, leaseId: context.leaseId })
      }
      if (reason.includes("not leader")) return new EtcdError.NoLeader({ method, reason })
      if (/not found|not granted/.test(reason)) return new EtcdError.NotFound({ method, reason })
      if (/already exists?$/.test(reason)) return new EtcdError.AlreadyExists({ method, reason })
      if (reason.includes("in sync with leader")) return new EtcdError.LearnerNotReady({ method })
      return new EtcdError.PreconditionFailed({ method, reason })
    }
    case Status.PERMISSION_DENIED:
      return new EtcdError.PermissionDenied({ method })
    case Status.UNAUTHENTICATED: {
      if (reason.includes("authentication failed")) {
        return new EtcdError.AuthFailed({ method, username: context.username })
      }
      return new EtcdError.InvalidAuthToken({ method })
    }
    case Status.DEADLINE_EXCEEDED:
      return new EtcdError.Timeout({ method, timeout: context.timeout, endpoint: context.endpoint })
    case Status.UNKNOWN: {
      // etcd 3.4's gRPC server answers a call whose deadline (the `grpc-timeout` it was
      // sent) passed while it ran with UNKNOWN "context deadline exceeded"
      if (details.includes("context deadline exceeded")) {
        return new EtcdError.Timeout({ method, timeout: context.timeout, endpoint: context.endpoint })
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
        // "too many requests") leaves the outcome of a write open: Unavailable
        return new EtcdError.Unavailable({ method, endpoints: [context.endpoint], reason })
      }
      if (tlsPattern.test(details)) {
        return new EtcdError.TlsError({ method, endpoints: [context.endpoint], reason: details, cause: error })
      }
      return new EtcdError.Unavailable({ method, endpoints: [context.endpoint], reason: details, cause: error })
    }
    case Status.CANCELLED: {
      return new EtcdError.Unavailable({ method, endpoints: [context.endpoint], reason: details, cause: error })
    }
  }
  return new EtcdError.Unknown({ method, code, details, cause: error })
}

/** Whether the failure proves the request never reached a server (safe to retry even a write). */
export const neverSent = (error: EtcdError.EtcdError): boolean =>
  error._tag === "Unavailable" && /No connection established|ECONNREFUSED|connect ECONN|Name resolution/i.test(
    error.reason
  )
