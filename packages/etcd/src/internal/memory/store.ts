/**
 * The in-memory MVCC store behind `EtcdMemory`: etcd's revision semantics (one revision
 * per write transaction, create/mod revisions and versions per key, generations that
 * start over after a delete), ranges with every option, txns with compares and nested
 * txns, compaction, leases with deadlines in milliseconds of the caller's clock, and the
 * event history watchers read. Everything here is synchronous; the service around it
 * (`./service.ts`) brings the clock, the faults and the streams.
 */
import * as EtcdError from "../../EtcdError.js"
import type { Compare } from "../wire/proto/generated/etcdserverpb/Compare.js"
import type { DeleteRangeRequest } from "../wire/proto/generated/etcdserverpb/DeleteRangeRequest.js"
import type { DeleteRangeResponse__Output } from "../wire/proto/generated/etcdserverpb/DeleteRangeResponse.js"
import type { PutRequest } from "../wire/proto/generated/etcdserverpb/PutRequest.js"
import type { PutResponse__Output } from "../wire/proto/generated/etcdserverpb/PutResponse.js"
import type { RangeRequest } from "../wire/proto/generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "../wire/proto/generated/etcdserverpb/RangeResponse.js"
import type { RequestOp } from "../wire/proto/generated/etcdserverpb/RequestOp.js"
import type { ResponseHeader__Output } from "../wire/proto/generated/etcdserverpb/ResponseHeader.js"
import type { ResponseOp__Output } from "../wire/proto/generated/etcdserverpb/ResponseOp.js"
import type { TxnRequest } from "../wire/proto/generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "../wire/proto/generated/etcdserverpb/TxnResponse.js"
import type { Event__Output } from "../wire/proto/generated/mvccpb/Event.js"
import type { KeyValue__Output } from "../wire/proto/generated/mvccpb/KeyValue.js"

/** Limits the server enforces; etcd's defaults. */
export interface Limits {
  /** `--max-txn-ops`: operations per branch of a txn, and compares, nested txns' counted in as etcd does. */
  readonly maxTxnOps: number
  /** `--max-request-bytes`: the size of one request. */
  readonly maxRequestBytes: number
  /**
   * The least TTL granted, in seconds: etcd raises a smaller one to
   * ceil(1.5 × election timeout), 2 with its default election timeout of 1 second.
   */
  readonly minLeaseTtl: number
}

/** etcd's default limits. */
export const defaultLimits: Limits = { maxTxnOps: 128, maxRequestBytes: 1.5 * 1024 * 1024, minLeaseTtl: 2 }

/** The methods' paths, as the real transport names them in its errors. */
const methods = {
  range: "/etcdserverpb.KV/Range",
  put: "/etcdserverpb.KV/Put",
  deleteRange: "/etcdserverpb.KV/DeleteRange",
  txn: "/etcdserverpb.KV/Txn",
  compact: "/etcdserverpb.KV/Compact",
  grant: "/etcdserverpb.Lease/LeaseGrant",
  revoke: "/etcdserverpb.Lease/LeaseRevoke",
  keepAlive: "/etcdserverpb.Lease/LeaseKeepAlive"
} as const

/** One version of a key; a tombstone ends a generation. */
export interface Version {
  readonly modRevision: bigint
  readonly createRevision: bigint
  readonly version: bigint
  readonly value: Buffer
  readonly lease: bigint
  readonly tombstone: boolean
}

interface Lease {
  readonly id: bigint
  readonly grantedTtl: number
  /** Clock millis at which it expires. */
  deadline: number
  readonly keys: Set<string>
  /**
   * How many keepalives hold it: while one does, it is refreshed as often as needed, at no
   * cost, and does not expire (see `hold`).
   */
  held: number
}

/** One change of a key: its new version (a tombstone for a delete) and the one before. */
export interface Change {
  readonly key: string
  readonly version: Version
  readonly previous: Version | undefined
}

/** The changes of one revision, as watchers see them; turned into events only when delivered. */
export interface RevisionEvents {
  readonly revision: bigint
  readonly changes: ReadonlyArray<Change>
}

type Int64Input = number | string | { toString(): string } | null | undefined

const int64 = (value: Int64Input): bigint => {
  if (value === undefined || value === null || value === "") return 0n
  return BigInt(typeof value === "number" ? Math.trunc(value) : value.toString())
}

const bytes = (value: Buffer | Uint8Array | string | undefined | null): Buffer =>
  value === undefined || value === null
    ? Buffer.alloc(0)
    : typeof value === "string"
    ? Buffer.from(value, "utf8")
    : Buffer.isBuffer(value)
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength)

/** Keys are held as latin1 strings: one char per byte, so string order is byte order. */
const keyString = (key: Buffer): string => key.toString("latin1")
const keyBuffer = (key: string): Buffer => Buffer.from(key, "latin1")

const enumName = (value: unknown, names: ReadonlyArray<string>): string =>
  typeof value === "number" ? (names[value] ?? names[0]!) : typeof value === "string" ? value : names[0]!

const sortOrders = ["NONE", "ASCEND", "DESCEND"] as const
const sortTargets = ["KEY", "VERSION", "CREATE", "MOD", "VALUE"] as const
const compareResults = ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"] as const
const compareTargets = ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"] as const

/** Which keys an interval holds: one key, or `[key, end)`, or everything from `key` on. */
interface Interval {
  readonly start: string
  /** undefined: the single key `start`; "" : no upper bound (a range end of 0x00). */
  readonly end: string | undefined
}

const intervalOf = (key: Buffer, rangeEnd: Buffer | undefined): Interval => {
  const start = keyString(key)
  if (rangeEnd === undefined || rangeEnd.length === 0) return { start, end: undefined }
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: "" }
  return { start, end: keyString(rangeEnd) }
}

const inInterval = (interval: Interval, key: string): boolean =>
  interval.end === undefined
    ? key === interval.start
    : key >= interval.start && (interval.end === "" || key < interval.end)

const compareBuffers = (a: Buffer, b: Buffer): number => Buffer.compare(a, b)

/** What a write transaction collects: its events, in order. */
interface WriteContext {
  readonly revision: bigint
  readonly events: Array<Change>
}

/** Where `key` is, or would go, in the sorted `keys`. */
const lowerBound = (keys: ReadonlyArray<string>, key: string): number => {
  let low = 0
  let high = keys.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (keys[mid]! < key) low = mid + 1
    else high = mid
  }
  return low
}

/**
 * Puts `key` at its place in the sorted `keys` (a search and one move of the tail), rather
 * than sorting every key again: keys that do not come last (a lock's
 * `<name>/<lease>-<sequence>` after the tenth) would otherwise cost a sort per write.
 */
const insertSorted = (keys: Array<string>, key: string): void => {
  if (keys.length === 0 || keys[keys.length - 1]! < key) {
    keys.push(key)
    return
  }
  const at = lowerBound(keys, key)
  if (keys[at] !== key) keys.splice(at, 0, key)
}

const removeSorted = (keys: Array<string>, key: string): void => {
  const at = lowerBound(keys, key)
  if (keys[at] === key) keys.splice(at, 1)
}

/** The store. Clock time is passed in by the caller, in milliseconds. */
export class Store {
  revision = 1n
  compactRevision = 0n
  private readonly keys = new Map<string, Array<Version>>()
  private sortedKeys: Array<string> | undefined = []
  /**
   * The keys whose newest version is not a tombstone, sorted: what a read of the newest
   * revision looks through. `sortedKeys` also holds every deleted key whose history is
   * not compacted yet (as etcd keeps it), which only a read of an older revision needs:
   * a queue of locks, each key put once and deleted, would otherwise make every read of
   * its prefix look at every key it ever had.
   */
  private readonly liveKeys: Array<string> = []
  /** Every change since the compact revision, in revision order. */
  private history: Array<Change> = []
  private readonly leases = new Map<bigint, Lease>()
  /** No lease expires before this (a lower bound: a keepalive may have moved it later). */
  private earliestDeadline = Number.POSITIVE_INFINITY
  private readonly listeners = new Set<(changes: RevisionEvents) => void>()
  private readonly leaseListeners = new Set<(id: bigint, reason: "expired" | "revoked") => void>()
  readonly memberId = "1"
  readonly clusterId = "1"

  constructor(readonly limits: Limits) {}

  header(revision: bigint = this.revision): ResponseHeader__Output {
    return { clusterId: this.clusterId, memberId: this.memberId, revision: revision.toString(), raftTerm: "1" }
  }

  /** Called with the events of every write revision, in order. */
  onChanges(listener: (changes: RevisionEvents) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Called when a lease ends. */
  onLeaseEnd(listener: (id: bigint, reason: "expired" | "revoked") => void): () => void {
    this.leaseListeners.add(listener)
    return () => this.leaseListeners.delete(listener)
  }

  // -------------------------------------------------------------------------
  // reads
  // -------------------------------------------------------------------------

  /** The newest version of a key, written by the txn under way included; undefined when deleted or absent. */
  private latest(key: string): Version | undefined {
    const versions = this.keys.get(key)
    if (versions === undefined) return undefined
    const version = versions[versions.length - 1]!
    return version.tombstone ? undefined : version
  }

  private versionAt(key: string, revision: bigint): Version | undefined {
    const versions = this.keys.get(key)
    if (versions === undefined) return undefined
    const last = versions[versions.length - 1]!
    if (last.modRevision <= revision) return last.tombstone ? undefined : last
    for (let i = versions.length - 1; i >= 0; i--) {
      const version = versions[i]!
      if (version.modRevision <= revision) return version.tombstone ? undefined : version
    }
    return undefined
  }

  /**
   * The keys of `interval` that may have a version at `revision`: only live ones at the
   * newest revision (`newest`: the store's, or inside a txn that has written, the txn's).
   */
  private keysIn(interval: Interval, revision: bigint, newest: bigint = this.revision): Array<string> {
    if (interval.end === undefined) return this.keys.has(interval.start) ? [interval.start] : []
    let sorted: Array<string>
    if (revision === newest) {
      sorted = this.liveKeys
    } else {
      if (this.sortedKeys === undefined) this.sortedKeys = Array.from(this.keys.keys()).sort()
      sorted = this.sortedKeys
    }
    let low = lowerBound(sorted, interval.start)
    const out: Array<string> = []
    for (; low < sorted.length; low++) {
      const key = sorted[low]!
      if (interval.end !== "" && key >= interval.end) break
      out.push(key)
    }
    return out
  }

  /** A change as a watch event. */
  toEvent(change: Change): Event__Output {
    const k = change.key
    const version = change.version
    return {
      type: version.tombstone ? "DELETE" : "PUT",
      kv: version.tombstone
        ? {
          key: keyBuffer(k),
          createRevision: "0",
          modRevision: version.modRevision.toString(),
          version: "0",
          value: Buffer.alloc(0),
          lease: "0"
        }
        : this.toKeyValue(k, version),
      prevKv: change.previous === undefined ? null : this.toKeyValue(k, change.previous)
    }
  }

  private toKeyValue(key: string, version: Version, keysOnly = false): KeyValue__Output {
    return {
      key: keyBuffer(key),
      createRevision: version.createRevision.toString(),
      modRevision: version.modRevision.toString(),
      version: version.version.toString(),
      value: keysOnly ? Buffer.alloc(0) : version.value,
      lease: version.lease.toString()
    }
  }

  private checkRevision(requested: bigint, method: string): bigint {
    if (requested <= 0n) return this.revision
    if (requested > this.revision) {
      throw new EtcdError.FutureRevision({ method, requestedRevision: requested, currentRevision: this.revision })
    }
    if (requested < this.compactRevision) {
      throw new EtcdError.Compacted({ method, compactRevision: this.compactRevision, requestedRevision: requested })
    }
    return requested
  }

  range(request: RangeRequest, method: string = methods.range): RangeResponse__Output {
    if (bytes(request.key).length === 0) throw new EtcdError.EmptyKey({ method })
    return this.rangeAt(request, this.checkRevision(int64(request.revision as Int64Input), method), this.revision)
  }

  /** A range read at `revision` (checked already), when `newest` is the newest revision there is. */
  private rangeAt(request: RangeRequest, revision: bigint, newest: bigint): RangeResponse__Output {
    const key = bytes(request.key)
    const interval = intervalOf(key, request.rangeEnd === undefined ? undefined : bytes(request.rangeEnd))
    let found: Array<[string, Version]> = []
    if (interval.end === undefined) {
      const version = this.versionAt(interval.start, revision)
      if (version !== undefined) found.push([interval.start, version])
    } else {
      for (const k of this.keysIn(interval, revision, newest)) {
        const version = this.versionAt(k, revision)
        if (version !== undefined) found.push([k, version])
      }
    }
    const count = found.length
    const limit = Number(int64(request.limit as Int64Input))
    const minMod = int64(request.minModRevision as Int64Input)
    const maxMod = int64(request.maxModRevision as Int64Input)
    const minCreate = int64(request.minCreateRevision as Int64Input)
    const maxCreate = int64(request.maxCreateRevision as Int64Input)
    if (maxMod !== 0n) found = found.filter(([, v]) => v.modRevision <= maxMod)
    if (minMod !== 0n) found = found.filter(([, v]) => v.modRevision >= minMod)
    if (maxCreate !== 0n) found = found.filter(([, v]) => v.createRevision <= maxCreate)
    if (minCreate !== 0n) found = found.filter(([, v]) => v.createRevision >= minCreate)
    const target = enumName(request.sortTarget, sortTargets)
    let order = enumName(request.sortOrder, sortOrders)
    if (target !== "KEY" && order === "NONE") order = "ASCEND"
    if (order !== "NONE") {
      const by = (a: [string, Version], b: [string, Version]): number => {
        switch (target) {
          case "VERSION":
            return a[1].version < b[1].version ? -1 : a[1].version > b[1].version ? 1 : 0
          case "CREATE":
            return a[1].createRevision < b[1].createRevision ? -1 : a[1].createRevision > b[1].createRevision ? 1 : 0
          case "MOD":
            return a[1].modRevision < b[1].modRevision ? -1 : a[1].modRevision > b[1].modRevision ? 1 : 0
          case "VALUE":
            return compareBuffers(a[1].value, b[1].value)
          default:
            return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0
        }
      }
      found.sort(order === "DESCEND" ? (a, b) => by(b, a) : by)
    }
    let more = false
    if (limit > 0 && found.length > limit) {
      found = found.slice(0, limit)
      more = true
    }
    return {
      header: this.header(),
      kvs: request.countOnly ? [] : found.map(([k, v]) => this.toKeyValue(k, v, request.keysOnly === true)),
      more: request.countOnly ? false : more,
      count: count.toString()
    }
  }

  // -------------------------------------------------------------------------
  // writes
  // -------------------------------------------------------------------------

  /**
   * A new key goes into the sorted list at its place (a binary search and one move of the
   * tail), not by sorting every key again at the next range: keys that do not come last
   * (a lock's `<name>/<lease>-<sequence>` after the tenth) would otherwise cost a sort of
   * the whole keyspace per write.
   */
  private markKeyAdded(key: string): void {
    if (this.sortedKeys !== undefined) insertSorted(this.sortedKeys, key)
  }

  private putIn(context: WriteContext, request: PutRequest, method: string): PutResponse__Output {
    const key = bytes(request.key)
    if (key.length === 0) throw new EtcdError.EmptyKey({ method })
    const k = keyString(key)
    const previous = this.latest(k)
    let value = bytes(request.value)
    let lease = int64(request.lease as Int64Input)
    if (request.ignoreValue || request.ignoreLease) {
      if (previous === undefined) throw new EtcdError.EtcdInvalidArgument({ method, reason: "key not found" })
      if (request.ignoreValue) value = previous.value
      if (request.ignoreLease) lease = previous.lease
    }
    if (lease !== 0n && !this.leases.has(lease)) throw new EtcdError.LeaseNotFound({ method, leaseId: lease })
    if (previous !== undefined && previous.lease !== 0n && previous.lease !== lease) {
      this.leases.get(previous.lease)?.keys.delete(k)
    }
    if (lease !== 0n) this.leases.get(lease)!.keys.add(k)
    const version: Version = {
      modRevision: context.revision,
      createRevision: previous?.createRevision ?? context.revision,
      version: (previous?.version ?? 0n) + 1n,
      value,
      lease,
      tombstone: false
    }
    let versions = this.keys.get(k)
    if (versions === undefined) {
      versions = []
      this.keys.set(k, versions)
      this.markKeyAdded(k)
    }
    versions.push(version)
    if (previous === undefined) insertSorted(this.liveKeys, k)
    context.events.push({ key: k, version, previous })
    return {
      header: this.header(context.revision),
      prevKv: request.prevKv && previous !== undefined ? this.toKeyValue(k, previous) : null
    }
  }

  private deleteIn(context: WriteContext, request: DeleteRangeRequest, method: string): DeleteRangeResponse__Output {
    const key = bytes(request.key)
    if (key.length === 0) throw new EtcdError.EmptyKey({ method })
    const interval = intervalOf(key, request.rangeEnd === undefined ? undefined : bytes(request.rangeEnd))
    const prevKvs: Array<KeyValue__Output> = []
    let deleted = 0
    for (const k of this.keysIn(interval, this.revision)) {
      const previous = this.latest(k)
      if (previous === undefined) continue
      deleted++
      if (previous.lease !== 0n) this.leases.get(previous.lease)?.keys.delete(k)
      const tombstone: Version = {
        modRevision: context.revision,
        createRevision: 0n,
        version: 0n,
        value: Buffer.alloc(0),
        lease: 0n,
        tombstone: true
      }
      this.keys.get(k)!.push(tombstone)
      removeSorted(this.liveKeys, k)
      if (request.prevKv) prevKvs.push(this.toKeyValue(k, previous))
      context.events.push({ key: k, version: tombstone, previous })
    }
    return { header: this.header(context.revision), deleted: deleted.toString(), prevKvs }
  }

  /** Runs `f` as one write revision: bumped once if anything changed, and announced to watchers. */
  private write<A>(f: (context: WriteContext) => A): A {
    const context: WriteContext = { revision: this.revision + 1n, events: [] }
    const result = f(context)
    if (context.events.length > 0) this.commit(context)
    return result
  }

  private commit(context: WriteContext): void {
    this.revision = context.revision
    for (const change of context.events) this.history.push(change)
    if (this.listeners.size === 0) return
    const changes: RevisionEvents = { revision: context.revision, changes: context.events }
    for (const listener of this.listeners) listener(changes)
  }

  private checkSize(size: number, method: string): void {
    if (size > this.limits.maxRequestBytes) throw new EtcdError.RequestTooLarge({ method, size })
  }

  put(request: PutRequest): PutResponse__Output {
    this.checkSize(bytes(request.key).length + bytes(request.value).length + 16, methods.put)
    return this.write((context) => this.putIn(context, request, methods.put))
  }

  deleteRange(request: DeleteRangeRequest): DeleteRangeResponse__Output {
    const result = this.write((context) => this.deleteIn(context, request, methods.deleteRange))
    return { ...result, header: this.header() }
  }

  // -------------------------------------------------------------------------
  // txns
  // -------------------------------------------------------------------------

  private compare(compare: Compare, revision: bigint): boolean {
    const key = bytes(compare.key)
    const interval = intervalOf(key, compare.rangeEnd === undefined ? undefined : bytes(compare.rangeEnd))
    const target = enumName(compare.target, compareTargets)
    const result = enumName(compare.result, compareResults)
    const keys = interval.end === undefined ? [interval.start] : this.keysIn(interval, revision)
    const check = (version: Version | undefined): boolean => {
      let ordering: number
      switch (target) {
        case "VALUE": {
          // a missing key has no value: every value compare fails
          if (version === undefined) return false
          ordering = compareBuffers(version.value, bytes(compare.value))
          break
        }
        default: {
          const actual = version === undefined
            ? 0n
            : target === "VERSION"
            ? version.version
            : target === "CREATE"
            ? version.createRevision
            : target === "MOD"
            ? version.modRevision
            : version.lease
          const expected = int64(
            (target === "VERSION"
              ? compare.version
              : target === "CREATE"
              ? compare.createRevision
              : target === "MOD"
              ? compare.modRevision
              : compare.lease) as Int64Input
          )
          ordering = actual < expected ? -1 : actual > expected ? 1 : 0
        }
      }
      switch (result) {
        case "EQUAL":
          return ordering === 0
        case "NOT_EQUAL":
          return ordering !== 0
        case "GREATER":
          return ordering > 0
        default:
          return ordering < 0
      }
    }
    if (interval.end === undefined) return check(this.versionAt(keys[0]!, revision))
    // a compare over a range holds when it holds for every key present in it
    return keys.every((k) => {
      const version = this.versionAt(k, revision)
      return version === undefined || check(version)
    })
  }

  /**
   * The branch a txn takes: its compares are all evaluated at `revision` (for a nested txn
   * too, the store as it was before the outer txn, as etcd evaluates every compare first).
   */
  private branch(
    request: TxnRequest,
    revision: bigint
  ): { readonly succeeded: boolean; readonly ops: ReadonlyArray<RequestOp> } {
    const succeeded = (request.compare ?? []).every((c) => this.compare(c, revision))
    return { succeeded, ops: (succeeded ? request.success : request.failure) ?? [] }
  }

  /**
   * etcd's `checkTxnRequest` (etcdserver/api/v3rpc/key.go): a txn counts the most of its
   * compares, success ops and failure ops, and refuses (`TooManyOps`) a count over its budget,
   * `--max-txn-ops` for the outer txn; each nested txn gets what its parent leaves
   * (the budget less the parent's count), each sibling the same, so a chain of nested txns is
   * refused below `--max-txn-ops` levels.
   */
  private checkTxn(request: TxnRequest, method: string, budget: number = this.limits.maxTxnOps): void {
    const compares = request.compare ?? []
    const success = request.success ?? []
    const failure = request.failure ?? []
    const count = Math.max(compares.length, success.length, failure.length)
    if (count > budget) throw new EtcdError.TooManyOps({ method })
    for (const op of success) if (op.requestTxn) this.checkTxn(op.requestTxn, method, budget - count)
    for (const op of failure) if (op.requestTxn) this.checkTxn(op.requestTxn, method, budget - count)
  }

  /** etcd refuses a txn whose chosen branches put one key twice, or put a key they also delete. */
  private checkDuplicates(ops: ReadonlyArray<RequestOp>, revision: bigint, method: string): void {
    const puts = new Set<string>()
    const deletes: Array<Interval> = []
    const visit = (ops: ReadonlyArray<RequestOp>): void => {
      for (const op of ops) {
        if (op.requestPut) {
          const k = keyString(bytes(op.requestPut.key))
          if (puts.has(k)) throw new EtcdError.DuplicateKey({ method })
          puts.add(k)
        } else if (op.requestDeleteRange) {
          const r = op.requestDeleteRange
          deletes.push(intervalOf(bytes(r.key), r.rangeEnd === undefined ? undefined : bytes(r.rangeEnd)))
        } else if (op.requestTxn) {
          visit(this.branch(op.requestTxn, revision).ops)
        }
      }
    }
    visit(ops)
    for (const k of puts) {
      if (deletes.some((interval) => inInterval(interval, k))) throw new EtcdError.DuplicateKey({ method })
    }
  }

  private requestSize(request: TxnRequest): number {
    let size = 0
    for (const c of request.compare ?? []) size += bytes(c.key).length + bytes(c.value).length + 16
    for (const op of [...(request.success ?? []), ...(request.failure ?? [])]) {
      if (op.requestPut) size += bytes(op.requestPut.key).length + bytes(op.requestPut.value).length + 16
      else if (op.requestRange) size += bytes(op.requestRange.key).length + bytes(op.requestRange.rangeEnd).length + 16
      else if (op.requestDeleteRange) {
        size += bytes(op.requestDeleteRange.key).length + bytes(op.requestDeleteRange.rangeEnd).length + 16
      } else if (op.requestTxn) size += this.requestSize(op.requestTxn)
    }
    return size
  }

  txn(request: TxnRequest): TxnResponse__Output {
    const method = methods.txn
    this.checkTxn(request, method)
    this.checkSize(this.requestSize(request), method)
    const revision = this.revision
    const { ops, succeeded } = this.branch(request, revision)
    this.checkDuplicates(ops, revision, method)
    // validate before writing anything: a failed txn changes nothing
    this.validateOps(ops, revision, method)
    const responses = this.write((context) => this.runOps(context, ops, revision, method))
    return { header: this.header(), succeeded, responses }
  }

  private validateOps(ops: ReadonlyArray<RequestOp>, revision: bigint, method: string): void {
    for (const op of ops) {
      if (op.requestPut) {
        const put = op.requestPut
        if (bytes(put.key).length === 0) throw new EtcdError.EmptyKey({ method })
        const lease = int64(put.lease as Int64Input)
        if (!put.ignoreLease && lease !== 0n && !this.leases.has(lease)) {
          throw new EtcdError.LeaseNotFound({ method, leaseId: lease })
        }
      } else if (op.requestRange) {
        if (bytes(op.requestRange.key).length === 0) throw new EtcdError.EmptyKey({ method })
        this.checkRevision(int64(op.requestRange.revision as Int64Input), method)
      } else if (op.requestDeleteRange) {
        if (bytes(op.requestDeleteRange.key).length === 0) throw new EtcdError.EmptyKey({ method })
      } else if (op.requestTxn) {
        this.validateOps(this.branch(op.requestTxn, revision).ops, revision, method)
      }
    }
  }

  private runOps(
    context: WriteContext,
    ops: ReadonlyArray<RequestOp>,
    before: bigint,
    method: string
  ): Array<ResponseOp__Output> {
    const out: Array<ResponseOp__Output> = []
    for (const op of ops) {
      if (op.requestRange) {
        // a read in a write txn sees the txn's own earlier writes: the newest revision is the
        // txn's once it has written; a revision asked for past the store's (`before`) reads
        // the newest too (validateOps checked the others against compaction)
        const newest = context.events.length > 0 ? context.revision : before
        const requested = int64(op.requestRange.revision as Int64Input)
        const response = this.rangeAt(
          op.requestRange,
          requested > 0n && requested <= before ? requested : newest,
          newest
        )
        out.push({ responseRange: { ...response, header: this.header(before) }, response: "responseRange" })
      } else if (op.requestPut) {
        out.push({ responsePut: this.putIn(context, op.requestPut, method), response: "responsePut" })
      } else if (op.requestDeleteRange) {
        out.push({
          responseDeleteRange: this.deleteIn(context, op.requestDeleteRange, method),
          response: "responseDeleteRange"
        })
      } else if (op.requestTxn) {
        const { ops, succeeded } = this.branch(op.requestTxn, before)
        out.push({
          responseTxn: { header: this.header(), succeeded, responses: this.runOps(context, ops, before, method) },
          response: "responseTxn"
        })
      }
    }
    return out
  }

  // -------------------------------------------------------------------------
  // compaction and history
  // -------------------------------------------------------------------------

  compact(revision: bigint): void {
    const method = methods.compact
    if (revision > this.revision) {
      throw new EtcdError.FutureRevision({ method, requestedRevision: revision, currentRevision: this.revision })
    }
    if (revision <= this.compactRevision) {
      throw new EtcdError.Compacted({ method, compactRevision: this.compactRevision, requestedRevision: revision })
    }
    this.compactRevision = revision
    for (const [k, versions] of this.keys) {
      // keep the newest version at or below the compact revision, unless it is a tombstone
      let keepFrom = 0
      for (let i = versions.length - 1; i >= 0; i--) {
        if (versions[i]!.modRevision <= revision) {
          keepFrom = versions[i]!.tombstone ? i + 1 : i
          break
        }
      }
      if (keepFrom > 0) versions.splice(0, keepFrom)
      if (versions.length === 0) {
        this.keys.delete(k)
        this.sortedKeys = undefined
      }
    }
    let drop = 0
    while (drop < this.history.length && this.history[drop]!.version.modRevision < revision) drop++
    if (drop > 0) this.history = this.history.slice(drop)
  }

  /** The events of the revisions from `from` on; fails with `Compacted` when they are gone. */
  historyFrom(from: bigint, method: string): ReadonlyArray<RevisionEvents> {
    if (from < this.compactRevision) {
      throw new EtcdError.Compacted({ method, compactRevision: this.compactRevision, requestedRevision: from })
    }
    let low = 0
    let high = this.history.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.history[mid]!.version.modRevision < from) low = mid + 1
      else high = mid
    }
    const out: Array<RevisionEvents> = []
    for (let i = low; i < this.history.length; i++) {
      const change = this.history[i]!
      const last = out[out.length - 1]
      if (last !== undefined && last.revision === change.version.modRevision) {
        ;(last.changes as Array<Change>).push(change)
      } else {
        out.push({ revision: change.version.modRevision, changes: [change] })
      }
    }
    return out
  }

  // -------------------------------------------------------------------------
  // leases
  // -------------------------------------------------------------------------

  grant(id: bigint, ttlSeconds: number, now: number): { readonly id: bigint; readonly ttl: number } {
    let chosen = id
    if (chosen === 0n) {
      do {
        chosen = BigInt.asIntN(64, BigInt(Math.floor(Math.random() * 2 ** 31)) << 32n) |
          BigInt(Math.floor(Math.random() * 2 ** 32))
        if (chosen < 0n) chosen = -chosen
      } while (chosen === 0n || this.leases.has(chosen))
    } else if (this.leases.has(chosen)) {
      throw new EtcdError.LeaseExists({ method: methods.grant, leaseId: chosen })
    }
    const ttl = Math.max(this.limits.minLeaseTtl, ttlSeconds)
    const deadline = now + ttl * 1000
    this.leases.set(chosen, { id: chosen, grantedTtl: ttl, deadline, keys: new Set(), held: 0 })
    if (deadline < this.earliestDeadline) this.earliestDeadline = deadline
    return { id: chosen, ttl }
  }

  /** Ends a lease, deleting its keys in one revision. */
  revoke(id: bigint, reason: "expired" | "revoked" = "revoked"): void {
    const lease = this.leases.get(id)
    if (lease === undefined) throw new EtcdError.LeaseNotFound({ method: methods.revoke, leaseId: id })
    this.leases.delete(id)
    const keys = Array.from(lease.keys).sort()
    this.write((context) => {
      for (const k of keys) this.deleteIn(context, { key: keyBuffer(k) }, methods.revoke)
    })
    for (const listener of this.leaseListeners) listener(id, reason)
  }

  /** Refreshes a lease; its TTL, or 0 when it does not exist. */
  keepAlive(id: bigint, now: number): number {
    const lease = this.leases.get(id)
    if (lease === undefined) return 0
    lease.deadline = now + lease.grantedTtl * 1000
    return lease.grantedTtl
  }

  /**
   * Holds a lease kept alive by a keepalive that the clock need not wake: it does not
   * expire while held (a keepalive each TTL/3 would keep it so, and each costs a clock
   * wake-up, a lot of `TestClock.adjust` time over an hour of leases). The returned release
   * lets go: the lease then expires a TTL later, as after its last keepalive.
   */
  hold(id: bigint): (now: number) => void {
    const lease = this.leases.get(id)
    if (lease === undefined) return () => {}
    lease.held++
    let released = false
    return (now) => {
      if (released) return
      released = true
      lease.held--
      if (lease.held > 0 || this.leases.get(id) !== lease) return
      lease.deadline = now + lease.grantedTtl * 1000
      if (lease.deadline < this.earliestDeadline) this.earliestDeadline = lease.deadline
    }
  }

  timeToLive(id: bigint, now: number): { ttl: number; grantedTtl: number; keys: Array<Buffer> } {
    const lease = this.leases.get(id)
    if (lease === undefined) return { ttl: -1, grantedTtl: 0, keys: [] }
    // a held lease was refreshed just now, as far as anyone can tell
    const left = lease.held > 0 ? lease.grantedTtl * 1000 : lease.deadline - now
    return {
      // whole seconds left, rounded down as etcd does (it truncates the time left, which
      // is always a little under the TTL right after a grant or a keepalive: 9 for 10)
      ttl: Math.max(0, Math.ceil(left / 1000) - 1),
      grantedTtl: lease.grantedTtl,
      keys: Array.from(lease.keys).sort().map(keyBuffer)
    }
  }

  leaseIds(): Array<bigint> {
    return Array.from(this.leases.keys())
  }

  /** Expires every lease whose deadline has come; the earliest deadline left, if any. */
  expire(now: number): number | undefined {
    if (now < this.earliestDeadline) {
      return this.earliestDeadline === Number.POSITIVE_INFINITY ? undefined : this.earliestDeadline
    }
    for (const lease of Array.from(this.leases.values())) {
      if (lease.held === 0 && lease.deadline <= now) this.revoke(lease.id, "expired")
    }
    let next: number | undefined
    for (const lease of this.leases.values()) {
      if (lease.held === 0 && (next === undefined || lease.deadline < next)) next = lease.deadline
    }
    this.earliestDeadline = next ?? Number.POSITIVE_INFINITY
    return next
  }
}

export { keyBuffer, keyString }
