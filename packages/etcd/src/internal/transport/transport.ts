/**
 * The gRPC transport: one connection per member, failover between members, deadlines,
 * retries where they are safe, auth tokens, and the mapping of every gRPC failure to a
 * tagged error. Everything above this module speaks Effect only.
 *
 * Unary calls, the watch stream and the lease keepalive stream (`framedDuplex`) skip
 * grpc-js for `node:http2` (same members, tokens and TLS settings, on connections of their
 * own): grpc-js's cost per call was a third of the client's CPU per put (`http2Unary.ts`),
 * and each watch create was a write of its own. Server streams (snapshots) and the rare
 * streams of `duplex` (one keepalive, the compact-revision probe) go through grpc-js, whose
 * module and channel to a member are made when the first of them runs (`grpcClientOf`).
 * Failures of both are mapped the same way.
 */
import type * as grpc from "@grpc/grpc-js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as http2 from "node:http2"
import type * as tls from "node:tls"
import * as EtcdError from "../../EtcdError.js"
import { type Endpoint, parse as parseEndpoint } from "../base/endpoint.js"
import { methods } from "../wire/proto/loader.js"
import { fromGrpc } from "./grpcError.js"
import { Status } from "./grpcStatus.js"
import * as Http2Duplex from "./http2Duplex.js"
import { MemberConnection } from "./http2Unary.js"
import { classify, type Idempotency, isTransient, retryableFor } from "./retryPolicy.js"

/** Per-call settings. */
export interface CallOptions {
  readonly idempotency: Idempotency
  readonly timeout?: Duration.DurationInput | undefined
  /** Facts for the error messages. */
  readonly revision?: bigint | undefined
  readonly leaseId?: bigint | undefined
}

/** What the transport is built from; defaults are filled in by `Etcd.make`. */
export interface TransportConfig {
  readonly endpoints: ReadonlyArray<Endpoint>
  /**
   * The TLS context of the grpc-js channels, which carry only the calls that need one (a
   * snapshot, a single keepalive, the compaction probe); undefined for plain endpoints.
   */
  readonly secureContext: tls.SecureContext | undefined
  /** The same TLS settings for the connections opened without grpc-js; undefined for plain endpoints. */
  readonly tlsConnect?: http2.SecureClientSessionOptions | undefined
  readonly channelOptions: grpc.ChannelOptions
  /** The largest request a call may send (larger ones fail with RESOURCE_EXHAUSTED, as in grpc-js). */
  readonly maxSendMessageBytes: number
  /**
   * The largest answer a call over `node:http2` receives (larger ones fail with
   * `ResponseTooLarge`); `channelOptions` says the same to grpc-js.
   */
  readonly maxReceiveMessageBytes: number
  readonly requestTimeout: Duration.Duration
  readonly retrySchedule: Schedule.Schedule<unknown, EtcdError.EtcdError>
  readonly auth: Option.Option<{ readonly username: string; readonly password: Redacted.Redacted<string> }>
  readonly spanAttributes: Readonly<Record<string, unknown>>
}

/** What opening a stream needs of a method: its path and how its messages are encoded. */
export type StreamMethod<Req, Res> = Pick<
  grpc.MethodDefinition<Req, Res>,
  "path" | "requestSerialize" | "responseDeserialize"
>

/** An open bidirectional stream and the member it runs on. */
export interface Duplex<Req, Res> {
  readonly call: grpc.ClientDuplexStream<Req, Res>
  readonly endpoint: Endpoint
  /** The auth token the stream was opened with: pass it to `refreshToken` when the server rejects it. */
  readonly token: Option.Option<string>
}

/** A bidirectional stream spoken over `node:http2` (see `http2Duplex.ts`), and the member it runs on. */
export interface FramedDuplex {
  readonly call: Http2Duplex.Http2Duplex
  readonly endpoint: Endpoint
  /** The auth token the stream was opened with: pass it to `refreshToken` when the server rejects it. */
  readonly token: Option.Option<string>
}

/** What becomes of a framed stream's answers and its end. */
export interface FramedHandlers {
  /** Each message's raw bytes, valid only during the call. */
  readonly onMessage: (message: Buffer) => void
  /** The stream failed or ended (an end with status OK is `Unavailable` too: the stream is gone); once. */
  readonly onEnd: (error: EtcdError.EtcdError) => void
}

/** The transport's interface. */
export interface Transport {
  readonly endpoints: ReadonlyArray<Endpoint>
  readonly requestTimeout: Duration.Duration
  /**
   * One unary RPC with failover, retries and error mapping. Its timeout bounds the whole
   * call: every attempt and every pause between attempts ends by the same deadline.
   */
  readonly unary: <Req, Res, E = EtcdError.EtcdError>(
    method: grpc.MethodDefinition<Req, Res>,
    request: Req,
    options: CallOptions,
    /**
     * What becomes of a failed call (its errors narrowed, a fact filled in): applied to the
     * failure alone, so that a call that succeeds goes through no layer for it.
     */
    mapFailure?: (failure: Effect.Effect<Res, EtcdError.EtcdError>) => Effect.Effect<Res, E>
  ) => Effect.Effect<Res, E>
  /**
   * One unary RPC sent to the member at `endpointUrl` and no other (Maintenance calls aimed at
   * one member): retries, where the call allows them, go to the same member within the same
   * deadline. A member the client was not built with is dialled for this call alone; with
   * credentials, only one the cluster's member list names (the token goes to no other
   * server): another fails with InvalidArgument.
   */
  readonly unaryTo: <Req, Res>(
    endpointUrl: string,
    method: grpc.MethodDefinition<Req, Res>,
    request: Req,
    options: CallOptions
  ) => Effect.Effect<Res, EtcdError.EtcdError>
  /**
   * Opens a bidirectional stream on the preferred member, with the current auth token
   * (taking one first when there is none yet).
   */
  readonly duplex: <Req, Res>(
    method: StreamMethod<Req, Res>,
    options?: { readonly requireLeader?: boolean | undefined }
  ) => Effect.Effect<Duplex<Req, Res>, EtcdError.EtcdError>
  /**
   * Opens a bidirectional stream on the preferred member as `duplex` does (same member,
   * token, TLS settings and `hasleader` header), but spoken over `node:http2` on a connection
   * of its own instead of grpc-js: requests are written already framed, several at once,
   * and answers come as raw message bytes. For the lease keepalives, whose messages are so
   * many and so small that grpc-js's cost per message would be most of the client's CPU.
   */
  readonly framedDuplex: (
    path: string,
    handlers: FramedHandlers,
    options?: {
      readonly requireLeader?: boolean | undefined
      /**
       * PINGs on its connection as grpc-js's channels send them (`keepAliveTime`,
       * `keepAliveTimeout`): for a stream that may only listen, such as the watches.
       */
      readonly keepAlive?: boolean | undefined
    }
  ) => Effect.Effect<FramedDuplex, EtcdError.EtcdError>
  /**
   * Opens a server stream on the preferred member, or on the member at `endpointUrl` (as
   * `unaryTo` finds it); the stream ends (and a channel opened for it closes) with the scope.
   */
  readonly serverStream: <Req, Res>(
    method: grpc.MethodDefinition<Req, Res>,
    request: Req,
    endpointUrl?: string | undefined
  ) => Effect.Effect<
    { readonly call: grpc.ClientReadableStream<Res>; readonly endpoint: Endpoint },
    EtcdError.EtcdError,
    Scope.Scope
  >
  /** Maps an error seen on a stream (an `error` event) to a tagged error. */
  readonly streamError: (method: string, endpoint: Endpoint, error: unknown) => EtcdError.EtcdError
  /** Tells the transport a member misbehaved, so the next calls go elsewhere. */
  readonly reportFailure: (endpoint: Endpoint) => void
  /** The member calls go to now. */
  readonly current: () => Endpoint
  /** The members calls may go to: the ones given, or the last list `setEndpoints` set. */
  readonly memberEndpoints: () => ReadonlyArray<Endpoint>
  /**
   * Replaces the members calls may go to (endpoint discovery); channels of members still
   * listed are kept, and the preferred member stays preferred while it is listed. An empty
   * list changes nothing.
   */
  readonly setEndpoints: (endpoints: ReadonlyArray<Endpoint>) => Effect.Effect<void>
  /**
   * Asks every member for its status at once and prefers the first that answers;
   * fails with ConnectionFailed naming every endpoint when none answers in time.
   */
  readonly probe: (timeout: Duration.Duration) => Effect.Effect<void, EtcdError.ConnectionFailed>
  /**
   * Takes a fresh auth token in place of `rejected` (fails with AuthFailed on wrong
   * credentials); a no-op without credentials, or when another fiber already replaced it.
   */
  readonly refreshToken: (rejected: Option.Option<string>) => Effect.Effect<void, EtcdError.EtcdError>
  /** The current auth token (none without credentials or before the first authentication). */
  readonly token: () => Option.Option<string>
  /**
   * Whether the client authenticates: only then can a call take a token refresh, which
   * its deadline does not bound, on top of its attempts.
   */
  readonly authenticates: boolean
}

interface Member {
  readonly endpoint: Endpoint
  /** The member's grpc-js channel, made when a call first needs it. */
  client: grpc.Client | undefined
  /** The member's connection for unary calls. */
  readonly http2: MemberConnection
  /** The PINGs of its connections made without grpc-js (their interval backs off per member). */
  readonly keepAlive: Http2Duplex.KeepAlive | undefined
}

/** Builds the transport; the channels are closed when the scope closes. */
export const make = (config: TransportConfig): Effect.Effect<Transport, never, Scope.Scope> =>
  Effect.gen(function*() {
    // once the channels are closed, every call fails at once with ClientClosed (a closed
    // grpc-js client throws "Channel has been shut down" instead)
    let closed = false
    const maxSendBytes = config.maxSendMessageBytes
    const dial = (endpoint: Endpoint): Member => {
      const keepAlive = keepAliveOf(config.channelOptions)
      return {
        endpoint,
        client: undefined,
        http2: new MemberConnection(originOf(endpoint), config.tlsConnect, {
          keepAlive,
          maxReceiveBytes: config.maxReceiveMessageBytes
        }),
        keepAlive
      }
    }
    const hangUp = (member: Member) => {
      member.client?.close()
      member.http2.close()
    }
    /**
     * The member's grpc-js channel, made (and grpc-js loaded) by the first call that needs
     * one: most programs make none, and keep one connection per member. The calls on it are
     * bounded by their own timeouts, connecting included. Fails with ClientClosed once the
     * channels are closed (a closed grpc-js channel throws instead).
     */
    const grpcClientOf = (member: Member, method: string): Effect.Effect<grpc.Client, EtcdError.ClientClosed> =>
      Effect.flatMap(loadGrpc, (grpcJs) => {
        if (closed) return new EtcdError.ClientClosed({ method })
        if (member.client === undefined) {
          const credentials = config.secureContext === undefined
            ? grpcJs.credentials.createInsecure()
            : grpcJs.credentials.createFromSecureContext(config.secureContext)
          member.client = new grpcJs.Client(member.endpoint.address, credentials, config.channelOptions)
        }
        return Effect.succeed(member.client)
      })
    /** Members left out by `setEndpoints`: calls may still run on them, so they close with the scope. */
    const retired: Array<Member> = []
    const members: Array<Member> = yield* Effect.acquireRelease(
      Effect.sync(() => config.endpoints.map(dial)),
      (members) =>
        Effect.sync(() => {
          closed = true
          ;[...members, ...retired].forEach(hangUp)
        })
    )
    let endpointUrls = config.endpoints.map((endpoint) => endpoint.url)
    let preferred = 0
    const reportFailure = (endpoint: Endpoint) => {
      if (members.length > 1 && members[preferred].endpoint === endpoint) {
        preferred = (preferred + 1) % members.length
      }
    }

    // -- auth ------------------------------------------------------------------------------
    // The token is read on every call, so it lives in a plain variable; refreshes are
    // serialized so that many calls failing on one expired token authenticate once.
    let token = Option.none<string>()
    const refreshLock = yield* Effect.makeSemaphore(1)
    const username = Option.map(config.auth, (auth) => auth.username)
    const authenticate = (member: Member): Effect.Effect<Option.Option<string>, EtcdError.EtcdError> =>
      Option.match(config.auth, {
        onNone: () => Effect.succeed(Option.none<string>()),
        onSome: (auth) =>
          attempt(
            member,
            methods.auth.authenticate,
            {
              name: auth.username,
              password: Redacted.value(auth.password)
            },
            noToken,
            Date.now() + Duration.toMillis(config.requestTimeout),
            config.requestTimeout
          ).pipe(
            Effect.map((response) => Option.some(response.token)),
            // the user's name is on the span; the password is in no attribute, log or error
            Effect.withSpan(spanName(methods.auth.authenticate.path), {
              kind: "client",
              captureStackTrace: false,
              attributes: {
                ...spanAttributesOf(methods.auth.authenticate.path),
                ...memberAttributes(member.endpoint),
                "enduser.id": auth.username,
                ...config.spanAttributes
              }
            })
          )
      })
    // a call's headers are only read, so one object serves every call made with the same
    // token: none is built per call
    let tokenHeaders: { readonly token: string; readonly headers: Readonly<Record<string, string>> } | undefined
    const headersFor = (current: Option.Option<string>): Readonly<Record<string, string>> => {
      if (Option.isNone(current)) return noToken
      if (tokenHeaders === undefined || tokenHeaders.token !== current.value) {
        tokenHeaders = { token: current.value, headers: { token: current.value } }
      }
      return tokenHeaders.headers
    }
    /** The headers as grpc-js metadata, for the calls on a grpc-js channel. */
    const metadataOf = (grpcJs: GrpcModule, headers: Readonly<Record<string, string>>): grpc.Metadata => {
      const metadata = new grpcJs.Metadata()
      for (const [key, value] of Object.entries(headers)) metadata.set(key, value)
      return metadata
    }
    /** Replaces the token, unless another fiber already replaced the one that was rejected. */
    const refreshFrom = (rejected: Option.Option<string>): Effect.Effect<void, EtcdError.EtcdError> =>
      refreshLock.withPermits(1)(Effect.suspend(() =>
        token === rejected
          ? authenticate(members[preferred]).pipe(
            // auth was turned off: calls go without a token (as clientv3 does)
            Effect.catchIf(
              (error) => error._tag === "PreconditionFailed" && error.reason.includes("authentication is not enabled"),
              () => Effect.succeed(Option.none<string>())
            ),
            Effect.map((fresh) => {
              token = fresh
            })
          )
          : Effect.void
      ))

    /**
     * Whether the server refused a call for its token, before running it: the token is
     * invalid or expired, or there was none because auth was off when the last one was
     * asked for and is on again ("user name is empty").
     */
    const needsNewToken = (error: EtcdError.EtcdError, sent: Option.Option<string>): boolean =>
      Option.isSome(config.auth) && (error._tag === "InvalidAuthToken" ||
        (Option.isNone(sent) && error._tag === "InvalidArgument" && error.reason.includes("user name is empty")))

    // -- one attempt on one member ------------------------------------------------------------
    /**
     * One attempt. A failure (the server's answer, the deadline, a closed client) is handed
     * to `onFailure` when there is one, and the call goes on with what it returns, inside
     * the same `Effect.async`: the handling of failures is built only once one happened,
     * so a call that succeeds pays for no other layer.
     */
    function attempt<Req, Res, E = EtcdError.EtcdError>(
      member: Member,
      method: grpc.MethodDefinition<Req, Res>,
      request: Req,
      headers: Readonly<Record<string, string>>,
      deadline: number,
      timeout: Duration.Duration,
      options?: CallOptions,
      onFailure?: (error: EtcdError.EtcdError) => Effect.Effect<Res, E>
    ): Effect.Effect<Res, E> {
      return Effect.async<Res, E>((resume) => {
        const pending = new Pending(
          deadline,
          resume as (effect: Effect.Effect<unknown, unknown>) => void,
          onFailure as ((error: EtcdError.EtcdError) => Effect.Effect<unknown, unknown>) | undefined,
          method.path,
          timeout,
          member.endpoint
        )
        if (closed) return pending.fail(new EtcdError.ClientClosed({ method: method.path }))
        const done = (error: Http2Duplex.StreamStatusError | null, response?: Res) => {
          if (pending.settled) return
          pending.settled = true
          expiries.delete(pending)
          if (error) {
            pending.fail(fromGrpc(error, {
              method: method.path,
              endpoint: member.endpoint.url,
              endpoints: endpointUrls,
              timeout,
              revision: options?.revision,
              leaseId: options?.leaseId,
              username: Option.getOrUndefined(username)
            }))
          } else {
            resume(Effect.succeed(response as Res))
          }
        }
        // the deadline is kept by the sweep below, not by a timer per call
        let body: Buffer
        try {
          body = method.requestSerialize(request)
        } catch (cause) {
          return done(
            new Http2Duplex.StreamStatusError(Status.INTERNAL, `could not encode the request: ${String(cause)}`)
          )
        }
        if (body.length > maxSendBytes) {
          // as grpc-js refuses it, before anything is sent
          return done(
            new Http2Duplex.StreamStatusError(
              Status.RESOURCE_EXHAUSTED,
              `Attempted to send message with a size larger than ${maxSendBytes}`
            )
          )
        }
        pending.call = member.http2.unary(
          method.path,
          headers,
          config.tlsConnect?.servername,
          deadline - Date.now(),
          body,
          (error, response) => {
            if (error !== null || response === undefined) return done(error)
            let decoded: Res
            try {
              decoded = method.responseDeserialize(response)
            } catch (cause) {
              return done(
                new Http2Duplex.StreamStatusError(Status.INTERNAL, `could not decode the answer: ${String(cause)}`)
              )
            }
            done(null, decoded)
          }
        )
        watchDeadline(pending)
        return Effect.sync(() => {
          pending.settled = true
          expiries.delete(pending)
          pending.call!.cancel()
        })
      })
    }

    // -- deadlines ------------------------------------------------------------------------
    // One timer for every unary call in flight, armed for the earliest deadline, instead of
    // one grpc-js timer per call (the server still gets the deadline, as `grpc-timeout`).
    // A call is cancelled, and fails with Timeout, when the sweep finds it past its
    // deadline: at most `deadlineSlack` ms late, as a timer of its own could be. Calls that
    // end in time are just dropped from the set; the timer is re-armed only for a deadline
    // earlier than the one it waits for.
    const expiries = new Set<Pending>()
    let sweepTimer: ReturnType<typeof setTimeout> | undefined
    let sweepAt = Number.POSITIVE_INFINITY
    const armSweep = (at: number) => {
      if (sweepTimer !== undefined) clearTimeout(sweepTimer)
      sweepAt = at
      sweepTimer = setTimeout(sweep, Math.max(0, at - Date.now()))
      // a pending deadline alone does not keep the process alive (grpc-js's timers do not either)
      sweepTimer.unref?.()
    }
    const watchDeadline = (expiry: Pending) => {
      expiries.add(expiry)
      if (expiry.deadline + deadlineSlack < sweepAt) armSweep(expiry.deadline + deadlineSlack)
    }
    const sweep = () => {
      sweepTimer = undefined
      sweepAt = Number.POSITIVE_INFINITY
      const now = Date.now()
      let next = Number.POSITIVE_INFINITY
      for (const expiry of expiries) {
        if (expiry.deadline <= now) {
          expiries.delete(expiry)
          expiry.expire()
        } else if (expiry.deadline < next) {
          next = expiry.deadline
        }
      }
      if (next !== Number.POSITIVE_INFINITY) armSweep(next + deadlineSlack)
    }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (sweepTimer !== undefined) clearTimeout(sweepTimer)
      })
    )

    /**
     * What follows a failed attempt on `member` sent with the token `sent`: a new token and
     * the same attempt again when the server refused the token (it ran nothing), and the
     * member reported when the failure is transient.
     */
    const recover = <Req, Res>(
      error: EtcdError.EtcdError,
      sent: Option.Option<string>,
      member: Member,
      method: grpc.MethodDefinition<Req, Res>,
      request: Req,
      until: number,
      timeout: Duration.Duration,
      options: CallOptions
    ): Effect.Effect<Res, EtcdError.EtcdError> => {
      if (!needsNewToken(error, sent)) {
        if (isTransient(error)) reportFailure(member.endpoint)
        return Effect.fail(error)
      }
      // the server refused the token before running the request: safe to send again
      return refreshFrom(sent).pipe(
        Effect.zipRight(
          Effect.suspend(() => attempt(member, method, request, headersFor(token), until, timeout, options))
        ),
        Effect.tapError((error) => Effect.sync(() => isTransient(error) && reportFailure(member.endpoint)))
      )
    }

    const unary = <Req, Res, E = EtcdError.EtcdError>(
      method: grpc.MethodDefinition<Req, Res>,
      request: Req,
      options: CallOptions,
      mapFailure?: (failure: Effect.Effect<Res, EtcdError.EtcdError>) => Effect.Effect<Res, E>
    ): Effect.Effect<Res, E> => {
      const timeout = options.timeout === undefined ? config.requestTimeout : Duration.decode(options.timeout)
      // one primitive reads the tracer and starts the call: under the default tracer the
      // call is the attempt alone, with no layer around it
      return Effect.withFiberRuntime<Res, E>((fiber) => {
        if (fiber.currentTracer === defaultTracer) return firstAttempt(method, request, options, timeout, mapFailure)
        // the span records the call's own failure; `mapFailure` (what the caller makes of
        // it, and any call that takes) stays outside of it, as it would around any call
        const traced = Effect.withSpan(
          firstAttempt<Req, Res, EtcdError.EtcdError>(method, request, options, timeout),
          spanName(method.path),
          {
            kind: "client",
            captureStackTrace: false,
            attributes: {
              ...spanAttributesOf(method.path),
              ...memberAttributes(members[preferred].endpoint),
              ...config.spanAttributes
            }
          }
        )
        return mapFailure === undefined ? traced as Effect.Effect<Res, E> : mapFailure(traced)
      })
    }

    /**
     * A call's first attempt. What handles its failure (a new token, the retries and their
     * schedule, the classification of a write's failure, then `mapFailure`) is built only
     * once it has failed, so a call that succeeds pays nothing for it. The call's deadline
     * bounds every attempt and every pause between them.
     */
    const firstAttempt = <Req, Res, E>(
      method: grpc.MethodDefinition<Req, Res>,
      request: Req,
      options: CallOptions,
      timeout: Duration.Duration,
      mapFailure?: (failure: Effect.Effect<Res, EtcdError.EtcdError>) => Effect.Effect<Res, E>
    ): Effect.Effect<Res, E> => {
      const timeoutMillis = Duration.toMillis(timeout)
      const deadline = Date.now() + timeoutMillis
      const member = members[preferred]
      const current = token
      const failWith = (failure: Effect.Effect<Res, EtcdError.EtcdError>): Effect.Effect<Res, E> =>
        mapFailure === undefined ? failure as Effect.Effect<Res, E> : mapFailure(failure)
      if (timeoutMillis <= 0) return failWith(Effect.fail(timedOut(method.path, timeout, member.endpoint)))
      const until = attemptDeadline(timeoutMillis, options.idempotency)
      return attempt(member, method, request, headersFor(current), until, timeout, options, (error) => {
        const retryable = retryableFor(options.idempotency)
        const once = Effect.suspend(() => {
          const member = members[preferred]
          const current = token
          const left = deadline - Date.now()
          if (left <= 0) return Effect.fail(timedOut(method.path, timeout, member.endpoint))
          const until = attemptDeadline(left, options.idempotency)
          return Effect.catchAll(
            attempt(member, method, request, headersFor(current), until, timeout, options),
            (error) => recover(error, current, member, method, request, until, timeout, options)
          )
        })
        return failWith(classify(
          Effect.catchIf(
            recover(error, current, member, method, request, until, timeout, options),
            retryable,
            (error) => retryAfter(error, once, retryable, deadline)
          ),
          options.idempotency,
          method.path
        ))
      })
    }

    /**
     * The member at `url` (matched by its address when the text differs): one of the
     * client's own, or one dialled for the scope's lifetime. The auth token goes only to
     * members of the cluster it came from: with credentials, an endpoint the client was not
     * built with (nor discovered) is dialled only when the cluster's member list names it
     * among its client URLs; any other is refused with InvalidArgument, before anything is
     * sent to it.
     */
    const memberAt = (url: string): Effect.Effect<Member, EtcdError.EtcdError, Scope.Scope> => {
      const parsed = parseEndpoint(url)
      if (typeof parsed === "string") return Effect.fail(new EtcdError.InvalidArgument({ reason: parsed }))
      const known = members.find((member) => member.endpoint.url === url) ??
        members.find((member) => member.endpoint.address === parsed.address)
      if (known !== undefined) return Effect.succeed(known)
      const dialled = Effect.acquireRelease(Effect.sync(() => dial(parsed)), (member) =>
        Effect.sync(() => hangUp(member)))
      if (Option.isNone(config.auth)) {
        return dialled
      }
      return Effect.flatMap(
        unary(methods.cluster.memberList, {}, { idempotency: "repeatable" }),
        (response) => {
          const listed = response.members.some((member) =>
            member.clientURLs.some((clientUrl) => {
              const listedEndpoint = parseEndpoint(clientUrl)
              return typeof listedEndpoint !== "string" && listedEndpoint.address === parsed.address
            })
          )
          return listed ? dialled : Effect.fail(
            new EtcdError.InvalidArgument({
              reason: `${parsed.url} is not a member of the cluster this client authenticates with ` +
                "(neither an endpoint it was given nor a client URL in the cluster's member list): " +
                "its auth token is sent to no other server",
              option: "endpoint"
            })
          )
        }
      )
    }

    const unaryTo = <Req, Res>(
      endpointUrl: string,
      method: grpc.MethodDefinition<Req, Res>,
      request: Req,
      options: CallOptions
    ): Effect.Effect<Res, EtcdError.EtcdError> => {
      const timeout = options.timeout === undefined ? config.requestTimeout : Duration.decode(options.timeout)
      return Effect.scoped(Effect.flatMap(memberAt(endpointUrl), (member) =>
        Effect.suspend(() => {
          const deadline = Date.now() + Duration.toMillis(timeout)
          const once = Effect.suspend(() => {
            const current = token
            if (deadline - Date.now() <= 0) {
              return Effect.fail(timedOut(method.path, timeout, member.endpoint))
            }
            return attempt(member, method, request, headersFor(current), deadline, timeout, options).pipe(
              Effect.catchIf(
                (error) =>
                  needsNewToken(error, current),
                () =>
                  refreshFrom(current).pipe(
                    Effect.zipRight(
                      Effect.suspend(() =>
                        attempt(member, method, request, headersFor(token), deadline, timeout, options)
                      )
                    )
                  )
              )
            )
          })
          const retryable = retryableFor(options.idempotency)
          const retried = Effect.catchIf(
            once,
            retryable,
            (error) => retryAfter(error, once, retryable, deadline, member)
          )
          return traced(classify(retried, options.idempotency, method.path), method.path, member.endpoint)
        })))
    }

    /**
     * When an attempt must end. A repeatable call on a cluster of several members gives
     * each attempt half of what is left of its deadline (a second at least), so that a
     * member that does not answer at all leaves time to ask another; a write, or a call
     * to a single member, gets all of it.
     */
    const attemptDeadline = (left: number, idempotency: Idempotency): number => {
      const share = idempotency === "repeatable" && members.length > 1
        ? Math.max(left / 2, Math.min(left, 1_000))
        : left
      return Date.now() + share
    }

    /**
     * Sends `once` again, after the delays of the retry schedule, while `retryable` holds
     * and the call's deadline has not passed; a pause that would end past the deadline is
     * cut short and the last error returned.
     */
    const retryAfter = <Res>(
      first: EtcdError.EtcdError,
      once: Effect.Effect<Res, EtcdError.EtcdError>,
      retryable: (error: EtcdError.EtcdError) => boolean,
      deadline: number,
      member?: Member
    ): Effect.Effect<Res, EtcdError.EtcdError> =>
      Effect.flatMap(Schedule.driver(config.retrySchedule), (driver) => {
        const again = (error: EtcdError.EtcdError): Effect.Effect<Res, EtcdError.EtcdError> => {
          const left = deadline - Date.now()
          if (left <= 0) return Effect.fail(error)
          return Effect.matchEffect(Effect.timeout(driver.next(error), left), {
            onFailure: () => Effect.fail(error),
            onSuccess: () => Effect.catchIf(Effect.zipRight(annotateMember(member), once), retryable, again)
          })
        }
        return again(first)
      })

    /** Notes the member a retry goes to on the RPC's span (there is none under the default tracer). */
    const annotateMember = (member?: Member): Effect.Effect<void> =>
      Effect.tracerWith((tracer) =>
        tracer === defaultTracer
          ? Effect.void
          : Effect.annotateCurrentSpan(memberAttributes((member ?? members[preferred]).endpoint))
      )

    /**
     * Runs an RPC in a client span, named after the method, with the member it starts on.
     * Under Effect's default tracer, which records nothing, the span is left out, so that a
     * program without tracing does not pay for it.
     */
    const traced = <A, E>(effect: Effect.Effect<A, E>, path: string, endpoint?: Endpoint): Effect.Effect<A, E> =>
      Effect.tracerWith((tracer) =>
        tracer === defaultTracer ? effect : Effect.withSpan(effect, spanName(path), {
          kind: "client",
          captureStackTrace: false,
          attributes: {
            ...spanAttributesOf(path),
            ...memberAttributes(endpoint ?? members[preferred].endpoint),
            ...config.spanAttributes
          }
        })
      )

    const duplex = <Req, Res>(
      method: StreamMethod<Req, Res>,
      options?: { readonly requireLeader?: boolean | undefined }
    ): Effect.Effect<Duplex<Req, Res>, EtcdError.EtcdError> =>
      Effect.gen(function*() {
        // one Authenticate per token, not per stream: a stream whose token the server
        // rejects asks for a new one with refreshToken and opens again
        if (Option.isSome(config.auth) && Option.isNone(token)) yield* refreshFrom(token)
        if (closed) return yield* new EtcdError.ClientClosed({ method: method.path })
        const member = members[preferred]
        const current = token
        const grpcJs = yield* loadGrpc
        const client = yield* grpcClientOf(member, method.path)
        const metadata = metadataOf(grpcJs, headersFor(current))
        if (options?.requireLeader) metadata.set("hasleader", "true")
        const call = client.makeBidiStreamRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          metadata
        )
        return { call, endpoint: member.endpoint, token: current }
      })

    const framedDuplex = (
      path: string,
      handlers: FramedHandlers,
      options?: { readonly requireLeader?: boolean | undefined; readonly keepAlive?: boolean | undefined }
    ): Effect.Effect<FramedDuplex, EtcdError.EtcdError> =>
      Effect.gen(function*() {
        if (Option.isSome(config.auth) && Option.isNone(token)) yield* refreshFrom(token)
        if (closed) return yield* new EtcdError.ClientClosed({ method: path })
        const member = members[preferred]
        const endpoint = member.endpoint
        const current = token
        const headers: Record<string, string> = {}
        if (Option.isSome(current)) headers.token = current.value
        if (options?.requireLeader) headers.hasleader = "true"
        const call = Http2Duplex.open({
          origin: originOf(endpoint),
          connect: config.tlsConnect,
          path,
          headers,
          keepAlive: options?.keepAlive ? member.keepAlive : undefined,
          maxReceiveBytes: config.maxReceiveMessageBytes,
          onMessage: handlers.onMessage,
          onError: (error) => handlers.onEnd(streamError(path, endpoint, error)),
          onEnd: () =>
            handlers.onEnd(
              new EtcdError.Unavailable({
                method: path,
                endpoints: [endpoint.url],
                reason: "the server ended the stream"
              })
            )
        })
        return { call, endpoint, token: current }
      })

    /**
     * The PINGs of grpc-js's channels (`grpc.keepalive_time_ms`, `grpc.keepalive_timeout_ms`),
     * if they send any: a new object for each member, whose interval doubles when the member
     * closes a connection for too many pings.
     */
    function keepAliveOf(channelOptions: grpc.ChannelOptions): Http2Duplex.KeepAlive | undefined {
      const intervalMs = channelOptions["grpc.keepalive_time_ms"]
      if (typeof intervalMs !== "number" || intervalMs <= 0) return undefined
      const timeoutMs = channelOptions["grpc.keepalive_timeout_ms"]
      return { intervalMs, timeoutMs: typeof timeoutMs === "number" && timeoutMs > 0 ? timeoutMs : 20_000 }
    }

    /** `http://host:port`, or `https:` when the client uses TLS, for the connections made without grpc-js. */
    function originOf(endpoint: Endpoint): string {
      return `${config.tlsConnect === undefined ? "http" : "https"}://${endpoint.address}`
    }

    const serverStream = <Req, Res>(method: grpc.MethodDefinition<Req, Res>, request: Req, endpointUrl?: string) =>
      Effect.gen(function*() {
        if (Option.isSome(config.auth) && Option.isNone(token)) yield* refreshFrom(token)
        if (closed) return yield* new EtcdError.ClientClosed({ method: method.path })
        const member = endpointUrl === undefined ? members[preferred] : yield* memberAt(endpointUrl)
        const grpcJs = yield* loadGrpc
        const client = yield* grpcClientOf(member, method.path)
        const call = client.makeServerStreamRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          metadataOf(grpcJs, headersFor(token))
        )
        return { call, endpoint: member.endpoint }
      })

    const streamError = (method: string, endpoint: Endpoint, error: unknown) =>
      fromGrpc(error, {
        method,
        endpoint: endpoint.url,
        endpoints: endpointUrls,
        timeout: config.requestTimeout,
        username: Option.getOrUndefined(username)
      })

    const probe = (timeout: Duration.Duration) =>
      // the first member to answer wins; when none does, each one's own failure is reported
      Effect.validateFirst(members, (member, index) =>
        attempt(
          member,
          methods.maintenance.status,
          {},
          headersFor(token),
          Date.now() + Duration.toMillis(timeout),
          timeout
        )
          .pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () => new EtcdError.Timeout({ timeout, endpoint: member.endpoint.url })
            }),
            Effect.mapError((error) => ({ endpoint: member.endpoint.url, address: member.endpoint.address, error })),
            Effect.as(index)
          ), { concurrency: "unbounded" }).pipe(
          Effect.map((index) => {
            preferred = index
          }),
          Effect.mapError((failures) => new EtcdError.ConnectionFailed({ endpoints: endpointUrls, timeout, failures }))
        )

    const setEndpoints = (next: ReadonlyArray<Endpoint>) =>
      Effect.sync(() => {
        if (next.length === 0) return
        const current = members[preferred]
        const pool = [...members, ...retired]
        const kept = next.map((endpoint) =>
          pool.find((member) => member.endpoint.address === endpoint.address) ?? dial(endpoint)
        )
        retired.splice(0, retired.length, ...pool.filter((member) => !kept.includes(member)))
        members.splice(0, members.length, ...kept)
        endpointUrls = kept.map((member) => member.endpoint.url)
        preferred = Math.max(0, members.indexOf(current))
      })

    return {
      endpoints: config.endpoints,
      setEndpoints,
      memberEndpoints: () => members.map((member) => member.endpoint),
      probe,
      requestTimeout: config.requestTimeout,
      unary,
      unaryTo,
      duplex,
      framedDuplex,
      serverStream,
      streamError,
      reportFailure,
      refreshToken: refreshFrom,
      token: () => token,
      authenticates: Option.isSome(config.auth),
      current: () => members[preferred].endpoint
    } satisfies Transport
  })

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

  /** The deadline passed: the call is cancelled and fails with Timeout. */
  expire(): void {
    this.settled = true
    if (this.call?.expire !== undefined) this.call.expire()
    else this.call?.cancel()
    this.fail(timedOut(this.method, this.timeout, this.endpoint))
  }
}

/** The headers of a call made without a token. */
const noToken: Readonly<Record<string, string>> = Object.freeze({})

type GrpcModule = typeof grpc

/**
 * grpc-js, loaded when a call first needs a channel of its own (`grpcClientOf`): the unary
 * calls, the watch stream and the lease keepalives go over `node:http2` directly, and a
 * program that makes no other call never loads it (about 2.6 MB of heap, and 60 ms of start).
 */
const loadGrpc: Effect.Effect<GrpcModule> = Effect.promise(() => import("@grpc/grpc-js"))

/** How late past its deadline the sweep may cancel a call. */
const deadlineSlack = 5

const timedOut = (method: string, timeout: Duration.Duration, endpoint: Endpoint): EtcdError.Timeout =>
  new EtcdError.Timeout({ method, timeout, endpoint: endpoint.url })

/** The tracer a program has when it provides none: its spans go nowhere. */
const defaultTracer = Effect.runSync(Effect.tracer)

const memberAttributes = (endpoint: Endpoint): Record<string, unknown> => ({
  "server.address": endpoint.host,
  "server.port": endpoint.port
})

const spanName = (path: string): string => path.startsWith("/") ? path.slice(1) : path

const spanAttributesCache = new Map<string, Record<string, unknown>>()
const spanAttributesOf = (path: string): Record<string, unknown> => {
  let attributes = spanAttributesCache.get(path)
  if (attributes === undefined) {
    const [service, method] = spanName(path).split("/")
    attributes = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method }
    spanAttributesCache.set(path, attributes)
  }
  return attributes
}
