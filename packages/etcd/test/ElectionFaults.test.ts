/**
 * Elections on a 3-member cluster under faults: candidates campaign in a loop and write
 * under their leadership guard while the member in use is killed and restarted and then
 * another is paused with SIGSTOP. Bounded to about 20 s; all traffic is loopback.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Option } from "effect"
import { Election, Etcd, Kv } from "effect-etcd"
import { readFileSync } from "node:fs"
import { attemptFaultTags, candidates, faultClient, notLeader, writeFailureAllowed } from "./faults.js"
import { uniquePrefix, withServer } from "./support.js"

layer(withServer({ members: 3 }, faultClient), { excludeTestServices: true })("Election under faults", (it) => {
  it.effect(
    "leader-only writes never come from two leaders at once, and leaderships' revisions increase",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        let running = true
        const { candidate, landedWrites, name, stats } = candidates(uniquePrefix("election-faults"), {
          running: Effect.sync(() => running)
        })
        const campaigning = yield* Effect.fork(
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
        yield* Fiber.join(campaigning)

        // every landed leader-only write, in the order etcd applied them, names its leadership:
        // once a newer leadership has written, no older one ever writes again
        const writes = yield* landedWrites
        // every acknowledged write landed, and of the others only some whose outcome was unknown
        expect(writes.length - stats.guardedWrites).toBeGreaterThanOrEqual(0)
        expect(writes.length - stats.guardedWrites).toBeLessThanOrEqual(stats.ambiguousWrites)
        const interleaved = writes.filter((revision, i) => i > 0 && revision < writes[i - 1])
        expect(interleaved).toEqual([])
        // leaderships follow each other with strictly increasing revisions
        expect(stats.wins.every((revision, i) => i === 0 || revision > stats.wins[i - 1])).toBe(true)
        const leaderships = new Set(writes)
        expect(leaderships.size).toBeGreaterThan(3)
        expect(stats.failures.filter((tag) => !attemptFaultTags.has(tag))).toEqual([])
        expect(stats.writeFailures.filter((error) => !writeFailureAllowed(error)).map((error) => error.message))
          .toEqual([])
        // nothing is left behind once every candidate stopped
        expect(yield* Election.leader(name)).toEqual(Option.none())
      }),
    60_000
  )

  it.scoped(
    "a candidate whose watch sits on a paused member leads while that member is still paused",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        yield* Effect.addFinalizer(() => Effect.forEach([0, 1, 2], (index) => server.resume(index), { discard: true }))
        const name = `${uniquePrefix("handover")}election`
        // the candidate's connection PINGs at their defaults (every 10 s, 5 s to answer): they
        // alone would leave a paused member 5 to 15 s after it stopped
        const candidateClient = yield* Etcd.make({
          endpoints: server.endpoints,
          ...faultClient,
          keepAliveTime: "10 seconds",
          keepAliveTimeout: "5 seconds"
        })
        const leaderClient = yield* Etcd.make({ endpoints: server.endpoints, ...faultClient })
        const leading = yield* Election.campaign(name, "old", { ttl: "10 seconds" }).pipe(
          Effect.provideService(Etcd.Etcd, leaderClient)
        )
        const campaigning = yield* Election.campaign(name, "new", { ttl: "10 seconds", timeout: "30 seconds" }).pipe(
          Effect.provideService(Etcd.Etcd, candidateClient),
          Effect.forkScoped
        )
        // the member serving the candidate's watch (the only watch of the cluster): polled, bounded
        let paused = -1
        for (let poll = 0; poll < 600 && paused < 0; poll++) {
          for (const index of [0, 1, 2]) {
            if (paused < 0 && (yield* server.metric(index, "etcd_debugging_mvcc_watch_stream_total")) > 0) {
              paused = index
            }
          }
          if (paused < 0) yield* Effect.sleep(Duration.millis(50))
        }
        expect(paused).toBeGreaterThanOrEqual(0)
        const others = [0, 1, 2].filter((index) => index !== paused)
        const healthy = yield* Etcd.make({ endpoints: others.map((index) => server.endpoints[index]), ...faultClient })
        // the raft leader moves away first: the old leader's resignation then needs no election
        yield* notLeader(paused).pipe(Effect.provideService(Etcd.Etcd, healthy))

        yield* server.pause(paused)
        const pausedAt = Date.now()
        // the old leader resigns: its key is deleted through the healthy members
        yield* Kv.delete(leading.key).pipe(Effect.provideService(Etcd.Etcd, healthy))
        const resignedAt = Date.now()
        // the pause lasts 6 s at most (the brief's faults paused for 3 to 8 s)
        const won = yield* Fiber.join(campaigning).pipe(
          Effect.timeout(Duration.millis(Math.max(0, 6_000 - (resignedAt - pausedAt)))),
          Effect.option
        )
        const wonAt = Date.now()
        // the member was stopped (state T) when the candidate won: it leads without it
        const pid = Option.getOrThrow(yield* server.pid(paused))
        const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0]
        yield* server.resume(paused)
        expect(Option.isSome(won)).toBe(true)
        expect(state).toBe("T")
        const leader = yield* Election.leader(name).pipe(Effect.provideService(Etcd.Etcd, healthy))
        expect(Option.map(leader, (leader) => leader.value)).toEqual(Option.some("new"))
        yield* Effect.log("handover under a paused member").pipe(Effect.annotateLogs({
          pausedMember: paused,
          handoverMs: wonAt - resignedAt,
          resignedMsAfterPause: resignedAt - pausedAt
        }))
      }),
    60_000
  )
})
