/**
 * Software transactional memory (clientv3's `concurrency.STM`), built only on the
 * public `Kv` and `Txn` modules: write a transaction as an ordinary Effect that reads
 * and writes keys through {@link get}, {@link put} and {@link delete}, and
 * {@link run} makes it atomic.
 *
 * Reads go to etcd (each key once per attempt; later reads of it repeat the first);
 * writes are buffered. When the transaction's effect succeeds, its writes are committed
 * in one etcd txn whose compares check that what it read is still current, as the
 * isolation level asks. When another writer got there first, the whole effect runs
 * again from scratch, up to `retries` times, then fails with `StmRetriesExhausted`.
 * When the effect fails (its own error, or an etcd error), nothing is written.
 *
 * Isolation levels (clientv3's names in brackets):
 * - `"snapshot"` (`SerializableSnapshot`, the default): every read sees the revision of
 *   the first read, and the commit fails if any key read or written was changed since.
 *   No anomaly: no lost update, no write skew.
 * - `"serializable"` (`Serializable`): every read sees the revision of the first read,
 *   and the commit fails if any key read was changed since. Keys only written (never
 *   read) are not checked.
 * - `"repeatable-reads"` (`RepeatableReads`): each key is read at the latest revision
 *   when first read, and the commit fails if any key read was changed since. Two keys
 *   may be read at different revisions.
 * - `"read-committed"` (`ReadCommitted`): reads see the latest revision, and the commit
 *   checks nothing. Lost updates are possible: two transactions that read the same
 *   balance and both write it back increased commit both, and one increase is lost.
 *
 * The effect may run several times: keep side effects other than `Stm` reads and writes
 * out of it, or make them idempotent.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Stm } from "effect-etcd"
 *
 * const transfer = (from: string, to: string, amount: number) =>
 *   Stm.run(Effect.gen(function*() {
 *     const balance = (key: string) => Effect.map(Stm.get(key), (v) => Number(Option.getOrElse(v, () => "0")))
 *     const source = yield* balance(from)
 *     if (source < amount) return false
 *     const target = yield* balance(to)
 *     yield* Stm.put(from, String(source - amount))
 *     yield* Stm.put(to, String(target + amount))
 *     return true
 *   }), { isolation: "serializable", retries: 20 })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Compare from "./Compare.js"
import type { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Printable from "./internal/base/printable.js"
import * as Validate from "./internal/data/validate.js"
import type { KeyValue } from "./KeyValue.js"
import type * as Kv from "./Kv.js"
import * as Op from "./Op.js"
import * as Txn from "./Txn.js"

/**
 * How much of the store a transaction's reads must still match when it commits.
 *
 * @since 0.1.0
 * @category models
 */
export type Isolation = "snapshot" | "serializable" | "repeatable-reads" | "read-committed"

/**
 * Options of {@link run}.
 *
 * @since 0.1.0
 * @category models
 */
export interface StmOptions {
  /** The isolation level (default `"snapshot"`, clientv3's default). */
  readonly isolation?: Isolation | undefined
  /** How many times a conflicting transaction runs again before `StmRetriesExhausted` (default 10). */
  readonly retries?: number | undefined
  /** Keys read in one call before the transaction's first attempt. */
  readonly prefetch?: ReadonlyArray<string> | undefined
}

interface Read {
  readonly kv: KeyValue | undefined
  /** The store's revision when it was read. */
  readonly revision: bigint
}

interface Write {
  /** `undefined` for a delete. */
  readonly value: string | undefined
  readonly op: Op.Op
}

/**
 * The running attempt of a transaction: what it read and what it will write.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transaction {
  readonly isolation: Isolation
  /** @internal */
  readonly reads: Map<string, Read>
  /** @internal */
  readonly writes: Map<string, Write>
  /** @internal */
  readonly prefetched: Map<string, Read>
  /** @internal */
  snapshot: bigint | undefined
}

/**
 * The transaction {@link get}, {@link put} and {@link delete} act in, provided by {@link run}.
 *
 * @since 0.1.0
 * @category tags
 */
export const Transaction: Context.Tag<Transaction, Transaction> = Context.GenericTag<Transaction>(
  "effect-etcd/Stm/Transaction"
)

const withinRead = EtcdError.within("read")

const atSnapshot = (isolation: Isolation): boolean => isolation === "snapshot" || isolation === "serializable"

const readKeys = (
  transaction: Transaction,
  keys: ReadonlyArray<string>
): Effect.Effect<void, EtcdError.ReadError, Etcd> =>
  Effect.gen(function*() {
    const missing = keys.filter((key) => !transaction.reads.has(key) && !transaction.writes.has(key))
    if (missing.length === 0) return
    const options = transaction.snapshot === undefined ? undefined : { revision: transaction.snapshot }
    const results = yield* Txn.txn(missing.map((key) => Op.get(key, options)))
    results.forEach((result, i) => {
      const read = { kv: (result as Kv.RangeResult).kvs[0], revision: (result as Kv.RangeResult).revision }
      transaction.reads.set(missing[i], read)
      if (transaction.snapshot === undefined && atSnapshot(transaction.isolation)) transaction.snapshot = read.revision
    })
  }).pipe(withinRead)

const readOne = (key: string): Effect.Effect<Read | Write, EtcdError.ReadError, Etcd | Transaction> =>
  Effect.flatMap(Transaction, (transaction): Effect.Effect<Read | Write, EtcdError.ReadError, Etcd> => {
    const written = transaction.writes.get(key)
    if (written !== undefined) return Effect.succeed(written)
    const read = transaction.reads.get(key)
    if (read !== undefined) return Effect.succeed(read)
    const prefetched = transaction.prefetched.get(key)
    if (prefetched !== undefined) {
      transaction.prefetched.delete(key)
      transaction.reads.set(key, prefetched)
      if (transaction.snapshot === undefined && atSnapshot(transaction.isolation)) {
        transaction.snapshot = prefetched.revision
      }
      return Effect.succeed(prefetched)
    }
    return Effect.map(readKeys(transaction, [key]), () => transaction.reads.get(key)!)
  })

/**
 * Reads a key in the transaction: what it wrote there if it did, else the stored value
 * (read once per attempt, at the isolation level's revision).
 *
 * @since 0.1.0
 * @category reads
 */
export const get = (key: string): Effect.Effect<Option.Option<string>, EtcdError.ReadError, Etcd | Transaction> =>
  Effect.map(
    readOne(key),
    (found) =>
      "op" in found
        ? Option.fromNullable(found.value)
        : Option.map(Option.fromNullable(found.kv), (kv) => kv.value)
  )

/**
 * The revision of a key's last change as the transaction read it, 0 when it does not
 * exist (clientv3's `Rev`). Reads the key if the transaction has not yet.
 *
 * @since 0.1.0
 * @category reads
 */
export const modRevision = (key: string): Effect.Effect<bigint, EtcdError.ReadError, Etcd | Transaction> =>
  Effect.flatMap(Transaction, (transaction) => {
    const read = transaction.reads.get(key) ?? transaction.prefetched.get(key)
    if (read !== undefined) return Effect.succeed(read.kv?.modRevision ?? 0n)
    return Effect.map(readKeys(transaction, [key]), () => transaction.reads.get(key)?.kv?.modRevision ?? 0n)
  })

/**
 * Writes a key in the transaction: buffered until it commits.
 *
 * @since 0.1.0
 * @category writes
 */
export const put = (
  key: string,
  value: string,
  options?: { readonly lease?: Kv.LeaseInput | undefined }
): Effect.Effect<void, never, Transaction> =>
  Effect.map(Transaction, (transaction) => {
    transaction.writes.set(key, { value, op: Op.put(key, value, options) })
  })

const deleteKey = (key: string): Effect.Effect<void, never, Transaction> =>
  Effect.map(Transaction, (transaction) => {
    transaction.writes.set(key, { value: undefined, op: Op.delete(key) })
  })

export {
  /**
   * Deletes a key in the transaction: buffered until it commits.
   *
   * @since 0.1.0
   * @category writes
   */
  deleteKey as delete
}

const isCurrent = (key: string, read: Read): Compare.Compare =>
  Compare.modRevision(key).equals(read.kv?.modRevision ?? 0n)

const conflicts = (transaction: Transaction): Array<Compare.Compare> => {
  if (transaction.isolation === "read-committed") return []
  const compares = Array.from(transaction.reads, ([key, read]) => isCurrent(key, read))
  if (transaction.isolation === "snapshot" && transaction.reads.size > 0) {
    let first = -1n
    for (const read of transaction.reads.values()) if (first < 0n || read.revision < first) first = read.revision
    for (const key of transaction.writes.keys()) compares.push(Compare.modRevision(key).lessThan(first + 1n))
  }
  return compares
}

/**
 * Commits an attempt: the revision of the commit when it was written, `undefined` on a
 * conflict. At the snapshot levels the keys read are read again by the failed commit, so
 * that the next attempt starts from them without another call.
 */
const commit = (transaction: Transaction): Effect.Effect<bigint | undefined, EtcdError.TxnError, Etcd> => {
  const keys = Array.from(transaction.reads.keys())
  const refresh = atSnapshot(transaction.isolation) ? keys.map((key) => Op.get(key)) : []
  return Effect.map(
    Txn.txnCompare(conflicts(transaction), Array.from(transaction.writes.values(), (write) => write.op), refresh),
    (result) => {
      if (result.succeeded) return result.revision
      const prefetched = new Map<string, Read>()
      if (refresh.length > 0) {
        result.results.forEach((read, i) => {
          prefetched.set(keys[i], { kv: (read as Kv.RangeResult).kvs[0], revision: result.revision })
        })
      }
      transaction.reads.clear()
      transaction.writes.clear()
      transaction.prefetched.clear()
      prefetched.forEach((read, key) => transaction.prefetched.set(key, read))
      transaction.snapshot = undefined
      return undefined
    }
  )
}

/**
 * Runs `transaction` atomically (clientv3's `NewSTM`): its `Stm` reads see the store at
 * the isolation level's revision, its `Stm` writes are committed together if nothing it
 * read changed meanwhile, and it runs again from scratch when something did, up to
 * `retries` times (then `StmRetriesExhausted`). A failure of the effect aborts it with
 * nothing written. Succeeds with the effect's value of the attempt that committed; for
 * the revision of the commit too, see {@link runWithRevision}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <A, E, R>(
  transaction: Effect.Effect<A, E, R>,
  options?: StmOptions
): Effect.Effect<A, E | EtcdError.StmError, Etcd | Exclude<R, Transaction>> =>
  Effect.map(attempts(transaction, options, "Stm.run"), (committed) => committed.value)

/**
 * What {@link runWithRevision} gives: the transaction's value and the revision of its commit.
 *
 * @since 0.2.0
 * @category models
 */
export interface Committed<A> {
  /** The effect's value, from the attempt that committed. */
  readonly value: A
  /**
   * The revision of the commit: its writes are at this revision (a `Kv.get` or a watch from
   * it sees them). A transaction that wrote nothing leaves the revision alone: this is then
   * the store's revision at which its reads were found current.
   */
  readonly revision: bigint
}

/**
 * Runs `transaction` as {@link run} does, and gives the revision of its commit along with
 * its value (clientv3's `NewSTM` answers the commit's `TxnResponse`, whose header has it):
 * for read-your-writes elsewhere, such as `mirror.waitFor(revision)`, or a watch from
 * `revision + 1n` that sees only later changes.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Stm } from "effect-etcd"
 *
 * const increment = Effect.gen(function*() {
 *   const { value, revision } = yield* Stm.runWithRevision(Effect.gen(function*() {
 *     const count = Number(Option.getOrElse(yield* Stm.get("counters/jobs"), () => "0")) + 1
 *     yield* Stm.put("counters/jobs", String(count))
 *     return count
 *   }))
 *   yield* Effect.log(`counter is ${value} as of revision ${revision}`)
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const runWithRevision = <A, E, R>(
  transaction: Effect.Effect<A, E, R>,
  options?: StmOptions
): Effect.Effect<Committed<A>, E | EtcdError.StmError, Etcd | Exclude<R, Transaction>> =>
  attempts(transaction, options, "Stm.runWithRevision")

const CommittedProto = Printable.Proto("Stm.Committed")

const attempts = <A, E, R>(
  transaction: Effect.Effect<A, E, R>,
  options: StmOptions | undefined,
  spanName: string
): Effect.Effect<Committed<A>, E | EtcdError.StmError, Etcd | Exclude<R, Transaction>> =>
  Effect.gen(function*() {
    yield* Validate.check(() =>
      Validate.first(
        () => Validate.options("options", options),
        () =>
          Validate.oneOf("isolation", options?.isolation, [
            "serializable",
            "snapshot",
            "repeatable-reads",
            "read-committed"
          ]),
        () => Validate.count("retries", options?.retries, 0)
      )
    )
    const isolation = options?.isolation ?? "snapshot"
    const attempts = 1 + Math.max(0, options?.retries ?? 10)
    const state: Transaction = {
      isolation,
      reads: new Map(),
      writes: new Map(),
      prefetched: new Map(),
      snapshot: undefined
    }
    if (options?.prefetch !== undefined && options.prefetch.length > 0) {
      yield* readKeys(state, options.prefetch)
    }
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const value = yield* Effect.provideService(transaction, Transaction, state)
      const revision = yield* commit(state)
      if (revision !== undefined) return Printable.make(CommittedProto, { value, revision })
    }
    return yield* new EtcdError.StmRetriesExhausted({ attempts })
  }).pipe(
    Effect.withSpan(spanName, { captureStackTrace: false })
  )
