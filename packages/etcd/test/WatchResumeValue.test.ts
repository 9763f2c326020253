/**
 * A watcher's resume bookkeeping (internal/streams/watchResume.ts) as a value, with no hub
 * and no etcd: the next revision after each kind of response, the fragments of a response
 * gathered until its last one, and which events of a replay are new. The responses are
 * real WatchResponse bytes, read by the codec the hub uses.
 */
import { describe, expect, it } from "@effect/vitest"
import * as WatchResume from "../src/internal/streams/watchResume.js"
import type { WatchResponse } from "../src/internal/wire/proto/generated/etcdserverpb/WatchResponse.js"
import { methods } from "../src/internal/wire/proto/loader.js"
import { readWatchResponse } from "../src/internal/wire/watchCodec.js"

const watch = methods.watch.watch

const put = (modRevision: number, value = "v") => ({
  type: "PUT" as const,
  kv: {
    key: Buffer.from(`k${modRevision}`),
    value: Buffer.from(value),
    createRevision: "2",
    modRevision: String(modRevision),
    version: "1"
  }
})

/** A response at header `revision` with events at the mod revisions `mods`. */
const response = (revision: number, mods: ReadonlyArray<number>, options: { readonly fragment?: boolean } = {}) =>
  readWatchResponse(watch.responseSerialize(
    {
      header: { revision: String(revision) },
      watchId: "1",
      events: mods.map((m) => put(m)),
      fragment: options.fragment ?? false
    } satisfies WatchResponse as never
  ))

/** The mod revisions of a batch's events. */
const revisionsOf = (batch: WatchResume.WatchBatch | undefined) =>
  batch?.events.map((event) => Number(event.kv?.modRevision))

/** The bookkeeping of a watcher created with nothing delivered yet, to deliver from `next` on. */
const at = (next: bigint): WatchResume.WatchResume => ({ next, fragments: undefined })

describe("WatchResume", () => {
  it("a watcher with no start revision starts at the created answer's revision + 1; one with a start revision keeps it", () => {
    const fresh = WatchResume.initial(undefined)
    expect(fresh).toEqual({ next: undefined, fragments: undefined })
    expect(WatchResume.created(fresh, 41n)).toEqual({ next: 42n, fragments: undefined })
    expect(WatchResume.created(WatchResume.initial(7n), 41n)).toEqual({ next: 7n, fragments: undefined })
  })

  it("events that are all new go to the consumer still encoded; next is the last event's revision + 1", () => {
    const step = WatchResume.onResponse(at(5n), response(9, [5, 6, 8]), false)
    expect(step.batch).toBeInstanceOf(WatchResume.EncodedBatch)
    expect(step.batch).toMatchObject({ revision: 9n, progress: false })
    expect(revisionsOf(step.batch)).toEqual([5, 6, 8])
    expect(step.resume).toEqual({ next: 9n, fragments: undefined })
  })

  it("a catch-up batch whose header is ahead of its events moves next only past its last event", () => {
    // the header is the store's revision while older events are still to come
    const step = WatchResume.onResponse(at(5n), response(1_000, [5, 6]), false)
    expect(step.resume.next).toBe(7n)
  })

  it("a replay drops the events already delivered and keeps the rest, in order", () => {
    const step = WatchResume.onResponse(at(7n), response(9, [5, 6, 7, 9]), false)
    expect(revisionsOf(step.batch)).toEqual([7, 9])
    expect(step.batch).toMatchObject({ revision: 9n, progress: false, bytes: 2 * (2 + 1) })
    expect(step.resume).toEqual({ next: 10n, fragments: undefined })
  })

  it("a replay of nothing new delivers nothing and leaves next where it was", () => {
    const step = WatchResume.onResponse(at(7n), response(9, [5, 6]), false)
    expect(step.batch).toBeUndefined()
    expect(step.resume).toEqual({ next: 7n, fragments: undefined })
  })

  it("a progress notification moves next to its revision + 1, and is handed on only when asked for", () => {
    const quiet = WatchResume.onResponse(at(5n), response(12, []), false)
    expect(quiet).toEqual({ resume: { next: 13n, fragments: undefined }, batch: undefined })
    const told = WatchResume.onResponse(at(5n), response(12, []), true)
    expect(told.resume.next).toBe(13n)
    expect(told.batch).toEqual({ revision: 12n, events: [], progress: true, bytes: 0 })
  })

  it("a progress notification older than next does not move it back", () => {
    const step = WatchResume.onResponse(at(20n), response(12, []), true)
    expect(step.resume.next).toBe(20n)
    expect(step.batch).toMatchObject({ revision: 12n, progress: true })
  })

  it("fragments are gathered until the last one, then delivered together, the old ones dropped", () => {
    const first = WatchResume.onResponse(at(6n), response(9, [5, 6], { fragment: true }), false)
    expect(first.batch).toBeUndefined()
    expect(first.resume.next).toBe(6n)
    expect(first.resume.fragments?.map((event) => Number(event.kv?.modRevision))).toEqual([5, 6])
    const second = WatchResume.onResponse(first.resume, response(9, [7], { fragment: true }), false)
    expect(second.batch).toBeUndefined()
    expect(second.resume.fragments).toHaveLength(3)
    const last = WatchResume.onResponse(second.resume, response(9, [8]), false)
    expect(revisionsOf(last.batch)).toEqual([6, 7, 8])
    expect(last.resume).toEqual({ next: 9n, fragments: undefined })
  })

  it("a new stream drops the fragments received and keeps next", () => {
    const partial = WatchResume.onResponse(at(5n), response(9, [5], { fragment: true }), false).resume
    expect(WatchResume.restart(partial)).toEqual({ next: 5n, fragments: undefined })
    const whole = at(5n)
    expect(WatchResume.restart(whole)).toBe(whole)
  })

  it("an encoded batch splits at a revision boundary, both parts still encoded", () => {
    const batch = WatchResume.onResponse(at(1n), response(3, [1, 2, 3]), false).batch
    expect(batch).toBeInstanceOf(WatchResume.EncodedBatch)
    const parts = (batch as WatchResume.EncodedBatch).split(1)
    expect(parts?.map(revisionsOf)).toEqual([[1], [2, 3]])
    expect(parts?.map((part) => part.revision)).toEqual([3n, 3n])
  })
})

describe("eventBytes", () => {
  it("counts the keys and values of each event and of its previous value, and nothing for what an event lacks", () => {
    const kv = (key: string, value: string) => ({ key: Buffer.from(key), value: Buffer.from(value) })
    const events = [
      { kv: kv("abc", "12345"), prevKv: kv("abc", "12") },
      { kv: kv("de", ""), prevKv: null },
      { kv: null, prevKv: null }
    ] as unknown as Parameters<typeof WatchResume.eventBytes>[0]
    expect(WatchResume.eventBytes(events)).toBe(3 + 5 + 3 + 2 + 2)
    expect(WatchResume.eventBytes(events.slice(1))).toBe(2)
    expect(WatchResume.eventBytes(events.slice(2))).toBe(0)
    expect(WatchResume.eventBytes([])).toBe(0)
  })
})
