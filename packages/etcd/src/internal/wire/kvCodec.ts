/** Builds KV requests from the public options and decodes the responses. */
import * as Option from "effect/Option"
import type { KeyRange } from "../../KeyRange.js"
import { KeyValue } from "../../KeyValue.js"
import type {
  DeleteOptions,
  DeleteResult,
  LeaseInput,
  PutOptions,
  PutResult,
  RangeOptions,
  RangeResult
} from "../../Kv.js"
import * as Printable from "../base/printable.js"
import { type Bytes, fromCount, fromInt64, toBuffer, toInt64 } from "../data/codec.js"
import type { DeleteRangeRequest } from "./proto/generated/etcdserverpb/DeleteRangeRequest.js"
import type { DeleteRangeResponse__Output } from "./proto/generated/etcdserverpb/DeleteRangeResponse.js"
import type { PutRequest } from "./proto/generated/etcdserverpb/PutRequest.js"
import type { PutResponse__Output } from "./proto/generated/etcdserverpb/PutResponse.js"
import type { RangeRequest } from "./proto/generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "./proto/generated/etcdserverpb/RangeResponse.js"
import type { ResponseHeader__Output } from "./proto/generated/etcdserverpb/ResponseHeader.js"
import type { KeyValue__Output } from "./proto/generated/mvccpb/KeyValue.js"

const sortOrders = { none: "NONE", ascend: "ASCEND", descend: "DESCEND" } as const
const sortTargets = { key: "KEY", version: "VERSION", create: "CREATE", mod: "MOD", value: "VALUE" } as const

/** A lease ID from `put`'s lease option. */
export const leaseIdOf = (lease: LeaseInput): bigint => typeof lease === "bigint" ? lease : lease.id

/** The RangeRequest for a key range and options. */
export const rangeRequest = (range: KeyRange, options: RangeOptions | undefined): RangeRequest => {
  const request: RangeRequest = { key: toBuffer(range.start) }
  if (range.end !== undefined) request.rangeEnd = toBuffer(range.end)
  if (options === undefined) return request
  if (options.revision !== undefined) request.revision = toInt64(options.revision)
  if (options.limit !== undefined) request.limit = toInt64(options.limit)
  if (options.sortOrder !== undefined) request.sortOrder = sortOrders[options.sortOrder]
  if (options.sortTarget !== undefined) request.sortTarget = sortTargets[options.sortTarget]
  if (options.serializable) request.serializable = true
  if (options.keysOnly) request.keysOnly = true
  if (options.countOnly) request.countOnly = true
  if (options.minModRevision !== undefined) request.minModRevision = toInt64(options.minModRevision)
  if (options.maxModRevision !== undefined) request.maxModRevision = toInt64(options.maxModRevision)
  if (options.minCreateRevision !== undefined) request.minCreateRevision = toInt64(options.minCreateRevision)
  if (options.maxCreateRevision !== undefined) request.maxCreateRevision = toInt64(options.maxCreateRevision)
  return request
}

/** The PutRequest for a key, value and options. */
export const putRequest = (key: Bytes, value: Bytes, options: PutOptions | undefined): PutRequest => {
  const request: PutRequest = { key: toBuffer(key) }
  if (!options?.ignoreValue) request.value = toBuffer(value)
  if (options === undefined) return request
  if (options.lease !== undefined) request.lease = toInt64(leaseIdOf(options.lease))
  if (options.prevKv) request.prevKv = true
  if (options.ignoreValue) request.ignoreValue = true
  if (options.ignoreLease) request.ignoreLease = true
  return request
}

/** The DeleteRangeRequest for a key range and options. */
export const deleteRequest = (range: KeyRange, options: DeleteOptions | undefined): DeleteRangeRequest => {
  const request: DeleteRangeRequest = { key: toBuffer(range.start) }
  if (range.end !== undefined) request.rangeEnd = toBuffer(range.end)
  if (options?.prevKv) request.prevKv = true
  return request
}

/** A KeyValue from the wire. */
export const decodeKeyValue = (kv: KeyValue__Output): KeyValue =>
  new KeyValue(
    kv.key,
    kv.value,
    fromInt64(kv.createRevision),
    fromInt64(kv.modRevision),
    fromCount(kv.version),
    fromInt64(kv.lease)
  )

/** The revision in a response header. */
export const revisionOf = (header: ResponseHeader__Output | null | undefined): bigint =>
  header ? fromInt64(header.revision) : 0n

// The results are classes on `Printable.Class`: as cheap as the plain objects they stand
// for, and they print (bigints as decimal strings) wherever they are logged.

class RangeResultImpl extends Printable.Class implements RangeResult {
  constructor(
    readonly revision: bigint,
    readonly kvs: ReadonlyArray<KeyValue>,
    readonly more: boolean,
    readonly count: number
  ) {
    super()
  }
}

class PutResultImpl extends Printable.Class implements PutResult {
  constructor(readonly revision: bigint, readonly prevKv: Option.Option<KeyValue>) {
    super()
  }
}

class DeleteResultImpl extends Printable.Class implements DeleteResult {
  constructor(readonly revision: bigint, readonly deleted: number, readonly prevKvs: ReadonlyArray<KeyValue>) {
    super()
  }
}

/** Decodes a RangeResponse. */
export const decodeRange = (response: RangeResponse__Output): RangeResult =>
  new RangeResultImpl(
    revisionOf(response.header),
    response.kvs.map(decodeKeyValue),
    response.more,
    fromCount(response.count)
  )

/** Decodes a PutResponse. */
export const decodePut = (response: PutResponse__Output): PutResult =>
  new PutResultImpl(
    revisionOf(response.header),
    response.prevKv ? Option.some(decodeKeyValue(response.prevKv)) : Option.none()
  )

/** Decodes a DeleteRangeResponse. */
export const decodeDelete = (response: DeleteRangeResponse__Output): DeleteResult =>
  new DeleteResultImpl(revisionOf(response.header), fromCount(response.deleted), response.prevKvs.map(decodeKeyValue))
