/**
 * Operating a cluster: the status of each member, alarms, defragmentation, hashes for
 * consistency checks, leadership transfer, and snapshots (backups), as clientv3's
 * `Maintenance` interface and the `etcd3` package's `maintenance` calls offer them.
 *
 * Calls that take an `endpoint` go to that member and no other, whichever member the
 * client prefers for its other calls; a member the client was not built with is dialled
 * for the call alone. Compaction is `Kv.compact`.
 *
 * The auth token goes only to members of the cluster it was obtained from. A client with
 * credentials refuses an `endpoint` (in `status`, `defragment`, `hashKv`, `snapshot`,
 * `snapshotToFile`) that is neither one it was built with (or discovered) nor a client
 * URL in the cluster's member list (`Cluster.members`): the call fails with
 * `InvalidArgument` and nothing is sent there. Without credentials any endpoint may be
 * asked.
 *
 * @example
 * ```ts
 * import * as NodeContext from "@effect/platform-node/NodeContext"
 * import { Effect } from "effect"
 * import { Maintenance } from "effect-etcd"
 *
 * const backup = Effect.gen(function*() {
 *   const status = yield* Maintenance.status()
 *   yield* Effect.log(`etcd ${status.version}, ${status.dbSize} bytes, leader ${status.leader}`)
 *   // written to a temporary file, renamed once the whole snapshot has arrived
 *   return yield* Maintenance.snapshotToFile("/var/backups/etcd.db", {
 *     onProgress: (bytes) => Effect.logDebug(`${bytes} bytes so far`)
 *   })
 * }).pipe(Effect.provide(NodeContext.layer))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import { fileSystem } from "./internal/base/fileSystem.js"
import * as Printable from "./internal/base/printable.js"
import { fromCount, fromInt64, toInt64 } from "./internal/data/codec.js"
import type { AlarmMember__Output } from "./internal/wire/proto/generated/etcdserverpb/AlarmMember.js"
import type { StatusResponse__Output } from "./internal/wire/proto/generated/etcdserverpb/StatusResponse.js"
import { methods } from "./internal/wire/proto/loader.js"

/**
 * Per-call settings of the maintenance calls.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  /** This call's deadline instead of the client's `requestTimeout` (defragmenting a large store takes a while). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * What a member says of itself (clientv3 `Status`, etcd3 `status`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  /** The endpoint that answered. */
  readonly endpoint: string
  /** The ID of the member that answered. */
  readonly memberId: bigint
  readonly clusterId: bigint
  /** The etcd version of the member, e.g. `3.4.23`. */
  readonly version: string
  /** The size of the member's database file, in bytes. */
  readonly dbSize: number
  /** The bytes of the database in use; the rest is reclaimed by {@link defragment}. */
  readonly dbSizeInUse: number
  /** The ID of the member the answering member takes as leader (0 when it knows none). */
  readonly leader: bigint
  /** Whether the answering member is the leader. */
  readonly isLeader: boolean
  readonly isLearner: boolean
  readonly raftIndex: bigint
  readonly raftTerm: bigint
  readonly raftAppliedIndex: bigint
  /** The store's current revision as the member sees it. */
  readonly revision: bigint
  /** Alarm and other errors the member reports. */
  readonly errors: ReadonlyArray<string>
}

/**
 * A raised alarm: which member raised it and why. `NOSPACE` means the member's storage
 * quota (`--quota-backend-bytes`) is exhausted and writes fail with `NoSpace`; `CORRUPT`
 * means its data differs from the others'.
 *
 * @since 0.1.0
 * @category models
 */
export interface Alarm {
  readonly memberId: bigint
  readonly type: "NOSPACE" | "CORRUPT"
}

/**
 * A member's hash of its keys and values up to a revision (clientv3 `HashKV`): members
 * that agree on a revision have the same hash for it.
 *
 * @since 0.1.0
 * @category models
 */
export interface HashKv {
  readonly hash: number
  /** The revision the member last compacted at. */
  readonly compactRevision: bigint
  /** The member's current revision when it answered. */
  readonly revision: bigint
  readonly memberId: bigint
}

const toCallError = EtcdError.toFamily("call")
const withinCall = EtcdError.within("call")

// statuses, alarms and hashes print safely: their IDs and revisions are bigints
const StatusProto = Printable.Proto("Maintenance.Status")
const AlarmProto = Printable.Proto("Maintenance.Alarm")
const HashKvProto = Printable.Proto("Maintenance.HashKv")

const toStatus = (endpoint: string, response: StatusResponse__Output): Status => {
  const memberId = fromInt64(response.header?.memberId)
  const leader = fromInt64(response.leader)
  return Printable.make(StatusProto, {
    endpoint,
    memberId,
    clusterId: fromInt64(response.header?.clusterId),
    version: response.version,
    dbSize: fromCount(response.dbSize),
    dbSizeInUse: fromCount(response.dbSizeInUse),
    leader,
    isLeader: leader !== 0n && leader === memberId,
    isLearner: response.isLearner,
    raftIndex: fromInt64(response.raftIndex),
    raftTerm: fromInt64(response.raftTerm),
    raftAppliedIndex: fromInt64(response.raftAppliedIndex),
    revision: fromInt64(response.header?.revision),
    errors: response.errors
  })
}

/**
 * The status of one member: the one at `endpoint`, or, without it, the member the client
 * uses now (clientv3 `Status`, etcd3 `maintenance.status`).
 *
 * @since 0.1.0
 * @category status
 */
export const status = (
  endpoint?: string | undefined,
  options?: CallOptions
): Effect.Effect<Status, EtcdError.CallError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    endpoint === undefined
      ? Effect.map(
        etcd.transport.unary(methods.maintenance.status, {}, { idempotency: "repeatable", timeout: options?.timeout }),
        (response) => toStatus(etcd.transport.current().url, response)
      )
      : Effect.map(
        etcd.transport.unaryTo(endpoint, methods.maintenance.status, {}, {
          idempotency: "repeatable",
          timeout: options?.timeout
        }),
        (response) => toStatus(endpoint, response)
      )).pipe(withinCall)

const toAlarm = (alarm: AlarmMember__Output): Alarm =>
  Printable.make(AlarmProto, {
    memberId: fromInt64(alarm.memberID),
    type: alarm.alarm === "CORRUPT" ? "CORRUPT" : "NOSPACE"
  })

/**
 * The alarms raised in the cluster (clientv3 `AlarmList`, etcd3 `maintenance.alarms`).
 *
 * @since 0.1.0
 * @category alarms
 */
export const alarms: Effect.Effect<ReadonlyArray<Alarm>, EtcdError.CallError, Etcd> = Effect.flatMap(
  Etcd,
  (etcd) =>
    Effect.map(
      etcd.transport.unary(methods.maintenance.alarm, { action: "GET", memberID: "0", alarm: "NONE" }, {
        idempotency: "repeatable"
      }),
      (response) => response.alarms.filter((alarm) => alarm.alarm !== "NONE").map(toAlarm)
    )
).pipe(withinCall)

/**
 * Clears an alarm, or, without one, every alarm raised now (clientv3 `AlarmDisarm`,
 * etcd3 `maintenance.alarmDisarm`); returns the alarms cleared. Clear a `NOSPACE` alarm
 * only after freeing space (`Kv.compact`, then {@link defragment} on every member), or
 * the next write raises it again.
 *
 * @since 0.1.0
 * @category alarms
 */
export const disarm = (
  alarm?: Alarm | undefined
): Effect.Effect<ReadonlyArray<Alarm>, EtcdError.CallError, Etcd> =>
  Effect.gen(function*() {
    const etcd = yield* Etcd
    const targets = alarm === undefined ? yield* alarms : [alarm]
    const cleared: Array<Alarm> = []
    for (const target of targets) {
      const response = yield* etcd.transport.unary(methods.maintenance.alarm, {
        action: "DEACTIVATE",
        memberID: toInt64(target.memberId),
        alarm: target.type
      }, { idempotency: "repeatable" })
      cleared.push(...response.alarms.filter((raised) => raised.alarm !== "NONE").map(toAlarm))
    }
    return cleared
  }).pipe(withinCall)

/**
 * Rewrites the database file of the member at `endpoint` without the space freed by
 * compaction (clientv3 `Defragment`, etcd3 `maintenance.defragment`). The member serves
 * nothing while it runs: defragment one member at a time, and give a large store a
 * `timeout` of its own.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const defragment = (
  endpoint: string,
  options?: CallOptions
): Effect.Effect<void, EtcdError.CallError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.asVoid(
      etcd.transport.unaryTo(endpoint, methods.maintenance.defragment, {}, {
        idempotency: "repeatable",
        timeout: options?.timeout
      })
    )).pipe(withinCall)

/**
 * The hash of the keys and values of the member at `endpoint` up to `revision` (0, the
 * default, for its current revision): clientv3 `HashKV`. Members whose hashes differ at
 * one revision hold different data.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const hashKv = (
  endpoint: string,
  revision: bigint = 0n,
  options?: CallOptions
): Effect.Effect<HashKv, EtcdError.HashKvError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.map(
      etcd.transport.unaryTo(endpoint, methods.maintenance.hashKv, { revision: toInt64(revision) }, {
        idempotency: "repeatable",
        timeout: options?.timeout,
        revision
      }),
      (response): HashKv =>
        Printable.make(HashKvProto, {
          hash: response.hash,
          compactRevision: fromInt64(response.compactRevision),
          revision: fromInt64(response.header?.revision),
          memberId: fromInt64(response.header?.memberId)
        })
    )).pipe(EtcdError.within("hashKv"))

/**
 * Hands leadership to the member `memberId` (clientv3 `MoveLeader`). The request must
 * reach the current leader: it is found from the status and member list and sent there.
 *
 * @since 0.1.0
 * @category maintenance
 */
export const moveLeader = (
  memberId: bigint,
  options?: CallOptions
): Effect.Effect<void, EtcdError.StateChangeError, Etcd> =>
  Effect.gen(function*() {
    const etcd = yield* Etcd
    const { leader } = yield* status()
    const { members } = yield* etcd.transport.unary(methods.cluster.memberList, {}, { idempotency: "repeatable" })
    const url = members.find((member) => fromInt64(member.ID) === leader)?.clientURLs[0]
    if (url === undefined) return yield* new EtcdError.NoLeader({ reason: "the leader has no client URL" })
    yield* etcd.transport.unaryTo(url, methods.maintenance.moveLeader, { targetID: toInt64(memberId) }, {
      idempotency: "mutation",
      timeout: options?.timeout
    })
  }).pipe(EtcdError.within("stateChange"))

export {
  /**
   * A snapshot could not be written to a file: the stream broke, or the file could not be
   * written. Nothing is left at `path`. The same class as `EtcdError.SnapshotFailed`, a
   * member of the `EtcdError` union.
   *
   * @since 0.1.0
   * @category errors
   */
  SnapshotFailed
} from "./EtcdError.js"

/** etcd sends the SHA-256 of the database after the data. */
const checksumBytes = 32

/** A grpc-js server stream, as far as reading it goes. */
interface CancellableIterable<A> extends AsyncIterable<A> {
  readonly cancel: () => void
  readonly on: (event: "error", listener: () => void) => unknown
}

/**
 * `call` read as an async iterable whose `return` (what a Stream's finalizer calls when its
 * consumer stops early or is interrupted) cancels the call first. A Readable's iterator
 * waits in `return` for the stream to close, and a call to a member that never answers
 * does not close until it is cancelled: without this, interrupting the consumer waited for
 * ever.
 */
const cancelledOnReturn = <A>(call: CancellableIterable<A>): AsyncIterable<A> => ({
  [Symbol.asyncIterator]: () => {
    const iterator = call[Symbol.asyncIterator]()
    return {
      next: () => iterator.next(),
      return: (value?: unknown) => {
        // the cancel reports CANCELLED as an error event: nobody listens any more
        call.on("error", () => {})
        call.cancel()
        return iterator.return?.(value) ?? Promise.resolve({ done: true, value: undefined })
      }
    }
  }
})

/**
 * A snapshot of the whole store, as the bytes of a database file that
 * `etcdctl snapshot restore` reads (clientv3 `Snapshot`, etcd3 `maintenance.snapshot`).
 * It comes from the member at `endpoint`, or from the member the client uses now. A
 * stream that ends before the server sent the last bytes fails with `Unavailable`.
 *
 * @since 0.1.0
 * @category snapshots
 */
export const snapshot = (
  options?: { readonly endpoint?: string | undefined }
): Stream.Stream<Uint8Array, EtcdError.CallError, Etcd> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const etcd = yield* Etcd
    const path = methods.maintenance.snapshot.path
    const { call, endpoint } = yield* Effect.acquireRelease(
      etcd.transport.serverStream(methods.maintenance.snapshot, {}, options?.endpoint),
      ({ call }) =>
        Effect.sync(() => {
          // the cancel reports CANCELLED as an error event: nobody listens any more
          call.on("error", () => {})
          call.cancel()
        })
    )
    let expected: number | undefined
    let received = 0
    let lastRemaining = -1
    const chunks = Stream.fromAsyncIterable(
      cancelledOnReturn(
        call as unknown as CancellableIterable<{ readonly remainingBytes: string; readonly blob: Buffer }>
      ),
      (error) => etcd.transport.streamError(path, endpoint, error)
    ).pipe(
      Stream.map((response) => {
        if (expected === undefined) expected = fromCount(response.remainingBytes) + response.blob.length
        received += response.blob.length
        lastRemaining = fromCount(response.remainingBytes)
        return new Uint8Array(response.blob.buffer, response.blob.byteOffset, response.blob.byteLength)
      })
    )
    const complete = Stream.suspend(() =>
      lastRemaining === 0 && expected !== undefined && received >= expected + checksumBytes
        ? Stream.empty
        : Stream.fail(
          new EtcdError.Unavailable({
            method: path,
            endpoints: [endpoint.url],
            reason: `the snapshot stream ended after ${received} bytes, before its end`
          })
        )
    )
    return Stream.concat(chunks, complete)
  })).pipe(
    Stream.mapError(toCallError),
    Stream.withSpan("Maintenance.snapshot", { kind: "client", captureStackTrace: false })
  )

/**
 * Writes a snapshot to `path` through the platform's `FileSystem`: into a temporary file
 * beside it, synced and renamed to `path` only once the whole snapshot has arrived. When
 * the stream breaks or the file cannot be written, fails with {@link SnapshotFailed} and
 * leaves no file behind (an interrupted call too). `onProgress` is told the bytes
 * received so far after every chunk. Returns the snapshot's size. The file holds the
 * whole keyspace: it is created with mode 600 (its owner alone may read it), as
 * `etcdctl snapshot save` creates it, whatever the process's umask.
 *
 * @example
 * ```ts
 * import * as NodeContext from "@effect/platform-node/NodeContext"
 * import { Effect } from "effect"
 * import { Maintenance } from "effect-etcd"
 *
 * const backup = Maintenance.snapshotToFile("/var/backups/etcd.db").pipe(
 *   Effect.catchTag("SnapshotFailed", (error) => Effect.logError(error.message)),
 *   Effect.provide(NodeContext.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category snapshots
 */
export const snapshotToFile = (
  path: string,
  options?: {
    readonly endpoint?: string | undefined
    readonly onProgress?: ((bytesSoFar: number) => Effect.Effect<void>) | undefined
  }
): Effect.Effect<
  { readonly path: string; readonly bytes: number },
  EtcdError.SnapshotFailed,
  Etcd | FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const fs = yield* fileSystem
    const partial = `${path}.partial-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
    let bytes = 0
    const failed = (cause: unknown) => new EtcdError.SnapshotFailed({ path, bytesReceived: bytes, cause })
    const write = Effect.scoped(Effect.gen(function*() {
      // the whole keyspace: readable by its owner only, whatever the umask (as etcdctl writes it)
      const file = yield* fs.open(partial, { flag: "wx", mode: 0o600 })
      yield* Stream.runForEach(snapshot({ endpoint: options?.endpoint }), (chunk) =>
        Effect.zipRight(
          file.writeAll(chunk),
          Effect.suspend(() => {
            bytes += chunk.byteLength
            return options?.onProgress === undefined ? Effect.void : options.onProgress(bytes)
          })
        ))
      yield* file.sync
    }))
    yield* write.pipe(
      Effect.zipRight(fs.rename(partial, path)),
      Effect.mapError(failed),
      Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.ignore(fs.remove(partial)))
    )
    return { path, bytes }
  }).pipe(
    Effect.withSpan("Maintenance.snapshotToFile", { captureStackTrace: false, attributes: { "file.path": path } })
  )
