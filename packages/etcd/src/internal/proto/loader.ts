/**
 * The gRPC method definitions the client calls, built from the embedded descriptors
 * (no .proto file is read at run time, so bundling works).
 */
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { descriptor } from "./descriptor.js"
import type { AuthenticateRequest } from "./generated/etcdserverpb/AuthenticateRequest.js"
import type { AuthenticateResponse__Output } from "./generated/etcdserverpb/AuthenticateResponse.js"
import type { CompactionRequest } from "./generated/etcdserverpb/CompactionRequest.js"
import type { CompactionResponse__Output } from "./generated/etcdserverpb/CompactionResponse.js"
import type { DeleteRangeRequest } from "./generated/etcdserverpb/DeleteRangeRequest.js"
import type { DeleteRangeResponse__Output } from "./generated/etcdserverpb/DeleteRangeResponse.js"
import type { LeaseGrantRequest } from "./generated/etcdserverpb/LeaseGrantRequest.js"
import type { LeaseGrantResponse__Output } from "./generated/etcdserverpb/LeaseGrantResponse.js"
import type { LeaseKeepAliveRequest } from "./generated/etcdserverpb/LeaseKeepAliveRequest.js"
import type { LeaseKeepAliveResponse__Output } from "./generated/etcdserverpb/LeaseKeepAliveResponse.js"
import type { LeaseLeasesRequest } from "./generated/etcdserverpb/LeaseLeasesRequest.js"
import type { LeaseLeasesResponse__Output } from "./generated/etcdserverpb/LeaseLeasesResponse.js"
import type { LeaseRevokeRequest } from "./generated/etcdserverpb/LeaseRevokeRequest.js"
import type { LeaseRevokeResponse__Output } from "./generated/etcdserverpb/LeaseRevokeResponse.js"
import type { LeaseTimeToLiveRequest } from "./generated/etcdserverpb/LeaseTimeToLiveRequest.js"
import type { LeaseTimeToLiveResponse__Output } from "./generated/etcdserverpb/LeaseTimeToLiveResponse.js"
import type { MemberListRequest } from "./generated/etcdserverpb/MemberListRequest.js"
import type { MemberListResponse__Output } from "./generated/etcdserverpb/MemberListResponse.js"
import type { PutRequest } from "./generated/etcdserverpb/PutRequest.js"
import type { PutResponse__Output } from "./generated/etcdserverpb/PutResponse.js"
import type { RangeRequest } from "./generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "./generated/etcdserverpb/RangeResponse.js"
import type { StatusRequest } from "./generated/etcdserverpb/StatusRequest.js"
import type { StatusResponse__Output } from "./generated/etcdserverpb/StatusResponse.js"
import type { TxnRequest } from "./generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "./generated/etcdserverpb/TxnResponse.js"
import type { WatchRequest } from "./generated/etcdserverpb/WatchRequest.js"
import type { WatchResponse__Output } from "./generated/etcdserverpb/WatchResponse.js"

/** How messages are decoded: camelCase fields, int64 as decimal strings, enums as names, defaults filled. */
export const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true
}

const packageDefinition = protoLoader.fromJSON(descriptor, loaderOptions)

const method = <Req, Res>(service: string, name: string): grpc.MethodDefinition<Req, Res> =>
  (packageDefinition[service] as grpc.ServiceDefinition)[name] as grpc.MethodDefinition<Req, Res>

/** Every RPC the client calls, typed. */
export const methods = {
  kv: {
    range: method<RangeRequest, RangeResponse__Output>("etcdserverpb.KV", "Range"),
    put: method<PutRequest, PutResponse__Output>("etcdserverpb.KV", "Put"),
    deleteRange: method<DeleteRangeRequest, DeleteRangeResponse__Output>("etcdserverpb.KV", "DeleteRange"),
    txn: method<TxnRequest, TxnResponse__Output>("etcdserverpb.KV", "Txn"),
    compact: method<CompactionRequest, CompactionResponse__Output>("etcdserverpb.KV", "Compact")
  },
  watch: {
    watch: method<WatchRequest, WatchResponse__Output>("etcdserverpb.Watch", "Watch")
  },
  lease: {
    grant: method<LeaseGrantRequest, LeaseGrantResponse__Output>("etcdserverpb.Lease", "LeaseGrant"),
    revoke: method<LeaseRevokeRequest, LeaseRevokeResponse__Output>("etcdserverpb.Lease", "LeaseRevoke"),
    keepAlive: method<LeaseKeepAliveRequest, LeaseKeepAliveResponse__Output>("etcdserverpb.Lease", "LeaseKeepAlive"),
    timeToLive: method<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse__Output>(
      "etcdserverpb.Lease",
      "LeaseTimeToLive"
    ),
    leases: method<LeaseLeasesRequest, LeaseLeasesResponse__Output>("etcdserverpb.Lease", "LeaseLeases")
  },
  cluster: {
    memberList: method<MemberListRequest, MemberListResponse__Output>("etcdserverpb.Cluster", "MemberList")
  },
  maintenance: {
    status: method<StatusRequest, StatusResponse__Output>("etcdserverpb.Maintenance", "Status")
  },
  auth: {
    authenticate: method<AuthenticateRequest, AuthenticateResponse__Output>("etcdserverpb.Auth", "Authenticate")
  }
} as const
