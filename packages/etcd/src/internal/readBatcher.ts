/**
 * Automatic read batching: ranges issued while others are in flight are sent together as
 * one read-only Txn.
 *
 * - A read that finds fewer than `maxBatchesInFlight` calls in flight is sent at once, as a
 *   plain Range: a lone read pays nothing. The others wait for a call to come back and then
 *   go together, up to `maxOps` per Txn (etcd refuses more than `--max-txn-ops`).
 * - Linearizability is kept: a Txn is executed at one point in the store's history, after
 *   every read in it was called and before any of them returns. Serializable reads are
 *   batched apart, so that their Txn stays serializable.
 * - Each caller gets its own result. When a batch fails for a reason that belongs to one
 *   request (a compacted or future revision, a permission, too many ops), every read of it
 *   is sent again on its own, so one bad request cannot fail its neighbours. A transient
 *   failure (the transport already retried it) fails them all, as it would have one by one.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as EtcdError from "../EtcdError.js"
import type { RangeRequest } from "./proto/generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "./proto/generated/etcdserverpb/RangeResponse.js"
import type { TxnRequest } from "./proto/generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "./proto/generated/etcdserverpb/TxnResponse.js"

/** How reads are batched. */
export interface Settings {
  /** The most reads in one Txn. */
  readonly maxOps: number
  /** How many calls may be in flight before reads start to wait for a batch. */
  readonly maxBatchesInFlight: number
}

interface Item {
  readonly request: RangeRequest
  readonly result: Deferred.Deferred<RangeResponse__Output, EtcdError.EtcdError>
}

type Read = (request: RangeRequest) => Effect.Effect<RangeResponse__Output, EtcdError.EtcdError>

/** A batching `range` over `range` and `txn`; batches in flight end with the scope. */
export const make = (
  range: Read,
  txn: (request: TxnRequest) => Effect.Effect<TxnResponse__Output, EtcdError.EtcdError>,
  settings: Settings
): Effect.Effect<Read, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const linearizable: Array<Item> = []
    const serializable: Array<Item> = []
    let inFlight = 0
    let closed = false

    const closedError = () => new EtcdError.Unavailable({ endpoints: [], reason: "the etcd client was closed" })

    const answer = (items: ReadonlyArray<Item>, response: TxnResponse__Output): Effect.Effect<void> =>
      Effect.forEach(items, (item, i) => {
        const inner = response.responses[i]?.responseRange
        return inner == null
          ? Deferred.complete(item.result, range(item.request))
          : Deferred.succeed(item.result, { ...inner, header: response.header })
      }, { discard: true })

    const alone = (items: ReadonlyArray<Item>): Effect.Effect<void> =>
      Effect.forEach(items, (item) => Deferred.complete(item.result, range(item.request)), {
        concurrency: "unbounded",
        discard: true
      })

    const send = (items: ReadonlyArray<Item>): Effect.Effect<void> =>
      items.length === 1
        ? alone(items)
        : txn({ compare: [], success: items.map((item) => ({ requestRange: item.request })), failure: [] }).pipe(
          Effect.matchEffect({
            onSuccess: (response) => answer(items, response),
            onFailure: (error) =>
              error.isRetryable
                ? Effect.forEach(items, (item) => Deferred.fail(item.result, error), { discard: true })
                : alone(items)
          })
        )

    /** A call ended: its slot goes to the reads that wait. */
    const finished: Effect.Effect<void> = Effect.suspend(() => {
      inFlight--
      return closed ? Effect.void : flush
    })

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      const launches: Array<Effect.Effect<unknown>> = []
      while (inFlight < settings.maxBatchesInFlight && (linearizable.length > 0 || serializable.length > 0)) {
        const queue = linearizable.length > 0 ? linearizable : serializable
        const items = queue.splice(0, settings.maxOps)
        inFlight++
        launches.push(Effect.forkIn(
          send(items).pipe(
            Effect.onInterrupt(() =>
              Effect.forEach(items, (item) => Deferred.fail(item.result, closedError()), { discard: true })
            ),
            Effect.ensuring(finished)
          ),
          scope
        ))
      }
      return launches.length === 0 ? Effect.void : Effect.all(launches, { discard: true })
    })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const left = linearizable.splice(0).concat(serializable.splice(0))
        return Effect.forEach(left, (item) => Deferred.fail(item.result, closedError()), { discard: true })
      })
    )

    return (request) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(closedError())
        if (inFlight < settings.maxBatchesInFlight && linearizable.length === 0 && serializable.length === 0) {
          // nothing waits and there is room: the read goes at once, on its own
          inFlight++
          return Effect.ensuring(range(request), finished)
        }
        const result = Deferred.unsafeMake<RangeResponse__Output, EtcdError.EtcdError>(FiberId.none)
        ;(request.serializable ? serializable : linearizable).push({ request, result })
        return Effect.zipRight(flush, Deferred.await(result))
      })
  })
