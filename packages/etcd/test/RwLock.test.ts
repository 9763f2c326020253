import { expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, Ref } from "effect"
import { KeyRange, Kv, Op, RwLock, Session, Txn } from "effect-etcd"
import { revokeElsewhere } from "./faults.js"
import { uniquePrefix, withServer } from "./support.js"

const awaitKeys = (prefix: string, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      if ((yield* Kv.count(KeyRange.prefix(prefix))) === n) return
      yield* Effect.sleep(Duration.millis(25))
    }
    throw new Error(`expected ${n} keys under ${prefix}`)
  })

/** The lease of a queued key `<prefix><lease ID in hex>`. */
const leaseOf = (key: string): bigint => BigInt(`0x${key.slice(key.lastIndexOf("/") + 1)}`)

layer(withServer(), { excludeTestServices: true })("RwLock", (it) => {
  it.effect("readers hold the lock at the same time", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("readers")}lock`
      const all = yield* Deferred.make<void>()
      const inside = yield* Ref.make(0)
      const reader = RwLock.withRead(
        name,
        Effect.gen(function*() {
          if ((yield* Ref.updateAndGet(inside, (n) => n + 1)) === 3) yield* Deferred.succeed(all, undefined)
          // nobody leaves before all three are in: only overlapping readers get past this
          yield* Deferred.await(all)
        })
      )
      yield* Effect.all([reader, reader, reader], { concurrency: "unbounded" }).pipe(
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "readers did not overlap" })
      )
      expect(yield* Ref.get(inside)).toBe(3)
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
    }), 30_000)

  it.effect(
    "a writer never holds the lock with anyone: 8 readers and 4 writers in loops",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("mixed")
        const name = `${p}lock`
        const session = yield* Session.make()
        let readers = 0
        let writers = 0
        let maxReaders = 0
        const violations: Array<string> = []
        const check = () => {
          if (writers > 1 || (writers === 1 && readers > 0)) violations.push(`${writers} writers, ${readers} readers`)
        }
        const reader = RwLock.withRead(
          name,
          Effect.gen(function*() {
            readers++
            maxReaders = Math.max(maxReaders, readers)
            check()
            yield* Effect.sleep(Duration.millis(20))
            readers--
          }),
          { session }
        )
        const writer = RwLock.withWrite(
          name,
          Effect.gen(function*() {
            writers++
            check()
            const current = yield* Kv.get(`${p}counter`)
            yield* Effect.sleep(Duration.millis(10))
            yield* Kv.put(`${p}counter`, String(Number(Option.getOrElse(current, () => "0")) + 1))
            writers--
          })
        )
        yield* Effect.all([
          ...Array.from({ length: 8 }, () => Effect.repeatN(reader, 5)),
          ...Array.from({ length: 4 }, () => Effect.repeatN(writer, 5))
        ], { concurrency: "unbounded", discard: true })
        expect(violations).toEqual([])
        expect(maxReaders).toBeGreaterThan(1)
        expect(yield* Kv.get(`${p}counter`)).toEqual(Option.some("24"))
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      }).pipe(Effect.scoped),
    120_000
  )

  it.effect(
    "a reader that comes after a waiting writer waits for it: writers are not starved",
    () =>
      Effect.gen(function*() {
        const name = `${uniquePrefix("starve")}lock`
        const release = yield* Deferred.make<void>()
        const first = yield* Effect.fork(RwLock.withRead(name, Deferred.await(release)))
        yield* awaitKeys(`${name}/`, 1)
        const order = yield* Ref.make<Array<string>>([])
        const writer = yield* Effect.fork(RwLock.withWrite(name, Ref.update(order, (o) => [...o, "writer"])))
        yield* awaitKeys(`${name}/`, 2)
        // the writer waits for the first reader; a new reader queues behind the writer
        const late = yield* Effect.flip(Effect.scoped(RwLock.read(name, { timeout: "300 millis" })))
        expect(late).toMatchObject({ _tag: "LockTimeout", lockName: name })
        const reader = yield* Effect.fork(RwLock.withRead(name, Ref.update(order, (o) => [...o, "reader"])))
        yield* awaitKeys(`${name}/`, 3)
        expect(yield* Ref.get(order)).toEqual([])
        // the first reader leaves
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(first)
        yield* Fiber.join(writer)
        yield* Fiber.join(reader)
        expect(yield* Ref.get(order)).toEqual(["writer", "reader"])
      }),
    30_000
  )

  it.effect("interrupted waiters leave no key; revisions fence writes", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("fence")
      const name = `${p}lock`
      const writer = yield* Effect.scoped(Effect.gen(function*() {
        const lock = yield* RwLock.write(name)
        expect(lock.mode).toBe("write")
        expect(lock.key.startsWith(`${name}/write/`)).toBe(true)
        const waiting = yield* Effect.fork(Effect.scoped(RwLock.read(name)))
        yield* awaitKeys(`${name}/`, 2)
        yield* Fiber.interrupt(waiting)
        expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([lock.key])
        expect((yield* Txn.txnCompare([lock.isOwner], [Op.put(`${p}data`, "w")])).succeeded).toBe(true)
        return lock
      }))
      const reader = yield* Effect.scoped(RwLock.read(name))
      expect(reader.mode).toBe("read")
      expect(reader.revision).toBeGreaterThan(writer.revision)
      expect((yield* Txn.txnCompare([writer.isOwner], [Op.put(`${p}data`, "stale")])).succeeded).toBe(false)
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
    }))

  it.effect(
    "a reader whose lease is lost while it waits for a writer fails with LeaseLost; a writer gets the lock",
    () =>
      Effect.gen(function*() {
        const name = `${uniquePrefix("lostreader")}lock`
        const acquired = yield* Deferred.make<string>()
        const release = yield* Deferred.make<void>()
        const writer = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const lock = yield* RwLock.write(name)
          yield* Deferred.succeed(acquired, lock.key)
          yield* Deferred.await(release)
        })))
        const writerKey = yield* Deferred.await(acquired)
        const reader = yield* Effect.fork(Effect.scoped(Effect.map(RwLock.read(name), (lock) => lock.key)))
        yield* awaitKeys(`${name}/read/`, 1)
        const [readerKey] = yield* Kv.keysPrefix(`${name}/read/`)
        // the reader's lease goes while it waits; its keepalive (every 20 s) has not seen it yet
        yield* revokeElsewhere(leaseOf(readerKey))
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(writer)
        const error = yield* Effect.flip(Fiber.join(reader))
        expect(error).toMatchObject({ _tag: "LeaseLost", leaseId: leaseOf(readerKey) })
        const next = yield* Effect.scoped(Effect.gen(function*() {
          const lock = yield* RwLock.write(name, { timeout: "20 seconds" })
          expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([lock.key])
          return lock.key
        }))
        expect([writerKey, readerKey]).not.toContain(next)
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      }),
    30_000
  )
})
