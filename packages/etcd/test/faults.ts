/**
 * What the fault tests share: the client settings they run with, what a write may fail with
 * while members die, moving the leadership off a member, revoking a lease from another client,
 * and the two workloads whose invariants they check (lock holders writing behind a fence,
 * candidates making leader-only writes). Each workload runs until `running` says stop, at
 * most 1,000 rounds a fiber, and keeps what happened for the test to assert on.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { Duration, Effect, Option } from "effect"
import type { EtcdError } from "effect-etcd"
import { Election, Etcd, KeyRange, Kv, Lease, Lock, Maintenance, Op, Txn } from "effect-etcd"
import { neverSent } from "../src/internal/transport/grpcError.js"

/** Client settings for a cluster whose members die: short deadlines, keepalive at etcd's 5 s minimum. */
export const faultClient = {
  requestTimeout: "2 seconds",
  connectTimeout: "5 seconds",
  // etcd refuses pings more often than every 5 s
  keepAliveTime: "5 seconds",
  keepAliveTimeout: "2 seconds"
} as const

/**
 * What a write may fail with while members die: AmbiguousOutcome when it may have reached a
 * member; otherwise only what proves it was not processed, once its retries or its deadline
 * ran out (no connection could be made, the member refused it; the cluster had no leader).
 */
export const writeFailureAllowed = (error: EtcdError.EtcdError): boolean =>
  error._tag === "AmbiguousOutcome" || (error._tag === "Unavailable" && neverSent(error)) ||
  (error._tag === "NoLeader" && error.reason === "no leader")

/** What a lock attempt or a campaign (their reads and waits included) may fail with while members die. */
export const attemptFaultTags: ReadonlySet<string> = new Set([
  "AmbiguousOutcome",
  "Timeout",
  "Unavailable",
  "NoLeader",
  "LockTimeout",
  "CampaignTimeout",
  "LeaseLost"
])

/** Hands the leadership away from member `index` when it has it, and waits until it has not. */
export const notLeader = (index: number) =>
  Effect.gen(function*() {
    const server = yield* EtcdServer.EtcdServer
    for (let attempt = 0; attempt < 50; attempt++) {
      const status = yield* Maintenance.status(server.endpoints[index])
      if (status.leader !== 0n && !status.isLeader) return
      if (status.isLeader) {
        const other = yield* Maintenance.status(server.endpoints[(index + 1) % server.endpoints.length])
        yield* Maintenance.moveLeader(other.memberId).pipe(Effect.ignore)
      }
      yield* Effect.sleep(Duration.millis(100))
    }
    return yield* Effect.dieMessage(`member ${index} still leads, or knows no leader, after 50 tries`)
  })

/**
 * Revokes lease `id` through a client of its own: the lease's holder is not told by its own
 * keepalive (the next one is a third of the TTL away), as when another process revokes it.
 */
export const revokeElsewhere = (id: bigint) =>
  Effect.flatMap(
    EtcdServer.EtcdServer,
    (server) => Lease.revoke(id).pipe(Effect.provide(Etcd.layer({ endpoints: server.endpoints })))
  )

/**
 * Lock holders on `${prefix}lock`: each, once inside, checks that the fence the holder before
 * it wrote is older than its own lock, writes its own with a compare on its ownership, and
 * holds a while. `maxInside` above 1 or any `fenceViolations` means two were inside at once.
 */
export const lockHolders = (prefix: string, options: {
  readonly running: Effect.Effect<boolean>
  readonly timeout: Duration.DurationInput
  readonly ttl: number
  readonly hold: Duration.DurationInput
}) => {
  const stats = {
    inside: 0,
    maxInside: 0,
    /** Each holder's lock revision, in the order they got in. */
    fencing: [] as Array<bigint>,
    fenceViolations: [] as Array<string>,
    /** The tags of the attempts that failed. */
    failures: [] as Array<string>
  }
  const holder = Effect.gen(function*() {
    for (let round = 0; round < 1_000 && (yield* options.running); round++) {
      const result = yield* Effect.either(Effect.scoped(Effect.gen(function*() {
        const lock = yield* Lock.make(`${prefix}lock`, { timeout: options.timeout, ttl: options.ttl })
        stats.inside++
        stats.maxInside = Math.max(stats.maxInside, stats.inside)
        yield* lock.guard(Effect.gen(function*() {
          const fence = yield* Kv.get(`${prefix}fence`)
          if (Option.isSome(fence) && BigInt(fence.value) >= lock.revision) {
            stats.fenceViolations.push(`fence ${fence.value} >= holder ${lock.revision}`)
          }
          stats.fencing.push(lock.revision)
          yield* Txn.txnCompare([lock.isOwner], [Op.put(`${prefix}fence`, lock.revision.toString())])
          yield* Effect.sleep(options.hold)
        })).pipe(Effect.ensuring(Effect.sync(() => stats.inside--)))
      })))
      if (result._tag === "Left") {
        stats.failures.push(result.left._tag)
        yield* Effect.sleep(Duration.millis(100))
      }
    }
  })
  return { holder, stats }
}

/**
 * Candidates for `${prefix}election`: each leader makes four leader-only writes under
 * `${prefix}writes/`, each naming its leadership's revision and landing only while that
 * leadership's key is there. `landedWrites` reads them back in the order etcd applied them.
 */
export const candidates = (prefix: string, options: { readonly running: Effect.Effect<boolean> }) => {
  const name = `${prefix}election`
  const stats = {
    /** Each leadership's revision, in the order they were won. */
    wins: [] as Array<bigint>,
    /** Leader-only writes acknowledged as applied. */
    guardedWrites: 0,
    /** Leader-only writes whose outcome is unknown: they may have landed. */
    ambiguousWrites: 0,
    /** How the leader-only writes that failed failed. */
    writeFailures: [] as Array<EtcdError.EtcdError>,
    /** The tags of the campaigns that failed. */
    failures: [] as Array<string>
  }
  const candidate = (id: string) =>
    Effect.gen(function*() {
      for (let round = 0; round < 1_000 && (yield* options.running); round++) {
        const result = yield* Effect.either(Effect.scoped(Effect.gen(function*() {
          const leadership = yield* Election.campaign(name, id, { ttl: 3, timeout: "8 seconds" })
          stats.wins.push(leadership.revision)
          yield* leadership.guard(Effect.gen(function*() {
            for (let i = 0; i < 4; i++) {
              const write = yield* Effect.either(Txn.txnCompare(
                [leadership.isLeader],
                [Op.put(`${prefix}writes/${id}/${round}-${i}`, leadership.revision.toString())]
              ))
              if (write._tag === "Right" && write.right.succeeded) stats.guardedWrites++
              else if (write._tag === "Left") {
                stats.writeFailures.push(write.left)
                if (write.left._tag === "AmbiguousOutcome") stats.ambiguousWrites++
              }
              yield* Effect.sleep(Duration.millis(40))
            }
          }))
        })))
        if (result._tag === "Left") {
          stats.failures.push(result.left._tag)
          yield* Effect.sleep(Duration.millis(100))
        }
      }
    })
  const landedWrites = Effect.map(
    Kv.range(KeyRange.prefix(`${prefix}writes/`), { sortTarget: "mod", sortOrder: "ascend" }),
    (range) => range.kvs.map((kv) => BigInt(kv.value))
  )
  return { name, candidate, stats, landedWrites }
}
