import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { KeyRange, Kv, Lease } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

const bytes = (...values: Array<number>) => new Uint8Array(values)

layer(withServer(), { excludeTestServices: true })("Kv", (it) => {
  it.effect("put then get returns the value; a missing key is none", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("get")
      yield* Kv.put(`${p}a`, "alpha")
      expect(yield* Kv.get(`${p}a`)).toEqual(Option.some("alpha"))
      expect(yield* Kv.get(`${p}missing`)).toEqual(Option.none())
    }))

  it.effect("getKeyValue carries create and mod revisions, version and lease", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("meta")
      const first = yield* Kv.put(`${p}k`, "1")
      const second = yield* Kv.put(`${p}k`, "2")
      const kv = Option.getOrThrow(yield* Kv.getKeyValue(`${p}k`))
      expect(kv.key).toBe(`${p}k`)
      expect(kv.value).toBe("2")
      expect(kv.createRevision).toBe(first.revision)
      expect(kv.modRevision).toBe(second.revision)
      expect(second.revision).toBeGreaterThan(first.revision)
      expect(kv.version).toBe(2)
      expect(kv.lease).toBe(0n)
    }))

  it.effect("get at an older revision reads the value as it was", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("rev")
      const old = yield* Kv.put(`${p}k`, "old")
      yield* Kv.put(`${p}k`, "new")
      expect(yield* Kv.get(`${p}k`, { revision: old.revision })).toEqual(Option.some("old"))
      expect(yield* Kv.get(`${p}k`, { revision: old.revision - 1n })).toEqual(Option.none())
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("new"))
    }))

  it.effect("getPrefix returns exactly the keys under the prefix", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("prefix")
      yield* Kv.put(`${p}dir/a`, "1")
      yield* Kv.put(`${p}dir/b`, "2")
      yield* Kv.put(`${p}dir0`, "outside")
      yield* Kv.put(`${p}di`, "outside too")
      const found = yield* Kv.getPrefix(`${p}dir/`)
      expect([...found.entries()]).toEqual([[`${p}dir/a`, "1"], [`${p}dir/b`, "2"]])
    }))

  it.effect("getPrefix sorts by key, value, version, create and mod revision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("sort")
      yield* Kv.put(`${p}b`, "3")
      yield* Kv.put(`${p}a`, "2")
      yield* Kv.put(`${p}c`, "1")
      yield* Kv.put(`${p}c`, "1")
      yield* Kv.put(`${p}b`, "3")
      yield* Kv.put(`${p}b`, "3")
      const keys = (options: Kv.RangeOptions) => Effect.map(Kv.getPrefix(p, options), (m) => [...m.keys()])
      expect(yield* keys({ sortOrder: "descend", sortTarget: "key" })).toEqual([`${p}c`, `${p}b`, `${p}a`])
      expect(yield* keys({ sortOrder: "ascend", sortTarget: "value" })).toEqual([`${p}c`, `${p}a`, `${p}b`])
      expect(yield* keys({ sortOrder: "descend", sortTarget: "version" })).toEqual([`${p}b`, `${p}c`, `${p}a`])
      expect(yield* keys({ sortOrder: "ascend", sortTarget: "create" })).toEqual([`${p}b`, `${p}a`, `${p}c`])
      expect(yield* keys({ sortOrder: "descend", sortTarget: "mod" })).toEqual([`${p}b`, `${p}c`, `${p}a`])
    }))

  it.effect("getRange and keysRange cover [start, end)", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("range")
      for (const k of ["a", "b", "c", "d"]) yield* Kv.put(`${p}${k}`, k.toUpperCase())
      const found = yield* Kv.getRange(`${p}b`, `${p}d`)
      expect([...found.entries()]).toEqual([[`${p}b`, "B"], [`${p}c`, "C"]])
      expect(yield* Kv.keysRange(`${p}a`, `${p}c`)).toEqual([`${p}a`, `${p}b`])
    }))

  it.effect("keysPrefix lists keys without values", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("keys")
      yield* Kv.put(`${p}x`, "value-x")
      yield* Kv.put(`${p}y`, "value-y")
      expect(yield* Kv.keysPrefix(p)).toEqual([`${p}x`, `${p}y`])
      const { kvs } = yield* Kv.range(KeyRange.prefix(p), { keysOnly: true })
      expect(kvs.map((kv) => kv.value)).toEqual(["", ""])
    }))

  it.effect("limit returns the first keys, with more and the full count", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("limit")
      for (let i = 0; i < 5; i++) yield* Kv.put(`${p}${i}`, `${i}`)
      const page = yield* Kv.range(KeyRange.prefix(p), { limit: 2 })
      expect(page.kvs.map((kv) => kv.value)).toEqual(["0", "1"])
      expect(page.more).toBe(true)
      expect(page.count).toBe(5)
      const all = yield* Kv.range(KeyRange.prefix(p), { limit: 10 })
      expect(all.more).toBe(false)
      expect(yield* Kv.count(KeyRange.prefix(p))).toBe(5)
    }))

  it.effect("create and mod revision filters keep only matching keys", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("filters")
      const a = yield* Kv.put(`${p}a`, "1")
      const b = yield* Kv.put(`${p}b`, "1")
      const a2 = yield* Kv.put(`${p}a`, "2")
      const keys = (options: Kv.RangeOptions) => Kv.keysPrefix(p, options)
      expect(yield* keys({ minCreateRevision: b.revision })).toEqual([`${p}b`])
      expect(yield* keys({ maxCreateRevision: a.revision })).toEqual([`${p}a`])
      expect(yield* keys({ minModRevision: a2.revision })).toEqual([`${p}a`])
      expect(yield* keys({ maxModRevision: b.revision })).toEqual([`${p}b`])
    }))

  it.effect("serializable reads see committed writes of the member", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("serializable")
      yield* Kv.put(`${p}k`, "v")
      expect(yield* Kv.get(`${p}k`, { serializable: true })).toEqual(Option.some("v"))
      expect(yield* Kv.count(KeyRange.prefix(p), { serializable: true })).toBe(1)
    }))

  it.effect("put with prevKv returns the previous pair, none for a new key", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("prevkv")
      const first = yield* Kv.put(`${p}k`, "one", { prevKv: true })
      expect(first.prevKv).toEqual(Option.none())
      const second = yield* Kv.put(`${p}k`, "two", { prevKv: true })
      expect(Option.map(second.prevKv, (kv) => kv.value)).toEqual(Option.some("one"))
      const third = yield* Kv.put(`${p}k`, "three")
      expect(third.prevKv).toEqual(Option.none())
    }))

  it.effect("put with a lease attaches the key; revoking the lease deletes it", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("lease")
      const grant = yield* Lease.grant("30 seconds")
      yield* Kv.put(`${p}k`, "v", { lease: grant.id })
      expect(Option.map(yield* Kv.getKeyValue(`${p}k`), (kv) => kv.lease)).toEqual(Option.some(grant.id))
      yield* Lease.revoke(grant.id)
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.none())
    }))

  it.effect("ignoreValue keeps the value, ignoreLease keeps the lease", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ignore")
      const grant = yield* Lease.grant("30 seconds")
      yield* Kv.put(`${p}k`, "kept")
      yield* Kv.put(`${p}k`, "", { ignoreValue: true, lease: grant.id })
      const afterIgnoreValue = Option.getOrThrow(yield* Kv.getKeyValue(`${p}k`))
      expect(afterIgnoreValue.value).toBe("kept")
      expect(afterIgnoreValue.lease).toBe(grant.id)
      yield* Kv.put(`${p}k`, "new value", { ignoreLease: true })
      const afterIgnoreLease = Option.getOrThrow(yield* Kv.getKeyValue(`${p}k`))
      expect(afterIgnoreLease.value).toBe("new value")
      expect(afterIgnoreLease.lease).toBe(grant.id)
      yield* Lease.revoke(grant.id)
    }))

  it.effect("ignoreValue on a missing key fails with EtcdInvalidArgument and writes nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ignore-missing")
      const error = yield* Effect.flip(Kv.put(`${p}k`, "", { ignoreValue: true }))
      expect(error._tag).toBe("EtcdInvalidArgument")
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.none())
    }))

  it.effect("delete reports how many keys went, with the pairs when asked", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("delete")
      yield* Kv.put(`${p}k`, "v")
      const gone = yield* Kv.delete(`${p}k`, { prevKv: true })
      expect(gone.deleted).toBe(1)
      expect(gone.prevKvs.map((kv) => [kv.key, kv.value])).toEqual([[`${p}k`, "v"]])
      const again = yield* Kv.delete(`${p}k`)
      expect(again.deleted).toBe(0)
      expect(again.prevKvs).toEqual([])
    }))

  it.effect("deletePrefix and deleteRange delete exactly their keys", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("delete-many")
      for (const k of ["a/1", "a/2", "b", "c", "d"]) yield* Kv.put(`${p}${k}`, k)
      const prefixGone = yield* Kv.deletePrefix(`${p}a/`, { prevKv: true })
      expect(prefixGone.deleted).toBe(2)
      expect(prefixGone.prevKvs.map((kv) => kv.value)).toEqual(["a/1", "a/2"])
      const rangeGone = yield* Kv.deleteRange(`${p}b`, `${p}d`)
      expect(rangeGone.deleted).toBe(2)
      expect(yield* Kv.keysPrefix(p)).toEqual([`${p}d`])
    }))

  it.effect("keys and values with NUL, 0xff and invalid UTF-8 round-trip as bytes", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("bytes")
      const key = Buffer.concat([Buffer.from(p), bytes(0x00, 0xff, 0xfe, 0x80)])
      const value = bytes(0xc3, 0x28, 0x00, 0xff, 0xa0, 0xa1)
      yield* Kv.put(key, value)
      const read = Option.getOrThrow(yield* Kv.getBytes(key))
      expect(Buffer.from(read).equals(Buffer.from(value))).toBe(true)
      const kv = Option.getOrThrow(yield* Kv.getKeyValue(key))
      expect(Buffer.from(kv.keyBytes).equals(key)).toBe(true)
      // as text, invalid sequences become U+FFFD, but the bytes above were exact
      expect(kv.value).toContain("\uFFFD")
    }))

  it.effect("a prefix ending in 0xff covers its keys and stops at the next prefix", () =>
    Effect.gen(function*() {
      const p = Buffer.from(uniquePrefix("ff"))
      const under = (...tail: Array<number>) => Buffer.concat([p, bytes(0x61, 0xff, ...tail)])
      yield* Kv.put(under(), "exact")
      yield* Kv.put(under(0x00), "child")
      yield* Kv.put(under(0xff, 0xff), "deep")
      yield* Kv.put(Buffer.concat([p, bytes(0x62)]), "next prefix")
      const { kvs } = yield* Kv.range(KeyRange.prefix(Buffer.concat([p, bytes(0x61, 0xff)])))
      expect(kvs.map((kv) => kv.value)).toEqual(["exact", "child", "deep"])
      expect(Buffer.from(KeyRange.prefixEnd(bytes(0x61, 0xff, 0xff)))).toEqual(Buffer.from([0x62]))
    }))

  it.effect("the empty prefix is the whole keyspace", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("everything")
      yield* Kv.put(`${p}one`, "1")
      const everything = yield* Kv.keysPrefix("")
      expect(everything).toContain(`${p}one`)
      expect(yield* Kv.count(KeyRange.all)).toBe(everything.length)
    }))

  it.effect("an empty key fails with EmptyKey before anything is sent", () =>
    Effect.gen(function*() {
      expect((yield* Effect.flip(Kv.get("")))._tag).toBe("EmptyKey")
      expect((yield* Effect.flip(Kv.put("", "v")))._tag).toBe("EmptyKey")
      expect((yield* Effect.flip(Kv.delete("")))._tag).toBe("EmptyKey")
    }))

  it.effect("stream pages through a range at one revision while others write", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("stream")
      for (let i = 0; i < 25; i++) yield* Kv.put(`${p}${String(i).padStart(2, "0")}`, `v${i}`)
      const pages = Kv.stream(KeyRange.prefix(p), { pageSize: 7 }).pipe(
        Stream.tap((kv) => kv.key.endsWith("05") ? Kv.put(`${p}99-late`, "written mid-stream") : Effect.void)
      )
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(pages))
      expect(all.map((kv) => kv.value)).toEqual(Array.from({ length: 25 }, (_, i) => `v${i}`))
      expect(yield* Kv.get(`${p}99-late`)).toEqual(Option.some("written mid-stream"))
    }))

  it.effect("a value over the server's request limit fails with RequestTooLarge and loses nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("too-large")
      yield* Kv.put(`${p}k`, "small")
      const overServerLimit = yield* Effect.flip(Kv.put(`${p}k`, Buffer.alloc(1_700_000, 1)))
      expect(overServerLimit._tag).toBe("RequestTooLarge")
      const overClientLimit = yield* Effect.flip(Kv.put(`${p}k`, Buffer.alloc(3 * 1024 * 1024, 1)))
      expect(overClientLimit._tag, overClientLimit.message).toBe("RequestTooLarge")
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("small"))
    }))

  it.effect(
    "an answer of 8 MiB (many HTTP/2 frames, past every flow-control window) arrives whole",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("large-answer")
        // each value under the server's request limit, each byte telling its key and offset
        const valueOf = (i: number) => Buffer.from(Array.from({ length: 1024 * 1024 }, (_, at) => (i * 31 + at) % 251))
        for (let i = 0; i < 8; i++) yield* Kv.put(`${p}${i}`, valueOf(i))
        const result = yield* Kv.range(KeyRange.prefix(p))
        expect(result.kvs.map((kv) => kv.key)).toEqual(Array.from({ length: 8 }, (_, i) => `${p}${i}`))
        result.kvs.forEach((kv, i) => expect(Buffer.from(kv.valueBytes).equals(valueOf(i))).toBe(true))
      }),
    60_000
  )

  it.effect("a revision in the future fails with FutureRevision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("future")
      const { revision } = yield* Kv.put(`${p}k`, "v")
      const error = yield* Effect.flip(Kv.get(`${p}k`, { revision: revision + 1_000_000n }))
      expect(error._tag).toBe("FutureRevision")
    }))
})

// compaction affects the whole store, so it gets a server of its own
layer(withServer(), { excludeTestServices: true })("Kv compaction", (it) => {
  it.effect("reading a compacted revision fails with Compacted and the compact revision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("compacted")
      const old = yield* Kv.put(`${p}k`, "1")
      yield* Kv.put(`${p}k`, "2")
      const latest = yield* Kv.put(`${p}k`, "3")
      yield* Kv.compact(latest.revision)
      const error = yield* Effect.flip(Kv.get(`${p}k`, { revision: old.revision }))
      if (error._tag !== "Compacted") throw new Error(`expected Compacted, got ${error._tag}`)
      expect(error.compactRevision).toBe(latest.revision)
      expect(error.requestedRevision).toBe(old.revision)
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("3"))
    }))
})
