/** Cluster membership against real etcd: a learner added, started, promoted and removed. */
import { EtcdServer } from "@effect-etcd/testing"
import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option, Schedule } from "effect"
import { Cluster, Etcd, Kv, Maintenance } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

layer(withServer(), { excludeTestServices: true })("Cluster membership", (it) => {
  it.effect("members lists the running member with its URLs", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const members = yield* Cluster.members
      expect(members).toHaveLength(1)
      expect(members[0]).toMatchObject({
        name: server.members[0].name,
        peerUrls: [server.members[0].peerUrl],
        clientUrls: [server.members[0].clientUrl],
        isLearner: false
      })
      expect(members[0].id).toBe((yield* Maintenance.status()).memberId)
    }))

  it.scoped("a learner is added, started, promoted and removed", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const reserved = yield* server.reserveMember("learner")
      const { member, members } = yield* Cluster.addMember([reserved.peerUrl], { learner: true })
      // a failure below leaves no member behind for the next test (gone already: EtcdNotFound)
      yield* Effect.addFinalizer(() => Effect.ignore(Cluster.removeMember(member.id)))
      expect(member).toMatchObject({ name: "", peerUrls: [reserved.peerUrl], clientUrls: [], isLearner: true })
      expect(members.map((m) => m.id)).toContain(member.id)

      const extra = yield* server.startExtra(reserved, {
        initialCluster: `${server.members[0].name}=${server.members[0].peerUrl},${reserved.name}=${reserved.peerUrl}`,
        initialClusterState: "existing"
      })
      const started = (yield* Cluster.members).find((m) => m.id === member.id)
      expect(started).toMatchObject({ name: reserved.name, clientUrls: [reserved.clientUrl], isLearner: true })
      expect((yield* Maintenance.status(reserved.clientUrl)).isLearner).toBe(true)

      const promoted = yield* Cluster.promoteMember(member.id).pipe(
        Effect.retry({
          while: (error) => error._tag === "LearnerNotReady",
          schedule: Schedule.intersect(Schedule.spaced("200 millis"), Schedule.recurs(100))
        })
      )
      expect(promoted.find((m) => m.id === member.id)?.isLearner).toBe(false)
      // the member itself knows once it applied the promotion, a moment after the leader
      let status = yield* Maintenance.status(reserved.clientUrl)
      for (let attempt = 0; attempt < 100 && status.isLearner; attempt++) {
        yield* Effect.sleep("100 millis")
        status = yield* Maintenance.status(reserved.clientUrl)
      }
      expect(status.isLearner).toBe(false)
      // a voting member serves linearizable reads of the writes of the cluster
      const p = uniquePrefix("learner")
      yield* Kv.put(`${p}k`, "v")
      expect(yield* Kv.get(`${p}k`).pipe(Effect.provide(Etcd.layer({ endpoints: [reserved.clientUrl] })))).toEqual(
        Option.some("v")
      )
      expect((yield* Effect.flip(Cluster.promoteMember(member.id)))._tag).toBe("EtcdPreconditionFailed")

      const remaining = yield* Cluster.removeMember(member.id)
      expect(remaining.map((m) => m.id)).not.toContain(member.id)
      yield* extra.stop
      expect(yield* Cluster.members).toHaveLength(1)
      yield* Kv.put(`${p}after`, "still writable")
    }), 120_000)

  it.scoped("a member's peer URLs are updated; unknown members fail with EtcdNotFound", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const [first, second] = [yield* server.reserveMember("idle"), yield* server.reserveMember("moved")]
      const { member } = yield* Cluster.addMember(first.peerUrl, { learner: true })
      yield* Effect.addFinalizer(() => Effect.ignore(Cluster.removeMember(member.id)))
      const updated = yield* Cluster.updateMember(member.id, [second.peerUrl])
      expect(updated.find((m) => m.id === member.id)?.peerUrls).toEqual([second.peerUrl])
      yield* Cluster.removeMember(member.id)
      expect((yield* Effect.flip(Cluster.removeMember(member.id)))._tag).toBe("EtcdNotFound")
      expect((yield* Effect.flip(Cluster.updateMember(member.id, [first.peerUrl])))._tag).toBe("EtcdNotFound")
      expect(yield* Cluster.members).toHaveLength(1)
    }))
})

layer(EtcdServer.layer({ members: 3 }), { excludeTestServices: true })("Endpoint discovery", (it) => {
  it.effect(
    "with autoSyncInterval, a client that knew only member 1 keeps working after it is removed and stopped",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const [first, ...others] = server.endpoints
        const p = uniquePrefix("autosync")
        yield* Effect.gen(function*() {
          expect(yield* Etcd.memberEndpoints).toEqual([first])
          // the member list arrives after the first interval
          for (let i = 0; i < 300 && (yield* Etcd.memberEndpoints).length < 3; i++) yield* Effect.sleep("100 millis")
          expect([...(yield* Etcd.memberEndpoints)].sort()).toEqual([...server.endpoints].sort())
          yield* Kv.put(`${p}before`, "1")

          // removed by an administrator's client of the other members, then stopped
          const removed = (yield* Cluster.members.pipe(Effect.provide(Etcd.layer({ endpoints: others }))))
            .find((member) => member.clientUrls.includes(first))!
          yield* Cluster.removeMember(removed.id).pipe(Effect.provide(Etcd.layer({ endpoints: others })))
          // the next refresh leaves the removed member out, and calls go to the others
          for (let i = 0; i < 100 && (yield* Etcd.memberEndpoints).includes(first); i++) {
            yield* Effect.sleep("100 millis")
          }
          expect([...(yield* Etcd.memberEndpoints)].sort()).toEqual([...others].sort())
          expect(others).toContain(yield* Etcd.currentEndpoint)
          yield* server.kill(0)

          expect(yield* Kv.get(`${p}before`)).toEqual(Option.some("1"))
          yield* Kv.put(`${p}after`, "2")
          expect(yield* Kv.get(`${p}after`)).toEqual(Option.some("2"))
          // refreshes go on without the stopped member
          yield* Effect.sleep("500 millis")
          expect([...(yield* Etcd.memberEndpoints)].sort()).toEqual([...others].sort())
          yield* Kv.put(`${p}later`, "3")
          expect(yield* Kv.get(`${p}later`)).toEqual(Option.some("3"))
        }).pipe(
          Effect.provide(
            Etcd.layer({ endpoints: [first], autoSyncInterval: "200 millis", requestTimeout: "5 seconds" })
          )
        )
      }),
    120_000
  )

  it.effect("without autoSyncInterval the client keeps the endpoints it was given; syncEndpoints refreshes them once", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const running = server.endpoints.slice(1)
      yield* Effect.gen(function*() {
        yield* Effect.sleep("500 millis")
        expect(yield* Etcd.memberEndpoints).toEqual([running[0]])
        yield* Etcd.syncEndpoints
        expect([...(yield* Etcd.memberEndpoints)].sort()).toEqual([...running].sort())
      }).pipe(Effect.provide(Etcd.layer({ endpoints: [running[0]] })))
    }))
})

describe("Endpoint discovery settings", () => {
  it.effect("ETCD_AUTO_SYNC_INTERVAL sets autoSyncInterval; it is off without it", () =>
    Effect.gen(function*() {
      const set = yield* Effect.withConfigProvider(
        Etcd.config,
        ConfigProvider.fromMap(new Map([["ETCD_AUTO_SYNC_INTERVAL", "30 seconds"]]))
      )
      expect(set.autoSyncInterval).toEqual(Duration.seconds(30))
      const unset = yield* Effect.withConfigProvider(Etcd.config, ConfigProvider.fromMap(new Map()))
      expect(unset.autoSyncInterval).toBeUndefined()
    }))
})
