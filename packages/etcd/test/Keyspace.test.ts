import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Option, Schema, Stream } from "effect"
import { Keyspace, Kv, Txn, Watch } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

const Endpoint = Schema.Struct({ host: Schema.String, port: Schema.Number })

layer(withServer(), { excludeTestServices: true })("Keyspace", (it) => {
  it.effect("string, number, JSON struct and bytes values round-trip, stored in their encoded form", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("roundtrip")
      const names = Keyspace.make({ prefix: `${p}s/`, key: Schema.String, value: Schema.String })
      const counts = Keyspace.make({ prefix: `${p}n/`, key: Schema.String, value: Schema.NumberFromString })
      const endpoints = Keyspace.json(`${p}j/`, Endpoint)
      const blobs = Keyspace.make({ prefix: `${p}b/`, key: Schema.String, value: Schema.Uint8ArrayFromSelf })

      yield* names.put("a", "alpha")
      yield* counts.put("a", 42.5)
      yield* endpoints.put("a", { host: "10.0.0.5", port: 8080 })
      yield* blobs.put("a", new Uint8Array([0, 255, 128]))

      expect(yield* names.get("a")).toEqual(Option.some("alpha"))
      expect(yield* counts.get("a")).toEqual(Option.some(42.5))
      expect(yield* endpoints.get("a")).toEqual(Option.some({ host: "10.0.0.5", port: 8080 }))
      expect(Option.map(yield* blobs.get("a"), (bytes) => [...bytes])).toEqual(Option.some([0, 255, 128]))
      expect(yield* counts.get("missing")).toEqual(Option.none())

      // what other clients see
      expect(yield* Kv.get(`${p}n/a`)).toEqual(Option.some("42.5"))
      expect(JSON.parse(Option.getOrThrow(yield* Kv.get(`${p}j/a`)))).toEqual({ host: "10.0.0.5", port: 8080 })
      expect([...Option.getOrThrow(yield* Kv.getBytes(`${p}b/a`))]).toEqual([0, 255, 128])
      expect(blobs.valueEncoding).toBe("bytes")
      expect(endpoints.valueEncoding).toBe("text")
    }))

  it.effect("keys decode through their own Schema; getAll gives a typed map with metadata", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("getall")
      const jobs = Keyspace.make({ prefix: p, key: Schema.NumberFromString, value: Schema.NumberFromString })
      const first = yield* jobs.put(1, 10)
      yield* jobs.put(2, 20)
      const last = yield* jobs.put(3, 30)
      yield* jobs.delete(2)
      const all = yield* jobs.getAll()
      expect([...all.values]).toEqual([[1, 10], [3, 30]])
      expect(all.entries.get(1)?.kv.createRevision).toBe(first.revision)
      expect(all.entries.get(3)?.kv.modRevision).toBe(last.revision)
      expect(all.revision).toBeGreaterThan(last.revision)
      expect(all.skipped).toEqual([])
      const entry = Option.getOrThrow(yield* jobs.getEntry(3))
      expect([entry.key, entry.value, entry.kv.version]).toEqual([3, 30, 1])
      expect(yield* jobs.key(7)).toBe(`${p}7`)
    }))

  it.effect("a stored value that does not decode is an EtcdDecodeError with the key, the revision and the reason", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("bad")
      const counts = Keyspace.make({ prefix: p, key: Schema.String, value: Schema.NumberFromString })
      yield* counts.put("good", 1)
      const bad = yield* Kv.put(`${p}bad`, "not a number")

      const error = yield* Effect.flip(counts.get("bad"))
      expect(error._tag).toBe("EtcdDecodeError")
      if (error._tag !== "EtcdDecodeError") return
      expect(error.key).toBe(`${p}bad`)
      expect(error.revision).toBe(bad.revision)
      expect(error.part).toBe("value")
      expect(error.direction).toBe("decode")
      expect(error.reason).toContain("not a number")
      expect(error.message).toContain(`value of key "${p}bad" at revision ${bad.revision} does not decode`)

      // getAll fails by default, or leaves the entry out and reports it
      expect((yield* Effect.flip(counts.getAll()))._tag).toBe("EtcdDecodeError")
      const skipped = yield* counts.getAll({ onDecodeError: "skip" })
      expect([...skipped.values]).toEqual([["good", 1]])
      expect(skipped.skipped.map((e) => [e.key, e.revision])).toEqual([[`${p}bad`, bad.revision]])
    }))

  it.effect("a value that does not encode fails with EtcdDecodeError and writes nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("encode")
      const ports = Keyspace.make({
        prefix: p,
        key: Schema.String,
        value: Schema.compose(Schema.NumberFromString, Schema.Int.pipe(Schema.between(1, 65535)))
      })
      const error = yield* Effect.flip(ports.put("http", 70000))
      expect(error._tag === "EtcdDecodeError" && [error.direction, error.part, error.key]).toEqual([
        "encode",
        "value",
        `${p}http`
      ])
      expect(yield* Kv.get(`${p}http`)).toEqual(Option.none())
      yield* ports.put("http", 8080)
      expect(yield* ports.get("http")).toEqual(Option.some(8080))
    }))

  it.effect("watch gives typed puts and deletes; undecodable events fail it, or are skipped", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("watch")
      const counts = Keyspace.make({ prefix: p, key: Schema.String, value: Schema.NumberFromString })
      const start = (yield* Kv.put(`${p}seed`, "0")).revision + 1n
      yield* counts.put("a", 1)
      yield* Kv.put(`${p}a`, "oops")
      yield* counts.put("a", 2)
      const gone = yield* counts.delete("a")

      const skipped = yield* counts.watch({ startRevision: start, onDecodeError: "skip" }).pipe(
        Stream.take(3),
        Stream.runCollect
      )
      expect(Chunk.toReadonlyArray(skipped).map((event) => event._tag === "Put" ? [event.key, event.value] : event))
        .toEqual([["a", 1], ["a", 2], { _tag: "Delete", key: "a", revision: gone.revision }])

      const failed = yield* Effect.flip(Stream.runDrain(counts.watch({ startRevision: start })))
      expect(failed._tag === "EtcdDecodeError" && failed.revision).toBe(start + 1n)
    }))

  it.effect("typed ops and compares run in a transaction", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("txn")
      const endpoints = Keyspace.json(p, Endpoint)
      const a = { host: "a", port: 1 }
      const b = { host: "b", port: 2 }
      yield* endpoints.put("primary", a)

      // compare-and-swap on the typed value: holds for a, then not for a any more
      const swap = Effect.gen(function*() {
        const guard = yield* endpoints.compare.value("primary").equals(a)
        const write = yield* endpoints.op.put("primary", b)
        const read = yield* endpoints.op.get("primary")
        return yield* Txn.txnCompare([guard], [write], [read])
      })
      const first = yield* swap
      expect(first.succeeded).toBe(true)
      const second = yield* swap
      expect(second.succeeded).toBe(false)
      if (!second.succeeded) {
        const [read] = second.results
        expect(Either.map(endpoints.decode(read.kvs[0]), (entry) => entry.value)).toEqual(Either.right(b))
      }

      // create only if absent, with a typed version compare
      const createOnce = Effect.gen(function*() {
        const absent = yield* endpoints.compare.version("backup").equals(0)
        return yield* Txn.txnCompare([absent], [yield* endpoints.op.put("backup", a)])
      })
      expect((yield* createOnce).succeeded).toBe(true)
      expect((yield* createOnce).succeeded).toBe(false)
      const del = yield* endpoints.op.delete("backup")
      const isA = yield* endpoints.compare.value("backup").equals(a)
      expect((yield* Txn.txnCompare([isA], [del])).succeeded).toBe(true)
      expect(yield* endpoints.get("backup")).toEqual(Option.none())
    }))

  it.effect("a key that does not decode is an EtcdDecodeError on the key", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("badkey")
      const jobs = Keyspace.make({ prefix: p, key: Schema.NumberFromString, value: Schema.String })
      const put = yield* Kv.put(`${p}abc`, "x")
      const error = yield* Effect.flip(jobs.getAll())
      expect(error._tag === "EtcdDecodeError" && [error.part, error.key, error.revision]).toEqual([
        "key",
        `${p}abc`,
        put.revision
      ])
    }))

  it.scoped("watch started before writes sees them typed", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("live")
      const flags = Keyspace.make({ prefix: p, key: Schema.String, value: Schema.parseJson(Schema.Boolean) })
      const watcher = yield* Watch.subscribe(flags.range)
      const events = yield* Effect.fork(
        watcher.events.pipe(
          Stream.mapEffect((event) => Effect.map(flags.decode(event.kv), (entry) => [entry.key, entry.value])),
          Stream.take(2),
          Stream.runCollect
        )
      )
      yield* flags.put("dark", true)
      yield* flags.put("beta", false)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(events))).toEqual([["dark", true], ["beta", false]])
    }))
})
