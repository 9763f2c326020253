import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, Ref, Stream } from "effect"
import { Election, KeyRange, Kv, Lease, Op, Session, Txn } from "effect-etcd"
import { revokeElsewhere } from "./faults.js"
import { uniquePrefix, withServer } from "./support.js"

/** Waits (bounded) until `n` candidates' keys exist under the election. */
const awaitCandidates = (name: string, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      if ((yield* Kv.count(KeyRange.prefix(`${name}/`))) === n) return
      yield* Effect.sleep(Duration.millis(25))
    }
    throw new Error(`expected ${n} candidates under ${name}`)
  })

/** The lease of a candidate's key `<name>/<lease ID in hex>`. */
const leaseOf = (key: string): bigint => BigInt(`0x${key.slice(key.lastIndexOf("/") + 1)}`)

const leaderValue = (name: string) => Effect.map(Election.leader(name), Option.map((leader) => leader.value))

layer(withServer(), { excludeTestServices: true })("Election", (it) => {
  it.effect("campaign, leader, proclaim and resign: the next candidate leads at once", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("basic")}election`
      expect(yield* Election.leader(name)).toEqual(Option.none())
      const first = yield* Election.campaign(name, "a")
      expect(yield* leaderValue(name)).toEqual(Option.some("a"))
      const second = yield* Effect.fork(Effect.scoped(Effect.map(Election.campaign(name, "b"), (l) => l.revision)))
      yield* awaitCandidates(name, 2)
      yield* first.proclaim("a2")
      const current = Option.getOrThrow(yield* Election.leader(name))
      expect(current).toMatchObject({ key: first.key, value: "a2", revision: first.revision })
      expect(current.modRevision).toBeGreaterThan(first.revision)
      yield* Election.resign(first)
      const secondRevision = yield* Fiber.join(second)
      expect(secondRevision).toBeGreaterThan(first.revision)
    }).pipe(Effect.scoped))

  it.effect("candidates lead first come, first served, one at a time", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("fair")}election`
      const order = yield* Ref.make<Array<number>>([])
      let leading = 0
      let maxLeading = 0
      const candidate = (i: number) =>
        Election.withLeadership(name, `c${i}`, () =>
          Effect.gen(function*() {
            leading++
            maxLeading = Math.max(maxLeading, leading)
            yield* Ref.update(order, (o) => [...o, i])
            yield* Effect.sleep(Duration.millis(30))
            leading--
          }))
      const release = yield* Deferred.make<void>()
      const first = yield* Effect.fork(Election.withLeadership(name, "first", () => Deferred.await(release)))
      yield* awaitCandidates(name, 1)
      const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
      for (let i = 0; i < 4; i++) {
        fibers.push(yield* Effect.fork(candidate(i)))
        yield* awaitCandidates(name, i + 2)
      }
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(first)
      yield* Effect.forEach(fibers, Fiber.join, { discard: true })
      expect(yield* Ref.get(order)).toEqual([0, 1, 2, 3])
      expect(maxLeading).toBe(1)
      expect(yield* Election.leader(name)).toEqual(Option.none())
    }))

  it.effect("an interrupted campaign leaves no key, and a timed-out one fails with CampaignTimeout", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("interrupt")}election`
      const leader = yield* Election.campaign(name, "leader")
      const waiting = yield* Effect.fork(Effect.scoped(Election.campaign(name, "waiting")))
      yield* awaitCandidates(name, 2)
      yield* Fiber.interrupt(waiting)
      expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([leader.key])
      const error = yield* Effect.flip(Effect.scoped(Election.campaign(name, "late", { timeout: "200 millis" })))
      expect(error).toMatchObject({ _tag: "CampaignTimeout", electionName: name })
      for (let i = 0; i < 100 && (yield* Kv.count(KeyRange.prefix(`${name}/`))) > 1; i++) {
        yield* Effect.sleep(Duration.millis(20))
      }
      expect(yield* Kv.keysPrefix(`${name}/`)).toEqual([leader.key])
    }).pipe(Effect.scoped))

  it.effect("a leader whose session is lost is told, and the next candidate leads", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("lost")}election`
      const session = yield* Session.make({ ttl: "2 seconds" })
      const leadership = yield* Election.campaign(name, "doomed", { session })
      const next = yield* Effect.fork(Effect.scoped(Effect.map(Election.campaign(name, "next"), (l) => l.key)))
      yield* awaitCandidates(name, 2)
      const working = yield* Effect.fork(leadership.guard(Effect.never))
      // the session's lease goes (as when its holder is cut off for longer than its TTL)
      yield* Lease.revoke(session.lease.id)
      const told = yield* Effect.flip(Fiber.join(working))
      expect(told).toMatchObject({ _tag: "LeaseLost", leaseId: session.lease.id })
      const nextKey = yield* Fiber.join(next)
      expect(nextKey).not.toBe(leadership.key)
      // the deposed leader can no longer proclaim, nor write under its guard
      const error = yield* Effect.flip(leadership.proclaim("still me?"))
      expect(error).toMatchObject({ _tag: "NotLeader", electionName: name, key: leadership.key })
      const guarded = yield* Txn.txnCompare([leadership.isLeader], [Op.put(`${name}-data`, "stale")])
      expect(guarded.succeeded).toBe(false)
    }).pipe(Effect.scoped), 30_000)

  it.effect("campaign on a lease ID the caller granted: the key is on it, and resigning leaves the lease", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("own-lease")}election`
      const granted = yield* Lease.grant("30 seconds")
      const leadership = yield* Effect.scoped(Effect.gen(function*() {
        const leadership = yield* Election.campaign(name, "on-my-lease", { lease: granted.id })
        expect(leadership.lease.id).toBe(granted.id)
        const kv = Option.getOrThrow(yield* Kv.getKeyValue(leadership.key))
        expect(kv.lease).toBe(granted.id)
        expect(Option.getOrThrow(yield* Election.leader(name))).toMatchObject({
          value: "on-my-lease",
          lease: granted.id
        })
        // the campaign keeps the lease alive: a refresh has been acknowledged, so it is not lost
        expect(yield* leadership.lease.isLost).toBe(false)
        return leadership
      }))
      // the scope closed: the key is gone, the lease is still there (the caller's to revoke)
      expect(yield* Kv.getKeyValue(leadership.key)).toEqual(Option.none())
      expect(yield* Election.leader(name)).toEqual(Option.none())
      expect((yield* Lease.timeToLive(granted.id)).ttl).toBeGreaterThan(0)
      yield* Lease.revoke(granted.id)
    }))

  it.effect(
    "campaign on a lease ID: a revoked lease deposes the leader with LeaseLost, the next one leads",
    () =>
      Effect.gen(function*() {
        const name = `${uniquePrefix("own-lease-lost")}election`
        // refreshed every 2 seconds: the refresh after the revoke finds the lease gone
        const granted = yield* Lease.grant("6 seconds")
        // the lease carries something else of the caller's too
        yield* Kv.put(`${name}-presence`, "here", { lease: granted.id })
        const leadership = yield* Election.campaign(name, "doomed", { lease: granted.id })
        const next = yield* Effect.fork(Effect.scoped(Effect.map(Election.campaign(name, "next"), (l) => l.key)))
        yield* awaitCandidates(name, 2)
        const working = yield* Effect.fork(leadership.guard(Effect.never))
        yield* revokeElsewhere(granted.id)
        const told = yield* Effect.flip(Fiber.join(working))
        expect(told).toMatchObject({ _tag: "LeaseLost", leaseId: granted.id })
        const nextKey = yield* Fiber.join(next)
        expect(nextKey).not.toBe(leadership.key)
        expect(yield* Effect.flip(leadership.proclaim("still me?"))).toMatchObject({ _tag: "NotLeader" })
        expect(yield* Kv.get(`${name}-presence`)).toEqual(Option.none())
      }).pipe(Effect.scoped),
    30_000
  )

  it.effect("campaign on a held Lease: its holder keeps it; a missing lease ID fails with LeaseNotFound", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("held-lease")}election`
      const lease = yield* Lease.make("30 seconds")
      const leadership = yield* Effect.scoped(Effect.gen(function*() {
        const leadership = yield* Election.campaign(name, "held", { lease })
        expect(leadership.lease).toBe(lease)
        expect(Option.getOrThrow(yield* Kv.getKeyValue(leadership.key)).lease).toBe(lease.id)
        return leadership
      }))
      expect(yield* Kv.getKeyValue(leadership.key)).toEqual(Option.none())
      expect(yield* lease.isLost).toBe(false)
      // a lease ID that does not exist: nothing is put
      const missing = yield* Effect.flip(Effect.scoped(Election.campaign(name, "x", { lease: 0x7ead_beefn })))
      expect(missing).toMatchObject({ _tag: "LeaseNotFound", leaseId: 0x7ead_beefn })
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      // a lease goes alone: with a session or a ttl, or of the wrong kind, it is refused before anything is sent
      const both = yield* Effect.flip(Effect.scoped(Election.campaign(name, "x", { lease, ttl: "10 seconds" })))
      expect(both).toMatchObject({ _tag: "EtcdInvalidArgument", option: "lease" })
      const wrong = yield* Effect.flip(Effect.scoped(Election.campaign(name, "x", { lease: 12 as never })))
      expect(wrong).toMatchObject({ _tag: "EtcdInvalidArgument", option: "lease" })
    }).pipe(Effect.scoped))

  it.effect("proclaim after resigning fails with NotLeader and writes nothing", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("deposed")}election`
      const leadership = yield* Election.campaign(name, "v1")
      yield* leadership.resign
      expect(yield* Effect.flip(Election.proclaim(leadership, "v2"))).toMatchObject({ _tag: "NotLeader" })
      expect(yield* Election.leader(name)).toEqual(Option.none())
      expect(yield* Kv.count(KeyRange.prefix(`${name}/`))).toBe(0)
      // resigning again does nothing
      yield* leadership.resign
    }).pipe(Effect.scoped))

  it.effect("observe: the current leader first, then every proclamation and new leader in order", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("observe")}election`
      const a = yield* Election.campaign(name, "a1")
      const seen: Array<string> = []
      const observer = yield* Effect.fork(
        Stream.runForEach(Election.observe(name), (leader) => Effect.sync(() => seen.push(leader.value)))
      )
      const awaitSeen = (n: number) =>
        Effect.gen(function*() {
          for (let i = 0; i < 1_500 && seen.length < n; i++) yield* Effect.sleep(Duration.millis(20))
        })
      yield* awaitSeen(1)
      const bLeads = yield* Deferred.make<Election.Leadership>()
      const b = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const b = yield* Election.campaign(name, "b1")
        yield* b.proclaim("b2")
        yield* Deferred.succeed(bLeads, b)
        yield* Effect.never
      })))
      yield* awaitCandidates(name, 2)
      yield* a.proclaim("a2")
      yield* a.proclaim("a3")
      yield* a.resign
      // a last proclamation: anything seen twice, or out of order, comes before it
      yield* (yield* Deferred.await(bLeads)).proclaim("b3")
      yield* awaitSeen(6)
      yield* Fiber.interrupt(b)
      yield* Fiber.interrupt(observer)
      // b campaigned with b1 while a led: b1 is seen once b leads, then b's own proclamations
      expect(seen).toEqual(["a1", "a2", "a3", "b1", "b2", "b3"])
    }).pipe(Effect.scoped))

  it.effect(
    "a candidate whose lease is lost while it waits fails with LeaseLost, and another candidate leads",
    () =>
      Effect.gen(function*() {
        const name = `${uniquePrefix("lostcandidate")}election`
        const leader = yield* Election.campaign(name, "leader")
        const candidate = yield* Effect.fork(Effect.scoped(Effect.map(Election.campaign(name, "doomed"), (l) => l.key)))
        yield* awaitCandidates(name, 2)
        const candidateKey = (yield* Kv.keysPrefix(`${name}/`)).find((key) => key !== leader.key)!
        // the candidate's lease goes while it waits; its keepalive (every 20 s) has not seen it yet
        yield* revokeElsewhere(leaseOf(candidateKey))
        yield* leader.resign
        const error = yield* Effect.flip(Fiber.join(candidate))
        expect(error).toMatchObject({ _tag: "LeaseLost", leaseId: leaseOf(candidateKey) })
        expect(yield* Election.leader(name)).toEqual(Option.none())
        const next = yield* Effect.scoped(Effect.gen(function*() {
          const leadership = yield* Election.campaign(name, "next", { timeout: "20 seconds" })
          expect(yield* leaderValue(name)).toEqual(Option.some("next"))
          return leadership.key
        }))
        expect([leader.key, candidateKey]).not.toContain(next)
      }).pipe(Effect.scoped),
    30_000
  )

  it.effect("withLeadership runs its effect as the leader, then resigns", () =>
    Effect.gen(function*() {
      const name = `${uniquePrefix("with")}election`
      const value = yield* Election.withLeadership(name, "me", (leadership) =>
        Effect.map(Election.leader(name), (leader) =>
          Option.getOrThrow(leader).key === leadership.key))
      expect(value).toBe(true)
      expect(yield* Election.leader(name)).toEqual(Option.none())
      expect((yield* Effect.flip(Effect.scoped(Election.campaign("", "x"))))._tag).toBe("EmptyKey")
    }))
})

layer(withServer(), { excludeTestServices: true })("Election with its etcd restarted", (it) => {
  it.effect("observe sees every change in order across a member restart", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const name = `${uniquePrefix("restart")}election`
      const leadership = yield* Election.campaign(name, "v0", { ttl: "30 seconds" })
      const seen: Array<string> = []
      const observer = yield* Effect.fork(
        Stream.runForEach(Election.observe(name), (leader) => Effect.sync(() => seen.push(leader.value)))
      )
      const awaitSeen = (n: number) =>
        Effect.gen(function*() {
          for (let i = 0; i < 1_200 && seen.length < n; i++) yield* Effect.sleep(Duration.millis(25))
        })
      yield* awaitSeen(1)
      yield* leadership.proclaim("v1")
      yield* leadership.proclaim("v2")
      yield* awaitSeen(3)
      yield* server.kill(0, "SIGKILL")
      yield* server.start(0)
      yield* leadership.proclaim("v3")
      yield* leadership.proclaim("v4")
      yield* awaitSeen(5)
      yield* Fiber.interrupt(observer)
      expect(seen).toEqual(["v0", "v1", "v2", "v3", "v4"])
    }).pipe(Effect.scoped), 60_000)
})
