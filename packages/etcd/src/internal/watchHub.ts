/**
 * All watchers of a client share one gRPC Watch stream, owned by one runner fiber.
 *
 * - Creates are sent one at a time: the server answers a failed create with watch ID -1,
 *   so only an answer to the single create in flight can be attributed.
 * - Each watcher remembers the next revision it has to deliver. When the stream breaks
 *   (member killed, connection reset, graceful end) the runner opens a new one and
 *   re-creates every watcher from that revision, dropping anything older: no event is
 *   lost or delivered twice, and order is kept.
 * - Buffers are bounded in bytes of keys and values. When more than its `bufferBytes`
 *   wait for a watcher's consumer, the runner waits; responses then pile up in its
 *   inbound queue until that holds `inboundBytes`, the gRPC stream is paused, and HTTP/2
 *   flow control stops the server. A single response always goes through, however large.
 * - Compaction, a server-side cancel, or a create the server refuses ends that watcher
 *   with a tagged error and leaves the others alone.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as EtcdError from "../EtcdError.js"
import { fromInt64, toInt64 } from "./codec.js"
import type { WatchRequest } from "./proto/generated/etcdserverpb/WatchRequest.js"
import type { WatchResponse__Output } from "./proto/generated/etcdserverpb/WatchResponse.js"
import type { Event__Output } from "./proto/generated/mvccpb/Event.js"
import { methods } from "./proto/loader.js"
import type { Duplex, Transport } from "./transport.js"

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
  /** How many bytes of keys and values may wait for the consumer before the stream is paused. */
  readonly bufferBytes: number
}

/** One response for one watcher: its events (possibly none, for a progress notification). */
export interface WatchBatch {
  /** The store's revision when the server sent this. */
  readonly revision: bigint
  readonly events: ReadonlyArray<Event__Output>
  /** A progress notification: nothing happened in the watched range up to `revision`. */
  readonly progress: boolean
  /** The bytes of keys and values in `events`, counted against the buffer. */
  readonly bytes: number
}

/** A watcher created on the server; its batches end with the watcher. */
export interface Subscription {
  readonly watchId: bigint
  /** The revision the server reported when it created the watcher. */
  readonly createdRevision: bigint
  readonly batches: Stream.Stream<WatchBatch, EtcdError.EtcdError>
}

/** The shared Watch stream of one client. */
export interface WatchHub {
  /** Creates a watcher; it is canceled on the server when the scope closes. */
  readonly subscribe: (spec: WatchSpec) => Effect.Effect<Subscription, EtcdError.EtcdError, Scope.Scope>
}

interface Watcher {
  readonly id: bigint
  readonly key: string
  readonly spec: WatchSpec
  readonly mailbox: Mailbox.Mailbox<WatchBatch, EtcdError.EtcdError>
  /** Open while the consumer has room: the runner waits on it before delivering. */
  readonly room: Effect.Latch
  /** Bytes delivered to the mailbox and not taken by the consumer yet. */
  buffered: number
  readonly created: Deferred.Deferred<bigint, EtcdError.EtcdError>
  /** The next revision to deliver; unknown until created when no start revision was given. */
  next: bigint | undefined
  /** Events of a fragmented response not yet complete. */
  fragments: Array<Event__Output> | undefined
}

type Inbound =
  | { readonly _tag: "Response"; readonly response: WatchResponse__Output; readonly bytes: number }
  | { readonly _tag: "Error"; readonly error: unknown }
  | { readonly _tag: "End" }
  | { readonly _tag: "Idle" }

interface Session {
  readonly duplex: Duplex<WatchRequest, WatchResponse__Output>
  readonly inbound: Queue.Queue<Inbound>
  /** Watchers whose create was not acknowledged yet, the one in flight first. */
  readonly creating: Array<Watcher>
  inFlight: boolean
  paused: boolean
  /** Bytes of the responses received and not delivered yet. */
  inboundBytes: number
  /** Whether the server created a watcher on this stream: the backoff starts over then. */
  healthy: boolean
}

/** The stream is paused when this many responses, or `inboundBytes`, wait for the runner. */
const pauseAt = 64
const inboundBytes = 256 * 1024
const noEvents: ReadonlyArray<Event__Output> = []

const idleMarker: Inbound = { _tag: "Idle" }

/** Starts the hub; its stream is opened when the first watcher arrives and closed after the last. */
export const make = (transport: Transport): Effect.Effect<WatchHub, never, Scope.Scope> =>
  Effect.gen(function*() {
    const hubScope = yield* Effect.scope
    const watchers = new Map<string, Watcher>()
    let lastId = 0n
    let session: Session | undefined
    let runner: Fiber.RuntimeFiber<void> | undefined
    /** Set when the client closes: a subscribe then fails at once. */
    let closed = false

    const allocateId = (): bigint => {
      do lastId++
      while (watchers.has(lastId.toString()))
      return lastId
    }

    const send = (current: Session, request: WatchRequest): void => {
      current.duplex.call.write(request)
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
          progressNotify: spec.progressNotify,
          fragment: spec.fragment,
          watchId: toInt64(watcher.id)
        }
      }
    }

    /** Sends the next create when none is in flight. */
    const pumpCreates = (current: Session): void => {
      while (!current.inFlight && current.creating.length > 0) {
        const watcher = current.creating[0]
        if (!watchers.has(watcher.key)) {
          current.creating.shift()
          continue
        }
        current.inFlight = true
        send(current, createRequest(watcher))
      }
    }

    const remove = (watcher: Watcher): void => {
      if (watchers.get(watcher.key) === watcher) watchers.delete(watcher.key)
    }

    const end = (watcher: Watcher, error: EtcdError.EtcdError): Effect.Effect<void> =>
      Effect.suspend(() => {
        remove(watcher)
        return Effect.zipRight(Deferred.fail(watcher.created, error), watcher.mailbox.fail(error))
      })

    const cancelReasonError = (reason: string): EtcdError.EtcdError =>
      reason.includes("permission denied")
        ? new EtcdError.PermissionDenied({ method: methods.watch.watch.path })
        : reason.includes("invalid auth token")
        ? new EtcdError.InvalidAuthToken({ method: methods.watch.watch.path })
        : new EtcdError.WatchCanceled({ reason })

    /** Handles one response (`bytes` of keys and values); fails only to ask for a new stream. */
    const handle = (
      current: Session,
      response: WatchResponse__Output,
      bytes: number
    ): Effect.Effect<void, EtcdError.InvalidAuthToken> =>
      Effect.suspend(() => {
        const revision = fromInt64(response.header?.revision)
        if (response.created) {
          const watcher = current.creating.shift()
          current.inFlight = false
          current.healthy = true
          pumpCreates(current)
          if (watcher === undefined) return Effect.void
          if (response.canceled) {
            const error = cancelReasonError(response.cancelReason)
            // a token that expired between authentication and the create: take a new
            // one and re-create everything on a new stream
            if (error._tag === "InvalidAuthToken") return Effect.fail(error)
            return end(watcher, error)
          }
          if (!watchers.has(watcher.key)) {
            // canceled by its consumer while the create was in flight
            send(current, { cancelRequest: { watchId: toInt64(watcher.id) } })
            return Effect.void
          }
          // The server read its revision before registering the watcher and started it
          // at the next one, so header.revision + 1 is the first revision it can send.
          if (watcher.next === undefined) watcher.next = revision + 1n
          return Deferred.succeed(watcher.created, revision)
        }
        const watchId = response.watchId
        const watcher = watchers.get(String(watchId))
        if (watcher === undefined) {
          // answers for watchers already gone (our own cancels included), or the
          // broadcast answer to a progress request, which may not be trusted to move
          // any watcher's resume revision
          return Effect.void
        }
        const compactRevision = fromInt64(response.compactRevision)
        if (compactRevision > 0n) {
          return end(
            watcher,
            new EtcdError.Compacted({
              method: methods.watch.watch.path,
              compactRevision,
              requestedRevision: watcher.next ?? watcher.spec.startRevision
            })
          )
        }
        if (response.canceled) return end(watcher, cancelReasonError(response.cancelReason))
        let events: ReadonlyArray<Event__Output> = response.events
        if (response.fragment || watcher.fragments !== undefined) {
          watcher.fragments = (watcher.fragments ?? []).concat(response.events)
          if (response.fragment) return Effect.void
          events = watcher.fragments
          watcher.fragments = undefined
        }
        if (events.length === 0) {
          // a progress notification: the server only sends them to watchers that are
          // caught up, so nothing at or below `revision` is still to come
          if (watcher.next === undefined || revision + 1n > watcher.next) watcher.next = revision + 1n
          if (!watcher.spec.progressNotify) return Effect.void
          return deliver(watcher, { revision, events: noEvents, progress: true, bytes: 0 })
        }
        const next = watcher.next ?? 0n
        const fresh = fromInt64(events[0].kv?.modRevision) >= next
          ? events
          : events.filter((event) => fromInt64(event.kv?.modRevision) >= next)
        if (fresh.length === 0) return Effect.void
        watcher.next = fromInt64(fresh[fresh.length - 1].kv?.modRevision) + 1n
        const freshBytes = fresh === response.events ? bytes : eventBytes(fresh)
        return deliver(watcher, { revision, events: fresh, progress: false, bytes: freshBytes })
      })

    /** Hands a batch to the watcher's consumer, once it has room for more. */
    const deliver = (watcher: Watcher, batch: WatchBatch): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (watcher.buffered > 0 && watcher.buffered + batch.bytes > watcher.spec.bufferBytes) {
          watcher.room.unsafeClose()
          // the consumer opens it as it takes batches, the watcher's release when it ends
          return Effect.zipRight(watcher.room.await, deliver(watcher, batch))
        }
        watcher.buffered += batch.bytes
        return Effect.asVoid(watcher.mailbox.offer(batch))
      })

    const open = Effect.gen(function*() {
      const duplex = yield* transport.duplex(methods.watch.watch, { requireLeader: true })
      const inbound = yield* Queue.unbounded<Inbound>()
      const current: Session = {
        duplex,
        inbound,
        creating: [],
        inFlight: false,
        paused: false,
        inboundBytes: 0,
        healthy: false
      }
      const call = duplex.call
      call.on("data", (response: WatchResponse__Output) => {
        const bytes = eventBytes(response.events)
        current.inboundBytes += bytes
        inbound.unsafeOffer({ _tag: "Response", response, bytes })
        if (
          !current.paused &&
          (current.inboundBytes >= inboundBytes || Option.getOrElse(inbound.unsafeSize(), () => 0) >= pauseAt)
        ) {
          current.paused = true
          call.pause()
        }
      })
      call.on("error", (error) => inbound.unsafeOffer({ _tag: "Error", error }))
      call.on("end", () => inbound.unsafeOffer({ _tag: "End" }))
      return current
    })

    const close = (current: Session): Effect.Effect<void> =>
      Effect.sync(() => {
        const call = current.duplex.call
        call.removeAllListeners("data")
        call.removeAllListeners("end")
        call.removeAllListeners("error")
        call.on("error", () => {})
        call.cancel()
      })

    /** Reads the session until it breaks (returns the cause) or no watcher is left (returns undefined). */
    const pump = (current: Session): Effect.Effect<EtcdError.EtcdError | undefined> =>
      Effect.gen(function*() {
        while (true) {
          const items = yield* Queue.takeBetween(current.inbound, 1, pauseAt)
          for (const item of items) {
            switch (item._tag) {
              case "Response": {
                const handled = yield* Effect.either(handle(current, item.response, item.bytes))
                if (handled._tag === "Left") return handled.left
                current.inboundBytes -= item.bytes
                if (
                  current.paused && current.inboundBytes < inboundBytes / 4 &&
                  (yield* Queue.size(current.inbound)) < pauseAt / 4
                ) {
                  current.paused = false
                  current.duplex.call.resume()
                }
                break
              }
              case "Error":
                return transport.streamError(methods.watch.watch.path, current.duplex.endpoint, item.error)
              case "End":
                return new EtcdError.Unavailable({
                  method: methods.watch.watch.path,
                  endpoints: [current.duplex.endpoint.url],
                  reason: "the watch stream ended"
                })
              case "Idle":
                if (watchers.size === 0) return undefined
            }
          }
        }
      })

    const fatal = (error: EtcdError.EtcdError): boolean =>
      error._tag === "AuthFailed" || error._tag === "PermissionDenied" || error._tag === "TlsError" ||
      error._tag === "ClientClosed"

    const run: Effect.Effect<void> = Effect.gen(function*() {
      let failures = 0
      while (watchers.size > 0) {
        const opened = yield* Effect.either(open)
        if (opened._tag === "Left") {
          if (fatal(opened.left)) {
            yield* Effect.forEach([...watchers.values()], (watcher) => end(watcher, opened.left), { discard: true })
            break
          }
          failures++
          yield* Effect.sleep(backoff(failures))
          continue
        }
        const current = opened.right
        session = current
        for (const watcher of watchers.values()) {
          watcher.fragments = undefined
          current.creating.push(watcher)
        }
        pumpCreates(current)
        const broken = yield* pump(current).pipe(Effect.ensuring(close(current)))
        session = undefined
        if (broken === undefined) continue
        yield* Effect.logDebug("watch stream broke; resuming every watcher").pipe(
          Effect.annotateLogs({ endpoint: current.duplex.endpoint.url, reason: broken.message })
        )
        transport.reportFailure(current.duplex.endpoint)
        failures = current.healthy ? 1 : failures + 1
        yield* Effect.sleep(backoff(failures))
      }
      runner = undefined
    })

    const ensureRunner = Effect.suspend(() => {
      if (runner !== undefined) return Effect.void
      return Effect.map(Effect.forkIn(run, hubScope), (fiber) => {
        runner = fiber
      })
    })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.forEach([...watchers.values()], (watcher) => end(watcher, new EtcdError.ClientClosed({})), {
          discard: true
        })
      })
    )

    const subscribe = (spec: WatchSpec): Effect.Effect<Subscription, EtcdError.EtcdError, Scope.Scope> =>
      Effect.gen(function*() {
        if (closed) return yield* new EtcdError.ClientClosed({ method: methods.watch.watch.path })
        if (spec.watchId !== undefined && watchers.has(spec.watchId.toString())) {
          return yield* new EtcdError.InvalidArgument({ reason: `watch ID ${spec.watchId} is in use` })
        }
        const mailbox = yield* Mailbox.make<WatchBatch, EtcdError.EtcdError>()
        const room = yield* Effect.makeLatch(true)
        const created = yield* Deferred.make<bigint, EtcdError.EtcdError>()
        const watcher = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const id = spec.watchId ?? allocateId()
            const watcher: Watcher = {
              id,
              key: id.toString(),
              spec,
              mailbox,
              room,
              buffered: 0,
              created,
              next: spec.startRevision,
              fragments: undefined
            }
            watchers.set(watcher.key, watcher)
            if (session !== undefined) {
              session.creating.push(watcher)
              pumpCreates(session)
            }
            return watcher
          }),
          (watcher) =>
            Effect.suspend(() => {
              const wasLive = watchers.get(watcher.key) === watcher
              remove(watcher)
              const current = session
              if (wasLive && current !== undefined && !current.creating.includes(watcher)) {
                send(current, { cancelRequest: { watchId: toInt64(watcher.id) } })
              }
              if (current !== undefined && watchers.size === 0) current.inbound.unsafeOffer(idleMarker)
              // a runner waiting for this consumer goes on: what it delivers now is dropped
              room.unsafeOpen()
              return Effect.asVoid(mailbox.shutdown)
            })
        )
        yield* ensureRunner
        const createdRevision = yield* Deferred.await(watcher.created)
        const batches = Stream.mapChunks(Mailbox.toStream(mailbox), (chunk) => {
          for (const batch of chunk) watcher.buffered -= batch.bytes
          if (watcher.buffered <= watcher.spec.bufferBytes) room.unsafeOpen()
          return chunk
        })
        return { watchId: watcher.id, createdRevision, batches }
      })

    return { subscribe }
  })

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
