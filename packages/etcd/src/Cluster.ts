/**
 * The cluster's membership: listing, adding (as a voting member or as a learner),
 * promoting, updating and removing members, as clientv3's `Cluster` interface and the
 * `etcd3` package's `cluster` calls offer them.
 *
 * A member is added before its process starts: add it with its peer URLs, then start
 * etcd with `--initial-cluster-state existing` and an `--initial-cluster` that names
 * every member, the new one included. A learner receives the log without voting; promote
 * it once it has caught up (until then promotion fails with `LearnerNotReady`).
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Cluster } from "effect-etcd"
 *
 * const grow = Effect.gen(function*() {
 *   const { member } = yield* Cluster.addMember(["http://10.0.0.4:2380"], { learner: true })
 *   // ... start etcd on 10.0.0.4, then:
 *   yield* Cluster.promoteMember(member.id).pipe(
 *     Effect.retry({ while: (error) => error._tag === "LearnerNotReady", schedule: Schedule.spaced("1 second") })
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Printable from "./internal/base/printable.js"
import { fromInt64, toInt64 } from "./internal/data/codec.js"
import type { Member__Output } from "./internal/wire/proto/generated/etcdserverpb/Member.js"
import { methods } from "./internal/wire/proto/loader.js"

/**
 * A member of the cluster. `name` and `clientUrls` are empty for a member that was added
 * but has not started yet.
 *
 * @since 0.1.0
 * @category models
 */
export interface Member {
  readonly id: bigint
  readonly name: string
  readonly peerUrls: ReadonlyArray<string>
  readonly clientUrls: ReadonlyArray<string>
  readonly isLearner: boolean
}

/** A member prints safely: its ID is a bigint. */
const MemberProto = Printable.Proto("Cluster.Member")

const toMember = (member: Member__Output): Member =>
  Printable.make(MemberProto, {
    id: fromInt64(member.ID),
    name: member.name,
    peerUrls: member.peerURLs,
    clientUrls: member.clientURLs,
    isLearner: member.isLearner
  })

const toMembers = (response: { readonly members: ReadonlyArray<Member__Output> }): ReadonlyArray<Member> =>
  response.members.map(toMember)

const urls = (peerUrls: ReadonlyArray<string> | string): Array<string> =>
  typeof peerUrls === "string" ? [peerUrls] : [...peerUrls]

/**
 * Every member (clientv3 `MemberList`, etcd3 `cluster.memberList`).
 *
 * @since 0.1.0
 * @category members
 */
export const members: Effect.Effect<ReadonlyArray<Member>, EtcdError.CallError, Etcd> = Effect.flatMap(
  Etcd,
  (etcd) => Effect.map(etcd.transport.unary(methods.cluster.memberList, {}, { idempotency: "repeatable" }), toMembers)
).pipe(EtcdError.within("call"))

/**
 * Adds a member with these peer URLs (clientv3 `MemberAdd` / `MemberAddAsLearner`,
 * etcd3 `cluster.memberAdd`), as a learner when `learner` is set. Returns the new member
 * (its ID is what promote, update and remove take) and the members after the change.
 * Peer URLs another member has fail with `AlreadyExists`.
 *
 * @since 0.1.0
 * @category members
 */
export const addMember = (
  peerUrls: ReadonlyArray<string> | string,
  options?: { readonly learner?: boolean | undefined }
): Effect.Effect<
  { readonly member: Member; readonly members: ReadonlyArray<Member> },
  EtcdError.MemberAddError,
  Etcd
> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.map(
      etcd.transport.unary(methods.cluster.memberAdd, {
        peerURLs: urls(peerUrls),
        isLearner: options?.learner ?? false
      }, { idempotency: "mutation" }),
      (response) => ({
        member: toMember(response.member ?? { ID: "0", name: "", peerURLs: [], clientURLs: [], isLearner: false }),
        members: toMembers(response)
      })
    )).pipe(EtcdError.within("memberAdd"))

/**
 * Makes a learner a voting member (clientv3 `MemberPromote`); fails with
 * `LearnerNotReady` while it lags behind the leader, and `PreconditionFailed` for a
 * member that is no learner. Returns the members after the change.
 *
 * @since 0.1.0
 * @category members
 */
export const promoteMember = (id: bigint): Effect.Effect<ReadonlyArray<Member>, EtcdError.MemberPromoteError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.map(
      etcd.transport.unary(methods.cluster.memberPromote, { ID: toInt64(id) }, { idempotency: "mutation" }),
      toMembers
    )).pipe(EtcdError.within("memberPromote"))

/**
 * Removes a member (clientv3 `MemberRemove`, etcd3 `cluster.memberRemove`); its process
 * stops by itself soon after. `NotFound` when there is no such member. Returns the
 * members after the change.
 *
 * @since 0.1.0
 * @category members
 */
export const removeMember = (id: bigint): Effect.Effect<ReadonlyArray<Member>, EtcdError.MemberRemoveError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.map(
      etcd.transport.unary(methods.cluster.memberRemove, { ID: toInt64(id) }, { idempotency: "mutation" }),
      toMembers
    )).pipe(EtcdError.within("memberRemove"))

/**
 * Changes a member's peer URLs (clientv3 `MemberUpdate`, etcd3 `cluster.memberUpdate`).
 * Returns the members after the change.
 *
 * @since 0.1.0
 * @category members
 */
export const updateMember = (
  id: bigint,
  peerUrls: ReadonlyArray<string> | string
): Effect.Effect<ReadonlyArray<Member>, EtcdError.MemberUpdateError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.map(
      etcd.transport.unary(methods.cluster.memberUpdate, { ID: toInt64(id), peerURLs: urls(peerUrls) }, {
        idempotency: "mutation"
      }),
      toMembers
    )).pipe(EtcdError.within("memberUpdate"))
