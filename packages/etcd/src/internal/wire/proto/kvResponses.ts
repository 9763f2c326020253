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
import { decoderOf, readKeyValue, wire, type WireReader } from "./wireReader.js"

/** A response header, the first field of every response. */
export const readHeader = (reader: WireReader, end: number): ResponseHeader__Output => {
  let clusterId = "0"
  let memberId = "0"
  let revision = "0"
  let raftTerm = "0"
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.varint:
        clusterId = reader.uint64Text()
        break
      case (2 << 3) | wire.varint:
        memberId = reader.uint64Text()
        break
      case (3 << 3) | wire.varint:
        revision = reader.int64Text()
        break
      case (4 << 3) | wire.varint:
        raftTerm = reader.uint64Text()
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { clusterId, memberId, revision, raftTerm }
}

/** The field's message, when the tag says it is length-delimited (anything else is skipped). */
const delimitedEnd = (reader: WireReader, tag: number): number | undefined => {
  if ((tag & 7) === wire.bytes) return reader.delimited()
  reader.skip(tag & 7)
  return undefined
}

const readRange = (reader: WireReader, end: number): RangeResponse__Output => {
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
        count = reader.int64Text()
        break
      default:
        reader.skip(tag & 7)
    }
  }
  reader.pos = end
  return { header, kvs, more, count }
}

const readPut = (reader: WireReader, end: number): PutResponse__Output => {
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

const readDelete = (reader: WireReader, end: number): DeleteRangeResponse__Output => {
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
        deleted = reader.int64Text()
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

const readResponseOp = (reader: WireReader, end: number): ResponseOp__Output => {
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

const readTxn = (reader: WireReader, end: number): TxnResponse__Output => {
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

const decoder = <A>(read: (reader: WireReader, end: number) => A) => decoderOf(read, "KV response")

/** Decodes a RangeResponse. */
export const decodeRangeResponse = decoder(readRange)
/** Decodes a PutResponse. */
export const decodePutResponse = decoder(readPut)
/** Decodes a DeleteRangeResponse. */
export const decodeDeleteRangeResponse = decoder(readDelete)
/** Decodes a TxnResponse. */
export const decodeTxnResponse = decoder(readTxn)
