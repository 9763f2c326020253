/**
 * The fair queue behind Lock, RwLock and Election (internal/recipes/queue.ts), on `EtcdMemory` and
 * the TestClock: the key a place is held with, who waits for whom, what a release, a
 * failure, a timeout or a lost lease leaves behind. Waiting is observed through a watcher
 * of the queue's keys (a waiter's key appears when it has taken its place).
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, HashMap, Logger, Option, Scope, Stream, TestClock } from "effect"
import { EtcdError, EtcdMemory, KeyRange, Kv, Lease, Lock, Session, Txn, Watch } from "effect-etcd"
import * as Queue from "../src/internal/recipes/queue.js"
import { recordingTracer } from "./support.js"

const memory = Effect.provide(EtcdMemory.layer())

/** The next `n` events of a watcher, as `put <key>` / `delete <key>`. */
const next = (watcher: Watch.Watcher, n: number) =>
  Effect.map(
    Stream.runCollect(Stream.take(watcher.events, n)),
    (events) => Chunk.toReadonlyArray(events).map((event) => `${event.type} ${event.key}`)
  )

/** Lets every fiber that can run, run (the memory store answers without waiting on the clock). */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

/**
 * Lets the event loop turn a few times, and every fiber run after each: the memory store
 * applies a write on a later turn (setImmediate), as a server answers later.
 */
const turns = Effect.repeatN(
  Effect.zipRight(Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve))), settle),
  5
)

describe("Queue", () => {
  it.effect("a lock without a session holds a key named after its own lease, and revokes it on release", () =>
    Effect.gen(function*() {
      const name = "q/own-lease"
      const lock = yield* Effect.scoped(Effect.gen(function*() {
        const lock = yield* Lock.make(name, { ttl: "7 seconds" })
        expect(lock.key).toBe(`${name}/${lock.lease.id.toString(16)}`)
        expect((yield* Lease.timeToLive(lock.lease.id)).grantedTtl).toBe(7)
        const kv = Option.getOrThrow(yield* Kv.getKeyValue(lock.key))
        expect(kv.createRevision).toBe(lock.revision)
        expect(kv.lease).toBe(lock.lease.id)
        // the fencing compare holds while the key is the lock's own
        expect((yield* Txn.txnCompare([lock.isOwner], [], [])).succeeded).toBe(true)
        expect(yield* Lease.leases()).toHaveLength(1)
        return lock
      }))
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      expect(yield* Lease.leases()).toHaveLength(0)
      expect((yield* Txn.txnCompare([lock.isOwner], [], [])).succeeded).toBe(false)
    }).pipe(memory))

  it.effect("a lock's lease has the default TTL when none is asked for", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make("q/default-ttl")
      expect((yield* Lease.timeToLive(lock.lease.id)).grantedTtl).toBe(60)
    }).pipe(Effect.scoped, memory))

  it.effect("places on a session are keyed by its lease and a sequence number; a release deletes only the key", () =>
    Effect.gen(function*() {
      const name = "q/session"
      const session = yield* Session.make({ ttl: "30 seconds" })
      const hex = session.lease.id.toString(16)
      const first = yield* Scope.make()
      const one = yield* Scope.extend(Lock.make(`${name}/one`, { session }), first)
      const two = yield* Lock.make(`${name}/two`, { session })
      const [, n1] = one.key.split(`${name}/one/${hex}-`)
      const [, n2] = two.key.split(`${name}/two/${hex}-`)
      expect(parseInt(n2, 16)).toBe(parseInt(n1, 16) + 1)
      expect(one.lease.id).toBe(session.lease.id)
      yield* Scope.close(first, Exit.void)
      expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([two.key])
      // the session's lease outlives the place
      expect((yield* Lease.timeToLive(session.lease.id)).ttl).toBeGreaterThan(0)
    }).pipe(Effect.scoped, memory))

  it.effect("a place whose key already exists takes that key's create revision", () =>
    Effect.gen(function*() {
      const name = "q/existing"
      const session = yield* Session.make({ ttl: "30 seconds" })
      const hex = session.lease.id.toString(16)
      // the sequence number is one per place: the next one is the one after this place's
      const probe = yield* Effect.scoped(Lock.make(`${name}/probe`, { session }))
      const sequence = parseInt(probe.key.split("-").pop()!, 16)
      const key = `${name}/lock/${hex}-${(sequence + 1).toString(16)}`
      const landed = yield* Kv.put(key, "", { lease: session.lease.id })
      yield* Kv.put("q/existing-other", "moves the revision on")
      const lock = yield* Lock.make(`${name}/lock`, { session })
      expect(lock.key).toBe(key)
      expect(lock.revision).toBe(landed.revision)
    }).pipe(Effect.scoped, memory))

  it.effect("a waiter takes its place behind the holder and gets the lock, later, once it is released", () =>
    Effect.gen(function*() {
      const name = "q/handover"
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      const first = yield* Scope.make()
      const held = yield* Scope.extend(Lock.make(name), first)
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Effect.scoped(Effect.map(Lock.make(name), (lock) => lock.revision)))
      const [put] = yield* next(watcher, 1)
      yield* settle
      expect(put.startsWith(`put ${name}/`)).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      yield* Scope.close(first, Exit.void)
      expect(yield* Fiber.join(waiter)).toBeGreaterThan(held.revision)
    }).pipe(Effect.scoped, memory))

  it.effect("the head is the oldest key, not the first by name", () =>
    Effect.gen(function*() {
      const name = "q/oldest"
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      // an older place whose key sorts after every lease ID in hex
      yield* Kv.put(`${name}/zzzz`, "")
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Effect.scoped(Effect.map(Lock.make(name), (lock) => lock.key)))
      yield* next(watcher, 1)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      yield* Kv.delete(`${name}/zzzz`)
      expect((yield* Fiber.join(waiter)) < `${name}/zzzz`).toBe(true)
    }).pipe(Effect.scoped, memory))

  it.effect("a lock taken within its timeout is held until its scope closes", () =>
    Effect.gen(function*() {
      const name = "q/in-time"
      const lock = yield* Effect.scoped(Effect.gen(function*() {
        const lock = yield* Lock.make(name, { timeout: "1 minute" })
        expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([lock.key])
        expect((yield* Txn.txnCompare([lock.isOwner], [], [])).succeeded).toBe(true)
        return lock
      }))
      // and released when it closes: its lease revoked, its key gone
      expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([])
      expect(yield* Lease.leases()).toEqual([])
      expect((yield* Txn.txnCompare([lock.isOwner], [], [])).succeeded).toBe(false)
    }).pipe(memory))

  it.effect("waitForOlder waits for every key created at or before the revision, and only those", () =>
    Effect.gen(function*() {
      const p = "q/older/"
      const a = yield* Kv.put(`${p}a`, "")
      const b = yield* Kv.put(`${p}b`, "")
      yield* Kv.put(`${p}c`, "")
      // nothing older than a: at once
      yield* Queue.waitForOlder(KeyRange.prefix(p), a.revision - 1n)
      const waiting = yield* Effect.fork(Queue.waitForOlder(KeyRange.prefix(p), b.revision))
      yield* settle
      // c is newer: its delete wakes nobody
      yield* Kv.delete(`${p}c`)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      // b is the one watched; a is still older
      yield* Kv.delete(`${p}b`)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      yield* Kv.delete(`${p}a`)
      yield* Fiber.join(waiting)
    }).pipe(memory))

  it.effect("waitForOlder watches the newest older key: deleting an older one does not end the wait", () =>
    Effect.gen(function*() {
      const p = "q/newest/"
      yield* Kv.put(`${p}a`, "")
      const b = yield* Kv.put(`${p}b`, "")
      const waiting = yield* Effect.fork(Queue.waitForOlder(KeyRange.prefix(p), b.revision))
      yield* settle
      yield* Kv.delete(`${p}a`)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      yield* Kv.delete(`${p}b`)
      yield* Fiber.join(waiting)
    }).pipe(memory))

  it.effect("waitForOlder watches from the revision after its read: a delete before its watcher exists ends the wait", () =>
    Effect.gen(function*() {
      const p = "q/gap/"
      const a = yield* Kv.put(`${p}a`, "")
      // the read answers, the watcher's creation hangs: the delete lands in between
      yield* EtcdMemory.hangFor("2 seconds", { methods: ["watch"] })
      const waiting = yield* Effect.fork(Queue.waitForOlder(KeyRange.prefix(p), a.revision))
      yield* turns
      yield* Kv.delete(`${p}a`)
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      yield* TestClock.adjust("2 seconds")
      yield* turns
      // a watcher from the current revision would wait for a delete that has already happened
      expect(yield* Fiber.poll(waiting)).toStrictEqual(Option.some(Exit.void))
    }).pipe(memory))

  it.effect("waitForOlder reads again when the history after its read was compacted before its watcher was made", () =>
    Effect.gen(function*() {
      const p = "q/compacted/"
      const a = yield* Kv.put(`${p}a`, "")
      yield* EtcdMemory.hangFor("2 seconds", { methods: ["watch"] })
      const waiting = yield* Effect.fork(Queue.waitForOlder(KeyRange.prefix(p), a.revision))
      yield* turns
      yield* Kv.delete(`${p}a`)
      const later = yield* Kv.put(`${p}later`, "")
      yield* Kv.compact(later.revision)
      yield* TestClock.adjust("2 seconds")
      yield* turns
      // the watcher fails with Compacted; the read after it finds no older key
      expect(yield* Fiber.poll(waiting)).toStrictEqual(Option.some(Exit.void))
    }).pipe(memory))

  it.effect("a waiter whose key went while it waited fails with LeaseLost (expired) and holds nothing", () =>
    Effect.gen(function*() {
      const name = "q/gone"
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      const first = yield* Scope.make()
      yield* Scope.extend(Lock.make(name), first)
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Effect.scoped(Lock.make(name)))
      const [put] = yield* next(watcher, 1)
      const key = put.slice("put ".length)
      yield* Kv.delete(key)
      yield* Scope.close(first, Exit.void)
      const error = yield* Effect.flip(Fiber.join(waiter))
      expect(error).toMatchObject({ _tag: "LeaseLost", reason: "expired" })
    }).pipe(Effect.scoped, memory))

  it.effect("a waiter whose key was put again while it waited fails with LeaseLost too", () =>
    Effect.gen(function*() {
      const name = "q/again"
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      const first = yield* Scope.make()
      yield* Scope.extend(Lock.make(name), first)
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Effect.scoped(Lock.make(name)))
      const [put] = yield* next(watcher, 1)
      const key = put.slice("put ".length)
      yield* Kv.delete(key)
      yield* Kv.put(key, "")
      yield* Scope.close(first, Exit.void)
      expect(yield* Effect.flip(Fiber.join(waiter))).toMatchObject({ _tag: "LeaseLost", reason: "expired" })
    }).pipe(Effect.scoped, memory))

  it.effect("a lock on a lost session fails with LeaseLost and puts nothing", () =>
    Effect.gen(function*() {
      const name = "q/lost"
      const session = yield* Session.make({ ttl: "6 seconds" })
      yield* Lease.revoke(session.lease.id)
      // the next keepalive hears that the lease is gone
      yield* TestClock.adjust("10 seconds")
      expect(yield* session.isLost).toBe(true)
      expect(yield* Effect.flip(Lock.make(name, { session }))).toMatchObject({ _tag: "LeaseLost" })
      expect(yield* Effect.flip(Lock.withLock(name, Effect.void, { session }))).toMatchObject({ _tag: "LeaseLost" })
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
    }).pipe(Effect.scoped, memory))

  it.effect("withLock on a session deletes its key after the effect, whether it succeeds or fails", () =>
    Effect.gen(function*() {
      const name = "q/using"
      const session = yield* Session.make({ ttl: "30 seconds" })
      const inside = yield* Lock.withLock(name, Kv.count(KeyRange.prefix(`${name}/`)), { session })
      expect(inside).toBe(1)
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      const failed = yield* Effect.flip(Lock.withLock(name, Effect.fail("boom" as const), { session }))
      expect(failed).toBe("boom")
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      // a delete that fails is logged, not the caller's failure: the key waits for the session
      const memoryHandle = yield* EtcdMemory.EtcdMemory
      yield* memoryHandle.failNext(5, unavailable(), { methods: ["deleteRange"] })
      const logs: Array<{ level: string; message: unknown; annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ annotations, logLevel, message }) => {
        logs.push({ level: logLevel.label, message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      })
      const done = yield* Lock.withLock(name, Effect.succeed("done"), { session }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      expect(done).toBe("done")
      yield* memoryHandle.clearFaults
      const [key] = yield* Kv.keysPrefix(`${name}/`)
      expect(key.startsWith(`${name}/`)).toBe(true)
      expect(logs).toMatchObject([{
        level: "WARN",
        message: ["could not delete a lock key; it stays until its session ends"],
        annotations: { key, error: unavailable().message }
      }])
    }).pipe(Effect.scoped, memory))

  it.effect("withLock on a session with a timeout fails with LockTimeout and its key is deleted", () =>
    Effect.gen(function*() {
      const name = "q/using-timeout"
      const session = yield* Session.make({ ttl: "30 seconds" })
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      const held = yield* Lock.make(name)
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Lock.withLock(name, Effect.void, { session, timeout: "1 second" }))
      const [put] = yield* next(watcher, 1)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Effect.flip(Fiber.join(waiter))).toMatchObject({ _tag: "LockTimeout", lockName: name })
      expect(yield* next(watcher, 1)).toEqual([put.replace("put", "delete")])
      expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([held.key])
      // without a timeout, it waits until the lock is free
      const patient = yield* Effect.fork(Lock.withLock(name, Effect.succeed("got it"), { session }))
      yield* next(watcher, 1)
      yield* TestClock.adjust("30 seconds")
      expect(Option.isNone(yield* Fiber.poll(patient))).toBe(true)
      yield* Kv.delete(held.key)
      expect(yield* Fiber.join(patient)).toBe("got it")
    }).pipe(Effect.scoped, memory))

  it.effect("a lock with a timeout fails with LockTimeout, and its attempt's lease is revoked", () =>
    Effect.gen(function*() {
      const name = "q/timeout"
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      const held = yield* Lock.make(name)
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Effect.scoped(Lock.make(name, { timeout: "1 second" })))
      const [put] = yield* next(watcher, 1)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Effect.flip(Fiber.join(waiter))).toMatchObject({ _tag: "LockTimeout", lockName: name })
      expect(yield* next(watcher, 1)).toEqual([put.replace("put", "delete")])
      expect(yield* Lease.leases()).toEqual([held.lease.id])
    }).pipe(Effect.scoped, memory))

  it.effect("a failed acquisition revokes its lease at once, before the caller's scope closes", () =>
    Effect.gen(function*() {
      const memoryHandle = yield* EtcdMemory.EtcdMemory
      yield* memoryHandle.failNext(1, unavailable(), { methods: ["txn"] })
      yield* Effect.flip(Lock.make("q/failed"))
      expect(yield* Lease.leases()).toEqual([])
      // with a timeout too
      yield* memoryHandle.failNext(1, unavailable(), { methods: ["txn"] })
      yield* Effect.flip(Lock.make("q/failed", { timeout: "1 minute" }))
      expect(yield* Lease.leases()).toEqual([])
    }).pipe(Effect.scoped, memory))

  it.effect("after a timeout, the revoke of the attempt's lease goes on without the caller", () =>
    Effect.gen(function*() {
      const name = "q/timeout-background"
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      const held = yield* Lock.make(name)
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Effect.scoped(Lock.make(name, { timeout: "1 second" })))
      yield* next(watcher, 1)
      // revokes hang until 3 s on the clock: the timeout (at 1 s) must not wait for them
      yield* EtcdMemory.hangFor("3 seconds", { methods: ["leaseRevoke"] })
      yield* TestClock.adjust("2 seconds")
      expect(yield* Effect.flip(Fiber.join(waiter))).toMatchObject({ _tag: "LockTimeout", lockName: name })
      expect(yield* Lease.leases()).toHaveLength(2)
      yield* TestClock.adjust("2 seconds")
      yield* next(watcher, 1)
      expect(yield* Lease.leases()).toEqual([held.lease.id])
    }).pipe(Effect.scoped, memory))

  it.effect("any other failure of a lock with a timeout waits for its revoke, within releaseTimeout", () =>
    Effect.gen(function*() {
      yield* EtcdMemory.failNext(1, unavailable(), { methods: ["txn"] })
      yield* EtcdMemory.hangFor("5 seconds", { methods: ["leaseRevoke"] })
      const attempt = yield* Effect.fork(
        Effect.scoped(Lock.make("q/failed-waits", { timeout: "1 minute", releaseTimeout: "1 second" }))
      )
      yield* turns
      // the revoke hangs: the caller is still waiting for it
      expect(Option.isNone(yield* Fiber.poll(attempt))).toBe(true)
      // and gives up on it at releaseTimeout (1 s), not at the revoke's own default
      yield* TestClock.adjust("1500 millis")
      expect(yield* Effect.flip(Fiber.join(attempt))).toMatchObject({ _tag: "EtcdUnavailable" })
    }).pipe(memory))

  it.effect("after a timeout on a session, the delete of the waiter's key goes on without the caller", () =>
    Effect.gen(function*() {
      const name = "q/session-timeout-background"
      const session = yield* Session.make({ ttl: "30 seconds" })
      const watcher = yield* Watch.subscribe(KeyRange.prefix(`${name}/`))
      const held = yield* Lock.make(name)
      yield* next(watcher, 1)
      const waiter = yield* Effect.fork(Lock.withLock(name, Effect.void, { session, timeout: "1 second" }))
      const [put] = yield* next(watcher, 1)
      yield* EtcdMemory.hangFor("3 seconds", { methods: ["deleteRange"] })
      yield* TestClock.adjust("2 seconds")
      expect(yield* Effect.flip(Fiber.join(waiter))).toMatchObject({ _tag: "LockTimeout", lockName: name })
      expect(yield* Kv.keysPrefix(`${name}/`)).toHaveLength(2)
      yield* TestClock.adjust("2 seconds")
      expect(yield* next(watcher, 1)).toEqual([put.replace("put", "delete")])
      expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([held.key])
    }).pipe(Effect.scoped, memory))

  it.effect("any other failure on a session waits for the key's delete, within releaseTimeout, then leaves it", () =>
    Effect.gen(function*() {
      const name = "q/session-failed-waits"
      const session = yield* Session.make({ ttl: "30 seconds" })
      yield* EtcdMemory.hangFor("5 seconds", { methods: ["deleteRange"] })
      const run = yield* Effect.fork(
        Lock.withLock(name, Effect.fail("boom"), { session, timeout: "1 minute", releaseTimeout: "1 second" })
      )
      yield* turns
      expect(Option.isNone(yield* Fiber.poll(run))).toBe(true)
      yield* TestClock.adjust("1500 millis")
      expect(yield* Effect.flip(Fiber.join(run))).toBe("boom")
      // the delete gave up at releaseTimeout: the key stays until the session ends
      expect(yield* Kv.keysPrefix(`${name}/`)).toHaveLength(1)
    }).pipe(Effect.scoped, memory))

  it.effect("a failure with no value, without a timeout, waits for the key's delete as any other failure does", () =>
    Effect.gen(function*() {
      const name = "q/session-failed-undefined"
      const session = yield* Session.make({ ttl: "30 seconds" })
      yield* EtcdMemory.hangFor("5 seconds", { methods: ["deleteRange"] })
      const run = yield* Effect.fork(
        Lock.withLock(name, Effect.fail(undefined), { session, releaseTimeout: "1 second" })
      )
      yield* turns
      expect(Option.isNone(yield* Fiber.poll(run))).toBe(true)
      yield* TestClock.adjust("1500 millis")
      expect(yield* Effect.flip(Fiber.join(run))).toBeUndefined()
    }).pipe(Effect.scoped, memory))

  it.effect("withDefaultSession: the context's session is the default of options that name neither a session nor a ttl", () =>
    Effect.gen(function*() {
      const session = yield* Session.make({ ttl: "30 seconds" })
      const other = yield* Session.make({ ttl: "30 seconds" })
      const seen = (options: Queue.EnqueueOptions | undefined) =>
        Queue.withDefaultSession(options, (given) => Effect.succeed(given)).pipe(
          Effect.provideService(Session.Session, session)
        )
      expect((yield* seen(undefined))?.session).toBe(session)
      expect(yield* seen({ releaseTimeout: "1 second" })).toEqual({ releaseTimeout: "1 second", session })
      expect((yield* seen({ session: other }))?.session).toBe(other)
      expect(yield* seen({ ttl: "5 seconds" })).toEqual({ ttl: "5 seconds" })
      // options that are no object are passed on untouched, for the validation to refuse
      for (const bad of [null, 5, "x"]) {
        expect(yield* seen(bad as unknown as Queue.EnqueueOptions)).toBe(bad)
      }
      // without a session in the context, the options are as given
      expect(yield* Queue.withDefaultSession(undefined, (given) => Effect.succeed(given))).toBeUndefined()
      expect(yield* Queue.withDefaultSession({}, (given) => Effect.succeed(given))).toEqual({})
    }).pipe(Effect.scoped, memory))

  it.effect("a lock's lost and guard are its lease's", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make("q/guard", { ttl: "6 seconds" })
      const guarded = yield* Effect.fork(lock.guard(Effect.never))
      yield* Lease.revoke(lock.lease.id)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Effect.flip(Fiber.join(guarded))).toMatchObject({ _tag: "LeaseLost", leaseId: lock.lease.id })
      expect(yield* Effect.flip(lock.lost)).toMatchObject({ _tag: "LeaseLost", leaseId: lock.lease.id })
    }).pipe(Effect.scoped, memory))

  it.effect("a lock's call runs in a span named Lock.make when a tracer records spans", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* Effect.scoped(Lock.make("q/traced")).pipe(Effect.withTracer(tracer))
      const span = spans.find((span) => span.name === "Lock.make")
      expect(span?.attributes.get("etcd.lock")).toBe("q/traced")
    }).pipe(memory))
})

const unavailable = () =>
  new EtcdError.EtcdUnavailable({ method: "memory", endpoints: ["memory://etcd"], reason: "member unreachable" })
