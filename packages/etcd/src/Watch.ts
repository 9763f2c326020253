/**
 * Watches as Streams: every change to a key, a prefix or a range, in revision order
 * (etcetra's `watch` and `watch_prefix`, with every option).
 *
 * All watchers of a client share one gRPC Watch stream, and none waits for another:
 * each has its own buffer, bounded in bytes (`bufferBytes`). A consumer that falls
 * behind by more than that has its watcher canceled on the server, and created again
 * from the revision after the last one it received once it has caught up: memory stays
 * bounded, the other watchers go on at full speed, and the slow one loses nothing
 * (unless compaction removed that history meanwhile: then it alone fails with
 * `Compacted`). Ending a Stream (interruption, `Stream.take`, scope close) cancels its
 * watcher on the server and no other. When the connection breaks, every watcher resumes
 * from the revision after the last one it delivered: nothing is lost, nothing repeats.
 * Quiet watchers keep their resume revision current through progress notifications.
 * A start revision older than the last compaction fails the Stream with `Compacted`.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { KeyRange, Kv, Watch } from "effect-etcd"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   // resolves once the watcher exists on the server (etcetra's ready_event)
 *   const watcher = yield* Watch.subscribe(KeyRange.prefix("jobs/"))
 *   yield* Kv.put("jobs/1", "queued")                  // certain to be seen
 *   const [event] = yield* watcher.events.pipe(Stream.take(1), Stream.runCollect)
 *   return `${event.type} ${event.key}=${event.value} @${event.revision}`
 * }))
 * ```
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type DurationWithUnit, Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Printable from "./internal/base/printable.js"
import { fromInt64, toBuffer } from "./internal/data/codec.js"
import * as Validate from "./internal/data/validate.js"
import * as Protocol from "./internal/rpc/protocol.js"
import type { Subscription, TakeBatches, WatchBatch } from "./internal/streams/watchHub.js"
import { decodeKeyValue } from "./internal/wire/kvCodec.js"
import type { Event__Output } from "./internal/wire/proto/generated/mvccpb/Event.js"
import * as KeyRange from "./KeyRange.js"
import type { Bytes } from "./KeyRange.js"
import type { KeyValue } from "./KeyValue.js"

/**
 * One change: a put (creation or update) or a delete (explicit, or by lease expiry).
 * For a delete, `kv` holds the key and the revision of the deletion, and an empty value.
 *
 * `_tag` is `"Put"` or `"Delete"`, as in `Keyspace.Event` and `Mirror.Change`, so
 * `Match.tag`, `Data.TaggedEnum`'s helpers and `switch (event._tag)` work on all three;
 * `type` (`"put"` or `"delete"`) says the same in etcd's words.
 *
 * @example
 * ```ts
 * import { Match } from "effect"
 * import type { Watch } from "effect-etcd"
 *
 * const describe = Match.type<Watch.WatchEvent>().pipe(
 *   Match.tag("Put", (event) => `${event.key} = ${event.value}`),
 *   Match.tag("Delete", (event) => `${event.key} deleted`),
 *   Match.exhaustive
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type WatchEvent = PutEvent | DeleteEvent

/**
 * What both kinds of {@link WatchEvent} have; the tag and type are on the prototype of
 * each kind, so an event costs one object, as before it had a tag.
 *
 * @since 0.1.0
 * @category models
 */
export abstract class WatchEventBase {
  constructor(
    /** The key-value pair after the change. */
    readonly kv: KeyValue,
    /** The pair before the change, when the watch asked for `prevKv` and there was one. */
    readonly prevKv: Option.Option<KeyValue>
  ) {}

  /** `"Put"` or `"Delete"`. */
  abstract get _tag(): "Put" | "Delete"

  /** `"put"` or `"delete"`. */
  abstract get type(): "put" | "delete"

  /** The key as UTF-8 text. */
  get key(): string {
    return this.kv.key
  }

  /** The new value as UTF-8 text (empty for a delete). */
  get value(): string {
    return this.kv.value
  }

  /** The revision of the change. */
  get revision(): bigint {
    return this.kv.modRevision
  }

  /** The previous value, when `prevKv` was asked for. */
  get prevValue(): Option.Option<string> {
    return Option.map(this.prevKv, (kv) => kv.value)
  }

  /** Whether this put created the key (rather than updating it). */
  get isCreate(): boolean {
    return this.type === "put" && this.kv.createRevision === this.kv.modRevision
  }

  /** @internal */
  toJSON(): unknown {
    return Printable.jsonSafe({
      _id: "WatchEvent",
      _tag: this._tag,
      type: this.type,
      key: this.key,
      value: this.value,
      revision: this.revision,
      prevKv: this.prevKv
    })
  }

  /** @internal */
  toString(): string {
    return JSON.stringify(this.toJSON())
  }

  /** @internal */
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

/**
 * A put: the key was created or updated.
 *
 * @since 0.1.0
 * @category models
 */
export class PutEvent extends WatchEventBase {
  /** `"Put"`. */
  get _tag(): "Put" {
    return "Put"
  }
  /** `"put"`. */
  get type(): "put" {
    return "put"
  }
}

/**
 * A delete: explicit, or by lease expiry.
 *
 * @since 0.1.0
 * @category models
 */
export class DeleteEvent extends WatchEventBase {
  /** `"Delete"`. */
  get _tag(): "Delete" {
    return "Delete"
  }
  /** `"delete"`. */
  get type(): "delete" {
    return "delete"
  }
}

/**
 * One answer of the server for one watcher: the events of one or more revisions, or a
 * progress notification (no events) saying the watcher is caught up to `revision`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchResponse {
  /** The store's revision when the server sent this. */
  readonly revision: bigint
  readonly events: ReadonlyArray<WatchEvent>
  readonly progress: boolean
}

/**
 * Options of a watch.
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchOptions {
  /**
   * Deliver history from this revision on (inclusive); by default (or with 0, as in etcd)
   * only what happens after the watch exists.
   */
  readonly startRevision?: bigint | undefined
  /**
   * End the watch at this revision (inclusive): the events of revisions up to it are
   * delivered, then the Stream ends (`next` gives `None`), so that with `startRevision` it
   * reads the history between two revisions. It ends as soon as the watcher is known to be
   * past it: at an event of `endRevision` itself, at the first event after it (left out),
   * or at a progress notification at or after it (a notification says every event up to
   * its revision has been sent); without a `startRevision`, at once when the store is
   * already past it. When no change in the range follows `endRevision`, that notification
   * is the server's periodic one (etcd's `--experimental-watch-progress-notify-interval`,
   * 10 minutes by default). At least `startRevision` when both are given.
   */
  readonly endRevision?: bigint | undefined
  /** Attach the previous key-value pair to each event. */
  readonly prevKv?: boolean | undefined
  /** Ask the server for periodic progress notifications when nothing happens (see `responses`). */
  readonly progressNotify?: boolean | undefined
  /** Leave put events out. */
  readonly noPut?: boolean | undefined
  /** Leave delete events out. */
  readonly noDelete?: boolean | undefined
  /** Let the server split responses larger than its request limit; they are joined again here. */
  readonly fragment?: boolean | undefined
  /**
   * The watch ID to ask for on the shared stream (one is picked otherwise, or with 0, as in
   * etcd). It is the watcher's `watchId`, unique among the client's watchers. etcd honours it;
   * etcd's gRPC proxy numbers watchers itself, and the client then uses the proxy's ID on the
   * wire while the watcher keeps this one.
   */
  readonly watchId?: bigint | number | undefined
  /**
   * How many bytes of keys and values may wait for a slow consumer (default 256 KiB). The
   * response that goes past it is kept, however large, and this watcher alone is then
   * canceled on the server and created again from where it stopped once its consumer
   * has taken half of what waits; the other watchers of the client do not wait.
   */
  readonly bufferBytes?: number | undefined
  /**
   * Whether a member cut off from its cluster's leader may serve this watch (etcd's
   * `hasleader`; the client's `requireLeader` when absent, which is true unless set). When
   * required, such a member cancels the watch stream ("no leader", after about three
   * election timeouts) instead of letting it go silent, and the watch resumes on another
   * member from the revision after the last one it delivered: nothing is lost or repeated.
   * Watchers that do not require one share a stream of their own.
   *
   * @since 0.2.0
   */
  readonly requireLeader?: boolean | undefined
}

/**
 * A watcher that exists on the server. Consume `events`, `responses` or `next` (one of
 * them), `events` and `responses` in one run: they read the same buffer, a pull takes
 * what waits there, and a run that stops early (`Stream.take`) drops what it pulled and
 * did not emit.
 *
 * @since 0.1.0
 * @category models
 */
export interface Watcher {
  readonly watchId: bigint
  /** The store's revision when the watcher was created. */
  readonly createdRevision: bigint
  /** The changes, one by one. */
  readonly events: Stream.Stream<WatchEvent, EtcdError.WatchError>
  /** The server's answers, with their revisions and progress notifications. */
  readonly responses: Stream.Stream<WatchResponse, EtcdError.WatchError>
  /**
   * The next changes, without a Stream: waits until some come, then takes the changes
   * waiting (as `events` would emit them, up to 64 KiB of keys and values at a time), in
   * order; `None` once the watcher has ended (its scope closed). A fiber that loops on it
   * costs a few KB and no Stream machinery: for thousands of watchers, each read by a
   * fiber of its own, where running a Stream per watcher costs tens of KB each.
   *
   * @example
   * ```ts
   * import { Effect, Option } from "effect"
   * import { Watch } from "effect-etcd"
   *
   * const firstChange = Effect.scoped(Effect.gen(function*() {
   *   const watcher = yield* Watch.subscribe("config/mode")
   *   const changes = yield* watcher.next
   *   return Option.map(changes, (events) => events[0].kv.value)
   * }))
   * ```
   *
   * @since 0.1.0
   */
  readonly next: Effect.Effect<Option.Option<ReadonlyArray<WatchEvent>>, EtcdError.WatchError>
}

const decodeEvent = (event: Event__Output): WatchEvent => {
  const kv = decodeKeyValue(event.kv!)
  const prevKv = event.prevKv ? Option.some(decodeKeyValue(event.prevKv)) : Option.none()
  return event.type === "DELETE" ? new DeleteEvent(kv, prevKv) : new PutEvent(kv, prevKv)
}

class WatchResponseImpl extends Printable.Class implements WatchResponse {
  constructor(readonly revision: bigint, readonly events: ReadonlyArray<WatchEvent>, readonly progress: boolean) {
    super()
  }
}

const decodeBatch = (batch: WatchBatch): WatchResponse =>
  new WatchResponseImpl(batch.revision, batch.events.map(decodeEvent), batch.progress)

/** The events of some batches, decoded, in order. */
const decodeEvents = (batches: Chunk.Chunk<WatchBatch>): Chunk.Chunk<WatchEvent> => {
  const events: Array<WatchEvent> = []
  for (const batch of batches) for (const event of batch.events) events.push(decodeEvent(event))
  return Chunk.unsafeFromArray(events)
}

const decodeResponses = (batches: Chunk.Chunk<WatchBatch>): Chunk.Chunk<WatchResponse> =>
  Chunk.map(batches, decodeBatch)

/** What reads a watcher: writes Chunks of `A`, fails with a WatchError, ends with the watcher. */
type ReadChannel<A> = Channel.Channel<Chunk.Chunk<A>, unknown, EtcdError.WatchError, unknown, void, unknown>

/**
 * A watcher's batches as a channel, one layer deep: each pull takes what waits, decodes
 * it and maps a failure in one step, and writes one Chunk (rather than a stack of
 * `repeatEffectChunkOption`, `mapError` and `mapConcat`, each a layer every consumer runs).
 */
const readLoop = <A>(
  take: TakeBatches,
  decode: (batches: Chunk.Chunk<WatchBatch>) => Chunk.Chunk<A>
): ReadChannel<A> => {
  const pull = Effect.catchAll(
    take,
    (error): Effect.Effect<undefined, EtcdError.WatchError> =>
      Option.isNone(error) ? Effect.succeed(undefined) : Effect.fail(toWatchError(error.value))
  )
  const loop: ReadChannel<A> = Channel
    .flatMap(
      Channel.fromEffect(pull),
      (batches) => batches === undefined ? Channel.void : Channel.zipRight(Channel.write(decode(batches)), loop)
    )
  return loop
}

/** The next non-empty events of `take`; `None` once it has ended. */
const nextOf = (take: TakeBatches): Effect.Effect<Option.Option<ReadonlyArray<WatchEvent>>, EtcdError.WatchError> => {
  const next: Effect.Effect<Option.Option<ReadonlyArray<WatchEvent>>, EtcdError.WatchError> = Effect.matchEffect(
    take,
    {
      onFailure: (error) => Option.isNone(error) ? Effect.succeedNone : Effect.fail(toWatchError(error.value)),
      onSuccess: (batches) => {
        const events = decodeEvents(batches)
        // progress notifications alone: nothing to hand over yet
        return Chunk.isEmpty(events) ? next : Effect.succeed(Option.some(Chunk.toReadonlyArray(events)))
      }
    }
  )
  return next
}

const revisionOf = (event: Event__Output): bigint => fromInt64(event.kv?.modRevision)

/**
 * `take`, ended at `end` (see `WatchOptions.endRevision`): events after `end` are left
 * out, and once the watcher is known past `end` (an event at or after it, a progress
 * notification at or after it, or `endedAlready`) the take fails with `None`, as a
 * watcher that ended. Progress notifications are kept only with `keepProgress`.
 */
const endingAt = (
  take: TakeBatches,
  end: bigint,
  keepProgress: boolean,
  endedAlready: boolean
): TakeBatches => {
  let ended = endedAlready
  const bounded: TakeBatches = Effect.suspend(() =>
    ended ? Effect.fail(Option.none()) : Effect.flatMap(take, (batches) => {
      const kept: Array<WatchBatch> = []
      for (const batch of batches) {
        if (batch.progress) {
          // nothing up to its revision is left to come
          if (keepProgress) kept.push(batch)
          if (batch.revision >= end) {
            ended = true
            break
          }
          continue
        }
        // read once: a batch still encoded decodes its events on each read
        const events = batch.events
        const within = events.filter((event) => revisionOf(event) <= end)
        if (within.length > 0) {
          kept.push({ revision: batch.revision, events: within, progress: false, bytes: batch.bytes })
        }
        // the events of one revision come together: one at `end` or after it is the last word
        const last = events[events.length - 1]
        if (last !== undefined && revisionOf(last) >= end) {
          ended = true
          break
        }
      }
      if (kept.length > 0) return Effect.succeed(Chunk.unsafeFromArray(kept))
      return ended ? Effect.fail(Option.none()) : bounded
    })
  )
  return bounded
}

/**
 * A watcher whose Streams and `next` are built when first asked for: a consumer reads one
 * of them, and a watcher costs nothing for the others.
 */
class SubscribedWatcher implements Watcher {
  readonly #subscription: Subscription
  readonly #end: { readonly revision: bigint; readonly progress: boolean; readonly ended: boolean } | undefined
  #next: Effect.Effect<Option.Option<ReadonlyArray<WatchEvent>>, EtcdError.WatchError> | undefined = undefined
  constructor(subscription: Subscription, options: WatchOptions | undefined) {
    this.#subscription = subscription
    const end = options?.endRevision
    this.#end = end === undefined ? undefined : {
      revision: BigInt(end),
      progress: options?.progressNotify ?? false,
      // with no start revision, the first revision it can deliver is the one after its creation
      ended: nonZero(options?.startRevision) === undefined && subscription.createdRevision >= BigInt(end)
    }
  }
  /** The subscription's take, ended at the end revision when there is one. */
  #take(withParts: boolean): TakeBatches {
    const take = this.#subscription.take(withParts)
    const end = this.#end
    return end === undefined ? take : endingAt(take, end.revision, end.progress, end.ended)
  }
  get watchId(): bigint {
    return this.#subscription.watchId
  }
  get createdRevision(): bigint {
    return this.#subscription.createdRevision
  }
  get next(): Effect.Effect<Option.Option<ReadonlyArray<WatchEvent>>, EtcdError.WatchError> {
    return this.#next ??= nextOf(this.#take(true))
  }
  get events(): Stream.Stream<WatchEvent, EtcdError.WatchError> {
    return Stream.fromChannel(this.eventsChannel())
  }
  get responses(): Stream.Stream<WatchResponse, EtcdError.WatchError> {
    return Stream.fromChannel(this.responsesChannel())
  }
  /** The channel of `events`. */
  eventsChannel(): ReadChannel<WatchEvent> {
    return readLoop(this.#take(true), decodeEvents)
  }
  /** The channel of `responses`. */
  responsesChannel(): ReadChannel<WatchResponse> {
    return readLoop(this.#take(false), decodeResponses)
  }
  /** Its data, printable: the watch ID and the created revision as decimal strings. */
  toJSON(): unknown {
    return Printable.jsonSafe({ _id: "Watch.Watcher", watchId: this.watchId, createdRevision: this.createdRevision })
  }
  toString(): string {
    return JSON.stringify(this.toJSON())
  }
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

const optionsProblem = (options: WatchOptions | undefined): Validate.Problem => {
  if (options === undefined) return undefined
  return Validate.first(
    () => Validate.options("options", options),
    () => Validate.revision("startRevision", options.startRevision),
    () => Validate.optionalInt64("endRevision", options.endRevision, 1n),
    () =>
      options.endRevision !== undefined && options.startRevision !== undefined &&
        BigInt(options.endRevision) < BigInt(options.startRevision)
        ? Validate.invalid("endRevision", options.endRevision, "at least startRevision")
        : undefined,
    () => Validate.optionalInt64("watchId", options.watchId, 0n, " (0: one is picked)"),
    () => Validate.count("bufferBytes", options.bufferBytes, 0),
    () => Validate.flag("prevKv", options.prevKv),
    () => Validate.flag("progressNotify", options.progressNotify),
    () => Validate.flag("noPut", options.noPut),
    () => Validate.flag("noDelete", options.noDelete),
    () => Validate.flag("fragment", options.fragment),
    () => Validate.flag("requireLeader", options.requireLeader)
  )
}

/** etcd's "0: not given" for revisions and watch IDs. */
const nonZero = (value: bigint | number | undefined): bigint | undefined =>
  value === undefined || BigInt(value) === 0n ? undefined : BigInt(value)

/**
 * The watcher `keys` and `options` ask for, created on the client's watch stream; its
 * release goes to `hold` as it is registered (see `WatchHub.open`). Options are checked
 * first, and nothing is held when they fail.
 */
const open = (
  keys: Bytes | KeyRange.KeyRange,
  options: WatchOptions | undefined,
  hold: (release: Effect.Effect<void>) => Effect.Effect<void>
): Effect.Effect<SubscribedWatcher, EtcdError.WatchError, Etcd> =>
  // the checks, the spec and the client in one step (a watcher is made by the thousand)
  Effect.flatMap(Etcd, (etcd) => {
    const optionProblem = optionsProblem(options)
    if (optionProblem !== undefined) return Effect.fail(toWatchError(optionProblem))
    const range = KeyRange.fromInput(keys)
    const problem = Validate.keyRangeProblem("keys", range)
    if (problem !== undefined) return Effect.fail(toWatchError(problem))
    return Effect.mapBoth(
      Protocol.of(etcd).watches.open({
        key: toBuffer(range.start),
        rangeEnd: range.end === undefined ? undefined : toBuffer(range.end),
        startRevision: nonZero(options?.startRevision),
        prevKv: options?.prevKv ?? false,
        // an end revision is also reached through progress notifications
        progressNotify: (options?.progressNotify ?? false) || options?.endRevision !== undefined,
        noPut: options?.noPut ?? false,
        noDelete: options?.noDelete ?? false,
        fragment: options?.fragment ?? false,
        watchId: nonZero(options?.watchId),
        bufferBytes: options?.bufferBytes ?? 256 * 1024,
        requireLeader: options?.requireLeader
      }, hold),
      { onFailure: toWatchError, onSuccess: (subscription) => new SubscribedWatcher(subscription, options) }
    )
  })

/**
 * Creates a watcher and waits until the server has it: any write made after this
 * succeeds is certain to be delivered (etcetra's `ready_event`). The watcher is canceled
 * on the server when the scope closes. Options are checked first: a start revision or
 * watch ID that is negative, beyond int64 or not an integer fails with `EtcdInvalidArgument`
 * and nothing is sent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const subscribe = (
  keys: Bytes | KeyRange.KeyRange,
  options?: WatchOptions
): Effect.Effect<Watcher, EtcdError.WatchError, Etcd | Scope.Scope> =>
  Effect.scopeWith((scope) => open(keys, options, (release) => Scope.addFinalizer(scope, release)))

const toWatchError = EtcdError.toFamily("watch")

/**
 * A Stream that creates a watcher when it is run and cancels it when the run ends, however
 * it ends: the watcher's release is held by a finalizer of the run's one channel, which
 * opens the watcher and then reads it. No Scope is made, extended and closed per run, and
 * no channel is stacked on the read: a run costs what reading a subscribed watcher costs,
 * plus its create and its cancel (thousands of watches, each run by a fiber of its own,
 * notice every layer: see the bench's watchers-10k).
 */
const whileRun = <A>(
  keys: Bytes | KeyRange.KeyRange,
  options: WatchOptions | undefined,
  read: (watcher: SubscribedWatcher) => ReadChannel<A>
): Stream.Stream<A, EtcdError.WatchError, Etcd> =>
  Stream.fromChannel(Channel.suspend(() => {
    let release: Effect.Effect<void> = Effect.void
    const hold = (held: Effect.Effect<void>) =>
      Effect.sync(() => {
        release = held
      })
    return Channel.ensuring(
      Channel.flatMap(Channel.fromEffect(open(keys, options, hold)), read),
      Effect.suspend(() => release)
    )
  }))

/**
 * The changes of a key or range as a Stream; the watcher lives as long as the Stream
 * is consumed (etcetra's `watch`).
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Watch } from "effect-etcd"
 *
 * const firstTwo = Watch.watch("config/mode").pipe(Stream.take(2), Stream.runCollect)
 * ```
 *
 * @since 0.1.0
 * @category streams
 */
export const watch = (
  keys: Bytes | KeyRange.KeyRange,
  options?: WatchOptions
): Stream.Stream<WatchEvent, EtcdError.WatchError, Etcd> =>
  whileRun(keys, options, (watcher) => watcher.eventsChannel())

/**
 * The changes of every key under a prefix (etcetra's `watch_prefix`).
 *
 * @since 0.1.0
 * @category streams
 */
export const watchPrefix = (
  prefix: Bytes,
  options?: WatchOptions
): Stream.Stream<WatchEvent, EtcdError.WatchError, Etcd> => watch(KeyRange.prefix(prefix), options)

/**
 * The changes of every key in `[start, end)`.
 *
 * @since 0.1.0
 * @category streams
 */
export const watchRange = (
  start: Bytes,
  end: Bytes,
  options?: WatchOptions
): Stream.Stream<WatchEvent, EtcdError.WatchError, Etcd> => watch(KeyRange.between(start, end), options)

/**
 * The server's answers for a key or range, with their revisions and, with
 * `progressNotify`, the progress notifications.
 *
 * @since 0.1.0
 * @category streams
 */
export const responses = (
  keys: Bytes | KeyRange.KeyRange,
  options?: WatchOptions
): Stream.Stream<WatchResponse, EtcdError.WatchError, Etcd> =>
  whileRun(keys, options, (watcher) => watcher.responsesChannel())

/**
 * Options of {@link requestProgress}.
 *
 * @since 0.2.0
 * @category models
 */
export interface ProgressOptions {
  /**
   * Which of the client's watch streams to ask on: the one of the watches that require a
   * leader, or the other (see `WatchOptions.requireLeader`); the client's default when absent.
   */
  readonly requireLeader?: boolean | undefined
  /** How long to wait for the answer (the client's `requestTimeout` by default). */
  readonly timeout?: DurationWithUnit | undefined
}

/**
 * Asks the member the client's watches are served by how current it is (etcd's
 * `WatchProgressRequest`, Go's `Watcher.RequestProgress`), without a write, and returns the
 * revision its store was at when it answered. A consumer of a quiet watch learns from it
 * that the member is that far; `Mirror`'s `catchUp` waits for its map to reflect it.
 *
 * What the watchers get: nothing. etcd answers on the watch stream, for all its watchers at
 * once (watch ID -1, a header and no events), and before etcd 3.5.8 (and the 3.4 release
 * with the same fix, etcd-io/etcd#15697; 3.4.23 has not) it sends the answer apart from the
 * watchers' events, so that events at or below its revision may still be on their way. So the answer does not appear in any watcher's `responses` and moves no
 * watcher's resume revision; to know that a watcher has delivered everything up to the
 * revision, wait for it to deliver an event or progress notification at or past it (or read
 * the range at it, as `Mirror`'s `waitFor` does).
 *
 * The stream is opened for the request when no watch has it open. Requests made together
 * share one answer. When the stream breaks meanwhile, the request is sent again on the next
 * one (on another member, whose revision it then is). With no answer by the timeout (etcd's
 * gRPC proxy does not answer them) it fails with `EtcdTimeout`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Watch } from "effect-etcd"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const watcher = yield* Watch.subscribe("config/mode")
 *   // nothing happens to config/mode for a while: how current is the member serving it?
 *   const revision = yield* Watch.requestProgress()
 *   return { watchId: watcher.watchId, memberRevision: revision }
 * }))
 * ```
 *
 * @since 0.2.0
 * @category progress
 */
export const requestProgress = (options?: ProgressOptions): Effect.Effect<bigint, EtcdError.WatchError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) => {
    const problem = options === undefined ? undefined : Validate.first(
      () => Validate.options("options", options),
      () => Validate.flag("requireLeader", options.requireLeader),
      () => Validate.duration("timeout", options.timeout)
    )
    if (problem !== undefined) return Effect.fail(toWatchError(problem))
    const parts = Protocol.of(etcd)
    return Effect.mapError(
      parts.watches.requestProgress({
        requireLeader: options?.requireLeader,
        timeout: options?.timeout === undefined ? parts.transport.requestTimeout : Duration.decode(options.timeout)
      }),
      toWatchError
    )
  }).pipe(Effect.withSpan("Watch.requestProgress", { kind: "client", captureStackTrace: false }))
