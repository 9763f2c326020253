/**
 * Which failed calls may be sent again, and which writes' failures leave their outcome
 * open: the one decision every call path of the transport takes (Go's `retry.go` draws the
 * same line). A read (`repeatable`) is sent again after any transient failure. A write
 * (`mutation`) is sent again only when the failure proves the server never proposed it
 * (`neverSent`: no connection, a refused stream, a GOAWAY that left it out; or an answer that
 * it was refused before a proposal); a write's other transient failures become
 * AmbiguousOutcome, since it may have been applied.
 */
import * as Effect from "effect/Effect"
import * as EtcdError from "../../EtcdError.js"
import { neverSent } from "./grpcError.js"

/** How a call may be retried. */
export type Idempotency =
  /** Reads and other calls that may run twice: retried on transient failures. */
  | "repeatable"
  /** Writes: retried only when the failure proves the server never got them. */
  | "mutation"

/** A failure that says nothing of the request itself: the member or the cluster was not there for it. */
export const isTransient = (error: EtcdError.EtcdError): boolean =>
  error._tag === "Unavailable" || error._tag === "Timeout" || error._tag === "NoLeader"

/**
 * The UNAVAILABLE answers that prove a write was not proposed: no leader, or a membership
 * change refused because a member has not been connected long enough ("unhealthy cluster").
 */
export const rejectedBeforeProposal = (error: EtcdError.EtcdError): boolean =>
  (error._tag === "NoLeader" && error.reason === "no leader") ||
  (error._tag === "Unavailable" && error.reason === "unhealthy cluster")

/** A write may be sent again only when the failure proves the server never proposed it. */
const retryableWrite = (error: EtcdError.EtcdError): boolean => neverSent(error) || rejectedBeforeProposal(error)

/** Whether a failed attempt may be sent again: any transient failure of a read, only a write never proposed. */
export const retryableFor = (idempotency: Idempotency): (error: EtcdError.EtcdError) => boolean =>
  idempotency === "repeatable" ? isTransient : retryableWrite

/** A write's failure after which it may or may not have been applied. */
const leavesOutcomeOpen = (
  error: EtcdError.EtcdError
): error is EtcdError.Timeout | EtcdError.Unavailable | EtcdError.NoLeader =>
  isTransient(error) && !neverSent(error) && !rejectedBeforeProposal(error)

/**
 * A write's transient failure that leaves its outcome unknown (it may have been applied)
 * becomes AmbiguousOutcome; a read's failures stay as they are.
 */
export const classify = <Res>(
  effect: Effect.Effect<Res, EtcdError.EtcdError>,
  idempotency: Idempotency,
  path: string
): Effect.Effect<Res, EtcdError.EtcdError> =>
  idempotency === "repeatable" ? effect : Effect.catchIf(
    effect,
    leavesOutcomeOpen,
    (cause) => Effect.fail(new EtcdError.AmbiguousOutcome({ method: path, cause }))
  )
