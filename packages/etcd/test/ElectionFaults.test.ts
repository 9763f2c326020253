/**
 * Elections on a 3-member cluster under faults: candidates campaign in a loop and write
 * under their leadership guard while the member in use is killed and restarted and then
 * another is paused with SIGSTOP. Bounded to about 20 s; all traffic is loopback.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Option } from "effect"
import { Election, Etcd } from "effect-etcd"
import { attemptFaultTags, candidates, faultClient, writeFailureAllowed } from "./faults.js"
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
})
