/**
 * `@effect/cluster`'s `RunnerStorage` on etcd: runner membership held by a lease that the
 * server expires, and shard locks fenced by their keys' create revisions.
 *
 * Every runner holds one session (a lease kept alive, see `Session` in effect-etcd). Its record
 * (`<prefix>runners/<host:port>`), its machine ID (`<prefix>machines/<id>`) and every shard lock it
 * takes (`<prefix>shards/<group:id>`) are keys attached to that lease: a runner that dies loses
 * all of them when the lease expires, with no clock compared anywhere. A shard lock is created
 * only if absent, and the runner keeps the lock's create revision: `refresh` reports a shard
 * still held only while the key with that create revision exists, so a runner that was paused
 * past its lease finds its shards lost even if another runner holds them now. `ShardLocks`
 * gives entity code the same fence, for writes that must never come from two runners.
 *
 * Built on effect-etcd's public modules only (`Session`, `Txn`, `Op`, `Compare`, `Kv`).
 *
 * @since 0.1.0
 */
import { PersistenceError } from "@effect/cluster/ClusterError"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import type { ShardId } from "@effect/cluster/ShardId"
import { Compare, type Etcd, type EtcdError, KeyRange, Kv, Op, Session, Txn } from "effect-etcd"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"

/**
 * How the storage lays out its keys and holds its lease.
 *
 * @since 0.1.0
 * @category models
 */
export interface EtcdRunnerStorageOptions {
  /** The prefix of every key the storage writes; `effect-cluster/` by default. */
  readonly prefix?: string | undefined
  /**
   * The TTL of the runner's session lease; 15 seconds by default. A runner that dies keeps its
   * shards until the lease expires: this is how long its shards stay unserved. Keep it at least
   * three times `shardLockRefreshInterval`, so that a live runner refreshes several times per TTL.
   */
  readonly ttl?: Duration.DurationInput | undefined
  /** How often the lease is kept alive; a third of the TTL by default. */
  readonly keepAliveInterval?: Duration.DurationInput | undefined
}

/**
 * The defaults of {@link EtcdRunnerStorageOptions}.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaults: {
  readonly prefix: string
  readonly ttl: Duration.Duration
} = {
  prefix: "effect-cluster/",
  ttl: Duration.seconds(15)
}

/**
 * A shard lock this runner holds: its key, the key's create revision and the lease it is
 * attached to. `fence` is the compare that holds exactly while this lock exists: put it in a
 * `Txn` to make a write that only the shard's current owner can make.
 *
 * @since 0.1.0
 * @category models
 */
export interface ShardLock {
  readonly shardId: string
  readonly key: string
  readonly createRevision: bigint
  readonly leaseId: bigint
  readonly fence: Compare.Compare
}

/**
 * The shard locks this runner holds, for entity code that fences its writes.
 *
 * @example
 * ```ts
 * import { EtcdRunnerStorage } from "@effect-etcd/cluster"
 * import type { ShardId } from "@effect/cluster/ShardId"
 * import { Effect, Option } from "effect"
 * import { Op, Txn } from "effect-etcd"
 *
 * // a write that lands only while this runner still holds the shard
 * const fencedPut = (shardId: ShardId, key: string, value: string) =>
 *   Effect.gen(function*() {
 *     const locks = yield* EtcdRunnerStorage.ShardLocks
 *     const lock = yield* locks.get(shardId)
 *     if (Option.isNone(lock)) return false
 *     const result = yield* Txn.txnCompare([lock.value.fence], [Op.put(key, value)])
 *     return result.succeeded
 *   })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ShardLocks {
  /** The lock this runner holds on a shard, if it holds one under its current lease. */
  readonly get: (shardId: ShardId | string) => Effect.Effect<Option.Option<ShardLock>>
  /** The ID of the runner's current session lease, if it has a live one. */
  readonly leaseId: Effect.Effect<Option.Option<bigint>>
}

/**
 * The tag of {@link ShardLocks}, provided next to `RunnerStorage` by {@link layer}.
 *
 * @since 0.1.0
 * @category tags
 */
export const ShardLocks: Context.Tag<ShardLocks, ShardLocks> = Context.GenericTag<ShardLocks>(
  "@effect-etcd/cluster/ShardLocks"
)

// etcd refuses a txn with more than --max-txn-ops (128 by default) operations in a branch, and
// gives a nested txn only what its parent leaves (128 minus the parent's operations)
const acquireBatch = 127
const releaseAllBatch = 126
const refreshBatch = 128
const machineIds = 1024
const registerAttempts = 20

interface RunnerRecord {
  readonly runner: string
  readonly healthy: boolean
  readonly machineId: number
}

interface Held {
  readonly createRevision: bigint
  readonly leaseId: bigint
}

interface Current {
  readonly session: Session.Session
  readonly scope: Scope.CloseableScope
}

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const persistence = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, PersistenceError, R> =>
  Effect.mapError(effect, (cause) => new PersistenceError({ cause }))

const parseRecord = (text: string): RunnerRecord | undefined => {
  try {
    const parsed = JSON.parse(text)
    return typeof parsed?.runner === "string" && typeof parsed?.healthy === "boolean" &&
        typeof parsed?.machineId === "number"
      ? parsed
      : undefined
  } catch {
    return undefined
  }
}

/**
 * Builds the storage and the {@link ShardLocks} of its runner, with a session lease held for the
 * scope's life (granted now, so that an unreachable etcd fails here).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: EtcdRunnerStorageOptions = {}
): Effect.Effect<
  { readonly storage: RunnerStorage.RunnerStorage["Type"]; readonly locks: ShardLocks },
  EtcdError.LeaseGrantError,
  Etcd.Etcd | Scope.Scope
> =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? defaults.prefix
    const ttl = Duration.decode(options.ttl ?? defaults.ttl)
    const runnerKey = (address: string) => `${prefix}runners/${address}`
    const machineKey = (id: number) => `${prefix}machines/${id}`
    const shardKey = (shardId: string) => `${prefix}shards/${shardId}`
    const runnersPrefix = `${prefix}runners/`
    const machinesPrefix = `${prefix}machines/`
    const shardsPrefix = `${prefix}shards/`

    const context = yield* Effect.context<Etcd.Etcd>()
    const layerScope = yield* Effect.scope
    const held = new Map<string, Held>()
    let current: Current | undefined = undefined
    const sessionLock = yield* Effect.makeSemaphore(1)

    const newSession = Effect.gen(function*() {
      const scope = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
      const session = yield* Session.make({
        ttl,
        interval: options.keepAliveInterval === undefined ? undefined : Duration.decode(options.keepAliveInterval)
      }).pipe(Scope.extend(scope), Effect.tapErrorCause(() => Scope.close(scope, Exit.void)))
      const leaseId = session.lease.id
      // the runner learns of the loss at once: every lock of the lease is forgotten, so that the
      // next refresh reports none of them held, whatever the server answers
      yield* session.lost.pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.sync(() => {
              for (const [shardId, lock] of held) if (lock.leaseId === leaseId) held.delete(shardId)
            }),
            Effect.logWarning("the runner's etcd lease was lost: its shard locks are gone").pipe(
              Effect.annotateLogs({ leaseId: leaseId.toString(16), reason: error.reason })
            )
          )
        ),
        Effect.forkIn(scope)
      )
      current = { session, scope }
      return session
    })

    /** The live session, a new one if the last was lost (only `register` asks for one). */
    const liveSession = sessionLock.withPermits(1)(Effect.gen(function*() {
      if (current !== undefined) {
        if (!(yield* current.session.isLost)) return current.session
        const lost = current
        current = undefined
        yield* Scope.close(lost.scope, Exit.void)
      }
      return yield* newSession
    }))

    /** The session if it is live; a lost one holds nothing. */
    const heldSession = Effect.suspend(() =>
      current === undefined
        ? Effect.succeedNone
        : Effect.map(current.session.isLost, (lost) => lost ? Option.none() : Option.some(current!.session))
    )

    yield* newSession

    const provide = <A, E>(effect: Effect.Effect<A, E, Etcd.Etcd>) => Effect.provide(effect, context)

    const register = (address: string, runner: string, healthy: boolean) =>
      Effect.gen(function*() {
        const session = yield* liveSession
        const leaseId = session.lease.id
        for (let attempt = 0; attempt < registerAttempts; attempt++) {
          const existing = yield* Kv.getKeyValue(runnerKey(address))
          const existingRecord = Option.flatMap(existing, (kv) => Option.fromNullable(parseRecord(kv.value)))
          const runnerGuard = Compare.modRevision(runnerKey(address)).equals(
            Option.match(existing, { onNone: () => 0n, onSome: (kv) => kv.modRevision })
          )
          // the same runner registering again under the same lease keeps its machine ID
          if (Option.isSome(existing) && existing.value.lease === leaseId && Option.isSome(existingRecord)) {
            const machineId = existingRecord.value.machineId
            const record: RunnerRecord = { runner, healthy, machineId }
            const result = yield* Txn.txnCompare([runnerGuard], [
              Op.put(runnerKey(address), JSON.stringify(record), { lease: leaseId })
            ])
            if (result.succeeded) return machineId
            continue
          }
          const taken = yield* Kv.range(KeyRange.prefix(machinesPrefix), { keysOnly: true })
          const used = new Set(taken.kvs.map((kv) => Number(kv.key.slice(machinesPrefix.length))))
          let machineId = 0
          while (machineId < machineIds && used.has(machineId)) machineId++
          if (machineId === machineIds) {
            return yield* Effect.fail(`all ${machineIds} machine IDs are taken`)
          }
          const record: RunnerRecord = { runner, healthy, machineId }
          // the machine ID is created only if free, and lives as long as the lease
          const result = yield* Txn.txnCompare(
            [Compare.createRevision(machineKey(machineId)).equals(0), runnerGuard],
            [
              Op.put(machineKey(machineId), address, { lease: leaseId }),
              Op.put(runnerKey(address), JSON.stringify(record), { lease: leaseId })
            ]
          )
          if (result.succeeded) return machineId
        }
        return yield* Effect.fail(`could not register ${address}: ${registerAttempts} attempts raced other writers`)
      }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.register", { captureStackTrace: false }))

    const unregister = (address: string) =>
      Effect.gen(function*() {
        const existing = yield* Kv.get(runnerKey(address))
        const record = Option.flatMap(existing, (text) => Option.fromNullable(parseRecord(text)))
        yield* Txn.txn([
          Op.delete(runnerKey(address)),
          ...Option.match(record, {
            onNone: () => [],
            onSome: (record) => [
              Op.txn([Compare.value(machineKey(record.machineId)).equals(address)], [
                Op.delete(machineKey(record.machineId))
              ])
            ]
          })
        ])
      }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.unregister", { captureStackTrace: false }))

    const getRunners = Effect.gen(function*() {
      const result = yield* Kv.range(KeyRange.prefix(runnersPrefix))
      const runners: Array<readonly [string, boolean]> = []
      for (const kv of result.kvs) {
        const record = parseRecord(kv.value)
        if (record !== undefined) runners.push([record.runner, record.healthy])
      }
      return runners
    }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.getRunners", { captureStackTrace: false }))

    const setRunnerHealth = (address: string, healthy: boolean) =>
      Effect.gen(function*() {
        for (let attempt = 0; attempt < registerAttempts; attempt++) {
          const existing = yield* Kv.getKeyValue(runnerKey(address))
          if (Option.isNone(existing)) return
          const record = parseRecord(existing.value.value)
          if (record === undefined || record.healthy === healthy) return
          // the record stays on its runner's lease, whoever marks it
          const result = yield* Txn.txnCompare(
            [Compare.modRevision(runnerKey(address)).equals(existing.value.modRevision)],
            [Op.put(runnerKey(address), JSON.stringify({ ...record, healthy }), { ignoreLease: true })]
          )
          if (result.succeeded) return
        }
        return yield* Effect.fail(`could not mark ${address}: ${registerAttempts} attempts raced other writers`)
      }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.setRunnerHealth", { captureStackTrace: false }))

    const acquire = (address: string, shardIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const session = yield* heldSession
        if (Option.isNone(session)) return []
        const leaseId = session.value.lease.id
        const acquired: Array<string> = []
        for (const batch of chunks(shardIds, acquireBatch)) {
          const { results, revision } = yield* Txn.txnCompare(
            [],
            batch.map((shardId) =>
              Op.txn(
                [Compare.createRevision(shardKey(shardId)).equals(0)],
                [Op.put(shardKey(shardId), address, { lease: leaseId })],
                [Op.get(shardKey(shardId))]
              )
            )
          )
          // every put of one txn has the txn's revision: that is the lock's create revision
          results.forEach((nested, i) => {
            const shardId = batch[i]
            if (nested.succeeded) {
              held.set(shardId, { createRevision: revision, leaseId })
              acquired.push(shardId)
              return
            }
            const kv = nested.results[0].kvs[0]
            if (kv !== undefined && kv.lease === leaseId) {
              held.set(shardId, { createRevision: kv.createRevision, leaseId })
              acquired.push(shardId)
            }
          })
        }
        // a lease lost meanwhile holds nothing
        if (yield* session.value.isLost) return []
        return acquired
      }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.acquire", { captureStackTrace: false }))

    const refresh = (address: string, shardIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const session = yield* heldSession
        if (Option.isNone(session)) {
          held.clear()
          return []
        }
        const leaseId = session.value.lease.id
        const mine = shardIds.flatMap((shardId) => {
          const lock = held.get(shardId)
          return lock !== undefined && lock.leaseId === leaseId ? [[shardId, lock] as const] : []
        })
        yield* Effect.annotateCurrentSpan("shards", mine.length)
        if (mine.length === 0) {
          // nothing to check: still ask etcd, so that an unreachable etcd is noticed
          yield* Kv.get(runnerKey(address))
          return []
        }
        const still: Array<string> = []
        for (const batch of chunks(mine, refreshBatch)) {
          // the fence: the lock is held while its key with the create revision we took exists
          // (one txn of reads, so that every key is read at one revision)
          const results = yield* Txn.txn(batch.map(([shardId]) => Op.get(shardKey(shardId), { keysOnly: true })))
          results.forEach((result, i) => {
            const [shardId, lock] = batch[i]
            const kv = result.kvs[0]
            if (kv !== undefined && kv.createRevision === lock.createRevision) still.push(shardId)
            else if (held.get(shardId) === lock) held.delete(shardId)
          })
        }
        if (yield* session.value.isLost) return []
        return still
      }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.refresh", { captureStackTrace: false }))

    const release = (_address: string, shardId: string) =>
      Effect.gen(function*() {
        const lock = held.get(shardId)
        held.delete(shardId)
        if (lock === undefined) return
        yield* Txn.txnCompare([Compare.createRevision(shardKey(shardId)).equals(lock.createRevision)], [
          Op.delete(shardKey(shardId))
        ])
      }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.release", { captureStackTrace: false }))

    const releaseAll = (address: string) =>
      Effect.gen(function*() {
        const session = yield* heldSession
        for (const [shardId, lock] of held) {
          if (Option.isNone(session) || lock.leaseId === session.value.lease.id) held.delete(shardId)
        }
        if (Option.isNone(session)) return
        const leaseId = session.value.lease.id
        // the locks on this runner's lease that name this address, wherever they were taken
        const locks = (yield* Kv.range(KeyRange.prefix(shardsPrefix))).kvs.filter((kv) =>
          kv.lease === leaseId && kv.value === address
        )
        for (const batch of chunks(locks, releaseAllBatch)) {
          yield* Txn.txn(
            batch.map((kv) =>
              Op.txn([Compare.createRevision(kv.keyBytes).equals(kv.createRevision)], [Op.delete(kv.keyBytes)])
            )
          )
        }
      }).pipe(provide, persistence, Effect.withSpan("EtcdRunnerStorage.releaseAll", { captureStackTrace: false }))

    const storage = RunnerStorage.makeEncoded({
      register,
      unregister,
      getRunners,
      setRunnerHealth,
      acquire,
      refresh,
      release,
      releaseAll
    })

    const locks: ShardLocks = {
      get: (shardId) =>
        Effect.map(heldSession, (session) => {
          const id = typeof shardId === "string" ? shardId : shardId.toString()
          const lock = held.get(id)
          if (Option.isNone(session) || lock === undefined || lock.leaseId !== session.value.lease.id) {
            return Option.none()
          }
          const key = shardKey(id)
          return Option.some({
            shardId: id,
            key,
            createRevision: lock.createRevision,
            leaseId: lock.leaseId,
            fence: Compare.createRevision(key).equals(lock.createRevision)
          })
        }),
      leaseId: Effect.map(heldSession, Option.map((session) => session.lease.id))
    }

    return { storage, locks }
  })

/**
 * `RunnerStorage` on etcd, and the {@link ShardLocks} of this runner, from an `Etcd` layer.
 * The session lease lives as long as the layer.
 *
 * @example
 * ```ts
 * import { EtcdRunnerStorage } from "@effect-etcd/cluster"
 * import { Etcd } from "effect-etcd"
 * import { Layer } from "effect"
 *
 * const storage = EtcdRunnerStorage.layer({ prefix: "shop/cluster/", ttl: "10 seconds" }).pipe(
 *   Layer.provide(Etcd.layer({ endpoints: ["http://127.0.0.1:2379"] }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: EtcdRunnerStorageOptions
): Layer.Layer<RunnerStorage.RunnerStorage | ShardLocks, EtcdError.LeaseGrantError, Etcd.Etcd> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ locks, storage }) =>
      Context.make(RunnerStorage.RunnerStorage, storage).pipe(Context.add(ShardLocks, locks)))
  )

/**
 * {@link layer} with its options read from a `Config`, for example
 * `Config.all({ prefix: Config.string("CLUSTER_PREFIX"), ttl: Config.duration("CLUSTER_LEASE_TTL") })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<EtcdRunnerStorageOptions>
): Layer.Layer<
  RunnerStorage.RunnerStorage | ShardLocks,
  EtcdError.LeaseGrantError | ConfigError.ConfigError,
  Etcd.Etcd
> => Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
