/**
 * The keepalive stream's messages, as the hub writes and reads them: a LeaseKeepAliveRequest
 * written straight from a lease's ID into the buffer of a tick's requests, and a
 * LeaseKeepAliveResponse read only as far as its ID and TTL, into one reused record. An ID
 * is kept as three small integers (`setIdParts`), compared without an allocation and
 * enough to write the request again.
 */
import { int64Varint } from "../data/codec.js"
import { prefixLength } from "./grpcFrames.js"

/**
 * A keepalive answer, read only as far as the hub needs: one record, filled again by
 * `readAnswer` for each answer, so that an answer allocates nothing.
 */
export interface Answer {
  /** Where the lease ID's varint starts and ends in the message (both 0 when absent). */
  idStart: number
  idEnd: number
  /** The ID as `setIdParts` gives it. */
  id0: number
  id1: number
  id2: number
  /** The TTL the server granted, in seconds; -1 for a negative one. */
  ttl: number
}

/** An ID's varint bytes (field 1 of a LeaseKeepAliveRequest, its only field). */
export const idVarint = (id: bigint): Buffer => Buffer.from(int64Varint(id))

/** The payload bits of the (at most) four varint bytes from `start` on, below `end`. */
const idPart = (bytes: Uint8Array, start: number, end: number): number => {
  let part = 0
  for (let at = Math.min(end, start + 4) - 1; at >= start; at--) part = part * 128 + (bytes[at] & 0x7f)
  return part
}

/**
 * Sets `target`'s parts to the ID whose varint bytes are at [start, end) of `bytes`: three
 * small integers (below 2^28: V8 keeps them unboxed), compared
 * instead of the bytes: each byte's seven payload bits, four bytes to a part, the third
 * part also holding the length (a canonical varint is its payload bits and its length).
 */
export const setIdParts = (
  target: { id0: number; id1: number; id2: number },
  bytes: Uint8Array,
  start: number,
  end: number
): void => {
  target.id0 = idPart(bytes, start, end)
  target.id1 = idPart(bytes, start + 4, end)
  target.id2 = idPart(bytes, start + 8, end) * 16 + (end - start)
}

/** The length of the varint whose parts are `id0`, `id1` and `id2`. */
export const idLength = (parts: { readonly id2: number }): number => parts.id2 % 16

/** The length of the LeaseKeepAliveRequest for an ID of `length` varint bytes, framed: prefix, tag, ID. */
export const requestLength = (length: number): number => prefixLength + 1 + length

/**
 * Writes at `offset` the LeaseKeepAliveRequest for the ID whose parts `parts` holds, framed
 * as the stream sends it (gRPC's five-byte prefix, then field 1, `ID`, the only one), from
 * the parts alone; returns the offset after it.
 */
export const writeRequest = (
  target: Buffer,
  offset: number,
  parts: { readonly id0: number; readonly id1: number; readonly id2: number }
): number => {
  const length = idLength(parts)
  target[offset] = 0
  target.writeUInt32BE(length + 1, offset + 1)
  target[offset + prefixLength] = 0x08
  let at = offset + prefixLength + 1
  for (let i = 0; i < length; i++) {
    // parts are below 2^28: int32 arithmetic is exact
    const part = i < 4 ? parts.id0 : i < 8 ? parts.id1 : parts.id2 >>> 4
    const payload = (part >>> (7 * (i % 4))) & 0x7f
    target[at++] = i < length - 1 ? payload | 0x80 : payload
  }
  return at
}

/** The position after the varint at `position`. */
const skipVarint = (bytes: Uint8Array, position: number): number => {
  let end = position
  while (end < bytes.length && (bytes[end++] & 0x80) !== 0);
  return end
}

/** The varint at `position` (exact below 2^53), its end at `skipVarint`. */
const readVarint = (bytes: Uint8Array, position: number): number => {
  let value = 0
  let scale = 1
  for (let at = position; at < bytes.length; at++) {
    const byte = bytes[at]
    value += (byte & 0x7f) * scale
    scale *= 128
    if ((byte & 0x80) === 0) break
  }
  return value
}

/**
 * Reads a LeaseKeepAliveResponse into `answer`: `header` (1) is skipped, `ID` (2) located
 * and read as parts, `TTL` (3) read; nothing allocated.
 */
export const readAnswer = (bytes: Buffer, answer: Answer): void => {
  answer.idStart = 0
  answer.idEnd = 0
  let ttl = 0
  let position = 0
  while (position < bytes.length) {
    const tag = readVarint(bytes, position)
    position = skipVarint(bytes, position)
    const field = Math.floor(tag / 8)
    switch (tag % 8) {
      case 0: {
        const end = skipVarint(bytes, position)
        if (field === 2) {
          answer.idStart = position
          answer.idEnd = end
        }
        // a negative int64 takes ten bytes; a real TTL (at most 9e9 s) takes at most five
        if (field === 3) ttl = end - position > 8 ? -1 : readVarint(bytes, position)
        position = end
        break
      }
      case 1:
        position += 8
        break
      case 2: {
        const length = readVarint(bytes, position)
        position = skipVarint(bytes, position) + length
        break
      }
      case 5:
        position += 4
        break
      default:
        // a wire type protobuf no longer uses: nothing more can be read
        position = bytes.length
    }
  }
  answer.ttl = ttl
  setIdParts(answer, bytes, answer.idStart, answer.idEnd)
}
