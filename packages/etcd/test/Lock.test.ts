import { expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, Ref } from "effect"
import { KeyRange, Kv, Lease, Lock, Op, Txn } from "effect-etcd"
import { revokeElsewhere } from "./faults.js"
import { uniquePrefix, withServer } from "./support.js"

/** Waits (bounded) until `n` keys exist under `prefix`: how many attempts are queued. */
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

layer(withServer(), { excludeTestServices: true })("Lock", (it) => {
  it.effect(
    "20 fibers doing 25 read-modify-write increments each under the lock end with 500",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("counter")
        const increment = Lock.withLock(
          `${p}lock`,
          Effect.gen(function*() {
            const current = yield* Kv.get(`${p}counter`)
            yield* Kv.put(`${p}counter`, String(Number(Option.getOrElse(current, () => "0")) + 1))
          })
        )
        yield* Effect.forEach(
          Array.from({ length: 20 }),
          () => Effect.repeatN(increment, 24),
          { concurrency: "unbounded", discard: true }
        )
        expect(yield* Kv.get(`${p}counter`)).toEqual(Option.some("500"))
        expect(yield* Kv.count(KeyRange.prefix(`${p}lock/`))).toBe(0)
      }),
    120_000
  )

  it.effect("a second acquirer gets LockTimeout while the first holds, and leaves nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("timeout")
      const name = `${p}lock`
      yield* Effect.scoped(Effect.gen(function*() {
        const held = yield* Lock.make(name)
        const error = yield* Effect.flip(Lock.make(name, { timeout: "300 millis" }).pipe(Effect.scoped))
        expect(error).toMatchObject({ _tag: "LockTimeout", lockName: name })
        expect(error._tag === "LockTimeout" && Duration.toMillis(error.timeout)).toBe(300)
        // the waiter's cleanup goes on after LockTimeout, without its caller
        yield* awaitKeys(`${name}/`, 1)
        expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([held.key])
      }))
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
    }))

  it.effect("interrupting a waiter and a holder leaves no key under the lock's prefix", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("interrupt")
      const name = `${p}lock`
      const acquired = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        Lock.withLock(name, Deferred.succeed(acquired, undefined).pipe(Effect.zipRight(Effect.never)))
      )
      yield* Deferred.await(acquired)
      const waiter = yield* Effect.fork(Lock.withLock(name, Effect.void))
      yield* awaitKeys(`${name}/`, 2)
      yield* Fiber.interrupt(waiter)
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(1)
      yield* Fiber.interrupt(holder)
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([])
    }))

  it.effect("waiters acquire in the order they arrived", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("fair")
      const name = `${p}lock`
      const order = yield* Ref.make<Array<number>>([])
      const release = yield* Deferred.make<void>()
      const first = yield* Effect.fork(Lock.withLock(name, Deferred.await(release)))
      yield* awaitKeys(`${name}/`, 1)
      const waiters: Array<Fiber.RuntimeFiber<void, unknown>> = []
      for (let i = 0; i < 4; i++) {
        waiters.push(yield* Effect.fork(Lock.withLock(name, Ref.update(order, (o) => [...o, i]))))
        yield* awaitKeys(`${name}/`, i + 2)
      }
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(first)
      yield* Effect.forEach(waiters, Fiber.join, { discard: true })
      expect(yield* Ref.get(order)).toEqual([0, 1, 2, 3])
    }))

  it.effect("the held lock exposes its key and a fencing revision that guards writes", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("fencing")
      const name = `${p}lock`
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const lock = yield* Lock.make(name)
        expect(lock.key.startsWith(`${name}/`)).toBe(true)
        expect(lock.key).toBe(`${name}/${lock.lease.id.toString(16)}`)
        const kv = Option.getOrThrow(yield* Kv.getKeyValue(lock.key))
        expect(kv.createRevision).toBe(lock.revision)
        const guarded = yield* Txn.txnCompare([lock.isOwner], [Op.put(`${p}data`, "by first")])
        expect(guarded.succeeded).toBe(true)
        return lock
      }))
      const second = yield* Effect.scoped(Lock.make(name))
      expect(second.revision).toBeGreaterThan(first.revision)
      // the first holder's guard no longer holds
      const stale = yield* Txn.txnCompare([first.isOwner], [Op.put(`${p}data`, "stale write")])
      expect(stale.succeeded).toBe(false)
      expect(yield* Kv.get(`${p}data`)).toEqual(Option.some("by first"))
    }))

  it.effect("a crashed holder blocks others only until its lease's TTL runs out", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("crashed")
      const name = `${p}lock`
      // a holder that died: its key is there, attached to a lease nobody keeps alive
      const orphan = yield* Lease.grant("2 seconds")
      yield* Kv.put(`${name}/${orphan.id.toString(16)}`, "", { lease: orphan.id })
      const lock = yield* Effect.scoped(Lock.make(name, { timeout: "15 seconds" }))
      expect(lock.revision).toBeGreaterThan(0n)
      expect(yield* Effect.flip(Lease.timeToLive(orphan.id))).toMatchObject({ _tag: "LeaseNotFound" })
    }), 30_000)

  it.effect("withLock works data-first and data-last, and an empty name fails with EmptyKey", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("dual")
      expect(yield* Lock.withLock(`${p}lock`, Effect.succeed(1))).toBe(1)
      expect(yield* Effect.succeed(2).pipe(Lock.withLock(`${p}lock`, { timeout: "5 seconds" }))).toBe(2)
      expect((yield* Effect.flip(Effect.scoped(Lock.make(""))))._tag).toBe("EmptyKey")
    }))

  it.effect(
    "a waiter whose lease is lost while queued fails with LeaseLost, and the lock is free for another",
    () =>
      Effect.gen(function*() {
        const name = `${uniquePrefix("lostwaiter")}lock`
        const acquired = yield* Deferred.make<string>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const lock = yield* Lock.make(name)
          yield* Deferred.succeed(acquired, lock.key)
          yield* Deferred.await(release)
        })))
        const holderKey = yield* Deferred.await(acquired)
        const waiter = yield* Effect.fork(Effect.scoped(Effect.map(Lock.make(name), (lock) => lock.key)))
        yield* awaitKeys(`${name}/`, 2)
        const waiterKey = (yield* Kv.keysPrefix(`${name}/`)).find((key) => key !== holderKey)!
        // the waiter's lease goes while it waits; its keepalive (every 20 s) has not seen it yet
        yield* revokeElsewhere(leaseOf(waiterKey))
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        // the holder's key is gone, but so is the waiter's: it must not think it holds the lock
        const error = yield* Effect.flip(Fiber.join(waiter))
        expect(error).toMatchObject({ _tag: "LeaseLost", leaseId: leaseOf(waiterKey) })
        const third = yield* Effect.scoped(Effect.gen(function*() {
          const lock = yield* Lock.make(name, { timeout: "20 seconds" })
          expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([lock.key])
          return lock.key
        }))
        expect(third).not.toBe(waiterKey)
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      }),
    30_000
  )
})
