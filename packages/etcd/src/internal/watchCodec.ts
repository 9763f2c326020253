/**
 * Reads a WatchResponse in two steps. When it arrives, only what the hub routes and
 * counts by is read (the header's revision, the watch ID, the flags, and per event the
 * sizes and the mod revision), without building an object per event; the events stay in
 * the received bytes. They are decoded when the watcher's consumer takes them.
 *
 * So what waits in a watcher's buffer for a slow consumer is a few bytes buffers, not a
 * graph of small objects that would live long enough to be promoted and collected late,
 * and a response a suspended watcher drops is never decoded at all.
 */
import type { WatchRequest } from "./proto/generated/etcdserverpb/WatchRequest.js"
import type { Event__Output } from "./proto/generated/mvccpb/Event.js"
import { methods } from "./proto/loader.js"
import type { StreamMethod } from "./transport.js"

/** The events of a response, still encoded. */
export interface EncodedEvents {
  readonly count: number
  /** The bytes of keys and values, previous ones included. */
  readonly bytes: number
  /** The mod revisions of the first and the last event (0 when there is none). */
  readonly firstRevision: bigint
  readonly lastRevision: bigint
  /** Decodes them (each call decodes again). */
  readonly decode: () => ReadonlyArray<Event__Output>
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
  readonly events: EncodedEvents
}

// field numbers of the messages read here
const response = { header: 1, watchId: 2, created: 3, canceled: 4, compactRevision: 5, cancelReason: 6, fragment: 7 }
const eventsField = 11
const headerRevision = 3
const eventKv = 2
const eventPrevKv = 3
const kvKey = 1
const kvModRevision = 3
const kvValue = 5

const wire = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 }

/** A cursor over protobuf bytes. */
class Reader {
  pos: number
  constructor(readonly buf: Buffer, start: number, readonly end: number) {
    this.pos = start
  }

  /** A varint that fits in 32 bits (tags, lengths, enums, bools). */
  uint32(): number {
    let value = 0
    let shift = 0
    while (true) {
      if (this.pos >= this.end) throw new Error("truncated watch response")
      const byte = this.buf[this.pos++]
      if (shift < 28) value |= (byte & 0x7f) << shift
      else if (shift === 28) value += (byte & 0x7f) * 2 ** 28
      if ((byte & 0x80) === 0) return value
      shift += 7
      if (shift > 63) throw new Error("malformed varint in watch response")
    }
  }

  /** A varint read as a signed 64-bit integer. */
  int64(): bigint {
    let lo = 0
    let hi = 0
    let shift = 0
    while (true) {
      if (this.pos >= this.end) throw new Error("truncated watch response")
      const byte = this.buf[this.pos++]
      const bits = byte & 0x7f
      if (shift < 28) lo |= bits << shift
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28
        hi |= bits >>> 4
      } else hi |= bits << (shift - 32)
      if ((byte & 0x80) === 0) break
      shift += 7
      if (shift > 63) throw new Error("malformed varint in watch response")
    }
    // the common case, a positive revision below 2^32, without a shift
    if (hi === 0 && lo >= 0) return BigInt(lo)
    return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0))
  }

  /** The end of a length-delimited field whose tag was just read. */
  delimited(): number {
    const length = this.uint32()
    const end = this.pos + length
    if (end > this.end) throw new Error("truncated watch response")
    return end
  }

  skip(wireType: number): void {
    switch (wireType) {
      case wire.varint:
        // past the bytes only: a cluster or member ID would cost a BigInt on every response
        while (this.pos < this.end && (this.buf[this.pos] & 0x80) !== 0) this.pos++
        this.pos++
        break
      case wire.fixed64:
        this.pos += 8
        break
      case wire.bytes:
        this.pos = this.delimited()
        return
      case wire.fixed32:
        this.pos += 4
        break
      default:
        throw new Error(`unexpected wire type ${wireType} in watch response`)
    }
    if (this.pos > this.end) throw new Error("truncated watch response")
  }
}

/** Reads a KeyValue: its key and value sizes, and its mod revision. */
const readKeyValue = (reader: Reader, end: number, into: { bytes: number; modRevision: bigint }): void => {
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
const decodeNone = () => noEvents
const none: EncodedEvents = { count: 0, bytes: 0, firstRevision: 0n, lastRevision: 0n, decode: decodeNone }

const fullDecode = methods.watch.watch.responseDeserialize

/**
 * Reads a WatchResponse. The events are decoded later, from the received bytes, by the
 * generated decoder (given only the events' part of the message, it sees a response
 * that holds nothing else).
 */
export const readWatchResponse = (buf: Buffer): WatchResponseHead => {
  const reader = new Reader(buf, 0, buf.length)
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
    const part = interleaved ? buf : buf.subarray(eventsStart, eventsEnd)
    events = {
      count,
      bytes: kv.bytes,
      firstRevision,
      lastRevision,
      decode: () => fullDecode(part).events
    }
  }
  return { revision, watchId, created, canceled, compactRevision, cancelReason, fragment, events }
}

/** The Watch method, its responses read by `readWatchResponse`. */
export const watchMethod: StreamMethod<WatchRequest, WatchResponseHead> = {
  path: methods.watch.watch.path,
  requestSerialize: methods.watch.watch.requestSerialize,
  responseDeserialize: readWatchResponse
}
