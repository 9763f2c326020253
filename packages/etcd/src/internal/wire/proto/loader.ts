/**
 * The gRPC method definitions the client calls, built from the embedded descriptors
 * (no .proto file is read at run time, so bundling works).
 */
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { descriptor } from "./descriptor.js"
import type { AlarmRequest } from "./generated/etcdserverpb/AlarmRequest.js"
import type { AlarmResponse__Output } from "./generated/etcdserverpb/AlarmResponse.js"
import type { AuthDisableRequest } from "./generated/etcdserverpb/AuthDisableRequest.js"
import type { AuthDisableResponse__Output } from "./generated/etcdserverpb/AuthDisableResponse.js"
import type { AuthEnableRequest } from "./generated/etcdserverpb/AuthEnableRequest.js"
import type { AuthEnableResponse__Output } from "./generated/etcdserverpb/AuthEnableResponse.js"
import type { AuthenticateRequest } from "./generated/etcdserverpb/AuthenticateRequest.js"
import type { AuthenticateResponse__Output } from "./generated/etcdserverpb/AuthenticateResponse.js"
import type { AuthRoleAddRequest } from "./generated/etcdserverpb/AuthRoleAddRequest.js"
import type { AuthRoleAddResponse__Output } from "./generated/etcdserverpb/AuthRoleAddResponse.js"
import type { AuthRoleDeleteRequest } from "./generated/etcdserverpb/AuthRoleDeleteRequest.js"
import type { AuthRoleDeleteResponse__Output } from "./generated/etcdserverpb/AuthRoleDeleteResponse.js"
import type { AuthRoleGetRequest } from "./generated/etcdserverpb/AuthRoleGetRequest.js"
import type { AuthRoleGetResponse__Output } from "./generated/etcdserverpb/AuthRoleGetResponse.js"
import type { AuthRoleGrantPermissionRequest } from "./generated/etcdserverpb/AuthRoleGrantPermissionRequest.js"
import type { AuthRoleGrantPermissionResponse__Output } from "./generated/etcdserverpb/AuthRoleGrantPermissionResponse.js"
import type { AuthRoleListRequest } from "./generated/etcdserverpb/AuthRoleListRequest.js"
import type { AuthRoleListResponse__Output } from "./generated/etcdserverpb/AuthRoleListResponse.js"
import type { AuthRoleRevokePermissionRequest } from "./generated/etcdserverpb/AuthRoleRevokePermissionRequest.js"
import type { AuthRoleRevokePermissionResponse__Output } from "./generated/etcdserverpb/AuthRoleRevokePermissionResponse.js"
import type { AuthUserAddRequest } from "./generated/etcdserverpb/AuthUserAddRequest.js"
import type { AuthUserAddResponse__Output } from "./generated/etcdserverpb/AuthUserAddResponse.js"
import type { AuthUserChangePasswordRequest } from "./generated/etcdserverpb/AuthUserChangePasswordRequest.js"
import type { AuthUserChangePasswordResponse__Output } from "./generated/etcdserverpb/AuthUserChangePasswordResponse.js"
import type { AuthUserDeleteRequest } from "./generated/etcdserverpb/AuthUserDeleteRequest.js"
import type { AuthUserDeleteResponse__Output } from "./generated/etcdserverpb/AuthUserDeleteResponse.js"
import type { AuthUserGetRequest } from "./generated/etcdserverpb/AuthUserGetRequest.js"
import type { AuthUserGetResponse__Output } from "./generated/etcdserverpb/AuthUserGetResponse.js"
import type { AuthUserGrantRoleRequest } from "./generated/etcdserverpb/AuthUserGrantRoleRequest.js"
import type { AuthUserGrantRoleResponse__Output } from "./generated/etcdserverpb/AuthUserGrantRoleResponse.js"
import type { AuthUserListRequest } from "./generated/etcdserverpb/AuthUserListRequest.js"
import type { AuthUserListResponse__Output } from "./generated/etcdserverpb/AuthUserListResponse.js"
import type { AuthUserRevokeRoleRequest } from "./generated/etcdserverpb/AuthUserRevokeRoleRequest.js"
import type { AuthUserRevokeRoleResponse__Output } from "./generated/etcdserverpb/AuthUserRevokeRoleResponse.js"
import type { CompactionRequest } from "./generated/etcdserverpb/CompactionRequest.js"
import type { CompactionResponse__Output } from "./generated/etcdserverpb/CompactionResponse.js"
import type { DefragmentRequest } from "./generated/etcdserverpb/DefragmentRequest.js"
import type { DefragmentResponse__Output } from "./generated/etcdserverpb/DefragmentResponse.js"
import type { DeleteRangeRequest } from "./generated/etcdserverpb/DeleteRangeRequest.js"
import type { DeleteRangeResponse__Output } from "./generated/etcdserverpb/DeleteRangeResponse.js"
import type { HashKVRequest } from "./generated/etcdserverpb/HashKVRequest.js"
import type { HashKVResponse__Output } from "./generated/etcdserverpb/HashKVResponse.js"
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
import type { MemberAddRequest } from "./generated/etcdserverpb/MemberAddRequest.js"
import type { MemberAddResponse__Output } from "./generated/etcdserverpb/MemberAddResponse.js"
import type { MemberListRequest } from "./generated/etcdserverpb/MemberListRequest.js"
import type { MemberListResponse__Output } from "./generated/etcdserverpb/MemberListResponse.js"
import type { MemberPromoteRequest } from "./generated/etcdserverpb/MemberPromoteRequest.js"
import type { MemberPromoteResponse__Output } from "./generated/etcdserverpb/MemberPromoteResponse.js"
import type { MemberRemoveRequest } from "./generated/etcdserverpb/MemberRemoveRequest.js"
import type { MemberRemoveResponse__Output } from "./generated/etcdserverpb/MemberRemoveResponse.js"
import type { MemberUpdateRequest } from "./generated/etcdserverpb/MemberUpdateRequest.js"
import type { MemberUpdateResponse__Output } from "./generated/etcdserverpb/MemberUpdateResponse.js"
import type { MoveLeaderRequest } from "./generated/etcdserverpb/MoveLeaderRequest.js"
import type { MoveLeaderResponse__Output } from "./generated/etcdserverpb/MoveLeaderResponse.js"
import type { PutRequest } from "./generated/etcdserverpb/PutRequest.js"
import type { PutResponse__Output } from "./generated/etcdserverpb/PutResponse.js"
import type { RangeRequest } from "./generated/etcdserverpb/RangeRequest.js"
import type { RangeResponse__Output } from "./generated/etcdserverpb/RangeResponse.js"
import type { SnapshotRequest } from "./generated/etcdserverpb/SnapshotRequest.js"
import type { SnapshotResponse__Output } from "./generated/etcdserverpb/SnapshotResponse.js"
import type { StatusRequest } from "./generated/etcdserverpb/StatusRequest.js"
import type { StatusResponse__Output } from "./generated/etcdserverpb/StatusResponse.js"
import type { TxnRequest } from "./generated/etcdserverpb/TxnRequest.js"
import type { TxnResponse__Output } from "./generated/etcdserverpb/TxnResponse.js"
import type { WatchRequest } from "./generated/etcdserverpb/WatchRequest.js"
import type { WatchResponse__Output } from "./generated/etcdserverpb/WatchResponse.js"
import { encoders } from "./kvRequests.js"
import { decodeDeleteRangeResponse, decodePutResponse, decodeRangeResponse, decodeTxnResponse } from "./kvResponses.js"
import { decodeLeaseGrantResponse, leaseGrantEncoder } from "./leaseMessages.js"
import { watchRequestEncoder } from "./watchRequests.js"

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

const generatedKv = {
  range: method<RangeRequest, RangeResponse__Output>("etcdserverpb.KV", "Range"),
  put: method<PutRequest, PutResponse__Output>("etcdserverpb.KV", "Put"),
  deleteRange: method<DeleteRangeRequest, DeleteRangeResponse__Output>("etcdserverpb.KV", "DeleteRange"),
  txn: method<TxnRequest, TxnResponse__Output>("etcdserverpb.KV", "Txn")
}

/**
 * The encoders of kvRequests.ts, in place of the generated ones (which they fall back to
 * for a request they do not take).
 */
export const kvRequestEncoders = encoders({
  range: generatedKv.range.requestSerialize,
  put: generatedKv.put.requestSerialize,
  deleteRange: generatedKv.deleteRange.requestSerialize,
  txn: generatedKv.txn.requestSerialize
})

const generatedGrant = method<LeaseGrantRequest, LeaseGrantResponse__Output>("etcdserverpb.Lease", "LeaseGrant")

/** The encoder of leaseMessages.ts, in place of the generated one (which it falls back to). */
export const leaseGrantRequestEncoder = leaseGrantEncoder(generatedGrant.requestSerialize)

const generatedWatch = method<WatchRequest, WatchResponse__Output>("etcdserverpb.Watch", "Watch")

/** A method whose requests and responses are coded by the given functions in place of the generated ones. */
const codedBy = <Req, Res>(
  definition: grpc.MethodDefinition<Req, Res>,
  requestSerialize: (request: Req) => Buffer,
  responseDeserialize: (bytes: Buffer) => Res
): grpc.MethodDefinition<Req, Res> => ({ ...definition, requestSerialize, responseDeserialize })

/** Every RPC the client calls, typed. */
export const methods = {
  kv: {
    // the KV requests and responses are coded by kvRequests.ts and kvResponses.ts: the same
    // bytes and objects, at less cost
    range: codedBy(generatedKv.range, kvRequestEncoders.range, decodeRangeResponse),
    put: codedBy(generatedKv.put, kvRequestEncoders.put, decodePutResponse),
    deleteRange: codedBy(generatedKv.deleteRange, kvRequestEncoders.deleteRange, decodeDeleteRangeResponse),
    txn: codedBy(generatedKv.txn, kvRequestEncoders.txn, decodeTxnResponse),
    compact: method<CompactionRequest, CompactionResponse__Output>("etcdserverpb.KV", "Compact")
  },
  watch: {
    // the requests are coded by watchRequests.ts, the responses read by watchCodec.ts
    watch: codedBy(
      generatedWatch,
      watchRequestEncoder(generatedWatch.requestSerialize),
      generatedWatch.responseDeserialize
    )
  },
  lease: {
    // the grant of every scoped lease is coded by leaseMessages.ts (and its revoke by leaseRpc.ts)
    grant: codedBy(generatedGrant, leaseGrantRequestEncoder, decodeLeaseGrantResponse),
    revoke: method<LeaseRevokeRequest, LeaseRevokeResponse__Output>("etcdserverpb.Lease", "LeaseRevoke"),
    keepAlive: method<LeaseKeepAliveRequest, LeaseKeepAliveResponse__Output>("etcdserverpb.Lease", "LeaseKeepAlive"),
    timeToLive: method<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse__Output>(
      "etcdserverpb.Lease",
      "LeaseTimeToLive"
    ),
    leases: method<LeaseLeasesRequest, LeaseLeasesResponse__Output>("etcdserverpb.Lease", "LeaseLeases")
  },
  cluster: {
    memberList: method<MemberListRequest, MemberListResponse__Output>("etcdserverpb.Cluster", "MemberList"),
    memberAdd: method<MemberAddRequest, MemberAddResponse__Output>("etcdserverpb.Cluster", "MemberAdd"),
    memberRemove: method<MemberRemoveRequest, MemberRemoveResponse__Output>("etcdserverpb.Cluster", "MemberRemove"),
    memberUpdate: method<MemberUpdateRequest, MemberUpdateResponse__Output>("etcdserverpb.Cluster", "MemberUpdate"),
    memberPromote: method<MemberPromoteRequest, MemberPromoteResponse__Output>("etcdserverpb.Cluster", "MemberPromote")
  },
  maintenance: {
    status: method<StatusRequest, StatusResponse__Output>("etcdserverpb.Maintenance", "Status"),
    alarm: method<AlarmRequest, AlarmResponse__Output>("etcdserverpb.Maintenance", "Alarm"),
    defragment: method<DefragmentRequest, DefragmentResponse__Output>("etcdserverpb.Maintenance", "Defragment"),
    hashKv: method<HashKVRequest, HashKVResponse__Output>("etcdserverpb.Maintenance", "HashKV"),
    snapshot: method<SnapshotRequest, SnapshotResponse__Output>("etcdserverpb.Maintenance", "Snapshot"),
    moveLeader: method<MoveLeaderRequest, MoveLeaderResponse__Output>("etcdserverpb.Maintenance", "MoveLeader")
  },
  auth: {
    authenticate: method<AuthenticateRequest, AuthenticateResponse__Output>("etcdserverpb.Auth", "Authenticate"),
    authEnable: method<AuthEnableRequest, AuthEnableResponse__Output>("etcdserverpb.Auth", "AuthEnable"),
    authDisable: method<AuthDisableRequest, AuthDisableResponse__Output>("etcdserverpb.Auth", "AuthDisable"),
    userAdd: method<AuthUserAddRequest, AuthUserAddResponse__Output>("etcdserverpb.Auth", "UserAdd"),
    userGet: method<AuthUserGetRequest, AuthUserGetResponse__Output>("etcdserverpb.Auth", "UserGet"),
    userList: method<AuthUserListRequest, AuthUserListResponse__Output>("etcdserverpb.Auth", "UserList"),
    userDelete: method<AuthUserDeleteRequest, AuthUserDeleteResponse__Output>("etcdserverpb.Auth", "UserDelete"),
    userChangePassword: method<AuthUserChangePasswordRequest, AuthUserChangePasswordResponse__Output>(
      "etcdserverpb.Auth",
      "UserChangePassword"
    ),
    userGrantRole: method<AuthUserGrantRoleRequest, AuthUserGrantRoleResponse__Output>(
      "etcdserverpb.Auth",
      "UserGrantRole"
    ),
    userRevokeRole: method<AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse__Output>(
      "etcdserverpb.Auth",
      "UserRevokeRole"
    ),
    roleAdd: method<AuthRoleAddRequest, AuthRoleAddResponse__Output>("etcdserverpb.Auth", "RoleAdd"),
    roleGet: method<AuthRoleGetRequest, AuthRoleGetResponse__Output>("etcdserverpb.Auth", "RoleGet"),
    roleList: method<AuthRoleListRequest, AuthRoleListResponse__Output>("etcdserverpb.Auth", "RoleList"),
    roleDelete: method<AuthRoleDeleteRequest, AuthRoleDeleteResponse__Output>("etcdserverpb.Auth", "RoleDelete"),
    roleGrantPermission: method<AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse__Output>(
      "etcdserverpb.Auth",
      "RoleGrantPermission"
    ),
    roleRevokePermission: method<AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse__Output>(
      "etcdserverpb.Auth",
      "RoleRevokePermission"
    )
  }
} as const
