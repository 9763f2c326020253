/**
 * An in-memory etcd: the `Etcd` service without a server, for tests.
 *
 * `EtcdMemory.layer()` provides `Etcd` (so `Kv`, `Txn`, `Lease`, `Lock` and `Watch` run on it
 * unchanged) and `EtcdMemory`, the test's handle on it. It keeps etcd's semantics: an MVCC
 * store with one revision per write txn, create/mod revisions and versions, ranges with
 * every option, txn compares and nested txns, etcd's limits (`TooManyOps`, `DuplicateKey`,
 * `RequestTooLarge`), compaction (`Compacted` with the compact revision), leases, and
 * watches delivered in revision order.
 *
 * Time is Effect's `Clock`, taken when the layer is built: built inside a test with the
 * `TestClock`, a 10 second lease expires (and its keys go, in one revision) when the test
 * calls `TestClock.adjust("11 seconds")`. A lease kept alive is held by the store, at no
 * clock cost, while no fault is aimed at keepalives; then they run on the same clock.
 *
 * It answers as a default etcd 3.4: TTLs of at least 2 seconds (`minLeaseTtl`), time to
 * live rounded down, errors naming the method as `/etcdserverpb.Lease/LeaseRevoke`, every
 * write applied after the event loop's next turn. It expires leases to the millisecond,
 * where etcd checks about every 500 ms (see the guide's docs/testing-your-service.md).
 *
 * Fault hooks make calls fail ({@link failNext}) or hang ({@link hangFor}, {@link hangUntil})
 * so that retry and loss paths can be tested.
 *
 * @example
 * ```ts
 * import { Effect, TestClock } from "effect"
 * import { EtcdMemory, Kv, Lease } from "effect-etcd"
 *
 * const program = Effect.gen(function*() {
 *   const lease = yield* Lease.grant("10 seconds")
 *   yield* Kv.put("services/api/node-1", "10.0.0.7:8080", { lease: lease.id })
 *   yield* TestClock.adjust("11 seconds")
 *   return yield* Kv.get("services/api/node-1") // Option.none()
 * }).pipe(Effect.provide(EtcdMemory.layer()))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { type DurationWithUnit, Etcd, TypeId as EtcdTypeId } from "./Etcd.js"
import type * as EtcdError from "./EtcdError.js"
import * as Metrics from "./internal/base/metrics.js"
import * as Validate from "./internal/data/validate.js"
import * as Service from "./internal/memory/service.js"
import { defaultLimits } from "./internal/memory/store.js"
import * as Protocol from "./internal/rpc/protocol.js"
import * as Resources from "./internal/rpc/resources.js"

/**
 * The calls a fault can be aimed at: the KV RPCs, the Lease RPCs (keepalives included:
 * `leaseKeepAlive` is what keeps a `Lease.make` lease alive) and the creation of watchers.
 *
 * @since 0.1.0
 * @category models
 */
export type Method =
  | "range"
  | "put"
  | "deleteRange"
  | "txn"
  | "compact"
  | "leaseGrant"
  | "leaseRevoke"
  | "leaseTimeToLive"
  | "leaseLeases"
  | "leaseKeepAlive"
  | "watch"

/**
 * Options of the in-memory etcd.
 *
 * @since 0.1.0
 * @category models
 */
export interface EtcdMemoryOptions {
  /** etcd's `--max-txn-ops` (default 128). */
  readonly maxTxnOps?: number | undefined
  /** etcd's `--max-request-bytes` (default 1.5 MiB). */
  readonly maxRequestBytes?: number | undefined
  /**
   * The least lease TTL granted (default `"2 seconds"`), rounded up to whole seconds: etcd
   * raises a smaller TTL to ceil(1.5 × its election timeout), 2 seconds with its default
   * `--election-timeout` of 1 second.
   */
  readonly minLeaseTtl?: DurationWithUnit | undefined
  /** How long a hung call waits before failing with `EtcdTimeout` (default 10 seconds, as `Etcd.layer`). */
  readonly requestTimeout?: DurationWithUnit | undefined
  /** How often a watcher with `progressNotify` hears of progress when nothing happens (etcd's 10 minutes). */
  readonly progressInterval?: DurationWithUnit | undefined
  /**
   * Records metrics as `Etcd.layer`'s `metrics` does (off by default): the calls are
   * measured on the member `memory` (`server.address`), the watches, leases and recipes
   * as against a server.
   *
   * @since 0.2.0
   */
  readonly metrics?: boolean | { readonly electionNames?: boolean | undefined } | undefined
}

/**
 * A test's handle on the in-memory etcd: its revisions and its fault hooks.
 *
 * @since 0.1.0
 * @category models
 */
export interface EtcdMemory {
  /** The store's current revision. */
  readonly revision: Effect.Effect<bigint>
  /** The revision up to which history was compacted (0 when never). */
  readonly compactRevision: Effect.Effect<bigint>
  /** The next `count` calls (of `methods`, or of any kind) fail with `error`. */
  readonly failNext: (
    count: number,
    error: EtcdError.EtcdError,
    options?: { readonly methods?: ReadonlyArray<Method> | undefined }
  ) => Effect.Effect<void>
  /**
   * Calls (of `methods`, or of any kind) made before the clock reads `epochMillis` wait
   * until then; a call whose own deadline comes first fails with `EtcdTimeout` (a write
   * with `AmbiguousOutcome`), as it would against a stalled server.
   */
  readonly hangUntil: (
    epochMillis: number,
    options?: { readonly methods?: ReadonlyArray<Method> | undefined }
  ) => Effect.Effect<void>
  /** Removes every pending fault. */
  readonly clearFaults: Effect.Effect<void>
}

/**
 * The tag of the test's handle.
 *
 * @since 0.1.0
 * @category tags
 */
export const EtcdMemory: Context.Tag<EtcdMemory, EtcdMemory> = Context.GenericTag<EtcdMemory>(
  "effect-etcd/EtcdMemory"
)

/**
 * Builds an in-memory etcd: the `Etcd` service and the handle. Its background fibers
 * (lease expiry, keepalives) run on the `Clock` of the context and end with the scope.
 * An option that cannot be right (a duration given as a bare number among them) fails
 * with `EtcdInvalidArgument` naming it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: EtcdMemoryOptions = {}
): Effect.Effect<{ readonly etcd: Etcd; readonly memory: EtcdMemory }, EtcdError.EtcdInvalidArgument, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Validate.check(() =>
      Validate.first(
        () => Validate.options("options", options),
        () => Validate.duration("minLeaseTtl", options.minLeaseTtl),
        () => Validate.duration("requestTimeout", options.requestTimeout),
        () => Validate.duration("progressInterval", options.progressInterval),
        () =>
          options.metrics === undefined || typeof options.metrics === "boolean"
            ? undefined
            : Validate.options("metrics", options.metrics)
      )
    )
    const parts = yield* Service.make({
      limits: {
        maxTxnOps: options.maxTxnOps ?? defaultLimits.maxTxnOps,
        maxRequestBytes: options.maxRequestBytes ?? defaultLimits.maxRequestBytes,
        minLeaseTtl: options.minLeaseTtl === undefined
          ? defaultLimits.minLeaseTtl
          : Math.ceil(Duration.toSeconds(Duration.decode(options.minLeaseTtl)) - 1e-9)
      },
      requestTimeout: Duration.decode(options.requestTimeout ?? Duration.seconds(10)),
      progressInterval: Duration.decode(options.progressInterval ?? Duration.minutes(10)),
      metrics: Metrics.settingsOf(options.metrics)
    })
    const etcd: Etcd = {
      [EtcdTypeId]: EtcdTypeId,
      endpoints: parts.transport.endpoints.map((endpoint) => endpoint.url),
      protocol: Protocol.wrap({
        kv: parts.kv,
        watches: parts.watches,
        leases: parts.leases,
        keepAlives: parts.keepAlives,
        transport: parts.transport,
        metrics: Metrics.settingsOf(options.metrics),
        // made last, so that its finalizer runs first: what the client still has to release
        // is released while the store still answers
        resources: yield* Resources.make
      })
    }
    const memory: EtcdMemory = {
      revision: Effect.sync(() => parts.store.revision),
      compactRevision: Effect.sync(() => parts.store.compactRevision),
      failNext: (count, error, options) => Effect.sync(() => parts.faults.failNext(count, error, options?.methods)),
      hangUntil: (epochMillis, options) => Effect.sync(() => parts.faults.hangUntil(epochMillis, options?.methods)),
      clearFaults: Effect.sync(() => parts.faults.clear())
    }
    return { etcd, memory }
  })

/**
 * The in-memory etcd as a layer providing `Etcd` and the `EtcdMemory` handle. A bad
 * option fails it with `EtcdInvalidArgument` (see {@link make}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: EtcdMemoryOptions = {}): Layer.Layer<Etcd | EtcdMemory, EtcdError.EtcdInvalidArgument> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ etcd, memory }) => Context.make(Etcd, etcd).pipe(Context.add(EtcdMemory, memory)))
  )

/**
 * Makes the next `count` calls (of `methods`, or of any kind) fail with `error`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EtcdError, EtcdMemory, Kv } from "effect-etcd"
 *
 * const flaky = EtcdMemory.failNext(2, new EtcdError.EtcdUnavailable({ endpoints: [], reason: "test" }), {
 *   methods: ["range"]
 * })
 * ```
 *
 * @since 0.1.0
 * @category faults
 */
export const failNext = (
  count: number,
  error: EtcdError.EtcdError,
  options?: { readonly methods?: ReadonlyArray<Method> | undefined }
): Effect.Effect<void, never, EtcdMemory> =>
  Effect.flatMap(EtcdMemory, (memory) => memory.failNext(count, error, options))

/**
 * Makes calls (of `methods`, or of any kind) hang until the clock reads `epochMillis`.
 *
 * @since 0.1.0
 * @category faults
 */
export const hangUntil = (
  epochMillis: number,
  options?: { readonly methods?: ReadonlyArray<Method> | undefined }
): Effect.Effect<void, never, EtcdMemory> =>
  Effect.flatMap(EtcdMemory, (memory) => memory.hangUntil(epochMillis, options))

/**
 * Makes calls (of `methods`, or of any kind) hang for `duration` of the clock from now. A
 * duration that cannot be right (a bare number among them) fails with `EtcdInvalidArgument`.
 *
 * @since 0.1.0
 * @category faults
 */
export const hangFor = (
  duration: DurationWithUnit,
  options?: { readonly methods?: ReadonlyArray<Method> | undefined }
): Effect.Effect<void, EtcdError.EtcdInvalidArgument, EtcdMemory> =>
  Effect.zipRight(
    Validate.check(() => Validate.duration("duration", duration, true)),
    Effect.flatMap(
      Effect.clockWith((clock) => clock.currentTimeMillis),
      (now) => hangUntil(now + Duration.toMillis(duration), options)
    )
  )

/**
 * Removes every pending fault.
 *
 * @since 0.1.0
 * @category faults
 */
export const clearFaults: Effect.Effect<void, never, EtcdMemory> = Effect.flatMap(
  EtcdMemory,
  (memory) => memory.clearFaults
)

/**
 * The store's current revision.
 *
 * @since 0.1.0
 * @category accessors
 */
export const revision: Effect.Effect<bigint, never, EtcdMemory> = Effect.flatMap(
  EtcdMemory,
  (memory) => memory.revision
)
