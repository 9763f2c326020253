/**
 * All watchers of a client share one gRPC Watch stream, whose responses are handled as
 * they arrive, never waiting for any watcher's consumer.
 *
 * - A watcher is known on the server by the ID the server answered its create with, and
 *   canceled by that ID: etcd's gRPC proxy (`etcd grpc-proxy start`) ignores the ID a client
 *   asks for and numbers each stream's watchers itself, from 0. A caller's `watchId` is still
 *   asked for, and stays the watcher's ID in this client (unique among its watchers).
 * - Matching a create's answer to its create: etcd handles a stream's requests one after
 *   another and sends every create's answer through one queue, in the order of the creates;
 *   the gRPC proxy does not (a create that joins a range it already watches is answered at
 *   once, one that opens a range when its member has answered). So each stream starts with
 *   one create at a time, as Go's clientv3 does: the one answer awaited is that create's,
 *   whatever its ID (a failed create is answered with watch ID -1). Once the server has
 *   answered a create with the ID asked for, where a renumbering server would have given
 *   another, it is known to honour IDs, and creates are pipelined on that stream: each
 *   answer is matched by its ID, a failure to the oldest create not answered yet.
 * - Each watcher remembers the next revision it has to deliver, and drops anything
 *   older. When the stream breaks (member killed, connection reset, graceful end) the
 *   runner opens a new one and re-creates every watcher from its own next revision: no
 *   event is lost or delivered twice, and order is kept. That bookkeeping is a value of
 *   its own (watchResume.ts); the loop that opens, waits and reopens is the one the
 *   keepalive hub runs too (streamSession.ts).
 * - Isolation: each watcher has its own buffer, bounded in bytes of keys and values.
 *   When a response takes a watcher past its `bufferBytes`, the response is kept and the
 *   watcher is canceled on the server ("suspended"); once its consumer has taken half of
 *   what waits, it is created again, under a new watch ID, from its next revision, and
 *   the server replays the rest from its history. A buffer holds at most its bound plus
 *   one response, nothing is lost, and no consumer slows another down. If the history
 *   was compacted meanwhile, that watcher alone fails with `Compacted`.
 * - Events wait in a buffer as the bytes received (see watchCodec.ts): the consumer
 *   decodes them `takeBytes` at a time as it takes them, so a slow consumer's backlog is
 *   not a graph of small objects old enough to be promoted and collected late. A consumer
 *   of events (`parts`) takes a large response, such as a replay of up to 1000 revisions
 *   after a suspension, in parts of whole revisions of about `takeBytes`.
 * - Every watcher asks the server for progress notifications, whether its consumer wants
 *   them or not: they come in order with the events of that watcher and move its resume
 *   revision forward while nothing happens in its range, so a quiet watcher does not
 *   resume from a revision that compaction has since removed.
 * - Responses are handled as they arrive, in the stream's data callback: routing one is a
 *   few map lookups and an append to a buffer, with no queue and no fiber to wake (made
 *   per response: its batch, the watcher's new bookkeeping and the step carrying it). The
 *   runner fiber only opens streams, and waits for one to break or have no watcher left.
 * - The stream is spoken over `node:http2` (`Transport.framedDuplex`), not grpc-js: the
 *   requests of one turn (the creates of the subscribers that the answers of one read
 *   resumed) go out in one write, and each answer is read from its bytes with nothing in
 *   between; grpc-js costs a write (and a syscall on both sides) and a chain of objects
 *   and promises per message.
 * - Compaction, a server-side cancel, or a create the server refuses ends that watcher
 *   with a tagged error and leaves the others alone. A create refused for permission is
 *   tried once more with a fresh auth token, as is everything after a rejected token.
 * - A stream opened with `hasleader` (the default) is refused, or canceled later, by a
 *   member that has lost its leader ("no leader"): like any break, the runner then reports
 *   the member and opens the next stream on another one, where every watcher resumes from
 *   its own next revision. Watchers that ask for no leader share a second stream (a second
 *   hub, see `makeShared`): a stream's metadata is set when it opens.
 * - A stream that goes quiet is sent a progress request, and given up as stalled when its
 *   member answers nothing at all in time (progressProbe.ts): a member paused, or cut off
 *   with the connection still open, is left within about the request timeout, sooner than
 *   the connection's PINGs (5 s at least, etcd's bound) would leave it.
 * - Progress requests (`requestProgress`): one in flight per stream at a time; the server
 *   answers with watch ID -1 and its store's revision, and that answer settles every
 *   request made before it was sent. It moves no watcher's resume revision and reaches no
 *   consumer: etcd before 3.5.8 (and 3.4 before etcd-io/etcd#15697) sends it apart from the
 *   watchers' events, so events at or below its revision may still follow it. A stream is opened for a request
 *   when no watcher has one open, and a request in flight when the stream breaks is sent
 *   again on the next one.
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as EtcdError from "../../EtcdError.js"
import * as Metrics from "../base/metrics.js"
import { toInt64 } from "../data/codec.js"
import type { Transport } from "../transport/transport.js"
import { frame } from "../wire/grpcFrames.js"
import type { WatchRequest } from "../wire/proto/generated/etcdserverpb/WatchRequest.js"
import { methods } from "../wire/proto/loader.js"
import { readWatchResponse, type WatchResponseHead } from "../wire/watchCodec.js"
import { Backlog } from "./backlog.js"
import * as ProgressProbe from "./progressProbe.js"
import { runStream, StreamSession } from "./streamSession.js"
import * as WatchResume from "./watchResume.js"

/** What a watcher watches and how. */
export interface WatchSpec {
  readonly key: Buffer
  readonly rangeEnd: Buffer | undefined
  /** First revision to deliver; the current revision + 1 when absent. */
  readonly startRevision: bigint | undefined
  readonly prevKv: boolean
  readonly progressNotify: boolean
  readonly noPut: boolean
  readonly noDelete: boolean
  readonly fragment: boolean
  /** A watch ID chosen by the caller; the hub picks one otherwise. */
  readonly watchId: bigint | undefined
  /** How many bytes of keys and values may wait for the consumer before the watcher is suspended. */
  readonly bufferBytes: number
  /** Whether its stream carries `hasleader`; the client's default when absent (see `makeShared`). */
  readonly requireLeader?: boolean | undefined
}

/** One response for one watcher: its events (possibly none, for a progress notification). */
export type WatchBatch = WatchResume.WatchBatch

/**
 * What a consumer takes at a time: the oldest batches (at least one), waiting for one when
 * none is there; fails with `None` once the watcher has ended and everything was taken, or
 * `Some` with the error it ended with.
 */
export type TakeBatches = Effect.Effect<Chunk.Chunk<WatchBatch>, Option.Option<EtcdError.EtcdError>>

/** A watcher created on the server; its batches end with the watcher. */
export interface Subscription {
  /** The watch ID it was first created with. */
  readonly watchId: bigint
  /** The revision the server reported when it created the watcher. */
  readonly createdRevision: bigint
  /**
   * Takes the next batches: the public Stream is built on this, one layer deep. With
   * `parts`, for a consumer of events, to whom the server's answers' bounds do not matter:
   * one larger than a take comes in parts of whole revisions, each decoded when taken (a
   * replay of up to 1000 revisions is not decoded at once into objects that would wait
   * long enough for the consumer to be promoted, and collected late). Built when asked
   * for: most consumers read one way only.
   */
  readonly take: (parts: boolean) => TakeBatches
}

/** The shared Watch stream of one client. */
export interface WatchHub {
  /**
   * Creates a watcher and waits for the server's answer. Its release (which cancels it on the server)
   * is handed to `hold` in the same uninterruptible step that registers it, before anything is sent:
   * the caller runs it once done, however it ends, and it does nothing more when run again. Run
   * before the server has answered the create (by a scope closed already), it ends the wait as
   * interrupted. `subscribe` (below) holds it in a Scope; a Stream holds it in a finalizer of its own
   * channel, with no Scope to make, extend and close per run.
   */
  readonly open: (
    spec: WatchSpec,
    hold: (release: Effect.Effect<void>) => Effect.Effect<void>
  ) => Effect.Effect<Subscription, EtcdError.EtcdError>
  /**
   * Asks the member the stream is on for its progress (a `WatchProgressRequest`) and
   * returns the revision it answered with; fails with EtcdTimeout when no answer came by
   * `timeout` (etcd's gRPC proxy, for one, does not answer them).
   */
  readonly requestProgress: (
    options: { readonly requireLeader?: boolean | undefined; readonly timeout: Duration.Duration }
  ) => Effect.Effect<bigint, EtcdError.EtcdError>
}

/** Creates a watcher through `hub`; it is canceled on the server when the scope closes. */
export const subscribe = (
  hub: WatchHub,
  spec: WatchSpec
): Effect.Effect<Subscription, EtcdError.EtcdError, Scope.Scope> =>
  Effect.scopeWith((scope) => hub.open(spec, (release) => Scope.addFinalizer(scope, release)))

/**
 * `WatchHub.open` for a hub whose watchers live in a Scope (`subscribe`): each gets a scope
 * of its own, and its release closes it.
 */
export const openInScope = (
  subscribe: (spec: WatchSpec) => Effect.Effect<Subscription, EtcdError.EtcdError, Scope.Scope>
): WatchHub["open"] =>
(spec, hold) =>
  Effect.suspend(() => {
    let released = false
    return Effect.flatMap(
      // the scope is made and held in one step: an interruption leaves none unheld
      Effect.uninterruptible(Effect.tap(Scope.make(), (scope) =>
        hold(Effect.zipRight(
          Effect.sync(() => {
            released = true
          }),
          Scope.close(scope, Exit.void)
        )))),
      // released already (held by a scope that was closed): ends as the hub's own does
      (scope) => released ? Effect.interrupt : Scope.extend(subscribe(spec), scope)
    )
  })

/** The watch IDs of one client's hubs: one ID is never held by two of its watchers. */
export interface WatchIds {
  /** Every ID a watcher holds (its first one and its stream ID). */
  readonly inUse: Map<bigint, unknown>
  /** The last ID picked. */
  last: bigint
}

type WatcherState =
  /** Waiting for its create to be sent or acknowledged. */
  | "pending"
  /** Created on the current stream: its responses are delivered. */
  | "live"
  /** Canceled on the server because its buffer is full: created again once there is room. */
  | "suspended"
  /** Ended, by its consumer or the server. */
  | "closed"

interface Watcher {
  /** The ID it was first created with (the caller's, or one the hub picked). */
  readonly id: bigint
  /** The ID its create asks for now: a re-creation after a suspension asks for a new one. */
  streamId: bigint
  /** The ID the server answered its create with on the current stream (see the module's header), while live. */
  serverId: bigint | undefined
  readonly spec: WatchSpec
  /** What its consumer has not taken yet. */
  readonly backlog: Backlog<WatchBatch, EtcdError.EtcdError>
  state: WatcherState
  /** How its create ended (the revision the server created it at), once it has. */
  created: Exit.Exit<bigint, EtcdError.EtcdError> | undefined
  /** The subscriber waiting for `created`. */
  onCreated: ((exit: Exit.Exit<bigint, EtcdError.EtcdError>) => void) | undefined
  /** The next revision to deliver, and the fragments of a response not complete yet. */
  resume: WatchResume.WatchResume
  /** Whether a create was refused for permission once: the next refusal is final. */
  deniedOnce: boolean
}

/**
 * One Watch stream's state. It is `healthy` once the server created a watcher on it: a
 * stream that opens and then refuses or drops every create keeps the backoff growing.
 * Nothing it receives is handled once it is `broken`: every watcher is created again on
 * the next stream, from its own next revision.
 */
class Session extends StreamSession {
  /** Requests framed and not written yet: written together by `flush`, once per turn. */
  readonly outgoing: Array<Buffer> = []
  /** Whether a `flush` is queued. */
  flushQueued = false
  /** The watchers created on this stream, by the ID the server gave each. */
  readonly routes = new Map<bigint, Watcher>()
  /** Watchers whose create was sent and not answered yet, oldest first. */
  readonly creating: Array<Watcher> = []
  /** Watchers whose create waits for the one in flight to be answered (until `honoursIds`). */
  readonly waiting: Array<Watcher> = []
  /** Whether the server is known to answer creates with the IDs asked for: creates are pipelined then. */
  honoursIds = false
  /** How many creates the server accepted on this stream (what a renumbering server's next ID would be). */
  accepted = 0
  /** The progress requests its request in flight answers (see `requestProgress`), if one is in flight. */
  progressInFlight: Array<ProgressWaiter> | undefined = undefined
  /** When the progress request in flight was sent (the hub's clock, in milliseconds), if one is. */
  progressSentAt: number | undefined = undefined
  /** How many messages were read: counted per message, looked at per tick of the liveness check. */
  heard = 0
  /** `heard` at the last tick of the liveness check (see progressProbe.ts). */
  heardAtTick = 0
  /** When `heard` was last seen to change, or the stream opened (the hub's clock, in milliseconds). */
  lastHeard = 0
}

/** A caller of `requestProgress`, told the revision answered (or why none will be). */
type ProgressWaiter = (exit: Exit.Exit<bigint, EtcdError.EtcdError>) => void

/** The liveness check's own progress request, which no caller waits for (see progressProbe.ts). */
const probeWaiter: ProgressWaiter = () => {}

const watchPath = methods.watch.watch.path
const encodeRequest = methods.watch.watch.requestSerialize
/** How many bytes of keys and values a consumer takes from its buffer at a time. */
const takeBytes = 64 * 1024

/**
 * Starts the hub; its stream is opened when the first watcher (or progress request) arrives
 * and closed after the last. Hubs of one client share `ids`.
 */
export const make = (transport: Transport, options: {
  readonly auth: boolean
  /** Whether its stream carries `hasleader` (true when absent). */
  readonly requireLeader?: boolean | undefined
  readonly ids?: WatchIds | undefined
}): Effect.Effect<
  WatchHub,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const hubScope = yield* Effect.scope
    /**
     * The liveness check's time in milliseconds: the Clock's monotonic nanoseconds, not its
     * milliseconds (`Date.now()`, which a step of the wall clock moves); the TestClock's in tests.
     */
    const clock = yield* Effect.clock
    const millisNow = (): number => Number(clock.unsafeCurrentTimeNanos() / 1_000_000n)
    const watchers = new Set<Watcher>()
    /** Metrics (`metrics.ts`): the newest revision heard, when each buffer's oldest batch came. */
    const metered = transport.metrics?.enabled === true
    let newestRevision = 0n
    const offeredAt = new Map<Watcher, number>()
    /** Every ID a watcher holds (its first one and its stream ID), so none is given twice. */
    const ids: WatchIds = options.ids ?? { inUse: new Map(), last: 0n }
    const idsInUse = ids.inUse
    /** Progress requests not sent yet on the stream open now (or made while none is). */
    let progressWaiting: Array<ProgressWaiter> = []
    /** Whether a progress request was ever answered here: the liveness check acts only then. */
    let answersProgress = false
    const probeSettings = ProgressProbe.settingsFor(Duration.toMillis(transport.requestTimeout))
    /** The stream open now, if one is. */
    let session: Session | undefined
    let runner: Fiber.RuntimeFiber<void> | undefined
    /** Set when the client closes: a subscribe then fails at once. */
    let closed = false

    const allocateId = (): bigint => {
      do ids.last++
      while (idsInUse.has(ids.last))
      return ids.last
    }

    /** Writes the requests queued, in one write (one DATA frame or a few, not one each). */
    const flush = (current: Session): void => {
      current.flushQueued = false
      const outgoing = current.outgoing
      if (outgoing.length === 0) return
      const bytes = outgoing.length === 1 ? outgoing[0] : Buffer.concat(outgoing)
      outgoing.length = 0
      current.write(bytes)
    }

    /**
     * Queues a request for the session's next `flush`, at the end of this turn: the creates
     * of many subscribers resumed together (by the answers of one read) go out in one write,
     * rather than a write and a syscall each on both sides. The requests come from many
     * places (subscribers, consumers' takes, answers), so a microtask gathers a turn's; the
     * keepalive hub writes only from its tick and knows when a turn's are all there.
     */
    const send = (current: Session, request: WatchRequest): void => {
      current.outgoing.push(frame(encodeRequest(request)))
      if (current.flushQueued) return
      current.flushQueued = true
      queueMicrotask(() => flush(current))
    }

    /** Cancels a live watcher on the server, by the ID the server gave it. */
    const cancelOnServer = (current: Session, watcher: Watcher): void => {
      const serverId = watcher.serverId
      watcher.serverId = undefined
      if (serverId === undefined || current.routes.get(serverId) !== watcher) return
      current.routes.delete(serverId)
      send(current, { cancelRequest: { watchId: toInt64(serverId) } })
    }

    const createRequest = (watcher: Watcher): WatchRequest => {
      const spec = watcher.spec
      const start = watcher.resume.next ?? spec.startRevision
      const filters: Array<"NOPUT" | "NODELETE"> = []
      // Stryker disable next-line StringLiteral: equivalent because the encoder writes a name it does not know as 0, which is NOPUT
      if (spec.noPut) filters.push("NOPUT")
      if (spec.noDelete) filters.push("NODELETE")
      return {
        createRequest: {
          key: spec.key,
          // Stryker disable next-line ConditionalExpression: equivalent because the encoder skips a field that is undefined
          ...(spec.rangeEnd === undefined ? {} : { rangeEnd: spec.rangeEnd }),
          // Stryker disable next-line ConditionalExpression: equivalent because the encoder skips a field that is undefined
          ...(start === undefined ? {} : { startRevision: toInt64(start) }),
          filters,
          prevKv: spec.prevKv,
          // always: progress notifications keep the resume revision of a quiet watcher current
          progressNotify: true,
          fragment: spec.fragment,
          watchId: toInt64(watcher.streamId)
        }
      }
    }

    /**
     * Sends a watcher's create on the session, or queues it while another is in flight on a
     * stream not known to honour IDs (see the module's header).
     */
    const sendCreate = (current: Session, watcher: Watcher): void => {
      if (!current.honoursIds && current.creating.length > 0) {
        current.waiting.push(watcher)
        return
      }
      current.creating.push(watcher)
      send(current, createRequest(watcher))
    }

    /** Sends the creates that waited, all or the next one (skipping watchers ended meanwhile). */
    const sendWaiting = (current: Session): void => {
      while (current.waiting.length > 0 && (current.honoursIds || current.creating.length === 0)) {
        const watcher = current.waiting.shift()!
        if (watcher.state === "pending") sendCreate(current, watcher)
      }
    }

    /**
     * The create a created answer belongs to: the one that asked for the answer's ID, or else
     * the oldest in flight (on a server not known to honour IDs, the only one; for a failure,
     * answered with ID -1, which no create asks for, the oldest).
     */
    const answeredCreate = (current: Session, response: WatchResponseHead): Watcher | undefined => {
      const index = current.creating.findIndex((watcher) => watcher.streamId === response.watchId)
      return index !== -1 ? current.creating.splice(index, 1)[0] : current.creating.shift()
    }

    const enqueueCreate = (watcher: Watcher): void => {
      watcher.state = "pending"
      if (session !== undefined) sendCreate(session, watcher)
    }

    /** Forgets a watcher; the stream goes once no watcher is left. */
    const forget = (watcher: Watcher): void => {
      watcher.state = "closed"
      if (metered) {
        Metrics.watcherOpened(-1)
        offeredAt.delete(watcher)
      }
      watchers.delete(watcher)
      idsInUse.delete(watcher.id)
      idsInUse.delete(watcher.streamId)
      if (session !== undefined && watchers.size === 0) session.wakeRunner()
    }

    /** Tells the subscriber how the create ended; only the first outcome counts. */
    const settleCreated = (watcher: Watcher, exit: Exit.Exit<bigint, EtcdError.EtcdError>): void => {
      if (watcher.created !== undefined) return
      watcher.created = exit
      const resume = watcher.onCreated
      watcher.onCreated = undefined
      if (resume !== undefined) resume(exit)
    }

    /** Ends a watcher from the server's side (or the client's close) with an error. */
    const end = (watcher: Watcher, error: EtcdError.EtcdError): void => {
      if (watcher.state === "closed") return
      if (session !== undefined && watcher.serverId !== undefined) {
        if (session.routes.get(watcher.serverId) === watcher) session.routes.delete(watcher.serverId)
      }
      watcher.serverId = undefined
      forget(watcher)
      settleCreated(watcher, Exit.fail(error))
      watcher.backlog.end(Option.some(error))
    }

    /** Cancels a watcher whose consumer has no room; it is created again once there is. */
    const suspend = (current: Session, watcher: Watcher): void => {
      watcher.state = "suspended"
      if (metered) Metrics.watchSlowConsumer()
      watcher.resume = WatchResume.restart(watcher.resume)
      cancelOnServer(current, watcher)
    }

    /** Creates a suspended watcher again, under a new ID: the old one may still have answers pending on the server. */
    const resume = (watcher: Watcher): void => {
      if (watcher.streamId !== watcher.id) idsInUse.delete(watcher.streamId)
      watcher.streamId = allocateId()
      idsInUse.set(watcher.streamId, watcher)
      enqueueCreate(watcher)
    }

    const cancelReasonError = (reason: string): EtcdError.EtcdError =>
      reason.includes("permission denied")
        ? new EtcdError.EtcdPermissionDenied({ method: methods.watch.watch.path })
        : reason.includes("invalid auth token") || reason.includes("auth store is old")
        ? new EtcdError.InvalidAuthToken({ method: methods.watch.watch.path })
        : new EtcdError.WatchCanceled({ reason })

    /**
     * Hands a batch to the watcher's consumer, and suspends the watcher once its buffer is
     * past its bound: the batch that crossed it is kept, so nothing received is dropped
     * and decoded again later, and a buffer holds at most its bound plus one response.
     */
    const deliver = (current: Session, watcher: Watcher, batch: WatchBatch): void => {
      if (metered && !offeredAt.has(watcher)) offeredAt.set(watcher, performance.now())
      watcher.backlog.offer(batch)
      if (watcher.backlog.bytes > watcher.spec.bufferBytes) suspend(current, watcher)
    }

    const onCreated = (current: Session, response: WatchResponseHead): EtcdError.EtcdError | undefined => {
      const watcher = answeredCreate(current, response)
      if (watcher === undefined) return undefined
      const broken = settleCreate(current, watcher, response)
      // (on a stream that broke, nothing is read any more: every watcher still pending is
      // created again on the next one)
      sendWaiting(current)
      return broken
    }

    const settleCreate = (
      current: Session,
      watcher: Watcher,
      response: WatchResponseHead
    ): EtcdError.EtcdError | undefined => {
      if (response.canceled) {
        const error = cancelReasonError(response.cancelReason)
        // a token that expired or predates an auth change: take a new one and re-create
        // everything on a new stream
        if (error._tag === "InvalidAuthToken") return error
        // a refusal may come from the stream's token, not the user's rights: once more
        if (error._tag === "EtcdPermissionDenied" && options.auth && !watcher.deniedOnce) {
          watcher.deniedOnce = true
          // Stryker disable next-line ObjectLiteral: equivalent because this error only makes the loop take a new token, and is shown nowhere
          return new EtcdError.InvalidAuthToken({ method: methods.watch.watch.path })
        }
        end(watcher, error)
        return undefined
      }
      current.healthy = true
      const serverId = response.watchId
      // a server that renumbers would have answered with the count of creates it accepted
      if (serverId === watcher.streamId && serverId !== BigInt(current.accepted)) current.honoursIds = true
      current.accepted++
      if (watcher.state !== "pending") {
        // ended by its consumer while the create was in flight
        send(current, { cancelRequest: { watchId: toInt64(serverId) } })
      } else {
        watcher.state = "live"
        watcher.deniedOnce = false
        watcher.serverId = serverId
        current.routes.set(serverId, watcher)
        const revision = response.revision
        watcher.resume = WatchResume.created(watcher.resume, revision)
        settleCreated(watcher, Exit.succeed(revision))
      }
      return undefined
    }

    /** Sends a progress request for the callers waiting, unless one is in flight (its answer sends the next). */
    const sendProgress = (current: Session): void => {
      if (current.progressInFlight !== undefined || progressWaiting.length === 0) return
      current.progressInFlight = progressWaiting
      current.progressSentAt = millisNow()
      progressWaiting = []
      send(current, { progressRequest: {} })
    }

    /** Whether some caller waits among `waiters` (the liveness check's own request is no caller). */
    const hasCallers = (waiters: ReadonlyArray<ProgressWaiter> | undefined): boolean =>
      waiters !== undefined && waiters.some((waiter) => waiter !== probeWaiter)

    /** Whether the hub can let its stream go: no watcher, no progress request of a caller. */
    const isIdle = (): boolean =>
      // Stryker disable next-line OptionalChaining: equivalent because it is only asked while a stream is open
      watchers.size === 0 && !hasCallers(progressWaiting) && !hasCallers(session?.progressInFlight)

    /**
     * Asks the stream for progress for the liveness check, unless a request is in flight
     * (while a stream is open, a caller's request waits only for the one in flight).
     */
    const probe = (current: Session): void => {
      if (current.progressInFlight !== undefined) return
      progressWaiting.push(probeWaiter)
      sendProgress(current)
    }

    /** One tick of the liveness check (see progressProbe.ts). */
    const checkLiveness = (current: Session, now: number): void => {
      if (current.heard !== current.heardAtTick) {
        current.heardAtTick = current.heard
        current.lastHeard = now
      }
      const step = ProgressProbe.step(
        { lastHeard: current.lastHeard, progressSentAt: current.progressSentAt, answersProgress },
        now,
        probeSettings
      )
      if (step === "probe") probe(current)
      else if (step === "stalled") {
        current.break(
          new EtcdError.EtcdUnavailable({
            method: watchPath,
            // (the check runs only while a stream is open)
            endpoints: [current.duplex!.endpoint.url],
            reason: `the member answered nothing for ${probeSettings.answerMillis} ms after a progress request`
          })
        )
      }
    }

    /** The answer to the progress request in flight: its callers get its revision. */
    const onProgress = (current: Session, revision: bigint): void => {
      const answered = current.progressInFlight
      current.progressInFlight = undefined
      current.progressSentAt = undefined
      answersProgress = true
      if (answered !== undefined) { for (const waiter of answered) waiter(Exit.succeed(revision)) }
      // (the callers answered let the stream go, if it is idle now, as their waits end: `withdraw`)
      sendProgress(current)
    }

    /** Handles one response; returns an error only to ask for a new stream. */
    const handle = (current: Session, response: WatchResponseHead): EtcdError.EtcdError | undefined => {
      if (response.created) return onCreated(current, response)
      // the answer to a progress request, for no watcher in particular (see the module's header)
      if (response.watchId === -1n) {
        if (!response.canceled && response.compactRevision === 0n) onProgress(current, response.revision)
        return undefined
      }
      const watcher = current.routes.get(response.watchId)
      // answers for watchers already gone or suspended (our own cancels included)
      if (watcher === undefined) return undefined
      const compactRevision = response.compactRevision
      if (compactRevision > 0n) {
        // Stryker disable next-line all: metrics only, what the watchers get does not depend on it (Metrics.test checks it)
        if (metered) Metrics.watchCompacted()
        end(
          watcher,
          new EtcdError.Compacted({
            method: methods.watch.watch.path,
            compactRevision,
            requestedRevision: watcher.resume.next ?? watcher.spec.startRevision
          })
        )
        return undefined
      }
      if (response.canceled) {
        end(watcher, cancelReasonError(response.cancelReason))
        return undefined
      }
      const step = WatchResume.onResponse(watcher.resume, response, watcher.spec.progressNotify)
      // Stryker disable next-line all: metrics only, what the watchers get does not depend on it (Metrics.test checks it)
      if (metered) newestRevision = measureResponse(response, step.batch, newestRevision)
      watcher.resume = step.resume
      if (step.batch !== undefined) deliver(current, watcher, step.batch)
      return undefined
    }

    /**
     * Handles one message of the stream, as its raw bytes (a view of what was read). A copy
     * is read: the events wait in a watcher's buffer as these bytes, and the message is a
     * view of the chunk read, which holds other watchers' answers too.
     */
    const onMessage = (current: Session, message: Buffer): void => {
      current.heard++
      if (current.broken !== undefined) return
      const broken = handle(current, readWatchResponse(Buffer.from(message)))
      if (broken !== undefined) current.break(broken)
    }

    /**
     * What neither the server nor a new token can mend: every watcher ends with it. (The
     * keepalive hub has none: its leases end by their deadlines.)
     */
    const isFatal = (error: EtcdError.EtcdError): boolean =>
      error._tag === "EtcdAuthFailed" || error._tag === "EtcdPermissionDenied" || error._tag === "EtcdTlsError" ||
      error._tag === "ClientClosed"

    const endAll = (error: EtcdError.EtcdError): void => {
      for (const watcher of [...watchers]) end(watcher, error)
      const waiting = progressWaiting.concat(session?.progressInFlight ?? [])
      progressWaiting = []
      if (session !== undefined) session.progressInFlight = undefined
      for (const waiter of waiting) waiter(Exit.fail(error))
    }

    /** The liveness check of the stream open now, every tick while the runner runs. */
    const liveness: Effect.Effect<never> = Effect.forever(
      Effect.zipRight(
        Effect.sleep(Duration.millis(ProgressProbe.tickMillis(probeSettings))),
        Effect.sync(() => {
          const current = session
          if (current !== undefined && current.broken === undefined) {
            checkLiveness(current, millisNow())
          }
        })
      )
    )

    // the runner is let go as soon as its loop ends, before the liveness check is interrupted:
    // a subscriber that comes meanwhile starts a new one rather than relying on one that ends
    const run: Effect.Effect<void> = Effect.raceFirst(
      Effect.zipRight(
        runStream<Session>(transport, {
          path: watchPath,
          // the PINGs of grpc-js's channels: a watch stream may only listen for a long time
          openOptions: { requireLeader: options.requireLeader ?? true, keepAlive: true },
          makeSession: () => new Session(),
          onMessage,
          wanted: () => watchers.size > 0 || hasCallers(progressWaiting),
          idle: isIdle,
          opened: (current) => {
            session = current
            current.lastHeard = millisNow()
            for (const watcher of watchers) {
              watcher.resume = WatchResume.restart(watcher.resume)
              watcher.serverId = undefined
              // Stryker disable next-line all: metrics only, what the watchers get does not depend on it (Metrics.test checks it)
              if (metered && watcher.created !== undefined && watcher.state !== "suspended") Metrics.watchResumed()
              // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: equivalent because the loop's end (below) already turned every live watcher pending; each of the two alone suffices
              if (watcher.state === "live") watcher.state = "pending"
              if (watcher.state === "pending") sendCreate(current, watcher)
            }
            sendProgress(current)
            // at once: whether the servers answer is then known before the stream is needed
            probe(current)
          },
          closed: (current) => {
            current.outgoing.length = 0
            session = undefined
            // a request in flight on a stream that broke is sent again on the next one (the
            // liveness check's own waiter may go with it: it does nothing when answered, and
            // the next stream asks once as it opens either way)
            if (current.progressInFlight !== undefined) {
              progressWaiting = current.progressInFlight.concat(progressWaiting)
              current.progressInFlight = undefined
            }
            // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: equivalent because the next stream's loop (above) turns live watchers pending before anything reads the state; each of the two alone suffices
            for (const watcher of watchers) if (watcher.state === "live") watcher.state = "pending"
          },
          backoff,
          isFatal,
          giveUp: endAll
        }),
        Effect.sync(() => {
          runner = undefined
        })
      ),
      liveness
    )

    const ensureRunner = Effect.suspend(() => {
      if (runner !== undefined || closed) return Effect.void
      return Effect.map(Effect.forkIn(run, hubScope), (fiber) => {
        runner = fiber
      })
    })

    const clientClosed = () => new EtcdError.ClientClosed({ method: methods.watch.watch.path })

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        endAll(clientClosed())
      })
    )

    /** Why a watcher cannot be registered now, if it cannot. */
    const registrationProblem = (spec: WatchSpec): EtcdError.EtcdError | undefined =>
      closed
        ? clientClosed()
        : spec.watchId !== undefined && idsInUse.has(spec.watchId)
        ? new EtcdError.EtcdInvalidArgument({ reason: `watch ID ${spec.watchId} is in use` })
        : undefined

    /** Registers a watcher and sends its create (see `registrationProblem` first). */
    const register = (spec: WatchSpec): Watcher => {
      const id = spec.watchId ?? allocateId()
      const watcher: Watcher = {
        id,
        streamId: id,
        serverId: undefined,
        spec,
        backlog: new Backlog(splitBatch),
        state: "pending",
        created: undefined,
        onCreated: undefined,
        resume: WatchResume.initial(spec.startRevision),
        deniedOnce: false
      }
      watchers.add(watcher)
      if (metered) Metrics.watcherOpened(1)
      idsInUse.set(id, watcher)
      enqueueCreate(watcher)
      return watcher
    }

    /** The consumer is done with a watcher: cancel it on the server. */
    const release = (watcher: Watcher): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (watcher.state === "live" && session !== undefined) cancelOnServer(session, watcher)
        if (watcher.state !== "closed") forget(watcher)
        watcher.backlog.shutdown()
        // released before its create was answered (a scope closed already): whoever still
        // waits for that answer is told it will not come, rather than waiting forever
        settleCreated(watcher, Exit.interrupt(FiberId.none))
        return Effect.void
      })

    /**
     * What a consumer takes at a time: up to `takeBytes` (at least one batch), so that it
     * decodes and works through a little at a time while the rest stays encoded, counted
     * against the buffer. A suspended watcher is created again once half its buffer is free.
     */
    const take = (watcher: Watcher, parts: boolean): TakeBatches =>
      watcher.backlog.take(takeBytes, parts, () => {
        if (watcher.state === "suspended" && watcher.backlog.bytes <= watcher.spec.bufferBytes / 2) resume(watcher)
      })

    const subscriptionOf = (watcher: Watcher, createdRevision: bigint): Subscription => ({
      watchId: watcher.id,
      createdRevision,
      take: metered ? (parts) => measureTake(watcher, take(watcher, parts)) : (parts) => take(watcher, parts)
    })

    /** A take's lag behind the newest revision heard, and how long its oldest batch waited (metrics only). */
    const measureTake = (watcher: Watcher, taking: TakeBatches): TakeBatches =>
      Effect.tap(taking, (batches) => {
        const now = performance.now()
        const last = batches.length === 0 ? undefined : Chunk.unsafeLast(batches)
        const lag = last === undefined ? 0 : Number(newestRevision - last.revision)
        Metrics.watchDelivered(0, lag, now - (offeredAt.get(watcher) ?? now))
        if (watcher.backlog.bytes === 0) offeredAt.delete(watcher)
        else offeredAt.set(watcher, now)
      })

    /** Waits for the server's answer to a watcher's create (already there, or told by `settleCreated`). */
    const awaitCreated = (watcher: Watcher): Effect.Effect<Subscription, EtcdError.EtcdError> =>
      Effect.async<Subscription, EtcdError.EtcdError>((resume) => {
        const settle = (exit: Exit.Exit<bigint, EtcdError.EtcdError>) =>
          resume(Exit.isSuccess(exit) ? Exit.succeed(subscriptionOf(watcher, exit.value)) : Exit.failCause(exit.cause))
        if (watcher.created !== undefined) settle(watcher.created)
        else watcher.onCreated = settle
      })

    /**
     * Registers the watcher and hands its release to the caller as one uninterruptible step
     * (the release captures nothing of the caller's fiber), then waits for the server. The
     * second step reads the watcher from a variable the first one set, rather than being
     * a `flatMap` over the first one's result: opened that way inside thousands of Stream
     * runs, each consumer's teardown later promoted about 13 KB more into the old generation
     * (130 MB for 10 000 watchers; see the bench README, "Where the `Watch.watch` peak comes from").
     */
    const open = (
      spec: WatchSpec,
      hold: (release: Effect.Effect<void>) => Effect.Effect<void>
    ): Effect.Effect<Subscription, EtcdError.EtcdError> =>
      Effect.suspend(() => {
        let watcher: Watcher | undefined
        return Effect.zipRight(
          Effect.uninterruptible(Effect.suspend(() => {
            const problem = registrationProblem(spec)
            if (problem !== undefined) return Effect.fail(problem)
            watcher = register(spec)
            return hold(release(watcher))
          })),
          // the runner is forked outside the uninterruptible step, so that it stays interruptible
          Effect.suspend(() =>
            runner === undefined ? Effect.zipRight(ensureRunner, awaitCreated(watcher!)) : awaitCreated(watcher!)
          )
        )
      })

    /** See `WatchHub.requestProgress`. */
    const requestProgress = (timeout: Duration.Duration): Effect.Effect<bigint, EtcdError.EtcdError> =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(clientClosed())
        const answer = Deferred.unsafeMake<bigint, EtcdError.EtcdError>(FiberId.none)
        const waiter: ProgressWaiter = (exit) => Deferred.unsafeDone(answer, exit)
        progressWaiting.push(waiter)
        if (session !== undefined) sendProgress(session)
        const withdraw = Effect.sync(() => {
          progressWaiting = progressWaiting.filter((other) => other !== waiter)
          const current = session
          if (current?.progressInFlight !== undefined) {
            current.progressInFlight = current.progressInFlight.filter((other) => other !== waiter)
          }
          if (current !== undefined && isIdle()) current.wakeRunner()
        })
        return Effect.zipRight(runner === undefined ? ensureRunner : Effect.void, Deferred.await(answer)).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new EtcdError.EtcdTimeout({ method: watchPath, timeout, endpoint: session?.duplex?.endpoint.url })
          }),
          Effect.ensuring(withdraw)
        )
      })

    return { open, requestProgress: (options) => requestProgress(options.timeout) }
  })

/**
 * The watch streams of one client: the watchers that require a leader (by default, or as
 * `requireLeader` says) share one stream, those that do not another, opened only once one
 * asks for it; their watch IDs are one set. A progress request goes on the stream its
 * `requireLeader` names.
 */
export const makeShared = (transport: Transport, options: {
  readonly auth: boolean
  /** The default of watchers and progress requests that do not say. */
  readonly requireLeader: boolean
}): Effect.Effect<WatchHub, never, Scope.Scope> =>
  Effect.gen(function*() {
    const ids: WatchIds = { inUse: new Map(), last: 0n }
    const withLeader = yield* make(transport, { auth: options.auth, requireLeader: true, ids })
    const withoutLeader = yield* make(transport, { auth: options.auth, requireLeader: false, ids })
    const hubOf = (requireLeader: boolean | undefined): WatchHub =>
      requireLeader ?? options.requireLeader ? withLeader : withoutLeader
    return {
      open: (spec, hold) => hubOf(spec.requireLeader).open(spec, hold),
      requestProgress: (request) => hubOf(request.requireLeader).requestProgress(request)
    }
  })

/** Counts a response's events for its watcher; the newest revision heard (metrics only). */
const measureResponse = (
  response: WatchResponseHead,
  batch: WatchBatch | undefined,
  newest: bigint
): bigint => {
  if (batch !== undefined && !batch.progress) {
    Metrics.watchDelivered(batch instanceof WatchResume.EncodedBatch ? response.events.count : batch.events.length)
  }
  return response.revision > newest ? response.revision : newest
}

/** Splits a batch still encoded at a revision boundary (see `Subscription.take`, with `parts`). */
const splitBatch = (batch: WatchBatch, maxBytes: number): readonly [WatchBatch, WatchBatch] | undefined =>
  batch instanceof WatchResume.EncodedBatch ? batch.split(maxBytes) : undefined

/**
 * The wait before opening a stream again: 100 ms after the first failure, doubling up to
 * 2 s, and jittered (half to all of it) so that the clients of a member that went away do
 * not all come back to the next one at once. (The keepalive hub's waits are shorter, and
 * not jittered: see its `backoff`.)
 */
const backoff = (failures: number): Duration.Duration =>
  Duration.millis(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2))
