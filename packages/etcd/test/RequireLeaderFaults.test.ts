/**
 * `requireLeader` on a 3-member cluster whose watched member is cut off from its leader. A
 * partition is played with SIGSTOP, all on loopback: the two peers of the member serving the
 * watch (P) are paused, so that P, alive and reachable, has no leader (what a partition does
 * to the minority side); then P is paused and its peers resumed, so that the majority serves
 * writes while P is away (the partition's other side); then P comes back. The watcher must
 * leave P when P cancels its stream ("no leader"), and get every event of the prefix through
 * the others, in order, once each, while P is still away. Bounded to about 40 s; every wait is
 * bounded; figures are logged.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Option, Queue } from "effect"
import { Etcd, KeyRange, Kv, Maintenance, Watch } from "effect-etcd"
import { uniquePrefix } from "./support.js"

/** The member whose watch streams gauge says it serves one; polled (bounded), there is no signal. */
const memberWithWatchStream = (server: EtcdServer.EtcdServer, among: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    for (let poll = 0; poll < 200; poll++) {
      for (const member of among) {
        if ((yield* server.metric(member, "etcd_debugging_mvcc_watch_stream_total")) > 0) return Option.some(member)
      }
      yield* Effect.sleep(Duration.millis(50))
    }
    return Option.none<number>()
  })

/** Polls (bounded) until member `index` serves no watch stream; the milliseconds it took, or none. */
const watchStreamGone = (server: EtcdServer.EtcdServer, index: number) =>
  Effect.gen(function*() {
    const start = Date.now()
    for (let poll = 0; poll < 300; poll++) {
      if ((yield* server.metric(index, "etcd_debugging_mvcc_watch_stream_total")) === 0) {
        return Option.some(Date.now() - start)
      }
      yield* Effect.sleep(Duration.millis(50))
    }
    return Option.none<number>()
  })

layer(EtcdServer.layer({ members: 3 }), { excludeTestServices: true })("requireLeader under a partition", (it) => {
  it.scoped(
    "a watcher on a member cut off from its leader moves on: every event, in order, once, while that member is away",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        // whatever fails, no member stays paused (a resume of a running member does nothing)
        yield* Effect.addFinalizer(() => Effect.forEach([0, 1, 2], (index) => server.resume(index), { discard: true }))
        const p = uniquePrefix("require-leader")
        const clientOptions = {
          requestTimeout: "2 seconds",
          connectTimeout: "5 seconds",
          keepAliveTime: "5 seconds",
          keepAliveTimeout: "2 seconds"
        } as const

        // the watcher's client knows every member; its watch requires a leader (as by default)
        const watching = yield* Etcd.make({ endpoints: server.endpoints, ...clientOptions })
        const watcher = yield* Watch.subscribe(KeyRange.prefix(p), { requireLeader: true }).pipe(
          Effect.provideService(Etcd.Etcd, watching)
        )
        const delivered = yield* Queue.unbounded<Watch.WatchEvent>()
        const seen: Array<Watch.WatchEvent> = []
        yield* Effect.forkScoped(Effect.gen(function*() {
          while (true) {
            const next = yield* watcher.next
            if (Option.isNone(next)) return
            yield* Queue.offerAll(delivered, next.value)
          }
        }))
        /** Takes delivered events until `key` has come (bounded by `within`); whether it came. */
        const awaitKey = (key: string, within: Duration.DurationInput) =>
          Effect.gen(function*() {
            while (true) {
              const event = yield* Queue.take(delivered)
              seen.push(event)
              if (event.key === key) return
            }
          }).pipe(Effect.timeout(within), Effect.exit, Effect.map(Exit.isSuccess))

        const member = Option.getOrThrow(yield* memberWithWatchStream(server, [0, 1, 2]))
        const peers = [0, 1, 2].filter((index) => index !== member)

        /** Writes `count` keys of a phase through `client`, each once (a failed write is not tried again). */
        const writePhase = (client: Etcd.Etcd, phase: string, count: number) =>
          Effect.gen(function*() {
            let failed = 0
            for (let i = 0; i < count; i++) {
              const put = yield* Effect.exit(Kv.put(`${p}${phase}-${String(i).padStart(2, "0")}`, phase))
              if (Exit.isFailure(put)) failed++
            }
            return failed
          }).pipe(Effect.provideService(Etcd.Etcd, client))

        const everyMember = yield* Etcd.make({ endpoints: server.endpoints, ...clientOptions })
        const failedBefore = yield* writePhase(everyMember, "a", 20)
        expect(yield* awaitKey(`${p}a-19`, "20 seconds")).toBe(true)

        // the minority side: P's peers are away, P is alive and has no leader
        const isolatedAt = Date.now()
        yield* Effect.forEach(peers, (peer) => server.pause(peer), { discard: true })
        const resumePeers = Effect.forEach(peers, (peer) => server.resume(peer), { discard: true })
        const leftAfter = yield* watchStreamGone(server, member)
        expect(Option.isSome(leftAfter)).toBe(true)
        expect(yield* server.metric(member, "etcd_server_has_leader")).toBe(0)

        // the calls: with requireLeader, P refuses a serializable read (NoLeader) instead of
        // serving it from its own store; administration calls still reach it
        const onlyP = { endpoints: [server.endpoints[member]], ...clientOptions }
        const strict = yield* Etcd.make({ ...onlyP, requireLeader: true })
        const lenient = yield* Etcd.make(onlyP)
        const refused = yield* Effect.flip(
          Kv.get(`${p}a-00`, { serializable: true }).pipe(Effect.provideService(Etcd.Etcd, strict))
        )
        expect(refused).toMatchObject({ _tag: "NoLeader" })
        const stale = yield* Kv.get(`${p}a-00`, { serializable: true }).pipe(Effect.provideService(Etcd.Etcd, lenient))
        expect(stale).toEqual(Option.some("a"))
        const status = yield* Maintenance.status(server.endpoints[member]).pipe(
          Effect.provideService(Etcd.Etcd, strict)
        )
        expect(status.leader).toBe(0n)

        // the majority side: P away, its peers back and serving writes
        yield* server.pause(member)
        const majorityAt = Date.now()
        const phaseB = yield* Effect.gen(function*() {
          yield* resumePeers
          const majority = yield* Etcd.make({
            endpoints: peers.map((peer) => server.endpoints[peer]),
            ...clientOptions
          })
          const failed = yield* writePhase(majority, "b", 20)
          // every one of them reaches the watcher while P is still away
          const came = yield* awaitKey(`${p}b-19`, "30 seconds")
          return { failed, came, deliveredAfter: Date.now() - majorityAt, majority }
        }).pipe(Effect.ensuring(server.resume(member)))
        expect(phaseB.came).toBe(true)

        // P is back; the watch goes on where it is
        const failedAfter = yield* writePhase(phaseB.majority, "c", 20)
        yield* Kv.put(`${p}~end`, "end").pipe(Effect.provideService(Etcd.Etcd, phaseB.majority))
        expect(yield* awaitKey(`${p}~end`, "30 seconds")).toBe(true)

        // what etcd holds under the prefix (every key written once, none deleted) is its history
        const stored = yield* Kv.range(KeyRange.prefix(p), { sortTarget: "mod", sortOrder: "ascend" }).pipe(
          Effect.provideService(Etcd.Etcd, phaseB.majority)
        )
        const history = stored.kvs.map((kv) => `${kv.key}@${kv.modRevision}`)
        const received = seen.map((event) => `${event.key}@${event.revision}`)
        expect(received).toEqual(history)
        const revisions = seen.map((event) => event.revision)
        const outOfOrder = revisions.filter((revision, i) => i > 0 && revision <= revisions[i - 1]).length
        const duplicates = received.length - new Set(received).size
        expect([outOfOrder, duplicates]).toEqual([0, 0])

        yield* Effect.log("requireLeader partition run").pipe(Effect.annotateLogs({
          watchedMember: member,
          watchLeftMemberMs: Option.getOrElse(leftAfter, () => -1),
          isolatedForMs: majorityAt - isolatedAt,
          phaseBDeliveredWhileMemberAwayMs: phaseB.deliveredAfter,
          events: received.length,
          history: history.length,
          outOfOrder,
          duplicates,
          failedWrites: failedBefore + phaseB.failed + failedAfter
        }))
      }),
    90_000
  )
})
