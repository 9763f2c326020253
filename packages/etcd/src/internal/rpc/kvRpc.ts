/**
 * The KV service at the protocol level: one function per RPC, with the retry class of
 * each, and the compact revision filled into `Compacted` errors.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as EtcdError from "../../EtcdError.js"
import * as ReadBatcher from "../streams/readBatcher.js"
import type { Transport } from "../transport/transport.js"
import type { CompactionRequest } from "../wire/proto/generated/etcdserverpb/CompactionRequest.js"
import type { CompactionResponse__Output } from "../wire/proto/generated/etcdserverpb/CompactionResponse.js"
import type { DeleteRangeRequest } from "../wire/proto/generated/etcdserverpb/DeleteRangeRequest.js"
import type { DeleteRangeResponse__Output } from "../wire/proto/generated/etcdserverpb/DeleteRangeResponse.js"
import type { PutRequest } from "../wire/proto/generated/etcdserverpb/PutRequest.js"
import type { PutResponse__Output } from "../wire/proto/generated/etcdserverpb/PutResponse.js"
import type { RangeRequest } from "../wire/proto/generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "../wire/proto/generated/etcdserverpb/RangeResponse.js"
import type { RequestOp } from "../wire/proto/generated/etcdserverpb/RequestOp.js"
import type { TxnRequest } from "../wire/proto/generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "../wire/proto/generated/etcdserverpb/TxnResponse.js"
import { methods } from "../wire/proto/loader.js"
import { compactRevision } from "./compaction.js"

/** Per-call settings at the protocol level. */
export interface RpcOptions {
  readonly timeout?: Duration.DurationInput | undefined
}

/** The KV RPCs, each typed with the family of errors it can produce. */
export interface KvRpc {
  readonly range: (
    request: RangeRequest,
    options?: RpcOptions
  ) => Effect.Effect<RangeResponse__Output, EtcdError.ReadError>
  readonly put: (request: PutRequest, options?: RpcOptions) => Effect.Effect<PutResponse__Output, EtcdError.PutError>
  readonly deleteRange: (
    request: DeleteRangeRequest,
    options?: RpcOptions
  ) => Effect.Effect<DeleteRangeResponse__Output, EtcdError.DeleteError>
  readonly txn: (request: TxnRequest, options?: RpcOptions) => Effect.Effect<TxnResponse__Output, EtcdError.TxnError>
  readonly compact: (
    request: CompactionRequest,
    options?: RpcOptions
  ) => Effect.Effect<CompactionResponse__Output, EtcdError.CompactError>
}

const withinRead = EtcdError.within("read")
const withinPut = EtcdError.within("put")
const withinDelete = EtcdError.within("delete")
const withinTxn = EtcdError.within("txn")
const withinCompact = EtcdError.within("compact")

/** Whether every operation of a txn, nested ones included, only reads. */
const readOnly = (ops: ReadonlyArray<RequestOp> | undefined): boolean =>
  ops === undefined || ops.every((op) =>
    op.requestRange != null ||
    (op.requestTxn != null && readOnly(op.requestTxn.success) && readOnly(op.requestTxn.failure))
  )

const revisionOfRequest = (request: { readonly revision?: unknown }): bigint | undefined => {
  const revision = request.revision
  if (typeof revision === "number") return Number.isInteger(revision) ? BigInt(revision) : undefined
  return typeof revision === "string" && /^-?\d+$/.test(revision) ? BigInt(revision) : undefined
}

/** The KV RPCs over a transport; reads are batched unless `batching` is undefined. */
export const make = (
  transport: Transport,
  batching: ReadBatcher.Settings | undefined
): Effect.Effect<KvRpc, never, Scope.Scope> =>
  Effect.gen(function*() {
    const withCompactRevision = <A>(
      effect: Effect.Effect<A, EtcdError.EtcdError>,
      options?: RpcOptions
    ): Effect.Effect<A, EtcdError.EtcdError> =>
      Effect.catchTag(effect, "Compacted", (error) =>
        compactRevision(transport, options?.timeout).pipe(
          Effect.orElseSucceed(() => error.compactRevision),
          Effect.flatMap((compactRevision) => Effect.fail(new EtcdError.Compacted({ ...error, compactRevision })))
        ))
    // what becomes of a failed call is handed to the transport, which applies it to the
    // failure alone: a call that succeeds goes through no layer for it
    const readFailure = <A>(failure: Effect.Effect<A, EtcdError.EtcdError>) => withinRead(withCompactRevision(failure))
    const txnFailure = <A>(failure: Effect.Effect<A, EtcdError.EtcdError>) => withinTxn(withCompactRevision(failure))
    const timed = <E>(
      options: RpcOptions | undefined,
      within: <A>(effect: Effect.Effect<A, EtcdError.EtcdError>) => Effect.Effect<A, E>
    ) =>
    <A>(failure: Effect.Effect<A, EtcdError.EtcdError>): Effect.Effect<A, E> =>
      within(withCompactRevision(failure, options))
    const rangeCall = (request: RangeRequest, options?: RpcOptions) =>
      transport.unary(methods.kv.range, request, {
        idempotency: "repeatable",
        timeout: options?.timeout,
        revision: revisionOfRequest(request)
      }, options?.timeout === undefined ? readFailure : timed(options, withinRead))
    const batched = batching === undefined ? undefined : yield* ReadBatcher.make(
      rangeCall,
      (request) => transport.unary(methods.kv.txn, request, { idempotency: "repeatable" }),
      readFailure,
      { ...batching, metrics: transport.metrics?.enabled === true }
    )
    return {
      // a read with a deadline of its own is sent alone, under that deadline
      range: (request, options) =>
        batched === undefined || options?.timeout !== undefined ? rangeCall(request, options) : batched(request),
      put: (request, options) =>
        transport.unary(
          methods.kv.put,
          request,
          { idempotency: "mutation", timeout: options?.timeout },
          withinPut
        ),
      deleteRange: (request, options) =>
        transport.unary(
          methods.kv.deleteRange,
          request,
          { idempotency: "mutation", timeout: options?.timeout },
          withinDelete
        ),
      txn: (request, options) =>
        transport.unary(
          methods.kv.txn,
          request,
          {
            idempotency: readOnly(request.success) && readOnly(request.failure) ? "repeatable" : "mutation",
            timeout: options?.timeout
          },
          options?.timeout === undefined ? txnFailure : timed(options, withinTxn)
        ),
      compact: (request, options) =>
        transport.unary(methods.kv.compact, request, {
          idempotency: "mutation",
          timeout: options?.timeout,
          revision: revisionOfRequest(request)
        }, timed(options, withinCompact))
    } satisfies KvRpc
  })
