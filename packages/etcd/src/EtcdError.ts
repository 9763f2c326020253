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
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Families from "./internal/errors/families.js"
import * as Messages from "./internal/errors/messages.js"
import { TaggedError } from "./internal/errors/taggedError.js"

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
export class Compacted extends TaggedError("Compacted")<
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
    return Messages.compacted(this)
  }
}

/**
 * The revision asked for is newer than the store's current revision.
 * `requestedRevision` is the revision asked for, and `currentRevision` the store's, when known.
 *
 * @since 0.1.0
 * @category errors
 */
export class FutureRevision extends TaggedError("FutureRevision")<
  RpcContext & {
    readonly requestedRevision?: bigint | undefined
    readonly currentRevision?: bigint | undefined
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
    return Messages.futureRevision(this)
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
export class EmptyKey extends TaggedError("EmptyKey")<RpcContext> {
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
    return Messages.emptyKey(this)
  }
}

/**
 * The request is larger than the server accepts (`--max-request-bytes`, 1.5 MiB by default).
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTooLarge extends TaggedError("RequestTooLarge")<
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
    return Messages.requestTooLarge(this)
  }
}

/**
 * An answer larger than the client receives: its message has `size` bytes, over `limit`,
 * the client's `maxReceiveMessageBytes` (about 2 GiB unless set lower, as Go's clientv3).
 * Nothing of the answer is kept. Ask for less: a range with a `limit`, `keysOnly`, a
 * paged stream, a txn with fewer reads. For a write, the server applied it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ResponseTooLarge extends TaggedError("ResponseTooLarge")<
  RpcContext & {
    /** The client's receive limit in bytes. */
    readonly limit: number
    /** The size of the answer's message, as its frame announced it. */
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
    return Messages.responseTooLarge(this)
  }
}

/**
 * A transaction has more operations than the server accepts (`--max-txn-ops`, 128 by default).
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyOps extends TaggedError("TooManyOps")<RpcContext> {
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
    return Messages.tooManyOps(this)
  }
}

/**
 * A transaction writes the same key twice in one branch.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateKey extends TaggedError("DuplicateKey")<RpcContext> {
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
    return Messages.duplicateKey(this)
  }
}

/**
 * A request that cannot be right: caught by the client before anything is sent (a
 * revision that is NaN, negative or beyond int64, a TTL that is not a positive number of
 * seconds, a duration that cannot be parsed, a key that is not text or bytes, ...; then
 * `option` names what was wrong and `reason` says it with the value), or rejected by the
 * server as malformed (for example `ignoreValue` on a key that does not exist).
 *
 * A tagged error by design, not a defect: such values often come from input at run time,
 * and the server's refusals share the tag. To treat them as bugs where you call, use
 * `Effect.catchTag("EtcdInvalidArgument", Effect.die)`.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdInvalidArgument extends TaggedError("EtcdInvalidArgument")<
  RpcContext & {
    readonly reason: string
    /** The option or argument that was wrong (`revision`, `ttl`, `timeout`, ...), when the client caught it. */
    readonly option?: string | undefined
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
    return Messages.etcdInvalidArgument(this)
  }
}

/**
 * The cluster's storage quota is exhausted; writes fail until space is freed
 * (compaction + defragmentation) and the NOSPACE alarm is disarmed.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoSpace extends TaggedError("NoSpace")<RpcContext> {
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
    return Messages.noSpace(this)
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
export class LeaseNotFound extends TaggedError("LeaseNotFound")<
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
    return Messages.leaseNotFound(this)
  }
}

/**
 * A lease with the requested ID already exists.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseExists extends TaggedError("LeaseExists")<
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
    return Messages.leaseExists(this)
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
export class LeaseLost extends TaggedError("LeaseLost")<{
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
    return Messages.leaseLost(this)
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
export class NoLeader extends TaggedError("NoLeader")<
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
    return Messages.noLeader(this)
  }
}

/**
 * The call did not complete within its deadline. For a write this means the outcome
 * is unknown: it may or may not have been applied.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdTimeout extends TaggedError("EtcdTimeout")<
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
    return Messages.etcdTimeout(this)
  }
}

/**
 * No member could be reached (connection refused, reset or closed). `endpoints`
 * names the members that were tried.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdUnavailable extends TaggedError("EtcdUnavailable")<
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
    return Messages.etcdUnavailable(this)
  }
}

/**
 * The client was used after it was closed (the scope of its layer, or of `Etcd.make`,
 * has ended). Every call then fails at once with this error, and streams end with it;
 * nothing is sent. Not retryable: build a new client.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientClosed extends TaggedError("ClientClosed")<RpcContext> {
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
    return Messages.clientClosed(this)
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
  /** What the attempt failed with; an `EtcdUnavailable` keeps gRPC's own error as its `cause`. */
  readonly error: EtcdError
}

/**
 * Building a client found no member answering within the connect timeout. `failures`
 * says, for each endpoint, why: its connection was refused, it gave no answer in time, ...
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdConnectionFailed extends TaggedError("EtcdConnectionFailed")<{
  readonly endpoints: ReadonlyArray<string>
  readonly timeout: Duration.Duration
  /** One per endpoint tried, in the order given. */
  readonly failures: ReadonlyArray<EndpointFailure>
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
    return Messages.etcdConnectionFailed(this)
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
export class AmbiguousOutcome extends TaggedError("AmbiguousOutcome")<
  RpcContext & {
    readonly cause: EtcdTimeout | EtcdUnavailable | NoLeader
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
    return Messages.ambiguousOutcome(this)
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
export class EtcdAuthFailed extends TaggedError("EtcdAuthFailed")<
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
    return Messages.etcdAuthFailed(this)
  }
}

/**
 * The authenticated user lacks the permission the call needs.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdPermissionDenied extends TaggedError("EtcdPermissionDenied")<RpcContext> {
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
    return Messages.etcdPermissionDenied(this)
  }
}

/**
 * The auth token was rejected (expired or invalid). The client re-authenticates and
 * retries by itself when it has credentials; this reaches the caller only otherwise.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidAuthToken extends TaggedError("InvalidAuthToken")<RpcContext> {
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
    return Messages.invalidAuthToken(this)
  }
}

/**
 * A TLS handshake failed (unknown CA, wrong server name, missing client certificate).
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdTlsError extends TaggedError("EtcdTlsError")<
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
    return Messages.etcdTlsError(this)
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
export class EtcdNotFound extends TaggedError("EtcdNotFound")<
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
    return Messages.etcdNotFound(this)
  }
}

/**
 * What an administrative call would create exists already: a user, a role, a member ID
 * or a member's peer URLs. `reason` is the server's text.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdAlreadyExists extends TaggedError("EtcdAlreadyExists")<
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
    return Messages.etcdAlreadyExists(this)
  }
}

/**
 * A learner cannot be promoted yet: it has not caught up with the leader. Retry later.
 *
 * @since 0.1.0
 * @category errors
 */
export class LearnerNotReady extends TaggedError("LearnerNotReady")<RpcContext> {
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
    return Messages.learnerNotReady(this)
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
export class EtcdPreconditionFailed extends TaggedError("EtcdPreconditionFailed")<
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
    return Messages.etcdPreconditionFailed(this)
  }
}

/**
 * A snapshot could not be written to a file (`Maintenance.snapshotToFile`): the stream
 * broke (`cause` is the stream's error, an `EtcdError`), or the file could not be written
 * (`cause` is the platform's error). Nothing is left at `path`.
 *
 * @since 0.1.0
 * @category errors
 */
export class SnapshotFailed extends TaggedError("SnapshotFailed")<{
  readonly path: string
  /** How many bytes had arrived when it failed. */
  readonly bytesReceived: number
  readonly cause: unknown
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
    return Messages.snapshotFailed(this)
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
export class LockTimeout extends TaggedError("LockTimeout")<{
  /** The lock's name as given to `Lock.make` (`name` itself is `Error`'s, and says `LockTimeout`). */
  readonly lockName: string
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
    return Messages.lockTimeout(this)
  }
}

/**
 * A campaign did not win its election within its timeout. Nothing of the attempt is
 * left on the server.
 *
 * @since 0.1.0
 * @category errors
 */
export class CampaignTimeout extends TaggedError("CampaignTimeout")<{
  /** The election's name as given to `Election.campaign`. */
  readonly electionName: string
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
    return Messages.campaignTimeout(this)
  }
}

/**
 * A mirror did not reach a revision within the timeout its `waitFor` was given. The
 * mirror itself goes on: a later `waitFor` may still see it get there.
 *
 * @since 0.2.0
 * @category errors
 */
export class MirrorTimeout extends TaggedError("MirrorTimeout")<{
  /** The revision waited for. */
  readonly revision: bigint
  /** The revision the mirror reflected when the time was up. */
  readonly reached: bigint
  readonly timeout: Duration.Duration
}> {
  /**
   * Marks an error of this library (see `isEtcdError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.2.0 */
  get isRetryable(): boolean {
    return true
  }
  /** @since 0.2.0 */
  override get message(): string {
    return Messages.mirrorTimeout(this)
  }
}

/**
 * A leader acted (proclaimed a value) after losing its leadership: it resigned, its
 * session was lost, or its key was deleted. Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotLeader extends TaggedError("NotLeader")<{
  /** The election's name. */
  readonly electionName: string
  /** The key the leadership was held with. */
  readonly key: string
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
    return Messages.notLeader(this)
  }
}

/**
 * A software transaction (`Stm.run`) met a conflicting write on every one of its
 * attempts; nothing of it was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class StmRetriesExhausted extends TaggedError("StmRetriesExhausted")<{
  /** How many times the transaction ran, the first included. */
  readonly attempts: number
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
    return Messages.stmRetriesExhausted(this)
  }
}

/**
 * The server canceled a watch for a reason other than compaction (for example a
 * permission change); `reason` is the server's text.
 *
 * @since 0.1.0
 * @category errors
 */
export class WatchCanceled extends TaggedError("WatchCanceled")<{
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
    return Messages.watchCanceled(this)
  }
}

// ---------------------------------------------------------------------------
// Typed keyspaces
// ---------------------------------------------------------------------------

/**
 * A key or value of a typed `Keyspace` did not pass its Schema: a stored value that does
 * not decode (`direction: "decode"`, with the `revision` it was written at), or a value
 * given to a typed write that does not encode (`direction: "encode"`). `key` is the full
 * etcd key, `reason` the Schema's message and `cause` its `ParseError`.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdDecodeError extends TaggedError("EtcdDecodeError")<{
  /** The full etcd key (prefix included), as UTF-8 text. */
  readonly key: string
  /** The revision of the stored value that did not decode; absent when encoding. */
  readonly revision?: bigint | undefined
  /** Whether the key or the value failed. */
  readonly part: "key" | "value"
  readonly direction: "decode" | "encode"
  /** The Schema's message. */
  readonly reason: string
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
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return Messages.etcdDecodeError(this)
  }
}

/**
 * Anything else, with the gRPC status code, the server's message and the original error.
 *
 * @since 0.1.0
 * @category errors
 */
export class EtcdUnknown extends TaggedError("EtcdUnknown")<
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
    return Messages.etcdUnknown(this)
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
  | ResponseTooLarge
  | TooManyOps
  | DuplicateKey
  | EtcdInvalidArgument
  | NoSpace
  | LeaseNotFound
  | LeaseExists
  | LeaseLost
  | NoLeader
  | EtcdTimeout
  | EtcdUnavailable
  | ClientClosed
  | EtcdConnectionFailed
  | AmbiguousOutcome
  | EtcdAuthFailed
  | EtcdPermissionDenied
  | InvalidAuthToken
  | EtcdTlsError
  | EtcdNotFound
  | EtcdAlreadyExists
  | LearnerNotReady
  | EtcdPreconditionFailed
  | SnapshotFailed
  | LockTimeout
  | CampaignTimeout
  | MirrorTimeout
  | NotLeader
  | StmRetriesExhausted
  | WatchCanceled
  | EtcdDecodeError
  | EtcdUnknown

// ---------------------------------------------------------------------------
// Families: the errors each kind of call can produce
// ---------------------------------------------------------------------------

/**
 * The tags of every error, as a type.
 *
 * @since 0.1.0
 * @category families
 */
export type Tag = EtcdError["_tag"]

/**
 * The tags of each error family, at run time: the same lists the family types are made
 * of. A read is never ambiguous; a write can be (`AmbiguousOutcome`). Errors only a
 * layer can produce (`EtcdConnectionFailed`, `EtcdTlsError`) are in `connect` alone: a TLS
 * failure met by a call once connected comes back as `EtcdUnavailable` of that member.
 *
 * @since 0.1.0
 * @category families
 */
export const families = Families.families

/**
 * The errors of one family, by name.
 *
 * @since 0.1.0
 * @category families
 */
export type Family<Name extends keyof typeof families> = Extract<
  EtcdError,
  { readonly _tag: (typeof families)[Name][number] }
>

/**
 * What any call that reaches the server can fail with: `EtcdInvalidArgument`, `EtcdTimeout`,
 * `EtcdUnavailable`, `NoLeader`, `InvalidAuthToken`, `EtcdAuthFailed` (a token refresh with a
 * password changed meanwhile), `EtcdPermissionDenied`, `ClientClosed`, `ResponseTooLarge`
 * (an answer over the client's receive limit), `EtcdUnknown`.
 *
 * @since 0.1.0
 * @category families
 */
export type CallError = Family<"call">

/**
 * A read (`Kv.get`, `Kv.range`, `Kv.count`, `Kv.stream`...): `CallError` plus
 * `Compacted`, `FutureRevision`, `EmptyKey`, `RequestTooLarge`. Never `AmbiguousOutcome`.
 *
 * @since 0.1.0
 * @category families
 */
export type ReadError = Family<"read">

/**
 * A put: `CallError` plus `AmbiguousOutcome`, `EmptyKey`, `RequestTooLarge`, `NoSpace`,
 * `LeaseNotFound` (a lease that does not exist).
 *
 * @since 0.1.0
 * @category families
 */
export type PutError = Family<"put">

/**
 * A delete: `CallError` plus `AmbiguousOutcome`, `EmptyKey`, `RequestTooLarge`.
 *
 * @since 0.1.0
 * @category families
 */
export type DeleteError = Family<"delete">

/**
 * A transaction: what its reads and writes can meet, plus `TooManyOps` and `DuplicateKey`.
 *
 * @since 0.1.0
 * @category families
 */
export type TxnError = Family<"txn">

/**
 * A compaction: `CallError` plus `AmbiguousOutcome`, `Compacted` (already compacted
 * there), `FutureRevision`.
 *
 * @since 0.1.0
 * @category families
 */
export type CompactError = Family<"compact">

/**
 * A lease grant (and `Lease.make`): `CallError` plus `AmbiguousOutcome`, `LeaseExists`
 * (a chosen ID in use), `NoSpace`.
 *
 * @since 0.1.0
 * @category families
 */
export type LeaseGrantError = Family<"leaseGrant">

/**
 * A call on an existing lease (revoke, time-to-live, keepalive, list): `CallError` plus
 * `LeaseNotFound`.
 *
 * @since 0.1.0
 * @category families
 */
export type LeaseError = Family<"lease">

/**
 * A watch: `CallError` plus `Compacted`, `EmptyKey`, `RequestTooLarge`, `WatchCanceled`.
 *
 * @since 0.1.0
 * @category families
 */
export type WatchError = Family<"watch">

/**
 * Taking a lock: what its lease, its txn and its wait can meet, plus `LockTimeout` and
 * `LeaseLost` (the lease expired while waiting).
 *
 * @since 0.1.0
 * @category families
 */
export type LockError = Family<"lock">

/**
 * Building a client's layer: `EtcdConnectionFailed`, `EtcdTlsError`, `EtcdAuthFailed`,
 * `EtcdInvalidArgument` (an option that cannot be right).
 *
 * @since 0.1.0
 * @category families
 */
export type ConnectError = Family<"connect">

/**
 * A mirror (`Mirror.prefix`, `Keyspace.mirror`) that stopped: what its listing and its watch
 * can meet, plus `EtcdDecodeError`.
 *
 * @since 0.1.0
 * @category families
 */
export type MirrorError = Family<"mirror">

/**
 * A campaign (`Election.campaign`, `Election.withLeadership`): what waiting in the
 * election's queue can meet (its lease, its txn, its wait, `LeaseLost` when the lease
 * expired while waiting), plus `CampaignTimeout`.
 *
 * @since 0.1.0
 * @category families
 */
export type CampaignError = Family<"campaign">

/**
 * A leader's proclamation (`Election.proclaim`): what a put can meet, plus `NotLeader`
 * when the leadership is over.
 *
 * @since 0.1.0
 * @category families
 */
export type ProclaimError = Family<"proclaim">

/**
 * A software transaction (`Stm.run`), besides the transaction's own errors: what its
 * reads and its commit (a txn) can meet, plus `StmRetriesExhausted`.
 *
 * @since 0.1.0
 * @category families
 */
export type StmError = Family<"stm">

/**
 * Reading one user or role by name (`Auth.getUser`, `Auth.getRole`): `CallError` plus
 * `EtcdNotFound`.
 *
 * @since 0.1.0
 * @category families
 */
export type LookupError = Family<"lookup">

/**
 * An administrative write that needs nothing to exist (`Auth.disable`): `CallError` plus
 * `AmbiguousOutcome`.
 *
 * @since 0.1.0
 * @category families
 */
export type AdminWriteError = Family<"adminWrite">

/**
 * Creating a user or a role (`Auth.addUser`, `Auth.addRole`): `AdminWriteError` plus
 * `EtcdAlreadyExists`.
 *
 * @since 0.1.0
 * @category families
 */
export type CreateError = Family<"create">

/**
 * Changing or deleting a user, a role or a grant that must exist (`Auth.deleteUser`,
 * `changePassword`, `grantRole`, `revokeRole`, `deleteRole`, `grantPermission`,
 * `revokePermission`): `AdminWriteError` plus `EtcdNotFound`.
 *
 * @since 0.1.0
 * @category families
 */
export type UpdateError = Family<"update">

/**
 * A write the cluster may refuse in its present state (`Auth.enable` without a root
 * user, `Maintenance.moveLeader` to a member that cannot lead): `AdminWriteError` plus
 * `EtcdPreconditionFailed`.
 *
 * @since 0.1.0
 * @category families
 */
export type StateChangeError = Family<"stateChange">

/**
 * Adding a member (`Cluster.addMember`): `AdminWriteError` plus `EtcdAlreadyExists` (its peer
 * URLs are another member's) and `EtcdPreconditionFailed` (too many learners, not enough
 * members started).
 *
 * @since 0.1.0
 * @category families
 */
export type MemberAddError = Family<"memberAdd">

/**
 * Removing a member (`Cluster.removeMember`): `UpdateError` (`EtcdNotFound` for an unknown
 * member) plus `EtcdPreconditionFailed` (not enough members would be left started).
 *
 * @since 0.1.0
 * @category families
 */
export type MemberRemoveError = Family<"memberRemove">

/**
 * Promoting a learner (`Cluster.promoteMember`): `MemberRemoveError` (`EtcdPreconditionFailed`
 * for a member that is no learner) plus `LearnerNotReady`.
 *
 * @since 0.1.0
 * @category families
 */
export type MemberPromoteError = Family<"memberPromote">

/**
 * Changing a member's peer URLs (`Cluster.updateMember`): `UpdateError` plus
 * `EtcdAlreadyExists` (the URLs are another member's).
 *
 * @since 0.1.0
 * @category families
 */
export type MemberUpdateError = Family<"memberUpdate">

/**
 * A member's hash at a revision (`Maintenance.hashKv`): `CallError` plus `Compacted` and
 * `FutureRevision`.
 *
 * @since 0.1.0
 * @category families
 */
export type HashKvError = Family<"hashKv">

/**
 * Keeps an error within a family. An error outside it would be a surprise of the
 * server's (the family lists are the protocol as documented): it becomes `EtcdUnknown` with
 * the original as its cause, except a TLS failure met once connected, which is that
 * member being `EtcdUnavailable`.
 *
 * @since 0.1.0
 * @category families
 */
export const toFamily = <Name extends keyof typeof families>(name: Name): (error: EtcdError) => Family<Name> => {
  const tags: ReadonlySet<string> = new Set(families[name])
  return (error) => (tags.has(error._tag) ? error : outside(error)) as Family<Name>
}

/**
 * Keeps an effect's errors within a family (see {@link toFamily}); costs nothing on success.
 *
 * @since 0.1.0
 * @category families
 */
export const within = <Name extends keyof typeof families>(name: Name) => {
  const narrow = toFamily(name)
  return <A, R>(effect: Effect.Effect<A, EtcdError, R>): Effect.Effect<A, Family<Name>, R> =>
    Effect.mapError(effect, narrow)
}

const outside = (error: EtcdError): EtcdUnknown | EtcdUnavailable =>
  error._tag === "EtcdTlsError"
    ? new EtcdUnavailable({ method: error.method, endpoints: error.endpoints, reason: error.reason, cause: error })
    : new EtcdUnknown({
      method: "method" in error ? error.method : undefined,
      code: 2,
      details: error.message,
      cause: error
    })
