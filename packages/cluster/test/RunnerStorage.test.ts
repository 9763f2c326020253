/**
 * `EtcdRunnerStorage` against `@effect/cluster`'s `RunnerStorage` interface, on a real etcd and
 * on `EtcdMemory`, with `RunnerStorage.makeMemory` as the reference for the behaviours it has:
 * register/unregister, health, acquire, refresh and release. The behaviours the reference lacks
 * (a shard held by another runner, the fence after a lost lease) run on both etcd backends.
 */
import { EtcdRunnerStorage } from "@effect-etcd/cluster"
import { EtcdServer } from "@effect-etcd/testing"
import * as Runner from "@effect/cluster/Runner"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import * as ShardId from "@effect/cluster/ShardId"
import { expect, layer } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Layer, Option, Schedule } from "effect"
import type { Scope } from "effect"
import type { Etcd } from "effect-etcd"
import { EtcdMemory, KeyRange, Kv, Lease, Op, Txn } from "effect-etcd"

let counter = 0
const uniquePrefix = (name: string) =>
  `test/cluster/${name}/${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}/`

const address = (port: number) => RunnerAddress.make("127.0.0.1", port)
const runner = (port: number) => Runner.make({ address: address(port), groups: ["default"], weight: 1 })
const shards = (...ids: Array<number>) => ids.map((id) => ShardId.make("default", id))
const sorted = (ids: ReadonlyArray<ShardId.ShardId>) => ids.map((id) => id.id).sort((a, b) => a - b)

interface Backend {
  readonly name: string
  readonly etcd: boolean
  readonly storage: (prefix: string) => Effect.Effect<
    {
      readonly storage: RunnerStorage.RunnerStorage["Type"]
      readonly locks: EtcdRunnerStorage.ShardLocks | undefined
    },
    unknown,
    Etcd.Etcd | Scope.Scope
  >
}

const reference: Backend = {
  name: "RunnerStorage.makeMemory (reference)",
  etcd: false,
  storage: () => Effect.map(RunnerStorage.makeMemory, (storage) => ({ storage, locks: undefined }))
}

const onEtcd = (name: string): Backend => ({
  name,
  etcd: true,
  storage: (prefix) => EtcdRunnerStorage.make({ prefix, ttl: "5 seconds" })
})

const suite = (backend: Backend, client: Layer.Layer<Etcd.Etcd, unknown>) =>
  layer(client, { excludeTestServices: true })(backend.name, (it) => {
    it.scoped("register lists the runner with its health; unregister removes it", () =>
      Effect.gen(function*() {
        const { storage } = yield* backend.storage(uniquePrefix("register"))
        const a = yield* storage.register(runner(1001), true)
        const b = yield* storage.register(runner(1002), true)
        expect(a).not.toBe(b)
        const listed = yield* storage.getRunners
        expect(listed.map(([r]) => r.address.port).sort()).toEqual([1001, 1002])
        expect(listed.every(([, healthy]) => healthy)).toBe(true)
        yield* storage.unregister(address(1001))
        expect((yield* storage.getRunners).map(([r]) => r.address.port)).toEqual([1002])
      }))

    it.scoped("acquire of free shards returns them all; refresh returns the held ones", () =>
      Effect.gen(function*() {
        const { storage } = yield* backend.storage(uniquePrefix("acquire"))
        yield* storage.register(runner(1001), true)
        expect(sorted(yield* storage.acquire(address(1001), shards(1, 2, 3)))).toEqual([1, 2, 3])
        expect(sorted(yield* storage.refresh(address(1001), shards(1, 2, 3)))).toEqual([1, 2, 3])
      }))

    it.scoped("release and releaseAll succeed for held shards", () =>
      Effect.gen(function*() {
        const { storage } = yield* backend.storage(uniquePrefix("release"))
        yield* storage.register(runner(1001), true)
        yield* storage.acquire(address(1001), shards(1, 2, 3))
        yield* storage.release(address(1001), ShardId.make("default", 1))
        yield* storage.releaseAll(address(1001))
        yield* storage.unregister(address(1001))
        expect(yield* storage.getRunners).toEqual([])
      }))

    if (!backend.etcd) return

    it.scoped("setRunnerHealth marks a runner unhealthy and healthy again, on its own lease", () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("health")
        const { locks, storage } = yield* backend.storage(prefix)
        const other = yield* backend.storage(prefix)
        yield* storage.register(runner(1001), true)
        yield* other.storage.setRunnerHealth(address(1001), false)
        expect((yield* storage.getRunners).map(([, healthy]) => healthy)).toEqual([false])
        const kv = Option.getOrThrow(yield* Kv.getKeyValue(`${prefix}runners/127.0.0.1:1001`))
        expect(Option.some(kv.lease)).toEqual(yield* locks!.leaseId)
        yield* other.storage.setRunnerHealth(address(1001), true)
        expect((yield* storage.getRunners).map(([, healthy]) => healthy)).toEqual([true])
        // a runner nobody registered is left alone
        yield* other.storage.setRunnerHealth(address(1009), false)
        expect((yield* storage.getRunners).length).toBe(1)
      }))

    it.scoped("machine IDs are unique among live runners and reused by a runner registering again", () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("machine-ids")
        const first = yield* backend.storage(prefix)
        const second = yield* backend.storage(prefix)
        const a = yield* first.storage.register(runner(1001), true)
        const b = yield* second.storage.register(runner(1002), true)
        expect(new Set([a, b]).size).toBe(2)
        expect(yield* first.storage.register(runner(1001), true)).toBe(a)
        // once a runner is gone its ID is free again
        yield* first.storage.unregister(address(1001))
        const c = yield* first.storage.register(runner(1003), true)
        expect(c).not.toBe(b)
      }))

    it.scoped("acquire returns exactly the shards now held: another runner's stay its own", () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("held")
        const a = yield* backend.storage(prefix)
        const b = yield* backend.storage(prefix)
        yield* a.storage.register(runner(1001), true)
        yield* b.storage.register(runner(1002), true)
        expect(sorted(yield* a.storage.acquire(address(1001), shards(1, 2)))).toEqual([1, 2])
        expect(sorted(yield* b.storage.acquire(address(1002), shards(1, 2, 3, 4)))).toEqual([3, 4])
        // asking again for held shards keeps them
        expect(sorted(yield* a.storage.acquire(address(1001), shards(1, 2, 3)))).toEqual([1, 2])
        expect(sorted(yield* b.storage.refresh(address(1002), shards(1, 2, 3, 4)))).toEqual([3, 4])
        // a released shard is free for the other runner
        yield* a.storage.release(address(1001), ShardId.make("default", 1))
        expect(sorted(yield* a.storage.refresh(address(1001), shards(1, 2)))).toEqual([2])
        expect(sorted(yield* b.storage.acquire(address(1002), shards(1)))).toEqual([1])
        // releaseAll frees every shard of the runner
        yield* b.storage.releaseAll(address(1002))
        expect(yield* b.storage.refresh(address(1002), shards(1, 3, 4))).toEqual([])
        expect(sorted(yield* a.storage.acquire(address(1001), shards(1, 3, 4)))).toEqual([1, 3, 4])
      }))

    it.scoped("acquire, refresh and releaseAll of 300 shards run in batches under etcd's 128 ops", () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("batches")
        const a = yield* backend.storage(prefix)
        const b = yield* backend.storage(prefix)
        const all = Array.from({ length: 300 }, (_, i) => i + 1)
        yield* a.storage.register(runner(1001), true)
        expect((yield* a.storage.acquire(address(1001), shards(...all.slice(0, 200)))).length).toBe(200)
        const taken = yield* b.storage.acquire(address(1002), shards(...all))
        expect(sorted(taken)).toEqual(all.slice(200))
        expect((yield* a.storage.refresh(address(1001), shards(...all))).length).toBe(200)
        yield* a.storage.releaseAll(address(1001))
        expect(yield* Kv.count(KeyRange.prefix(`${prefix}shards/`))).toBe(100)
      }))

    it.scoped("a lost lease: refresh reports none held, the new holder's lock stands, locks are forgotten", () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix("lost")
        const a = yield* backend.storage(prefix)
        const b = yield* backend.storage(prefix)
        yield* a.storage.register(runner(1001), true)
        yield* a.storage.acquire(address(1001), shards(1, 2))
        const lock = Option.getOrThrow(yield* a.locks!.get(ShardId.make("default", 1)))
        // a fenced write of the holder lands
        expect((yield* Txn.txnCompare([lock.fence], [Op.put(`${prefix}log`, "a")])).succeeded).toBe(true)
        // the lease goes behind the runner's back (an expiry looks the same to it)
        yield* Lease.revoke(lock.leaseId)
        expect(yield* b.storage.acquire(address(1002), shards(1))).toEqual(shards(1))
        // the fence holds before the runner has heard of the loss
        expect(yield* a.storage.refresh(address(1001), shards(1, 2))).toEqual([])
        expect((yield* Txn.txnCompare([lock.fence], [Op.put(`${prefix}log`, "a")])).succeeded).toBe(false)
        // the keepalive hears of it: the runner's locks are forgotten, acquire takes nothing
        yield* a.locks!.leaseId.pipe(
          Effect.repeat({ until: Option.isNone, schedule: Schedule.spaced("50 millis"), times: 200 })
        )
        expect(yield* a.locks!.leaseId).toEqual(Option.none())
        expect(yield* a.storage.acquire(address(1001), shards(2))).toEqual([])
        expect(yield* a.storage.refresh(address(1001), shards(1, 2))).toEqual([])
        // registering again takes a new lease; its runner record is back
        yield* a.storage.register(runner(1001), true)
        expect(Option.isSome(yield* a.locks!.leaseId)).toBe(true)
        expect((yield* b.storage.getRunners).map(([r]) => r.address.port)).toEqual([1001])
        expect(yield* a.storage.acquire(address(1001), shards(1, 2))).toEqual(shards(2))
      }))
  })

suite(reference, Layer.empty as unknown as Layer.Layer<Etcd.Etcd>)
suite(onEtcd("EtcdRunnerStorage on EtcdMemory"), EtcdMemory.layer())
suite(onEtcd("EtcdRunnerStorage on etcd"), EtcdServer.layerClient())

layer(EtcdServer.layerClient(), { excludeTestServices: true })("EtcdRunnerStorage.layerConfig", (it) => {
  it.scoped("reads the prefix and the lease TTL from a Config", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix("config")
      const layer = EtcdRunnerStorage.layerConfig({
        prefix: Config.string("PREFIX"),
        ttl: Config.duration("TTL")
      }).pipe(
        Layer.provide(
          Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["PREFIX", prefix], ["TTL", "7 seconds"]])))
        )
      )
      const { leaseId } = yield* Effect.gen(function*() {
        const storage = yield* RunnerStorage.RunnerStorage
        const locks = yield* EtcdRunnerStorage.ShardLocks
        yield* storage.register(runner(1001), true)
        return { leaseId: Option.getOrThrow(yield* locks.leaseId) }
      }).pipe(Effect.provide(layer))
      // the layer's scope is closed: its lease was revoked with the record
      expect(yield* Kv.get(`${prefix}runners/127.0.0.1:1001`)).toEqual(Option.none())
      expect(yield* Effect.flip(Lease.timeToLive(leaseId))).toMatchObject({ _tag: "LeaseNotFound" })
      const kept = yield* Effect.gen(function*() {
        const storage = yield* RunnerStorage.RunnerStorage
        const locks = yield* EtcdRunnerStorage.ShardLocks
        yield* storage.register(runner(1001), true)
        const kv = Option.getOrThrow(yield* Kv.getKeyValue(`${prefix}runners/127.0.0.1:1001`))
        return { kv, ttl: (yield* Lease.timeToLive(Option.getOrThrow(yield* locks.leaseId))).grantedTtl }
      }).pipe(Effect.provide(layer))
      expect(kept.ttl).toBe(7)
      expect(kept.kv.lease).not.toBe(0n)
    }))
})
