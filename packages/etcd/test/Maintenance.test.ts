/**
 * Maintenance against real etcd: status, defragment and hashKv on each member, snapshots
 * restored with etcdctl into a new member, a broken snapshot leaving no file, and a
 * NOSPACE alarm raised, cleared and recovered from.
 */
import { EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import { Etcd, Kv, Maintenance } from "effect-etcd"
import * as fs from "node:fs"
import * as path from "node:path"
import { recordingTracer, silentPort, uniquePrefix, withServer } from "./support.js"

/** A directory under /dev/shm for snapshot files, removed with the scope. */
const snapshotDir = Effect.acquireRelease(
  Effect.sync(() => {
    fs.mkdirSync(EtcdServer.dataRoot(), { recursive: true })
    return fs.mkdtempSync(path.join(EtcdServer.dataRoot(), "snapshots-"))
  }),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Restores a snapshot file with etcdctl into a new data dir, starts a member on it, and returns its client URL. */
const restore = (file: string) =>
  Effect.gen(function*() {
    const server = yield* EtcdServer.EtcdServer
    const member = yield* server.reserveMember("restored")
    const cluster = `${member.name}=${member.peerUrl}`
    yield* server.etcdctl([
      "snapshot",
      "restore",
      file,
      "--name",
      member.name,
      "--data-dir",
      member.dataDir,
      "--initial-cluster",
      cluster,
      "--initial-advertise-peer-urls",
      member.peerUrl
    ])
    yield* server.startExtra(member, { initialCluster: cluster, initialClusterState: "new" })
    return member.clientUrl
  })

const fillWith = (prefix: string, count: number, size: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) => Kv.put(`${prefix}${String(i).padStart(4, "0")}`, "x".repeat(size)),
    { concurrency: 4, discard: true }
  )

layer(Layer.merge(withServer(), NodeContext.layer), { excludeTestServices: true })("Maintenance, one member", (it) => {
  it.effect("status describes the member", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("status")
      const { revision } = yield* Kv.put(`${p}k`, "v")
      const status = yield* Maintenance.status()
      expect(status.endpoint).toBe(server.endpoints[0])
      expect(status.version).toMatch(/^3\.\d+\.\d+/)
      expect(status.dbSize).toBeGreaterThan(0)
      expect(status.isLeader).toBe(true)
      expect(status.leader).toBe(status.memberId)
      expect(status.raftTerm).toBeGreaterThan(0n)
      expect(status.raftIndex).toBeGreaterThan(0n)
      expect(status.revision).toBeGreaterThanOrEqual(revision)
      expect(status.errors).toEqual([])
      expect(yield* Maintenance.status(server.endpoints[0])).toMatchObject({ memberId: status.memberId })
    }))

  it.scoped("a snapshot written to a file restores with etcdctl into a new member holding the keys", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("snapshot")
      yield* Kv.put(`${p}a`, "alpha")
      yield* Kv.put(`${p}b`, "beta")
      const dir = yield* snapshotDir
      const file = path.join(dir, "backup.db")
      const progress: Array<number> = []
      const written = yield* Maintenance.snapshotToFile(file, {
        onProgress: (bytes) => Effect.sync(() => progress.push(bytes))
      })
      expect(written.bytes).toBe(fs.statSync(file).size)
      expect(progress.length).toBeGreaterThan(0)
      expect(progress[progress.length - 1]).toBe(written.bytes)
      expect(fs.readdirSync(dir)).toEqual(["backup.db"])
      // written after the snapshot: not in it
      yield* Kv.put(`${p}c`, "gamma")

      const restored = yield* restore(file)
      const keys = yield* Kv.getPrefix(p).pipe(Effect.provide(Etcd.layer({ endpoints: [restored] })))
      expect(Object.fromEntries(keys)).toEqual({ [`${p}a`]: "alpha", [`${p}b`]: "beta" })
    }))

  it.effect("defragment and hashKv on the member", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("defrag")
      yield* Kv.put(`${p}k`, "1")
      const { revision } = yield* Kv.put(`${p}k`, "2")
      const before = yield* Maintenance.hashKv(server.endpoints[0], revision)
      yield* Maintenance.defragment(server.endpoints[0])
      const after = yield* Maintenance.hashKv(server.endpoints[0], revision)
      expect(after.hash).toBe(before.hash)
      expect(after.revision).toBeGreaterThanOrEqual(revision)
      yield* Kv.put(`${p}k`, "3")
      const later = yield* Maintenance.hashKv(server.endpoints[0])
      expect(later.hash).not.toBe(before.hash)
    }))

  it.scoped(
    "a snapshot whose stream breaks midway fails with SnapshotFailed and leaves no file",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        // about 12 MB, far more than the transport buffers
        yield* fillWith(uniquePrefix("bulk"), 120, 100_000)
        const dir = yield* snapshotDir
        const file = path.join(dir, "broken.db")
        let killed = false
        const error = yield* Effect.flip(Maintenance.snapshotToFile(file, {
          onProgress: () =>
            killed ? Effect.void : Effect.zipRight(
              Effect.sync(() => {
                killed = true
              }),
              server.kill(0)
            )
        }))
        expect(killed).toBe(true)
        expect(error._tag).toBe("SnapshotFailed")
        expect(error.bytesReceived).toBeGreaterThan(0)
        expect(error.path).toBe(file)
        expect(fs.readdirSync(dir)).toEqual([])
        yield* server.start(0)
        // the client carries on with the restarted member
        const p = uniquePrefix("after")
        yield* Kv.put(`${p}k`, "v")
        expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("v"))
      }),
    120_000
  )

  it.scoped("a snapshot from a member that never answers ends when its consumer gives up, not never", () =>
    Effect.gen(function*() {
      // a port that accepts connections and never says a word: the stream waits for its
      // first chunk, and the consumer's timeout interrupts it; the interruption must not
      // wait on the stream's own end (the call is cancelled first)
      const silent = yield* silentPort
      const outcome = yield* Maintenance.snapshot({ endpoint: `http://127.0.0.1:${silent}` }).pipe(
        Stream.runDrain,
        Effect.timeout("1 second"),
        Effect.flip
      )
      expect(outcome._tag).toBe("TimeoutException")
    }))
})

layer(Layer.merge(withServer({ members: 3 }), NodeContext.layer), { excludeTestServices: true })(
  "Maintenance, three members",
  (it) => {
    it.effect("each member reports its own status, and one of them leads", () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const statuses = yield* Effect.forEach(server.endpoints, (endpoint) => Maintenance.status(endpoint))
        expect(statuses.map((s) => s.endpoint)).toEqual(server.endpoints)
        expect(new Set(statuses.map((s) => s.memberId)).size).toBe(3)
        expect(statuses.filter((s) => s.isLeader)).toHaveLength(1)
        const leader = statuses.find((s) => s.isLeader)!.memberId
        expect(statuses.every((s) => s.leader === leader)).toBe(true)
      }))

    it.effect("defragment and hashKv on each member: every member has the same hash at one revision", () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("hash3")
        yield* fillWith(p, 20, 100)
        const { revision } = yield* Kv.put(`${p}last`, "v")
        for (const endpoint of server.endpoints) yield* Maintenance.defragment(endpoint)
        const hashes = yield* Effect.forEach(server.endpoints, (endpoint) => Maintenance.hashKv(endpoint, revision))
        expect(new Set(hashes.map((h) => h.memberId)).size).toBe(3)
        expect(new Set(hashes.map((h) => h.hash)).size).toBe(1)
      }))

    it.effect("a call to a chosen member runs in a span with that member's address, whichever member is in use", () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const inUse = yield* Etcd.currentEndpoint
        const other = server.endpoints.find((endpoint) => endpoint !== inUse)!
        const { spans, tracer } = recordingTracer()
        yield* Maintenance.status(other).pipe(Effect.withTracer(tracer))
        const span = spans.find((s) => s.name === "etcdserverpb.Maintenance/Status")
        expect(span?.kind).toBe("client")
        expect(span?.attributes.get("server.port")).toBe(Number(new URL(other).port))
        expect(yield* Etcd.currentEndpoint).toBe(inUse)
      }))

    it.effect("moveLeader hands leadership to another member", () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const statuses = yield* Effect.forEach(server.endpoints, (endpoint) => Maintenance.status(endpoint))
        const target = statuses.find((s) => !s.isLeader)!
        yield* Maintenance.moveLeader(target.memberId)
        let leader = 0n
        for (let i = 0; i < 50 && leader !== target.memberId; i++) {
          leader = (yield* Maintenance.status(target.endpoint)).leader
          if (leader !== target.memberId) yield* Effect.sleep("100 millis")
        }
        expect(leader).toBe(target.memberId)
        expect((yield* Maintenance.status(target.endpoint)).isLeader).toBe(true)
      }))

    it.scoped("a snapshot of a chosen member restores into a new member holding the keys", () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("snapshot3")
        yield* Kv.put(`${p}k`, "from the cluster")
        const dir = yield* snapshotDir
        const file = path.join(dir, "member2.db")
        // a linearizable read on member 2 makes sure it has applied the write
        yield* Kv.get(`${p}k`).pipe(Effect.provide(Etcd.layer({ endpoints: [server.endpoints[2]] })))
        yield* Maintenance.snapshotToFile(file, { endpoint: server.endpoints[2] })
        const restored = yield* restore(file)
        const value = yield* Kv.get(`${p}k`).pipe(Effect.provide(Etcd.layer({ endpoints: [restored] })))
        expect(value).toEqual(Option.some("from the cluster"))
      }))
  }
)

const quota = 4 * 1024 * 1024

layer(withServer({ extraArgs: ["--quota-backend-bytes", String(quota)] }), { excludeTestServices: true })(
  "Maintenance, a small quota",
  (it) => {
    it.effect(
      "a NOSPACE alarm is listed and writes fail with NoSpace until compaction, defragment and disarm",
      () =>
        Effect.gen(function*() {
          const server = yield* EtcdServer.EtcdServer
          const p = uniquePrefix("nospace")
          expect(yield* Maintenance.alarms).toEqual([])
          // one key rewritten: its history fills the quota, and compaction frees it all
          let full = false
          for (let i = 0; i < 400 && !full; i++) {
            const result = yield* Effect.either(Kv.put(`${p}big`, `${i}`.padEnd(100_000, "x")))
            if (result._tag === "Left") {
              expect(result.left._tag).toBe("NoSpace")
              full = true
            }
          }
          expect(full).toBe(true)
          const { memberId } = yield* Maintenance.status()
          expect(yield* Maintenance.alarms).toEqual([{ memberId, type: "NOSPACE" }])
          expect((yield* Effect.flip(Kv.put(`${p}small`, "v")))._tag).toBe("NoSpace")

          const revision = (yield* Kv.range(`${p}big`)).revision
          yield* Kv.compact(revision, { physical: true })
          yield* Maintenance.defragment(server.endpoints[0])
          expect(yield* Maintenance.disarm()).toEqual([{ memberId, type: "NOSPACE" }])
          expect(yield* Maintenance.alarms).toEqual([])
          yield* Kv.put(`${p}small`, "v")
          expect(yield* Kv.get(`${p}small`)).toEqual(Option.some("v"))
        }),
      120_000
    )
  }
)
