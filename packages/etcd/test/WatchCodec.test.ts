import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option } from "effect"
import { Backlog } from "../src/internal/backlog.js"
import type { WatchResponse } from "../src/internal/proto/generated/etcdserverpb/WatchResponse.js"
import { methods } from "../src/internal/proto/loader.js"
import { readWatchResponse } from "../src/internal/watchCodec.js"

// The hub reads the routing fields of each watch response itself and leaves the events
// encoded; these check it against the generated encoder and decoder on the same messages.
const encode = (response: WatchResponse): Buffer => methods.watch.watch.responseSerialize(response as never)
const decodeFully = methods.watch.watch.responseDeserialize

const keyValue = (key: string, value: string, modRevision: string) => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  createRevision: "3",
  modRevision,
  version: "2",
  lease: "7587869583648227338"
})

describe("watch response reader", () => {
  it("reads the header, the ID, the flags and the events' sizes and revisions as the generated decoder does", () => {
    const message = encode({
      header: {
        clusterId: "14841639068965178418",
        memberId: "10276657743932975437",
        revision: "1099511627776",
        raftTerm: "9"
      },
      watchId: "42",
      events: [
        { type: "PUT", kv: keyValue("a/1", "one", "1099511627770"), prevKv: keyValue("a/1", "zero!", "12") },
        { type: "DELETE", kv: { key: Buffer.from("a/2"), modRevision: "1099511627775" } }
      ]
    })
    const head = readWatchResponse(message)
    const full = decodeFully(message)
    expect(head.revision).toBe(BigInt(full.header!.revision))
    expect(head.revision).toBe(2n ** 40n)
    expect(head.watchId).toBe(42n)
    expect([head.created, head.canceled, head.fragment, head.compactRevision]).toEqual([false, false, false, 0n])
    expect(head.events.count).toBe(2)
    // keys and values, the previous ones included: a/1 one a/1 zero! a/2
    expect(head.events.bytes).toBe(3 + 3 + 3 + 5 + 3)
    expect(head.events.firstRevision).toBe(1099511627770n)
    expect(head.events.lastRevision).toBe(1099511627775n)
    expect(head.events.decode()).toEqual(full.events)
  })

  it("reads a refused create: watch ID -1, canceled, with its reason", () => {
    const message = encode({
      header: { revision: "5" },
      watchId: "-1",
      created: true,
      canceled: true,
      cancelReason: "etcdserver: permission denied"
    })
    const head = readWatchResponse(message)
    expect(head.watchId).toBe(-1n)
    expect([head.created, head.canceled]).toEqual([true, true])
    expect(head.cancelReason).toBe("etcdserver: permission denied")
    expect(head.events.count).toBe(0)
    expect(head.events.decode()).toEqual([])
  })

  it("reads a compaction and a fragment, and the largest int64", () => {
    const compacted = readWatchResponse(
      encode({ header: { revision: "9223372036854775807" }, watchId: "3", compactRevision: "77", canceled: true })
    )
    expect(compacted.revision).toBe(2n ** 63n - 1n)
    expect(compacted.compactRevision).toBe(77n)
    const fragment = readWatchResponse(
      encode({ watchId: "4", fragment: true, events: [{ kv: keyValue("k", "v", "8") }] })
    )
    expect(fragment.fragment).toBe(true)
    expect(fragment.events.lastRevision).toBe(8n)
  })

  it("fails on a truncated message instead of reading past it", () => {
    const message = encode({ header: { revision: "5" }, events: [{ kv: keyValue("key", "value", "5") }] })
    expect(() => readWatchResponse(message.subarray(0, message.length - 3))).toThrow(/truncated/)
  })
})

const item = (bytes: number) => ({ bytes })

describe("Backlog", () => {
  it.effect("hands out at least one item and at most maxBytes, oldest first, then its end", () =>
    Effect.gen(function*() {
      const backlog = new Backlog<{ bytes: number }, string>()
      for (const bytes of [40, 30, 50, 10, 200]) backlog.offer(item(bytes))
      expect(backlog.bytes).toBe(330)
      const sizes = (chunk: Chunk.Chunk<{ bytes: number }>) => Chunk.toArray(chunk).map((i) => i.bytes)
      expect(sizes(yield* backlog.take(80))).toEqual([40, 30])
      expect(sizes(yield* backlog.take(80))).toEqual([50, 10])
      // larger than maxBytes on its own: taken alone
      expect(sizes(yield* backlog.take(80))).toEqual([200])
      expect(backlog.bytes).toBe(0)
      backlog.offer(item(5))
      backlog.end(Option.some("compacted"))
      backlog.offer(item(6))
      expect(sizes(yield* backlog.take(80))).toEqual([5])
      expect(yield* Effect.exit(backlog.take(80))).toEqual(Exit.fail(Option.some("compacted")))
    }))

  it.effect("a waiting taker is woken by an offer, and by a shutdown with the end", () =>
    Effect.gen(function*() {
      const backlog = new Backlog<{ bytes: number }, string>()
      const waiting = yield* Effect.fork(backlog.take(10))
      yield* Effect.yieldNow()
      backlog.offer(item(3))
      expect(Chunk.size(yield* Fiber.join(waiting))).toBe(1)
      const second = yield* Effect.fork(backlog.take(10))
      yield* Effect.yieldNow()
      backlog.shutdown()
      expect(yield* Fiber.await(second)).toEqual(Exit.fail(Option.none()))
    }))
})
