/**
 * The operations of a transaction: reads, writes, deletes and nested transactions
 * (etcetra's `EtcdTransactionAction`). Ops are plain data; `Txn.txn` and
 * `Txn.txnCompare` run them, and each op's result has the type that matches the op.
 *
 * @example
 * ```ts
 * import { Op } from "effect-etcd"
 *
 * const ops = [
 *   Op.get("counter"),
 *   Op.put("counter", "8", { prevKv: true }),
 *   Op.delete("stale")
 * ] as const
 * ```
 *
 * @since 0.1.0
 */
import type * as Compare from "./Compare.js"
import type { Bytes } from "./internal/data/codec.js"
import * as KeyRange from "./KeyRange.js"
import type { DeleteOptions, DeleteResult, PutOptions, PutResult, RangeOptions, RangeResult } from "./Kv.js"
import type { TxnResult } from "./Txn.js"

/**
 * A read of a key or range.
 *
 * @since 0.1.0
 * @category models
 */
export interface Get {
  readonly _tag: "Get"
  readonly keys: KeyRange.KeyRange
  readonly options: RangeOptions | undefined
}

/**
 * A write of one key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Put {
  readonly _tag: "Put"
  readonly key: Bytes
  readonly value: Bytes
  readonly options: PutOptions | undefined
}

/**
 * A delete of a key or range.
 *
 * @since 0.1.0
 * @category models
 */
export interface Delete {
  readonly _tag: "Delete"
  readonly keys: KeyRange.KeyRange
  readonly options: DeleteOptions | undefined
}

/**
 * A nested transaction.
 *
 * @since 0.1.0
 * @category models
 */
export interface Txn<
  Success extends ReadonlyArray<Op> = ReadonlyArray<Op>,
  Failure extends ReadonlyArray<Op> = ReadonlyArray<Op>
> {
  readonly _tag: "Txn"
  readonly compares: ReadonlyArray<Compare.Compare>
  readonly success: Success
  readonly failure: Failure
}

/**
 * Any operation.
 *
 * @since 0.1.0
 * @category models
 */
export type Op = Get | Put | Delete | Txn<any, any>

/**
 * The result of an operation: `RangeResult` for a get, `PutResult` for a put,
 * `DeleteResult` for a delete, `TxnResult` for a nested transaction.
 *
 * @since 0.1.0
 * @category models
 */
export type Result<O extends Op> = O extends Get ? RangeResult
  : O extends Put ? PutResult
  : O extends Delete ? DeleteResult
  : O extends Txn<infer S, infer F> ? TxnResult<S, F>
  : never

/**
 * The results of a list of operations, position by position.
 *
 * @since 0.1.0
 * @category models
 */
export type Results<Ops extends ReadonlyArray<Op>> = { -readonly [K in keyof Ops]: Result<Ops[K]> }

/**
 * Reads a key or a range, with every option of `Kv.range`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const get = (keys: Bytes | KeyRange.KeyRange, options?: RangeOptions): Get => ({
  _tag: "Get",
  keys: KeyRange.fromInput(keys),
  options
})

/**
 * Writes a key, with every option of `Kv.put`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const put = (key: Bytes, value: Bytes, options?: PutOptions): Put => ({ _tag: "Put", key, value, options })

const deleteOp = (keys: Bytes | KeyRange.KeyRange, options?: DeleteOptions): Delete => ({
  _tag: "Delete",
  keys: KeyRange.fromInput(keys),
  options
})

export {
  /**
   * Deletes a key or a range.
   *
   * @since 0.1.0
   * @category constructors
   */
  deleteOp as delete
}

/**
 * A nested transaction: runs `success` when every compare holds, `failure` otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const txn = <const Success extends ReadonlyArray<Op>, const Failure extends ReadonlyArray<Op> = []>(
  compares: ReadonlyArray<Compare.Compare>,
  success: Success,
  failure?: Failure
): Txn<Success, Failure> => ({
  _tag: "Txn",
  compares,
  success,
  failure: (failure ?? []) as unknown as Failure
})
