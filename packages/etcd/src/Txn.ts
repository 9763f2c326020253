/**
 * Transactions: a list of compares, the ops to run when they all hold, and the ops to
 * run otherwise, applied atomically at one revision (etcetra's `txn` and
 * `txn_compare`). The result says which branch ran and carries each op's result, typed
 * after the op.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Compare, Op, Txn } from "effect-etcd"
 *
 * // compare-and-swap: set "config/mode" to "b" only if it is still "a"
 * const swap = Effect.gen(function*() {
 *   const result = yield* Txn.txnCompare(
 *     [Compare.value("config/mode").equals("a")],
 *     [Op.put("config/mode", "b")],
 *     [Op.get("config/mode")]
 *   )
 *   if (result.succeeded) return "swapped"
 *   const [current] = result.results        // typed: RangeResult
 *   return `still ${current.kvs[0]?.value}`
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Compare from "./Compare.js"
import { Etcd } from "./Etcd.js"
import type * as EtcdError from "./EtcdError.js"
import * as Validate from "./internal/data/validate.js"
import * as TxnCodec from "./internal/wire/txnCodec.js"
import type * as Op from "./Op.js"

/**
 * The outcome of a transaction: the branch that ran, the store's revision after it,
 * and the results of that branch's ops in order.
 *
 * @since 0.1.0
 * @category models
 */
export type TxnResult<Success extends ReadonlyArray<Op.Op>, Failure extends ReadonlyArray<Op.Op>> =
  | {
    readonly succeeded: true
    readonly revision: bigint
    readonly results: Op.Results<Success>
  }
  | {
    readonly succeeded: false
    readonly revision: bigint
    readonly results: Op.Results<Failure>
  }

/**
 * Options of a transaction.
 *
 * @since 0.1.0
 * @category models
 */
export interface TxnOptions {
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Runs `success` atomically if every compare holds, `failure` otherwise; etcetra's
 * `txn_compare`. A transaction must not write one key twice (`DuplicateKey`) and holds at
 * most the server's `--max-txn-ops` ops (`TooManyOps`). A malformed compare or op (an
 * operand that is NaN or negative, a revision beyond int64, ...) fails with
 * `InvalidArgument` naming it, before anything is sent.
 *
 * @since 0.1.0
 * @category transactions
 */
export const txnCompare = <
  const Success extends ReadonlyArray<Op.Op>,
  const Failure extends ReadonlyArray<Op.Op> = []
>(
  compares: ReadonlyArray<Compare.Compare>,
  success: Success,
  failure?: Failure,
  options?: TxnOptions
): Effect.Effect<TxnResult<Success, Failure>, EtcdError.TxnError, Etcd> => {
  const otherwise = (failure ?? []) as unknown as Failure
  // the arguments are checked when the effect runs, before anything is sent
  return Effect.flatMap(Etcd, (etcd) => {
    const problem = Validate.problemOf(() => Validate.timeout(options)) ??
      TxnCodec.problemOf(compares, success, otherwise)
    if (problem !== undefined) return Effect.fail(problem)
    return Effect.map(
      etcd.kv.txn(TxnCodec.encodeTxn(compares, success, otherwise), options),
      (response) => TxnCodec.decodeTxn(success, otherwise, response)
    )
  })
}

/**
 * Runs ops atomically, with no condition; etcetra's `txn`. All reads see the same
 * revision, and all writes get the same revision.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Op, Txn } from "effect-etcd"
 *
 * const snapshot = Effect.gen(function*() {
 *   const [a, b] = yield* Txn.txn([Op.get("a"), Op.get("b")])
 *   return [a.kvs[0]?.value, b.kvs[0]?.value]
 * })
 * ```
 *
 * @since 0.1.0
 * @category transactions
 */
export const txn = <const Ops extends ReadonlyArray<Op.Op>>(
  ops: Ops,
  options?: TxnOptions
): Effect.Effect<Op.Results<Ops>, EtcdError.TxnError, Etcd> =>
  Effect.map(txnCompare([], ops, [], options), (result) => result.results as Op.Results<Ops>)
