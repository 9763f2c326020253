/**
 * The example of @effect-etcd/testing's README, as a user's first test runs it: kill a
 * follower of a 3-member cluster, then put. The put must succeed every time. Then the
 * harder case, round after round: the member the client is using dies right before a put.
 * The put goes to it, is found never processed (its connection was gone before the request
 * was written, or a new one is refused) and is sent again to another member.
 *
 * The member that dies is made a follower first. When the leader itself dies, a follower
 * forwards the put to it and etcd answers "request timed out" only after its own request
 * timeout (6 s with these members): a write whose outcome etcd cannot tell, reported as
 * AmbiguousOutcome by any client. That is not what the example is about.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import { Etcd, Kv } from "effect-etcd"
import { notLeader } from "./faults.js"

layer(EtcdServer.layerClient({ members: 3 }), { excludeTestServices: true })("the testing README's example", (it) => {
  it.effect("survives the loss of a member", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const follower = yield* server.follower
      yield* server.kill(follower)
      yield* Kv.put("k", "v")
      expect(yield* Kv.get("k")).toEqual(Option.some("v"))
      // not in the README: the next test wants every member
      yield* server.start(follower)
    }), 60_000)

  it.effect("a put right after the member in use dies succeeds, round after round", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const outcomes: Array<string> = []
      for (let round = 0; round < 5; round++) {
        // a client of its own, connected to every member, that has just used one
        const exit = yield* Effect.scoped(Effect.gen(function*() {
          const client = yield* Etcd.make({ endpoints: server.endpoints })
          const inUse = yield* Effect.gen(function*() {
            yield* Kv.put(`readme/${round}/warm`, "x")
            return server.endpoints.indexOf(yield* Etcd.currentEndpoint)
          }).pipe(Effect.provideService(Etcd.Etcd, client))
          yield* notLeader(inUse)
          yield* Kv.put(`readme/${round}/warm`, "y").pipe(Effect.provideService(Etcd.Etcd, client))
          yield* server.kill(inUse)
          const exit = yield* Effect.exit(
            Kv.put(`readme/${round}/k`, "v").pipe(Effect.provideService(Etcd.Etcd, client))
          )
          yield* server.start(inUse)
          return exit
        }))
        outcomes.push(Exit.isSuccess(exit) ? "ok" : String(exit.cause))
      }
      expect(outcomes).toEqual(outcomes.map(() => "ok"))
    }), 120_000)
})
