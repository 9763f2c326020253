/**
 * The watch hub's bookkeeping of creates and progress requests (internal/streams/watchHub.ts), over
 * the fake transport of fakeWatchTransport.ts: which create an answer belongs to, when creates are
 * pipelined (a server that honours the IDs asked for) and when they go one at a time (a server that
 * renumbers, as etcd's gRPC proxy does), what a refusal ends, when a progress request is sent and what
 * settles it, how the backoff starts over, and when the stream is let go.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, HashMap, Logger, LogLevel, Option, Queue, TestClock } from "effect"
import * as EtcdError from "../src/EtcdError.js"
import * as WatchHub from "../src/internal/streams/watchHub.js"
import {
  endpoint,
  events,
  fakeTransport,
  fakeTransportWith,
  flush,
  put,
  reconnect,
  send,
  spec,
  type Stream,
  take
} from "./fakeWatchTransport.js"

/** Answers a create with `watchId` as the server's ID, at `revision`. */
const created = (stream: Stream, watchId: string | number, revision = 10) =>
  send(stream, { header: { revision: String(revision) }, watchId: String(watchId), created: true })

/** The next request the hub wrote: a create's asked ID. */
const nextCreate = (stream: Stream) => Effect.map(Queue.take(stream.requests), (request) => request.createRequest!)

/** How many requests wait in the stream's queue once this turn's are written. */
const pending = (stream: Stream) => Effect.zipRight(flush, Queue.size(stream.requests))

const reset = new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" })

const permissionDenied = {
  header: { revision: "10" },
  watchId: "-1",
  created: true,
  canceled: true,
  cancelReason: "etcdserver: permission denied"
}

describe("WatchHub creates", () => {
  it.scoped("on a server that renumbers, one create is in flight at a time, each answer to its create", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Effect.fork(WatchHub.subscribe(hub, spec({ key: Buffer.from("a"), rangeEnd: undefined })))
      const stream = yield* Queue.take(opened)
      const b = yield* Effect.fork(WatchHub.subscribe(hub, spec({ key: Buffer.from("b"), rangeEnd: undefined })))
      const c = yield* Effect.fork(WatchHub.subscribe(hub, spec({ key: Buffer.from("c"), rangeEnd: undefined })))
      expect((yield* nextCreate(stream)).key.toString()).toBe("a")
      expect(yield* pending(stream)).toBe(0)
      // asked for ID 1, given 0: the proxy's numbering, so the next create still waits its turn
      created(stream, 0, 10)
      expect((yield* nextCreate(stream)).key.toString()).toBe("b")
      expect(yield* pending(stream)).toBe(0)
      created(stream, 1, 11)
      expect((yield* nextCreate(stream)).key.toString()).toBe("c")
      created(stream, 2, 12)
      const [first, second, third] = [yield* Fiber.join(a), yield* Fiber.join(b), yield* Fiber.join(c)]
      expect([first.createdRevision, second.createdRevision, third.createdRevision]).toEqual([10n, 11n, 12n])
      // events are routed by the server's IDs
      events(stream, 1n, 13, 13)
      events(stream, 0n, 14, 14)
      expect(yield* take(second)).toEqual([13])
      expect(yield* take(first)).toEqual([14])
    }))

  it.scoped("once the server answers with the ID asked for, creates are pipelined and matched by ID", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const askedA = yield* nextCreate(stream)
      expect(askedA.watchId).toBe("1")
      created(stream, 1)
      yield* Fiber.join(a)
      const b = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const c = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      // both go out before either is answered
      const [askedB, askedC] = [yield* nextCreate(stream), yield* nextCreate(stream)]
      expect([askedB.watchId, askedC.watchId]).toEqual(["2", "3"])
      created(stream, 3, 30)
      created(stream, 2, 20)
      expect((yield* Fiber.join(b)).createdRevision).toBe(20n)
      expect((yield* Fiber.join(c)).createdRevision).toBe(30n)
    }))

  it.scoped("an answer that is both the ID asked for and the renumbering count proves nothing", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      // a caller's ID 5 answered 0: renumbered
      const a = yield* Effect.fork(WatchHub.subscribe(hub, spec({ watchId: 5n })))
      const stream = yield* Queue.take(opened)
      expect((yield* nextCreate(stream)).watchId).toBe("5")
      created(stream, 0)
      yield* Fiber.join(a)
      // ID 1 asked and 1 given: also what the proxy's second watcher gets
      const b = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      expect((yield* nextCreate(stream)).watchId).toBe("1")
      created(stream, 1)
      yield* Fiber.join(b)
      const c = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const d = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      yield* nextCreate(stream)
      expect(yield* pending(stream)).toBe(0)
      created(stream, 2)
      yield* nextCreate(stream)
      created(stream, 3)
      yield* Fiber.join(c)
      yield* Fiber.join(d)
    }))

  it.scoped("an answer with another ID than the one asked for shows nothing about the server", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      expect((yield* nextCreate(stream)).watchId).toBe("1")
      created(stream, 7)
      yield* Fiber.join(a)
      const b = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const c = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      yield* nextCreate(stream)
      expect(yield* pending(stream)).toBe(0)
      created(stream, 8)
      yield* nextCreate(stream)
      created(stream, 9)
      yield* Fiber.join(b)
      yield* Fiber.join(c)
    }))

  it.scoped("a create that waits its turn is not sent once its watcher is released", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Effect.fork(WatchHub.subscribe(hub, spec({ key: Buffer.from("a"), rangeEnd: undefined })))
      const stream = yield* Queue.take(opened)
      const b = yield* Effect.fork(
        Effect.scoped(WatchHub.subscribe(hub, spec({ key: Buffer.from("b"), rangeEnd: undefined })))
      )
      const c = yield* Effect.fork(WatchHub.subscribe(hub, spec({ key: Buffer.from("c"), rangeEnd: undefined })))
      expect((yield* nextCreate(stream)).key.toString()).toBe("a")
      yield* Fiber.interrupt(b)
      created(stream, 0)
      expect((yield* nextCreate(stream)).key.toString()).toBe("c")
      created(stream, 1)
      yield* Fiber.join(a)
      yield* Fiber.join(c)
      expect(yield* pending(stream)).toBe(0)
    }))

  it.scoped("a failed create (ID -1) among pipelined ones is the oldest's", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const a = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      created(stream, (yield* nextCreate(stream)).watchId)
      yield* Fiber.join(a)
      const b = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const c = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      yield* nextCreate(stream)
      const askedC = yield* nextCreate(stream)
      send(stream, permissionDenied)
      created(stream, askedC.watchId, 12)
      expect(yield* Effect.flip(Fiber.join(b))).toMatchObject({ _tag: "EtcdPermissionDenied" })
      expect((yield* Fiber.join(c)).createdRevision).toBe(12n)
    }))

  it.scoped("a created answer with no create in flight is ignored, and the stream goes on", () =>
    Effect.gen(function*() {
      const { hub, opened, reported } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = yield* nextCreate(stream)
      created(stream, create.watchId)
      const subscription = yield* Fiber.join(fiber)
      created(stream, 9)
      events(stream, BigInt(create.watchId), 11, 11)
      expect(yield* take(subscription)).toEqual([11])
      expect(reported).toEqual([])
      expect(Option.isNone(yield* Deferred.poll(stream.closed))).toBe(true)
    }))

  it.scoped("a watcher resumed twice frees the stream ID of its first resumption", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ bufferBytes: 10 })))
      const stream = yield* Queue.take(opened)
      created(stream, (yield* nextCreate(stream)).watchId)
      const subscription = yield* Fiber.join(fiber)
      // past its bound twice: canceled, taken from, created again under a new ID each time
      const overflow = (watchId: string, revision: number) =>
        Effect.gen(function*() {
          send(stream, {
            header: { revision: String(revision + 1) },
            watchId,
            events: [put(`k${revision}`, revision, "vvvv"), put(`k${revision + 1}`, revision + 1, "vvvv")]
          })
          expect((yield* Queue.take(stream.requests)).cancelRequest?.watchId).toBe(watchId)
          expect(yield* take(subscription)).toEqual([revision, revision + 1])
          return yield* nextCreate(stream)
        })
      const second = yield* overflow("1", 11)
      expect(second.watchId).toBe("2")
      created(stream, 2)
      const third = yield* overflow("2", 13)
      expect(third.watchId).toBe("3")
      // ID 2 is no watcher's now: a caller may ask for it
      const again = yield* Effect.fork(WatchHub.subscribe(hub, spec({ watchId: 2n })))
      expect((yield* nextCreate(stream)).watchId).toBe("2")
      created(stream, 3, 15)
      created(stream, 2, 16)
      expect((yield* Fiber.join(again)).watchId).toBe(2n)
    }))
})

describe("WatchHub refusals and the backoff", () => {
  it.scoped("with auth, a create canceled for another reason than permission ends its watcher at once", () =>
    Effect.gen(function*() {
      const { hub, opened, refreshed } = yield* fakeTransportWith({ auth: true })
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      yield* nextCreate(stream)
      send(stream, { ...permissionDenied, cancelReason: "etcdserver: mvcc: required revision is a future revision" })
      expect(yield* Effect.flip(Fiber.join(fiber))).toMatchObject({ _tag: "WatchCanceled" })
      expect(refreshed).toEqual([])
    }))

  it.scoped("a create refused for permission after one that succeeded is tried again with a new token", () =>
    Effect.gen(function*() {
      const { hub, opened, refreshed } = yield* fakeTransportWith({ auth: true })
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const first = yield* Queue.take(opened)
      yield* nextCreate(first)
      send(first, permissionDenied)
      const second = yield* Queue.take(opened)
      created(second, (yield* nextCreate(second)).watchId)
      const subscription = yield* Fiber.join(fiber)
      // the refusal was the token's: a later one is too, once more, and not final
      const third = yield* reconnect(opened, second)
      yield* nextCreate(third)
      send(third, permissionDenied)
      const fourth = yield* Queue.take(opened)
      expect(refreshed.length).toBe(2)
      const create = yield* nextCreate(fourth)
      created(fourth, create.watchId, 12)
      events(fourth, BigInt(create.watchId), 12, 12)
      expect(yield* take(subscription)).toEqual([12])
    }))

  it.scoped("streams that create nothing make the backoff grow; one that creates a watcher starts it over", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      let stream = yield* Queue.take(opened)
      // five streams broken before their create is answered: the fifth wait is 800 ms at least
      for (let i = 0; i < 5; i++) stream = yield* reconnect(opened, stream)
      created(stream, (yield* nextCreate(stream)).watchId)
      stream.handlers.onEnd(reset)
      yield* Deferred.await(stream.closed)
      // the first wait after a stream of use: 100 ms at most
      yield* TestClock.adjust("100 millis")
      yield* flush
      expect(Option.isSome(yield* Queue.poll(opened))).toBe(true)
    }))
})

describe("WatchHub progress requests", () => {
  it.scoped("one progress request is in flight at a time; its answer sends the next, and nothing when none waits", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const first = yield* Effect.fork(hub.requestProgress({ timeout: Duration.seconds(30) }))
      const stream = yield* Queue.take(opened)
      yield* flush
      // the opening's request carries the caller's: the liveness check asks nothing more
      expect(stream.progressRequests.count).toBe(1)
      const second = yield* Effect.fork(hub.requestProgress({ timeout: Duration.seconds(30) }))
      yield* flush
      expect(stream.progressRequests.count).toBe(1)
      send(stream, { header: { revision: "20" }, watchId: "-1" })
      expect(yield* Fiber.join(first)).toBe(20n)
      yield* flush
      expect(stream.progressRequests.count).toBe(2)
      send(stream, { header: { revision: "21" }, watchId: "-1" })
      expect(yield* Fiber.join(second)).toBe(21n)
      yield* flush
      expect(stream.progressRequests.count).toBe(2)
    }))

  it.scoped("a -1 answer that is canceled, or names a compaction, settles no progress request", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const asked = yield* Effect.fork(hub.requestProgress({ timeout: Duration.seconds(30) }))
      const stream = yield* Queue.take(opened)
      yield* flush
      send(stream, { header: { revision: "18" }, watchId: "-1", canceled: true, cancelReason: "some reason" })
      send(stream, { header: { revision: "19" }, watchId: "-1", compactRevision: "5" })
      yield* flush
      expect(Option.isNone(yield* Fiber.poll(asked))).toBe(true)
      send(stream, { header: { revision: "20" }, watchId: "-1" })
      expect(yield* Fiber.join(asked)).toBe(20n)
      // the request of the opening was the caller's, and the liveness check asked nothing more
      yield* flush
      expect(stream.progressRequests.count).toBe(1)
    }))

  it.scoped("quiet is counted from the last message heard, not from the opening", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      created(stream, (yield* nextCreate(stream)).watchId)
      yield* Fiber.join(fiber)
      // the answer to the opening's request comes late
      yield* TestClock.adjust("900 millis")
      send(stream, { header: { revision: "10" }, watchId: "-1" })
      // 1.5 s after the opening, 600 ms after the answer: not quiet for the request timeout's half yet
      yield* TestClock.adjust("600 millis")
      yield* flush
      expect(stream.progressRequests.count).toBe(1)
      yield* TestClock.adjust("600 millis")
      yield* flush
      expect(stream.progressRequests.count).toBe(2)
    }))

  it.scoped("a progress answer with no request in flight changes nothing", () =>
    Effect.gen(function*() {
      const { hub, opened, reported } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = yield* nextCreate(stream)
      created(stream, create.watchId)
      const subscription = yield* Fiber.join(fiber)
      // the answer to the opening's request, then one nobody asked for
      send(stream, { header: { revision: "10" }, watchId: "-1" })
      send(stream, { header: { revision: "10" }, watchId: "-1" })
      yield* flush
      expect(stream.progressRequests.count).toBe(1)
      events(stream, BigInt(create.watchId), 11, 11)
      expect(yield* take(subscription)).toEqual([11])
      expect(reported).toEqual([])
    }))

  it.scoped("a stream whose liveness request was answered opens the next one when it breaks", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = yield* nextCreate(stream)
      created(stream, create.watchId)
      yield* Fiber.join(fiber)
      send(stream, { header: { revision: "10" }, watchId: "-1" })
      const next = yield* reconnect(opened, stream)
      expect((yield* nextCreate(next)).startRevision).toBe("11")
      // its own opening asks once, and nothing of the old stream's is sent again
      yield* flush
      expect(next.progressRequests.count).toBe(1)
    }))

  it.scoped("a stalled stream's member and reason reach the log of its replacement", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.make(({ annotations, message }) => {
        const reason = HashMap.get(annotations, "reason")
        lines.push(`${String(message)} ${Option.getOrElse(reason, () => "")}`)
      })
      yield* Effect.gen(function*() {
        const { hub, opened } = yield* fakeTransport
        const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
        const stream = yield* Queue.take(opened)
        created(stream, (yield* nextCreate(stream)).watchId)
        yield* Fiber.join(fiber)
        send(stream, { header: { revision: "10" }, watchId: "-1" })
        // quiet past the request timeout's half: asked; then nothing at all comes back
        yield* TestClock.adjust("1500 millis")
        yield* TestClock.adjust("2 seconds")
        yield* Deferred.await(stream.closed)
        // the next stream opens after the line is written
        yield* TestClock.adjust("5 seconds")
        yield* Queue.take(opened)
      }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`^stream broke; opening another .*at ${endpoint.url}: the member answered nothing for 1000 ms`)
        )
      )
    }))
})

describe("WatchHub lets its stream go", () => {
  const subscribed = (hub: WatchHub.WatchHub, opened: Queue.Queue<Stream>) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.scoped(Effect.zipRight(WatchHub.subscribe(hub, spec()), Effect.never)))
      const stream = yield* Queue.take(opened)
      created(stream, (yield* nextCreate(stream)).watchId)
      return { fiber, stream }
    })

  it.scoped("once its last watcher is released, while the liveness check's request is in flight", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const { fiber, stream } = yield* subscribed(hub, opened)
      yield* flush
      expect(stream.progressRequests.count).toBe(1)
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(stream.closed)
      // and a new watcher opens a new one
      const again = yield* subscribed(hub, opened)
      expect(again.stream).not.toBe(stream)
    }))

  it.scoped("and a watcher released during the backoff leaves none to open", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const { fiber, stream } = yield* subscribed(hub, opened)
      stream.handlers.onEnd(reset)
      yield* Deferred.await(stream.closed)
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("5 seconds")
      yield* flush
      expect(Option.isNone(yield* Queue.poll(opened))).toBe(true)
      const again = yield* subscribed(hub, opened)
      expect(again.stream).not.toBe(stream)
    }))
})
