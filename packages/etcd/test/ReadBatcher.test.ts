/**
 * The read batcher on its own, over a fake `range` and `txn` that answer when the test says:
 * which reads go alone and which together, in what batches, and what each caller gets back.
 * A read is "started" by forking it and yielding once: its registration (a synchronous step)
 * runs before the test goes on.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Queue, Scope } from "effect"
import * as EtcdError from "../src/EtcdError.js"
import * as ReadBatcher from "../src/internal/streams/readBatcher.js"
import type { RangeRequest } from "../src/internal/wire/proto/generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "../src/internal/wire/proto/generated/etcdserverpb/RangeResponse.js"
import type { TxnRequest } from "../src/internal/wire/proto/generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "../src/internal/wire/proto/generated/etcdserverpb/TxnResponse.js"

/** What a read fails with: where the failure went through (`range` itself, or `mapFailure`) and its tag. */
interface Failure {
  readonly via: "range" | "mapFailure"
  readonly tag: string
}

interface Call<Req, Res> {
  readonly request: Req
  readonly reply: Deferred.Deferred<Res, EtcdError.EtcdError>
}

const header = (revision: string) => ({ clusterId: "1", memberId: "1", revision, raftTerm: "1" })

/** A range's answer, marked with the read's key (as its count) so that each caller can tell it is its own. */
const answerTo = (key: string): RangeResponse__Output => ({ header: header("1"), kvs: [], more: false, count: key })

const keyOf = (request: RangeRequest | null | undefined): string => Buffer.from(request?.key ?? "").toString()
const keysOf = (request: TxnRequest): Array<string> => (request.success ?? []).map((op) => keyOf(op.requestRange))

const unavailable = new EtcdError.EtcdUnavailable({ method: "/etcdserverpb.KV/Txn", endpoints: [], reason: "gone" })
const compacted = new EtcdError.Compacted({ method: "/etcdserverpb.KV/Txn", compactRevision: 3n })

/** A batcher over calls that wait for the test's answer; the calls are seen in `ranges` and `txns`. */
const fakeBatcher = (settings: ReadBatcher.Settings, options?: { readonly txnThrows?: boolean }) =>
  Effect.gen(function*() {
    const ranges = yield* Queue.unbounded<Call<RangeRequest, RangeResponse__Output>>()
    const txns = yield* Queue.unbounded<Call<TxnRequest, TxnResponse__Output>>()
    const range = (request: RangeRequest) =>
      Effect.flatMap(Deferred.make<RangeResponse__Output, EtcdError.EtcdError>(), (reply) =>
        Effect.zipRight(
          Queue.offer(ranges, { request, reply }),
          Effect.mapError(Deferred.await(reply), (error): Failure => ({ via: "range", tag: error._tag }))
        ))
    const txn = (request: TxnRequest) => {
      if (options?.txnThrows === true) throw new Error("cannot build the Txn")
      return Effect.flatMap(
        Deferred.make<TxnResponse__Output, EtcdError.EtcdError>(),
        (reply) => Effect.zipRight(Queue.offer(txns, { request, reply }), Deferred.await(reply))
      )
    }
    const read = yield* ReadBatcher.make<Failure>(
      range,
      txn,
      (failure) => Effect.mapError(failure, (error): Failure => ({ via: "mapFailure", tag: error._tag })),
      settings
    )
    /** Starts a read; it has registered (or been sent) when this returns. */
    const start = (key: string, serializable = false) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(read({ key: Buffer.from(key), serializable }))
        yield* Effect.yieldNow()
        return fiber
      })
    return { ranges, txns, read, start }
  })

/** Answers a Txn with each read's own response, or none for the keys in `missing`. */
const answerTxn = (call: Call<TxnRequest, TxnResponse__Output>, missing: ReadonlyArray<string> = []) =>
  Deferred.succeed(call.reply, {
    header: header("42"),
    succeeded: true,
    responses: keysOf(call.request).map((key) =>
      missing.includes(key) ? {} : { responseRange: answerTo(key), response: "responseRange" as const }
    )
  })

const answerRange = (call: Call<RangeRequest, RangeResponse__Output>) =>
  Deferred.succeed(call.reply, answerTo(keyOf(call.request)))

describe("ReadBatcher", () => {
  it.scoped("a lone read goes at once, as a plain Range", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 4 })
      const fiber = yield* start("a")
      const call = yield* Queue.take(ranges)
      expect(keyOf(call.request)).toBe("a")
      yield* answerRange(call)
      expect((yield* Fiber.join(fiber)).count).toBe("a")
      expect(yield* Queue.size(txns)).toBe(0)
      // its slot is free again: the next read goes alone too
      const next = yield* start("b")
      yield* answerRange(yield* Queue.take(ranges))
      expect((yield* Fiber.join(next)).count).toBe("b")
    }))

  it.scoped("reads made while one is in flight wait for it, then go as one Txn; each gets its own answer", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 4 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const b = yield* start("b")
      const c = yield* start("c")
      const d = yield* start("d")
      // fewer than a quarter of maxOps wait: they wait for the call in flight
      expect(yield* Queue.size(txns)).toBe(0)
      expect(yield* Queue.size(ranges)).toBe(0)
      yield* answerRange(firstCall)
      expect((yield* Fiber.join(first)).count).toBe("a")
      const batch = yield* Queue.take(txns)
      expect(keysOf(batch.request)).toEqual(["b", "c", "d"])
      expect(batch.request.compare).toEqual([])
      expect(batch.request.failure).toEqual([])
      yield* answerTxn(batch)
      const answers = yield* Effect.all([Fiber.join(b), Fiber.join(c), Fiber.join(d)])
      expect(answers.map((answer) => answer.count)).toEqual(["b", "c", "d"])
      // each takes the Txn's header: the revision all of them were read at
      expect(answers.map((answer) => answer.header?.revision)).toEqual(["42", "42", "42"])
      expect(yield* Queue.size(ranges)).toBe(0)
    }))

  it.scoped("a batch holds at most maxOps reads; the rest go in the next one, a single read alone", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 2, maxBatchesInFlight: 1 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const waiting = [yield* start("b"), yield* start("c"), yield* start("d"), yield* start("e"), yield* start("f")]
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      const one = yield* Queue.take(txns)
      expect(keysOf(one.request)).toEqual(["b", "c"])
      // one call in flight at most: the next batch waits for this one
      expect(yield* Queue.size(txns)).toBe(0)
      yield* answerTxn(one)
      const two = yield* Queue.take(txns)
      expect(keysOf(two.request)).toEqual(["d", "e"])
      yield* answerTxn(two)
      const last = yield* Queue.take(ranges)
      expect(keyOf(last.request)).toBe("f")
      yield* answerRange(last)
      const answers = yield* Effect.forEach(waiting, Fiber.join)
      expect(answers.map((answer) => answer.count)).toEqual(["b", "c", "d", "e", "f"])
    }))

  it.scoped("with a call in flight, a batch goes at once when a quarter of maxOps wait and there is room", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 8, maxBatchesInFlight: 2 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const b = yield* start("b")
      expect(yield* Queue.size(txns)).toBe(0)
      const c = yield* start("c")
      // two reads (8 / 4) wait and a second call may be in flight: they go now
      const batch = yield* Queue.take(txns)
      expect(keysOf(batch.request)).toEqual(["b", "c"])
      // two calls in flight: the next read waits, even once one of them is back, as one read
      // is fewer than a quarter of maxOps while the other is still in flight
      const d = yield* start("d")
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      expect(yield* Queue.size(ranges)).toBe(0)
      expect(yield* Queue.size(txns)).toBe(0)
      yield* answerTxn(batch)
      expect((yield* Fiber.join(b)).count).toBe("b")
      expect((yield* Fiber.join(c)).count).toBe("c")
      const alone = yield* Queue.take(ranges)
      expect(keyOf(alone.request)).toBe("d")
      yield* answerRange(alone)
      expect((yield* Fiber.join(d)).count).toBe("d")
    }))

  it.scoped("serializable reads are batched apart from linearizable ones, which go first", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const s1 = yield* start("s1", true)
      const l1 = yield* start("l1")
      const s2 = yield* start("s2", true)
      const l2 = yield* start("l2")
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      const linearizable = yield* Queue.take(txns)
      expect(keysOf(linearizable.request)).toEqual(["l1", "l2"])
      expect(linearizable.request.success?.map((op) => op.requestRange?.serializable)).toEqual([false, false])
      yield* answerTxn(linearizable)
      const serializable = yield* Queue.take(txns)
      expect(keysOf(serializable.request)).toEqual(["s1", "s2"])
      expect(serializable.request.success?.map((op) => op.requestRange?.serializable)).toEqual([true, true])
      yield* answerTxn(serializable)
      const answers = yield* Effect.forEach([s1, l1, s2, l2], Fiber.join)
      expect(answers.map((answer) => answer.count)).toEqual(["s1", "l1", "s2", "l2"])
    }))

  it.scoped("a batch refused for a reason of one request sends each of its reads again, alone", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const b = yield* start("b")
      const c = yield* start("c")
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      yield* Deferred.fail((yield* Queue.take(txns)).reply, compacted)
      const one = yield* Queue.take(ranges)
      const two = yield* Queue.take(ranges)
      expect([keyOf(one.request), keyOf(two.request)]).toEqual(["b", "c"])
      // the bad one fails alone, through range; its neighbour gets its answer
      yield* Deferred.fail(one.reply, compacted)
      yield* answerRange(two)
      expect(yield* Effect.flip(Fiber.join(b))).toEqual({ via: "range", tag: "Compacted" })
      expect((yield* Fiber.join(c)).count).toBe("c")
    }))

  it.scoped("a batch failed by a transient error fails each of its reads with it, through mapFailure", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const b = yield* start("b")
      const c = yield* start("c")
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      yield* Deferred.fail((yield* Queue.take(txns)).reply, unavailable)
      expect(yield* Effect.flip(Fiber.join(b))).toEqual({ via: "mapFailure", tag: "EtcdUnavailable" })
      expect(yield* Effect.flip(Fiber.join(c))).toEqual({ via: "mapFailure", tag: "EtcdUnavailable" })
      expect(yield* Queue.size(ranges)).toBe(0)
    }))

  // the read with no response first (its neighbour after it) and last (its neighbour before it)
  it.scoped.each([{ missing: "b", kept: "c" }, { missing: "c", kept: "b" }] as const)(
    "a read the Txn's answer has no response for ($missing of b, c) is sent again alone; $kept keeps its answer",
    ({ kept, missing }) =>
      Effect.gen(function*() {
        const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 })
        const first = yield* start("a")
        const firstCall = yield* Queue.take(ranges)
        const reads = { b: yield* start("b"), c: yield* start("c") }
        yield* answerRange(firstCall)
        yield* Fiber.join(first)
        yield* answerTxn(yield* Queue.take(txns), [missing])
        const again = yield* Queue.take(ranges)
        expect(keyOf(again.request)).toBe(missing)
        yield* answerRange(again)
        expect((yield* Fiber.join(reads[missing])).count).toBe(missing)
        // the other read had its response in the Txn: it is not sent again
        expect(yield* Queue.size(ranges)).toBe(0)
        expect((yield* Fiber.join(reads[kept])).count).toBe(kept)
        expect(yield* Queue.size(ranges)).toBe(0)
      })
  )

  it.scoped("a batch that cannot be built answers each of its reads alone", () =>
    Effect.gen(function*() {
      const { ranges, start } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 }, { txnThrows: true })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const b = yield* start("b")
      const c = yield* start("c")
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      const one = yield* Queue.take(ranges)
      const two = yield* Queue.take(ranges)
      expect([keyOf(one.request), keyOf(two.request)]).toEqual(["b", "c"])
      yield* answerRange(one)
      yield* answerRange(two)
      expect((yield* Fiber.join(b)).count).toBe("b")
      expect((yield* Fiber.join(c)).count).toBe("c")
    }))

  it.scoped("a read interrupted while it waits is left out of its batch", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const b = yield* start("b")
      const c = yield* start("c")
      const d = yield* start("d")
      yield* Fiber.interrupt(c)
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      const batch = yield* Queue.take(txns)
      expect(keysOf(batch.request)).toEqual(["b", "d"])
      yield* answerTxn(batch)
      expect((yield* Fiber.join(b)).count).toBe("b")
      expect((yield* Fiber.join(d)).count).toBe("d")
    }))

  it.scoped("when every read that waited was interrupted, nothing is sent and the next read goes alone", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 })
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      yield* Fiber.interrupt(yield* start("b"))
      yield* Fiber.interrupt(yield* start("c"))
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      expect(yield* Queue.size(ranges)).toBe(0)
      expect(yield* Queue.size(txns)).toBe(0)
      const next = yield* start("d")
      const call = yield* Queue.take(ranges)
      expect(keyOf(call.request)).toBe("d")
      yield* answerRange(call)
      expect((yield* Fiber.join(next)).count).toBe("d")
    }))

  it.scoped("a lone read's failure is its own, and frees its slot", () =>
    Effect.gen(function*() {
      const { ranges, start, txns } = yield* fakeBatcher({ maxOps: 128, maxBatchesInFlight: 1 })
      const first = yield* start("a")
      yield* Deferred.fail((yield* Queue.take(ranges)).reply, compacted)
      expect(yield* Effect.flip(Fiber.join(first))).toEqual({ via: "range", tag: "Compacted" })
      const next = yield* start("b")
      const call = yield* Queue.take(ranges)
      expect(keyOf(call.request)).toBe("b")
      yield* answerRange(call)
      expect((yield* Fiber.join(next)).count).toBe("b")
      expect(yield* Queue.size(txns)).toBe(0)
    }))

  it.effect("when its scope closes, waiting reads, reads in flight and later reads fail with ClientClosed", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { ranges, read, start, txns } = yield* Scope.extend(
        fakeBatcher({ maxOps: 4, maxBatchesInFlight: 1 }),
        scope
      )
      const first = yield* start("a")
      const firstCall = yield* Queue.take(ranges)
      const b = yield* start("b")
      const c = yield* start("c")
      yield* answerRange(firstCall)
      yield* Fiber.join(first)
      // b and c are in flight as a Txn; d and e wait for it
      yield* Queue.take(txns)
      const d = yield* start("d")
      const e = yield* start("e")
      yield* Scope.close(scope, Exit.void)
      const closed = { via: "mapFailure", tag: "ClientClosed" }
      for (const fiber of [b, c, d, e]) expect(yield* Effect.flip(Fiber.join(fiber))).toEqual(closed)
      expect(yield* Effect.flip(read({ key: Buffer.from("f") }))).toEqual(closed)
      expect(yield* Queue.size(ranges)).toBe(0)
    }))
})
