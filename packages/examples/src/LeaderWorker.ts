/**
 * A leader-elected worker: several replicas run the same code, and only the one holding the
 * lock does the work. The others wait in line (in the order they asked) and take over when the
 * leader steps down or dies, since the lock's lease then ends.
 *
 * Every write of the leader is fenced: a txn that succeeds only while its lock key is still the
 * one it created (`lock.isOwner`). A leader that lost the lock, for example after a long pause,
 * cannot overwrite the work of its successor; the example shows such a stale write being refused.
 *
 * `pnpm example leader` runs `program` against a throwaway etcd.
 */
import { Console, Effect, Option } from "effect"
import type { Etcd, EtcdError } from "effect-etcd"
import { Kv, Lock, Op, Txn } from "effect-etcd"

/** What one replica did while it led. */
export interface Term {
  readonly worker: string
  /** The lock key's create revision: grows with every new leader. */
  readonly fencingToken: bigint
  /** The steps it wrote, in order. */
  readonly steps: ReadonlyArray<number>
  /** Whether a write made after stepping down, with the old lock's guard, was applied (it never is). */
  readonly staleWriteApplied: boolean
}

/**
 * One replica: waits to lead, then runs `steps` steps of work, each written to `<prefix>progress`
 * only while it still holds the lock, and steps down.
 */
export const worker = (
  prefix: string,
  name: string,
  steps = 3
): Effect.Effect<Term, EtcdError.EtcdError, Etcd.Etcd> =>
  Effect.gen(function*() {
    yield* Console.log(`${name}: waiting to lead`)
    const { isOwner, term } = yield* Effect.scoped(Effect.gen(function*() {
      // the lock's lease (TTL 10 s) is kept alive while held: a crashed leader is replaced after 10 s at most
      const lock = yield* Lock.make(`${prefix}leader`, { ttl: "10 seconds" })
      yield* Console.log(`${name}: leading, fencing token ${lock.revision}`)
      const written: Array<number> = []
      // guard: if the lock is lost meanwhile, the work is interrupted and this fails with LeaseLost
      yield* lock.guard(Effect.gen(function*() {
        for (let step = 1; step <= steps; step++) {
          const previous = yield* Kv.get(`${prefix}progress`)
          const result = yield* Txn.txnCompare(
            [lock.isOwner],
            [Op.put(`${prefix}progress`, `${name} step ${step}`)]
          )
          if (!result.succeeded) {
            yield* Console.log(`${name}: no longer the owner, stopping`)
            return
          }
          written.push(step)
          yield* Console.log(`${name}: step ${step} (after "${Option.getOrElse(previous, () => "nothing")}")`)
          yield* Effect.sleep("100 millis")
        }
      }))
      yield* Console.log(`${name}: stepping down`)
      return { isOwner: lock.isOwner, term: { worker: name, fencingToken: lock.revision, steps: written } }
    }))
    // the lock is released: a write guarded by it is refused, whoever leads now
    const stale = yield* Txn.txnCompare([isOwner], [Op.put(`${prefix}progress`, `${name} stale write`)])
    yield* Console.log(`${name}: a write with the old lock's guard was ${stale.succeeded ? "applied" : "refused"}`)
    return { ...term, staleWriteApplied: stale.succeeded }
  })

/**
 * Three replicas started together; each leads once, in turn. Returns their terms in the order
 * they led.
 */
export const program = (prefix = "workers/report/"): Effect.Effect<
  ReadonlyArray<Term>,
  EtcdError.EtcdError,
  Etcd.Etcd
> =>
  Effect.gen(function*() {
    const terms = yield* Effect.forEach(
      ["worker-1", "worker-2", "worker-3"],
      (name) => worker(prefix, name),
      { concurrency: "unbounded" }
    )
    const inOrder = [...terms].sort((a, b) => (a.fencingToken < b.fencingToken ? -1 : 1))
    yield* Console.log(`leaders in turn: ${inOrder.map((term) => term.worker).join(", ")}`)
    yield* Console.log(`last progress: ${Option.getOrElse(yield* Kv.get(`${prefix}progress`), () => "nothing")}`)
    return inOrder
  })
