/**
 * The watch stream's liveness check, as a decision: when to send a quiet stream a progress
 * request, and when to call a stream whose member did not answer it stalled. The watch hub
 * keeps the facts per stream and acts on the step.
 *
 * - A stream on which nothing was heard for `quietMillis` is sent a progress request (one
 *   at a time; a caller's `requestProgress` counts as one).
 * - A stream whose progress request is in flight, and on which nothing at all was heard for
 *   `answerMillis` since it was sent, is stalled: its member was paused, or cut off without
 *   the connection breaking, and the hub opens the next stream on another member. Anything
 *   heard (events queued behind the answer included) is progress, not a stall.
 * - Only where servers are known to answer progress requests (one answered on the client's
 *   watch streams): etcd's gRPC proxy never does, and its streams are left to the
 *   connection's PINGs. A stream asks once when it opens, so that this is known early.
 *
 * HTTP/2 PINGs detect the same, but etcd refuses them more often than every 5 s
 * (`--grpc-keepalive-min-time`): the connection's bound is `keepAliveTime` plus
 * `keepAliveTimeout`, at least 5 s, while a progress request is a message like any other.
 * A waiter on a paused member (a candidate in `Election.campaign` waiting for its
 * predecessor's key to go) then moves on within about the client's request timeout.
 *
 * Imports: nothing of ours.
 */

/** How long a stream may be quiet before it is asked, and how long its member has to answer. */
export interface ProbeSettings {
  readonly quietMillis: number
  readonly answerMillis: number
}

/**
 * The settings for a client whose unary calls fail after `requestTimeout`: half of it quiet,
 * half of it to answer (half a second each at least), so that a member that answers nothing
 * is left within about one request timeout, as a unary call would leave it.
 */
export const settingsFor = (requestTimeoutMillis: number): ProbeSettings => {
  const half = Math.max(500, requestTimeoutMillis / 2)
  return { quietMillis: half, answerMillis: half }
}

/** How often the hub looks at its stream: a quarter of the shorter bound (50 ms at least). */
export const tickMillis = (settings: ProbeSettings): number =>
  Math.max(50, Math.min(settings.quietMillis, settings.answerMillis) / 4)

/** What the hub knows of one stream. */
export interface ProbeFacts {
  /** When anything was last heard on the stream (or when it opened). */
  readonly lastHeard: number
  /** When the progress request in flight was sent, if one is. */
  readonly progressSentAt: number | undefined
  /** Whether a progress request was ever answered on the client's watch streams. */
  readonly answersProgress: boolean
}

/** What to do now: nothing yet, send a progress request, or give the stream up as stalled. */
export type ProbeStep = "wait" | "probe" | "stalled"

/** The step for a stream at `now` (milliseconds on the hub's monotonic clock, as the facts' times). */
export const step = (facts: ProbeFacts, now: number, settings: ProbeSettings): ProbeStep => {
  if (facts.progressSentAt !== undefined) {
    const silentSince = Math.max(facts.progressSentAt, facts.lastHeard)
    return facts.answersProgress && now - silentSince >= settings.answerMillis ? "stalled" : "wait"
  }
  return now - facts.lastHeard >= settings.quietMillis ? "probe" : "wait"
}
