/**
 * Deadlines that survive a step of the wall clock (NTP, a VM resumed, the date set by hand):
 * the transport keeps its deadlines on the monotonic clock (internal/base/monotonic.ts), so
 * calls in flight when `Date.now()` jumps an hour back or ahead still end by their own
 * deadlines, neither at once nor an hour late.
 *
 * A stub member (`http2Stub.ts`) answers the client's probe at once and holds its Range
 * calls as each test says. Only `Date.now` is stepped, never `performance.now`: the steps
 * happen while calls are in flight, and the tests assert outcomes (a value, a tagged error),
 * never how long anything took. A call that would wait for its deadline an hour late is
 * caught by a guard far past its real deadline.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Deferred, Effect, Either, Fiber, Option } from "effect"
import { Etcd, Kv } from "effect-etcd"
import type * as http2 from "node:http2"
import { prefixLength } from "../src/internal/wire/grpcFrames.js"
import { descriptor } from "../src/internal/wire/proto/descriptor.js"
import { loaderOptions } from "../src/internal/wire/proto/loader.js"
import * as Stub from "./http2Stub.js"

const hour = 3_600_000

const kv = protoLoader.fromJSON(descriptor, loaderOptions)["etcdserverpb.KV"] as grpc.ServiceDefinition
const range = kv.Range as grpc.MethodDefinition<{ key: Buffer }, unknown>

/** The key a Range call asks for (its body is one gRPC frame: a 5-byte prefix, then the message). */
const keyOf = (body: Buffer): string => range.requestDeserialize(body.subarray(prefixLength)).key.toString()

/** Answers a Range call with `key` = `value`. */
const answerValue = (stream: http2.ServerHttp2Stream, key: string, value: string): void =>
  Stub.answer(stream, [
    range.responseSerialize({
      kvs: [{ key: Buffer.from(key), value: Buffer.from(value), createRevision: "2", modRevision: "2", version: "1" }],
      count: "1"
    })
  ])

/** How far `Date.now()` is stepped from the real wall clock. */
let step = 0
const stepWallClock = (millis: number): void => {
  step += millis
}

const stubs: Array<Stub.Stub> = []
beforeEach(() => {
  step = 0
  const realNow = Date.now.bind(Date)
  vi.spyOn(Date, "now").mockImplementation(() => realNow() + step)
})
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(stubs.splice(0).map((stub) => stub.close()))
})

/**
 * A member that answers the client's probe (Status) at once and gives every Range call to
 * `onRange` with the key it asks for.
 */
const member = (onRange: (stream: http2.ServerHttp2Stream, key: string) => void) =>
  Effect.promise(async () => {
    const stub = await Stub.start((stream, headers, request) => {
      if (String(headers[":path"]).endsWith("/Status")) return Stub.answer(stream, [new Uint8Array(0)])
      void request.then((body) => onRange(stream, keyOf(body)))
    })
    stubs.push(stub)
    return stub
  })

const client = (endpoint: string) =>
  Etcd.make({ endpoints: [endpoint], readBatching: false, requestTimeout: "5 seconds" })

/**
 * How `fiber` ended; the test fails if it has not ended within 20 s, long past the deadlines
 * here (2 s at most): a deadline read on the wall clock would have moved an hour away.
 */
const ended = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Fiber.join(fiber).pipe(
    Effect.either,
    Effect.timeoutFail({
      duration: "20 seconds",
      onTimeout: () => new Error("the call had not ended 20 s later: its deadline moved with the wall clock")
    })
  )

describe("a step of the wall clock while calls are in flight", () => {
  it.live("an hour back: a call with a 2 s deadline that is never answered fails with EtcdTimeout", () =>
    Effect.gen(function*() {
      const received = yield* Deferred.make<void>()
      // the call is taken in and never answered
      const stub = yield* member(() => Deferred.unsafeDone(received, Effect.void))
      const etcd = yield* client(stub.origin)
      const call = yield* Effect.fork(
        Kv.get("k", { timeout: "2 seconds" }).pipe(Effect.provideService(Etcd.Etcd, etcd))
      )
      yield* Deferred.await(received)
      stepWallClock(-hour)
      const outcome = yield* ended(call)
      expect(Either.isLeft(outcome) && outcome.left._tag).toBe("EtcdTimeout")
    }).pipe(Effect.scoped))

  it.live("an hour ahead: a call answered after 300 ms succeeds; one never answered times out by its own deadline", () =>
    Effect.gen(function*() {
      const bothReceived = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let received = 0
      const stub = yield* member((stream, key) => {
        if (++received === 2) Deferred.unsafeDone(bothReceived, Effect.void)
        // "unanswered" never is; "answered" is answered 300 ms after the test releases it
        if (key === "answered") {
          void Effect.runPromise(Deferred.await(release)).then(() =>
            setTimeout(() => answerValue(stream, key, "value"), 300)
          )
        }
      })
      const etcd = yield* client(stub.origin)
      const answered = yield* Effect.fork(
        Kv.get("answered", { timeout: "10 seconds" }).pipe(Effect.provideService(Etcd.Etcd, etcd))
      )
      const unanswered = yield* Effect.fork(
        Kv.get("unanswered", { timeout: "1 second" }).pipe(Effect.provideService(Etcd.Etcd, etcd))
      )
      yield* Deferred.await(bothReceived)
      stepWallClock(hour)
      // the short call ends by its deadline: the other one, an hour "late" by the wall clock,
      // is not taken for past its own
      const timedOut = yield* ended(unanswered)
      expect(Either.isLeft(timedOut) && timedOut.left._tag).toBe("EtcdTimeout")
      yield* Deferred.succeed(release, undefined)
      expect(yield* ended(answered)).toEqual(Either.right(Option.some("value")))
    }).pipe(Effect.scoped))

  it.live("an hour ahead: a read whose attempt fails with UNAVAILABLE is sent again, and succeeds", () =>
    Effect.gen(function*() {
      const received = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let attempts = 0
      const stub = yield* member((stream, key) => {
        if (++attempts === 1) {
          // the first attempt fails as a member going away would, once the clock has stepped
          Deferred.unsafeDone(received, Effect.void)
          void Effect.runPromise(Deferred.await(release)).then(() => Stub.answer(stream, [], 14, "going away"))
        } else {
          setTimeout(() => answerValue(stream, key, "value"), 300)
        }
      })
      const etcd = yield* client(stub.origin)
      const call = yield* Effect.fork(
        Kv.get("k", { timeout: "5 seconds" }).pipe(Effect.provideService(Etcd.Etcd, etcd))
      )
      yield* Deferred.await(received)
      stepWallClock(hour)
      yield* Deferred.succeed(release, undefined)
      expect(yield* ended(call)).toEqual(Either.right(Option.some("value")))
      expect(attempts).toBe(2)
    }).pipe(Effect.scoped))
})
