/**
 * The message of each error of `EtcdError`, built from its fields: what `error.message`,
 * `String(error)` and the loggers show. One function per error, named after it; the public
 * classes call them from their `message` getters. May import Effect; of the public
 * modules, types only.
 */
import * as Duration from "effect/Duration"
import type * as EtcdError from "../../EtcdError.js"

/** A message, followed by the RPC it came from when known: `permission denied (etcdserverpb.KV/Put)`. */
export const withMethod = (text: string, context: EtcdError.RpcContext): string =>
  context.method === undefined ? text : `${text} (${context.method})`

/** `connection refused by 127.0.0.1:2379`, `no answer within 5s`, ...: one failure in a few words. */
export const failureReason = (failure: EtcdError.EndpointFailure): string => {
  const error = failure.error
  if (error._tag === "EtcdTimeout") return `no answer from ${failure.address} within ${Duration.format(error.timeout)}`
  if (error._tag !== "EtcdUnavailable") return error.message
  // the address the socket really tried (a host name resolved), as Node's net error names it
  const dialled = /\bconnect E[A-Z]+ (\S+?)\.?(?:\s|$)/.exec(error.reason)?.[1] ?? failure.address
  if (/ECONNREFUSED/.test(error.reason)) return `connection refused by ${dialled}`
  if (/ECONNRESET/.test(error.reason)) return `connection reset by ${dialled}`
  if (/EHOSTUNREACH|ENETUNREACH/.test(error.reason)) return `${dialled} is unreachable`
  if (/ENOTFOUND|EAI_AGAIN|Name resolution|getaddrinfo/i.test(error.reason)) {
    return `cannot resolve the host of ${failure.address}`
  }
  if (/No connection established/.test(error.reason)) return `no connection to ${dialled}`
  return `${error.reason} (${failure.address})`
}

/** An endpoint as given, and the port it was taken to mean when it names none. */
export const endpointName = (failure: EtcdError.EndpointFailure): string =>
  /:\d+\/?$/.test(failure.endpoint)
    ? failure.endpoint
    : `${failure.endpoint} (no port given, so etcd's default ${
      failure.address.slice(failure.address.lastIndexOf(":") + 1)
    })`

/** Compacted's message. */
export const compacted = (error: EtcdError.Compacted): string =>
  withMethod(
    `revision ${error.requestedRevision ?? "(unknown)"} has been compacted; ` +
      `oldest available is ${error.compactRevision}`,
    error
  )

/** FutureRevision's message. */
export const futureRevision = (error: EtcdError.FutureRevision): string => {
  const requested = error.requestedRevision === undefined ? "" : ` ${error.requestedRevision}`
  const current = error.currentRevision === undefined ? "" : ` (the current revision is ${error.currentRevision})`
  return withMethod(`the requested revision${requested} is a future revision${current}`, error)
}

/** EmptyKey's message. */
export const emptyKey = (error: EtcdError.EmptyKey): string => withMethod("a key must not be empty", error)

/** RequestTooLarge's message. */
export const requestTooLarge = (error: EtcdError.RequestTooLarge): string => {
  const size = error.size === undefined ? "" : ` (${error.size} bytes)`
  return withMethod(`the request is larger than the server accepts${size}`, error)
}

/** ResponseTooLarge's message. */
export const responseTooLarge = (error: EtcdError.ResponseTooLarge): string => {
  const size = error.size === undefined ? "" : ` (${error.size} bytes)`
  return withMethod(`the answer is larger than the client's receive limit of ${error.limit} bytes${size}`, error)
}

/** TooManyOps's message. */
export const tooManyOps = (error: EtcdError.TooManyOps): string =>
  withMethod("the transaction has more operations than the server allows", error)

/** DuplicateKey's message. */
export const duplicateKey = (error: EtcdError.DuplicateKey): string =>
  withMethod("the transaction writes the same key more than once", error)

/** EtcdInvalidArgument's message. */
export const etcdInvalidArgument = (error: EtcdError.EtcdInvalidArgument): string =>
  withMethod(`invalid argument: ${error.reason}`, error)

/** NoSpace's message. */
export const noSpace = (error: EtcdError.NoSpace): string => withMethod("the database space is exceeded", error)

/** LeaseNotFound's message. */
export const leaseNotFound = (error: EtcdError.LeaseNotFound): string => {
  const id = error.leaseId === undefined ? "" : ` ${error.leaseId.toString(16)}`
  return withMethod(`lease${id} not found (expired, revoked or never granted)`, error)
}

/** LeaseExists's message. */
export const leaseExists = (error: EtcdError.LeaseExists): string => {
  const id = error.leaseId === undefined ? "" : ` ${error.leaseId.toString(16)}`
  return withMethod(`lease${id} already exists`, error)
}

/** LeaseLost's message. */
export const leaseLost = (error: EtcdError.LeaseLost): string => {
  const why = error.reason === "expired"
    ? "the server reports it expired"
    : error.reason === "revoked"
    ? "it was revoked"
    : "no keepalive was acknowledged within its TTL"
  return `lease ${error.leaseId.toString(16)} lost: ${why}`
}

/** NoLeader's message. */
export const noLeader = (error: EtcdError.NoLeader): string => withMethod(error.reason, error)

/** EtcdTimeout's message. */
export const etcdTimeout = (error: EtcdError.EtcdTimeout): string => {
  const at = error.endpoint === undefined ? "" : ` at ${error.endpoint}`
  return withMethod(`no answer within ${Duration.format(error.timeout)}${at}`, error)
}

/** EtcdUnavailable's message. */
export const etcdUnavailable = (error: EtcdError.EtcdUnavailable): string => {
  const at = error.endpoints.length === 0 ? "" : ` at ${error.endpoints.join(", ")}`
  return withMethod(`etcd unavailable${at}: ${error.reason}`, error)
}

/** ClientClosed's message. */
export const clientClosed = (error: EtcdError.ClientClosed): string =>
  withMethod("the etcd client is closed (its scope has ended); build a new client to go on", error)

/** EtcdConnectionFailed's message. */
export const etcdConnectionFailed = (error: EtcdError.EtcdConnectionFailed): string => {
  if (error.failures.length === 0) {
    return `could not connect to etcd at ${error.endpoints.join(", ")} within ${Duration.format(error.timeout)}`
  }
  if (error.failures.length === 1) {
    const failure = error.failures[0]
    return `could not connect to etcd at ${endpointName(failure)}: ${failureReason(failure)}`
  }
  return `could not connect to etcd at any of ${error.failures.length} endpoints: ${
    error.failures.map((failure) => `${endpointName(failure)}: ${failureReason(failure)}`).join("; ")
  }`
}

/** AmbiguousOutcome's message. */
export const ambiguousOutcome = (error: EtcdError.AmbiguousOutcome): string =>
  // the cause names the method already
  `the write may or may not have been applied: ${error.cause.message}`

/** EtcdAuthFailed's message. */
export const etcdAuthFailed = (error: EtcdError.EtcdAuthFailed): string => {
  const user = error.username === undefined ? "" : ` for user ${JSON.stringify(error.username)}`
  return withMethod(`authentication failed${user}: invalid user name or password`, error)
}

/** EtcdPermissionDenied's message. */
export const etcdPermissionDenied = (error: EtcdError.EtcdPermissionDenied): string =>
  withMethod("permission denied", error)

/** InvalidAuthToken's message. */
export const invalidAuthToken = (error: EtcdError.InvalidAuthToken): string =>
  withMethod("the auth token is invalid or expired", error)

/** EtcdTlsError's message. */
export const etcdTlsError = (error: EtcdError.EtcdTlsError): string => {
  const wth = error.endpoints.length === 0 ? "" : ` with ${error.endpoints.join(", ")}`
  return withMethod(`TLS failure${wth}: ${error.reason}`, error)
}

/** EtcdNotFound's message. */
export const etcdNotFound = (error: EtcdError.EtcdNotFound): string => withMethod(error.reason, error)

/** EtcdAlreadyExists's message. */
export const etcdAlreadyExists = (error: EtcdError.EtcdAlreadyExists): string => withMethod(error.reason, error)

/** LearnerNotReady's message. */
export const learnerNotReady = (error: EtcdError.LearnerNotReady): string =>
  withMethod("the learner is not in sync with the leader yet", error)

/** EtcdPreconditionFailed's message. */
export const etcdPreconditionFailed = (error: EtcdError.EtcdPreconditionFailed): string =>
  withMethod(error.reason, error)

/** SnapshotFailed's message. */
export const snapshotFailed = (error: EtcdError.SnapshotFailed): string => {
  const cause = typeof error.cause === "object" && error.cause !== null && "message" in error.cause
    ? String(error.cause.message)
    : String(error.cause)
  return `snapshot to ${error.path} failed after ${error.bytesReceived} bytes: ${cause}`
}

/** LockTimeout's message. */
export const lockTimeout = (error: EtcdError.LockTimeout): string =>
  `lock ${JSON.stringify(error.lockName)} not acquired within ${Duration.format(error.timeout)}`

/** CampaignTimeout's message. */
export const campaignTimeout = (error: EtcdError.CampaignTimeout): string =>
  `election ${JSON.stringify(error.electionName)} not won within ${Duration.format(error.timeout)}`

/** MirrorTimeout's message. */
export const mirrorTimeout = (error: EtcdError.MirrorTimeout): string =>
  `mirror did not reach revision ${error.revision} within ${Duration.format(error.timeout)} (it is at ${error.reached})`

/** NotLeader's message. */
export const notLeader = (error: EtcdError.NotLeader): string =>
  `no longer the leader of election ${JSON.stringify(error.electionName)} (key ${error.key})`

/** StmRetriesExhausted's message. */
export const stmRetriesExhausted = (error: EtcdError.StmRetriesExhausted): string =>
  `the transaction conflicted with other writes on all of its ${error.attempts} attempts`

/** WatchCanceled's message. */
export const watchCanceled = (error: EtcdError.WatchCanceled): string =>
  `the server canceled the watch: ${error.reason}`

/** EtcdDecodeError's message. */
export const etcdDecodeError = (error: EtcdError.EtcdDecodeError): string => {
  const at = error.revision === undefined ? "" : ` at revision ${error.revision}`
  const subject = `${error.part === "key" ? "key" : "value of key"} ${JSON.stringify(error.key)}`
  return `${subject}${at} does not ${error.direction}: ${error.reason}`
}

/** EtcdUnknown's message. */
export const etcdUnknown = (error: EtcdError.EtcdUnknown): string =>
  withMethod(`etcd error (gRPC code ${error.code}): ${error.details}`, error)
