/**
 * A 3-member cluster under faults: the member in use killed and restarted, then the
 * leader killed and restarted, while writers, a watcher, lock holders and a lease holder
 * run; and a member paused with SIGSTOP. Every loop is bounded; all traffic is loopback.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Option, Ref, Stream } from "effect"
import { Etcd, EtcdError, KeyRange, Kv, Lease, Watch } from "effect-etcd"
import { attemptFaultTags, faultClient, lockHolders, writeFailureAllowed } from "./faults.js"
import { uniquePrefix, withServer } from "./support.js"

/**
 * A client of a test's own: a fault test that pauses "the member in use" needs that member
 * to stay the one in use between the pause and the call, which a stream or call left by an
 * earlier test (a keepalive stream lingering after its last lease, say) could change.
 */
const ownClient = Layer.unwrapEffect(
  Effect.map(EtcdServer.EtcdServer, (server) => Etcd.layer({ ...faultClient, endpoints: server.endpoints }))
)

const memberInUse = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  const index = server.endpoints.indexOf(yield* Etcd.currentEndpoint)
  expect(index).toBeGreaterThanOrEqual(0)
  return index
})

const leader = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  for (let attempt = 0; attempt < 300; attempt++) {
    for (let index = 0; index < server.members.length; index++) {
      const isLeader = yield* server.metric(index, "etcd_server_is_leader").pipe(Effect.orElseSucceed(() => 0))
      if (isLeader === 1) return index
    }
    yield* Effect.sleep(Duration.millis(100))
  }
  return yield* Effect.dieMessage("no leader within 30 s")
})

interface Ack {
  readonly key: string
  readonly value: string
  readonly revision: bigint
}

layer(withServer({ members: 3 }, faultClient), { excludeTestServices: true })("3-member cluster", (it) => {
  it.scoped(
    "writers, a watcher, lock holders and a lease survive killing the member in use and the leader",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("chaos")
        const stopped = yield* Ref.make(false)
        const running = Effect.map(Ref.get(stopped), (s) => !s)

        // the watcher: every write under w/, in revision order; created before the first write
        const seen: Array<bigint> = []
        const watcher = yield* Watch.subscribe(KeyRange.prefix(`${p}w/`))
        const watching = yield* Effect.fork(
          Stream.runForEach(watcher.events, (event) => Effect.sync(() => seen.push(event.revision)))
        )

        // writers: unique keys, so that every landed write is one revision under w/
        const acks: Array<Ack> = []
        const writeFailures: Array<EtcdError.EtcdError> = []
        const writer = (name: string) =>
          Effect.gen(function*() {
            for (let seq = 0; seq < 5_000 && (yield* running); seq++) {
              const key = `${p}w/${name}/${String(seq).padStart(5, "0")}`
              const value = `${name}-${seq}`
              const result = yield* Effect.either(Kv.put(key, value))
              if (result._tag === "Right") acks.push({ key, value, revision: result.right.revision })
              else writeFailures.push(result.left)
              yield* Effect.sleep(Duration.millis(20))
            }
          })

        // lock holders: never two inside, and each sees the fence of the one before
        const locks = lockHolders(p, { running, timeout: "15 seconds", ttl: "5 seconds", hold: Duration.millis(50) })

        const lease = yield* Lease.make("5 seconds")
        yield* Kv.put(`${p}leased`, "alive", { lease })

        const workers = yield* Effect.fork(
          Effect.all([writer("a"), writer("b"), locks.holder, locks.holder], {
            concurrency: "unbounded",
            discard: true
          })
        )

        // the faults: the member in use dies and comes back, then the leader
        yield* Effect.sleep(Duration.seconds(2))
        const inUse = yield* memberInUse
        yield* server.kill(inUse)
        yield* Effect.sleep(Duration.seconds(5))
        yield* server.start(inUse)
        yield* Effect.sleep(Duration.seconds(4))
        const leaderIndex = yield* leader
        yield* server.kill(leaderIndex)
        yield* Effect.sleep(Duration.seconds(5))
        yield* server.start(leaderIndex)
        yield* Effect.sleep(Duration.seconds(4))

        yield* Ref.set(stopped, true)
        yield* Fiber.join(workers)

        // every acknowledged write is readable
        const stored = yield* Kv.getPrefix(`${p}w/`)
        const unreadable = acks.filter((ack) => stored.get(ack.key) !== ack.value)
        expect(unreadable).toEqual([])
        expect(acks.length).toBeGreaterThan(100)
        expect(writeFailures.filter((error) => !writeFailureAllowed(error)).map((error) => error.message)).toEqual([])

        // the watcher saw every revision under w/ (ambiguous writes that landed included), once, in order
        const all = (yield* Kv.range(KeyRange.prefix(`${p}w/`), { sortTarget: "mod", sortOrder: "ascend" })).kvs
          .map((kv) => kv.modRevision)
        for (let attempt = 0; attempt < 300 && seen.length < all.length; attempt++) {
          yield* Effect.sleep(Duration.millis(100))
        }
        yield* Fiber.interrupt(watching)
        expect(seen).toEqual(all)

        // locks: exclusive, fenced, and they kept working
        const { fencing } = locks.stats
        expect(locks.stats.maxInside).toBe(1)
        expect(locks.stats.fenceViolations).toEqual([])
        expect(fencing.length).toBeGreaterThan(5)
        expect(fencing.every((revision, i) => i === 0 || revision > fencing[i - 1])).toBe(true)
        expect(locks.stats.failures.filter((tag) => !attemptFaultTags.has(tag))).toEqual([])

        // the lease stayed alive all along
        expect(yield* lease.isLost).toBe(false)
        expect((yield* Lease.timeToLive(lease.id)).ttl).toBeGreaterThan(0)
        expect(yield* Kv.get(`${p}leased`)).toEqual(Option.some("alive"))
      }),
    120_000
  )

  it.effect("a member paused with SIGSTOP does not stall the client past its deadline", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("paused")
      yield* Kv.put(`${p}k`, "before")
      const paused = yield* memberInUse
      yield* server.pause(paused)
      yield* Effect.gen(function*() {
        // a read is retried on another member once its deadline passes
        expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("before"))
        expect(yield* Etcd.currentEndpoint).not.toBe(server.endpoints[paused])
        // a write goes to a live member now
        const put = yield* Kv.put(`${p}k`, "during")
        expect(put.revision).toBeGreaterThan(0n)
        expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("during"))
      }).pipe(Effect.ensuring(server.resume(paused)))
    }).pipe(Effect.provide(ownClient)), 60_000)

  it.effect(
    "a lease whose keepalive stream's member is paused is kept alive on another member",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        yield* Effect.scoped(Effect.gen(function*() {
          const lease = yield* Lease.make("4 seconds")
          const paused = yield* memberInUse
          yield* server.pause(paused)
          yield* Effect.gen(function*() {
            // past the TTL: only keepalives answered by another member kept it
            yield* Effect.sleep(Duration.seconds(6))
            expect(yield* lease.isLost).toBe(false)
            expect((yield* Lease.timeToLive(lease.id)).ttl).toBeGreaterThan(0)
          }).pipe(Effect.ensuring(server.resume(paused)))
        }))
      }).pipe(Effect.provide(ownClient)),
    60_000
  )

  it.effect(
    "a write whose deadline passes on a paused member is AmbiguousOutcome, never retried blindly",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("ambiguous")
        const outcome = yield* Effect.gen(function*() {
          const paused = yield* memberInUse
          yield* server.pause(paused)
          const before = yield* Etcd.currentEndpoint
          const started = Date.now()
          const exit = yield* Effect.exit(Kv.put(`${p}k`, "maybe")).pipe(Effect.ensuring(server.resume(paused)))
          const elapsed = Date.now() - started
          const now = yield* Etcd.currentEndpoint
          return { paused: server.endpoints[paused], exit, elapsed, before, now }
        }).pipe(Effect.provide(ownClient))
        // what happened, said whole when it is not what was expected
        const error = Exit.isFailure(outcome.exit) ? Cause.failureOption(outcome.exit.cause) : Option.none()
        const said = Option.match(error, {
          onNone: () =>
            Exit.isSuccess(outcome.exit)
              ? `applied at revision ${outcome.exit.value.revision} after ${outcome.elapsed} ms (paused: ${outcome.paused}, ` +
                `member in use before the call: ${outcome.before}, after it: ${outcome.now})`
              : `died: ${Cause.pretty((outcome.exit as Exit.Failure<unknown, unknown>).cause)}`,
          onSome: (error) =>
            error._tag === "AmbiguousOutcome" && error.cause._tag === "EtcdTimeout"
              ? `AmbiguousOutcome after an EtcdTimeout at ${error.cause.endpoint}`
              : `${error._tag} after ${outcome.elapsed} ms: ${error.message}`
        })
        // the message repeats what happened whole (the assertion's own shortens long strings)
        expect(said, said).toBe(`AmbiguousOutcome after an EtcdTimeout at ${outcome.paused}`)
        expect(Option.exists(error, (error) => EtcdError.isEtcdError(error) && !error.isRetryable)).toBe(true)
      }),
    60_000
  )
})
