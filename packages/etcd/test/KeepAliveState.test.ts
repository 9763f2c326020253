/**
 * The lease keepalive hub (internal/keepAliveHub.ts) on its own, over a fake transport whose
 * streams record what the hub writes and deliver the answers the test makes: when each
 * keepalive goes, what an answer does to a lease, when a lease is lost, and when the stream
 * is replaced. The hub's clock and ticker (`Date`, `setInterval`, `setImmediate`) are
 * vitest's fake timers, moved with `tick`; its reconnect backoff is an Effect sleep, moved
 * with the TestClock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, FiberId, Option, Queue, Scope, TestClock } from "effect"
import * as EtcdError from "../src/EtcdError.js"
import type { Endpoint } from "../src/internal/endpoint.js"
import { FrameReader } from "../src/internal/grpcFrames.js"
import * as KeepAliveHub from "../src/internal/keepAliveHub.js"
import { methods } from "../src/internal/proto/loader.js"
import type { FramedHandlers, Transport } from "../src/internal/transport.js"

const keepAlive = methods.lease.keepAlive

interface Stream {
  readonly handlers: FramedHandlers
  readonly endpoint: Endpoint
  /** The lease IDs of the keepalives written, one array per write. */
  readonly writes: Array<Array<bigint>>
  canceled: boolean
  /** Done when the hub cancels the stream. */
  readonly closed: Deferred.Deferred<void>
}

const endpointOf = (port: number): Endpoint => ({
  url: `http://127.0.0.1:${port}`,
  address: `127.0.0.1:${port}`,
  host: "127.0.0.1",
  port,
  secure: false
})

/** A transport whose keepalive streams are the test's; what the hub asks of it is recorded. */
const fakeTransport = Effect.gen(function*() {
  const opened = yield* Queue.unbounded<Stream>()
  const reported: Array<string> = []
  const refreshed: Array<Option.Option<string>> = []
  let port = 1
  const transport = {
    framedDuplex: (_path: string, handlers: FramedHandlers) =>
      Effect.sync(() => {
        const stream: Stream = {
          handlers,
          endpoint: endpointOf(port++),
          writes: [],
          canceled: false,
          closed: Deferred.unsafeMake(FiberId.none)
        }
        const reader = new FrameReader((message) => {
          stream.writes[stream.writes.length - 1].push(BigInt(keepAlive.requestDeserialize(message).ID as string))
        })
        Queue.unsafeOffer(opened, stream)
        return {
          call: {
            write: (bytes: Buffer) => {
              stream.writes.push([])
              reader.push(bytes)
            },
            cancel: () => {
              stream.canceled = true
              Deferred.unsafeDone(stream.closed, Exit.void)
            }
          },
          endpoint: stream.endpoint,
          token: Option.some(`token-${port - 1}`)
        }
      }),
    reportFailure: (endpoint: Endpoint) => {
      reported.push(endpoint.url)
    },
    refreshToken: (rejected: Option.Option<string>) =>
      Effect.sync(() => {
        refreshed.push(rejected)
      })
  } as unknown as Transport
  const hub = yield* KeepAliveHub.make(transport)
  return { hub, opened, reported, refreshed }
})

/** The server's answer to a keepalive of `id`: the lease's TTL left (0 or less: it expired). */
const answer = (stream: Stream, id: bigint, ttl: number) =>
  stream.handlers.onMessage(keepAlive.responseSerialize({ header: null, ID: id.toString(), TTL: String(ttl) }))

/** Moves the hub's clock and ticker on by `millis`. */
const tick = (millis: number) => Effect.sync(() => vi.advanceTimersByTime(millis))

/** Lets the hub's runner fiber act on what a tick told it (a stall, the linger time over). */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** Every keepalive written on a stream, in order. */
const sent = (stream: Stream) => stream.writes.flat()

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date", "setInterval", "clearInterval", "setImmediate", "clearImmediate"] })
})
afterEach(() => {
  vi.useRealTimers()
})

describe("KeepAliveHub", () => {
  it.scoped("the first keepalive goes a third of the TTL after registration; an answer sets the TTL and the next", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(7n, 6, undefined, yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      expect(held.ttl()).toBe(6)
      yield* tick(1_850)
      expect(sent(stream)).toEqual([])
      yield* tick(300)
      expect(sent(stream)).toEqual([7n])
      answer(stream, 7n, 9)
      expect(held.ttl()).toBe(9)
      // next one a third of the new TTL (3 s) after the answer
      yield* tick(2_850)
      expect(sent(stream)).toEqual([7n])
      yield* tick(300)
      expect(sent(stream)).toEqual([7n, 7n])
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
    }))

  it.scoped("an interval asked for replaces TTL / 3", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      yield* hub.keepAlive(5n, 30, Duration.millis(400), yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      yield* tick(350)
      expect(sent(stream)).toEqual([])
      yield* tick(200)
      expect(sent(stream)).toEqual([5n])
      answer(stream, 5n, 30)
      yield* tick(550)
      expect(sent(stream)).toEqual([5n, 5n])
    }))

  it.scoped("keepalives due in one tick go in one write; answers in another order still find their leases", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Effect.scope
      const one = yield* hub.keepAlive(1n, 3, undefined, scope)
      const two = yield* hub.keepAlive(300n, 3, undefined, scope)
      const stream = yield* Queue.take(opened)
      yield* tick(1_150)
      expect(stream.writes).toEqual([[1n, 300n]])
      answer(stream, 300n, 12)
      answer(stream, 1n, 15)
      expect([one.ttl(), two.ttl()]).toEqual([15, 12])
    }))

  it.scoped("an answer with TTL 0 loses the lease at once: its holders are told, and no keepalive follows", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(9n, 6, undefined, yield* Effect.scope)
      const told: Array<EtcdError.LeaseLost> = []
      held.onLost((error) => told.push(error))
      const stream = yield* Queue.take(opened)
      yield* tick(2_150)
      answer(stream, 9n, 0)
      expect(told).toMatchObject([{ _tag: "LeaseLost", leaseId: 9n, reason: "expired" }])
      expect(yield* Effect.flip(Deferred.await(held.lost))).toMatchObject({
        _tag: "LeaseLost",
        leaseId: 9n,
        reason: "expired"
      })
      yield* tick(10_000)
      expect(sent(stream)).toEqual([9n])
    }))

  it.scoped("a keepalive unanswered past its stall bound, with nothing heard, replaces the stream", () =>
    Effect.gen(function*() {
      const { hub, opened, reported } = yield* fakeTransport
      const held = yield* hub.keepAlive(4n, 12, undefined, yield* Effect.scope)
      const first = yield* Queue.take(opened)
      yield* tick(4_150)
      expect(sent(first)).toEqual([4n])
      // the stall bound is a quarter of the TTL (3 s): not yet
      yield* tick(2_800)
      yield* settle
      expect(first.canceled).toBe(false)
      yield* tick(400)
      yield* Deferred.await(first.closed)
      expect(reported).toEqual([first.endpoint.url])
      yield* TestClock.adjust("2 seconds")
      const second = yield* Queue.take(opened)
      // the keepalive is sent again on the new stream, at once
      yield* tick(100)
      expect(sent(second)).toEqual([4n])
      answer(second, 4n, 12)
      expect(held.ttl()).toBe(12)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
    }))

  it.scoped("answers to other leases are progress: a busy stream is not stalled", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Effect.scope
      yield* hub.keepAlive(1n, 12, undefined, scope)
      yield* hub.keepAlive(2n, 12, Duration.millis(500), scope)
      const stream = yield* Queue.take(opened)
      // lease 2's keepalives are answered every half second; lease 1's (sent at 4 s) is not
      for (let i = 0; i < 17; i++) {
        yield* tick(500)
        answer(stream, 2n, 12)
      }
      expect(sent(stream).filter((id) => id === 1n)).toEqual([1n])
      yield* settle
      expect(stream.canceled).toBe(false)
    }))

  it.scoped("a lease whose TTL passes with no answer is lost with keepalive-timeout", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(3n, 3, undefined, yield* Effect.scope)
      yield* Queue.take(opened)
      yield* tick(2_900)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
      yield* tick(300)
      expect(yield* Effect.flip(Deferred.await(held.lost))).toMatchObject({ leaseId: 3n, reason: "keepalive-timeout" })
    }))

  it.scoped("a broken stream is reported and reopened; a refused token is refreshed instead", () =>
    Effect.gen(function*() {
      const { hub, opened, refreshed, reported } = yield* fakeTransport
      yield* hub.keepAlive(8n, 30, undefined, yield* Effect.scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.Unavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* TestClock.adjust("2 seconds")
      const second = yield* Queue.take(opened)
      expect(first.canceled).toBe(true)
      expect(reported).toEqual([first.endpoint.url])
      second.handlers.onEnd(new EtcdError.InvalidAuthToken({ method: "m" }))
      yield* TestClock.adjust("2 seconds")
      yield* Queue.take(opened)
      expect(refreshed).toEqual([Option.some("token-2")])
      expect(reported).toEqual([first.endpoint.url])
    }))

  it.scoped("holders share a lease's keepalives; the stream closes once the last lease was gone a while", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Scope.make()
      const b = yield* Scope.make()
      const held = yield* hub.keepAlive(6n, 3, undefined, a)
      yield* hub.keepAlive(6n, 3, undefined, b)
      const stream = yield* Queue.take(opened)
      yield* tick(1_150)
      expect(sent(stream)).toEqual([6n])
      answer(stream, 6n, 3)
      yield* Scope.close(a, Exit.void)
      // still held by b
      yield* tick(1_150)
      expect(sent(stream)).toEqual([6n, 6n])
      answer(stream, 6n, 3)
      yield* Scope.close(b, Exit.void)
      yield* tick(5_000)
      yield* settle
      expect(sent(stream)).toEqual([6n, 6n])
      expect(stream.canceled).toBe(false)
      yield* tick(5_100)
      yield* Deferred.await(stream.closed)
      // a lost listener of a released registration is not called
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
      // a new lease opens a new stream
      yield* hub.keepAlive(10n, 3, undefined, yield* Effect.scope)
      const next = yield* Queue.take(opened)
      yield* tick(1_150)
      expect(sent(next)).toEqual([10n])
    }))

  it.scoped("a lease let go while its keepalive is in flight ignores the answer", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Scope.make()
      const held = yield* hub.keepAlive(11n, 3, undefined, scope)
      const told: Array<EtcdError.LeaseLost> = []
      held.onLost((error) => told.push(error))
      const stream = yield* Queue.take(opened)
      yield* tick(1_150)
      yield* Scope.close(scope, Exit.void)
      answer(stream, 11n, 0)
      expect(told).toEqual([])
    }))
})
