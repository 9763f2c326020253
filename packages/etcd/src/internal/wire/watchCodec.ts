/**
 * Reads a WatchResponse in two steps. When it arrives, only what the hub routes and
 * counts by is read (the header's revision, the watch ID, the flags, and per event the
 * sizes and the mod revision), without building an object per event; the events stay in
 * the received bytes, with where each revision starts. They are decoded when the
 * watcher's consumer takes them, by a decoder of their own (no Long objects), and a
 * consumer of events takes a large response a few revisions at a time (`split`).
 *
 * So what waits in a watcher's buffer for a slow consumer is a few bytes buffers, not a
 * graph of small objects that would live long enough to be promoted and collected late,
 * and a response a suspended watcher drops is never decoded at all.
 */
import type { Event__Output } from "./proto/generated/mvccpb/Event.js"
import type { KeyValue__Output } from "./proto/generated/mvccpb/KeyValue.js"
import { keyValueField, readKeyValue as decodeKeyValue, wire, WireReader } from "./proto/wireReader.js"

/** Events still encoded, as received. */
export interface EncodedEvents {
  readonly count: number
  /** The bytes of keys and values, previous ones included. */
  readonly bytes: number
  /** Decodes them (each call decodes again). */
  readonly decode: () => ReadonlyArray<Event__Output>
  /**
   * The first revisions, up to `maxBytes` of keys and values but at least one revision,
   * and the rest; `undefined` when they are of one revision. A revision is never cut: the
   * events of one transaction stay together.
   */
  readonly split: (maxBytes: number) => readonly [EncodedEvents, EncodedEvents] | undefined
}

/** The events of a response, still encoded. */
export interface ResponseEvents extends EncodedEvents {
  /** The mod revisions of the first and the last event (0 when there is none). */
  readonly firstRevision: bigint
  readonly lastRevision: bigint
}

/** A WatchResponse as the hub reads it. */
export interface WatchResponseHead {
  /** The header's revision. */
  readonly revision: bigint
  readonly watchId: bigint
  readonly created: boolean
  readonly canceled: boolean
  readonly compactRevision: bigint
  readonly cancelReason: string
  readonly fragment: boolean
  readonly events: ResponseEvents
}

// field numbers of the messages read here
const response = { header: 1, watchId: 2, created: 3, canceled: 4, compactRevision: 5, cancelReason: 6, fragment: 7 }
const eventsField = 11
const headerRevision = 3
const eventKv = 2
const eventPrevKv = 3
const kvKey = keyValueField.key
const kvModRevision = keyValueField.modRevision
const kvValue = keyValueField.value

/** Reads a KeyValue: its key and value sizes, and its mod revision. */
const readKeyValue = (reader: WireReader, end: number, into: { bytes: number; modRevision: bigint }): void => {
  while (reader.pos < end) {
    const tag = reader.uint32()
    const field = tag >>> 3
    if (field === kvKey || field === kvValue) {
      const fieldEnd = reader.delimited()
      into.bytes += fieldEnd - reader.pos
      reader.pos = fieldEnd
    } else if (field === kvModRevision) into.modRevision = reader.int64()
    else reader.skip(tag & 7)
  }
  reader.pos = end
}

const noEvents: ReadonlyArray<Event__Output> = []
const none: ResponseEvents = {
  count: 0,
  bytes: 0,
  firstRevision: 0n,
  lastRevision: 0n,
  decode: () => noEvents,
  split: () => undefined
}

const eventTypes: ReadonlyArray<Event__Output["type"]> = ["PUT", "DELETE"]
const eventType = eventKv - 1

/**
 * Decodes the events in `buf[start, end)`, a WatchResponse or a part of one, into what
 * the generated decoder gives for them (int64s in decimal, enums by name, defaults
 * filled, bytes as views of `buf`), without its Long objects and their conversions to
 * text: a consumer decodes every event it takes, and a slow one keeps them a while.
 */
const decodeEventsAt = (buf: Buffer, start: number, end: number, count: number): Array<Event__Output> => {
  const reader = new WireReader(buf, start, end, "watch response")
  const events: Array<Event__Output> = new Array(count)
  let index = 0
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag >>> 3 !== eventsField || (tag & 7) !== wire.bytes) {
      reader.skip(tag & 7)
      continue
    }
    const eventEnd = reader.delimited()
    let type: Event__Output["type"] = "PUT"
    let kv: KeyValue__Output | null = null
    let prevKv: KeyValue__Output | null = null
    while (reader.pos < eventEnd) {
      const eventTag = reader.uint32()
      const field = eventTag >>> 3
      const wireType = eventTag & 7
      if (field === eventType && wireType === wire.varint) {
        const number = reader.uint32()
        // an unknown type is kept as its number, as the generated decoder does
        type = eventTypes[number] ?? (number as unknown as Event__Output["type"])
      } else if (field === eventKv && wireType === wire.bytes) kv = decodeKeyValue(reader, reader.delimited())
      else if (field === eventPrevKv && wireType === wire.bytes) prevKv = decodeKeyValue(reader, reader.delimited())
      else reader.skip(wireType)
    }
    reader.pos = eventEnd
    events[index++] = { type, kv, prevKv }
  }
  events.length = index
  return events
}

/**
 * A run of events in a received buffer, `buf[start, end)`: their fields one after
 * another (given only those, the generated decoder sees a response that holds nothing
 * else), or a whole response whose events are not contiguous (then `cuts` is empty).
 * `cuts` holds, for each revision of the run after its first, where it starts in `buf`
 * and how many bytes and events of the response come before it; `bytesBefore` and
 * `countBefore` are those of the run's own start.
 */
class EncodedRun implements EncodedEvents {
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
    readonly count: number,
    readonly bytes: number,
    readonly cuts: Int32Array,
    readonly bytesBefore: number,
    readonly countBefore: number
  ) {}

  decode(): ReadonlyArray<Event__Output> {
    return decodeEventsAt(this.buf, this.start, this.end, this.count)
  }

  split(maxBytes: number): readonly [EncodedEvents, EncodedEvents] | undefined {
    const cuts = this.cuts
    const revisions = cuts.length / 3
    if (revisions === 0) return undefined
    // the last cut with at most `maxBytes` before it, or the first one
    let low = 0
    let high = revisions - 1
    while (low < high) {
      const middle = (low + high + 1) >>> 1
      if (cuts[middle * 3 + 1] - this.bytesBefore <= maxBytes) low = middle
      else high = middle - 1
    }
    const at = low * 3
    const offset = cuts[at]
    const bytesBefore = cuts[at + 1]
    const countBefore = cuts[at + 2]
    return [
      new EncodedRun(
        this.buf,
        this.start,
        offset,
        countBefore - this.countBefore,
        bytesBefore - this.bytesBefore,
        cuts.subarray(0, at),
        this.bytesBefore,
        this.countBefore
      ),
      new EncodedRun(
        this.buf,
        offset,
        this.end,
        this.count - (countBefore - this.countBefore),
        this.bytes - (bytesBefore - this.bytesBefore),
        cuts.subarray(at + 3),
        bytesBefore,
        countBefore
      )
    ]
  }
}

/** The events of a response, with the revisions the hub routes by. */
class ResponseRun extends EncodedRun implements ResponseEvents {
  constructor(
    buf: Buffer,
    start: number,
    end: number,
    count: number,
    bytes: number,
    cuts: Int32Array,
    readonly firstRevision: bigint,
    readonly lastRevision: bigint
  ) {
    super(buf, start, end, count, bytes, cuts, 0, 0)
  }
}

const noCuts = new Int32Array(0)
/** Where the revisions of the response being read start (offset, bytes before, events before): reused. */
const cutScratch: Array<number> = []

/**
 * Reads a WatchResponse. The events are decoded later, from the received bytes, by the
 * generated decoder (given only the events' part of the message, it sees a response
 * that holds nothing else).
 */
export const readWatchResponse = (buf: Buffer): WatchResponseHead => {
  cutScratch.length = 0
  const reader = new WireReader(buf, 0, buf.length, "watch response")
  let revision = 0n
  let watchId = 0n
  let created = false
  let canceled = false
  let compactRevision = 0n
  let cancelReason = ""
  let fragment = false
  let count = 0
  let eventsStart = -1
  let eventsEnd = -1
  /** Whether another field comes between the events: then the whole message is decoded. */
  let interleaved = false
  const kv = { bytes: 0, modRevision: 0n }
  let firstRevision = 0n
  let lastRevision = 0n
  while (reader.pos < reader.end) {
    const fieldStart = reader.pos
    const tag = reader.uint32()
    const field = tag >>> 3
    if (field === eventsField && (tag & 7) === wire.bytes) {
      if (eventsStart === -1) eventsStart = fieldStart
      else if (eventsEnd !== fieldStart) interleaved = true
      const end = reader.delimited()
      const bytesBefore = kv.bytes
      kv.modRevision = 0n
      while (reader.pos < end) {
        const eventTag = reader.uint32()
        const eventField = eventTag >>> 3
        if ((eventField === eventKv || eventField === eventPrevKv) && (eventTag & 7) === wire.bytes) {
          const kvEnd = reader.delimited()
          const before = kv.modRevision
          readKeyValue(reader, kvEnd, kv)
          // the revision of the event is its kv's, not its previous kv's
          if (eventField === eventPrevKv) kv.modRevision = before
        } else reader.skip(eventTag & 7)
      }
      reader.pos = end
      eventsEnd = end
      if (count === 0) firstRevision = kv.modRevision
      else if (kv.modRevision !== lastRevision) cutScratch.push(fieldStart, bytesBefore, count)
      lastRevision = kv.modRevision
      count++
      continue
    }
    switch (field) {
      case response.header: {
        const end = reader.delimited()
        while (reader.pos < end) {
          const headerTag = reader.uint32()
          if (headerTag >>> 3 === headerRevision) revision = reader.int64()
          else reader.skip(headerTag & 7)
        }
        reader.pos = end
        break
      }
      case response.watchId:
        watchId = reader.int64()
        break
      case response.created:
        created = reader.uint32() !== 0
        break
      case response.canceled:
        canceled = reader.uint32() !== 0
        break
      case response.compactRevision:
        compactRevision = reader.int64()
        break
      case response.cancelReason: {
        const end = reader.delimited()
        cancelReason = buf.toString("utf8", reader.pos, end)
        reader.pos = end
        break
      }
      case response.fragment:
        fragment = reader.uint32() !== 0
        break
      default:
        reader.skip(tag & 7)
    }
    if (eventsStart !== -1) interleaved = true
  }
  let events = none
  if (count > 0) {
    const cuts = interleaved || cutScratch.length === 0 ? noCuts : Int32Array.from(cutScratch)
    events = interleaved
      ? new ResponseRun(buf, 0, buf.length, count, kv.bytes, cuts, firstRevision, lastRevision)
      : new ResponseRun(buf, eventsStart, eventsEnd, count, kv.bytes, cuts, firstRevision, lastRevision)
  }
  return { revision, watchId, created, canceled, compactRevision, cancelReason, fragment, events }
}
