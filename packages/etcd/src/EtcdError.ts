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
 * Marks every error of this library: see `isEtcdError`.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-etcd/EtcdError")

/**
 * The type of {@link TypeId}.
 *
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
 * Building a client found no member answering within the connect timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionFailed extends Data.TaggedError("ConnectionFailed")<{
  readonly endpoints: ReadonlyArray<string>
  readonly timeout: Duration.Duration
  readonly cause?: unknown
}> {
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    const reason = isEtcdError(this.cause) ? `: ${this.cause.message}` : ""
    return `could not connect to etcd at ${this.endpoints.join(", ")} within ${Duration.format(this.timeout)}${reason}`
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
// Recipes
// ---------------------------------------------------------------------------

/**
 * A lock was not acquired within its timeout. Nothing of the attempt is left on the server.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockTimeout extends Data.TaggedError("LockTimeout")<{
  readonly name: string
  readonly timeout: Duration.Duration
}> {
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `lock ${JSON.stringify(this.name)} not acquired within ${Duration.format(this.timeout)}`
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.1.0
   */
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
  | LockTimeout
  | WatchCanceled
  | Unknown
