/**
 * The gRPC transport: what the modules above it call (`Transport`), assembled from the
 * transport's single-purpose modules, so that everything above it speaks Effect only:
 *
 * - `members.ts`: one connection per member, the preferred member and failover, endpoint
 *   discovery, the members dialled for one call;
 * - `authToken.ts`: the auth token, its headers and its refresh;
 * - `attempt.ts`: one attempt of a unary call, and the mapping of its failure to a tagged
 *   error (`grpcError.ts`); `deadlineSweep.ts` keeps the attempts' deadlines;
 * - `retry.ts`: the retries of every unary call, as `retryPolicy.ts` decides them, in the
 *   call's span (`tracing.ts`);
 * - `grpcJs.ts`: grpc-js, loaded for the few streams that still use it.
 *
 * This module adds the streams: each is opened after the same preamble (`openStream`).
 * Unary calls, the watch stream and the lease keepalive stream (`framedDuplex`) skip
 * grpc-js for `node:http2` (same members, tokens and TLS settings, on connections of their
 * own): grpc-js's cost per call was a third of the client's CPU per put (`http2Unary.ts`),
 * and each watch create was a write of its own. Server streams (snapshots) and the rare
 * streams of `duplex` (one keepalive, the compact-revision probe) go through grpc-js.
 * Failures of both are mapped the same way.
 */
import type * as grpc from "@grpc/grpc-js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as http2 from "node:http2"
import type * as tls from "node:tls"
import * as EtcdError from "../../EtcdError.js"
import type { Endpoint } from "../base/endpoint.js"
import type * as Metrics from "../base/metrics.js"
import * as Monotonic from "../base/monotonic.js"
import { methods } from "../wire/proto/loader.js"
import * as Attempt from "./attempt.js"
import * as AuthToken from "./authToken.js"
import * as DeadlineSweep from "./deadlineSweep.js"
import { fromGrpc } from "./grpcError.js"
import * as GrpcJs from "./grpcJs.js"
import * as Http2Duplex from "./http2Duplex.js"
import * as Members from "./members.js"
import * as Retry from "./retry.js"
import type { Idempotency } from "./retryPolicy.js"
import { withRpcSpan } from "./tracing.js"

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
  /**
   * Whether the unary calls of the KV and Lease services carry `hasleader` (see
   * {@link requiresLeader}): a member cut off from its leader then refuses them.
   */
  readonly requireLeader: boolean
  /** Whether the client records metrics (`metrics.ts`). */
  readonly metrics: Metrics.Settings
}

/**
 * The unary calls a client's `requireLeader` applies to: the data calls (KV, and so Txn,
 * and Lease), whose answer from a member cut off from its leader is stale (a serializable
 * read) or never comes (a linearizable read, a write). Not the administration calls
 * (status, alarms, the member list, auth), which must still reach such a member: they are
 * how one learns that it has no leader.
 */
export const requiresLeader = (path: string): boolean =>
  path.startsWith("/etcdserverpb.KV/") || path.startsWith("/etcdserverpb.Lease/")

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
  /** The stream failed or ended (an end with status OK is `EtcdUnavailable` too: the stream is gone); once. */
  readonly onEnd: (error: EtcdError.EtcdError) => void
}

/** The transport's interface. */
export interface Transport {
  readonly endpoints: ReadonlyArray<Endpoint>
  /** Whether the client records metrics: what the streams above check before each hook (none: off). */
  readonly metrics?: Metrics.Settings | undefined
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
   * server): another fails with EtcdInvalidArgument.
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
   * and answers come as raw message bytes. For the two shared streams: the lease keepalives
   * and the watches, whose messages are so many and so small that grpc-js's cost per
   * message would be most of the client's CPU.
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
   * fails with EtcdConnectionFailed naming every endpoint when none answers in time.
   */
  readonly probe: (timeout: Duration.Duration) => Effect.Effect<void, EtcdError.EtcdConnectionFailed>
  /**
   * Takes a fresh auth token in place of `rejected` (fails with EtcdAuthFailed on wrong
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

/** Builds the transport; the connections and channels are closed when the scope closes. */
export const make = (config: TransportConfig): Effect.Effect<Transport, never, Scope.Scope> =>
  Effect.gen(function*() {
    const members = yield* Members.make({
      endpoints: config.endpoints,
      tlsConnect: config.tlsConnect,
      channelOptions: config.channelOptions,
      maxReceiveMessageBytes: config.maxReceiveMessageBytes,
      metrics: config.metrics.enabled
    })
    const sweep = yield* DeadlineSweep.make
    const username = Option.getOrUndefined(Option.map(config.auth, (auth) => auth.username))
    const attempt = Attempt.make({
      members,
      sweep,
      maxSendMessageBytes: config.maxSendMessageBytes,
      authority: config.tlsConnect?.servername,
      username
    })
    const auth = yield* AuthToken.make(config.auth, (credentials) => {
      const member = members.preferred()
      return attempt(
        member,
        methods.auth.authenticate,
        { name: credentials.username, password: Redacted.value(credentials.password) },
        AuthToken.noToken,
        Monotonic.now() + Duration.toMillis(config.requestTimeout),
        config.requestTimeout
      ).pipe(
        Effect.map((response) => response.token),
        // the user's name is on the span; the password is in no attribute, log or error
        (authenticate) =>
          withRpcSpan(authenticate, methods.auth.authenticate.path, member.endpoint, {
            "enduser.id": credentials.username,
            ...config.spanAttributes
          })
      )
    })
    const retrySettings: Retry.RetrySettings = {
      attempt,
      auth,
      schedule: config.retrySchedule,
      spanAttributes: config.spanAttributes,
      metrics: config.metrics.enabled
    }
    /** The settings of the calls that carry `hasleader` (see `requiresLeader`). */
    const leaderSettings: Retry.RetrySettings = config.requireLeader
      ? { ...retrySettings, auth: AuthToken.withHeaders(auth, { hasleader: "true" }) }
      : retrySettings
    const failover = Retry.failover(members)
    const timeoutOf = (options: CallOptions): Duration.Duration =>
      options.timeout === undefined ? config.requestTimeout : Duration.decode(options.timeout)

    const unary = <Req, Res, E = EtcdError.EtcdError>(
      method: grpc.MethodDefinition<Req, Res>,
      request: Req,
      options: CallOptions,
      mapFailure?: (failure: Effect.Effect<Res, EtcdError.EtcdError>) => Effect.Effect<Res, E>
    ): Effect.Effect<Res, E> =>
      Retry.withRetries(requiresLeader(method.path) ? leaderSettings : retrySettings, failover, {
        method,
        request,
        idempotency: options.idempotency,
        timeout: timeoutOf(options),
        facts: options
      }, mapFailure)

    /**
     * With credentials, an endpoint the client was not built with (nor discovered) is
     * dialled only when the cluster's member list names it among its client URLs; any other
     * is refused with EtcdInvalidArgument, before anything is sent to it.
     */
    const vouch = auth.authenticates
      ? (endpoint: Endpoint): Effect.Effect<void, EtcdError.EtcdError> =>
        Effect.flatMap(
          unary(methods.cluster.memberList, {}, { idempotency: "repeatable" }),
          (response) =>
            Members.listedIn(response, endpoint) ? Effect.void : Effect.fail(
              new EtcdError.EtcdInvalidArgument({
                reason: `${endpoint.url} is not a member of the cluster this client authenticates with ` +
                  "(neither an endpoint it was given nor a client URL in the cluster's member list): " +
                  "its auth token is sent to no other server",
                option: "endpoint"
              })
            )
        )
      : undefined

    const unaryTo = <Req, Res>(
      endpointUrl: string,
      method: grpc.MethodDefinition<Req, Res>,
      request: Req,
      options: CallOptions
    ): Effect.Effect<Res, EtcdError.EtcdError> =>
      Effect.scoped(Effect.flatMap(members.at(endpointUrl, vouch), (member) =>
        Retry.withRetries(retrySettings, Retry.pinned(member), {
          method,
          request,
          idempotency: options.idempotency,
          timeout: timeoutOf(options),
          facts: options
        })))

    /**
     * What every stream's opening starts with: a token when the client authenticates and
     * has none yet (one Authenticate per token, not per stream: a stream whose token the
     * server rejects asks for a new one with `refreshToken` and opens again), ClientClosed
     * once the client closed, then the member (`pick`), and the stream opened there with
     * the current token.
     */
    const openStream = <A, R>(
      path: string,
      pick: Effect.Effect<Members.Member, EtcdError.EtcdError, R>,
      open: (member: Members.Member, token: Option.Option<string>) => Effect.Effect<A, EtcdError.EtcdError>
    ): Effect.Effect<A, EtcdError.EtcdError, R> =>
      Effect.gen(function*() {
        yield* auth.ensure
        if (members.closed()) {
          return yield* new EtcdError.ClientClosed({ method: path })
        }
        const member = yield* pick
        return yield* open(member, auth.current())
      })
    const preferred = Effect.sync(members.preferred)
    const grpcSettings = {
      closed: members.closed,
      secureContext: config.secureContext,
      channelOptions: config.channelOptions
    }

    const duplex = <Req, Res>(
      method: StreamMethod<Req, Res>,
      options?: { readonly requireLeader?: boolean | undefined }
    ): Effect.Effect<Duplex<Req, Res>, EtcdError.EtcdError> =>
      openStream(method.path, preferred, (member, token) =>
        Effect.map(GrpcJs.channelOf(member, method.path, grpcSettings), ({ client, grpcJs }) => {
          const metadata = GrpcJs.metadataOf(grpcJs, auth.headersFor(token))
          if (options?.requireLeader) {
            metadata.set("hasleader", "true")
          }
          const call = client.makeBidiStreamRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            metadata
          )
          return { call, endpoint: member.endpoint, token }
        }))

    const framedDuplex = (
      path: string,
      handlers: FramedHandlers,
      options?: { readonly requireLeader?: boolean | undefined; readonly keepAlive?: boolean | undefined }
    ): Effect.Effect<FramedDuplex, EtcdError.EtcdError> =>
      openStream(path, preferred, (member, token) =>
        Effect.sync(() => {
          const endpoint = member.endpoint
          const headers: Record<string, string> = {}
          if (Option.isSome(token)) {
            headers.token = token.value
          }
          if (options?.requireLeader) {
            headers.hasleader = "true"
          }
          const call = Http2Duplex.open({
            origin: members.originOf(endpoint),
            connect: config.tlsConnect,
            path,
            headers,
            keepAlive: options?.keepAlive ? member.keepAlive : undefined,
            maxReceiveBytes: config.maxReceiveMessageBytes,
            onMessage: handlers.onMessage,
            onError: (error) =>
              handlers.onEnd(streamError(path, endpoint, error)),
            onEnd: () =>
              handlers.onEnd(
                new EtcdError.EtcdUnavailable({
                  method: path,
                  endpoints: [endpoint.url],
                  reason: "the server ended the stream"
                })
              )
          })
          return { call, endpoint, token }
        }))

    const serverStream = <Req, Res>(method: grpc.MethodDefinition<Req, Res>, request: Req, endpointUrl?: string) =>
      openStream(
        method.path,
        endpointUrl === undefined ? preferred : members.at(endpointUrl, vouch),
        (member, token) =>
          Effect.map(GrpcJs.channelOf(member, method.path, grpcSettings), ({ client, grpcJs }) => {
            const call = client.makeServerStreamRequest(
              method.path,
              method.requestSerialize,
              method.responseDeserialize,
              request,
              GrpcJs.metadataOf(grpcJs, auth.headersFor(token))
            )
            return { call, endpoint: member.endpoint }
          })
      )

    const streamError = (method: string, endpoint: Endpoint, error: unknown) =>
      fromGrpc(error, {
        method,
        endpoint: endpoint.url,
        endpoints: members.urls(),
        timeout: config.requestTimeout,
        username
      })

    const probe = (timeout: Duration.Duration) =>
      // the first member to answer wins; when none does, each one's own failure is reported
      Effect.validateFirst(members.all(), (member, index) =>
        attempt(
          member,
          methods.maintenance.status,
          {},
          auth.headersFor(auth.current()),
          Monotonic.now() + Duration.toMillis(timeout),
          timeout
        )
          .pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () =>
                new EtcdError.EtcdTimeout({ timeout, endpoint: member.endpoint.url })
            }),
            Effect.mapError((error) => ({ endpoint: member.endpoint.url, address: member.endpoint.address, error })),
            Effect.as(index)
          ), { concurrency: "unbounded" }).pipe(
          Effect.map(members.prefer),
          Effect.mapError((failures) =>
            new EtcdError.EtcdConnectionFailed({ endpoints: members.urls(), timeout, failures })
          )
        )

    return {
      endpoints: config.endpoints,
      metrics: config.metrics,
      setEndpoints: (endpoints) =>
        Effect.sync(() =>
          members.setEndpoints(endpoints)
        ),
      memberEndpoints: () => members.all().map((member) => member.endpoint),
      probe,
      requestTimeout: config.requestTimeout,
      unary,
      unaryTo,
      duplex,
      framedDuplex,
      serverStream,
      streamError,
      reportFailure: members.reportFailure,
      refreshToken: auth.refresh,
      token: auth.current,
      authenticates: auth.authenticates,
      current: () => members.preferred().endpoint
    } satisfies Transport
  })
