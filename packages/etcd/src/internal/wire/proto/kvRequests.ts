/**
 * Encoders of the KV service's requests (Range, Put, DeleteRange, Txn), in place of the
 * generated ones, which first copy a request into a message object per message (a `Long`
 * per int64 field) and then write it through a list of operations. Here the request is
 * written straight into one buffer. They take what the client builds (bytes as `Buffer`
 * or `Uint8Array`, int64 as decimal text or a number, enums by name or number); a request
 * with anything else in it (a string where bytes go) is left to the generated encoder.
 */
import type { Compare } from "./generated/etcdserverpb/Compare.js"
import type { DeleteRangeRequest } from "./generated/etcdserverpb/DeleteRangeRequest.js"
import type { PutRequest } from "./generated/etcdserverpb/PutRequest.js"
import type { RangeRequest } from "./generated/etcdserverpb/RangeRequest.js"
import type { RequestOp } from "./generated/etcdserverpb/RequestOp.js"
import type { TxnRequest } from "./generated/etcdserverpb/TxnRequest.js"

/** Thrown when a request holds a value these encoders leave to the generated one. */
const unsupported = Symbol("unsupported")

const wire = { varint: 0, bytes: 2 }

/** A growing buffer written front to back. */
export class Writer {
  buf: Buffer
  pos = 0
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }

  ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + more))
    this.buf.copy(grown, 0, 0, this.pos)
    this.buf = grown
  }

  /** A varint of a non-negative number below 2^32. */
  uint32(value: number): void {
    this.ensure(5)
    while (value > 0x7f) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80
      value >>>= 7
    }
    this.buf[this.pos++] = value
  }

  /** A 64-bit varint from its two unsigned 32-bit halves. */
  varint64(lo: number, hi: number): void {
    this.ensure(10)
    while (hi !== 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80
      lo = ((lo >>> 7) | (hi << 25)) >>> 0
      hi >>>= 7
    }
    this.buf[this.pos++] = lo
  }

  tag(field: number, wireType: number): void {
    this.uint32((field << 3) | wireType)
  }

  bytes(field: number, value: unknown): void {
    if (value === undefined || value === null) return
    if (!(value instanceof Uint8Array)) throw unsupported
    this.tag(field, wire.bytes)
    this.uint32(value.length)
    this.ensure(value.length)
    this.buf.set(value, this.pos)
    this.pos += value.length
  }

  bool(field: number, value: unknown): void {
    if (value === undefined || value === null || value === false) return
    if (value !== true) throw unsupported
    this.tag(field, wire.varint)
    this.buf[this.pos++] = 1
  }

  /** An int64; zero is left out (proto3), unless `present` (a oneof's case is written whatever its value). */
  int64(field: number, value: unknown, present = false): void {
    if (value === undefined || value === null) return
    let number: number
    if (typeof value === "number") number = value
    else if (typeof value === "string" && value.length <= 15 && /^-?\d+$/.test(value)) number = Number(value)
    else if (typeof value === "string" && /^-?\d+$/.test(value)) {
      const big = BigInt.asUintN(64, BigInt(value))
      if (big === 0n && !present) return
      this.tag(field, wire.varint)
      this.varint64(Number(big & 0xffffffffn), Number(big >> 32n))
      return
    } else throw unsupported
    if (!Number.isSafeInteger(number)) throw unsupported
    if (number === 0 && !present) return
    this.tag(field, wire.varint)
    if (number >= 0) this.varint64(number % 4294967296, Math.floor(number / 4294967296))
    else {
      const big = BigInt.asUintN(64, BigInt(number))
      this.varint64(Number(big & 0xffffffffn), Number(big >> 32n))
    }
  }

  enumeration(field: number, value: unknown, names: Readonly<Record<string, number>>): void {
    if (value === undefined || value === null) return
    const number = typeof value === "number" ? value : typeof value === "string" ? names[value] : undefined
    if (number === undefined || !Number.isInteger(number) || number < 0) throw unsupported
    if (number === 0) return
    this.tag(field, wire.varint)
    this.uint32(number)
  }

  /** A packed repeated enum (proto3's default for repeated scalars); an empty one is left out. */
  packedEnumeration(field: number, values: unknown, names: Readonly<Record<string, number>>): void {
    if (values === undefined || values === null) return
    if (!Array.isArray(values)) throw unsupported
    if (values.length === 0) return
    this.message(field, values, (writer, all) => {
      for (const value of all) {
        const number = typeof value === "number" ? value : typeof value === "string" ? names[value] : undefined
        if (number === undefined || !Number.isInteger(number) || number < 0) throw unsupported
        writer.uint32(number)
      }
    })
  }

  /** A nested message: its length is written once its content is. */
  message<A>(field: number, value: A, write: (writer: Writer, value: A) => void): void {
    this.tag(field, wire.bytes)
    // room for the longest length, closed up once the length is known
    this.ensure(5)
    const lengthAt = this.pos
    this.pos += 5
    write(this, value)
    const length = this.pos - lengthAt - 5
    const lengthSize = length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5
    if (lengthSize < 5) this.buf.copyWithin(lengthAt + lengthSize, lengthAt + 5, this.pos)
    this.pos -= 5 - lengthSize
    const end = this.pos
    this.pos = lengthAt
    this.uint32(length)
    this.pos = end
  }
}

const sortOrders: Readonly<Record<string, number>> = { NONE: 0, ASCEND: 1, DESCEND: 2 }
const sortTargets: Readonly<Record<string, number>> = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 }
const compareResults: Readonly<Record<string, number>> = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 }
const compareTargets: Readonly<Record<string, number>> = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 }

const writeRange = (w: Writer, r: RangeRequest): void => {
  w.bytes(1, r.key)
  w.bytes(2, r.rangeEnd)
  w.int64(3, r.limit)
  w.int64(4, r.revision)
  w.enumeration(5, r.sortOrder, sortOrders)
  w.enumeration(6, r.sortTarget, sortTargets)
  w.bool(7, r.serializable)
  w.bool(8, r.keysOnly)
  w.bool(9, r.countOnly)
  w.int64(10, r.minModRevision)
  w.int64(11, r.maxModRevision)
  w.int64(12, r.minCreateRevision)
  w.int64(13, r.maxCreateRevision)
}

const writePut = (w: Writer, r: PutRequest): void => {
  w.bytes(1, r.key)
  w.bytes(2, r.value)
  w.int64(3, r.lease)
  w.bool(4, r.prevKv)
  w.bool(5, r.ignoreValue)
  w.bool(6, r.ignoreLease)
}

const writeDelete = (w: Writer, r: DeleteRangeRequest): void => {
  w.bytes(1, r.key)
  w.bytes(2, r.rangeEnd)
  w.bool(3, r.prevKv)
}

const writeCompare = (w: Writer, c: Compare): void => {
  w.enumeration(1, c.result, compareResults)
  w.enumeration(2, c.target, compareTargets)
  w.bytes(3, c.key)
  // the target_union oneof: the case set (the generated encoder writes any field set)
  w.int64(4, c.version, true)
  w.int64(5, c.createRevision, true)
  w.int64(6, c.modRevision, true)
  w.bytes(7, c.value)
  w.int64(8, c.lease, true)
  w.bytes(64, c.rangeEnd)
}

const writeOp = (w: Writer, op: RequestOp): void => {
  if (op.requestRange != null) w.message(1, op.requestRange, writeRange)
  if (op.requestPut != null) w.message(2, op.requestPut, writePut)
  if (op.requestDeleteRange != null) w.message(3, op.requestDeleteRange, writeDelete)
  if (op.requestTxn != null) w.message(4, op.requestTxn, writeTxn)
}

const writeTxn = (w: Writer, r: TxnRequest): void => {
  if (r.compare != null) { for (const compare of r.compare) w.message(1, compare, writeCompare) }
  if (r.success != null) { for (const op of r.success) w.message(2, op, writeOp) }
  if (r.failure != null) { for (const op of r.failure) w.message(3, op, writeOp) }
}

/** An encoder that writes with `write`, and leaves to `generated` a request it does not take. */
export const encoder =
  <A>(write: (writer: Writer, value: A) => void, generated: (value: A) => Buffer) => (value: A): Buffer => {
    try {
      const writer = new Writer(256)
      write(writer, value)
      return writer.buf.subarray(0, writer.pos)
    } catch (error) {
      if (error === unsupported) return generated(value)
      throw error
    }
  }

/** The encoders, each falling back to the generated `generated` for what it leaves to it. */
export const encoders = (generated: {
  readonly range: (value: RangeRequest) => Buffer
  readonly put: (value: PutRequest) => Buffer
  readonly deleteRange: (value: DeleteRangeRequest) => Buffer
  readonly txn: (value: TxnRequest) => Buffer
}) => ({
  range: encoder(writeRange, generated.range),
  put: encoder(writePut, generated.put),
  deleteRange: encoder(writeDelete, generated.deleteRange),
  txn: encoder(writeTxn, generated.txn)
})
