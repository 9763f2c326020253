/**
 * The session loop the watch hub and the keepalive hub share: one gRPC stream at a time,
 * multiplexed among many watchers or leases.
 *
 * - Open: a stream over `node:http2` (`Transport.framedDuplex`), with a fresh session (the
 *   hub's state for that stream, a subclass of `StreamSession`); the hub then sends on it
 *   what the new stream needs (`opened`: the watchers' creates, the keepalives due).
 * - Read: each message is handed to the hub where the stream delivers it (`onMessage`),
 *   with no queue and no fiber in between. A message the hub throws on breaks the stream,
 *   like any failure of it, rather than being thrown into the stream's data callback.
 * - Write: the hub writes a turn's requests in one write (`StreamSession.write`); when it
 *   gathers them is its own (see each hub).
 * - Wait: the runner fiber sleeps until the session breaks (`StreamSession.break`, the first
 *   reason counts) or the hub no longer needs it (`idle`, checked when the hub calls
 *   `wakeRunner`). The check and the registration of the wake-up are one synchronous step.
 * - Reconnect: a stream whose auth token was refused is opened again at once with a fresh
 *   token; any other break is reported to the transport (which moves to the next member)
 *   and followed by a backoff, which starts over after a session that was of use
 *   (`healthy`). An error after which opening again is pointless (`isFatal`) ends the loop
 *   and every user of the hub (`giveUp`).
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as EtcdError from "../../EtcdError.js"
import type { FramedDuplex, Transport } from "../transport/transport.js"

/** One stream's state: what the loop needs of it; a hub extends it with its own. */
export class StreamSession {
  /** Set once the stream is open (it may break before: `broken` tells). */
  duplex: FramedDuplex | undefined = undefined
  /** Why the stream has to be replaced, once it has. */
  broken: EtcdError.EtcdError | undefined = undefined
  /** Whether the stream was of use (the hub says when): the backoff starts over after it. */
  healthy = false
  /** The runner, waiting for the session to end. */
  #wake: (() => void) | undefined = undefined

  /** Marks the stream to be replaced (the first reason counts) and wakes the runner. */
  break(error: EtcdError.EtcdError): void {
    if (this.broken !== undefined) return
    this.broken = error
    this.wakeRunner()
  }

  /** Wakes the runner, to see whether the session broke or its hub no longer needs it. */
  wakeRunner(): void {
    const wake = this.#wake
    this.#wake = undefined
    if (wake !== undefined) wake()
  }

  /** Writes requests framed already (nothing before the stream is open). */
  write(bytes: Buffer): void {
    // Stryker disable next-line OptionalChaining: equivalent because a hub routes requests to a session only once `opened` has been called, when its stream is open
    this.duplex?.call.write(bytes)
  }

  /**
   * Waits until the session breaks (returns the cause) or `idle` holds (returns
   * undefined): checked at once, then each time the runner is woken.
   */
  awaitEnd(idle: () => boolean): Effect.Effect<EtcdError.EtcdError | undefined> {
    const ended = () => this.broken !== undefined || idle()
    return Effect.flatMap(
      Effect.async<void>((resume) => {
        if (ended()) return resume(Effect.void)
        this.#wake = () => resume(Effect.void)
        // Stryker disable next-line BlockStatement: equivalent because a wake-up left behind by an interrupted wait resumes nothing (Effect ignores a resume after interruption) and the next wait replaces it; clearing it only lets go of the closure sooner
        return Effect.sync(() => {
          this.#wake = undefined
        })
      }),
      () => ended() ? Effect.succeed(this.broken) : this.awaitEnd(idle)
    )
  }
}

/** What a hub tells the loop: its stream, its state per stream, and where it differs from the other hub. */
export interface StreamPolicy<S extends StreamSession> {
  /** The gRPC method of the stream. */
  readonly path: string
  /** How the stream is opened (`hasleader`, the connection's PINGs). */
  readonly openOptions: { readonly requireLeader?: boolean; readonly keepAlive?: boolean }
  /** The state of a new stream, not open yet. */
  readonly makeSession: () => S
  /** Handles one message where the stream delivers it; its bytes are valid only during the call. */
  readonly onMessage: (session: S, message: Buffer) => void
  /** Whether the hub needs a stream at all: the loop ends when it does not. */
  readonly wanted: () => boolean
  /** Whether the hub lets go of a stream that has not broken (see `StreamSession.wakeRunner`). */
  readonly idle: () => boolean
  /** The stream is open: send what it needs, and route to this session from now on. */
  readonly opened: (session: S) => void
  /** The stream was canceled: nothing more is sent on it. */
  readonly closed: (session: S) => void
  /** How long to wait before opening again, after `failures` failures in a row (1 and up). */
  readonly backoff: (failures: number) => Duration.Duration
  /** Whether an error of opening (or of taking a new token) makes opening again pointless. */
  readonly isFatal: (error: EtcdError.EtcdError) => boolean
  /** Ends every user of the hub with such an error; the loop ends after it. */
  readonly giveUp: (error: EtcdError.EtcdError) => void
}

const open = <S extends StreamSession>(transport: Transport, policy: StreamPolicy<S>): Effect.Effect<
  S,
  EtcdError.EtcdError
> =>
  Effect.suspend(() => {
    const session = policy.makeSession()
    const onMessage = (message: Buffer): void => {
      try {
        policy.onMessage(session, message)
      } catch (cause) {
        session.break(transport.streamError(policy.path, session.duplex?.endpoint ?? transport.current(), cause))
      }
    }
    return Effect.map(
      transport.framedDuplex(policy.path, { onMessage, onEnd: (error) => session.break(error) }, policy.openOptions),
      (duplex) => {
        session.duplex = duplex
        return session
      }
    )
  })

/** Runs sessions one after another for as long as the hub wants a stream (see the module's header). */
export const runStream = <S extends StreamSession>(
  transport: Transport,
  policy: StreamPolicy<S>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    let failures = 0
    while (policy.wanted()) {
      const opened = yield* Effect.either(open(transport, policy))
      if (opened._tag === "Left") {
        if (policy.isFatal(opened.left)) return policy.giveUp(opened.left)
        failures++
        yield* Effect.sleep(policy.backoff(failures))
        continue
      }
      const session = opened.right
      const duplex = session.duplex!
      policy.opened(session)
      const broken = yield* session.awaitEnd(policy.idle).pipe(
        Effect.ensuring(Effect.sync(() => {
          duplex.call.cancel()
          policy.closed(session)
        }))
      )
      if (broken === undefined) continue
      if (broken._tag === "InvalidAuthToken") {
        // the stream's token was refused (it expired, or predates an auth change): one new
        // token, then a new stream at once
        const refreshed = yield* Effect.either(transport.refreshToken(duplex.token))
        if (refreshed._tag === "Right") continue
        if (policy.isFatal(refreshed.left)) return policy.giveUp(refreshed.left)
      }
      yield* Effect.logDebug("stream broke; opening another").pipe(
        Effect.annotateLogs({ method: policy.path, endpoint: duplex.endpoint.url, reason: broken.message })
      )
      transport.reportFailure(duplex.endpoint)
      failures = session.healthy ? 1 : failures + 1
      yield* Effect.sleep(policy.backoff(failures))
    }
  })
