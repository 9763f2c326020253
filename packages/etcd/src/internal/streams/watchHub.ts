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
 *   event is lost or delivered twice, and order is kept.
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
 *   few map lookups and an append to a buffer, with no queue, no fiber to wake and no
 *   object per response in between. The runner fiber only opens streams, and waits for
 *   one to break or to be left without watchers.
 * - The stream is spoken over `node:http2` (`Transport.framedDuplex`), not grpc-js: the
 *   requests of one turn (the creates of the subscribers that the answers of one read
 *   resumed) go out in one write, and each answer is read from its bytes with nothing in
 *   between; grpc-js costs a write (and a syscall on both sides) and a chain of objects
 *   and promises per message.
 * - Compaction, a server-side cancel, or a create the server refuses ends that watcher
 *   with a tagged error and leaves the others alone. A create refused for permission is
 *   tried once more with a fresh auth token, as is everything after a rejected token.
 */
import type * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as EtcdError from "../../EtcdError.js"
import { fromInt64, toInt64 } from "../data/codec.js"
import type { FramedDuplex, Transport } from "../transport/transport.js"
import { frame } from "../wire/grpcFrames.js"
import type { WatchRequest } from "../wire/proto/generated/etcdserverpb/WatchRequest.js"
import type { Event__Output } from "../wire/proto/generated/mvccpb/Event.js"
import { methods } from "../wire/proto/loader.js"
import { type EncodedEvents, readWatchResponse, type WatchResponseHead } from "../wire/watchCodec.js"
import { Backlog } from "./backlog.js"

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
}

/** One response for one watcher: its events (possibly none, for a progress notification). */
export interface WatchBatch {
  /** The store's revision when the server sent this. */
  readonly revision: bigint
  /** The events; those of a batch from the server are decoded when this is read, each time. */
  readonly events: ReadonlyArray<Event__Output>
  /** A progress notification: nothing happened in the watched range up to `revision`. */
  readonly progress: boolean
  /** The bytes of keys and values in `events`, counted against the buffer. */
  readonly bytes: number
}

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
  /** Creates a watcher; it is canceled on the server when the scope closes. */
  readonly subscribe: (spec: WatchSpec) => Effect.Effect<Subscription, EtcdError.EtcdError, Scope.Scope>
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
  /** The next revision to deliver; unknown until created when no start revision was given. */
  next: bigint | undefined
  /** Events of a fragmented response not yet complete. */
  fragments: Array<Event__Output> | undefined
  /** Whether a create was refused for permission once: the next refusal is final. */
  deniedOnce: boolean
}

interface Session {
  /** Set once the stream is open (it may fail before: `broken` tells). */
  duplex: FramedDuplex | undefined
  /** Requests framed and not written yet: written together by `flush`, once per turn. */
  readonly outgoing: Array<Buffer>
  /** Whether a `flush` is queued. */
  flushQueued: boolean
  /** The watchers created on this stream, by the ID the server gave each. */
  readonly routes: Map<bigint, Watcher>
  /** Watchers whose create was sent and not answered yet, oldest first. */
  readonly creating: Array<Watcher>
  /** Watchers whose create waits for the one in flight to be answered (until `honoursIds`). */
  readonly waiting: Array<Watcher>
  /** Whether the server is known to answer creates with the IDs asked for: creates are pipelined then. */
  honoursIds: boolean
  /** How many creates the server accepted on this stream (what a renumbering server's next ID would be). */
  accepted: number
  /** Whether the server created a watcher on this stream: the backoff starts over then. */
  healthy: boolean
  /** Why the stream has to be replaced, once it has: nothing it receives is handled after that. */
  broken: EtcdError.EtcdError | undefined
  /** The runner, waiting for the stream to break or to be left without watchers. */
  wake: (() => void) | undefined
}

const noEvents: ReadonlyArray<Event__Output> = []
const watchPath = methods.watch.watch.path
const encodeRequest = methods.watch.watch.requestSerialize
/** How many bytes of keys and values a consumer takes from its buffer at a time. */
const takeBytes = 64 * 1024

/** Starts the hub; its stream is opened when the first watcher arrives and closed after the last. */
export const make = (transport: Transport, options: { readonly auth: boolean }): Effect.Effect<
  WatchHub,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const hubScope = yield* Effect.scope
    const watchers = new Set<Watcher>()
    /** Every ID a watcher holds (its first one and its stream ID), so none is given twice. */
    const idsInUse = new Map<bigint, Watcher>()
    let lastId = 0n
    let session: Session | undefined
    let runner: Fiber.RuntimeFiber<void> | undefined
    /** Set when the client closes: a subscribe then fails at once. */
    let closed = false

    const allocateId = (): bigint => {
      do lastId++
      while (idsInUse.has(lastId))
      return lastId
    }

    /** Writes the requests queued, in one write (one DATA frame or a few, not one each). */
    const flush = (current: Session): void => {
      current.flushQueued = false
      const outgoing = current.outgoing
      if (outgoing.length === 0) return
      const bytes = outgoing.length === 1 ? outgoing[0] : Buffer.concat(outgoing)
      outgoing.length = 0
      current.duplex?.call.write(bytes)
    }

    /**
     * Queues a request for the session's next `flush`, at the end of this turn: the creates
     * of many subscribers resumed together (by the answers of one read) go out in one write,
     * rather than a write and a syscall each on both sides.
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
      const start = watcher.next ?? spec.startRevision
      const filters: Array<"NOPUT" | "NODELETE"> = []
      if (spec.noPut) filters.push("NOPUT")
      if (spec.noDelete) filters.push("NODELETE")
      return {
        createRequest: {
          key: spec.key,
          ...(spec.rangeEnd === undefined ? {} : { rangeEnd: spec.rangeEnd }),
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
     * The create a created answer belongs to: the only one in flight, or on a server that
     * honours IDs the one that asked for the answer's ID, and for a failure (ID -1) the oldest.
     */
    const answeredCreate = (current: Session, response: WatchResponseHead): Watcher | undefined => {
      if (current.honoursIds && !response.canceled) {
        const index = current.creating.findIndex((watcher) => watcher.streamId === response.watchId)
        if (index >= 0) return current.creating.splice(index, 1)[0]
      }
      return current.creating.shift()
    }

    const enqueueCreate = (watcher: Watcher): void => {
      watcher.state = "pending"
      if (session !== undefined) sendCreate(session, watcher)
    }

    /** Wakes the runner waiting on a session, to see whether it broke or has no watcher left. */
    const wakeRunner = (current: Session): void => {
      const wake = current.wake
      current.wake = undefined
      if (wake !== undefined) wake()
    }

    /** Forgets a watcher; the stream goes once no watcher is left. */
    const forget = (watcher: Watcher): void => {
      watcher.state = "closed"
      watchers.delete(watcher)
      idsInUse.delete(watcher.id)
      idsInUse.delete(watcher.streamId)
      if (session !== undefined && watchers.size === 0) wakeRunner(session)
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
      watcher.fragments = undefined
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
        ? new EtcdError.PermissionDenied({ method: methods.watch.watch.path })
        : reason.includes("invalid auth token") || reason.includes("auth store is old")
        ? new EtcdError.InvalidAuthToken({ method: methods.watch.watch.path })
        : new EtcdError.WatchCanceled({ reason })

    /**
     * Hands a batch to the watcher's consumer, and suspends the watcher once its buffer is
     * past its bound: the batch that crossed it is kept, so nothing received is dropped
     * and decoded again later, and a buffer holds at most its bound plus one response.
     */
    const deliver = (current: Session, watcher: Watcher, batch: WatchBatch, next: bigint): void => {
      watcher.next = next
      watcher.backlog.offer(batch)
      if (watcher.backlog.bytes > watcher.spec.bufferBytes) suspend(current, watcher)
    }

    const onCreated = (current: Session, response: WatchResponseHead): EtcdError.EtcdError | undefined => {
      const watcher = answeredCreate(current, response)
      if (watcher === undefined) return undefined
      const broken = settleCreate(current, watcher, response)
      if (broken === undefined) sendWaiting(current)
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
        if (error._tag === "PermissionDenied" && options.auth && !watcher.deniedOnce) {
          watcher.deniedOnce = true
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
        // The server read its revision before registering the watcher and started it
        // at the next one, so header.revision + 1 is the first revision it can send.
        const revision = response.revision
        if (watcher.next === undefined) watcher.next = revision + 1n
        settleCreated(watcher, Exit.succeed(revision))
      }
      return undefined
    }

    /** Handles one response; returns an error only to ask for a new stream. */
    const handle = (current: Session, response: WatchResponseHead): EtcdError.EtcdError | undefined => {
      if (response.created) return onCreated(current, response)
      const watcher = current.routes.get(response.watchId)
      // answers for watchers already gone or suspended (our own cancels included), or the
      // broadcast answer to a progress request, which may not move any resume revision
      if (watcher === undefined) return undefined
      const compactRevision = response.compactRevision
      if (compactRevision > 0n) {
        end(
          watcher,
          new EtcdError.Compacted({
            method: methods.watch.watch.path,
            compactRevision,
            requestedRevision: watcher.next ?? watcher.spec.startRevision
          })
        )
        return undefined
      }
      if (response.canceled) {
        end(watcher, cancelReasonError(response.cancelReason))
        return undefined
      }
      const revision = response.revision
      /** Events decoded here, not by the consumer: the rare fragmented or partly old responses. */
      let events: ReadonlyArray<Event__Output> | undefined
      // Stryker disable next-line ConditionalExpression: equivalent because a response that is not a fragment, taken this way, gives the same events (decoded here instead of by the consumer)
      if (response.fragment || watcher.fragments !== undefined) {
        // Stryker disable next-line ArrayDeclaration: equivalent because the filter below drops anything that has no revision
        watcher.fragments = (watcher.fragments ?? []).concat(response.events.decode())
        if (response.fragment) return undefined
        events = watcher.fragments
        watcher.fragments = undefined
      }
      if ((events?.length ?? response.events.count) === 0) {
        // a progress notification: the server sends them in order with this watcher's
        // events and only once it is caught up, so nothing at or below `revision` is to come
        // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent because a routed watcher was created, which set `next` (and `>=` gives the same value when equal)
        const next = watcher.next === undefined || revision + 1n > watcher.next ? revision + 1n : watcher.next
        if (!watcher.spec.progressNotify) watcher.next = next
        else deliver(current, watcher, { revision, events: noEvents, progress: true, bytes: 0 }, next)
        return undefined
      }
      const next = watcher.next ?? 0n
      // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: equivalent because the path below delivers the same events in the same order (it decodes them here; this one leaves them encoded for the consumer)
      if (events === undefined && response.events.firstRevision >= next) {
        // the usual case: every event is new, and the consumer decodes them
        deliver(current, watcher, new EncodedBatch(revision, response.events), response.events.lastRevision + 1n)
        return undefined
      }
      // a replay after a reconnect may start with events this watcher has delivered
      // Stryker disable next-line OptionalChaining: equivalent because every event etcd sends has its kv
      const fresh = (events ?? response.events.decode()).filter((event) => fromInt64(event.kv?.modRevision) >= next)
      if (fresh.length === 0) return undefined
      deliver(
        current,
        watcher,
        { revision, events: fresh, progress: false, bytes: eventBytes(fresh) },
        // Stryker disable next-line OptionalChaining: equivalent because every event etcd sends has its kv
        fromInt64(fresh[fresh.length - 1].kv?.modRevision) + 1n
      )
      return undefined
    }

    /** Marks the stream to be replaced (the first reason counts) and wakes the runner. */
    const breakSession = (current: Session, error: EtcdError.EtcdError): void => {
      if (current.broken !== undefined) return
      current.broken = error
      wakeRunner(current)
    }

    /** Handles one message of the stream, as its raw bytes (a view of what was read). */
    const onMessage = (current: Session, message: Buffer): void => {
      if (current.broken !== undefined) return
      let broken: EtcdError.EtcdError | undefined
      try {
        // a copy: the events wait in a watcher's buffer as these bytes, and the message is a
        // view of the chunk read, which holds other watchers' answers too
        broken = handle(current, readWatchResponse(Buffer.from(message)))
      } catch (cause) {
        // never thrown into the stream: it is replaced, as for any failure of it
        broken = transport.streamError(watchPath, current.duplex?.endpoint ?? transport.current(), cause)
      }
      if (broken !== undefined) breakSession(current, broken)
    }

    /**
     * Opens the stream over `node:http2` (`Transport.framedDuplex`) rather than grpc-js: the
     * requests of a turn go out in one write, and each answer is read from its bytes by
     * watchCodec.ts with no object per message in between.
     */
    const open = Effect.suspend(() => {
      const current: Session = {
        duplex: undefined,
        outgoing: [],
        flushQueued: false,
        routes: new Map(),
        creating: [],
        waiting: [],
        honoursIds: false,
        accepted: 0,
        healthy: false,
        broken: undefined,
        wake: undefined
      }
      return Effect.as(
        Effect.tap(
          transport.framedDuplex(watchPath, {
            onMessage: (message) => onMessage(current, message),
            onEnd: (error) => breakSession(current, error)
          }, { requireLeader: true, keepAlive: true }),
          (duplex) => {
            current.duplex = duplex
          }
        ),
        current
      )
    })

    const close = (current: Session): Effect.Effect<void> =>
      Effect.sync(() => {
        current.outgoing.length = 0
        current.duplex?.call.cancel()
      })

    /** Whether the runner has to act on a session: it broke, or no watcher is left. */
    const sessionEnded = (current: Session): boolean => current.broken !== undefined || watchers.size === 0

    /**
     * Waits until the session breaks (returns the cause) or no watcher is left (returns
     * undefined). The check and the registration of the wake-up are one synchronous step.
     */
    const awaitEnd = (current: Session): Effect.Effect<EtcdError.EtcdError | undefined> =>
      Effect.flatMap(
        Effect.async<void>((resume) => {
          if (sessionEnded(current)) return resume(Effect.void)
          current.wake = () => resume(Effect.void)
          return Effect.sync(() => {
            current.wake = undefined
          })
        }),
        () => sessionEnded(current) ? Effect.succeed(current.broken) : awaitEnd(current)
      )

    const fatal = (error: EtcdError.EtcdError): boolean =>
      error._tag === "AuthFailed" || error._tag === "PermissionDenied" || error._tag === "TlsError" ||
      error._tag === "ClientClosed"

    const endAll = (error: EtcdError.EtcdError): void => {
      for (const watcher of [...watchers]) end(watcher, error)
    }

    const run: Effect.Effect<void> = Effect.gen(function*() {
      let failures = 0
      while (watchers.size > 0) {
        const opened = yield* Effect.either(open)
        if (opened._tag === "Left") {
          if (fatal(opened.left)) {
            endAll(opened.left)
            break
          }
          failures++
          yield* Effect.sleep(backoff(failures))
          continue
        }
        const current = opened.right
        const duplex = current.duplex!
        session = current
        for (const watcher of watchers) {
          watcher.fragments = undefined
          watcher.serverId = undefined
          // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: equivalent because the loop's end (below) already turned every live watcher pending; each of the two alone suffices
          if (watcher.state === "live") watcher.state = "pending"
          if (watcher.state === "pending") sendCreate(current, watcher)
        }
        const broken = yield* awaitEnd(current).pipe(Effect.ensuring(close(current)))
        session = undefined
        // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: equivalent because the next stream's loop (above) turns live watchers pending before anything reads the state; each of the two alone suffices
        for (const watcher of watchers) if (watcher.state === "live") watcher.state = "pending"
        if (broken === undefined) continue
        if (broken._tag === "InvalidAuthToken") {
          // the stream's token was refused: one new token, then a new stream at once
          const refreshed = yield* Effect.either(transport.refreshToken(duplex.token))
          if (refreshed._tag === "Right") continue
          if (fatal(refreshed.left)) {
            endAll(refreshed.left)
            break
          }
        }
        yield* Effect.logDebug("watch stream broke; resuming every watcher").pipe(
          Effect.annotateLogs({ endpoint: duplex.endpoint.url, reason: broken.message })
        )
        transport.reportFailure(duplex.endpoint)
        failures = current.healthy ? 1 : failures + 1
        yield* Effect.sleep(backoff(failures))
      }
      runner = undefined
    })

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
        ? new EtcdError.InvalidArgument({ reason: `watch ID ${spec.watchId} is in use` })
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
        next: spec.startRevision,
        fragments: undefined,
        deniedOnce: false
      }
      watchers.add(watcher)
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
      take: (parts) => take(watcher, parts)
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
     * Registers the watcher and its release in the caller's scope as one uninterruptible
     * step (the release captures nothing of the caller's fiber), then waits for the server.
     */
    const subscribe = (spec: WatchSpec): Effect.Effect<Subscription, EtcdError.EtcdError, Scope.Scope> =>
      Effect.flatMap(
        Effect.uninterruptible(
          Effect.scopeWith((scope) =>
            Effect.suspend(() => {
              const problem = registrationProblem(spec)
              if (problem !== undefined) return Effect.fail(problem)
              const watcher = register(spec)
              return Effect.as(Scope.addFinalizer(scope, release(watcher)), watcher)
            })
          )
        ),
        // the runner is forked outside the uninterruptible step, so that it stays interruptible
        (watcher) => runner === undefined ? Effect.zipRight(ensureRunner, awaitCreated(watcher)) : awaitCreated(watcher)
      )

    return { subscribe }
  })

/** A batch of events still encoded as received; reading `events` decodes them. */
class EncodedBatch implements WatchBatch {
  readonly progress = false
  readonly bytes: number
  readonly #events: EncodedEvents
  constructor(readonly revision: bigint, events: EncodedEvents) {
    this.bytes = events.bytes
    this.#events = events
  }
  get events(): ReadonlyArray<Event__Output> {
    return this.#events.decode()
  }
  /** Its first revisions, up to `maxBytes`, and the rest, both still encoded. */
  split(maxBytes: number): readonly [EncodedBatch, EncodedBatch] | undefined {
    const parts = this.#events.split(maxBytes)
    return parts && [new EncodedBatch(this.revision, parts[0]), new EncodedBatch(this.revision, parts[1])]
  }
}

/** Splits a batch still encoded at a revision boundary (see `Subscription.parts`). */
const splitBatch = (batch: WatchBatch, maxBytes: number): readonly [WatchBatch, WatchBatch] | undefined =>
  batch instanceof EncodedBatch ? batch.split(maxBytes) : undefined

/** The bytes of keys and values (previous ones included) in some events. */
const eventBytes = (events: ReadonlyArray<Event__Output>): number => {
  let bytes = 0
  for (const event of events) {
    bytes += (event.kv?.key.length ?? 0) + (event.kv?.value.length ?? 0)
    if (event.prevKv != null) bytes += event.prevKv.key.length + event.prevKv.value.length
  }
  return bytes
}

const backoff = (failures: number): Duration.Duration =>
  Duration.millis(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2))
