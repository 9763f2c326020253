/**
 * Automatic read batching: ranges issued while others are in flight are sent together as
 * one read-only Txn.
 *
 * - A read that finds no call in flight is sent at once, as a plain Range: a lone read
 *   pays nothing. The others wait for a call to come back and then go together, up to
 *   `maxOps` per Txn (etcd refuses more than `--max-txn-ops`); up to `maxBatchesInFlight`
 *   calls are in flight, a new one only once a quarter of `maxOps` reads wait for it.
 * - Linearizability is kept: a Txn is executed at one point in the store's history, after
 *   every read in it was called and before any of them returns. Serializable reads are
 *   batched apart, so that their Txn stays serializable.
 * - Each caller gets its own result. When a batch fails for a reason that belongs to one
 *   request (a compacted or future revision, a permission, too many ops), every read of it
 *   is sent again on its own, so one bad request cannot fail its neighbours. A transient
 *   failure (the transport already retried it) fails them all, as it would have one by one.
 */
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as Scope from "effect/Scope"
import * as EtcdError from "../../EtcdError.js"
import * as Metrics from "../base/metrics.js"
import type { RangeRequest } from "../wire/proto/generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "../wire/proto/generated/etcdserverpb/RangeResponse.js"
import type { TxnRequest } from "../wire/proto/generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "../wire/proto/generated/etcdserverpb/TxnResponse.js"

/** How reads are batched. */
export interface Settings {
  /** The most reads in one Txn. */
  readonly maxOps: number
  /** How many calls may be in flight before reads start to wait for a batch. */
  readonly maxBatchesInFlight: number
  /** Whether batch sizes are recorded (`metrics.ts`). */
  readonly metrics?: boolean | undefined
}

type Read<E> = (request: RangeRequest) => Effect.Effect<RangeResponse__Output, E>

/** A read waiting for its batch; `resume` hands its caller the effect that answers it. */
interface Item<E> {
  readonly request: RangeRequest
  readonly resume: (answer: Effect.Effect<RangeResponse__Output, E>) => void
  /** Set when its caller was interrupted before the batch left. */
  canceled: boolean
}

/**
 * A batching `range` over `range` and `txn`; batches in flight end with the scope. A read
 * that fails without going through `range` (its batch failed, the client closed) fails
 * with what `mapFailure` makes of its error, as `range` does.
 */
export const make = <E>(
  range: Read<E>,
  txn: (request: TxnRequest) => Effect.Effect<TxnResponse__Output, EtcdError.EtcdError>,
  mapFailure: (
    failure: Effect.Effect<RangeResponse__Output, EtcdError.EtcdError>
  ) => Effect.Effect<RangeResponse__Output, E>,
  settings: Settings
): Effect.Effect<Read<E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    // batches run in fibers of their own, interrupted when the scope closes
    const launch = yield* FiberSet.makeRuntime<never, void, never>()
    const linearizable: Array<Item<E>> = []
    const serializable: Array<Item<E>> = []
    let inFlight = 0
    let closed = false
    /** How many reads make a batch worth sending while another call is in flight. */
    const fullEnough = Math.max(1, Math.floor(settings.maxOps / 4))

    const closedFailure = () => mapFailure(Effect.fail(new EtcdError.ClientClosed({})))

    /**
     * One read on its own. A read that throws while being built (it cannot: requests are
     * validated before they get here) dies alone, as a defect of its own caller.
     */
    const rangeAlone: Read<E> = (request) => Effect.suspend(() => range(request))

    /** Each read of a failed batch on its own, in its caller's fiber. */
    const alone = (items: ReadonlyArray<Item<E>>): void => {
      for (const item of items) item.resume(rangeAlone(item.request))
    }

    const answer = (items: ReadonlyArray<Item<E>>, response: TxnResponse__Output): void => {
      // Stryker disable next-line EqualityOperator: equivalent because the extra pass throws, and the batch's defect handler then answers again reads whose callers were already answered (and ignore it)
      for (let i = 0; i < items.length; i++) {
        // Stryker disable next-line OptionalChaining: equivalent because the throw ends in the batch's defect handler, which sends alone the reads not answered yet, as this branch does
        const inner = response.responses[i]?.responseRange
        if (inner == null) {
          items[i].resume(rangeAlone(items[i].request))
        } else {
          // each inner response was decoded for this read alone: it takes the Txn's header
          // in place, rather than as a copy
          ;(inner as { header: RangeResponse__Output["header"] }).header = response.header
          items[i].resume(Effect.succeed(inner))
        }
      }
    }

    const batch = (items: ReadonlyArray<Item<E>>): Effect.Effect<void> =>
      Effect.suspend(() =>
        txn({ compare: [], success: items.map((item) => ({ requestRange: item.request })), failure: [] }).pipe(
          Effect.match({
            onSuccess: (response) => answer(items, response),
            onFailure: (error) => {
              if (!error.isRetryable) return alone(items)
              const failure = mapFailure(Effect.fail(error))
              for (const item of items) item.resume(failure)
            }
          })
        )
      ).pipe(
        // a batch that cannot even be built answers each of its reads alone
        Effect.catchAllDefect(() => Effect.sync(() => alone(items)))
      )

    /** Sends some reads (one alone, as a plain Range) and frees their slot when done. */
    const send = (items: ReadonlyArray<Item<E>>): Effect.Effect<void> =>
      (items.length === 1
        ? Effect.map(Effect.exit(rangeAlone(items[0].request)), (exit) => items[0].resume(exit))
        : batch(items)).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              for (const item of items) item.resume(closedFailure())
            })
          ),
          Effect.ensuring(finished)
        )

    /** A call ended: its slot goes to the reads that wait. */
    const finish = (): void => {
      inFlight--
      // Stryker disable next-line ConditionalExpression: equivalent because closing emptied the queues and no read waits afterwards: a flush then sends nothing
      if (!closed) flush()
    }
    const finished: Effect.Effect<void> = Effect.sync(finish)

    /**
     * Sends what waits, while there is room in flight. With a call in flight already, a
     * few reads wait for it to come back rather than go as a batch of their own: batches
     * stay large, and a read waits at most one round trip.
     */
    const flush = (): void => {
      while (inFlight < settings.maxBatchesInFlight) {
        const queue = linearizable.length > 0 ? linearizable : serializable
        if (queue.length === 0 || (inFlight > 0 && queue.length < fullEnough)) return
        const items = queue.splice(0, settings.maxOps).filter((item) => !item.canceled)
        if (items.length === 0) continue
        // Stryker disable next-line all: metrics only, what the reads get does not depend on it (Metrics.test checks it)
        if (settings.metrics === true) Metrics.readBatch(items.length)
        inFlight++
        launch(send(items))
      }
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const item of linearizable.splice(0).concat(serializable.splice(0))) {
          item.resume(closedFailure())
        }
      })
    )

    return (request) =>
      Effect.suspend(() => {
        if (closed) return closedFailure()
        // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: equivalent because with no call in flight nothing waits (flush sends whatever waits while there is room), and the queued path sends a lone read alone too: this is its fast path
        if (inFlight === 0 && linearizable.length === 0 && serializable.length === 0) {
          // nothing waits and there is room: the read goes at once, on its own, and its
          // slot is freed however it ends (in the continuations, not in an effect of their own:
          // this is every lone read's path)
          return Effect.uninterruptibleMask((restore) => {
            inFlight++
            // a read that throws while being built dies alone and still frees its slot
            return Effect.matchCauseEffect(restore(rangeAlone(request)), {
              onFailure: (cause) => {
                finish()
                return Effect.failCause(cause)
              },
              onSuccess: (response) => {
                finish()
                return Effect.succeed(response)
              }
            })
          })
        }
        return Effect.async<RangeResponse__Output, E>((resume) => {
          const item: Item<E> = { request, resume, canceled: false }
          ;(request.serializable ? serializable : linearizable).push(item)
          flush()
          return Effect.sync(() => {
            item.canceled = true
          })
        })
      })
  })
