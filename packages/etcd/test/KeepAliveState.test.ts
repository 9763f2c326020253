/**
 * The lease keepalive hub (internal/streams/keepAliveHub.ts) on its own, over a fake transport whose
 * streams record what the hub writes and deliver the answers the test makes: when each
 * keepalive goes, what an answer does to a lease, when a lease is lost, and when the stream
 * is replaced. The hub's clock and ticker (`Date`, `setInterval`, `setImmediate`) are
 * vitest's fake timers, moved with `tick`; its reconnect backoff is an Effect sleep, moved
 * with the TestClock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, FiberId, Option, Queue, Scope, TestClock } from "effect"
import * as EtcdError from "../src/EtcdError.js"
import type { Endpoint } from "../src/internal/base/endpoint.js"
import * as KeepAliveHub from "../src/internal/streams/keepAliveHub.js"
import type { FramedHandlers, Transport } from "../src/internal/transport/transport.js"
import { FrameReader } from "../src/internal/wire/grpcFrames.js"
import { methods } from "../src/internal/wire/proto/loader.js"

const keepAlive = methods.lease.keepAlive

interface Stream {
  readonly handlers: FramedHandlers
  /** The options the hub opened it with. */
  readonly options: unknown
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
    framedDuplex: (_path: string, handlers: FramedHandlers, options: unknown) =>
      Effect.sync(() => {
        const stream: Stream = {
          handlers,
          options,
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
      // a keepalive to a member cut off from the leader would be answered for nothing
      expect(stream.options).toEqual({ requireLeader: true })
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

  it.scoped("an answer out of order is matched by its whole ID, not by the in-flight head", () =>
    Effect.gen(function*() {
      // pairs of IDs that differ only in the low, the middle or the high bits of their varint
      const pairs: Array<readonly [bigint, bigint]> = [
        [1n, 2n],
        [1n + (1n << 28n), 1n + (2n << 28n)],
        [1n + (1n << 56n), 1n + (2n << 56n)]
      ]
      for (const [a, b] of pairs) {
        const { hub, opened } = yield* fakeTransport
        const scope = yield* Scope.make()
        const first = yield* hub.keepAlive(a, 3, undefined, scope)
        const second = yield* hub.keepAlive(b, 3, undefined, scope)
        const stream = yield* Queue.take(opened)
        yield* tick(1_150)
        expect(sent(stream)).toEqual([a, b])
        answer(stream, b, 20)
        answer(stream, a, 10)
        expect([first.ttl(), second.ttl()]).toEqual([10, 20])
        yield* Scope.close(scope, Exit.void)
      }
    }))

  it.scoped("an answer with no keepalive in flight (a duplicate) changes nothing", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(12n, 3, undefined, yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      for (let i = 1; i <= 3; i++) {
        yield* tick(1_150)
        expect(sent(stream).length).toBe(i)
        answer(stream, 12n, 3)
      }
      // the hub's clock is past the TTL now: a duplicate taken for an answer would make the deadline 3 s
      answer(stream, 12n, 3)
      yield* tick(1_150)
      expect(sent(stream)).toEqual([12n, 12n, 12n, 12n])
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
    }))

  it.scoped("nothing is sent on a stalled stream: what comes due meanwhile goes on the next one", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Effect.scope
      yield* hub.keepAlive(4n, 12, undefined, scope)
      // due in the ticks after the stall was seen, before the runner replaced the stream
      yield* hub.keepAlive(5n, 60, Duration.millis(7_250), scope)
      const first = yield* Queue.take(opened)
      yield* tick(4_150)
      expect(sent(first)).toEqual([4n])
      yield* tick(2_900)
      // the stall is seen at about 7.1 s, lease 5 is due at 7.25 s: both in this one advance
      yield* tick(400)
      expect(sent(first)).toEqual([4n])
      yield* Deferred.await(first.closed)
      yield* TestClock.adjust("2 seconds")
      const second = yield* Queue.take(opened)
      expect(second.writes).toEqual([[4n, 5n]])
    }))

  it.scoped("a lease due while the stream is being reopened is sent once the new one opens", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(13n, 6, undefined, yield* Effect.scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.Unavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      // due at 2 s, with no stream
      yield* tick(2_500)
      expect(sent(first)).toEqual([])
      yield* TestClock.adjust("2 seconds")
      const second = yield* Queue.take(opened)
      expect(sent(second)).toEqual([13n])
      answer(second, 13n, 6)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
    }))

  it.scoped("a lease past its TTL when the stream reopens is not sent: it is lost", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(14n, 3, undefined, yield* Effect.scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.Unavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      // the deadline (3 s after registration) has passed, the tick that loses the lease has not come
      yield* tick(3_050)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
      yield* TestClock.adjust("2 seconds")
      const second = yield* Queue.take(opened)
      expect(sent(second)).toEqual([])
      yield* tick(100)
      expect(yield* Effect.flip(Deferred.await(held.lost))).toMatchObject({ reason: "keepalive-timeout" })
    }))

  it.scoped("a stream is stalled once the other leases' answers stop for the stall bound", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Effect.scope
      yield* hub.keepAlive(1n, 12, undefined, scope)
      yield* hub.keepAlive(2n, 60, Duration.millis(500), scope)
      const stream = yield* Queue.take(opened)
      // lease 2 is answered until 5 s; lease 1's keepalive (sent at 4 s) never is
      for (let i = 0; i < 10; i++) {
        yield* tick(500)
        answer(stream, 2n, 60)
      }
      expect(sent(stream).filter((id) => id === 1n)).toEqual([1n])
      // stalled 3 s after the last answer (lease 2's own stall bound is 15 s)
      yield* tick(2_900)
      yield* settle
      expect(stream.canceled).toBe(false)
      yield* tick(300)
      yield* Deferred.await(stream.closed)
    }))

  it.scoped("an interval shorter than a tick sends on the first tick", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      yield* hub.keepAlive(16n, 30, Duration.millis(50), yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      yield* tick(150)
      expect(sent(stream)).toEqual([16n])
    }))

  it.scoped("a lease let go sends no more keepalives; the others go on", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Scope.make()
      yield* hub.keepAlive(20n, 3, undefined, scope)
      yield* hub.keepAlive(21n, 3, undefined, yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      yield* tick(500)
      yield* Scope.close(scope, Exit.void)
      yield* tick(700)
      expect(sent(stream)).toEqual([21n])
    }))

  it.scoped("the stream closes exactly the linger time after the last lease went, and a lease that comes meanwhile keeps it", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Scope.make()
      yield* hub.keepAlive(22n, 30, undefined, scope)
      const stream = yield* Queue.take(opened)
      // released on a tick, 5 s in
      yield* tick(5_000)
      yield* Scope.close(scope, Exit.void)
      yield* tick(9_900)
      yield* settle
      expect(stream.canceled).toBe(false)
      // the linger time is over on this tick: the runner is told, and a lease comes before it looks
      yield* tick(101)
      yield* hub.keepAlive(23n, 3, undefined, yield* Effect.scope)
      yield* settle
      expect(stream.canceled).toBe(false)
      expect(yield* Queue.size(opened)).toBe(0)
      yield* tick(1_150)
      expect(sent(stream)).toEqual([23n])
    }))

  it.scoped("once the stream closed for lack of leases, none is opened until a lease comes", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Scope.make()
      yield* hub.keepAlive(24n, 30, undefined, scope)
      const stream = yield* Queue.take(opened)
      yield* Scope.close(scope, Exit.void)
      yield* tick(10_100)
      yield* Deferred.await(stream.closed)
      yield* settle
      yield* TestClock.adjust("2 seconds")
      expect(yield* Queue.size(opened)).toBe(0)
      // nor does the ticker run (once the tick it had started ran)
      yield* tick(50)
      expect(vi.getTimerCount()).toBe(0)
    }))

  it.scoped("a lease let go while the stream is down: the linger time passes, and no stream is opened again", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Scope.make()
      yield* hub.keepAlive(27n, 30, undefined, scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.Unavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      yield* tick(10_100)
      yield* TestClock.adjust("2 seconds")
      yield* settle
      expect(yield* Queue.size(opened)).toBe(0)
    }))

  it.scoped("a broken stream is reopened after a backoff of 100 ms", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      yield* hub.keepAlive(25n, 30, undefined, yield* Effect.scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.Unavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      yield* TestClock.adjust("99 millis")
      yield* settle
      expect(yield* Queue.size(opened)).toBe(0)
      yield* TestClock.adjust("1 millis")
      yield* Queue.take(opened)
    }))

  it.scoped("a released holder's lost listener is not called when the lease is lost later", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Scope.make()
      const first = yield* hub.keepAlive(26n, 3, undefined, a)
      const second = yield* hub.keepAlive(26n, 3, undefined, yield* Effect.scope)
      const told: Array<string> = []
      first.onLost(() => told.push("first"))
      second.onLost(() => told.push("second"))
      const stream = yield* Queue.take(opened)
      yield* Scope.close(a, Exit.void)
      yield* tick(1_150)
      answer(stream, 26n, 0)
      expect(told).toEqual(["second"])
    }))
})
