/** Encodes transactions (compares and ops) and decodes their results. */
import * as Effect from "effect/Effect"
import type * as Compare from "../Compare.js"
import type * as EtcdError from "../EtcdError.js"
import * as KeyRange from "../KeyRange.js"
import type * as Op from "../Op.js"
import type { TxnResult } from "../Txn.js"
import { type Bytes, toBuffer, toInt64 } from "./codec.js"
import * as KvCodec from "./kvCodec.js"
import type { Compare as CompareMessage } from "./proto/generated/etcdserverpb/Compare.js"
import type { RequestOp } from "./proto/generated/etcdserverpb/RequestOp.js"
import type { ResponseOp__Output } from "./proto/generated/etcdserverpb/ResponseOp.js"
import type { TxnRequest } from "./proto/generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "./proto/generated/etcdserverpb/TxnResponse.js"

const results = { "=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER" } as const
const targets = {
  value: "VALUE",
  version: "VERSION",
  createRevision: "CREATE",
  modRevision: "MOD",
  lease: "LEASE"
} as const

/** The wire form of a compare. */
export const encodeCompare = (compare: Compare.Compare): CompareMessage => {
  const message: CompareMessage = {
    key: toBuffer(compare.keys.start),
    result: results[compare.operator],
    target: targets[compare.target]
  }
  if (compare.keys.end !== undefined) message.rangeEnd = toBuffer(compare.keys.end)
  const operand = compare.operand
  switch (compare.target) {
    case "value":
      message.value = toBuffer(operand as Bytes)
      break
    case "version":
      message.version = toInt64(operand as bigint | number)
      break
    case "createRevision":
      message.createRevision = toInt64(operand as bigint | number)
      break
    case "modRevision":
      message.modRevision = toInt64(operand as bigint | number)
      break
    case "lease":
      message.lease = toInt64(operand as bigint | number)
      break
  }
  return message
}

/** The wire form of an op. */
export const encodeOp = (op: Op.Op): RequestOp => {
  switch (op._tag) {
    case "Get":
      return { requestRange: KvCodec.rangeRequest(op.keys, op.options) }
    case "Put":
      return { requestPut: KvCodec.putRequest(op.key, op.value, op.options) }
    case "Delete":
      return { requestDeleteRange: KvCodec.deleteRequest(op.keys, op.options) }
    case "Txn":
      return { requestTxn: encodeTxn(op.compares, op.success, op.failure) }
  }
}

/** The wire form of a transaction. */
export const encodeTxn = (
  compares: ReadonlyArray<Compare.Compare>,
  success: ReadonlyArray<Op.Op>,
  failure: ReadonlyArray<Op.Op>
): TxnRequest => ({
  compare: compares.map(encodeCompare),
  success: success.map(encodeOp),
  failure: failure.map(encodeOp)
})

const opKeys = (op: Op.Op): Array<KeyRange.KeyRange> => {
  switch (op._tag) {
    case "Get":
    case "Delete":
      return [op.keys]
    case "Put":
      return [KeyRange.key(op.key)]
    case "Txn":
      return [...op.success.flatMap(opKeys), ...op.failure.flatMap(opKeys)]
  }
}

/** Fails with `EmptyKey` when any op or compare names an empty key. */
export const validate = (
  compares: ReadonlyArray<Compare.Compare>,
  ops: ReadonlyArray<Op.Op>
): Effect.Effect<void, EtcdError.EmptyKey> =>
  Effect.forEach([...compares.map((compare) => compare.keys), ...ops.flatMap(opKeys)], KeyRange.validate, {
    discard: true
  })

const decodeOp = (op: Op.Op, response: ResponseOp__Output): unknown => {
  switch (op._tag) {
    case "Get":
      return KvCodec.decodeRange(response.responseRange!)
    case "Put":
      return KvCodec.decodePut(response.responsePut!)
    case "Delete":
      return KvCodec.decodeDelete(response.responseDeleteRange!)
    case "Txn":
      return decodeTxn(op.success, op.failure, response.responseTxn!)
  }
}

/** Decodes a TxnResponse against the ops that were sent. */
export const decodeTxn = <Success extends ReadonlyArray<Op.Op>, Failure extends ReadonlyArray<Op.Op>>(
  success: Success,
  failure: Failure,
  response: TxnResponse__Output
): TxnResult<Success, Failure> => {
  const ops: ReadonlyArray<Op.Op> = response.succeeded ? success : failure
  return {
    succeeded: response.succeeded,
    revision: KvCodec.revisionOf(response.header),
    results: response.responses.map((item, i) => decodeOp(ops[i], item))
  } as unknown as TxnResult<Success, Failure>
}
