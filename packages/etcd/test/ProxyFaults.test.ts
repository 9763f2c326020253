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
import { Election, Etcd } from "effect-etcd"
import { attemptFaultTags, candidates, faultClient, lockHolders, writeFailureAllowed } from "./faults.js"
import { uniquePrefix } from "./support.js"

/** A 3-member cluster, and a client of two gRPC proxies in front of it (or of the members themselves). */
const cluster = (through: "grpc-proxy" | "direct") =>
  Layer.provideMerge(
    Layer.unwrapScoped(Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      if (through === "direct") return Etcd.layer({ ...faultClient, endpoints: server.endpoints })
      const proxies = yield* Effect.all(
        [0, 1].map(() => EtcdProxy.make({ kind: "grpc-proxy", endpoints: server.endpoints })),
        { concurrency: "unbounded" }
      ).pipe(Effect.provide(NodeContext.layer))
      return Etcd.layer({ ...faultClient, endpoints: proxies.flatMap((proxy) => proxy.endpoints) })
    })),
    EtcdServer.layer({ members: 3 })
  )

const faultRun = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  const p = uniquePrefix("proxy-faults")
  let running = true
  const options = { running: Effect.sync(() => running) }
  const locks = lockHolders(p, { ...options, timeout: "8 seconds", ttl: "3 seconds", hold: Duration.millis(40) })
  const election = candidates(p, options)

  const workers = yield* Effect.fork(
    Effect.all([locks.holder, locks.holder, ...["a", "b", "c"].map(election.candidate)], {
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

  const writes = yield* election.landedWrites
  const { fencing } = locks.stats
  const { wins } = election.stats
  const attemptFailures = [...locks.stats.failures, ...election.stats.failures]
  const counts = {
    lockAcquisitions: fencing.length,
    electionTerms: wins.length,
    guardedWrites: election.stats.guardedWrites,
    failures: attemptFailures.length + election.stats.writeFailures.length,
    timeouts: attemptFailures.filter((tag) => tag === "LockTimeout" || tag === "CampaignTimeout").length
  }
  yield* Effect.log("fault run").pipe(Effect.annotateLogs(counts))
  return {
    counts,
    violations: {
      // never two lock holders, and every holder saw the fence of the one before
      twoInside: locks.stats.maxInside > 1,
      fenceViolations: locks.stats.fenceViolations,
      unorderedLocks: fencing.filter((revision, i) => i > 0 && revision <= fencing[i - 1]),
      // once a newer leadership has written, no older one ever writes again
      interleavedLeaders: writes.filter((revision, i) => i > 0 && revision < writes[i - 1]),
      unorderedTerms: wins.filter((revision, i) => i > 0 && revision <= wins[i - 1]),
      // every acknowledged write landed, and of the others only some whose outcome was unknown
      lostWrites: writes.length < election.stats.guardedWrites,
      unexplainedWrites: writes.length - election.stats.guardedWrites > election.stats.ambiguousWrites,
      unexpectedFailures: [
        ...attemptFailures.filter((tag) => !attemptFaultTags.has(tag)),
        ...election.stats.writeFailures.filter((error) => !writeFailureAllowed(error)).map((error) => error.message)
      ]
    },
    leftBehind: yield* Election.leader(election.name)
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

/** The run, and what must hold of it: no violation, and locks and elections go on. */
const noViolationsAndProgress = Effect.gen(function*() {
  const { counts, leftBehind, violations } = yield* faultRun
  expect(violations).toEqual(noViolations)
  expect(counts.lockAcquisitions).toBeGreaterThan(5)
  expect(counts.electionTerms).toBeGreaterThan(3)
  expect(leftBehind).toEqual(Option.none())
})

layer(cluster("grpc-proxy"), { excludeTestServices: true })("Locks and elections through two grpc-proxies", (it) => {
  it.effect(
    "members killed and paused behind the proxies: no violation, and locks and elections go on",
    () => noViolationsAndProgress,
    60_000
  )
})

// the comparison, when asked for: it adds a 3-member cluster and 20 s to the run
if (process.env.EFFECT_ETCD_PROXY_FAULTS_DIRECT === "1") {
  layer(cluster("direct"), { excludeTestServices: true })("Locks and elections, the same run direct", (it) => {
    it.effect(
      "members killed and paused: no violation, and locks and elections go on",
      () => noViolationsAndProgress,
      60_000
    )
  })
}
