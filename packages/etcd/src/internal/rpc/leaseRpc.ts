/** The Lease RPCs (everything but the keepalive stream, which `keepAliveHub` owns). */
import type * as grpc from "@grpc/grpc-js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as EtcdError from "../../EtcdError.js"
import { int64Varint, toInt64 } from "../data/codec.js"
import type { Transport } from "../transport/transport.js"
import type { LeaseGrantRequest } from "../wire/proto/generated/etcdserverpb/LeaseGrantRequest.js"
import type { LeaseGrantResponse__Output } from "../wire/proto/generated/etcdserverpb/LeaseGrantResponse.js"
import type { LeaseKeepAliveRequest } from "../wire/proto/generated/etcdserverpb/LeaseKeepAliveRequest.js"
import type { LeaseKeepAliveResponse__Output } from "../wire/proto/generated/etcdserverpb/LeaseKeepAliveResponse.js"
import type { LeaseLeasesResponse__Output } from "../wire/proto/generated/etcdserverpb/LeaseLeasesResponse.js"
import type { LeaseTimeToLiveRequest } from "../wire/proto/generated/etcdserverpb/LeaseTimeToLiveRequest.js"
import type { LeaseTimeToLiveResponse__Output } from "../wire/proto/generated/etcdserverpb/LeaseTimeToLiveResponse.js"
import { methods } from "../wire/proto/loader.js"
import type { RpcOptions } from "./kvRpc.js"

/** The Lease RPCs. */
export interface LeaseRpc {
  readonly grant: (
    request: LeaseGrantRequest,
    options?: RpcOptions
  ) => Effect.Effect<LeaseGrantResponse__Output, EtcdError.LeaseGrantError>
  readonly revoke: (id: bigint, options?: RpcOptions) => Effect.Effect<void, EtcdError.LeaseError>
  readonly timeToLive: (
    request: LeaseTimeToLiveRequest & { readonly ID: string },
    options?: RpcOptions
  ) => Effect.Effect<LeaseTimeToLiveResponse__Output, EtcdError.LeaseError>
  readonly leases: (options?: RpcOptions) => Effect.Effect<LeaseLeasesResponse__Output, EtcdError.CallError>
  /** One keepalive and its answer (TTL <= 0 when the lease does not exist). */
  readonly keepAliveOnce: (
    id: bigint,
    options?: RpcOptions
  ) => Effect.Effect<LeaseKeepAliveResponse__Output, EtcdError.LeaseError>
}

/**
 * LeaseRevoke without protobufjs: the request is field 1 (the ID, a varint) written by hand,
 * and the answer, which no caller reads, is not decoded (its header's four uint64s would
 * cost four int64-to-text conversions per revoke, ten thousand of them when a scope closes).
 */
const revokeMethod: grpc.MethodDefinition<bigint, void> = {
  ...(methods.lease.revoke as unknown as grpc.MethodDefinition<bigint, void>),
  requestSerialize: (id: bigint) => Buffer.from([0x08, ...int64Varint(id)]),
  responseDeserialize: () => undefined
}

const withinLeaseGrant = EtcdError.within("leaseGrant")
const withinLease = EtcdError.within("lease")
const withinCall = EtcdError.within("call")

/** The Lease RPCs over a transport, each typed with the family of errors it can produce. */
export const make = (transport: Transport): LeaseRpc => ({
  grant: (request, options) =>
    transport.unary(methods.lease.grant, request, {
      // a grant with a chosen ID fails with LeaseExists when repeated, one without makes
      // a second lease: neither may be sent twice blindly
      idempotency: "mutation",
      timeout: options?.timeout,
      leaseId: request.ID === undefined ? undefined : BigInt(request.ID as string)
    }).pipe(withinLeaseGrant),
  revoke: (id, options) =>
    // revoking twice is harmless (the second answers LeaseNotFound), so it is retried
    transport.unary(revokeMethod, id, {
      idempotency: "repeatable",
      timeout: options?.timeout,
      leaseId: id
    }).pipe(withinLease),
  timeToLive: (request, options) =>
    transport.unary(methods.lease.timeToLive, request, {
      idempotency: "repeatable",
      timeout: options?.timeout,
      leaseId: BigInt(request.ID)
    }).pipe(withinLease),
  leases: (options) =>
    transport.unary(methods.lease.leases, {}, { idempotency: "repeatable", timeout: options?.timeout }).pipe(
      withinCall
    ),
  keepAliveOnce: (id, options) =>
    Effect.acquireUseRelease(
      transport.duplex<LeaseKeepAliveRequest, LeaseKeepAliveResponse__Output>(methods.lease.keepAlive),
      ({ call, endpoint }) =>
        Effect.async<LeaseKeepAliveResponse__Output, EtcdError.EtcdError>((resume) => {
          call.on("data", (response: LeaseKeepAliveResponse__Output) => resume(Effect.succeed(response)))
          call.on(
            "error",
            (error) => resume(Effect.fail(transport.streamError(methods.lease.keepAlive.path, endpoint, error)))
          )
          call.on("end", () =>
            resume(Effect.fail(
              new EtcdError.Unavailable({
                method: methods.lease.keepAlive.path,
                endpoints: [endpoint.url],
                reason: "the keepalive stream ended before answering"
              })
            )))
          call.write({ ID: toInt64(id) })
        }).pipe(
          Effect.timeoutFail({
            duration: options?.timeout ?? transport.requestTimeout,
            onTimeout: () =>
              new EtcdError.Timeout({
                method: methods.lease.keepAlive.path,
                timeout: Duration.decode(options?.timeout ?? transport.requestTimeout),
                endpoint: endpoint.url
              })
          })
        ),
      ({ call }) =>
        Effect.sync(() => {
          call.removeAllListeners()
          call.on("error", () => {})
          call.cancel()
        })
    ).pipe(withinLease)
})
