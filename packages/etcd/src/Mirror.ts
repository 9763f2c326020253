/**
 * Live mirrors: a local copy of the keys of a range that follows etcd (Kubernetes calls
 * this an informer; Go's clientv3 has `mirror.Syncer`). A mirror lists the range at one
 * revision, then watches it from the revision after, and applies every change to a local
 * map, so reads (`get`, `snapshot`) need no round trip. `changes` streams what it applies,
 * each change with its revision; `waitFor(revision)` waits until the mirror has reached a
 * revision, which gives read-your-writes after a put.
 *
 * When the watch cannot resume (its history was compacted during a long disconnect, or
 * the connection stayed down), the mirror lists the range again, replaces its map in one
 * step and emits one `Resynced` change saying what differed. Its memory is the map: no
 * history is kept. Build one with `Mirror.prefix(prefix)` (text keys and values) or
 * `Keyspace.mirror(keyspace)` (typed).
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Kv, Mirror } from "effect-etcd"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const config = yield* Mirror.prefix("config/")
 *   yield* config.ready                                   // the first list is in
 *   const { revision } = yield* Kv.put("config/mode", "fast")
 *   yield* config.waitFor(revision)
 *   const mode = yield* config.get("config/mode")        // Option.some("fast")
 *   const { values } = yield* config.snapshot            // ReadonlyMap<string, string>
 *   return { mode, size: values.size }
 * }))
 * ```
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Equivalence from "effect/Equivalence"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type DurationWithUnit, Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Metrics from "./internal/base/metrics.js"
import * as Printable from "./internal/base/printable.js"
import { toBuffer, toText } from "./internal/data/codec.js"
import * as Validate from "./internal/data/validate.js"
import * as Protocol from "./internal/rpc/protocol.js"
import * as KvCodec from "./internal/wire/kvCodec.js"
import * as KeyRange from "./KeyRange.js"
import type { Bytes } from "./KeyRange.js"
import type { KeyValue } from "./KeyValue.js"
import * as Watch from "./Watch.js"

/**
 * How a mirror reads the pairs of its range: the range, and how a stored pair decodes
 * into a key and a value (`Keyspace.mirror` and `Mirror.prefix` provide this).
 *
 * @since 0.1.0
 * @category models
 */
export interface Source<K, V> {
  readonly range: KeyRange.KeyRange
  readonly decode: (kv: KeyValue) => Either.Either<{ readonly key: K; readonly value: V }, EtcdError.EtcdDecodeError>
  /** The key alone, for deletes (which carry no value). */
  readonly decodeKey: (kv: KeyValue) => Either.Either<K, EtcdError.EtcdDecodeError>
  /** Whether two values are the same, to tell what a resync changed. */
  readonly equivalence: Equivalence.Equivalence<V>
  /** A faster decode of a listed pair from its bytes alone, for decodings that cannot fail. */
  readonly decodeBytes?: ((key: Uint8Array, value: Uint8Array) => { readonly key: K; readonly value: V }) | undefined
}

/**
 * Options of a mirror.
 *
 * @since 0.1.0
 * @category models
 */
export interface MirrorOptions {
  /** What to do with an entry that does not decode: fail the mirror (default), or leave it out. */
  readonly onDecodeError?: "fail" | "skip" | undefined
  /** Keys per page when listing the range (default 5000). */
  readonly pageSize?: number | undefined
  /**
   * How many changes may wait for the slowest consumer of `changes` (default 1024). When
   * full, the mirror waits for it (its watcher is then suspended on the server, without loss).
   */
  readonly changesBuffer?: number | undefined
  /**
   * The longest pause between attempts to list again after the connection failed (default
   * 5 seconds). One that cannot be right (a bare number among them) stops the mirror at
   * once: `ready` and its reads fail with `EtcdInvalidArgument`.
   */
  readonly maxRetryDelay?: DurationWithUnit | undefined
}

/**
 * The mirror's map and the revision it reflects. The map is never changed afterwards:
 * the mirror copies it before its next change.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot<K, V> {
  readonly values: ReadonlyMap<K, V>
  readonly revision: bigint
}

/**
 * A mirrored value with etcd's metadata of its key, as a mirror made with
 * `{ metadata: true }` (or on a {@link withMetadata} source) holds it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Entry<V> {
  readonly value: V
  /** The revision of the key's creation (of its current generation). */
  readonly createRevision: bigint
  /** The revision of the key's last change. */
  readonly modRevision: bigint
  /** How many times the key was written since its creation (1 after the creation). */
  readonly version: number
  /** The lease the key is attached to, 0n when none. */
  readonly lease: bigint
}

/**
 * Options of `Mirror.prefix` and `Keyspace.mirror`: a mirror's options, and whether its
 * values carry their keys' metadata.
 *
 * @since 0.2.0
 * @category models
 */
export interface PrefixOptions extends MirrorOptions {
  /**
   * Hold each value as an {@link Entry}, with its key's `createRevision`, `modRevision`,
   * `version` and `lease`, so that `get`, `snapshot` and `changes` give them (default
   * `false`: the values alone, which costs less memory per key).
   */
  readonly metadata?: boolean | undefined
}

/**
 * A change the mirror applied: a put (`previous` is the value it replaced), a delete, or
 * a resync after which `puts` and `deletes` say what differed from the map before it.
 *
 * @since 0.1.0
 * @category models
 */
export type Change<K, V> =
  | {
    readonly _tag: "Put"
    readonly key: K
    readonly value: V
    readonly previous: Option.Option<V>
    readonly revision: bigint
  }
  | { readonly _tag: "Delete"; readonly key: K; readonly previous: V; readonly revision: bigint }
  | {
    readonly _tag: "Resynced"
    readonly revision: bigint
    readonly puts: ReadonlyArray<{ readonly key: K; readonly value: V; readonly previous: Option.Option<V> }>
    readonly deletes: ReadonlyArray<{ readonly key: K; readonly previous: V }>
  }

/**
 * A live local copy of a range. Reads wait for the first list (`ready`); every call fails
 * with the mirror's error once it has stopped (an entry that does not decode under
 * `"fail"`, a permission refused, ...). Connection failures and compaction never stop it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Mirror<K, V> {
  /** The value of a key in the local map. */
  readonly get: (key: K) => Effect.Effect<Option.Option<V>, EtcdError.MirrorError>
  /** The whole map and the revision it reflects. */
  readonly snapshot: Effect.Effect<Snapshot<K, V>, EtcdError.MirrorError>
  /** The revision the map reflects (0 before the first list). */
  readonly revision: Effect.Effect<bigint>
  /** The changes applied from the moment the Stream starts, each once the map has it. */
  readonly changes: Stream.Stream<Change<K, V>, EtcdError.MirrorError>
  /**
   * The changes applied from the moment this effect runs, as `changes` gives them. The
   * subscription is taken when the effect runs (it lasts as long as its scope), not when
   * the Stream starts: a `snapshot` read after it can miss no change.
   */
  readonly subscribe: Effect.Effect<
    Stream.Stream<Change<K, V>, EtcdError.MirrorError>,
    EtcdError.MirrorError,
    Scope.Scope
  >
  /** Done once the first list is in the map. */
  readonly ready: Effect.Effect<void, EtcdError.MirrorError>
  /**
   * Done once the map reflects `revision` or later: after `waitFor(put.revision)` a `get`
   * sees that put. For a revision that changed nothing in the range (a write elsewhere),
   * the mirror reads the range at that revision to prove its map is right there.
   *
   * With `timeout`, fails with `MirrorTimeout` (the revision asked for, the one reached)
   * after waiting that long, the first list included; it waits as long as it takes by
   * default. The mirror goes on either way.
   */
  readonly waitFor: (
    revision: bigint,
    options?: WaitForOptions
  ) => Effect.Effect<void, EtcdError.MirrorError | EtcdError.MirrorTimeout>
  /**
   * Done once the map reflects the revision the member serving the client's watches is at
   * now, learned without a write (`Watch.requestProgress`); returns that revision. A mirror
   * whose range is quiet proves its map right at that revision with one read, as `waitFor`
   * does. The member's revision, not the cluster's: a member that lags its leader gives an
   * older one (use `waitFor` with a write's revision to read your own writes).
   *
   * @since 0.2.0
   */
  readonly catchUp: Effect.Effect<bigint, EtcdError.MirrorError>
}

/**
 * Options of `Mirror.waitFor`.
 *
 * @since 0.2.0
 * @category models
 */
export interface WaitForOptions {
  /** Give up with `MirrorTimeout` after waiting this long; wait as long as it takes by default. */
  readonly timeout?: DurationWithUnit | undefined
}

type Published<K, V> = Change<K, V> | { readonly _tag: "Stopped"; readonly error: EtcdError.MirrorError }

/** A change prints safely: its revision is a bigint. */
const ChangeProto = Printable.Proto("Mirror.Change")
const SnapshotProto = Printable.Proto("Mirror.Snapshot")

/** Listing, watching or resyncing ends with an error; this says the list must be made again. */
const toMirrorError = EtcdError.toFamily("mirror")

const relist = (error: EtcdError.EtcdError): "now" | "later" | "never" =>
  error._tag === "Compacted" ? "now" : error.isRetryable ? "later" : "never"

/**
 * A mirror of a range with its own decoding; see `Mirror.prefix` and `Keyspace.mirror`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <K, V>(
  source: Source<K, V>,
  options?: MirrorOptions
): Effect.Effect<Mirror<K, V>, never, Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    const etcd = yield* Etcd
    const skip = options?.onDecodeError === "skip"
    const pageSize = Math.max(1, options?.pageSize ?? 5000)
    const problem = Validate.problemOf(() => Validate.duration("maxRetryDelay", options?.maxRetryDelay))
    const maxRetryDelay = problem === undefined ? Duration.toMillis(options?.maxRetryDelay ?? Duration.seconds(5)) : 0
    const pubsub = yield* Effect.acquireRelease(
      PubSub.bounded<Published<K, V>>(Math.max(1, options?.changesBuffer ?? 1024)),
      PubSub.shutdown
    )
    const ready = yield* Deferred.make<void, EtcdError.MirrorError>()
    const rangeEnd = source.range.end ?? Buffer.concat([toBuffer(source.range.start), Buffer.from([0])])

    // the state: one map, replaced whole on a resync and copied before a change once a
    // snapshot has handed it out
    let map = new Map<K, V>()
    /** Metrics (`EtcdMetrics`): its entries, resyncs and lag. */
    const metered = Protocol.of(etcd).metrics.enabled
    if (metered) yield* Effect.addFinalizer(() => Effect.sync(() => Metrics.mirrorEntries(-map.size)))
    let shared = false
    let revision = 0n
    let stopped: EtcdError.MirrorError | undefined
    let listedOnce = false
    /** How many keys the range holds at `revision`, those that do not decode included. */
    let storedKeys = 0
    /** Counts the lists installed: a proof of `waitFor` holds only within one. */
    let generation = 0
    let waiters: Array<
      { readonly revision: bigint; readonly deferred: Deferred.Deferred<void, EtcdError.MirrorError> }
    > = []

    const writable = (): Map<K, V> => {
      if (shared) {
        map = new Map(map)
        shared = false
      }
      return map
    }

    const advance = (to: bigint) => {
      if (to <= revision) return
      revision = to
      if (waiters.length === 0) return
      waiters = waiters.filter((waiter) => {
        if (waiter.revision > revision) return true
        Deferred.unsafeDone(waiter.deferred, Exit.void)
        return false
      })
    }

    const fetchPage = (start: Uint8Array, at: bigint | undefined) =>
      Protocol.of(etcd).kv.range(
        KvCodec.rangeRequest(KeyRange.between(start, rangeEnd), { revision: at, limit: pageSize }),
        undefined
      )

    /**
     * Every pair of the range at one revision, in pages, decoded into a fresh map. The next
     * page is asked for before this one is decoded, so the server and the client work at once.
     */
    const list = Effect.gen(function*() {
      const listed = new Map<K, V>()
      const decodeBytes = source.decodeBytes
      let count = 0
      let response = yield* fetchPage(source.range.start, undefined)
      const at = KvCodec.revisionOf(response.header)
      for (;;) {
        const kvs = response.kvs
        const last = kvs[kvs.length - 1]
        const next = response.more && last !== undefined
          ? yield* Effect.fork(fetchPage(Buffer.concat([last.key, Buffer.from([0])]), at))
          : undefined
        count += kvs.length
        for (const raw of kvs) {
          if (decodeBytes !== undefined) {
            const decoded = decodeBytes(raw.key, raw.value)
            listed.set(decoded.key, decoded.value)
            continue
          }
          const decoded = source.decode(KvCodec.decodeKeyValue(raw))
          if (Either.isRight(decoded)) listed.set(decoded.right.key, decoded.right.value)
          else if (!skip) return yield* Effect.fail(decoded.left)
        }
        if (next === undefined) return { listed, count, revision: at }
        response = yield* Fiber.join(next)
      }
    })

    /** Puts the listed map in place; after the first list, says what differed. */
    const install = (listed: Map<K, V>, count: number, at: bigint) =>
      Effect.suspend(() => {
        const first = !listedOnce
        listedOnce = true
        const before = map
        if (metered) {
          Metrics.mirrorEntries(listed.size - before.size)
          if (!first) Metrics.mirrorResynced()
        }
        map = listed
        shared = false
        storedKeys = count
        generation++
        advance(at)
        if (first) return Deferred.succeed(ready, void 0)
        const puts: Array<{ key: K; value: V; previous: Option.Option<V> }> = []
        const deletes: Array<{ key: K; previous: V }> = []
        for (const [key, value] of listed) {
          if (!before.has(key)) puts.push({ key, value, previous: Option.none() })
          else {
            const previous = before.get(key) as V
            if (!source.equivalence(previous, value)) puts.push({ key, value, previous: Option.some(previous) })
          }
        }
        for (const [key, previous] of before) if (!listed.has(key)) deletes.push({ key, previous })
        return PubSub.publish(pubsub, Printable.make(ChangeProto, { _tag: "Resynced", revision: at, puts, deletes }))
      })

    /** Applies one watch response to the map; returns the changes to publish. */
    const apply = (response: Watch.WatchResponse): Either.Either<Array<Change<K, V>>, EtcdError.EtcdDecodeError> => {
      const changes: Array<Change<K, V>> = []
      const from = revision
      const sizeBefore = map.size
      for (const event of response.events) {
        const at = event.revision
        // already reflected: `waitFor` proved the map right at a later revision
        if (at <= from) continue
        if (event.type === "delete") storedKeys--
        else if (event.kv.version === 1) storedKeys++
        if (event.type === "delete") {
          const key = source.decodeKey(event.kv)
          if (Either.isLeft(key)) {
            if (skip) continue
            return Either.left(key.left)
          }
          if (!map.has(key.right)) continue
          const previous = map.get(key.right) as V
          writable().delete(key.right)
          changes.push(Printable.make(ChangeProto, { _tag: "Delete", key: key.right, previous, revision: at }))
          continue
        }
        const decoded = source.decode(event.kv)
        if (Either.isLeft(decoded)) {
          if (!skip) return Either.left(decoded.left)
          // the key's last value does not decode: the old one is no longer true
          const key = source.decodeKey(event.kv)
          if (Either.isRight(key) && map.has(key.right)) {
            const previous = map.get(key.right) as V
            writable().delete(key.right)
            changes.push(Printable.make(ChangeProto, { _tag: "Delete", key: key.right, previous, revision: at }))
          }
          continue
        }
        const { key, value } = decoded.right
        const previous = map.has(key) ? Option.some(map.get(key) as V) : Option.none()
        writable().set(key, value)
        changes.push(Printable.make(ChangeProto, { _tag: "Put", key, value, previous, revision: at }))
      }
      const last = response.events[response.events.length - 1]
      if (metered) {
        Metrics.mirrorEntries(map.size - sizeBefore)
        Metrics.mirrorLagged(last === undefined ? 0 : Number(response.revision - last.revision))
      }
      advance(last === undefined ? response.revision : last.revision)
      return Either.right(changes)
    }

    /** Lists, installs, then follows the watch; ends only with an error. */
    const round = Effect.gen(function*() {
      const { count, listed, revision: at } = yield* list
      yield* install(listed, count, at)
      const watcher = yield* Watch.subscribe(source.range, { startRevision: at + 1n, progressNotify: true })
      return yield* watcher.responses.pipe(
        Stream.runForEach((response) =>
          Effect.flatMap(
            Effect.sync(() => apply(response)),
            (applied) =>
              Either.isLeft(applied)
                ? Effect.fail(applied.left)
                : applied.right.length === 0
                ? Effect.void
                : PubSub.publishAll(pubsub, applied.right)
          )
        ),
        Effect.zipRight(Effect.fail(new EtcdError.WatchCanceled({ reason: "the watch ended" })))
      )
    }).pipe(Effect.scoped)

    /**
     * For a revision that changed nothing in the range, no event will come. Reads the range
     * at `target`: if it holds as many keys as the map's revision did and none was written
     * after that revision, nothing changed in between, and the map is right at `target` too
     * (events of the revisions in between, a key created and deleted again, are then
     * dropped when they come). Tried again, a little later each time, until the mirror gets
     * there by itself; never fails.
     */
    const prove = (target: bigint) =>
      Effect.gen(function*() {
        for (let attempt = 0;; attempt++) {
          yield* Effect.sleep(Duration.millis(Math.min(1000, 50 * 2 ** attempt)))
          const at = revision
          const keys = storedKeys
          const current = generation
          if (at >= target) return
          const result = yield* Protocol.of(etcd).kv.range(
            KvCodec.rangeRequest(source.range, {
              revision: target,
              sortTarget: "mod",
              sortOrder: "descend",
              limit: 1,
              keysOnly: true
            }),
            undefined
          ).pipe(Effect.map(KvCodec.decodeRange), Effect.option)
          if (Option.isNone(result) || revision !== at || generation !== current) continue
          const newest = result.value.kvs[0]
          if (result.value.count === keys && (newest === undefined || newest.modRevision <= at)) {
            advance(target)
            return
          }
        }
      })

    const stop = (cause: EtcdError.EtcdError) =>
      Effect.suspend(() => {
        const error = toMirrorError(cause)
        stopped = error
        for (const waiter of waiters) Deferred.unsafeDone(waiter.deferred, Exit.fail(error))
        waiters = []
        return Effect.zipRight(Deferred.fail(ready, error), PubSub.publish(pubsub, { _tag: "Stopped", error }))
      })

    const run = Effect.gen(function*() {
      // a bad option stops the mirror at once: its reads fail with EtcdInvalidArgument
      if (problem !== undefined) return yield* stop(problem)
      let failures = 0
      for (;;) {
        const before = revision
        const error = yield* Effect.flip(round)
        if (revision > before) failures = 0
        const next = relist(error)
        if (next === "never") return yield* stop(error)
        yield* Effect.logDebug("Mirror lists its range again").pipe(
          Effect.annotateLogs({
            range: KeyRange.format(source.range),
            revision: revision.toString(),
            error: error._tag
          })
        )
        if (next === "later") {
          yield* Effect.sleep(Duration.millis(Math.min(maxRetryDelay, 100 * 2 ** Math.min(failures, 10))))
          failures++
        }
      }
    })
    yield* Effect.forkScoped(Effect.interruptible(run))

    /**
     * `read` once the first list is in: after it (`listedOnce`, set as `ready` is done), at
     * once, without awaiting `ready` again (reads through `EtcdConfig` take this path at
     * each `Config` read).
     */
    const whenReady = <A>(read: () => A): Effect.Effect<A, EtcdError.MirrorError> => {
      const now = Effect.suspend(() => stopped === undefined ? Effect.succeed(read()) : Effect.fail(stopped))
      const waiting = Effect.zipRight(Deferred.await(ready), now)
      return Effect.suspend(() =>
        stopped !== undefined ? Effect.fail(stopped) : listedOnce ? Effect.succeed(read()) : waiting
      )
    }

    /** The snapshot last handed out: the same one until the map or the revision changes. */
    let lastSnapshot: Snapshot<K, V> | undefined

    /** Done once the map reflects `target` or later (see `waitFor`), for as long as it takes. */
    const waitUntil = (target: bigint) =>
      Effect.gen(function*() {
        yield* Deferred.await(ready)
        if (stopped !== undefined) return yield* Effect.fail(stopped)
        if (revision >= target) return
        const waiter = { revision: target, deferred: yield* Deferred.make<void, EtcdError.MirrorError>() }
        waiters.push(waiter)
        yield* Effect.raceFirst(Deferred.await(waiter.deferred), prove(target)).pipe(
          Effect.onInterrupt(() => Effect.sync(() => (waiters = waiters.filter((other) => other !== waiter))))
        )
      })

    const subscribe = Effect.suspend(() =>
      stopped !== undefined
        ? Effect.fail(stopped)
        : Effect.map(PubSub.subscribe(pubsub), (subscription) =>
          Stream.fromQueue(subscription).pipe(
            Stream.mapEffect((item) => item._tag === "Stopped" ? Effect.fail(item.error) : Effect.succeed(item))
          ))
    )

    const mirror: Mirror<K, V> = {
      get: (key) => whenReady(() => map.has(key) ? Option.some(map.get(key) as V) : Option.none()),
      snapshot: whenReady(() => {
        shared = true
        if (lastSnapshot === undefined || lastSnapshot.values !== map || lastSnapshot.revision !== revision) {
          lastSnapshot = Printable.make(SnapshotProto, { values: map as ReadonlyMap<K, V>, revision })
        }
        return lastSnapshot
      }),
      revision: Effect.sync(() => revision),
      ready: Deferred.await(ready),
      changes: Stream.unwrapScoped(subscribe),
      subscribe,
      waitFor: (target, waitOptions) =>
        Effect.suspend(() => {
          const problem = Validate.problemOf(() =>
            Validate.first(
              () => Validate.options("options", waitOptions),
              () => Validate.duration("timeout", waitOptions?.timeout, true)
            )
          )
          if (problem !== undefined) return Effect.fail(problem)
          const timeout = waitOptions?.timeout === undefined ? undefined : Duration.decode(waitOptions.timeout)
          return timeout === undefined || !Duration.isFinite(timeout) ? waitUntil(target) : Effect.timeoutFail(
            waitUntil(target),
            {
              duration: timeout,
              onTimeout: () => new EtcdError.MirrorTimeout({ revision: target, reached: revision, timeout })
            }
          )
        }),
      catchUp: Effect.flatMap(
        Effect.provideService(Watch.requestProgress(), Etcd, etcd),
        (target) => Effect.as(waitUntil(target), target)
      )
    }
    return mirror
  })

/**
 * The source of `Mirror.prefix`: full keys and values as UTF-8 text.
 *
 * @since 0.1.0
 * @category constructors
 */
export const textSource = (range: KeyRange.KeyRange): Source<string, string> => ({
  range,
  decode: (kv) => Either.right({ key: kv.key, value: kv.value }),
  decodeKey: (kv) => Either.right(kv.key),
  equivalence: (a, b) => a === b,
  decodeBytes: (key, value) => ({ key: toText(key), value: toText(value) })
})

const EntryProto = Printable.Proto("Mirror.Entry")

/**
 * A source whose values carry their keys' metadata: each value of `source`, decoded as
 * it decodes it, becomes an {@link Entry} with the key's `createRevision`, `modRevision`,
 * `version` and `lease`. Two entries are the same when their key was last written at the
 * same revision (a resync reports a key written again, even with the same value).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { KeyRange, Mirror } from "effect-etcd"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const mirror = yield* Mirror.make(Mirror.withMetadata(Mirror.textSource(KeyRange.between("a", "m"))))
 *   const { values } = yield* mirror.snapshot
 *   return [...values].map(([key, entry]) => `${key}=${entry.value} @${entry.modRevision}`)
 * }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const withMetadata = <K, V>(source: Source<K, V>): Source<K, Entry<V>> => ({
  range: source.range,
  decode: (kv) =>
    Either.map(source.decode(kv), ({ key, value }) => ({
      key,
      value: Printable.make(EntryProto, {
        value,
        createRevision: kv.createRevision,
        modRevision: kv.modRevision,
        version: kv.version,
        lease: kv.lease
      })
    })),
  decodeKey: source.decodeKey,
  equivalence: (a, b) => a.modRevision === b.modRevision && a.createRevision === b.createRevision
})

/**
 * A live local copy of every key under a prefix, with full keys and values as text:
 * lists the prefix at one revision, then follows its changes. Scoped: it stops when the
 * scope closes. With `{ metadata: true }`, each value is an {@link Entry} that carries its
 * key's `createRevision`, `modRevision`, `version` and `lease`. For typed keys and values
 * use `Keyspace.mirror`; for another range or decoding, `make`. (This was `Kv.mirror` before: the KV module no longer depends on
 * the mirror built above it.)
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Kv, Mirror } from "effect-etcd"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const mirror = yield* Mirror.prefix("config/")
 *   const { revision } = yield* Kv.put("config/mode", "fast")
 *   yield* mirror.waitFor(revision)
 *   return yield* mirror.get("config/mode")   // Option.some("fast"), read locally
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const prefix: {
  (
    prefix: Bytes,
    options: PrefixOptions & { readonly metadata: true }
  ): Effect.Effect<Mirror<string, Entry<string>>, never, Etcd | Scope.Scope>
  (
    prefix: Bytes,
    options?: PrefixOptions & { readonly metadata?: false | undefined }
  ): Effect.Effect<Mirror<string, string>, never, Etcd | Scope.Scope>
} = (
  prefix: Bytes,
  options?: PrefixOptions
): Effect.Effect<Mirror<string, any>, never, Etcd | Scope.Scope> => {
  const source = textSource(KeyRange.prefix(prefix))
  return options?.metadata === true ? make(withMetadata(source), options) : make(source, options)
}
