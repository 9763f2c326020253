/**
 * One attempt of a unary call: one member, one request over its `node:http2` connection,
 * ended by the answer, by its deadline (kept by the deadline sweep) or by the caller's
 * interruption, and every failure mapped to a tagged error. What follows a failure (a new
 * token, another attempt, another member) is `retry.ts`'s.
 *
 * An attempt takes what to do with its failure (`onFailure`) and goes on with it inside the
 * same `Effect.async`, rather than being wrapped in a `catchAll`: the handling of failures
 * is built only once one happened, so a call that succeeds goes through no layer for it:
 * one `catchAll` (a closure and a continuation on the fiber's stack) less per call.
 *
 * What it was measured to save: nothing that shows above the noise of a loaded machine. A
 * micro-bench (2026-12-05, the 2-core machine at a load of about 15) ran 128,000 calls on
 * 128 fibers, each an `Effect.async` answered on a later turn (`setImmediate`), alone or
 * inside a `catchAll`, alternating, and took the CPU per call (`process.cpuUsage`): medians
 * of 2.6 µs alone and 3.6 wrapped over 9 rounds, then 3.7 and 2.9 over 15 rounds. Against
 * the 190 to 200 µs of CPU of a put at 128 in flight (`pnpm bench --only put-128`), any
 * saving is under 1%. The shape is confined to one place (the first attempt in `retry.ts`,
 * every later attempt is caught the plain way); a quieter measurement should decide
 * whether it stays.
 */
import type * as grpc from "@grpc/grpc-js"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as EtcdError from "../../EtcdError.js"
import type { Endpoint } from "../base/endpoint.js"
import * as Monotonic from "../base/monotonic.js"
import type { DeadlineSweep } from "./deadlineSweep.js"
import { fromGrpc } from "./grpcError.js"
import { Status } from "./grpcStatus.js"
import { StreamStatusError } from "./http2Duplex.js"
import type { Member, Members } from "./members.js"

/** Facts of a call for its error messages. */
export interface FailureFacts {
  readonly revision?: bigint | undefined
  readonly leaseId?: bigint | undefined
}

/**
 * One attempt on `member` with `headers`, ending by `deadline` (`monotonic.ts` milliseconds;
 * `timeout` is the call's, for the Timeout error). A failure (the server's answer, the
 * deadline, a closed client) is handed to `onFailure` when there is one, and the call goes
 * on with what it returns.
 */
export type Attempt = <Req, Res, E = EtcdError.EtcdError>(
  member: Member,
  method: grpc.MethodDefinition<Req, Res>,
  request: Req,
  headers: Readonly<Record<string, string>>,
  deadline: number,
  timeout: Duration.Duration,
  facts?: FailureFacts,
  onFailure?: (error: EtcdError.EtcdError) => Effect.Effect<Res, E>
) => Effect.Effect<Res, E>

/** What attempts are made with. */
export interface AttemptSettings {
  readonly members: Members
  readonly sweep: DeadlineSweep
  /** The largest request a call may send (larger ones fail with RESOURCE_EXHAUSTED, as in grpc-js). */
  readonly maxSendMessageBytes: number
  /** The `:authority` of the calls (the TLS server name), when it is not the member's address. */
  readonly authority: string | undefined
  /** The user's name, for the error messages. */
  readonly username: string | undefined
}

/** The Timeout of a call whose deadline passed. */
export const timedOut = (method: string, timeout: Duration.Duration, endpoint: Endpoint): EtcdError.EtcdTimeout =>
  new EtcdError.EtcdTimeout({ method, timeout, endpoint: endpoint.url })

/** Makes the function that runs attempts. */
export const make = (settings: AttemptSettings): Attempt => {
  const { maxSendMessageBytes: maxSendBytes, members, sweep } = settings
  return <Req, Res, E = EtcdError.EtcdError>(
    member: Member,
    method: grpc.MethodDefinition<Req, Res>,
    request: Req,
    headers: Readonly<Record<string, string>>,
    deadline: number,
    timeout: Duration.Duration,
    facts?: FailureFacts,
    onFailure?: (error: EtcdError.EtcdError) => Effect.Effect<Res, E>
  ): Effect.Effect<Res, E> =>
    Effect.async<Res, E>((resume) => {
      const pending = new Pending(
        deadline,
        resume as (effect: Effect.Effect<unknown, unknown>) => void,
        onFailure as ((error: EtcdError.EtcdError) => Effect.Effect<unknown, unknown>) | undefined,
        method.path,
        timeout,
        member.endpoint
      )
      if (members.closed()) return pending.fail(new EtcdError.ClientClosed({ method: method.path }))
      const done = (error: StreamStatusError | null, response?: Res) => {
        if (pending.settled) return
        pending.settled = true
        sweep.forget(pending)
        if (error) {
          pending.fail(fromGrpc(error, {
            method: method.path,
            endpoint: member.endpoint.url,
            endpoints: members.urls(),
            timeout,
            revision: facts?.revision,
            leaseId: facts?.leaseId,
            username: settings.username
          }))
        } else {
          resume(Effect.succeed(response as Res))
        }
      }
      let body: Buffer
      try {
        body = method.requestSerialize(request)
      } catch (cause) {
        return done(new StreamStatusError(Status.INTERNAL, `could not encode the request: ${String(cause)}`))
      }
      if (body.length > maxSendBytes) {
        // as grpc-js refuses it, before anything is sent
        return done(
          new StreamStatusError(
            Status.RESOURCE_EXHAUSTED,
            `Attempted to send message with a size larger than ${maxSendBytes}`
          )
        )
      }
      pending.call = member.http2.unary(
        method.path,
        headers,
        settings.authority,
        deadline - Monotonic.now(),
        body,
        (error, response) => {
          if (error !== null || response === undefined) return done(error)
          let decoded: Res
          try {
            decoded = method.responseDeserialize(response)
          } catch (cause) {
            return done(new StreamStatusError(Status.INTERNAL, `could not decode the answer: ${String(cause)}`))
          }
          done(null, decoded)
        }
      )
      // the deadline is kept by the sweep, not by a timer per call
      sweep.watch(pending)
      return Effect.sync(() => {
        pending.settled = true
        sweep.forget(pending)
        pending.call!.cancel()
      })
    })
}

/**
 * A unary call in flight, and how it ends: its answer, its deadline passing (the sweep
 * calls `expire`) or its caller's interruption. A class rather than closures, so that a
 * call allocates one object for all of it.
 */
class Pending {
  settled = false
  /** The call in flight; `expire`, when it has one, is how its deadline ends it. */
  call: { readonly cancel: () => void; readonly expire?: () => void } | undefined = undefined
  constructor(
    readonly deadline: number,
    readonly resume: (effect: Effect.Effect<unknown, unknown>) => void,
    readonly onFailure: ((error: EtcdError.EtcdError) => Effect.Effect<unknown, unknown>) | undefined,
    readonly method: string,
    readonly timeout: Duration.Duration,
    readonly endpoint: Endpoint
  ) {}

  /** Ends the attempt with `error`, or goes on with what `onFailure` makes of it. */
  fail(error: EtcdError.EtcdError): void {
    const onFailure = this.onFailure
    this.resume(onFailure === undefined ? Effect.fail(error) : Effect.suspend(() => onFailure(error)))
  }

  /** The deadline passed: the call is cancelled and fails with EtcdTimeout. */
  expire(): void {
    this.settled = true
    if (this.call?.expire !== undefined) this.call.expire()
    else this.call?.cancel()
    this.fail(timedOut(this.method, this.timeout, this.endpoint))
  }
}
