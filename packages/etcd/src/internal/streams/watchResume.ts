/**
 * A watcher's resume bookkeeping, as a value: the next revision it has to deliver, and the
 * events of a fragmented response received so far. `onResponse` says what one response
 * does to it (the bookkeeping after it, and the batch for the consumer); the watch hub
 * keeps the value per watcher and does the rest (routing, buffers, the stream).
 *
 * The rules (from Go's clientv3 `watch.go`, see ETCD-NOTES.md):
 * - Nothing older than `next` is delivered: a replay after a reconnect or a suspension
 *   may start with events already delivered, and those are dropped, so resuming neither
 *   loses nor repeats an event.
 * - After events, `next` is the last event's revision + 1; after a progress notification,
 *   the header's revision + 1 (the server sends one only once it is caught up). Never the
 *   header's revision + 1 after events: during a catch-up it is the store's revision while
 *   older events are still to come.
 * - After the created answer of a watcher with no start revision, `next` is the header's
 *   revision + 1: the server read its revision before registering the watcher.
 * - Fragments are gathered until the last one; a new stream (or a suspension) drops them,
 *   since the response is sent again whole from `next`.
 *
 * Imports: the wire's types and codec only.
 */
import { fromInt64 } from "../data/codec.js"
import type { Event__Output } from "../wire/proto/generated/mvccpb/Event.js"
import type { EncodedEvents, ResponseEvents } from "../wire/watchCodec.js"

/** One response for one watcher: its events (possibly none, for a progress notification). */
export interface WatchBatch {
  /** The store's revision when the server sent this. */
  readonly revision: bigint
  /** The events; those of a batch from the server are decoded when this is read, each time. */
  readonly events: ReadonlyArray<Event__Output>
  /** A progress notification: nothing happened in the watched range up to `revision`. */
  readonly progress: boolean
  /** The bytes of keys and values in `events`, counted against the buffer. */
  readonly bytes: number
}

/** A watcher's resume bookkeeping. */
export interface WatchResume {
  /** The next revision to deliver; unknown until created when no start revision was given. */
  readonly next: bigint | undefined
  /** The events of a fragmented response received so far, until its last fragment. */
  readonly fragments: ReadonlyArray<Event__Output> | undefined
}

/** What a response of the server carries for one watcher (its events still encoded). */
export interface WatchEvents {
  /** The header's revision. */
  readonly revision: bigint
  /** Whether more fragments of this response follow. */
  readonly fragment: boolean
  readonly events: ResponseEvents
}

/** What one response does: the bookkeeping after it, and the batch to hand to the consumer, if any. */
export interface Step {
  readonly resume: WatchResume
  readonly batch: WatchBatch | undefined
}

/** A watcher not created yet, to start at `startRevision` (the current revision + 1 when absent). */
export const initial = (startRevision: bigint | undefined): WatchResume => ({
  next: startRevision,
  fragments: undefined
})

/** On a new stream or after a suspension: the fragments received are dropped (the response comes again whole). */
export const restart = (resume: WatchResume): WatchResume =>
  resume.fragments === undefined ? resume : { next: resume.next, fragments: undefined }

/**
 * The server created the watcher at `revision`: it read its revision before registering
 * the watcher and started it at the next one, so `revision` + 1 is the first it can send.
 */
export const created = (resume: WatchResume, revision: bigint): WatchResume =>
  resume.next === undefined ? { next: revision + 1n, fragments: resume.fragments } : resume

const noEvents: ReadonlyArray<Event__Output> = []

/**
 * What a response does to a watcher. A progress notification is handed on only when
 * `progressNotify` (the consumer asked for them); it moves `next` either way.
 */
export const onResponse = (resume: WatchResume, response: WatchEvents, progressNotify: boolean): Step => {
  const revision = response.revision
  /** Events decoded here, not by the consumer: the rare fragmented or partly old responses. */
  let events: ReadonlyArray<Event__Output> | undefined
  // Stryker disable next-line ConditionalExpression: equivalent because a response that is not a fragment, taken this way, gives the same events (decoded here instead of by the consumer)
  if (response.fragment || resume.fragments !== undefined) {
    // Stryker disable next-line ArrayDeclaration: equivalent because the filter below drops anything that has no revision
    const fragments = (resume.fragments ?? []).concat(response.events.decode())
    if (response.fragment) return { resume: { next: resume.next, fragments }, batch: undefined }
    events = fragments
  }
  if ((events?.length ?? response.events.count) === 0) {
    // a progress notification: the server sends them in order with this watcher's
    // events and only once it is caught up, so nothing at or below `revision` is to come
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent because a routed watcher was created, which set `next` (and `>=` gives the same value when equal)
    const next = resume.next === undefined || revision + 1n > resume.next ? revision + 1n : resume.next
    return {
      resume: { next, fragments: undefined },
      batch: progressNotify ? { revision, events: noEvents, progress: true, bytes: 0 } : undefined
    }
  }
  const next = resume.next ?? 0n
  // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: equivalent because the path below delivers the same events in the same order (it decodes them here; this one leaves them encoded for the consumer)
  if (events === undefined && response.events.firstRevision >= next) {
    // the usual case: every event is new, and the consumer decodes them
    return {
      resume: { next: response.events.lastRevision + 1n, fragments: undefined },
      batch: new EncodedBatch(revision, response.events)
    }
  }
  // a replay after a reconnect may start with events this watcher has delivered
  // Stryker disable next-line OptionalChaining: equivalent because every event etcd sends has its kv
  const fresh = (events ?? response.events.decode()).filter((event) => fromInt64(event.kv?.modRevision) >= next)
  if (fresh.length === 0) return { resume: { next: resume.next, fragments: undefined }, batch: undefined }
  return {
    // Stryker disable next-line OptionalChaining: equivalent because every event etcd sends has its kv
    resume: { next: fromInt64(fresh[fresh.length - 1].kv?.modRevision) + 1n, fragments: undefined },
    batch: { revision, events: fresh, progress: false, bytes: eventBytes(fresh) }
  }
}

/** A batch of events still encoded as received; reading `events` decodes them. */
export class EncodedBatch implements WatchBatch {
  readonly progress = false
  readonly bytes: number
  readonly #events: EncodedEvents
  constructor(readonly revision: bigint, events: EncodedEvents) {
    this.bytes = events.bytes
    this.#events = events
  }
  get events(): ReadonlyArray<Event__Output> {
    return this.#events.decode()
  }
  /** Its first revisions, up to `maxBytes`, and the rest, both still encoded. */
  split(maxBytes: number): readonly [EncodedBatch, EncodedBatch] | undefined {
    const parts = this.#events.split(maxBytes)
    return parts && [new EncodedBatch(this.revision, parts[0]), new EncodedBatch(this.revision, parts[1])]
  }
}

/** The bytes of keys and values (previous ones included) in some events. */
export const eventBytes = (events: ReadonlyArray<Event__Output>): number => {
  let bytes = 0
  for (const event of events) {
    bytes += (event.kv?.key.length ?? 0) + (event.kv?.value.length ?? 0)
    if (event.prevKv != null) bytes += event.prevKv.key.length + event.prevKv.value.length
  }
  return bytes
}
