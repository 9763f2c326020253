/**
 * The watch hub's resume bookkeeping (internal/streams/watchHub.ts) on its own, over a fake transport
 * whose streams record the requests the hub writes and deliver the responses the test makes:
 * the revision each create starts from, what each response does to a watcher's next revision,
 * and what is delivered after a broken stream or a suspension. The reconnect backoff is an
 * Effect sleep, moved with the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, Queue, TestClock } from "effect"
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
  subscribe,
  take,
  watch
} from "./fakeWatchTransport.js"

describe("WatchHub resume bookkeeping", () => {
  it.scoped("a create asks for its start revision, its filters and progress; without one, none", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const first = yield* Effect.fork(
        WatchHub.subscribe(hub, spec({ startRevision: 5n, noPut: true, noDelete: true, prevKv: true, fragment: true }))
      )
      const stream = yield* Queue.take(opened)
      const request = (yield* Queue.take(stream.requests)).createRequest!
      expect(request).toMatchObject({
        startRevision: "5",
        filters: ["NOPUT", "NODELETE"],
        prevKv: true,
        progressNotify: true,
        fragment: true
      })
      expect(request.key.toString()).toBe("k")
      expect(request.rangeEnd.toString()).toBe("l")
      send(stream, { header: { revision: "9" }, watchId: request.watchId, created: true })
      expect((yield* Fiber.join(first)).createdRevision).toBe(9n)
      const { request: plain } = yield* subscribe(hub, stream, {
        spec: spec({ rangeEnd: undefined }),
        revision: 9,
        streamId: 2
      })
      expect(plain).toMatchObject({
        startRevision: "0",
        filters: [],
        prevKv: false,
        progressNotify: true,
        fragment: false
      })
      expect(plain.rangeEnd.length).toBe(0)
      expect(plain.watchId).not.toBe(request.watchId)
    }))

  it.scoped("after a broken stream, a watcher is created again from the revision after its last event", () =>
    Effect.gen(function*() {
      const { hub, opened, reported } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      events(stream, BigInt(create.watchId), 12, 11, 12)
      expect(yield* take(subscription)).toEqual([11, 12])
      const second = yield* reconnect(opened, stream)
      expect(reported).toEqual([endpoint.url])
      const again = (yield* Queue.take(second.requests)).createRequest!
      expect(again.startRevision).toBe("13")
      expect(again.watchId).toBe(create.watchId)
      send(second, { header: { revision: "14" }, watchId: again.watchId, created: true })
      // the server replays from 13; an event it sends again from before is dropped
      events(second, BigInt(again.watchId), 14, 12, 13, 14)
      expect(yield* take(subscription)).toEqual([13, 14])
      events(second, BigInt(again.watchId), 14, 14)
      events(second, BigInt(again.watchId), 15, 15)
      expect(yield* take(subscription)).toEqual([15])
    }))

  it.scoped("a watcher with no event yet resumes from the revision after the one it was created at", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      expect(create.startRevision).toBe("0")
      send(stream, { header: { revision: "20" }, watchId: create.watchId, created: true })
      yield* Fiber.join(fiber)
      const second = yield* reconnect(opened, stream)
      expect((yield* Queue.take(second.requests)).createRequest!.startRevision).toBe("21")
    }))

  it.scoped("a watcher given a start revision keeps it until something is delivered", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ startRevision: 3n })))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "20" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      const second = yield* reconnect(opened, stream)
      const again = (yield* Queue.take(second.requests)).createRequest!
      expect(again.startRevision).toBe("3")
      send(second, { header: { revision: "20" }, watchId: again.watchId, created: true })
      events(second, BigInt(again.watchId), 20, 3, 4)
      expect(yield* take(subscription)).toEqual([3, 4])
    }))

  it.scoped("a progress notification moves the resume revision forward, never back", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      const id = BigInt(create.watchId)
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      events(stream, id, 30, 30)
      expect(yield* take(subscription)).toEqual([30])
      // an older progress (the answer to a progress request, say) does not move it back
      events(stream, id, 25)
      let second = yield* reconnect(opened, stream)
      let again = (yield* Queue.take(second.requests)).createRequest!
      expect(again.startRevision).toBe("31")
      send(second, { header: { revision: "40" }, watchId: again.watchId, created: true })
      // progress at the next revision itself: nothing up to it is to come
      events(second, BigInt(again.watchId), 31)
      second = yield* reconnect(opened, second)
      again = (yield* Queue.take(second.requests)).createRequest!
      expect(again.startRevision).toBe("32")
      send(second, { header: { revision: "40" }, watchId: again.watchId, created: true })
      events(second, BigInt(again.watchId), 40)
      // a consumer that did not ask for progress is not given it
      events(second, BigInt(again.watchId), 41, 41)
      expect(yield* take(subscription)).toEqual([41])
      second = yield* reconnect(opened, second)
      again = (yield* Queue.take(second.requests)).createRequest!
      expect(again.startRevision).toBe("42")
    }))

  it.scoped("a consumer that asked for progress gets it, with the next revision moved", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ progressNotify: true })))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      events(stream, BigInt(create.watchId), 15)
      expect(yield* take(subscription)).toEqual(["p15"])
      const second = yield* reconnect(opened, stream)
      expect((yield* Queue.take(second.requests)).createRequest!.startRevision).toBe("16")
    }))

  it.scoped("a compacted answer ends the watcher with Compacted, naming the revision it needed", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ startRevision: 4n })))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      events(stream, BigInt(create.watchId), 10, 4, 5)
      expect(yield* take(subscription)).toEqual([4, 5])
      send(stream, { header: { revision: "10" }, watchId: create.watchId, compactRevision: "8", canceled: true })
      const error = yield* Effect.flip(subscription.take(false))
      expect(error).toEqual(
        Option.some(expect.objectContaining({ _tag: "Compacted", compactRevision: 8n, requestedRevision: 6n }))
      )
    }))

  it.scoped("a server-side cancel ends the watcher with an error that says why", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const first = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscriptions = [yield* Fiber.join(first)]
      for (let streamId = 2; streamId <= 4; streamId++) {
        subscriptions.push((yield* subscribe(hub, stream, { revision: 10, streamId })).subscription)
      }
      const reasons = [
        "etcdserver: permission denied",
        "etcdserver: invalid auth token",
        "etcdserver: revision of auth store is old",
        "etcdserver: mvcc: watcher is gone"
      ]
      const tags: Array<string> = []
      for (const [i, reason] of reasons.entries()) {
        send(stream, { header: { revision: "10" }, watchId: String(i + 1), canceled: true, cancelReason: reason })
        const error = yield* Effect.flip(subscriptions[i].take(false))
        tags.push(Option.getOrThrow(error)._tag)
      }
      expect(tags).toEqual(["EtcdPermissionDenied", "InvalidAuthToken", "InvalidAuthToken", "WatchCanceled"])
    }))

  it.scoped("fragments are delivered together once the last one comes", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ fragment: true })))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      send(stream, { header: { revision: "12" }, watchId: create.watchId, fragment: true, events: [put("a", 11)] })
      send(stream, { header: { revision: "12" }, watchId: create.watchId, fragment: true, events: [put("b", 12)] })
      send(stream, { header: { revision: "12" }, watchId: create.watchId, events: [put("c", 12)] })
      expect(yield* take(subscription)).toEqual([11, 12, 12])
      const second = yield* reconnect(opened, stream)
      expect((yield* Queue.take(second.requests)).createRequest!.startRevision).toBe("13")
    }))

  it.scoped("a watcher past its buffer is canceled, and created again from its next revision once there is room", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ bufferBytes: 10 })))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      // three events of 3 bytes each (key "k1x", value "v"... ) pass the 10-byte bound
      send(stream, {
        header: { revision: "13" },
        watchId: create.watchId,
        events: [put("k11", 11, "vvvv"), put("k12", 12, "vvvv")]
      })
      const cancel = (yield* Queue.take(stream.requests)).cancelRequest!
      expect(cancel.watchId).toBe(create.watchId)
      // answers for the canceled ID are not delivered
      events(stream, BigInt(create.watchId), 13, 13)
      expect(yield* take(subscription)).toEqual([11, 12])
      const again = (yield* Queue.take(stream.requests)).createRequest!
      expect(again.startRevision).toBe("13")
      expect(again.watchId).not.toBe(create.watchId)
      send(stream, { header: { revision: "14" }, watchId: again.watchId, created: true })
      events(stream, BigInt(again.watchId), 14, 13, 14)
      expect(yield* take(subscription)).toEqual([13, 14])
    }))

  it.scoped("a create refused for permission fails the subscriber; with auth, only after a fresh token", () =>
    Effect.gen(function*() {
      const plain = yield* fakeTransport
      const refused = yield* Effect.fork(WatchHub.subscribe(plain.hub, spec()))
      const stream = yield* Queue.take(plain.opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, {
        header: { revision: "10" },
        watchId: "-1",
        created: true,
        canceled: true,
        cancelReason: "etcdserver: permission denied"
      })
      expect(yield* Effect.flip(Fiber.join(refused))).toMatchObject({ _tag: "EtcdPermissionDenied" })
      void create

      const withAuth = yield* fakeTransportWith({ auth: true })
      const denied = yield* Effect.fork(WatchHub.subscribe(withAuth.hub, spec({ startRevision: 7n })))
      const first = yield* Queue.take(withAuth.opened)
      yield* Queue.take(first.requests)
      const refusal = {
        header: { revision: "10" },
        watchId: "-1",
        created: true,
        canceled: true,
        cancelReason: "etcdserver: permission denied"
      }
      send(first, refusal)
      // the stream's token may be the reason: a new one, a new stream, the create again
      const second = yield* Queue.take(withAuth.opened)
      expect(withAuth.refreshed).toEqual([Option.none()])
      expect((yield* Queue.take(second.requests)).createRequest!.startRevision).toBe("7")
      send(second, refusal)
      expect(yield* Effect.flip(Fiber.join(denied))).toMatchObject({ _tag: "EtcdPermissionDenied" })

      // a token refused on a create: a new token and every watcher created again
      const expired = yield* Effect.fork(WatchHub.subscribe(withAuth.hub, spec({ startRevision: 3n })))
      const third = yield* Queue.take(withAuth.opened)
      yield* Queue.take(third.requests)
      send(third, { ...refusal, cancelReason: "etcdserver: invalid auth token" })
      const fourth = yield* Queue.take(withAuth.opened)
      const again = (yield* Queue.take(fourth.requests)).createRequest!
      expect(again.startRevision).toBe("3")
      send(fourth, { header: { revision: "10" }, watchId: again.watchId, created: true })
      expect((yield* Fiber.join(expired)).createdRevision).toBe(10n)
    }))

  it.scoped("a watcher let go while its create was in flight is canceled under the ID the server gave", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(Effect.scoped(WatchHub.subscribe(hub, spec())))
      const stream = yield* Queue.take(opened)
      yield* Queue.take(stream.requests)
      yield* Fiber.interrupt(fiber)
      send(stream, { header: { revision: "10" }, watchId: "77", created: true })
      expect((yield* Queue.take(stream.requests)).cancelRequest?.watchId).toBe("77")
    }))

  it.scoped("a buffer filled exactly to its bound does not suspend the watcher", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      // key "k11" and value "vvvv": 7 bytes
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ bufferBytes: 7 })))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      send(stream, { header: { revision: "11" }, watchId: create.watchId, events: [put("k11", 11, "vvvv")] })
      expect(yield* take(subscription)).toEqual([11])
      // a cancel would go out with this turn's requests
      yield* flush
      expect(yield* Queue.size(stream.requests)).toBe(0)
    }))

  it.scoped("a suspended watcher waits for room, not for a new stream, and keeps its first ID taken", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ bufferBytes: 10 })))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      const subscription = yield* Fiber.join(fiber)
      send(stream, {
        header: { revision: "13" },
        watchId: create.watchId,
        events: [put("k11", 11, "vvvv"), put("k12", 12, "vvvv")]
      })
      expect((yield* Queue.take(stream.requests)).cancelRequest?.watchId).toBe(create.watchId)
      const second = yield* reconnect(opened, stream)
      expect(yield* take(subscription)).toEqual([11, 12])
      const again = (yield* Queue.take(second.requests)).createRequest!
      expect(again.watchId).not.toBe(create.watchId)
      expect(again.startRevision).toBe("13")
      // its first ID is still its own
      const taken = yield* Effect.flip(WatchHub.subscribe(hub, spec({ watchId: BigInt(create.watchId) })))
      expect(taken).toMatchObject({ _tag: "EtcdInvalidArgument" })
    }))

  it.scoped("a progress answer (watch ID -1) settles requestProgress and reaches no watcher", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const { subscription, stream } = yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec({ progressNotify: true })))
        const stream = yield* Queue.take(opened)
        const create = (yield* Queue.take(stream.requests)).createRequest!
        send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
        return { subscription: yield* Fiber.join(fiber), stream }
      })
      // the stream asked once when it opened: its answer says the server answers them
      expect(stream.progressRequests.count).toBe(1)
      send(stream, { header: { revision: "10" }, watchId: "-1" })
      const asked = yield* Effect.fork(hub.requestProgress({ timeout: Duration.seconds(5) }))
      yield* Effect.yieldNow()
      yield* Effect.yieldNow()
      expect(stream.progressRequests.count).toBe(2)
      send(stream, { header: { revision: "15" }, watchId: "-1" })
      expect(yield* Fiber.join(asked)).toBe(15n)
      // the watcher saw none of it: its next answer is its own event, resumed from 11
      events(stream, 1n, 16, 16)
      expect(yield* take(subscription)).toEqual([16])
    }))

  it.scoped("a progress request in flight when the stream breaks is sent again on the next one", () =>
    Effect.gen(function*() {
      const { hub, opened } = yield* fakeTransport
      const asked = yield* Effect.fork(hub.requestProgress({ timeout: Duration.seconds(30) }))
      const stream = yield* Queue.take(opened)
      yield* Effect.yieldNow()
      expect(stream.progressRequests.count).toBe(1)
      const second = yield* reconnect(opened, stream)
      yield* Effect.yieldNow()
      expect(second.progressRequests.count).toBe(1)
      send(second, { header: { revision: "21" }, watchId: "-1" })
      expect(yield* Fiber.join(asked)).toBe(21n)
      // with no watcher and no request left, the stream goes
      yield* Deferred.await(second.closed)
    }))

  it.scoped("requestProgress with no answer fails with EtcdTimeout at its timeout", () =>
    Effect.gen(function*() {
      const { hub } = yield* fakeTransport
      const asked = yield* Effect.fork(hub.requestProgress({ timeout: Duration.seconds(1) }))
      yield* TestClock.adjust("1 second")
      expect(yield* Effect.flip(Fiber.join(asked))).toMatchObject({ _tag: "EtcdTimeout", method: watch.path })
    }))

  it.scoped("a quiet stream whose member stops answering is given up, and its watchers resume on the next", () =>
    Effect.gen(function*() {
      const { hub, opened, reported } = yield* fakeTransport
      const { create, stream, subscription } = yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
        const stream = yield* Queue.take(opened)
        const create = (yield* Queue.take(stream.requests)).createRequest!
        send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
        return { create, stream, subscription: yield* Fiber.join(fiber) }
      })
      send(stream, { header: { revision: "10" }, watchId: "-1" })
      events(stream, BigInt(create.watchId), 12, 12)
      expect(yield* take(subscription)).toEqual([12])
      // quiet for the request timeout's half (1 s of 2): asked; answered, so it stays
      yield* TestClock.adjust("1500 millis")
      expect(stream.progressRequests.count).toBe(2)
      send(stream, { header: { revision: "12" }, watchId: "-1" })
      yield* TestClock.adjust("600 millis")
      expect(reported).toEqual([])
      // asked again once quiet again, and this time nothing at all comes back: given up
      yield* TestClock.adjust("1 second")
      expect(stream.progressRequests.count).toBe(3)
      yield* TestClock.adjust("1 second")
      yield* Deferred.await(stream.closed)
      expect(reported).toEqual([endpoint.url])
      yield* TestClock.adjust("5 seconds")
      const next = yield* Queue.take(opened)
      expect((yield* Queue.take(next.requests)).createRequest?.startRevision).toBe("13")
    }))

  it.scoped("where progress requests are never answered (the gRPC proxy), a quiet stream is left alone", () =>
    Effect.gen(function*() {
      const { hub, opened, reported } = yield* fakeTransport
      const fiber = yield* Effect.fork(WatchHub.subscribe(hub, spec()))
      const stream = yield* Queue.take(opened)
      const create = (yield* Queue.take(stream.requests)).createRequest!
      send(stream, { header: { revision: "10" }, watchId: create.watchId, created: true })
      yield* Fiber.join(fiber)
      yield* TestClock.adjust("30 seconds")
      // the one request of its opening, unanswered: no other, and the stream stays
      expect(stream.progressRequests.count).toBe(1)
      expect(reported).toEqual([])
      expect(Option.isNone(yield* Deferred.poll(stream.closed))).toBe(true)
    }))
})
