/**
 * The tables behind `EtcdError.families`: which errors each kind of call can produce. Data
 * only; of the public modules it imports types.
 */
import type { Tag } from "../../EtcdError.js"

/** What any call that reaches the server can meet: the transport's own failures, the
 * server's refusals of a request or its credentials, bad input caught before sending, and
 * an answer over the client's receive limit. */
const callTags = [
  "EtcdInvalidArgument",
  "EtcdTimeout",
  "EtcdUnavailable",
  "NoLeader",
  "InvalidAuthToken",
  "EtcdAuthFailed",
  "EtcdPermissionDenied",
  "ClientClosed",
  "ResponseTooLarge",
  "EtcdUnknown"
] as const satisfies ReadonlyArray<Tag>

/** A put, and a proclamation, which is a put guarded by a compare. */
const putTags = [...callTags, "AmbiguousOutcome", "EmptyKey", "RequestTooLarge", "NoSpace", "LeaseNotFound"] as const

/** Waiting in the fair queue behind locks and elections: a lease, a txn, a read and a watch. */
const queueTags = [
  ...callTags,
  "AmbiguousOutcome",
  "EmptyKey",
  "RequestTooLarge",
  "NoSpace",
  "LeaseNotFound",
  "WatchCanceled",
  "LeaseLost"
] as const

const txnTags = [
  ...callTags,
  "AmbiguousOutcome",
  "Compacted",
  "FutureRevision",
  "EmptyKey",
  "RequestTooLarge",
  "NoSpace",
  "LeaseNotFound",
  "TooManyOps",
  "DuplicateKey"
] as const

/** An administrative write (a member, a user, a role, a leadership transfer): it may be ambiguous. */
const adminWriteTags = [...callTags, "AmbiguousOutcome"] as const

/** An administrative write on something that must exist: a user, a role, a grant, a member. */
const updateTags = [...adminWriteTags, "EtcdNotFound"] as const

/** Every family and its tags, as `EtcdError.families` exports it. */
export const families = {
  call: callTags,
  read: [...callTags, "Compacted", "FutureRevision", "EmptyKey", "RequestTooLarge"],
  put: putTags,
  delete: [...callTags, "AmbiguousOutcome", "EmptyKey", "RequestTooLarge"],
  txn: txnTags,
  compact: [...callTags, "AmbiguousOutcome", "Compacted", "FutureRevision"],
  leaseGrant: [...callTags, "AmbiguousOutcome", "LeaseExists", "NoSpace"],
  lease: [...callTags, "LeaseNotFound"],
  watch: [...callTags, "Compacted", "EmptyKey", "RequestTooLarge", "WatchCanceled"],
  lock: [...queueTags, "LockTimeout"],
  campaign: [...queueTags, "CampaignTimeout"],
  proclaim: [...putTags, "NotLeader"],
  stm: [...txnTags, "StmRetriesExhausted"],
  connect: ["EtcdConnectionFailed", "EtcdTlsError", "EtcdAuthFailed", "EtcdInvalidArgument"],
  mirror: [
    ...callTags,
    "Compacted",
    "FutureRevision",
    "EmptyKey",
    "RequestTooLarge",
    "WatchCanceled",
    "EtcdDecodeError"
  ],
  lookup: [...callTags, "EtcdNotFound"],
  adminWrite: adminWriteTags,
  create: [...adminWriteTags, "EtcdAlreadyExists"],
  update: updateTags,
  stateChange: [...adminWriteTags, "EtcdPreconditionFailed"],
  memberAdd: [...adminWriteTags, "EtcdAlreadyExists", "EtcdPreconditionFailed"],
  memberRemove: [...updateTags, "EtcdPreconditionFailed"],
  memberPromote: [...updateTags, "EtcdPreconditionFailed", "LearnerNotReady"],
  memberUpdate: [...updateTags, "EtcdAlreadyExists"],
  hashKv: [...callTags, "Compacted", "FutureRevision"]
} as const satisfies Record<string, ReadonlyArray<Tag>>
