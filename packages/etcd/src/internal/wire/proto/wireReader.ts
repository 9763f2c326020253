/**
 * A cursor over protobuf bytes, and the KeyValue message read with it: what the
 * hand-written decoders of KV responses (`kvResponses.ts`) and watch responses
 * (`watchCodec.ts`) share. int64 fields come as the generated decoders give them
 * (decimal text) or as a `bigint`, never through a `Long`.
 */
import type { KeyValue__Output } from "./generated/mvccpb/KeyValue.js"

/** The wire types of protobuf's encoding. */
export const wire = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const

/** The last large int64 turned into text: a member's cluster and member IDs come on every response. */
const large = { lo: -1, hi: -1, signed: false, text: "" }

/** A 64-bit integer given as its unsigned 32-bit halves, in decimal. */
const int64Text = (lo: number, hi: number, signed: boolean): string => {
  if (hi === 0) return String(lo)
  // below 2^53 a number is exact
  if (hi < 0x200000) return String(hi * 4294967296 + lo)
  if (large.lo === lo && large.hi === hi && large.signed === signed) return large.text
  const unsigned = (BigInt(hi) << 32n) | BigInt(lo)
  const text = (signed ? BigInt.asIntN(64, unsigned) : unsigned).toString()
  large.lo = lo
  large.hi = hi
  large.signed = signed
  large.text = text
  return text
}

/** Reads protobuf fields from `buf[start, end)`; `message` names what is read, in errors. */
export class WireReader {
  pos: number
  /** The unsigned 32-bit halves of the last varint read by `varint64`. */
  lo = 0
  hi = 0
  constructor(readonly buf: Buffer, start: number, readonly end: number, readonly message: string) {
    this.pos = start
  }

  truncated(): Error {
    return new Error(`truncated ${this.message}`)
  }

  /** A varint that fits in 32 bits (tags, lengths, enums, bools). */
  uint32(): number {
    let value = 0
    let shift = 0
    while (true) {
      if (this.pos >= this.end) throw this.truncated()
      const byte = this.buf[this.pos++]
      if (shift < 28) value |= (byte & 0x7f) << shift
      else if (shift === 28) value += (byte & 0x7f) * 2 ** 28
      if ((byte & 0x80) === 0) return value >>> 0
      shift += 7
      if (shift > 63) throw new Error(`malformed varint in ${this.message}`)
    }
  }

  /** A 64-bit varint, into `lo` and `hi`. */
  varint64(): void {
    let lo = 0
    let hi = 0
    let shift = 0
    while (true) {
      if (this.pos >= this.end) throw this.truncated()
      const byte = this.buf[this.pos++]
      const bits = byte & 0x7f
      if (shift < 28) lo |= bits << shift
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28
        hi |= bits >>> 4
      } else if (shift < 64) hi |= bits << (shift - 32)
      if ((byte & 0x80) === 0) break
      shift += 7
      if (shift > 63) throw new Error(`malformed varint in ${this.message}`)
    }
    this.lo = lo >>> 0
    this.hi = hi >>> 0
  }

  /** An int64 as a `bigint`. */
  int64(): bigint {
    this.varint64()
    if (this.hi === 0) return BigInt(this.lo)
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo))
  }

  /** An int64 as decimal text. */
  int64Text(): string {
    this.varint64()
    return int64Text(this.lo, this.hi, true)
  }

  /** A uint64 as decimal text. */
  uint64Text(): string {
    this.varint64()
    return int64Text(this.lo, this.hi, false)
  }

  bool(): boolean {
    return this.uint32() !== 0
  }

  /** The end of a length-delimited field whose tag was just read. */
  delimited(): number {
    const length = this.uint32()
    const end = this.pos + length
    if (end > this.end) throw this.truncated()
    return end
  }

  /** The bytes of a length-delimited field, as a view of the received buffer. */
  bytes(): Buffer {
    const end = this.delimited()
    const bytes = end === this.pos ? emptyBytes : this.buf.subarray(this.pos, end)
    this.pos = end
    return bytes
  }

  /** Steps over a field of this wire type whose tag was just read. */
  skip(wireType: number): void {
    switch (wireType) {
      case wire.varint:
        // past the bytes only: a cluster or member ID read here would cost a BigInt
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
        throw new Error(`unexpected wire type ${wireType} in ${this.message}`)
    }
    if (this.pos > this.end) throw this.truncated()
  }
}

const emptyBytes: Buffer = Buffer.alloc(0)

/** A KeyValue's field numbers. */
export const keyValueField = { key: 1, createRevision: 2, modRevision: 3, version: 4, value: 5, lease: 6 } as const

/**
 * Reads the KeyValue in `[reader.pos, end)` into what the generated decoder gives: int64s
 * in decimal, defaults filled, key and value as views of the received buffer.
 */
export const readKeyValue = (reader: WireReader, end: number): KeyValue__Output => {
  let key = emptyBytes
  let createRevision = "0"
  let modRevision = "0"
  let version = "0"
  let value = emptyBytes
  let lease = "0"
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (keyValueField.key << 3) | wire.bytes:
        key = reader.bytes()
        break
      case (keyValueField.createRevision << 3) | wire.varint:
        createRevision = reader.int64Text()
        break
      case (keyValueField.modRevision << 3) | wire.varint:
        modRevision = reader.int64Text()
        break
      case (keyValueField.version << 3) | wire.varint:
        version = reader.int64Text()
        break
      case (keyValueField.value << 3) | wire.bytes:
        value = reader.bytes()
        break
      case (keyValueField.lease << 3) | wire.varint:
        lease = reader.int64Text()
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { key, createRevision, modRevision, version, value, lease }
}

/** A decoder of a whole message with `read`; `message` names it in the error of a malformed one. */
export const decoderOf = <A>(read: (reader: WireReader, end: number) => A, message: string) => (buf: Buffer): A =>
  read(new WireReader(buf, 0, buf.length, message), buf.length)
