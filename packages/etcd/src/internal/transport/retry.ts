/**
 * The retries of a unary call, the same for every unary path (`Transport.unary` on the
 * preferred member with failover, `Transport.unaryTo` on one member): the decision is
 * `retryPolicy.ts`'s; this module runs it. A call has one deadline, which bounds every
 * attempt and every pause between them. After a failed attempt:
 *
 * 1. a token the server refused (it ran nothing) is replaced, and the same attempt sent
 *    once more; a transient failure is reported to the route, which may go to another
 *    member;
 * 2. while the failure is retryable for the call's idempotency, the call waits the retry
 *    schedule's next delay (cut short at the deadline, which then returns the last error)
 *    and is sent again, on the member the route gives then, its failure taken through 1
 *    and 2 again;
 * 3. a write's failure that leaves its outcome open becomes AmbiguousOutcome (`classify`).
 *
 * All of that is built once the first attempt failed (`Attempt`'s `onFailure`), so a call
 * that succeeds at once goes through no layer of it (what that was measured to save:
 * `attempt.ts`). The call runs in its client span (`tracing.ts`), which records the call's
 * own failure; `mapFailure` (what the caller makes of a failure) stays outside of it.
 */
import type * as grpc from "@grpc/grpc-js"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as EtcdError from "../../EtcdError.js"
import type { Endpoint } from "../base/endpoint.js"
import * as Metrics from "../base/metrics.js"
import * as Monotonic from "../base/monotonic.js"
import { type Attempt, type FailureFacts, timedOut } from "./attempt.js"
import type { AuthToken } from "./authToken.js"
import { Status } from "./grpcStatus.js"
import type { Member, Members } from "./members.js"
import { classify, type Idempotency, isTransient, retryableFor } from "./retryPolicy.js"
import { annotateMember, defaultTracer, withRpcSpan } from "./tracing.js"

/** Where a call's attempts go, and how much of its deadline each may take. */
export interface Route {
  /** The member the next attempt goes to. */
  readonly member: () => Member
  /** When an attempt that starts with `left` ms of the call's deadline must end (`monotonic.ts` milliseconds). */
  readonly attemptDeadline: (left: number, idempotency: Idempotency) => number
  /** Told of an attempt's transient failure on `member`. */
  readonly reportFailure: (member: Member) => void
}

/**
 * The preferred member, and the next one after a transient failure. A repeatable call on a
 * cluster of several members gives each attempt half of what is left of its deadline (a
 * second at least), so that a member that does not answer at all leaves time to ask
 * another; a write, or a call on a single member, gets all of it.
 */
export const failover = (members: Members): Route => ({
  member: members.preferred,
  attemptDeadline: (left, idempotency) => {
    const share = idempotency === "repeatable" && members.all().length > 1
      ? Math.max(left / 2, Math.min(left, 1_000))
      : left
    return Monotonic.now() + share
  },
  reportFailure: (member) => members.reportFailure(member.endpoint)
})

/** One member and no other: every attempt gets all that is left of the deadline. */
export const pinned = (member: Member): Route => ({
  member: () => member,
  attemptDeadline: (left) => Monotonic.now() + left,
  reportFailure: () => {}
})

/** A unary call: its method, request, idempotency, deadline and the facts for its errors. */
export interface UnaryCall<Req, Res> {
  readonly method: grpc.MethodDefinition<Req, Res>
  readonly request: Req
  readonly idempotency: Idempotency
  readonly timeout: Duration.Duration
  readonly facts: FailureFacts
}

/** What the retries are made with. */
export interface RetrySettings {
  readonly attempt: Attempt
  readonly auth: AuthToken
  readonly schedule: Schedule.Schedule<unknown, EtcdError.EtcdError>
  /** The user's attributes of every span. */
  readonly spanAttributes: Readonly<Record<string, unknown>>
  /** Whether calls are measured (`metrics.ts`): when not, nothing is added to a call. */
  readonly metrics: boolean
}

/**
 * Runs `call` on `route` with its retries, in its span, then `mapFailure` on a failure.
 * One primitive reads the tracer and starts the call: under the default tracer the call is
 * its first attempt alone, with no layer around it.
 */
export const withRetries = <Req, Res, E = EtcdError.EtcdError>(
  settings: RetrySettings,
  route: Route,
  call: UnaryCall<Req, Res>,
  mapFailure?: (failure: Effect.Effect<Res, EtcdError.EtcdError>) => Effect.Effect<Res, E>
): Effect.Effect<Res, E> =>
  Effect.withFiberRuntime<Res, E>((fiber) => {
    if (fiber.currentTracer === defaultTracer) {
      if (!settings.metrics) return attempts(settings, route, call, mapFailure)
      const measured = measureCall(
        attempts<Req, Res, EtcdError.EtcdError>(settings, route, call),
        call.method.path,
        () => route.member().endpoint
      )
      return mapFailure === undefined ? measured as Effect.Effect<Res, E> : mapFailure(measured)
    }
    const span = withRpcSpan(
      attempts<Req, Res, EtcdError.EtcdError>(settings, route, call),
      call.method.path,
      route.member().endpoint,
      settings.spanAttributes
    )
    const traced = settings.metrics ? measureCall(span, call.method.path, () => route.member().endpoint) : span
    return mapFailure === undefined ? traced as Effect.Effect<Res, E> : mapFailure(traced)
  })

/**
 * A unary call's duration, status and member, and the calls in flight (`metrics.ts`), for
 * the transport's calls and for EtcdMemory's, which are counted as the same calls.
 */
export const measureCall = <A>(
  effect: Effect.Effect<A, EtcdError.EtcdError>,
  path: string,
  member: () => Endpoint
): Effect.Effect<A, EtcdError.EtcdError> =>
  Effect.suspend(() => {
    const start = Monotonic.now()
    Metrics.callStarted(path)
    return Effect.onExit(effect, (exit) =>
      Effect.sync(() => {
        let code = 0
        if (exit._tag === "Failure") {
          const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
          code = failure !== undefined
            ? statusCodeOf(failure)
            : Cause.isInterruptedOnly(exit.cause)
            ? Status.CANCELLED
            : Status.UNKNOWN
          if (failure?._tag === "AmbiguousOutcome") Metrics.ambiguous(path)
        }
        Metrics.callEnded(path, member(), code, Monotonic.now() - start)
      }))
  })

/** The gRPC status code a failure stands for (its own when it kept one). */
export const statusCodeOf = (error: EtcdError.EtcdError): number => {
  switch (error._tag) {
    case "EtcdTimeout":
      return Status.DEADLINE_EXCEEDED
    case "EtcdUnavailable":
    case "NoLeader":
    case "ClientClosed":
      return Status.UNAVAILABLE
    case "AmbiguousOutcome":
      return statusCodeOf(error.cause)
    case "EtcdUnknown":
      return error.code
    case "EtcdInvalidArgument":
    case "EmptyKey":
    case "RequestTooLarge":
    case "TooManyOps":
    case "DuplicateKey":
      return Status.INVALID_ARGUMENT
    case "EtcdAuthFailed":
      return Status.UNAUTHENTICATED
    case "EtcdPermissionDenied":
      return Status.PERMISSION_DENIED
    case "Compacted":
    case "FutureRevision":
      return Status.OUT_OF_RANGE
    case "LeaseNotFound":
    case "EtcdNotFound":
      return Status.NOT_FOUND
    case "ResponseTooLarge":
    case "NoSpace":
      return Status.RESOURCE_EXHAUSTED
    case "LeaseExists":
    case "EtcdPreconditionFailed":
      return Status.FAILED_PRECONDITION
    default:
      return Status.UNKNOWN
  }
}

/** The call's first attempt, and what follows its failure (steps 1 to 3 above, then `mapFailure`). */
const attempts = <Req, Res, E>(
  settings: RetrySettings,
  route: Route,
  call: UnaryCall<Req, Res>,
  mapFailure?: (failure: Effect.Effect<Res, EtcdError.EtcdError>) => Effect.Effect<Res, E>
): Effect.Effect<Res, E> => {
  const { attempt, auth } = settings
  const { facts, idempotency, method, request, timeout } = call
  const timeoutMillis = Duration.toMillis(timeout)
  const deadline = Monotonic.now() + timeoutMillis
  const failWith = (failure: Effect.Effect<Res, EtcdError.EtcdError>): Effect.Effect<Res, E> =>
    mapFailure === undefined ? failure as Effect.Effect<Res, E> : mapFailure(failure)

  /** Step 1: a new token and the same attempt again, or the failure reported. */
  const recover = (
    error: EtcdError.EtcdError,
    sent: Option.Option<string>,
    member: Member,
    until: number
  ): Effect.Effect<Res, EtcdError.EtcdError> => {
    if (!auth.needsNewToken(error, sent)) {
      if (isTransient(error)) route.reportFailure(member)
      return Effect.fail(error)
    }
    // the server refused the token before running the request: safe to send again
    return auth.refresh(sent).pipe(
      Effect.zipRight(
        Effect.suspend(() => attempt(member, method, request, auth.headersFor(auth.current()), until, timeout, facts))
      ),
      Effect.tapError((error) => Effect.sync(() => isTransient(error) && route.reportFailure(member)))
    )
  }

  /** An attempt after the first: on the route's member then, with the token then. */
  const again = Effect.suspend(() => {
    const member = route.member()
    const current = auth.current()
    const left = deadline - Monotonic.now()
    if (left <= 0) return Effect.fail(timedOut(method.path, timeout, member.endpoint))
    const until = route.attemptDeadline(left, idempotency)
    return Effect.catchAll(
      attempt(member, method, request, auth.headersFor(current), until, timeout, facts),
      (error) => recover(error, current, member, until)
    )
  })

  const member = route.member()
  const current = auth.current()
  if (timeoutMillis <= 0) return failWith(Effect.fail(timedOut(method.path, timeout, member.endpoint)))
  const until = route.attemptDeadline(timeoutMillis, idempotency)
  return attempt(member, method, request, auth.headersFor(current), until, timeout, facts, (error) => {
    const retryable = retryableFor(idempotency)
    return failWith(classify(
      Effect.catchIf(
        recover(error, current, member, until),
        retryable,
        (error) =>
          retryAfter(
            settings.schedule,
            error,
            again,
            retryable,
            deadline,
            route,
            settings.metrics ? method.path : undefined
          )
      ),
      idempotency,
      method.path
    ))
  })
}

/**
 * Step 2: sends `once` again, after the delays of the retry schedule, while `retryable`
 * holds and the call's deadline has not passed; a pause that would end past the deadline is
 * cut short and the last error returned. Each retry notes on the span the member it goes to.
 */
const retryAfter = <Res>(
  schedule: Schedule.Schedule<unknown, EtcdError.EtcdError>,
  first: EtcdError.EtcdError,
  once: Effect.Effect<Res, EtcdError.EtcdError>,
  retryable: (error: EtcdError.EtcdError) => boolean,
  deadline: number,
  route: Route,
  /** The method's path when retries are counted (`metrics.ts`). */
  measured: string | undefined
): Effect.Effect<Res, EtcdError.EtcdError> =>
  Effect.flatMap(Schedule.driver(schedule), (driver) => {
    let attempt = 1
    const again = (error: EtcdError.EtcdError): Effect.Effect<Res, EtcdError.EtcdError> => {
      const left = deadline - Monotonic.now()
      if (left <= 0) return Effect.fail(error)
      return Effect.matchEffect(Effect.timeout(driver.next(error), left), {
        onFailure: () => Effect.fail(error),
        onSuccess: () => {
          if (measured !== undefined) Metrics.retried(measured, error._tag)
          return Effect.catchIf(
            Effect.zipRight(
              Effect.suspend(() => annotateMember(route.member().endpoint, { number: ++attempt, failure: error._tag })),
              once
            ),
            retryable,
            again
          )
        }
      })
    }
    return again(first)
  })
