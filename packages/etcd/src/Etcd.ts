/**
 * The connection to an etcd cluster, as an Effect service.
 *
 * `Etcd.layer(options)` (or `Etcd.layerConfig(Etcd.config)` to read `ETCD_ENDPOINTS`,
 * `ETCD_USERNAME`, `ETCD_PASSWORD`) connects when the layer is built and closes every
 * channel when its scope closes. The `Kv`, `Txn`, `Lease`, `Lock` and `Watch` modules use
 * it from the context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd, Kv } from "effect-etcd"
 *
 * const program = Effect.gen(function*() {
 *   yield* Kv.put("greeting", "hello")
 *   return yield* Kv.get("greeting")
 * })
 *
 * // connects when run (`Effect.runPromise(main)`), closes the connection at the end
 * export const main = program.pipe(
 *   Effect.provide(Etcd.layer({ endpoints: ["http://127.0.0.1:2379"] }))
 * )
 * ```
 *
 * @since 0.1.0
 */
// first: stops a program whose `effect` is not Effect 3 (modules imported by path load this one)
import "./internal/base/effectVersion.js"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as EtcdError from "./EtcdError.js"
import { type Endpoint, parse as parseEndpoint, splitList } from "./internal/base/endpoint.js"
import { fileSystem, fileSystemOption } from "./internal/base/fileSystem.js"
import * as Metrics from "./internal/base/metrics.js"
import { toBuffer } from "./internal/data/codec.js"
import * as Validate from "./internal/data/validate.js"
import * as KvRpc from "./internal/rpc/kvRpc.js"
import * as LeaseRpc from "./internal/rpc/leaseRpc.js"
import * as Namespace from "./internal/rpc/namespace.js"
import * as Parts from "./internal/rpc/protocol.js"
import * as Resources from "./internal/rpc/resources.js"
import * as KeepAliveHub from "./internal/streams/keepAliveHub.js"
import * as WatchHub from "./internal/streams/watchHub.js"
import { connectOptions, secureContext } from "./internal/transport/tls.js"
import * as Transport from "./internal/transport/transport.js"
import { methods } from "./internal/wire/proto/loader.js"
import type { Bytes } from "./KeyRange.js"

/**
 * TLS settings: PEM text of the CA, the client certificate and its key (mTLS), and an
 * optional server name to verify instead of the endpoint's host.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsOptions {
  /** The CA that signed the members' certificates; the system roots when absent. */
  readonly ca?: string | Uint8Array | undefined
  /** Client certificate, for members started with `--client-cert-auth`. */
  readonly cert?: string | Uint8Array | undefined
  /** The client certificate's private key. */
  readonly key?: Redacted.Redacted<string> | string | Uint8Array | undefined
  /** The name to verify in the members' certificates instead of the endpoint's host. */
  readonly serverName?: string | undefined
}

/**
 * Marks an `Etcd` client.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-etcd/Etcd")

/**
 * The type of {@link TypeId}.
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A connected etcd client. Most code never calls it directly but through the `Kv`,
 * `Txn`, `Lease`, `Lock` and `Watch` modules.
 *
 * @since 0.1.0
 * @category models
 */
export interface Etcd {
  readonly [TypeId]: TypeId
  /** The endpoints this client was built with, as given. */
  readonly endpoints: ReadonlyArray<string>
  /** The key prefix of a namespaced client (see {@link namespaced}); absent otherwise. */
  readonly namespace?: Uint8Array | undefined
  /** The protocol-level client the modules are built on (opaque, see {@link Protocol}). */
  readonly protocol: Protocol
}

declare const ProtocolBrand: unique symbol

/**
 * The protocol-level client an {@link Etcd} carries: the KV, Watch and Lease RPCs, the
 * shared watch and keepalive streams and the transport under them. Opaque by design: its
 * parts follow etcd's wire protocol and change with it, so they are no public API. Use
 * the `Kv`, `Txn`, `Watch`, `Lease`, `Cluster`, `Maintenance` and `Auth` modules. Only
 * {@link make} (and the layers), {@link namespaced} and `EtcdMemory` make one, which is
 * also why an `Etcd` cannot be faked by an object literal: provide `EtcdMemory.layer()`
 * to test without a server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Protocol {
  readonly [ProtocolBrand]: typeof ProtocolBrand
}

/**
 * The service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export const Etcd: Context.Tag<Etcd, Etcd> = Context.GenericTag<Etcd>("effect-etcd/Etcd")

/**
 * A duration written with its unit: `"30 seconds"`, `"1500 millis"`, `Duration.seconds(30)`,
 * `Duration.infinity` or `[seconds, nanos]`. It is `Duration.DurationInput` without its bare
 * `number` (milliseconds) and `bigint` (nanoseconds).
 *
 * The rule of the whole API: every duration it takes, an option or a parameter (a `ttl`,
 * a `timeout`, an `interval`, a delay), has this type, so that a bare number never compiles
 * there; only a name that carries its unit (`epochMillis`) takes a number. A bare number
 * used to mean milliseconds in a timeout (as in Effect) and seconds in a TTL (as in etcd),
 * so `{ ttl: 15, timeout: 30 }` was a lock on a 15-second lease that gave up after 30
 * milliseconds; now it does not compile, and a bare number given from JavaScript fails
 * with `EtcdInvalidArgument` naming the option. TTLs are rounded up to whole seconds, etcd's
 * unit; the TTLs in results stay numbers of seconds (`Lease.Grant.ttl`).
 *
 * Durations read from a `Config` (`Config.duration`) are `Duration`s, and fit.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import { Lock } from "effect-etcd"
 *
 * export const job = Effect.log("in the lock").pipe(
 *   Lock.withLock("jobs", { ttl: "15 seconds", timeout: Duration.seconds(30) })
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type DurationWithUnit = Exclude<Duration.DurationInput, number | bigint>

/**
 * How to reach and talk to the cluster. Every field is optional; the defaults are in
 * {@link defaults}.
 *
 * @since 0.1.0
 * @category models
 */
export interface EtcdOptions {
  /**
   * Members to talk to: `http://host:port`, `https://host:port` or `host:port`; a member
   * without a port is dialled on etcd's port 2379. A single string may list several,
   * comma-separated. An endpoint with a user name or password in it (`http://user:pw@host`)
   * is refused with `EtcdInvalidArgument`, whose message shows it as `http://***@host`: give
   * credentials as `username` and `password`.
   */
  readonly endpoints?: ReadonlyArray<string> | string | undefined
  /** User name for etcd's auth; with `password`, every call carries a token. */
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  /** TLS settings; implied by `https://` endpoints. */
  readonly tls?: TlsOptions | undefined
  /** How long building the layer waits for a member to answer. */
  readonly connectTimeout?: DurationWithUnit | undefined
  /**
   * The deadline of every unary call unless the call sets its own. A call still in flight
   * at its deadline is cancelled and fails with `EtcdTimeout` within a few milliseconds after
   * it (one timer serves every call in flight). The server is told the time left
   * (`grpc-timeout`), so that a member that stalled drops the call instead of running it
   * when it comes back. It bounds the watch stream's wait for a silent member too: a stream
   * quiet for half of it is sent a progress request, and left for another member when
   * nothing at all answers within the other half (see `Watch.requestProgress`).
   */
  readonly requestTimeout?: DurationWithUnit | undefined
  /**
   * Delays between attempts of calls that are safe to retry: reads on transient
   * failures, writes only when they provably never reached a server.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown, EtcdError.EtcdError> | undefined
  /**
   * Whether a member cut off from its cluster's leader may answer (etcd's `hasleader`
   * metadata, Go's `clientv3.WithRequireLeader`). When required, such a member refuses the
   * call or the watch stream with `NoLeader` instead of serving stale data (a serializable
   * read) or holding it until its deadline (a linearizable read, a write), and the client
   * goes to another member: a read, and a write the member refused before proposing it, is
   * sent again there (per `retrySchedule`), and a watch resumes there from the revision after
   * the last one it delivered. A watch stream that was open when its member lost the leader
   * is canceled by etcd after about three election timeouts.
   *
   * It applies to the calls of the KV and Lease services (`Kv`, `Txn`, `Lease`) and to the
   * watches (a watch may say otherwise: `Watch.WatchOptions.requireLeader`). Administration
   * calls (`Maintenance`, `Cluster`, `Auth`) never require one: they are how one learns that a
   * member has lost its leader. When absent: watches (and lease keepalives) require a leader,
   * unary calls do not, so that a serializable read can still be served by a member on its
   * own.
   *
   * @since 0.2.0
   */
  readonly requireLeader?: boolean | undefined
  /** gRPC keepalive pings, which detect a dead or paused member on an idle stream. */
  readonly keepAliveTime?: DurationWithUnit | undefined
  readonly keepAliveTimeout?: DurationWithUnit | undefined
  /** The largest request the client sends (etcd's own limit is 1.5 MiB by default). */
  readonly maxSendMessageBytes?: number | undefined
  /**
   * The largest answer the client receives, in bytes: 2 GiB - 1 by default, as Go's
   * clientv3. A larger answer fails the call with `ResponseTooLarge` (with the limit);
   * the client's memory follows the bytes received, not the size an answer announces.
   */
  readonly maxReceiveMessageBytes?: number | undefined
  /**
   * Endpoint discovery (clientv3's `AutoSyncInterval`), off by default: every interval the
   * client asks the cluster for its members and from then on talks to their client URLs
   * (learners left out) instead of the endpoints it was given, so it keeps working after
   * the members it started with were removed. A failed refresh keeps the last list.
   */
  readonly autoSyncInterval?: DurationWithUnit | undefined
  /** Attributes added to every RPC span. */
  readonly spanAttributes?: Readonly<Record<string, unknown>> | undefined
  /** Confine the client to the keys under this prefix (see {@link namespaced}). */
  readonly namespace?: Bytes | undefined
  /**
   * Automatic read batching: reads issued while others are in flight (from any number of
   * fibers) go to the server together, as one read-only Txn of at most `maxOps` reads
   * (keep it at or below the server's `--max-txn-ops`, 128 by default). A lone read is
   * sent at once. Each caller gets its own result or its own error. `false` turns it off.
   */
  readonly readBatching?: false | {
    readonly maxOps?: number | undefined
    /**
     * The most read calls in flight at once (default 2). A read that finds none in flight
     * goes at once; the others wait for a call to come back, or go as a new batch once a
     * quarter of `maxOps` wait.
     */
    readonly maxBatchesInFlight?: number | undefined
  } | undefined
  /**
   * Records the client's metrics (`EtcdMetrics`): call durations per method, status and
   * member, retries, failovers, connections, watchers and their lag, leases, lock waits,
   * read batches and mirrors, as Effect `Metric`s with OpenTelemetry's names, which any
   * Effect metrics backend reads (`@effect/opentelemetry`'s `NodeSdk` exports them). Off by
   * default: their cost could not be shown to stay within 3% of the client's CPU per
   * operation (see docs/metrics.md); off, each hook is one boolean check.
   * `{ electionNames: true }` adds a gauge per election name (`etcd.client.election.leader`),
   * left out otherwise to bound the number of series.
   *
   * @since 0.2.0
   */
  readonly metrics?: boolean | { readonly electionNames?: boolean | undefined } | undefined
}

/**
 * The default retry schedule with other bounds: exponential backoff from `base` (50 ms),
 * capped at `cap` (2 s), with jitter, at most `maxRetries` (8) retries. A `base` or `cap`
 * that cannot be right (a bare number among them) makes a schedule that {@link make}
 * refuses with `EtcdInvalidArgument` naming it.
 *
 * @since 0.1.0
 * @category retries
 */
export const retrySchedule = (options: {
  readonly base?: DurationWithUnit | undefined
  readonly cap?: DurationWithUnit | undefined
  readonly maxRetries?: number | undefined
}): Schedule.Schedule<unknown, EtcdError.EtcdError> => {
  const problem = Validate.problemOf(() =>
    Validate.options("options", options) ??
      Validate.duration("retrySchedule.base", options.base) ??
      Validate.duration("retrySchedule.cap", options.cap)
  )
  if (problem !== undefined) {
    const refused: Schedule.Schedule<unknown, EtcdError.EtcdError> = Schedule.stop
    refusedSchedules.set(refused, problem)
    return refused
  }
  return Schedule.exponential(options.base ?? Duration.millis(50)).pipe(
    Schedule.union(Schedule.spaced(options.cap ?? Duration.seconds(2))),
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(options.maxRetries ?? 8))
  ) as Schedule.Schedule<unknown, EtcdError.EtcdError>
}

/** The schedules `retrySchedule` made from options that cannot be right, with the problem. */
const refusedSchedules = new WeakMap<Schedule.Schedule<unknown, EtcdError.EtcdError>, EtcdError.EtcdInvalidArgument>()

/**
 * The defaults, in one place.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  endpoints: ["http://127.0.0.1:2379"] as ReadonlyArray<string>,
  connectTimeout: Duration.seconds(5),
  requestTimeout: Duration.seconds(10),
  retrySchedule: retrySchedule({}),
  keepAliveTime: Duration.seconds(10),
  keepAliveTimeout: Duration.seconds(5),
  maxSendMessageBytes: 2 * 1024 * 1024,
  maxReceiveMessageBytes: 2 ** 31 - 1,
  readBatching: { maxOps: 128, maxBatchesInFlight: 2 }
} as const

const parseEndpoints = (
  input: EtcdOptions["endpoints"]
): Effect.Effect<ReadonlyArray<Endpoint>, EtcdError.EtcdInvalidArgument> => {
  const list = input === undefined
    ? defaults.endpoints
    : typeof input === "string"
    ? splitList(input)
    : input.flatMap(splitList)
  if (list.length === 0) {
    return Effect.fail(new EtcdError.EtcdInvalidArgument({ reason: "no etcd endpoint given" }))
  }
  const endpoints: Array<Endpoint> = []
  for (const raw of list) {
    const parsed = parseEndpoint(raw)
    if (typeof parsed === "string") return Effect.fail(new EtcdError.EtcdInvalidArgument({ reason: parsed }))
    endpoints.push(parsed)
  }
  return Effect.succeed(endpoints)
}

const batchingSettings = (option: EtcdOptions["readBatching"]) =>
  option === false ? undefined : {
    maxOps: option?.maxOps ?? defaults.readBatching.maxOps,
    maxBatchesInFlight: option?.maxBatchesInFlight ?? defaults.readBatching.maxBatchesInFlight
  }

/** Every option checked before anything is built: a bad one fails with `EtcdInvalidArgument` naming it. */
const optionsProblem = (options: EtcdOptions): Validate.Problem => {
  const endpoints: unknown = options.endpoints
  const batching: unknown = options.readBatching
  return Validate.first(
    () => Validate.options("options", options),
    () =>
      endpoints === undefined || typeof endpoints === "string" ||
        (Array.isArray(endpoints) && endpoints.every((endpoint) => typeof endpoint === "string"))
        ? undefined
        : Validate.invalid("endpoints", endpoints, "a string or an array of strings"),
    () =>
      options.username === undefined || typeof options.username === "string"
        ? undefined
        : Validate.invalid("username", options.username, "a string"),
    () =>
      options.password === undefined || Redacted.isRedacted(options.password)
        ? undefined
        : Validate.invalid("password", "(not shown)", "a Redacted string (Redacted.make(password))"),
    () => Validate.options("tls", options.tls),
    () => Validate.duration("connectTimeout", options.connectTimeout),
    () => Validate.duration("requestTimeout", options.requestTimeout),
    () => Validate.duration("keepAliveTime", options.keepAliveTime),
    () => Validate.duration("keepAliveTimeout", options.keepAliveTimeout),
    () => Validate.duration("autoSyncInterval", options.autoSyncInterval),
    () => Validate.flag("requireLeader", options.requireLeader),
    () =>
      options.metrics === undefined || typeof options.metrics === "boolean"
        ? undefined
        : Validate.first(
          () => Validate.options("metrics", options.metrics),
          () => Validate.flag("metrics.electionNames", (options.metrics as { electionNames?: unknown }).electionNames)
        ),
    () => Validate.count("maxSendMessageBytes", options.maxSendMessageBytes, 1),
    () => Validate.count("maxReceiveMessageBytes", options.maxReceiveMessageBytes, 1),
    () =>
      options.retrySchedule === undefined
        ? undefined
        : Schedule.isSchedule(options.retrySchedule)
        ? refusedSchedules.get(options.retrySchedule)
        : Validate.invalid("retrySchedule", options.retrySchedule, "a Schedule"),
    () => Validate.options("spanAttributes", options.spanAttributes),
    () => options.namespace === undefined ? undefined : Validate.bytes("namespace", options.namespace),
    () =>
      batching === undefined || batching === false ? undefined : Validate.first(
        () => Validate.options("readBatching", batching),
        () => Validate.count("readBatching.maxOps", (batching as { maxOps?: unknown }).maxOps, 1),
        () =>
          Validate.count(
            "readBatching.maxBatchesInFlight",
            (batching as { maxBatchesInFlight?: unknown }).maxBatchesInFlight,
            1
          )
      )
  )
}

/**
 * Connects to etcd. The client is usable once one member has answered within
 * `connectTimeout` (and, with credentials, once they were accepted); otherwise this
 * fails with `EtcdConnectionFailed` giving each endpoint's reason, or `EtcdAuthFailed`. An option
 * that cannot be right (a zero, negative or unparsable duration, a duration given as a
 * bare number, which has no unit (see {@link DurationWithUnit}), a count that is not a
 * positive integer, ...) fails with `EtcdInvalidArgument` naming it, before anything is dialled.
 *
 * When the scope closes, the client first releases what it still holds for scopes that
 * outlive it (leases of `Lease.make`, keys of `Lock.make`, see {@link addFinalizer}),
 * ends its watches with `ClientClosed`, then closes its channels. Any call made
 * afterwards fails at once with `ClientClosed`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: EtcdOptions = {}
): Effect.Effect<
  Etcd,
  EtcdError.ConnectError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    yield* Validate.check(() => optionsProblem(options))
    const endpoints = yield* parseEndpoints(options.endpoints)
    const secure = options.tls !== undefined || endpoints.some((endpoint) => endpoint.secure)
    const tlsContext = yield* secureContext(secure, options.tls)
    const connectTimeout = Duration.decode(options.connectTimeout ?? defaults.connectTimeout)
    const auth = options.username !== undefined && options.password !== undefined
      ? Option.some({ username: options.username, password: options.password })
      : Option.none()
    const maxSendMessageBytes = options.maxSendMessageBytes ?? defaults.maxSendMessageBytes
    const maxReceiveMessageBytes = options.maxReceiveMessageBytes ?? defaults.maxReceiveMessageBytes
    const transport = yield* Transport.make({
      endpoints,
      secureContext: tlsContext,
      tlsConnect: connectOptions(secure, options.tls),
      channelOptions: {
        "grpc.keepalive_time_ms": Duration.toMillis(options.keepAliveTime ?? defaults.keepAliveTime),
        "grpc.keepalive_timeout_ms": Duration.toMillis(options.keepAliveTimeout ?? defaults.keepAliveTimeout),
        // etcd refuses pings on a connection without streams (GOAWAY "too_many_pings"):
        // connections are pinged only while calls or streams are open on them
        "grpc.keepalive_permit_without_calls": 0,
        "grpc.max_send_message_length": maxSendMessageBytes,
        "grpc.max_receive_message_length": maxReceiveMessageBytes,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 2_000,
        ...(options.tls?.serverName === undefined ? {} : {
          "grpc.ssl_target_name_override": options.tls.serverName,
          "grpc.default_authority": options.tls.serverName
        })
      },
      maxSendMessageBytes,
      maxReceiveMessageBytes,
      requestTimeout: Duration.decode(options.requestTimeout ?? defaults.requestTimeout),
      retrySchedule: options.retrySchedule ?? defaults.retrySchedule,
      auth,
      spanAttributes: options.spanAttributes ?? {},
      requireLeader: options.requireLeader ?? false,
      metrics: Metrics.settingsOf(options.metrics)
    })
    yield* transport.probe(connectTimeout).pipe(
      Effect.catchAll((error): Effect.Effect<never, EtcdError.EtcdConnectionFailed | EtcdError.EtcdTlsError> => {
        const tls = error.failures.find((failure) => failure.error._tag === "EtcdTlsError")
        return Effect.fail(tls?.error._tag === "EtcdTlsError" ? tls.error : error)
      })
    )
    if (Option.isSome(auth)) {
      yield* transport.refreshToken(transport.token()).pipe(
        Effect.catchAll((error): Effect.Effect<never, EtcdError.EtcdConnectionFailed | EtcdError.EtcdAuthFailed> =>
          error._tag === "EtcdAuthFailed"
            ? Effect.fail(error)
            : Effect.fail(
              new EtcdError.EtcdConnectionFailed({
                endpoints: endpoints.map((endpoint) => endpoint.url),
                timeout: connectTimeout,
                failures: [{ endpoint: transport.current().url, address: transport.current().address, error }]
              })
            )
        )
      )
    }
    if (options.autoSyncInterval !== undefined) {
      const interval = Duration.decode(options.autoSyncInterval)
      yield* syncMembers(transport).pipe(
        Effect.catchAll((error) => Effect.logDebug("the member list could not be refreshed", error)),
        Effect.delay(interval),
        Effect.forever,
        Effect.annotateLogs({ module: "Etcd", task: "autoSync" }),
        Effect.interruptible,
        Effect.forkScoped
      )
    }
    const etcd: Etcd = {
      [TypeId]: TypeId,
      endpoints: endpoints.map((endpoint) => endpoint.url),
      protocol: Parts.wrap({
        kv: yield* KvRpc.make(transport, batchingSettings(options.readBatching)),
        watches: yield* WatchHub.makeShared(transport, {
          auth: Option.isSome(auth),
          requireLeader: options.requireLeader ?? true
        }),
        leases: LeaseRpc.make(transport),
        keepAlives: yield* KeepAliveHub.make(transport),
        transport,
        metrics: transport.metrics ?? Metrics.disabled,
        // made last, so that its finalizer runs first: what the client still has to
        // release is released while the channels are open
        resources: yield* Resources.make
      })
    }
    return options.namespace === undefined ? etcd : namespaced(etcd, options.namespace)
  }).pipe(Effect.withSpan("Etcd.make", { captureStackTrace: false }))

/** Asks the cluster for its members and makes their client URLs the ones calls go to. */
const syncMembers = (transport: Transport.Transport): Effect.Effect<void, EtcdError.EtcdError> =>
  Effect.flatMap(
    transport.unary(methods.cluster.memberList, {}, { idempotency: "repeatable" }),
    (response) => {
      const endpoints: Array<Endpoint> = []
      for (const member of response.members) {
        // a member not started yet has no name; a learner serves no client calls
        if (member.name === "" || member.isLearner) continue
        for (const url of member.clientURLs) {
          const parsed = parseEndpoint(url)
          if (typeof parsed !== "string") endpoints.push(parsed)
        }
      }
      return transport.setEndpoints(endpoints)
    }
  )

/**
 * Refreshes the client's member list now (clientv3 `Sync`): from then on calls go to the
 * client URLs of the cluster's members, learners left out. See `autoSyncInterval` to do
 * it periodically.
 *
 * @since 0.1.0
 * @category endpoints
 */
export const syncEndpoints: Effect.Effect<void, EtcdError.CallError, Etcd> = Effect.flatMap(
  Etcd,
  (etcd) => syncMembers(Parts.of(etcd).transport)
).pipe(EtcdError.within("call"))

/**
 * The members the client's calls may go to: the endpoints it was given, or, after a
 * sync, the client URLs of the cluster's members.
 *
 * @since 0.1.0
 * @category endpoints
 */
export const memberEndpoints: Effect.Effect<ReadonlyArray<string>, never, Etcd> = Effect.map(
  Etcd,
  (etcd) => Parts.of(etcd).transport.memberEndpoints().map((endpoint) => endpoint.url)
)

/**
 * The client as a layer: connected when the layer is built, closed with its scope.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: EtcdOptions = {}
): Layer.Layer<
  Etcd,
  EtcdError.ConnectError
> => Layer.scoped(Etcd, make(options))

/**
 * TLS material in files: the CA, and the client certificate and key for mTLS.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsFiles {
  readonly caFile?: string | undefined
  readonly certFile?: string | undefined
  readonly keyFile?: string | undefined
  /** The name to verify in the members' certificates instead of the endpoint's host. */
  readonly serverName?: string | undefined
}

/**
 * Reads TLS material from files through the platform's `FileSystem`. A missing or
 * unreadable file fails with `EtcdTlsError` naming it; the key is kept `Redacted`.
 *
 * @example
 * ```ts
 * import * as NodeContext from "@effect/platform-node/NodeContext"
 * import { Effect, Layer } from "effect"
 * import { Etcd } from "effect-etcd"
 *
 * const EtcdLive = Layer.unwrapEffect(Effect.map(
 *   Etcd.readTlsFiles({ caFile: "/etc/etcd/ca.crt", certFile: "client.crt", keyFile: "client.key" }),
 *   (tls) => Etcd.layer({ endpoints: "https://10.0.0.1:2379", tls })
 * )).pipe(Layer.provide(NodeContext.layer))
 * ```
 *
 * @since 0.1.0
 * @category tls
 */
export const readTlsFiles = (
  files: TlsFiles
): Effect.Effect<TlsOptions, EtcdError.EtcdTlsError, FileSystem.FileSystem> =>
  Effect.flatMap(fileSystem, (fs) => readTlsFilesWith(fs, files))

const readTlsFilesWith = (
  fs: FileSystem.FileSystem,
  files: TlsFiles
): Effect.Effect<TlsOptions, EtcdError.EtcdTlsError> =>
  Effect.gen(function*() {
    const read = (what: string, file: string | undefined) =>
      file === undefined ? Effect.succeed(undefined) : fs.readFileString(file).pipe(
        Effect.mapError((cause) =>
          new EtcdError.EtcdTlsError({ endpoints: [], reason: `cannot read the ${what} file ${file}`, cause })
        )
      )
    const ca = yield* read("CA", files.caFile)
    const cert = yield* read("client certificate", files.certFile)
    const key = yield* read("client key", files.keyFile)
    return {
      ca,
      cert,
      key: key === undefined ? undefined : Redacted.make(key),
      serverName: files.serverName
    }
  })

/**
 * What a `Config` can describe: the options, with TLS material as files or PEM text.
 *
 * @since 0.1.0
 * @category models
 */
export interface EtcdConfig extends Omit<EtcdOptions, "tls"> {
  readonly tls?: TlsOptions | TlsFiles | undefined
}

const isTlsFiles = (tls: TlsOptions | TlsFiles): tls is TlsFiles =>
  "caFile" in tls || "certFile" in tls || "keyFile" in tls

/**
 * The client as a layer, its options read from a `Config`. TLS files are read through
 * the platform's `FileSystem` (provide `NodeContext.layer` or `NodeFileSystem.layer`);
 * it is taken from the context only when the config names a file, so the layer requires
 * none (a config naming files with no `FileSystem` provided fails with `EtcdTlsError`).
 *
 * @example
 * ```ts
 * import * as NodeContext from "@effect/platform-node/NodeContext"
 * import { Layer } from "effect"
 * import { Etcd } from "effect-etcd"
 *
 * // ETCD_ENDPOINTS, ETCD_USERNAME, ETCD_PASSWORD, ETCD_CA_FILE, ... (see Etcd.config)
 * const EtcdLive = Etcd.layerConfig(Etcd.config).pipe(Layer.provide(NodeContext.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<EtcdConfig> | Config.Config.Wrap<EtcdConfig>
): Layer.Layer<
  Etcd,
  | ConfigError.ConfigError
  | EtcdError.EtcdConnectionFailed
  | EtcdError.EtcdAuthFailed
  | EtcdError.EtcdInvalidArgument
  | EtcdError.EtcdTlsError
> =>
  Layer.scoped(
    Etcd,
    Effect.gen(function*() {
      const { tls, ...options } = yield* (Config.isConfig(config) ? config : Config.unwrap(config))
      const material = tls === undefined ? undefined : isTlsFiles(tls) ? yield* readConfigTlsFiles(tls) : tls
      return yield* make({ ...options, tls: material })
    })
  )

/** The TLS files of a config, read with the `FileSystem` of the context, which must then be there. */
const readConfigTlsFiles = (files: TlsFiles): Effect.Effect<TlsOptions, EtcdError.EtcdTlsError> =>
  Effect.flatMap(fileSystemOption, (fs) =>
    fs._tag === "Some" ? readTlsFilesWith(fs.value, files) : Effect.fail(
      new EtcdError.EtcdTlsError({
        endpoints: [],
        reason: "the config names TLS files, but no FileSystem is provided to read them " +
          "(provide NodeContext.layer or NodeFileSystem.layer)"
      })
    ))

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * Options from the environment:
 *
 * | variable | meaning |
 * | --- | --- |
 * | `ETCD_ENDPOINTS` | comma-separated endpoints (default `http://127.0.0.1:2379`) |
 * | `ETCD_USERNAME`, `ETCD_PASSWORD` | credentials (the password is `Redacted`) |
 * | `ETCD_CA_FILE` | the CA of the members' certificates (implies TLS) |
 * | `ETCD_CERT_FILE`, `ETCD_KEY_FILE` | client certificate and key, for mTLS |
 * | `ETCD_TLS_SERVER_NAME` | the name to verify in the members' certificates |
 * | `ETCD_NAMESPACE` | confine the client to the keys under this prefix |
 * | `ETCD_CONNECT_TIMEOUT`, `ETCD_REQUEST_TIMEOUT` | durations such as `5 seconds` |
 * | `ETCD_MAX_RETRIES` | retries of a retryable call (default 8; 0 turns retries off) |
 * | `ETCD_AUTO_SYNC_INTERVAL` | refresh the member list this often (see `autoSyncInterval`; off by default) |
 * | `ETCD_REQUIRE_LEADER` | `true` or `false`: see `requireLeader` (unset by default) |
 * | `ETCD_METRICS` | `true` or `false`: see `metrics` (off by default) |
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<EtcdConfig> = Config.all({
  endpoints: Config.string("ETCD_ENDPOINTS").pipe(Config.withDefault(defaults.endpoints.join(","))),
  username: optional(Config.string("ETCD_USERNAME")),
  password: optional(Config.redacted("ETCD_PASSWORD")),
  caFile: optional(Config.string("ETCD_CA_FILE")),
  certFile: optional(Config.string("ETCD_CERT_FILE")),
  keyFile: optional(Config.string("ETCD_KEY_FILE")),
  serverName: optional(Config.string("ETCD_TLS_SERVER_NAME")),
  namespace: optional(Config.string("ETCD_NAMESPACE")),
  connectTimeout: optional(Config.duration("ETCD_CONNECT_TIMEOUT")),
  requestTimeout: optional(Config.duration("ETCD_REQUEST_TIMEOUT")),
  autoSyncInterval: optional(Config.duration("ETCD_AUTO_SYNC_INTERVAL")),
  requireLeader: optional(Config.boolean("ETCD_REQUIRE_LEADER")),
  metrics: optional(Config.boolean("ETCD_METRICS")),
  maxRetries: optional(
    Config.integer("ETCD_MAX_RETRIES").pipe(
      Config.validate({ message: "ETCD_MAX_RETRIES must be 0 or more", validation: (n) => n >= 0 })
    )
  )
}).pipe(Config.map(({ caFile, certFile, keyFile, maxRetries, serverName, ...values }): EtcdConfig => ({
  ...values,
  tls: caFile === undefined && certFile === undefined && keyFile === undefined && serverName === undefined
    ? undefined
    : { caFile, certFile, keyFile, serverName },
  retrySchedule: maxRetries === undefined ? undefined : retrySchedule({ maxRetries })
})))

/**
 * Adds a finalizer that talks to etcd (revokes a lease, deletes a key) and must run while
 * the client can still reach the server: it runs when the current scope closes or, if
 * the client closes first, just before the client's channels close; whichever comes
 * first, and once. `Lease.make` and `Lock.make` release through it, so their leases and
 * keys are released whatever the order in which scopes and layers were composed (even
 * `Effect.scoped(program.pipe(Effect.provide(Etcd.layer(...))))`, where the layer closes
 * first). The finalizer runs with the context of this call (a namespaced client stays
 * namespaced). Fails with `ClientClosed` when the client is closed already.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd, Kv } from "effect-etcd"
 *
 * const announce = Effect.gen(function*() {
 *   yield* Kv.put("members/node-1", "up")
 *   yield* Etcd.addFinalizer(Effect.ignore(Kv.delete("members/node-1", { timeout: "2 seconds" })))
 * })
 * ```
 *
 * @since 0.1.0
 * @category resources
 */
export const addFinalizer = <R>(
  finalizer: Effect.Effect<void, never, R>
): Effect.Effect<void, EtcdError.ClientClosed, Etcd | Scope.Scope | R> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.flatMap(
      Effect.context<R>(),
      (context) => Parts.of(etcd).resources.register(Effect.provide(finalizer, context))
    ))

/**
 * The endpoint of the member the client sends its calls to now. It changes when that
 * member fails or stalls; useful in logs, and in tests that stop "the member in use".
 *
 * @since 0.1.0
 * @category accessors
 */
export const currentEndpoint: Effect.Effect<string, never, Etcd> = Effect.map(
  Etcd,
  (etcd) => Parts.of(etcd).transport.current().url
)

/**
 * The same client confined to the keys under `prefix`, like clientv3's namespace package:
 * every key, range and compare of `Kv`, `Txn`, `Watch`, `Lease.timeToLive` and `Lock` gets
 * the prefix on the way out, and every key that comes back (values, previous values,
 * watch events, lease keys) loses it. Ranges and prefixes, the whole keyspace included,
 * stop at the end of the namespace. Namespaces nest: `namespaced(namespaced(etcd, "a/"), "b/")`
 * is the namespace `a/b/`. Both clients share one connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Etcd, Kv } from "effect-etcd"
 *
 * const program = Effect.gen(function*() {
 *   yield* Kv.put("mode", "primary")          // writes tenants/acme/mode
 *   return yield* Kv.getPrefix("")            // only the keys under tenants/acme/
 * }).pipe(Etcd.withNamespace("tenants/acme/"))
 * ```
 *
 * @since 0.1.0
 * @category namespaces
 */
export const namespaced: {
  (prefix: Bytes): (etcd: Etcd) => Etcd
  (etcd: Etcd, prefix: Bytes): Etcd
} = dual(2, (etcd: Etcd, prefix: Bytes): Etcd => {
  const bytes = toBuffer(prefix)
  if (bytes.length === 0) return etcd
  const namespace = etcd.namespace === undefined ? bytes : Buffer.concat([etcd.namespace, bytes])
  const parts = Parts.of(etcd)
  return { ...etcd, protocol: Parts.wrap({ ...parts, ...Namespace.make(bytes, parts) }), namespace }
})

/**
 * Runs an effect with the client of its context confined to the keys under `prefix`
 * (see {@link namespaced}). A prefix that is neither text nor bytes fails with
 * `EtcdInvalidArgument`.
 *
 * @since 0.1.0
 * @category namespaces
 */
export const withNamespace: {
  (
    prefix: Bytes
  ): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | EtcdError.EtcdInvalidArgument, R | Etcd>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    prefix: Bytes
  ): Effect.Effect<A, E | EtcdError.EtcdInvalidArgument, R | Etcd>
} = dual(
  2,
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    prefix: Bytes
  ): Effect.Effect<A, E | EtcdError.EtcdInvalidArgument, R | Etcd> =>
    Effect.zipRight(
      Validate.check(() => Validate.bytes("namespace", prefix)),
      Effect.updateService(effect, Etcd, namespaced(prefix))
    )
)

/**
 * A layer that replaces the client in the context by its namespaced form (see
 * {@link namespaced}).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Etcd } from "effect-etcd"
 *
 * const TenantEtcd = Etcd.layerNamespace("tenants/acme/").pipe(
 *   Layer.provide(Etcd.layerConfig(Etcd.config))
 * )
 * ```
 *
 * @since 0.1.0
 * @category namespaces
 */
export const layerNamespace = (prefix: Bytes): Layer.Layer<Etcd, EtcdError.EtcdInvalidArgument, Etcd> =>
  Layer.effect(
    Etcd,
    Effect.zipRight(Validate.check(() => Validate.bytes("namespace", prefix)), Effect.map(Etcd, namespaced(prefix)))
  )
