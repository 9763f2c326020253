/**
 * The tagged errors every effect-etcd call can fail with.
 *
 * Each failure the server or the connection can produce has its own class, so
 * `Effect.catchTag("Compacted", ...)` is the natural way to handle one case. The
 * transport maps gRPC status codes and etcd's messages to these classes once;
 * nothing above it ever sees a raw gRPC error.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-etcd/EtcdError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Whether an unknown value is one of effect-etcd's errors.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isEtcdError = (u: unknown): u is EtcdError => Predicate.hasProperty(u, TypeId)

/**
 * The RPC an error came from, for example `etcdserverpb.KV/Range`, when known.
 *
 * @since 0.1.0
 * @category models
 */
export interface RpcContext {
  readonly method?: string | undefined
}

const describe = (text: string, context: RpcContext): string =>
  context.method === undefined ? text : `${text} (${context.method})`

// ---------------------------------------------------------------------------
// Revisions
// ---------------------------------------------------------------------------

/**
 * The revision asked for has been compacted away; `compactRevision` is the oldest
 * revision still available (0 when the server did not say).
 *
 * @since 0.1.0
 * @category errors
 */
export class Compacted extends Data.TaggedError("Compacted")<
  RpcContext & {
    readonly compactRevision: bigint
    readonly requestedRevision?: bigint | undefined
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(
      `revision ${
        this.requestedRevision ?? "(unknown)"
      } has been compacted; oldest available is ${this.compactRevision}`,
      this
    )
  }
}

/**
 * The revision asked for is newer than the store's current revision.
 *
 * @since 0.1.0
 * @category errors
 */
export class FutureRevision extends Data.TaggedError("FutureRevision")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("the requested revision is a future revision", this)
  }
}

// ---------------------------------------------------------------------------
// Bad requests
// ---------------------------------------------------------------------------

/**
 * A key was empty. etcd has no empty key; use `KeyRange.all` to address every key.
 *
 * @since 0.1.0
 * @category errors
 */
export class EmptyKey extends Data.TaggedError("EmptyKey")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("a key must not be empty", this)
  }
}

/**
 * The request is larger than the server accepts (`--max-request-bytes`, 1.5 MiB by default).
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTooLarge extends Data.TaggedError("RequestTooLarge")<
  RpcContext & {
    readonly size?: number | undefined
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const size = this.size === undefined ? "" : ` (${this.size} bytes)`
    return describe(`the request is larger than the server accepts${size}`, this)
  }
}

/**
 * A transaction has more operations than the server accepts (`--max-txn-ops`, 128 by default).
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyOps extends Data.TaggedError("TooManyOps")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("the transaction has more operations than the server allows", this)
  }
}

/**
 * A transaction writes the same key twice in one branch.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateKey extends Data.TaggedError("DuplicateKey")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("the transaction writes the same key more than once", this)
  }
}

/**
 * Any other request the server rejected as malformed (for example `ignoreValue` with a
 * value, or a key that must exist for `ignoreValue`/`ignoreLease` but does not).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Data.TaggedError("InvalidArgument")<
  RpcContext & {
    readonly reason: string
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(`invalid argument: ${this.reason}`, this)
  }
}

/**
 * The cluster's storage quota is exhausted; writes fail until space is freed
 * (compaction + defragmentation) and the NOSPACE alarm is disarmed.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoSpace extends Data.TaggedError("NoSpace")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("the database space is exceeded", this)
  }
}

// ---------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------

/**
 * The lease does not exist: never granted, revoked, or already expired.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseNotFound extends Data.TaggedError("LeaseNotFound")<
  RpcContext & {
    readonly leaseId?: bigint | undefined
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const id = this.leaseId === undefined ? "" : ` ${this.leaseId.toString(16)}`
    return describe(`lease${id} not found (expired, revoked or never granted)`, this)
  }
}

/**
 * A lease with the requested ID already exists.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseExists extends Data.TaggedError("LeaseExists")<
  RpcContext & {
    readonly leaseId?: bigint | undefined
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const id = this.leaseId === undefined ? "" : ` ${this.leaseId.toString(16)}`
    return describe(`lease${id} already exists`, this)
  }
}

/**
 * A held lease is gone: the server said it expired (or was revoked), or no keepalive was
 * acknowledged before its TTL ran out. Whoever relied on it (a lock, a leadership) must
 * assume someone else may now hold what it guarded.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{
  readonly leaseId: bigint
  readonly reason: "expired" | "keepalive-timeout" | "revoked"
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const why = this.reason === "expired"
      ? "the server reports it expired"
      : this.reason === "revoked"
      ? "it was revoked"
      : "no keepalive was acknowledged within its TTL"
    return `lease ${this.leaseId.toString(16)} lost: ${why}`
  }
}

// ---------------------------------------------------------------------------
// Availability
// ---------------------------------------------------------------------------

/**
 * The member answered but the cluster has no leader (or just changed leader), so the
 * request could not be served. Reads are retried; writes are not.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoLeader extends Data.TaggedError("NoLeader")<
  RpcContext & {
    readonly reason: string
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this.reason, this)
  }
}

/**
 * The call did not complete within its deadline. For a write this means the outcome
 * is unknown: it may or may not have been applied.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Data.TaggedError("Timeout")<
  RpcContext & {
    readonly timeout: Duration.Duration
    readonly endpoint?: string | undefined
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    const at = this.endpoint === undefined ? "" : ` at ${this.endpoint}`
    return describe(`no answer within ${Duration.format(this.timeout)}${at}`, this)
  }
}

/**
 * No member could be reached (connection refused, reset or closed). `endpoints`
 * names the members that were tried.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unavailable extends Data.TaggedError("Unavailable")<
  RpcContext & {
    readonly endpoints: ReadonlyArray<string>
    readonly reason: string
    readonly cause?: unknown
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(`etcd unavailable at ${this.endpoints.join(", ")}: ${this.reason}`, this)
  }
}

/**
 * Why one endpoint could not be used when a client was built.
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointFailure {
  /** The endpoint as given, for example `http://10.0.0.1:2379` or `localhost`. */
  readonly endpoint: string
  /** The `host:port` that was dialled: etcd's port 2379 when the endpoint names none. */
  readonly address: string
  /** What the attempt failed with; an `Unavailable` keeps gRPC's own error as its `cause`. */
  readonly error: EtcdError
}

/** `connection refused by 127.0.0.1:2379`, `no answer within 5s`, ...: one failure in a few words. */
const failureReason = (failure: EndpointFailure): string => {
  const error = failure.error
  if (error._tag === "Timeout") return `no answer from ${failure.address} within ${Duration.format(error.timeout)}`
  if (error._tag !== "Unavailable") return error.message
  // the address the socket really tried (a host name resolved), as Node's net error names it
  const dialled = /\bconnect E[A-Z]+ (\S+?)\.?(?:\s|$)/.exec(error.reason)?.[1] ?? failure.address
  if (/ECONNREFUSED/.test(error.reason)) return `connection refused by ${dialled}`
  if (/ECONNRESET/.test(error.reason)) return `connection reset by ${dialled}`
  if (/EHOSTUNREACH|ENETUNREACH/.test(error.reason)) return `${dialled} is unreachable`
  if (/ENOTFOUND|EAI_AGAIN|Name resolution|getaddrinfo/i.test(error.reason)) {
    return `cannot resolve the host of ${failure.address}`
  }
  if (/No connection established/.test(error.reason)) return `no connection to ${dialled}`
  return `${error.reason} (${failure.address})`
}

/** An endpoint as given, and the port it was taken to mean when it names none. */
const endpointName = (failure: EndpointFailure): string =>
  /:\d+\/?$/.test(failure.endpoint)
    ? failure.endpoint
    : `${failure.endpoint} (no port given, so etcd's default ${
      failure.address.slice(failure.address.lastIndexOf(":") + 1)
    })`

/**
 * Building a client found no member answering within the connect timeout. `failures`
 * says, for each endpoint, why: its connection was refused, it gave no answer in time, ...
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionFailed extends Data.TaggedError("ConnectionFailed")<{
  readonly endpoints: ReadonlyArray<string>
  readonly timeout: Duration.Duration
  /** One per endpoint tried, in the order given. */
  readonly failures: ReadonlyArray<EndpointFailure>
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    if (this.failures.length === 0) {
      return `could not connect to etcd at ${this.endpoints.join(", ")} within ${Duration.format(this.timeout)}`
    }
    if (this.failures.length === 1) {
      const failure = this.failures[0]
      return `could not connect to etcd at ${endpointName(failure)}: ${failureReason(failure)}`
    }
    return `could not connect to etcd at any of ${this.failures.length} endpoints: ${
      this.failures.map((failure) => `${endpointName(failure)}: ${failureReason(failure)}`).join("; ")
    }`
  }
}

/**
 * A write whose outcome is unknown: the request may have reached the server before the
 * connection broke or its deadline passed. It is never retried automatically; read
 * back (or compare in a txn) before writing again.
 *
 * @since 0.1.0
 * @category errors
 */
export class AmbiguousOutcome extends Data.TaggedError("AmbiguousOutcome")<
  RpcContext & {
    readonly cause: Timeout | Unavailable | NoLeader
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    // the cause names the method already
    return `the write may or may not have been applied: ${this.cause.message}`
  }
}

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

/**
 * Wrong user name or password. The password never appears in this error.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthFailed extends Data.TaggedError("AuthFailed")<
  RpcContext & {
    readonly username?: string | undefined
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const user = this.username === undefined ? "" : ` for user ${JSON.stringify(this.username)}`
    return describe(`authentication failed${user}: invalid user name or password`, this)
  }
}

/**
 * The authenticated user lacks the permission the call needs.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionDenied extends Data.TaggedError("PermissionDenied")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("permission denied", this)
  }
}

/**
 * The auth token was rejected (expired or invalid). The client re-authenticates and
 * retries by itself when it has credentials; this reaches the caller only otherwise.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidAuthToken extends Data.TaggedError("InvalidAuthToken")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("the auth token is invalid or expired", this)
  }
}

/**
 * A TLS handshake failed (unknown CA, wrong server name, missing client certificate).
 *
 * @since 0.1.0
 * @category errors
 */
export class TlsError extends Data.TaggedError("TlsError")<
  RpcContext & {
    readonly endpoints: ReadonlyArray<string>
    readonly reason: string
    readonly cause?: unknown
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(`TLS failure with ${this.endpoints.join(", ")}: ${this.reason}`, this)
  }
}

// ---------------------------------------------------------------------------
// Administration (members, users, roles)
// ---------------------------------------------------------------------------

/**
 * What an administrative call names does not exist: a member, a user, a role, a role
 * granted to a user or a permission granted to a role. `reason` is the server's text.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Data.TaggedError("NotFound")<
  RpcContext & {
    readonly reason: string
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this.reason, this)
  }
}

/**
 * What an administrative call would create exists already: a user, a role, a member ID
 * or a member's peer URLs. `reason` is the server's text.
 *
 * @since 0.1.0
 * @category errors
 */
export class AlreadyExists extends Data.TaggedError("AlreadyExists")<
  RpcContext & {
    readonly reason: string
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this.reason, this)
  }
}

/**
 * A learner cannot be promoted yet: it has not caught up with the leader. Retry later.
 *
 * @since 0.1.0
 * @category errors
 */
export class LearnerNotReady extends Data.TaggedError("LearnerNotReady")<RpcContext> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe("the learner is not in sync with the leader yet", this)
  }
}

/**
 * The cluster refused an administrative call in its present state: auth is not enabled,
 * there is no root user, the member to promote is no learner, too many learners, not
 * enough members started for a reconfiguration. `reason` is the server's text.
 *
 * @since 0.1.0
 * @category errors
 */
export class PreconditionFailed extends Data.TaggedError("PreconditionFailed")<
  RpcContext & {
    readonly reason: string
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(this.reason, this)
  }
}

// ---------------------------------------------------------------------------
// Recipes
// ---------------------------------------------------------------------------

/**
 * A lock was not acquired within its timeout. Nothing of the attempt is left on the server.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockTimeout extends Data.TaggedError("LockTimeout")<{
  /** The lock's name as given to `Lock.make` (`name` itself is `Error`'s, and says `LockTimeout`). */
  readonly lockName: string
  readonly timeout: Duration.Duration
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `lock ${JSON.stringify(this.lockName)} not acquired within ${Duration.format(this.timeout)}`
  }
}

/**
 * The server canceled a watch for a reason other than compaction (for example a
 * permission change); `reason` is the server's text.
 *
 * @since 0.1.0
 * @category errors
 */
export class WatchCanceled extends Data.TaggedError("WatchCanceled")<{
  readonly reason: string
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `the server canceled the watch: ${this.reason}`
  }
}

/**
 * Anything else, with the gRPC status code, the server's message and the original error.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unknown extends Data.TaggedError("Unknown")<
  RpcContext & {
    readonly code: number
    readonly details: string
    readonly cause?: unknown
  }
> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return describe(`etcd error (gRPC code ${this.code}): ${this.details}`, this)
  }
}

/**
 * Every error an effect-etcd call can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type EtcdError =
  | Compacted
  | FutureRevision
  | EmptyKey
  | RequestTooLarge
  | TooManyOps
  | DuplicateKey
  | InvalidArgument
  | NoSpace
  | LeaseNotFound
  | LeaseExists
  | LeaseLost
  | NoLeader
  | Timeout
  | Unavailable
  | ConnectionFailed
  | AmbiguousOutcome
  | AuthFailed
  | PermissionDenied
  | InvalidAuthToken
  | TlsError
  | NotFound
  | AlreadyExists
  | LearnerNotReady
  | PreconditionFailed
  | LockTimeout
  | WatchCanceled
  | Unknown
