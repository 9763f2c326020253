/**
 * Locks and elections on a 3-member cluster reached through two `etcd grpc-proxy` processes
 * (the client knows only the proxies), while members behind them are killed, restarted and
 * paused with SIGSTOP: never two lock holders or two leaders writing at once, and both keep
 * making progress. The same run without the proxies is there for comparison
 * (`EFFECT_ETCD_PROXY_FAULTS_DIRECT=1`); each run logs its counts. Bounded to about 20 s; all
 * traffic is loopback.
 */
import { EtcdProxy, EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option } from "effect"
import { Election, Etcd, KeyRange, Kv, Lock, Op, Txn } from "effect-etcd"
import { uniquePrefix } from "./support.js"

const client = {
  requestTimeout: "2 seconds",
  connectTimeout: "5 seconds",
  keepAliveTime: "5 seconds",
  keepAliveTimeout: "2 seconds"
} as const

/** What a lock attempt, a campaign or a guarded write may fail with while members die: never anything else. */
const faultTags: ReadonlySet<string> = new Set([
  "AmbiguousOutcome",
  "Timeout",
  "Unavailable",
  "NoLeader",
  "LockTimeout",
  "CampaignTimeout",
  "LeaseLost"
])

/** A 3-member cluster, and a client of two gRPC proxies in front of it (or of the members themselves). */
const cluster = (through: "grpc-proxy" | "direct") =>
  Layer.provideMerge(
    Layer.unwrapScoped(Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      if (through === "direct") return Etcd.layer({ ...client, endpoints: server.endpoints })
      const proxies = yield* Effect.all(
        [0, 1].map(() => EtcdProxy.make({ kind: "grpc-proxy", endpoints: server.endpoints })),
        { concurrency: "unbounded" }
      ).pipe(Effect.provide(NodeContext.layer))
      return Etcd.layer({ ...client, endpoints: proxies.flatMap((proxy) => proxy.endpoints) })
    })),
    EtcdServer.layer({ members: 3 })
  )

const faultRun = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  const p = uniquePrefix("proxy-faults")
  let running = true
  const failures: Array<string> = []

  // lock holders: never two inside, and each sees the fence of the one before
  let inside = 0
  let maxInside = 0
  const fencing: Array<bigint> = []
  const fenceViolations: Array<string> = []
  const holder = Effect.gen(function*() {
    for (let round = 0; round < 1_000 && running; round++) {
      const result = yield* Effect.either(Effect.scoped(Effect.gen(function*() {
        const lock = yield* Lock.make(`${p}lock`, { timeout: "8 seconds", ttl: 3 })
        inside++
        maxInside = Math.max(maxInside, inside)
        yield* lock.guard(Effect.gen(function*() {
          const fence = yield* Kv.get(`${p}fence`)
          if (Option.isSome(fence) && BigInt(fence.value) >= lock.revision) {
            fenceViolations.push(`fence ${fence.value} >= holder ${lock.revision}`)
          }
          fencing.push(lock.revision)
          yield* Txn.txnCompare([lock.isOwner], [Op.put(`${p}fence`, lock.revision.toString())])
          yield* Effect.sleep(Duration.millis(40))
        })).pipe(Effect.ensuring(Effect.sync(() => inside--)))
      })))
      if (result._tag === "Left") {
        failures.push(result.left._tag)
        yield* Effect.sleep(Duration.millis(100))
      }
    }
  })

  // candidates: leader-only writes, each naming its leadership
  const name = `${p}election`
  const wins: Array<bigint> = []
  let guardedWrites = 0
  let ambiguousWrites = 0
  const candidate = (id: string) =>
    Effect.gen(function*() {
      for (let round = 0; round < 1_000 && running; round++) {
        const result = yield* Effect.either(Effect.scoped(Effect.gen(function*() {
          const leadership = yield* Election.campaign(name, id, { ttl: 3, timeout: "8 seconds" })
          wins.push(leadership.revision)
          yield* leadership.guard(Effect.gen(function*() {
            for (let i = 0; i < 4; i++) {
              const write = yield* Effect.either(Txn.txnCompare(
                [leadership.isLeader],
                [Op.put(`${p}writes/${id}/${round}-${i}`, leadership.revision.toString())]
              ))
              if (write._tag === "Right" && write.right.succeeded) guardedWrites++
              else if (write._tag === "Left") {
                failures.push(write.left._tag)
                if (write.left._tag === "AmbiguousOutcome") ambiguousWrites++
              }
              yield* Effect.sleep(Duration.millis(40))
            }
          }))
        })))
        if (result._tag === "Left") {
          failures.push(result.left._tag)
          yield* Effect.sleep(Duration.millis(100))
        }
      }
    })

  const workers = yield* Effect.fork(
    Effect.all([holder, holder, candidate("a"), candidate("b"), candidate("c")], {
      concurrency: "unbounded",
      discard: true
    })
  )

  // the faults, behind the proxies: a member dies and comes back, then another is frozen
  // for longer than the leases' TTL
  yield* Effect.sleep(Duration.seconds(2))
  yield* server.kill(0)
  yield* Effect.sleep(Duration.seconds(4))
  yield* server.start(0)
  yield* Effect.sleep(Duration.seconds(2))
  yield* server.pause(1)
  yield* Effect.sleep(Duration.seconds(4)).pipe(Effect.ensuring(server.resume(1)))
  yield* Effect.sleep(Duration.seconds(3))
  running = false
  yield* Fiber.join(workers)

  const writes = (yield* Kv.range(KeyRange.prefix(`${p}writes/`), { sortTarget: "mod", sortOrder: "ascend" }))
    .kvs.map((kv) => BigInt(kv.value))
  const counts = {
    lockAcquisitions: fencing.length,
    electionTerms: wins.length,
    guardedWrites,
    failures: failures.length,
    timeouts: failures.filter((tag) => tag === "LockTimeout" || tag === "CampaignTimeout").length
  }
  yield* Effect.log("fault run").pipe(Effect.annotateLogs(counts))
  return {
    counts,
    violations: {
      // never two lock holders, and every holder saw the fence of the one before
      twoInside: maxInside > 1,
      fenceViolations,
      unorderedLocks: fencing.filter((revision, i) => i > 0 && revision <= fencing[i - 1]),
      // once a newer leadership has written, no older one ever writes again
      interleavedLeaders: writes.filter((revision, i) => i > 0 && revision < writes[i - 1]),
      unorderedTerms: wins.filter((revision, i) => i > 0 && revision <= wins[i - 1]),
      // every acknowledged write landed, and of the others only some whose outcome was unknown
      lostWrites: writes.length < guardedWrites,
      unexplainedWrites: writes.length - guardedWrites > ambiguousWrites,
      unexpectedFailures: failures.filter((tag) => !faultTags.has(tag))
    },
    leftBehind: yield* Election.leader(name)
  }
})

const noViolations = {
  twoInside: false,
  fenceViolations: [],
  unorderedLocks: [],
  interleavedLeaders: [],
  unorderedTerms: [],
  lostWrites: false,
  unexplainedWrites: false,
  unexpectedFailures: []
}

layer(cluster("grpc-proxy"), { excludeTestServices: true })("Locks and elections through two grpc-proxies", (it) => {
  it.effect(
    "members killed and paused behind the proxies: no violation, and locks and elections go on",
    () =>
      Effect.gen(function*() {
        const { counts, leftBehind, violations } = yield* faultRun
        expect(violations).toEqual(noViolations)
        expect(counts.lockAcquisitions).toBeGreaterThan(5)
        expect(counts.electionTerms).toBeGreaterThan(3)
        expect(leftBehind).toEqual(Option.none())
      }),
    60_000
  )
})

// the comparison, when asked for: it adds a 3-member cluster and 20 s to the run
if (process.env.EFFECT_ETCD_PROXY_FAULTS_DIRECT === "1") {
  layer(cluster("direct"), { excludeTestServices: true })("Locks and elections, the same run direct", (it) => {
    it.effect(
      "members killed and paused: no violation, and locks and elections go on",
      () =>
        Effect.gen(function*() {
          const { counts, leftBehind, violations } = yield* faultRun
          expect(violations).toEqual(noViolations)
          expect(counts.lockAcquisitions).toBeGreaterThan(5)
          expect(counts.electionTerms).toBeGreaterThan(3)
          expect(leftBehind).toEqual(Option.none())
        }),
      60_000
    )
  })
}
