/**
 * The client's metrics under faults, each made to happen for real on etcd processes: a
 * member paused with SIGSTOP (a unary call's connection dropped for an unanswered keepalive
 * PING; a lease lost at its deadline while its keepalives go unanswered), and a member killed
 * under two watchers (both resumed on another member). Values are differences of
 * `EtcdMetrics.snapshot` around each fault, with a signal (the call's failure, the lease's
 * loss, the events after the fault) to wait on.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Stream } from "effect"
import { Etcd, EtcdMetrics, KeyRange, Kv, Lease, Watch } from "effect-etcd"
import { parse } from "../src/internal/base/endpoint.js"
import { faultClient, notLeader } from "./faults.js"
import { delta, total } from "./metricTotals.js"
import { uniquePrefix, withServer } from "./support.js"

const names = EtcdMetrics.names

const memberOf = (url: string) => {
  const member = parse(url)
  if (typeof member === "string") throw new Error(member)
  return member
}

/**
 * PINGs every second while a call is in flight, a second to answer; the calls' own deadline
 * far away, so that only the PINGs can end a call to a paused member.
 */
const pinging = {
  metrics: true,
  requestTimeout: "60 seconds",
  keepAliveTime: "1 second",
  keepAliveTimeout: "1 second"
} as const

layer(withServer({}, pinging), { excludeTestServices: true })("Metrics under a paused member", (it) => {
  it.effect(
    "a call's connection dropped for an unanswered keepalive PING is counted once, on its member",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const member = memberOf(server.endpoints[0])
        const p = uniquePrefix("ping")
        yield* Kv.put(`${p}k`, "before")
        const [timeouts, error] = yield* delta(
          names.keepAliveTimeouts,
          { "server.port": String(member.port) },
          Effect.scoped(Effect.gen(function*() {
            yield* Effect.acquireRelease(server.pause(0), () => server.resume(0))
            // a write that may have been sent is not sent again: one connection, one drop
            return yield* Effect.flip(Kv.put(`${p}k`, "during"))
          }))
        )
        expect(error._tag).toBe("AmbiguousOutcome")
        expect(timeouts).toBe(1)
        // the member answers again, on a new connection
        yield* Kv.put(`${p}k`, "after")
      }),
    60_000
  )

  it.effect(
    "a lease whose keepalives go unanswered is lost at its deadline, counted once as keepalive-timeout",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const held = total(yield* EtcdMetrics.snapshot, names.leasesHeld)
        const lease = yield* Lease.make("2 seconds")
        expect(total(yield* EtcdMetrics.snapshot, names.leasesHeld)).toBe(held + 1)
        const [lost, error] = yield* delta(
          names.leasesLost,
          { reason: "keepalive-timeout" },
          Effect.scoped(Effect.gen(function*() {
            yield* Effect.acquireRelease(server.pause(0), () => server.resume(0))
            return yield* Effect.flip(lease.lost)
          }))
        )
        expect(error.reason).toBe("keepalive-timeout")
        expect(lost).toBe(1)
        expect(total(yield* EtcdMetrics.snapshot, names.leasesHeld)).toBe(held)
      })),
    60_000
  )
})

layer(EtcdServer.layer({ members: 3 }), { excludeTestServices: true })("Metrics when a member dies", (it) => {
  it.effect(
    "two watchers on a member that is killed are resumed on another, each counted once",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("resume")
        const [resumes] = yield* delta(
          names.watchResumes,
          {},
          Effect.scoped(Effect.gen(function*() {
            // the member in use (the first to answer the client's probe) is made a follower:
            // the others keep a leader, so the new stream is neither refused nor canceled for
            // want of one, and opens once
            yield* Kv.put(`${p}start`, "0")
            const inUse = server.endpoints.indexOf(yield* Etcd.currentEndpoint)
            expect(inUse).toBeGreaterThanOrEqual(0)
            yield* notLeader(inUse)
            const watchers = yield* Effect.all([
              Watch.subscribe(KeyRange.prefix(`${p}w/`)),
              Watch.subscribe(KeyRange.prefix(`${p}w/`))
            ])
            // the watchers' stream is on that member
            expect(server.endpoints.indexOf(yield* Etcd.currentEndpoint)).toBe(inUse)
            const firstTwo = yield* Effect.forEach(
              watchers,
              (watcher) => Effect.fork(watcher.events.pipe(Stream.take(2), Stream.runCollect)),
              { concurrency: "unbounded" }
            )
            yield* Kv.put(`${p}w/before`, "1")
            yield* server.kill(inUse)
            // a put on the connection the kill is closing may be ambiguous: put again then
            yield* Kv.put(`${p}w/after`, "2").pipe(
              Effect.retry({ times: 5, while: (error) => error._tag === "AmbiguousOutcome" })
            )
            // both got an event put after the kill: their stream was opened again, once
            const seen = yield* Effect.forEach(
              firstTwo,
              (fiber) => Effect.map(Fiber.join(fiber), (events) => Chunk.toArray(events).map((event) => event.key))
            )
            expect(seen).toEqual([[`${p}w/before`, `${p}w/after`], [`${p}w/before`, `${p}w/after`]])
          })).pipe(
            Effect.provide(Layer.fresh(Etcd.layer({ ...faultClient, metrics: true, endpoints: server.endpoints })))
          )
        )
        expect(resumes).toBe(2)
      }),
    120_000
  )
})
