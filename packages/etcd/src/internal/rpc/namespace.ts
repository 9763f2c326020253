/**
 * A client confined to the keys under a prefix, at the protocol level (as clientv3's
 * namespace package does it): every key and range end of a request gets the prefix, every
 * key of a response loses it. Everything built on `kv`, `watches` and `leases` (the Kv,
 * Txn, Watch, Lease and Lock modules) is namespaced with it.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type { Subscription, WatchHub } from "../streams/watchHub.js"
import type { Compare } from "../wire/proto/generated/etcdserverpb/Compare.js"
import type { DeleteRangeRequest } from "../wire/proto/generated/etcdserverpb/DeleteRangeRequest.js"
import type { DeleteRangeResponse__Output } from "../wire/proto/generated/etcdserverpb/DeleteRangeResponse.js"
import type { PutRequest } from "../wire/proto/generated/etcdserverpb/PutRequest.js"
import type { PutResponse__Output } from "../wire/proto/generated/etcdserverpb/PutResponse.js"
import type { RangeRequest } from "../wire/proto/generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "../wire/proto/generated/etcdserverpb/RangeResponse.js"
import type { RequestOp } from "../wire/proto/generated/etcdserverpb/RequestOp.js"
import type { ResponseOp__Output } from "../wire/proto/generated/etcdserverpb/ResponseOp.js"
import type { TxnRequest } from "../wire/proto/generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "../wire/proto/generated/etcdserverpb/TxnResponse.js"
import type { Event__Output } from "../wire/proto/generated/mvccpb/Event.js"
import type { KeyValue__Output } from "../wire/proto/generated/mvccpb/KeyValue.js"
import type { KvRpc } from "./kvRpc.js"
import type { LeaseRpc } from "./leaseRpc.js"

type Bytes = Buffer | Uint8Array | string

const toBuffer = (bytes: Bytes | undefined): Buffer =>
  bytes === undefined ? Buffer.alloc(0) : typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.from(bytes)

/** The first key after every key that starts with `prefix`; `\0` (no end) when there is none. */
const endOfPrefix = (prefix: Buffer): Buffer => {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1))
      end[i]++
      return end
    }
  }
  return Buffer.from([0])
}

/** Confines a client's RPCs to the keys under `prefix`. */
export interface Namespace {
  readonly kv: KvRpc
  readonly watches: WatchHub
  readonly leases: LeaseRpc
}

export const make = (prefix: Uint8Array, inner: Namespace): Namespace => {
  const pfx = Buffer.from(prefix)
  const afterPrefix = endOfPrefix(pfx)

  const key = (k: Bytes | undefined): Buffer => Buffer.concat([pfx, toBuffer(k)])
  /** A range end: `\0` (every key from the start on) stops at the end of the namespace. */
  const rangeEnd = (end: Bytes | undefined): Buffer | undefined => {
    const bytes = toBuffer(end)
    if (bytes.length === 0) return undefined
    if (bytes.length === 1 && bytes[0] === 0) return afterPrefix
    return Buffer.concat([pfx, bytes])
  }
  const interval = <A extends { readonly key?: Bytes | undefined; readonly rangeEnd?: Bytes | undefined }>(
    request: A
  ): A => {
    const end = rangeEnd(request.rangeEnd)
    return { ...request, key: key(request.key), ...(end === undefined ? {} : { rangeEnd: end }) }
  }

  const strip = (kv: KeyValue__Output): KeyValue__Output => ({ ...kv, key: kv.key.subarray(pfx.length) })
  const stripOptional = (kv: KeyValue__Output | null): KeyValue__Output | null => kv === null ? null : strip(kv)

  const range = (response: RangeResponse__Output): RangeResponse__Output => ({
    ...response,
    kvs: response.kvs.map(strip)
  })
  const put = (response: PutResponse__Output): PutResponse__Output => ({
    ...response,
    prevKv: stripOptional(response.prevKv)
  })
  const deleted = (response: DeleteRangeResponse__Output): DeleteRangeResponse__Output => ({
    ...response,
    prevKvs: response.prevKvs.map(strip)
  })

  const putRequest = (request: PutRequest): PutRequest => ({ ...request, key: key(request.key) })
  const compare = (c: Compare): Compare => interval(c)
  const op = (o: RequestOp): RequestOp =>
    o.requestRange != null
      ? { requestRange: interval(o.requestRange) }
      : o.requestPut != null
      ? { requestPut: putRequest(o.requestPut) }
      : o.requestDeleteRange != null
      ? { requestDeleteRange: interval(o.requestDeleteRange) }
      : o.requestTxn != null
      ? { requestTxn: txnRequest(o.requestTxn) }
      : o
  const txnRequest = (request: TxnRequest): TxnRequest => ({
    compare: (request.compare ?? []).map(compare),
    success: (request.success ?? []).map(op),
    failure: (request.failure ?? []).map(op)
  })
  const responseOp = (r: ResponseOp__Output): ResponseOp__Output =>
    r.responseRange != null
      ? { ...r, responseRange: range(r.responseRange) }
      : r.responsePut != null
      ? { ...r, responsePut: put(r.responsePut) }
      : r.responseDeleteRange != null
      ? { ...r, responseDeleteRange: deleted(r.responseDeleteRange) }
      : r.responseTxn != null
      ? { ...r, responseTxn: txn(r.responseTxn) }
      : r
  const txn = (response: TxnResponse__Output): TxnResponse__Output => ({
    ...response,
    responses: response.responses.map(responseOp)
  })

  const event = (e: Event__Output): Event__Output => ({
    ...e,
    kv: stripOptional(e.kv),
    prevKv: stripOptional(e.prevKv)
  })

  const kv: KvRpc = {
    range: (request: RangeRequest, options) => Effect.map(inner.kv.range(interval(request), options), range),
    put: (request, options) => Effect.map(inner.kv.put(putRequest(request), options), put),
    deleteRange: (request: DeleteRangeRequest, options) =>
      Effect.map(inner.kv.deleteRange(interval(request), options), deleted),
    txn: (request, options) => Effect.map(inner.kv.txn(txnRequest(request), options), txn),
    compact: inner.kv.compact
  }

  const watches: WatchHub = {
    open: (spec, hold) =>
      Effect.map(
        inner.watches.open({
          ...spec,
          key: key(spec.key),
          rangeEnd: rangeEnd(spec.rangeEnd)
        }, hold),
        (subscription): Subscription => ({
          watchId: subscription.watchId,
          createdRevision: subscription.createdRevision,
          take: (parts) =>
            Effect.map(
              subscription.take(parts),
              Chunk.map((batch) => ({ ...batch, events: batch.events.map(event) }))
            )
        })
      ),
    requestProgress: inner.watches.requestProgress
  }

  const leases: LeaseRpc = {
    ...inner.leases,
    timeToLive: (request, options) =>
      Effect.map(inner.leases.timeToLive(request, options), (response) => ({
        ...response,
        // keys of other namespaces attached to the same lease are not this client's
        keys: response.keys.filter((k) => k.subarray(0, pfx.length).equals(pfx)).map((k) => k.subarray(pfx.length))
      }))
  }

  return { kv, watches, leases }
}
