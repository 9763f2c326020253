import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import { Etcd, KeyRange, Kv } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

/** How many calls of a KV method the member has started, from its gRPC metrics. */
const started = (method: "Range" | "Txn") =>
  Effect.flatMap(EtcdServer.EtcdServer, (server) =>
    Effect.map(server.metrics(0), (text) => {
      const line = text.split("\n").find((l) =>
        l.startsWith("grpc_server_started_total{") && l.includes(`grpc_method="${method}"`)
      )
      return line === undefined ? 0 : Number(line.split(" ").pop())
    }))

const calls = Effect.all({ range: started("Range"), txn: started("Txn") })

/** Runs `effect` with a second client of the same server, built with `options`. */
const withClient = (options: Omit<Etcd.EtcdOptions, "endpoints">) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(
    EtcdServer.EtcdServer,
    (server) => Effect.provide(effect, Layer.fresh(Etcd.layer({ ...options, endpoints: server.endpoints })))
  )

const seed = (p: string, n: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => Kv.put(`${p}${i}`, `value-${i}`), {
    concurrency: 16,
    discard: true
  })

layer(withServer({ maxTxnOps: 64 }, { readBatching: { maxOps: 64 } }), { excludeTestServices: true })(
  "Read batching",
  (it) => {
    it.effect("200 concurrent gets each get their own value, in far fewer calls than reads", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("batch")
        yield* seed(p, 200)
        const before = yield* calls
        const values = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => i),
          (i) => Kv.get(`${p}${i}`),
          { concurrency: "unbounded" }
        )
        const after = yield* calls
        expect(values).toEqual(Array.from({ length: 200 }, (_, i) => Option.some(`value-${i}`)))
        expect(after.txn - before.txn).toBeGreaterThan(0)
        // one lone Range, then Txns of up to 64 reads: a handful of calls, not 200
        expect((after.range - before.range) + (after.txn - before.txn)).toBeLessThanOrEqual(10)
      }))

    it.effect("a lone read is a plain Range, not a Txn", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("lone")
        yield* Kv.put(`${p}k`, "v")
        const before = yield* calls
        expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("v"))
        const after = yield* calls
        expect(after).toEqual({ range: before.range + 1, txn: before.txn })
      }))

    it.effect("one bad read in a batch fails alone; its neighbours get their values", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("bad")
        yield* seed(p, 50)
        const { revision } = yield* Kv.put(`${p}last`, "x")
        const results = yield* Effect.forEach(
          Array.from({ length: 51 }, (_, i) => i),
          (i) =>
            Effect.either(
              i === 25
                ? Kv.get(`${p}0`, { revision: revision + 1_000n })
                : Kv.get(`${p}${i > 25 ? i - 1 : i}`)
            ),
          { concurrency: "unbounded" }
        )
        expect(Either.isLeft(results[25]) && results[25].left._tag).toBe("FutureRevision")
        const good = results.filter((_, i) => i !== 25)
        expect(good.every(Either.isRight)).toBe(true)
        expect(good.map((r) => Either.getOrThrow(r))).toEqual(
          Array.from({ length: 50 }, (_, i) => Option.some(`value-${i}`))
        )
      }))

    it.effect("a read issued after a write was acknowledged sees that write, with readers all around", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("linear")
        yield* seed(p, 20)
        const noise = Effect.forEach(
          Array.from({ length: 400 }, (_, i) => i % 20),
          (i) => Kv.get(`${p}${i}`),
          { concurrency: 64, discard: true }
        )
        const writerThenReader = Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) =>
            Effect.gen(function*() {
              yield* Kv.put(`${p}own`, `v${i}`)
              return yield* Kv.get(`${p}own`)
            })
        )
        const [, seen] = yield* Effect.all([noise, writerThenReader], { concurrency: "unbounded" })
        expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => Option.some(`v${i}`)))
      }))

    it.effect("serializable and linearizable reads, counts and ranges batch together and stay correct", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("mixed")
        yield* seed(p, 30)
        const results = yield* Effect.all([
          Effect.forEach(
            Array.from({ length: 30 }, (_, i) => i),
            (i) => Kv.get(`${p}${i}`, { serializable: i % 2 === 0 }),
            { concurrency: "unbounded" }
          ),
          Kv.count(KeyRange.prefix(p)),
          Effect.map(Kv.range(KeyRange.prefix(p), { limit: 5, sortTarget: "key" }), (r) => r.kvs.length)
        ], { concurrency: "unbounded" })
        expect(results[0]).toEqual(Array.from({ length: 30 }, (_, i) => Option.some(`value-${i}`)))
        expect(results[1]).toBe(30)
        expect(results[2]).toBe(5)
      }))

    it.effect("a batch larger than the server's --max-txn-ops still answers every read", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("over")
        yield* seed(p, 150)
        // this client batches up to 128 reads; the server takes 64 ops per Txn
        const values = yield* withClient({ readBatching: { maxOps: 128 } })(
          Effect.forEach(Array.from({ length: 150 }, (_, i) => i), (i) => Kv.get(`${p}${i}`), {
            concurrency: "unbounded"
          })
        )
        expect(values).toEqual(Array.from({ length: 150 }, (_, i) => Option.some(`value-${i}`)))
      }))

    it.effect("readBatching: false sends every read as its own Range", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("off")
        yield* seed(p, 50)
        const reads = withClient({ readBatching: false })(
          Effect.gen(function*() {
            const before = yield* calls
            yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) => Kv.get(`${p}${i}`), {
              concurrency: "unbounded",
              discard: true
            })
            return { before, after: yield* calls }
          })
        )
        const { after, before } = yield* reads
        expect(after.txn).toBe(before.txn)
        expect(after.range - before.range).toBe(50)
      }))
  }
)
