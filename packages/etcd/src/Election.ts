/**
 * Leader election (clientv3's `concurrency.Election`; etcetra's `election_campaign`,
 * `election_proclaim`, `election_resign`, `election_leader` and `election_observe`),
 * built only on the public `Kv`, `Txn`, `Watch` and `Lease` modules.
 *
 * - A candidate puts the key `<name>/<lease ID in hex>` holding its value, attached to
 *   its lease (its own, or a shared `Session`'s). The leader is the key with the lowest
 *   create revision: candidates lead in the order they arrived, and a waiting candidate
 *   watches only the candidate just before it.
 * - Leadership is scoped: it ends when the scope closes (the key is deleted and the next
 *   candidate leads at once), and the leader is told (`lost`, `guard`) as soon as its
 *   lease is lost, since another candidate may then lead.
 * - `revision`, the create revision of the leader's key, increases with every new
 *   leadership: it fences writes, and `isLeader` is the ready compare for them.
 * - An interrupted or timed-out campaign (`CampaignTimeout`) leaves no key behind.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Election, Op, Txn } from "effect-etcd"
 *
 * const serve = Effect.scoped(Effect.gen(function*() {
 *   const leadership = yield* Election.campaign("elections/scheduler", "node-1")
 *   yield* leadership.proclaim("node-1 (ready)")
 *   // a write that lands only while this candidate still leads
 *   yield* Txn.txnCompare([leadership.isLeader], [Op.put("scheduler/plan", "v2")])
 *   yield* leadership.guard(Effect.never)
 * }))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Compare from "./Compare.js"
import { type DurationWithUnit, Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Metrics from "./internal/base/metrics.js"
import * as Printable from "./internal/base/printable.js"
import * as Scoped from "./internal/base/scoped.js"
import * as Validate from "./internal/data/validate.js"
import * as Queue from "./internal/recipes/queue.js"
import * as Protocol from "./internal/rpc/protocol.js"
import * as KeyRange from "./KeyRange.js"
import type { KeyValue } from "./KeyValue.js"
import * as Kv from "./Kv.js"
import * as Lease from "./Lease.js"
import * as Op from "./Op.js"
import type { Session } from "./Session.js"
import * as Txn from "./Txn.js"
import * as Watch from "./Watch.js"

/**
 * Options of a campaign.
 *
 * @since 0.1.0
 * @category models
 */
export interface CampaignOptions {
  /** Give up with `CampaignTimeout` after waiting this long; wait forever by default. */
  readonly timeout?: DurationWithUnit | undefined
  /**
   * Campaign on this session's lease instead of a lease of its own: the leadership is
   * lost when the session is. By default, the `Session` of the context, when one is
   * provided (`Session.layer`) and no `ttl` is given.
   */
  readonly session?: Session | undefined
  /**
   * The TTL of the campaign's own lease (default 60 seconds); not used with a `session`.
   * Giving it asks for a lease of the campaign's own even when the context provides a `Session`.
   */
  readonly ttl?: Lease.Ttl | undefined
  /**
   * Campaign on a lease the caller granted (etcetra's `election_campaign` with a lease ID;
   * clientv3's `concurrency.NewSession` with `WithLease`), instead of a session or a lease
   * of the campaign's own. Not with `session` or `ttl`.
   *
   * - A lease ID (`bigint`): the campaign keeps the lease alive, over the client's shared
   *   keepalive stream, from the start of the campaign until its scope closes, and never
   *   revokes it: resigning or closing the scope deletes the candidate's key only, and the
   *   lease stays the caller's (with whatever else is attached to it). A lease that does not
   *   exist fails the campaign with `LeaseNotFound`.
   * - A held `Lease` (from `Lease.make`, `Lease.keepAlive`, or a session's `lease`): whoever
   *   holds it keeps it alive; the campaign only attaches its key to it.
   *
   * Either way the leadership lives no longer than the lease: once the lease is lost
   * (revoked by anyone, or expired) the key goes with it on the server, and the campaign
   * or the leadership fails with `LeaseLost` (`lost`, `guard`).
   */
  readonly lease?: bigint | Lease.Lease | undefined
  /** The bound of the resignation when the scope closes (default 5 seconds). */
  readonly releaseTimeout?: DurationWithUnit | undefined
}

/**
 * Who leads an election.
 *
 * @since 0.1.0
 * @category models
 */
export interface Leader {
  /** The leader's key, `<name>/<lease ID in hex>...`. */
  readonly key: string
  /** The value it proclaimed. */
  readonly value: string
  /** The create revision of its key: the leadership's fencing token. */
  readonly revision: bigint
  /** The revision of its last proclamation. */
  readonly modRevision: bigint
  /** The lease its key is attached to. */
  readonly lease: bigint
}

/**
 * A won election, held until the scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Leadership {
  /** The election's name, as given. */
  readonly name: string
  /** This leader's key. */
  readonly key: string
  /** The create revision of the key: increases with every new leadership, so it fences writes. */
  readonly revision: bigint
  /** The lease the key is attached to. */
  readonly lease: Lease.Lease
  /** "Still the leader": a compare that holds only while this leadership's key is there. */
  readonly isLeader: Compare.Compare
  /**
   * Changes the leader's value, only while still the leader; fails with `NotLeader`
   * otherwise (after a resignation, a lost session, or a deleted key), writing nothing.
   * It writes with the client the campaign was made with (its namespace included),
   * whatever client the caller's context holds.
   */
  readonly proclaim: (value: string) => Effect.Effect<void, EtcdError.ProclaimError>
  /**
   * Ends the leadership now: the next candidate leads at once. Closing the scope does too.
   * Like `proclaim`, it uses the client the campaign was made with.
   */
  readonly resign: Effect.Effect<void, EtcdError.DeleteError>
  /** Fails with `LeaseLost` as soon as the leadership can no longer be trusted to be held. */
  readonly lost: Effect.Effect<never, EtcdError.LeaseLost>
  /** Runs an effect, interrupting it and failing with `LeaseLost` if the leadership is lost first. */
  readonly guard: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | EtcdError.LeaseLost, R>
}

const prefixOf = (name: string): string => `${name}/`

const withinCampaign = EtcdError.within("campaign")
const withinProclaim = EtcdError.within("proclaim")
const withinDelete = EtcdError.within("delete")
const toWatchError = EtcdError.toFamily("watch")

// leaders and leaderships print their data, never throwing on their bigints
const LeaderProto = Printable.Proto("Election.Leader")
const LeadershipProto = Printable.Proto("Election.Leadership")

const leaderOf = (kv: KeyValue): Leader =>
  Printable.make(LeaderProto, {
    key: kv.key,
    value: kv.value,
    revision: kv.createRevision,
    modRevision: kv.modRevision,
    lease: kv.lease
  })

/**
 * Campaigns for leadership of `name` with `value` (etcetra's `election_campaign`):
 * waits, first come first served, until this candidate leads, and holds the leadership
 * until the scope closes. With `timeout`, fails with `CampaignTimeout` after that long.
 * Whatever happens (resignation, failure, timeout, interruption while waiting or
 * leading) the candidate's key is removed from the server.
 *
 * @since 0.1.0
 * @category constructors
 */
export const campaign = (
  name: string,
  value: string,
  options?: CampaignOptions
): Effect.Effect<Leadership, EtcdError.CampaignError, Etcd | Scope.Scope> =>
  // a lease of the caller's is what the campaign is held with: the session of the context is not
  typeof options === "object" && options !== null && options.lease !== undefined
    ? campaignWith(name, value, options)
    : Queue.withDefaultSession(options, (options) => campaignWith(name, value, options))

const SessionProto = Printable.Proto("Session")

/**
 * The caller's lease as the session the queue holds a place with: a held lease as it is;
 * a lease ID kept alive, not revoked, until the scope (the campaign's) closes.
 */
const sessionOnLease = (
  lease: bigint | Lease.Lease
): Effect.Effect<Session, EtcdError.LeaseError, Etcd | Scope.Scope> =>
  Effect.map(
    typeof lease === "bigint" ? Lease.keepAlive(lease) : Effect.succeed(lease),
    (held): Session =>
      Printable.make(SessionProto, { lease: held, lost: held.lost, isLost: held.isLost, guard: held.guard })
  )

/** A lease option: an ID in range, or a held lease; and neither a session nor a TTL beside it. */
const leaseProblem = (options: CampaignOptions | undefined): Validate.Problem => {
  const lease = options?.lease
  if (lease === undefined) return undefined
  if (options?.session !== undefined || options?.ttl !== undefined) {
    return Validate.invalid("lease", lease, "given alone, without a session or a ttl")
  }
  if (typeof lease === "bigint") return Validate.leaseId("lease", lease)
  return typeof lease === "object" && lease !== null && typeof lease.id === "bigint" && Effect.isEffect(lease.lost)
    ? undefined
    : Validate.invalid("lease", lease, "a lease ID (a bigint) or a held Lease")
}

const campaignWith = (
  name: string,
  value: string,
  options: CampaignOptions | undefined
): Effect.Effect<Leadership, EtcdError.CampaignError, Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    yield* Validate.check(() =>
      Validate.first(
        () => Validate.queueOptions(name, options),
        () => typeof value === "string" ? undefined : Validate.invalid("value", value, "a string"),
        () => leaseProblem(options)
      )
    )
    if (name.length === 0) return yield* new EtcdError.EmptyKey({})
    const prefix = prefixOf(name)
    const callersLease = options?.lease
    // on a lease of the caller's, its keepalive (when the campaign keeps it) lives in the
    // attempt's scope: it ends with the leadership, or at once when the campaign fails
    const enqueue = callersLease === undefined
      ? Queue.enqueue(prefix, value, KeyRange.prefix(prefix), options)
      : Effect.flatMap(
        sessionOnLease(callersLease),
        (session) => Queue.enqueue(prefix, value, KeyRange.prefix(prefix), { ...options, session, ttl: undefined })
      )
    const etcd = yield* Etcd
    const metrics = Protocol.of(etcd).metrics
    const place = yield* Metrics.measureWait(
      metrics,
      "election",
      Queue.attempt(
        withinCampaign(enqueue),
        options?.timeout,
        (timeout) => new EtcdError.CampaignTimeout({ electionName: name, timeout })
      )
    )
    // the leader gauge (electionNames only) counts this leadership until it resigns or its scope closes
    let leading = metrics.electionNames
    if (leading) Metrics.leaderHeld(name, 1)
    const stopLeading = Effect.sync(() => {
      if (leading) Metrics.leaderHeld(name, -1)
      leading = false
    })
    yield* Effect.addFinalizer(() => stopLeading)
    const { key, lease, revision } = place
    const isLeader = Compare.createRevision(key).equals(revision)
    const notLeader = new EtcdError.NotLeader({ electionName: name, key })
    // the handle writes with the client it was made with (its namespace), not the caller's
    return Printable.make(
      LeadershipProto,
      {
        name,
        key,
        revision,
        lease,
        isLeader,
        proclaim: (value) =>
          withinProclaim(Txn.txnCompare([isLeader], [Op.put(key, value, { lease })])).pipe(
            Effect.flatMap((result) => result.succeeded ? Effect.void : Effect.fail(notLeader)),
            Effect.provideService(Etcd, etcd),
            Effect.withSpan("Election.proclaim", { attributes: { "etcd.election": name }, captureStackTrace: false })
          ),
        resign: withinDelete(Effect.asVoid(Txn.txnCompare([isLeader], [Op.delete(key)]))).pipe(
          Effect.zipLeft(stopLeading),
          Effect.provideService(Etcd, etcd),
          Effect.withSpan("Election.resign", { attributes: { "etcd.election": name }, captureStackTrace: false })
        ),
        lost: lease.lost,
        guard: lease.guard
      } satisfies Leadership
    )
  }).pipe(Effect.withSpan("Election.campaign", { attributes: { "etcd.election": name }, captureStackTrace: false }))

/**
 * Changes a leader's value while it still leads (etcetra's `election_proclaim`); fails
 * with `NotLeader` otherwise.
 *
 * @since 0.1.0
 * @category combinators
 */
export const proclaim = (
  leadership: Leadership,
  value: string
): Effect.Effect<void, EtcdError.ProclaimError> => leadership.proclaim(value)

/**
 * Ends a leadership now (etcetra's `election_resign`): the next candidate leads at once.
 * Resigning twice, or after the leadership was lost, does nothing.
 *
 * @since 0.1.0
 * @category combinators
 */
export const resign = (leadership: Leadership): Effect.Effect<void, EtcdError.DeleteError> => leadership.resign

/**
 * Runs `effect` as the leader of `name`: campaigns, runs it once leading, then resigns.
 * `effect` is interrupted, and this fails with `LeaseLost`, if the leadership is lost
 * meanwhile.
 *
 * Dual, the function first: `Election.withLeadership(f, name, value, options)`, or piped,
 * `pipe(f, Election.withLeadership(name, value, options))`. The earlier order
 * `Election.withLeadership(name, value, f, options)` still works.
 *
 * @example
 * ```ts
 * import { Effect, pipe } from "effect"
 * import { Election } from "effect-etcd"
 *
 * const lead = pipe(
 *   (leadership: Election.Leadership) => Effect.log(`leading with token ${leadership.revision}`),
 *   Election.withLeadership("elections/scheduler", "node-1", { timeout: "30 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLeadership: {
  (name: string, value: string, options?: CampaignOptions): <A, E, R>(
    f: (leadership: Leadership) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | EtcdError.CampaignError, Etcd | Exclude<R, Scope.Scope>>
  <A, E, R>(
    f: (leadership: Leadership) => Effect.Effect<A, E, R>,
    name: string,
    value: string,
    options?: CampaignOptions
  ): Effect.Effect<A, E | EtcdError.CampaignError, Etcd | Exclude<R, Scope.Scope>>
  /** The earlier order, kept working. */
  <A, E, R>(
    name: string,
    value: string,
    f: (leadership: Leadership) => Effect.Effect<A, E, R>,
    options?: CampaignOptions
  ): Effect.Effect<A, E | EtcdError.CampaignError, Etcd | Exclude<R, Scope.Scope>>
} = function() {
  // a name or a value is never a function: where the function is tells the form apart
  const args = arguments
  if (typeof args[0] === "function") return leading(args[1], args[2], args[0], args[3])
  if (typeof args[2] === "function") return leading(args[0], args[1], args[2], args[3])
  return (f: (leadership: Leadership) => Effect.Effect<any, any, any>) => leading(args[0], args[1], f, args[2])
} as any

const leading = <A, E, R>(
  name: string,
  value: string,
  f: (leadership: Leadership) => Effect.Effect<A, E, R>,
  options: CampaignOptions | undefined
): Effect.Effect<A, E | EtcdError.CampaignError, Etcd | Exclude<R, Scope.Scope>> =>
  Scoped.scoped(Effect.flatMap(campaign(name, value, options), (leadership) => leadership.guard(f(leadership))))

/**
 * The current leader of `name`, if any (etcetra's `election_leader`).
 *
 * @since 0.1.0
 * @category reads
 */
export const leader = (name: string): Effect.Effect<Option.Option<Leader>, EtcdError.ReadError, Etcd> =>
  Effect.map(
    Kv.range(KeyRange.prefix(prefixOf(name)), { sortTarget: "create", sortOrder: "ascend", limit: 1 }),
    (result) => Option.map(Option.fromNullable(result.kvs[0]), leaderOf)
  )

interface Candidates {
  /** Every candidate's key, by key. */
  readonly byKey: Map<string, KeyValue>
  /** The last leader emitted. */
  last: Leader | undefined
}

const headOf = (candidates: Candidates): KeyValue | undefined => {
  let head: KeyValue | undefined
  for (const kv of candidates.byKey.values()) {
    if (head === undefined || kv.createRevision < head.createRevision) head = kv
  }
  return head
}

/** The leader, if it differs from the last one emitted (another key, or a new proclamation). */
const changed = (candidates: Candidates): Array<Leader> => {
  const head = headOf(candidates)
  if (head === undefined) return []
  const last = candidates.last
  if (last !== undefined && last.key === head.key && last.modRevision === head.modRevision) return []
  const next = leaderOf(head)
  candidates.last = next
  return [next]
}

const observeFrom = (
  name: string,
  last: Leader | undefined
): Stream.Stream<Leader, EtcdError.EtcdError, Etcd> =>
  Stream.unwrap(Effect.gen(function*() {
    const range = KeyRange.prefix(prefixOf(name))
    const snapshot = yield* Kv.range(range)
    const candidates: Candidates = { byKey: new Map(snapshot.kvs.map((kv) => [kv.key, kv])), last }
    const current = changed(candidates)
    const updates = Watch.responses(range, { startRevision: snapshot.revision + 1n }).pipe(
      Stream.mapConcat((response) => {
        // the events of one revision (one txn) are applied together: no leader in between is emitted
        const emitted: Array<Leader> = []
        let revision: bigint | undefined
        for (const event of response.events) {
          if (revision !== undefined && event.revision !== revision) emitted.push(...changed(candidates))
          revision = event.revision
          if (event.type === "put") candidates.byKey.set(event.key, event.kv)
          else candidates.byKey.delete(event.key)
        }
        if (revision !== undefined) emitted.push(...changed(candidates))
        return emitted
      }),
      // the history the watch needs was compacted while it was away: read again, and go on
      // from what was last emitted (changes within the lost history are skipped, never repeated)
      Stream.catchTag("Compacted", () => observeFrom(name, candidates.last))
    )
    return Stream.concat(Stream.fromIterable(current), updates)
  }))

/**
 * The leaders of `name` as a Stream (etcetra's `election_observe`): the current leader
 * first (or, when there is none, the first one to come), then one element per change,
 * whether a new leader or a new proclamation of the same one, in order. It follows a
 * single watch of the election's keys, so it resumes across reconnects and member
 * restarts without repeating or missing a change.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Election } from "effect-etcd"
 *
 * const followLeader = Election.observe("elections/scheduler").pipe(
 *   Stream.runForEach((leader) => Effect.log(`leader is now ${leader.value} (${leader.revision})`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category streams
 */
export const observe = (name: string): Stream.Stream<Leader, EtcdError.WatchError, Etcd> =>
  Stream.unwrap(Effect.map(Etcd, (etcd) => {
    const leaders = Stream.mapError(observeFrom(name, undefined), toWatchError)
    return Protocol.of(etcd).metrics.enabled ? Stream.tap(leaders, () => Effect.sync(Metrics.leaderChanged)) : leaders
  }))
