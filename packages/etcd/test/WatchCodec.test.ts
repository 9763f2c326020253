import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option } from "effect"
import { Backlog } from "../src/internal/streams/backlog.js"
import type { WatchResponse } from "../src/internal/wire/proto/generated/etcdserverpb/WatchResponse.js"
import { methods } from "../src/internal/wire/proto/loader.js"
import { readWatchResponse } from "../src/internal/wire/watchCodec.js"
import { keyValue } from "./protoFixtures.js"

// The hub reads the routing fields of each watch response itself and leaves the events
// encoded; these check it against the generated encoder and decoder on the same messages.
const encode = (response: WatchResponse): Buffer => methods.watch.watch.responseSerialize(response as never)
const decodeFully = methods.watch.watch.responseDeserialize

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

  it("decodes events as the generated decoder does: int64s past 2^53, empty bytes, unknown types and fields", () => {
    const message = encode({
      header: { revision: "9007199254740993" },
      watchId: "2",
      events: [
        {
          type: "PUT",
          kv: {
            key: Buffer.from("k"),
            value: Buffer.alloc(0),
            createRevision: "9007199254740993",
            modRevision: "9007199254740993",
            version: "4294967296",
            lease: "9223372036854775807"
          },
          prevKv: { key: Buffer.from("k"), value: Buffer.from("old"), lease: "-1", modRevision: "2147483648" }
        },
        { type: 7 as never, kv: { key: Buffer.from("k2"), modRevision: "9007199254740994" } },
        { type: "DELETE" }
      ]
    })
    // an unknown field (number 15, a varint) in the event, ahead of the kv
    const extra = Buffer.concat([message, Buffer.from([0x5a, 0x04, 0x78, 0x01, 0x08, 0x01])])
    const head = readWatchResponse(message)
    expect(head.events.decode()).toEqual(decodeFully(message).events)
    const withUnknown = readWatchResponse(extra)
    expect(withUnknown.events.count).toBe(4)
    expect(withUnknown.events.decode()).toEqual(decodeFully(extra).events)
    expect(withUnknown.events.decode()[3]).toEqual({ type: "DELETE", kv: null, prevKv: null })
  })

  it("splits the events at revision boundaries only, in parts that decode as the whole does", () => {
    // revisions 10, 11 (a transaction of three events), 12, 13; 8 bytes of key and value each
    const revisions = ["10", "11", "11", "11", "12", "13"]
    const message = encode({
      header: { revision: "20" },
      watchId: "1",
      events: revisions.map((revision, i) => ({ type: "PUT", kv: keyValue(`k/${i}`, "value", revision) }))
    })
    const head = readWatchResponse(message)
    const all = decodeFully(message).events
    expect(head.events.bytes).toBe(48)
    // at least one revision, however small the limit
    const [first, rest] = head.events.split(1)!
    expect([first.count, first.bytes, rest.count, rest.bytes]).toEqual([1, 8, 5, 40])
    expect(first.decode()).toEqual(all.slice(0, 1))
    // a transaction is never cut: 16 bytes would end inside revision 11
    const [second, after] = rest.split(16)!
    expect([second.count, second.bytes]).toEqual([3, 24])
    expect(second.decode()).toEqual(all.slice(1, 4))
    const [third, last] = after.split(100)!
    expect([third.count, last.count]).toEqual([1, 1])
    expect([...third.decode(), ...last.decode()]).toEqual(all.slice(4))
    expect(last.split(100)).toBeUndefined()
    // one revision alone cannot be split
    expect(second.split(1)).toBeUndefined()
    // the whole still decodes to every event
    expect(head.events.decode()).toEqual(all)
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

  it.effect("in parts: splits an item larger than maxBytes when it can, and counts what it hands out", () =>
    Effect.gen(function*() {
      // an item here is a list of sizes; it splits after the sizes that fit (at least one)
      type Parts = { readonly bytes: number; readonly sizes: ReadonlyArray<number> }
      const parts = (sizes: ReadonlyArray<number>): Parts => ({ bytes: sizes.reduce((a, b) => a + b, 0), sizes })
      const backlog = new Backlog<Parts, string>((item, maxBytes) => {
        let cut = 1
        let bytes = item.sizes[0]
        while (cut < item.sizes.length && bytes + item.sizes[cut] <= maxBytes) bytes += item.sizes[cut++]
        return cut === item.sizes.length
          ? undefined
          : [parts(item.sizes.slice(0, cut)), parts(item.sizes.slice(cut))]
      })
      backlog.offer(parts([30, 30, 30, 30]))
      backlog.offer(parts([100]))
      backlog.offer(parts([5]))
      const taken = (chunk: Chunk.Chunk<Parts>) => Chunk.toArray(chunk).map((i) => i.sizes)
      expect(taken(yield* backlog.take(70, true))).toEqual([[30, 30]])
      expect(backlog.bytes).toBe(165)
      // what is left of the item fits: taken whole, with what follows while it fits
      expect(taken(yield* backlog.take(70, true))).toEqual([[30, 30]])
      // larger than maxBytes and not splittable: taken alone
      expect(taken(yield* backlog.take(70, true))).toEqual([[100]])
      expect(taken(yield* backlog.take(70, true))).toEqual([[5]])
      expect(backlog.bytes).toBe(0)
      // not in parts: an item is taken whole
      backlog.offer(parts([30, 30, 30]))
      expect(taken(yield* backlog.take(70))).toEqual([[30, 30, 30]])
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
