/** Encodes transactions (compares and ops) and decodes their results. */
import * as Effect from "effect/Effect"
import type * as Compare from "../../Compare.js"
import * as EtcdError from "../../EtcdError.js"
import type * as Op from "../../Op.js"
import type { TxnResult } from "../../Txn.js"
import * as Printable from "../base/printable.js"
import { type Bytes, toBuffer, toInt64 } from "../data/codec.js"
import * as Validate from "../data/validate.js"
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

const operators: ReadonlyArray<string> = ["=", "!=", "<", ">"]
const compareTargets: ReadonlyArray<string> = ["value", "version", "createRevision", "modRevision", "lease"]

const isTagged = (value: unknown, tag: string): boolean =>
  typeof value === "object" && value !== null && (value as { _tag?: unknown })._tag === tag

/** A problem with one compare, named after its position. */
const compareProblem = (compare: Compare.Compare, at: string): Validate.Problem => {
  if (!isTagged(compare, "Compare")) return Validate.invalid(at, compare, "a Compare (from Compare.value(key) ...)")
  return Validate.keyRange(`${at}.keys`, compare.keys) ??
    Validate.oneOf(`${at}.target`, compare.target, compareTargets) ??
    Validate.oneOf(`${at}.operator`, compare.operator, operators) ??
    (compare.target === "value"
      ? Validate.bytes(`${at} operand`, compare.operand)
      // any int64, as etcd accepts: `version > -1` is the compare that always holds
      : Validate.int64(`${at} operand (${compare.target})`, compare.operand, Validate.minInt64))
}

/** A problem with one op (and the ops nested in it), named after its position. */
const opProblem = (op: Op.Op, at: string): Validate.Problem => {
  if (typeof op !== "object" || op === null) return Validate.invalid(at, op, "an Op (from Op.get, Op.put ...)")
  switch (op._tag) {
    case "Get":
      return Validate.keyRange(`${at}.keys`, op.keys) ?? Validate.rangeOptions(op.options, `${at}.`)
    case "Put":
      return Validate.bytes(`${at}.key`, op.key) ?? Validate.bytes(`${at}.value`, op.value) ??
        Validate.putOptions(op.options, `${at}.`)
    case "Delete":
      return Validate.keyRange(`${at}.keys`, op.keys) ?? Validate.deleteOptions(op.options, `${at}.`)
    case "Txn":
      return branchesProblem(op.compares, op.success, op.failure, `${at}.`)
    default:
      return Validate.invalid(at, op, "an Op (from Op.get, Op.put ...)")
  }
}

const listProblem = <A>(
  list: ReadonlyArray<A>,
  at: string,
  f: (item: A, at: string) => Validate.Problem
): Validate.Problem => {
  if (!Array.isArray(list)) return Validate.invalid(at, list, "an array")
  for (let i = 0; i < list.length; i++) {
    // checked under a short name, and again under its position only when it fails: no
    // name is built for an item that is fine
    if (f(list[i], "") !== undefined) return f(list[i], `${at}[${i}]`)
  }
  return undefined
}

const branchesProblem = (
  compares: ReadonlyArray<Compare.Compare>,
  success: ReadonlyArray<Op.Op>,
  failure: ReadonlyArray<Op.Op>,
  prefix: string
): Validate.Problem =>
  listProblem(compares, `${prefix}compares`, compareProblem) ??
    listProblem(success, `${prefix}success`, opProblem) ??
    listProblem(failure, `${prefix}failure`, opProblem)

/**
 * Fails with `InvalidArgument` naming the compare or op (`compares[0] operand`,
 * `success[1].revision`, ...) when any is malformed, and with `EmptyKey` when any names
 * an empty key; nothing is sent then.
 */
export const validate = (
  compares: ReadonlyArray<Compare.Compare>,
  success: ReadonlyArray<Op.Op>,
  failure: ReadonlyArray<Op.Op>
): Effect.Effect<void, EtcdError.EmptyKey | EtcdError.InvalidArgument> =>
  Effect.suspend(() => {
    const problem = problemOf(compares, success, failure)
    return problem === undefined ? Effect.void : Effect.fail(problem)
  })

/** What `validate` fails with, now, or `undefined` for a txn that may be sent. */
export const problemOf = (
  compares: ReadonlyArray<Compare.Compare>,
  success: ReadonlyArray<Op.Op>,
  failure: ReadonlyArray<Op.Op>
): EtcdError.EmptyKey | EtcdError.InvalidArgument | undefined => {
  const problem = Validate.problemOf(() => branchesProblem(compares, success, failure, ""))
  if (problem !== undefined) return problem
  for (const compare of compares) {
    const found = Validate.keyRangeProblem("key", compare.keys)
    if (found !== undefined) return found
  }
  return keysProblem(success) ?? keysProblem(failure)
}

/** The first empty key among the ops (their keys are known to be bytes by now). */
const keysProblem = (ops: ReadonlyArray<Op.Op>): EtcdError.EmptyKey | undefined => {
  for (const op of ops) {
    switch (op._tag) {
      case "Get":
      case "Delete":
        if (op.keys.start.length === 0) return new EtcdError.EmptyKey({})
        break
      case "Put":
        if (op.key.length === 0) return new EtcdError.EmptyKey({})
        break
      case "Txn": {
        const found = keysProblem(op.success) ?? keysProblem(op.failure)
        if (found !== undefined) return found
      }
    }
  }
  return undefined
}

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

/** A txn's result: prints safely (see `Printable`), costs what a plain object does. */
class TxnResultImpl extends Printable.Class {
  constructor(readonly succeeded: boolean, readonly revision: bigint, readonly results: ReadonlyArray<unknown>) {
    super()
  }
}

/** Decodes a TxnResponse against the ops that were sent. */
export const decodeTxn = <Success extends ReadonlyArray<Op.Op>, Failure extends ReadonlyArray<Op.Op>>(
  success: Success,
  failure: Failure,
  response: TxnResponse__Output
): TxnResult<Success, Failure> => {
  const ops: ReadonlyArray<Op.Op> = response.succeeded ? success : failure
  return new TxnResultImpl(
    response.succeeded,
    KvCodec.revisionOf(response.header),
    response.responses.map((item, i) => decodeOp(ops[i], item))
  ) as unknown as TxnResult<Success, Failure>
}
