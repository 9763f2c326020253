/**
 * The encoder and decoder of LeaseGrant, in place of the generated ones: the first call of
 * every scoped lease and of every lock on a lease of its own. The generated code makes a
 * `Long` per int64 field (the lease ID is above 2^53) and copies each message into a plain
 * object; these write and read the same bytes and objects directly (int64 as decimal text,
 * an absent header as `null`, defaults filled). LeaseRevoke, the other call, is coded in
 * leaseRpc.ts (its answer is not even read).
 */
import type { LeaseGrantRequest } from "./generated/etcdserverpb/LeaseGrantRequest.js"
import type { LeaseGrantResponse__Output } from "./generated/etcdserverpb/LeaseGrantResponse.js"
import type { ResponseHeader__Output } from "./generated/etcdserverpb/ResponseHeader.js"
import { encoder, type Writer } from "./kvRequests.js"
import { readHeader } from "./kvResponses.js"
import { decoderOf, wire, type WireReader } from "./wireReader.js"

const writeGrant = (w: Writer, r: LeaseGrantRequest): void => {
  w.int64(1, r.TTL)
  w.int64(2, r.ID)
}

const readGrant = (reader: WireReader, end: number): LeaseGrantResponse__Output => {
  let header: ResponseHeader__Output | null = null
  let ID = "0"
  let TTL = "0"
  let error = ""
  while (reader.pos < end) {
    const tag = reader.uint32()
    switch (tag) {
      case (1 << 3) | wire.bytes:
        header = readHeader(reader, reader.delimited())
        break
      case (2 << 3) | wire.varint:
        ID = reader.int64Text()
        break
      case (3 << 3) | wire.varint:
        TTL = reader.int64Text()
        break
      case (4 << 3) | wire.bytes:
        error = reader.bytes().toString("utf8")
        break
      default:
        reader.skip(tag & 7)
    }
  }
  return { header, ID, TTL, error }
}

/** The encoder, falling back to the generated `generated` for what it leaves to it. */
export const leaseGrantEncoder = (generated: (value: LeaseGrantRequest) => Buffer) => encoder(writeGrant, generated)

/** Decodes a LeaseGrantResponse. */
export const decodeLeaseGrantResponse = decoderOf(readGrant, "Lease response")
