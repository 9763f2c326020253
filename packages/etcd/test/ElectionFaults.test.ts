/**
 * Elections on a 3-member cluster under faults: candidates campaign in a loop and write
 * under their leadership guard while the member in use is killed and restarted and then
 * another is paused with SIGSTOP. Bounded to about 20 s; all traffic is loopback.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Option } from "effect"
import type { EtcdError } from "effect-etcd"
import { Election, Etcd, KeyRange, Kv, Op, Txn } from "effect-etcd"
import { neverSent } from "../src/internal/grpcError.js"
import { uniquePrefix, withServer } from "./support.js"

const client = {
  requestTimeout: "2 seconds",
  connectTimeout: "5 seconds",
  keepAliveTime: "5 seconds",
  keepAliveTimeout: "2 seconds"
} as const

/**
 * What a guarded write may fail with while members die: AmbiguousOutcome when it may have
 * reached a member; otherwise only what proves it was not processed, once its retries or
 * its deadline ran out (no connection could be made, the member refused it; no leader).
 */
const writeFailureAllowed = (error: EtcdError.EtcdError): boolean =>
  error._tag === "AmbiguousOutcome" || (error._tag === "Unavailable" && neverSent(error)) ||
  (error._tag === "NoLeader" && error.reason === "no leader")

/** What a campaign may fail with while members die: never anything else. */
const faultTags: ReadonlySet<string> = new Set([
  "AmbiguousOutcome",
  "Timeout",
  "Unavailable",
  "NoLeader",
  "CampaignTimeout",
  "LeaseLost"
])

layer(withServer({ members: 3 }, client), { excludeTestServices: true })("Election under faults", (it) => {
  it.effect(
    "leader-only writes never come from two leaders at once, and leaderships' revisions increase",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("election-faults")
        const name = `${p}election`
        let running = true
        const wins: Array<bigint> = []
        const failures: Array<string> = []
        const writeFailures: Array<EtcdError.EtcdError> = []
        let guardedWrites = 0
        // a write whose outcome is unknown may have landed (the member may run it when it comes back)
        let ambiguousWrites = 0

        const candidate = (id: string) =>
          Effect.gen(function*() {
            for (let round = 0; round < 1_000 && running; round++) {
              const result = yield* Effect.either(Effect.scoped(Effect.gen(function*() {
                const leadership = yield* Election.campaign(name, id, { ttl: 3, timeout: "8 seconds" })
                wins.push(leadership.revision)
                yield* leadership.guard(Effect.gen(function*() {
                  for (let i = 0; i < 4; i++) {
                    // the leader-only write: lands only while this leadership's key is there
                    const write = yield* Effect.either(Txn.txnCompare(
                      [leadership.isLeader],
                      [Op.put(`${p}writes/${id}/${round}-${i}`, leadership.revision.toString())]
                    ))
                    if (write._tag === "Right" && write.right.succeeded) guardedWrites++
                    else if (write._tag === "Left") {
                      writeFailures.push(write.left)
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

        const candidates = yield* Effect.fork(
          Effect.all(["a", "b", "c"].map(candidate), { concurrency: "unbounded", discard: true })
        )

        yield* Effect.sleep(Duration.seconds(2))
        // the member in use dies and comes back
        const server0 = server.endpoints.indexOf(yield* Etcd.currentEndpoint)
        yield* server.kill(server0)
        yield* Effect.sleep(Duration.seconds(4))
        yield* server.start(server0)
        yield* Effect.sleep(Duration.seconds(2))
        // then the member in use is frozen for longer than the leases' TTL
        const paused = server.endpoints.indexOf(yield* Etcd.currentEndpoint)
        yield* server.pause(paused)
        yield* Effect.sleep(Duration.seconds(4)).pipe(Effect.ensuring(server.resume(paused)))
        yield* Effect.sleep(Duration.seconds(3))
        running = false
        yield* Fiber.join(candidates)

        // every landed leader-only write, in the order etcd applied them, names its leadership:
        // once a newer leadership has written, no older one ever writes again
        const writes = (yield* Kv.range(KeyRange.prefix(`${p}writes/`), { sortTarget: "mod", sortOrder: "ascend" }))
          .kvs.map((kv) => BigInt(kv.value))
        // every acknowledged write landed, and of the others only some whose outcome was unknown
        expect(writes.length - guardedWrites).toBeGreaterThanOrEqual(0)
        expect(writes.length - guardedWrites).toBeLessThanOrEqual(ambiguousWrites)
        const interleaved = writes.filter((revision, i) => i > 0 && revision < writes[i - 1])
        expect(interleaved).toEqual([])
        // leaderships follow each other with strictly increasing revisions
        expect(wins.every((revision, i) => i === 0 || revision > wins[i - 1])).toBe(true)
        const leaderships = new Set(writes)
        expect(leaderships.size).toBeGreaterThan(3)
        expect(failures.filter((tag) => !faultTags.has(tag))).toEqual([])
        expect(writeFailures.filter((error) => !writeFailureAllowed(error)).map((error) => error.message)).toEqual([])
        // nothing is left behind once every candidate stopped
        expect(yield* Election.leader(name)).toEqual(Option.none())
      }),
    60_000
  )
})
