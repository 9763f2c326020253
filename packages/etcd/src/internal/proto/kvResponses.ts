/**
 * Decoders of the KV service's responses (Range, Put, DeleteRange, Txn), in place of the
 * generated ones: they build the same objects the generated decoders give (int64 as
 * decimal text, absent messages as `null`, defaults filled, a oneof's case named), read
 * straight from the received bytes. The generated decoder builds a message, a `Long` per
 * int64 field, and then a copy of it all as plain objects; the header's cluster and
 * member IDs (above 2^53) each cost a `Long` division loop on every response. Here each
 * object is built once, an int64 below 2^53 is a number's text, and the IDs, the same on
 * every response of a member, are read once.
 */
import type { DeleteRangeResponse__Output } from "./generated/etcdserverpb/DeleteRangeResponse.js"
import type { PutResponse__Output } from "./generated/etcdserverpb/PutResponse.js"
import type { RangeResponse__Output } from "./generated/etcdserverpb/RangeResponse.js"
import type { ResponseHeader__Output } from "./generated/etcdserverpb/ResponseHeader.js"
import type { ResponseOp__Output } from "./generated/etcdserverpb/ResponseOp.js"
import type { TxnResponse__Output } from "./generated/etcdserverpb/TxnResponse.js"
import type { KeyValue__Output } from "./generated/mvccpb/KeyValue.js"

const wire = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 }

const truncated = () => new Error("truncated KV response")

/** A cursor over protobuf bytes. */
class Reader {
  pos: number
  /** The two halves of the last varint read by `varint64`. */
  lo = 0
  hi = 0
  constructor(readonly buf: Buffer, start: number, readonly end: number) {
    this.pos = start
  }

  /** A varint that fits in 32 bits (tags, lengths, enums, bools). */
  uint32(): number {
    let value = 0
    let shift = 0
    while (true) {
      if (this.pos >= this.end) throw truncated()
      const byte = this.buf[this.pos++]
      if (shift < 28) value |= (byte & 0x7f) << shift
      else if (shift === 28) value += (byte & 0x7f) * 2 ** 28
      if ((byte & 0x80) === 0) return value >>> 0
      shift += 7
      if (shift > 63) throw new Error("malformed varint in KV response")
    }
  }

  /** A 64-bit varint, into `lo` and `hi` (unsigned 32-bit halves). */
  varint64(): void {
    let lo = 0
    let hi = 0
    let shift = 0
    while (true) {
      if (this.pos >= this.end) throw truncated()
      const byte = this.buf[this.pos++]
      const bits = byte & 0x7f
      if (shift < 28) lo |= bits << shift
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28
        hi |= bits >>> 4
      } else if (shift < 64) hi |= bits << (shift - 32)
      if ((byte & 0x80) === 0) break
      shift += 7
      if (shift > 63) throw new Error("malformed varint in KV response")
    }
    this.lo = lo >>> 0
    this.hi = hi >>> 0
  }

  /** An int64 as decimal text. */
  int64(): string {
    this.varint64()
    return int64Text(this.lo, this.hi, true)
  }

  /** A uint64 as decimal text. */
  uint64(): string {
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
    if (end > this.end) throw truncated()
    return end
  }

  /** The bytes of a length-delimited field, as a view of the received buffer. */
  bytes(): Buffer {
    const end = this.delimited()
    const bytes = this.buf.subarray(this.pos, end)
    this.pos = end
    return bytes
  }

  skip(wireType: number): void {
    switch (wireType) {
      case wire.varint:
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
        throw new Error(`unexpected wire type ${wireType} in KV response`)
    }
    if (this.pos > this.end) throw truncated()
  }
}

/** The last large int64 turned into text: a member's cluster and member IDs come on every response. */
const large = { lo: -1, hi: -1, signed: false, text: "" }

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

const emptyBytes = (): Buffer => Buffer.alloc(0)

const readHeader = (reader: Reader, end: number): ResponseHeader__Output => {
  let clusterId = "0"
  let memberId = "0"
  let revision = "0"
  let raftTerm = "0"
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.varint:
        clusterId = reader.uint64()
        break
      case (2 << 3) | wire.varint:
        memberId = reader.uint64()
        break
      case (3 << 3) | wire.varint:
        revision = reader.int64()
        break
      case (4 << 3) | wire.varint:
        raftTerm = reader.uint64()
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { clusterId, memberId, revision, raftTerm }
}

const readKeyValue = (reader: Reader, end: number): KeyValue__Output => {
  let key: Buffer | undefined
  let createRevision = "0"
  let modRevision = "0"
  let version = "0"
  let value: Buffer | undefined
  let lease = "0"
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.bytes:
        key = reader.bytes()
        break
      case (2 << 3) | wire.varint:
        createRevision = reader.int64()
        break
      case (3 << 3) | wire.varint:
        modRevision = reader.int64()
        break
      case (4 << 3) | wire.varint:
        version = reader.int64()
        break
      case (5 << 3) | wire.bytes:
        value = reader.bytes()
        break
      case (6 << 3) | wire.varint:
        lease = reader.int64()
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return {
    key: key ?? emptyBytes(),
    createRevision,
    modRevision,
    version,
    value: value ?? emptyBytes(),
    lease
  }
}

/** The field's message, when the tag says it is length-delimited (anything else is skipped). */
const delimitedEnd = (reader: Reader, tag: number): number | undefined => {
  if ((tag & 7) === wire.bytes) return reader.delimited()
  reader.skip(tag & 7)
  return undefined
}

const readRange = (reader: Reader, end: number): RangeResponse__Output => {
  let header: ResponseHeader__Output | null = null
  const kvs: Array<KeyValue__Output> = []
  let more = false
  let count = "0"
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.bytes:
        header = readHeader(reader, reader.delimited())
        break
      case (2 << 3) | wire.bytes:
        kvs.push(readKeyValue(reader, reader.delimited()))
        break
      case (3 << 3) | wire.varint:
        more = reader.bool()
        break
      case (4 << 3) | wire.varint:
        count = reader.int64()
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { header, kvs, more, count }
}

const readPut = (reader: Reader, end: number): PutResponse__Output => {
  let header: ResponseHeader__Output | null = null
  let prevKv: KeyValue__Output | null = null
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.bytes:
        header = readHeader(reader, reader.delimited())
        break
      case (2 << 3) | wire.bytes:
        prevKv = readKeyValue(reader, reader.delimited())
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { header, prevKv }
}

const readDelete = (reader: Reader, end: number): DeleteRangeResponse__Output => {
  let header: ResponseHeader__Output | null = null
  let deleted = "0"
  const prevKvs: Array<KeyValue__Output> = []
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.bytes:
        header = readHeader(reader, reader.delimited())
        break
      case (2 << 3) | wire.varint:
        deleted = reader.int64()
        break
      case (3 << 3) | wire.bytes:
        prevKvs.push(readKeyValue(reader, reader.delimited()))
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { header, deleted, prevKvs }
}

const readResponseOp = (reader: Reader, end: number): ResponseOp__Output => {
  // a oneof: the last case on the wire wins, as with the generated decoder
  let op: ResponseOp__Output = {}
  while (reader.pos < end) {
    const tag = reader.uint32()
    const field = tag >>> 3
    const fieldEnd = field >= 1 && field <= 4 ? delimitedEnd(reader, tag) : (reader.skip(tag & 7), undefined)
    if (fieldEnd === undefined) continue
    switch (field) {
      case 1:
        op = { responseRange: readRange(reader, fieldEnd), response: "responseRange" }
        break
      case 2:
        op = { responsePut: readPut(reader, fieldEnd), response: "responsePut" }
        break
      case 3:
        op = { responseDeleteRange: readDelete(reader, fieldEnd), response: "responseDeleteRange" }
        break
      case 4:
        op = { responseTxn: readTxn(reader, fieldEnd), response: "responseTxn" }
        break
    }
  }
  reader.pos = end
  return op
}

const readTxn = (reader: Reader, end: number): TxnResponse__Output => {
  let header: ResponseHeader__Output | null = null
  let succeeded = false
  const responses: Array<ResponseOp__Output> = []
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.bytes:
        header = readHeader(reader, reader.delimited())
        break
      case (2 << 3) | wire.varint:
        succeeded = reader.bool()
        break
      case (3 << 3) | wire.bytes:
        responses.push(readResponseOp(reader, reader.delimited()))
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { header, succeeded, responses }
}

const decoder = <A>(read: (reader: Reader, end: number) => A) => (buf: Buffer): A =>
  read(new Reader(buf, 0, buf.length), buf.length)

/** Decodes a RangeResponse. */
export const decodeRangeResponse = decoder(readRange)
/** Decodes a PutResponse. */
export const decodePutResponse = decoder(readPut)
/** Decodes a DeleteRangeResponse. */
export const decodeDeleteRangeResponse = decoder(readDelete)
/** Decodes a TxnResponse. */
export const decodeTxnResponse = decoder(readTxn)
