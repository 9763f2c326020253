import { expect, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Ref } from "effect"
import { Kv, Stm } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

const balance = (key: string) => Effect.map(Stm.get(key), (value) => Number(Option.getOrElse(value, () => "0")))

const total = (keys: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(keys, (key) => Kv.get(key)),
    (values) => values.reduce((sum, value) => sum + Number(Option.getOrElse(value, () => "0")), 0)
  )

/**
 * The lost update, step by step: `slow` reads the balance, then `fast` runs whole (and
 * adds 5), then `slow` writes its read value plus 10. Returns the final balance and how
 * many times `slow` ran.
 */
const lostUpdate = (key: string, isolation: Stm.Isolation) =>
  Effect.gen(function*() {
    yield* Kv.put(key, "100")
    const read = yield* Deferred.make<void>()
    const proceed = yield* Deferred.make<void>()
    const runs = yield* Ref.make(0)
    const slow = yield* Effect.fork(Stm.run(
      Effect.gen(function*() {
        yield* Ref.update(runs, (n) => n + 1)
        const value = yield* balance(key)
        yield* Deferred.succeed(read, undefined)
        yield* Deferred.await(proceed)
        yield* Stm.put(key, String(value + 10))
      }),
      { isolation }
    ))
    yield* Deferred.await(read)
    yield* Stm.run(Effect.flatMap(balance(key), (value) => Stm.put(key, String(value + 5))), { isolation })
    yield* Deferred.succeed(proceed, undefined)
    yield* Fiber.join(slow)
    return { final: Number(Option.getOrThrow(yield* Kv.get(key))), runs: yield* Ref.get(runs) }
  })

layer(withServer(), { excludeTestServices: true })("Stm", (it) => {
  it.effect(
    "20 fibers each doing 25 transfers between 5 accounts (serializable) keep the total exact",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("bank")
        const accounts = Array.from({ length: 5 }, (_, i) => `${p}account/${i}`)
        yield* Effect.forEach(accounts, (key) => Kv.put(key, "100"), { discard: true })
        let seed = 42
        const random = (n: number) => {
          seed = (seed * 1103515245 + 12345) % 2147483648
          return seed % n
        }
        const transfer = (from: string, to: string, amount: number) =>
          Stm.run(
            Effect.gen(function*() {
              const source = yield* balance(from)
              if (source < amount) return false
              const target = yield* balance(to)
              yield* Stm.put(from, String(source - amount))
              yield* Stm.put(to, String(target + amount))
              return true
            }),
            { isolation: "serializable", retries: 1000 }
          )
        const fiber = (id: number) =>
          Effect.forEach(Array.from({ length: 25 }), () => {
            const from = random(5)
            const to = (from + 1 + random(4)) % 5
            return transfer(accounts[from], accounts[to], 1 + random(30) + id % 3)
          })
        const done = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), fiber, {
          concurrency: "unbounded"
        })
        expect(done.flat()).toHaveLength(500)
        expect(done.flat().filter((moved) => moved).length).toBeGreaterThan(100)
        expect(yield* total(accounts)).toBe(500)
        const balances = yield* Effect.forEach(accounts, (key) => Effect.map(Kv.get(key), Option.getOrThrow))
        expect(balances.every((value) => Number(value) >= 0)).toBe(true)
      }),
    120_000
  )

  it.effect("read committed allows the lost update; serializable and snapshot run the late writer again", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("anomaly")
      // read committed: both commit, and the +5 is lost
      expect(yield* lostUpdate(`${p}rc`, "read-committed")).toEqual({ final: 110, runs: 1 })
      // the stronger levels see the conflict and retry the slow transaction on fresh data
      expect(yield* lostUpdate(`${p}ser`, "serializable")).toEqual({ final: 115, runs: 2 })
      expect(yield* lostUpdate(`${p}snap`, "snapshot")).toEqual({ final: 115, runs: 2 })
      expect(yield* lostUpdate(`${p}rr`, "repeatable-reads")).toEqual({ final: 115, runs: 2 })
    }))

  it.effect("snapshot also checks keys only written; serializable does not", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("write-only")
      const run = (isolation: Stm.Isolation) =>
        Effect.gen(function*() {
          const target = `${p}${isolation}/target`
          const runs = yield* Ref.make(0)
          yield* Stm.run(
            Effect.gen(function*() {
              const n = yield* Ref.updateAndGet(runs, (n) => n + 1)
              yield* Stm.get(`${p}${isolation}/other`)
              // someone writes the target after this transaction's snapshot
              if (n === 1) yield* Kv.put(target, "theirs")
              yield* Stm.put(target, "mine")
            }),
            { isolation }
          )
          return yield* Ref.get(runs)
        })
      expect(yield* run("snapshot")).toBe(2)
      expect(yield* run("serializable")).toBe(1)
    }))

  it.effect("reads repeat within an attempt and see the attempt's own writes and deletes", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("reads")
      yield* Kv.put(`${p}a`, "1")
      yield* Kv.put(`${p}gone`, "x")
      const seen = yield* Stm.run(
        Effect.gen(function*() {
          const first = yield* Stm.get(`${p}a`)
          const revision = yield* Stm.modRevision(`${p}a`)
          yield* Kv.put(`${p}a`, "changed outside")
          const again = yield* Stm.get(`${p}a`)
          yield* Stm.put(`${p}b`, "2")
          yield* Stm.delete(`${p}gone`)
          return { first, again, revision, b: yield* Stm.get(`${p}b`), gone: yield* Stm.get(`${p}gone`) }
        }),
        { isolation: "read-committed" }
      )
      expect(seen.first).toEqual(Option.some("1"))
      expect(seen.again).toEqual(Option.some("1"))
      expect(seen.revision).toBeGreaterThan(0n)
      expect(seen.b).toEqual(Option.some("2"))
      expect(seen.gone).toEqual(Option.none())
      expect(yield* Kv.get(`${p}b`)).toEqual(Option.some("2"))
      expect(yield* Kv.get(`${p}gone`)).toEqual(Option.none())
    }))

  it.effect("the transaction's own failure aborts it with nothing written", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("abort")
      const error = yield* Effect.flip(Stm.run(Effect.gen(function*() {
        yield* Stm.put(`${p}x`, "written?")
        return yield* Effect.fail("insufficient funds" as const)
      })))
      expect(error).toBe("insufficient funds")
      expect(yield* Kv.get(`${p}x`)).toEqual(Option.none())
    }))

  it.effect("a transaction that conflicts every time fails with StmRetriesExhausted and writes nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("exhausted")
      let n = 0
      const error = yield* Effect.flip(Stm.run(
        Effect.gen(function*() {
          yield* Stm.get(`${p}hot`)
          yield* Kv.put(`${p}hot`, String(n++))
          yield* Stm.put(`${p}result`, "never")
        }),
        { isolation: "serializable", retries: 2 }
      ))
      expect(error).toMatchObject({ _tag: "StmRetriesExhausted", attempts: 3 })
      expect(n).toBe(3)
      expect(yield* Kv.get(`${p}result`)).toEqual(Option.none())
    }))

  it.effect("runWithRevision gives the value and the revision of the commit, after conflicts too", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("with-revision")
      yield* Kv.put(`${p}n`, "1")
      let conflicts = 0
      const committed = yield* Stm.runWithRevision(Effect.gen(function*() {
        const n = yield* balance(`${p}n`)
        // another writer gets there first, once: the second attempt commits
        if (conflicts++ === 0) yield* Kv.put(`${p}n`, "10")
        yield* Stm.put(`${p}n`, String(n + 1))
        yield* Stm.put(`${p}other`, "x")
        return n + 1
      }))
      expect(conflicts).toBe(2)
      expect(committed.value).toBe(11)
      // both writes landed at the revision given, and nothing came after them
      const n = Option.getOrThrow(yield* Kv.getKeyValue(`${p}n`))
      const other = Option.getOrThrow(yield* Kv.getKeyValue(`${p}other`))
      expect(n.value).toBe("11")
      expect(n.modRevision).toBe(committed.revision)
      expect(other.modRevision).toBe(committed.revision)
      // the plain form gives the value alone
      expect(yield* Stm.run(Effect.map(balance(`${p}n`), (value) => value * 2))).toBe(22)
    }))

  it.effect("runWithRevision of a transaction that writes nothing gives the revision its reads were current at", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("with-revision-read")
      const put = yield* Kv.put(`${p}n`, "5")
      const committed = yield* Stm.runWithRevision(balance(`${p}n`))
      expect(committed.value).toBe(5)
      expect(committed.revision).toBeGreaterThanOrEqual(put.revision)
      // a read-only commit writes nothing: the key is as it was
      expect(Option.getOrThrow(yield* Kv.getKeyValue(`${p}n`)).modRevision).toBe(put.revision)
    }))
})
