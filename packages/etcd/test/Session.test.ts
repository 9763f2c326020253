import { expect, layer } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Scope } from "effect"
import { KeyRange, Kv, Lease, Lock, Session } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

layer(withServer(), { excludeTestServices: true })("Session", (it) => {
  it.effect("a session's lease lives while its scope is open and is revoked, with its keys, when it closes", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("session")
      const scope = yield* Scope.make()
      const session = yield* Scope.extend(Session.make({ ttl: "5 seconds" }), scope)
      yield* Kv.put(`${p}attached`, "x", { lease: session.lease })
      expect((yield* Lease.timeToLive(session.lease.id)).grantedTtl).toBe(5)
      expect(yield* session.isLost).toBe(false)
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.flip(Lease.timeToLive(session.lease.id))).toMatchObject({ _tag: "LeaseNotFound" })
      expect(yield* Kv.get(`${p}attached`)).toEqual(Option.none())
    }))

  it.effect("locks on a session grant and revoke no lease: the key is on the session's lease, deleted on release", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("on-session")
      const session = yield* Session.make()
      const leasesBefore = (yield* Lease.leases()).length
      const lock = yield* Effect.scoped(Effect.gen(function*() {
        const lock = yield* Lock.make(`${p}lock`, { session })
        expect(lock.lease.id).toBe(session.lease.id)
        expect(lock.key.startsWith(`${p}lock/${session.lease.id.toString(16)}-`)).toBe(true)
        const kv = Option.getOrThrow(yield* Kv.getKeyValue(lock.key))
        expect(kv.lease).toBe(session.lease.id)
        expect(kv.createRevision).toBe(lock.revision)
        expect((yield* Lease.leases()).length).toBe(leasesBefore)
        return lock
      }))
      expect(yield* Kv.count(KeyRange.prefix(`${p}lock/`))).toBe(0)
      expect((yield* Lease.leases()).length).toBe(leasesBefore)
      // the session goes on
      expect((yield* Lease.timeToLive(session.lease.id)).ttl).toBeGreaterThan(0)
      expect(yield* Lease.timeToLive(lock.lease.id)).toMatchObject({ id: session.lease.id })
    }).pipe(Effect.scoped))

  it.effect(
    "fibers sharing one session still exclude each other: 10 × 10 increments end with 100",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("shared")
        const session = yield* Session.make()
        const increment = Lock.withLock(
          `${p}lock`,
          Effect.gen(function*() {
            const current = yield* Kv.get(`${p}counter`)
            yield* Kv.put(`${p}counter`, String(Number(Option.getOrElse(current, () => "0")) + 1))
          }),
          { session }
        )
        yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.repeatN(increment, 9), {
          concurrency: "unbounded",
          discard: true
        })
        expect(yield* Kv.get(`${p}counter`)).toEqual(Option.some("100"))
        expect(yield* Kv.count(KeyRange.prefix(`${p}lock/`))).toBe(0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.effect("an interrupted waiter on a session leaves no key, and a timeout is LockTimeout", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("session-interrupt")
      const name = `${p}lock`
      const session = yield* Session.make()
      const held = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Lock.withLock(
        name,
        Deferred.succeed(held, undefined).pipe(
          Effect.zipRight(Effect.never)
        ),
        { session }
      ))
      yield* Deferred.await(held)
      const waiter = yield* Effect.fork(Lock.withLock(name, Effect.void, { session }))
      while ((yield* Kv.count(KeyRange.prefix(`${name}/`))) < 2) yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(waiter)
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(1)
      const error = yield* Effect.flip(Effect.scoped(Lock.make(name, { session, timeout: "200 millis" })))
      expect(error).toMatchObject({ _tag: "LockTimeout", lockName: name })
      yield* Fiber.interrupt(holder)
      // the timed-out attempt's cleanup goes on in the background, bounded
      for (let i = 0; i < 100 && (yield* Kv.count(KeyRange.prefix(`${name}/`))) > 0; i++) {
        yield* Effect.sleep("20 millis")
      }
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
    }).pipe(Effect.scoped))

  it.effect(
    "a lost session tells the locks held on it, and a lock asked of it fails with LeaseLost",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("session-lost")
        const session = yield* Session.make({ ttl: "2 seconds" })
        const lock = yield* Lock.make(`${p}lock`, { session })
        // someone revokes the session's lease behind its back
        yield* Lease.revoke(session.lease.id)
        const lost = yield* Effect.flip(lock.guard(Effect.never))
        expect(lost).toMatchObject({ _tag: "LeaseLost", leaseId: session.lease.id })
        expect(yield* session.isLost).toBe(true)
        const again = yield* Effect.flip(Effect.scoped(Lock.make(`${p}lock`, { session })))
        expect(again._tag).toBe("LeaseLost")
        // the key went with the lease: another holder gets the lock
        const next = yield* Effect.scoped(Lock.make(`${p}lock`, { timeout: "5 seconds" }))
        expect(next.revision).toBeGreaterThan(lock.revision)
      }).pipe(Effect.scoped),
    30_000
  )

  it.effect(
    "withLock on a session: the effect gets a scope of its own, closed before the key goes; a failure or a lost session leaves no key",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("session-with")
        const name = `${p}lock`
        const session = yield* Session.make({ ttl: "5 seconds" })
        const seen: Array<string> = []
        const result = yield* Lock.withLock(
          name,
          Effect.gen(function*() {
            // a resource of the effect's: released while the lock is still held
            yield* Effect.addFinalizer(() =>
              Effect.flatMap(Kv.count(KeyRange.prefix(`${name}/`)), (n) =>
                Effect.sync(() => seen.push(`closed, ${n} key`))).pipe(Effect.orDie)
            )
            seen.push(`held, ${yield* Kv.count(KeyRange.prefix(`${name}/`))} key`)
            return "done"
          }),
          { session }
        )
        expect(result).toBe("done")
        expect(seen).toEqual(["held, 1 key", "closed, 1 key"])
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)

        const failed = yield* Effect.flip(Lock.withLock(name, Effect.fail("boom" as const), { session }))
        expect(failed).toBe("boom")
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)

        // the session's lease is revoked behind its back while a holder runs
        const running = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          Lock.withLock(name, Effect.zipRight(Deferred.succeed(running, undefined), Effect.never), { session })
        )
        yield* Deferred.await(running)
        yield* Lease.revoke(session.lease.id)
        const exit = yield* Fiber.await(holder)
        expect(exit).toMatchObject({ _tag: "Failure" })
        expect(Exit.isFailure(exit) && Option.getOrUndefined(Cause.failureOption(exit.cause))).toMatchObject({
          _tag: "LeaseLost",
          leaseId: session.lease.id
        })
        const again = yield* Effect.flip(Lock.withLock(name, Effect.void, { session }))
        expect(again).toMatchObject({ _tag: "LeaseLost" })
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      }).pipe(Effect.scoped),
    30_000
  )

  it.effect(
    "withLock on a session with a timeout: LockTimeout while another holds, and the attempt's key goes",
    () =>
      Effect.gen(function*() {
        const p = uniquePrefix("session-timeout")
        const name = `${p}lock`
        const session = yield* Session.make({ ttl: "5 seconds" })
        expect(yield* Lock.withLock(name, Effect.succeed(1), { session, timeout: "5 seconds" })).toBe(1)
        const running = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          Lock.withLock(name, Effect.zipRight(Deferred.succeed(running, undefined), Deferred.await(release)), {
            session
          })
        )
        yield* Deferred.await(running)
        const error = yield* Effect.flip(Lock.withLock(name, Effect.succeed(2), { session, timeout: "300 millis" }))
        expect(error).toMatchObject({ _tag: "LockTimeout", lockName: name })
        // the timed-out attempt's delete goes on in the background, bounded: only the holder's key stays
        for (let i = 0; i < 100 && (yield* Kv.count(KeyRange.prefix(`${name}/`))) > 1; i++) {
          yield* Effect.sleep("20 millis")
        }
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(1)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        expect(yield* Lock.withLock(name, Effect.succeed(3), { session, timeout: "5 seconds" })).toBe(3)
        expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      }).pipe(Effect.scoped),
    30_000
  )

  it.effect("Session.layer shares one session with every user of the tag", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("layer")
      const ids = yield* Effect.gen(function*() {
        const a = yield* Session.Session
        const b = yield* Session.Session
        const lock = yield* Effect.scoped(Lock.make(`${p}lock`, { session: a }))
        return [a.lease.id, b.lease.id, lock.lease.id]
      }).pipe(Effect.provide(Session.layer({ ttl: "5 seconds" })))
      expect(new Set(ids).size).toBe(1)
      // the layer's scope closed: its lease is revoked
      expect(yield* Effect.flip(Lease.timeToLive(ids[0]))).toMatchObject({ _tag: "LeaseNotFound" })
    }))
})
