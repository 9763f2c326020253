/**
 * The lease keepalive hub (internal/streams/keepAliveHub.ts) on its own, over a fake transport whose
 * streams record what the hub writes and deliver the answers the test makes: when each
 * keepalive goes, what an answer does to a lease, when a lease is lost, and when the stream
 * is replaced. The hub's clock and ticker (`performance.now`, `setInterval`, `setImmediate`) are
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

/**
 * What the test makes of the next opens: `gate`, while set, holds each open until it is done;
 * `failures` opens fail before one succeeds.
 */
interface Opens {
  gate: Deferred.Deferred<void> | undefined
  failures: number
}

/** A transport whose keepalive streams are the test's; what the hub asks of it is recorded. */
const fakeTransport = Effect.gen(function*() {
  const opened = yield* Queue.unbounded<Stream>()
  const reported: Array<string> = []
  const refreshed: Array<Option.Option<string>> = []
  const opens: Opens = { gate: undefined, failures: 0 }
  let port = 1
  const transport = {
    framedDuplex: (_path: string, handlers: FramedHandlers, options: unknown) =>
      Effect.zipRight(
        opens.gate === undefined ? Effect.void : Deferred.await(opens.gate),
        Effect.suspend(() => {
          if (opens.failures === 0) return Effect.void
          opens.failures--
          return Effect.fail(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "refused" }))
        })
      ).pipe(Effect.map(() => {
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
      })),
    reportFailure: (endpoint: Endpoint) => {
      reported.push(endpoint.url)
    },
    refreshToken: (rejected: Option.Option<string>) =>
      Effect.sync(() => {
        refreshed.push(rejected)
      })
  } as unknown as Transport
  const hub = yield* KeepAliveHub.make(transport)
  return { hub, opened, reported, refreshed, opens }
})

/** The server's answer to a keepalive of `id`: the lease's TTL left (0 or less: it expired). */
const answer = (stream: Stream, id: bigint, ttl: number) =>
  stream.handlers.onMessage(keepAlive.responseSerialize({ header: null, ID: id.toString(), TTL: String(ttl) }))

/** Moves the hub's clock and ticker on by `millis`. */
const tick = (millis: number) => Effect.sync(() => vi.advanceTimersByTime(millis))

/**
 * Moves the hub's clock to read `millis` (it reads 1 when the test starts), running the ticks
 * due by then. A tick runs 1 ms after its interval fires (a fake `setImmediate` scheduled by a
 * timer waits 1 ms): a hub whose ticker started at its clock's `r` ticks at `r + 101`, `r + 201`...
 */
const clockAt = (millis: number) => Effect.sync(() => vi.advanceTimersByTime(millis - 1 - performance.now()))

/** Lets the hub's runner fiber act on what a tick told it (a stall, the linger time over). */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** Every keepalive written on a stream, in order. */
const sent = (stream: Stream) => stream.writes.flat()

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ["Date", "performance", "setInterval", "clearInterval", "setImmediate", "clearImmediate"]
  })
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
      first.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
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
      first.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
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
      first.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
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
      first.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
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
      first.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      yield* TestClock.adjust("99 millis")
      yield* settle
      expect(yield* Queue.size(opened)).toBe(0)
      yield* TestClock.adjust("1 millis")
      yield* Queue.take(opened)
    }))

  it.scoped("a stream whose token was refused is opened again at once with a fresh token, not after a backoff", () =>
    Effect.gen(function*() {
      const { hub, opened, refreshed, reported } = yield* fakeTransport
      yield* hub.keepAlive(26n, 30, undefined, yield* Effect.scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.InvalidAuthToken({ method: "m" }))
      yield* settle
      // the TestClock has not moved: no backoff was waited for
      expect(yield* Queue.size(opened)).toBe(1)
      expect(first.canceled).toBe(true)
      expect(refreshed).toEqual([Option.some(`token-${first.endpoint.port}`)])
      expect(reported).toEqual([])
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

  it.scoped("the hub's clock is monotonic: the wall clock set back or forward changes no keepalive", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(30n, 3, undefined, yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      // an hour back: on the wall clock, the keepalive would wait an hour
      vi.setSystemTime(Date.now() - 3_600_000)
      yield* tick(1_150)
      expect(sent(stream)).toEqual([30n])
      answer(stream, 30n, 3)
      // two hours forward: on the wall clock, the lease would be past its deadline
      vi.setSystemTime(Date.now() + 7_200_000)
      yield* tick(100)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
      yield* tick(1_000)
      expect(sent(stream)).toEqual([30n, 30n])
    }))

  it.scoped("an answer that comes late with a shorter TTL: the lease is lost at its new deadline, not at its next keepalive", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(31n, 12, undefined, yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      // sent at 4.1 s; the stream is heard every half second (answers to no lease of this hub)
      for (let i = 0; i < 13; i++) {
        yield* tick(500)
        answer(stream, 99n, 60)
      }
      expect(sent(stream)).toEqual([31n])
      // answered at 6.5 s with a TTL of 3 s: the server renewed the lease at 4.1 s at the
      // earliest, so it may expire it at 7.1 s, before the next keepalive (7.5 s)
      answer(stream, 31n, 3)
      yield* tick(650)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
      yield* tick(100)
      expect(yield* Deferred.isDone(held.lost)).toBe(true)
      expect(yield* Effect.flip(Deferred.await(held.lost))).toMatchObject({ leaseId: 31n, reason: "keepalive-timeout" })
      expect(sent(stream)).toEqual([31n])
    }))

  it.scoped("an interval asked for that is longer than the TTL: the lease is lost at its deadline", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const held = yield* hub.keepAlive(32n, 3, Duration.seconds(5), yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      yield* tick(2_900)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
      yield* tick(250)
      expect(yield* Effect.flip(Deferred.await(held.lost))).toMatchObject({ leaseId: 32n, reason: "keepalive-timeout" })
      expect(sent(stream)).toEqual([])
    }))

  it.scoped("a keepalive goes, a stall is seen and a lease is lost on the very millisecond due", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      // registered at 99 ms: the ticks come at 200, 300, ... ms
      yield* clockAt(99)
      const held = yield* hub.keepAlive(40n, 3, undefined, yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      yield* clockAt(1_100)
      expect(sent(stream)).toEqual([40n])
      // answered at 1.1 s: next at 2.1 s, deadline 4.1 s
      answer(stream, 40n, 3)
      yield* clockAt(2_099)
      expect(sent(stream)).toEqual([40n])
      yield* clockAt(2_100)
      expect(sent(stream)).toEqual([40n, 40n])
      // heard at 2.1 s, and the keepalive sent then: stalled at 3.1 s (a bound of 1 s)
      answer(stream, 99n, 60)
      yield* clockAt(3_099)
      yield* settle
      expect(stream.canceled).toBe(false)
      yield* clockAt(3_100)
      yield* settle
      expect(stream.canceled).toBe(true)
      // the stream is not opened again (the TestClock stands still): lost at 4.1 s
      yield* clockAt(4_099)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
      yield* clockAt(4_100)
      expect(yield* Deferred.isDone(held.lost)).toBe(true)
    }))

  it.scoped("a stream that opens when a keepalive is due sends it; one that opens at the lease's deadline does not", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Effect.scope
      yield* hub.keepAlive(41n, 3, undefined, scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      // due at 1 001 ms
      yield* clockAt(1_001)
      yield* TestClock.adjust("100 millis")
      const second = yield* Queue.take(opened)
      expect(sent(second)).toEqual([41n])
      // registered at 1 550 ms: due at 2 550 ms, deadline 4 550 ms, between two ticks
      yield* clockAt(1_550)
      const late = yield* hub.keepAlive(42n, 3, undefined, scope)
      answer(second, 41n, 30)
      second.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      yield* clockAt(4_550)
      yield* TestClock.adjust("100 millis")
      const third = yield* Queue.take(opened)
      expect(sent(third)).toEqual([])
      yield* clockAt(4_700)
      expect(yield* Deferred.isDone(late.lost)).toBe(true)
      expect(yield* Effect.flip(Deferred.await(late.lost))).toMatchObject({ leaseId: 42n, reason: "keepalive-timeout" })
    }))

  it.scoped("the backoff starts over after a stream that opened", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      yield* hub.keepAlive(50n, 30, undefined, yield* Effect.scope)
      const first = yield* Queue.take(opened)
      first.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      yield* TestClock.adjust("100 millis")
      const second = yield* Queue.take(opened)
      second.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
      yield* settle
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect(yield* Queue.size(opened)).toBe(1)
    }))

  it.scoped("a stream that fails to open is tried again after a backoff that doubles; the lease is kept", () =>
    Effect.gen(function*() {
      const { hub, opened, opens } = yield* fakeTransport
      opens.failures = 2
      const held = yield* hub.keepAlive(51n, 30, undefined, yield* Effect.scope)
      yield* settle
      yield* TestClock.adjust("100 millis")
      yield* settle
      yield* TestClock.adjust("199 millis")
      yield* settle
      expect(yield* Queue.size(opened)).toBe(0)
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(yield* Queue.size(opened)).toBe(1)
      expect(yield* Deferred.isDone(held.lost)).toBe(false)
    }))

  it.scoped("a lease let go and kept alive again while its keepalive is in flight: the old keepalive's answer is not the new one's", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Effect.scope
      yield* hub.keepAlive(60n, 3, undefined, scope)
      const a = yield* Scope.make()
      yield* hub.keepAlive(61n, 3, undefined, a)
      const stream = yield* Queue.take(opened)
      yield* tick(1_150)
      expect(sent(stream)).toEqual([60n, 61n])
      yield* Scope.close(a, Exit.void)
      const again = yield* hub.keepAlive(61n, 3, Duration.millis(50), scope)
      yield* tick(200)
      expect(sent(stream)).toEqual([60n, 61n, 61n])
      answer(stream, 60n, 3)
      answer(stream, 61n, 5)
      expect(again.ttl()).toBe(3)
      answer(stream, 61n, 9)
      expect(again.ttl()).toBe(9)
    }))

  it.scoped("a duplicate answer does not put the next keepalive off", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      yield* hub.keepAlive(70n, 3, undefined, yield* Effect.scope)
      const stream = yield* Queue.take(opened)
      yield* tick(1_150)
      expect(sent(stream)).toEqual([70n])
      answer(stream, 70n, 3)
      // the next one is due at 2.15 s
      yield* tick(850)
      answer(stream, 70n, 3)
      yield* tick(250)
      expect(sent(stream)).toEqual([70n, 70n])
    }))

  it.scoped("the first tick after a long wait takes every slot due, in order, and no later one", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      // the hub's clock runs from its start, its ticker from the first lease: registered at
      // 999 ms, the first tick is at 1 100 ms
      yield* clockAt(999)
      const scope = yield* Effect.scope
      // due at 1 050 ms, at 1 000 ms (an earlier slot, put later), and at 1 499 ms
      yield* hub.keepAlive(81n, 30, Duration.millis(51), scope)
      yield* hub.keepAlive(80n, 30, Duration.millis(1), scope)
      yield* hub.keepAlive(82n, 30, Duration.millis(500), scope)
      const stream = yield* Queue.take(opened)
      expect(stream.writes).toEqual([])
      yield* clockAt(1_100)
      expect(stream.writes).toEqual([[80n, 81n]])
      yield* clockAt(1_400)
      expect(sent(stream)).toEqual([80n, 81n])
      yield* clockAt(1_500)
      expect(sent(stream)).toEqual([80n, 81n, 82n])
    }))

  it.scoped("a lease due at once, registered on a tick, goes on the next tick", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      // registered at 99 ms: the ticks come at 200, 300, ... ms
      yield* clockAt(99)
      const scope = yield* Effect.scope
      yield* hub.keepAlive(83n, 30, undefined, scope)
      const stream = yield* Queue.take(opened)
      yield* clockAt(200)
      yield* hub.keepAlive(84n, 30, Duration.millis(0), scope)
      yield* clockAt(300)
      expect(sent(stream)).toEqual([84n])
    }))

  it.scoped("the stream is let go on the very millisecond the linger time ends", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const scope = yield* Scope.make()
      yield* hub.keepAlive(85n, 30, undefined, scope)
      const stream = yield* Queue.take(opened)
      // released on a tick (they come at 102, 202, ... ms)
      yield* clockAt(5_002)
      yield* Scope.close(scope, Exit.void)
      yield* clockAt(15_001)
      yield* settle
      expect(stream.canceled).toBe(false)
      yield* clockAt(15_002)
      yield* settle
      expect(stream.canceled).toBe(true)
    }))

  it.scoped("a stream that opens after its last lease went lingers all the same", () =>
    Effect.gen(function*() {
      const { hub, opened, opens } = yield* fakeTransport
      const gate = yield* Deferred.make<void>()
      opens.gate = gate
      const scope = yield* Scope.make()
      yield* hub.keepAlive(90n, 30, undefined, scope)
      yield* settle
      yield* Scope.close(scope, Exit.void)
      opens.gate = undefined
      yield* Deferred.succeed(gate, undefined)
      const stream = yield* Queue.take(opened)
      yield* settle
      expect(stream.canceled).toBe(false)
      yield* tick(10_100)
      yield* settle
      expect(stream.canceled).toBe(true)
    }))

  it.scoped("nothing goes on a stream let go: a lease that comes while the next one opens waits for it", () =>
    Effect.gen(function*() {
      const { hub, opened, opens } = yield* fakeTransport
      const scope = yield* Scope.make()
      yield* hub.keepAlive(91n, 30, undefined, scope)
      const first = yield* Queue.take(opened)
      yield* Scope.close(scope, Exit.void)
      yield* tick(10_100)
      yield* Deferred.await(first.closed)
      yield* settle
      const gate = yield* Deferred.make<void>()
      opens.gate = gate
      yield* hub.keepAlive(92n, 3, undefined, yield* Effect.scope)
      // the new runner starts its ticker, then waits for the stream to open
      yield* settle
      yield* tick(1_150)
      expect(sent(first)).toEqual([])
      opens.gate = undefined
      yield* Deferred.succeed(gate, undefined)
      const second = yield* Queue.take(opened)
      expect(sent(second)).toEqual([92n])
    }))

  it.scoped("a holder of a lost lease let go after the lease was kept alive again leaves the new registration alone", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Scope.make()
      yield* hub.keepAlive(95n, 3, undefined, a)
      const stream = yield* Queue.take(opened)
      yield* tick(1_150)
      answer(stream, 95n, 0)
      // granted again under the same ID (as etcd allows once it expired), while the lost one is still held
      const again = yield* hub.keepAlive(95n, 3, undefined, yield* Effect.scope)
      yield* Scope.close(a, Exit.void)
      yield* tick(1_100)
      expect(sent(stream)).toEqual([95n, 95n])
      answer(stream, 95n, 3)
      yield* tick(1_100)
      expect(sent(stream)).toEqual([95n, 95n, 95n])
      expect(yield* Deferred.isDone(again.lost)).toBe(false)
    }))
})
