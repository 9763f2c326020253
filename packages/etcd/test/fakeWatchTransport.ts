/**
 * A fake transport for the watch hub's unit tests (WatchResume, WatchHubCreates): its streams
 * record the requests the hub writes and deliver the responses a test makes. The reconnect
 * backoff is an Effect sleep, moved with the TestClock.
 */
import { Chunk, Deferred, Duration, Effect, Exit, Fiber, FiberId, Option, Queue, TestClock } from "effect"
import * as EtcdError from "../src/EtcdError.js"
import type { Endpoint } from "../src/internal/base/endpoint.js"
import * as WatchHub from "../src/internal/streams/watchHub.js"
import type { FramedHandlers, Transport } from "../src/internal/transport/transport.js"
import { FrameReader } from "../src/internal/wire/grpcFrames.js"
import type { WatchRequest__Output } from "../src/internal/wire/proto/generated/etcdserverpb/WatchRequest.js"
import type { WatchResponse } from "../src/internal/wire/proto/generated/etcdserverpb/WatchResponse.js"
import { methods } from "../src/internal/wire/proto/loader.js"

export const watch = methods.watch.watch

export interface Stream {
  readonly handlers: FramedHandlers
  /** The requests the hub wrote, decoded, as they arrive (progress requests apart). */
  readonly requests: Queue.Queue<WatchRequest__Output>
  /** How many progress requests the hub wrote. */
  readonly progressRequests: { count: number }
  readonly closed: Deferred.Deferred<void>
}

export const endpoint: Endpoint = {
  url: "http://127.0.0.1:1",
  address: "127.0.0.1:1",
  host: "127.0.0.1",
  port: 1,
  secure: false
}

export const fakeTransportWith = (options: { readonly auth: boolean }) =>
  Effect.gen(function*() {
    const opened = yield* Queue.unbounded<Stream>()
    const reported: Array<string> = []
    const refreshed: Array<Option.Option<string>> = []
    const transport = {
      framedDuplex: (_path: string, handlers: FramedHandlers) =>
        Effect.sync(() => {
          const requests = Effect.runSync(Queue.unbounded<WatchRequest__Output>())
          const progressRequests = { count: 0 }
          const stream: Stream = { handlers, requests, progressRequests, closed: Deferred.unsafeMake(FiberId.none) }
          const reader = new FrameReader((message) => {
            const request = watch.requestDeserialize(Buffer.from(message)) as WatchRequest__Output
            // the hub's liveness check sends these on its own: counted, not queued with the rest
            if (request.progressRequest != null) progressRequests.count++
            else Queue.unsafeOffer(requests, request)
          })
          Queue.unsafeOffer(opened, stream)
          return {
            call: {
              write: (bytes: Buffer) => reader.push(bytes),
              cancel: () => Deferred.unsafeDone(stream.closed, Exit.void)
            },
            endpoint,
            token: Option.none()
          }
        }),
      streamError: (method: string, _endpoint: Endpoint, error: unknown) =>
        new EtcdError.EtcdUnavailable({ method, endpoints: [], reason: String(error) }),
      current: () => endpoint,
      requestTimeout: Duration.seconds(2),
      reportFailure: (endpoint: Endpoint) => {
        reported.push(endpoint.url)
      },
      refreshToken: (rejected: Option.Option<string>) =>
        Effect.sync(() => {
          refreshed.push(rejected)
        })
    } as unknown as Transport
    const hub = yield* WatchHub.make(transport, options)
    return { hub, opened, reported, refreshed }
  })
export const fakeTransport = fakeTransportWith({ auth: false })

export const spec = (overrides: Partial<WatchHub.WatchSpec> = {}): WatchHub.WatchSpec => ({
  key: Buffer.from("k"),
  rangeEnd: Buffer.from("l"),
  startRevision: undefined,
  prevKv: false,
  progressNotify: false,
  noPut: false,
  noDelete: false,
  fragment: false,
  watchId: undefined,
  bufferBytes: 1024 * 1024,
  ...overrides
})

export const send = (stream: Stream, response: WatchResponse) =>
  stream.handlers.onMessage(watch.responseSerialize(response as never))

export const put = (key: string, modRevision: number, value = "v") => ({
  type: "PUT" as const,
  kv: {
    key: Buffer.from(key),
    value: Buffer.from(value),
    createRevision: "2",
    modRevision: String(modRevision),
    version: "1"
  }
})

export const events = (stream: Stream, watchId: bigint, revision: number, ...mods: Array<number>) =>
  send(stream, {
    header: { revision: String(revision) },
    watchId: String(watchId),
    events: mods.map((m) => put(`k${m}`, m))
  })

/** The revisions of the events (or `p<revision>` for a progress notification) of the next take. */
export const take = (subscription: WatchHub.Subscription) =>
  Effect.map(
    subscription.take(false),
    (batches) =>
      Chunk.toReadonlyArray(batches).flatMap((batch): Array<number | string> =>
        batch.progress ? [`p${batch.revision}`] : batch.events.map((event) => Number(event.kv?.modRevision))
      )
  )

/** Subscribes, answers the create with the store's `revision` (and a stream ID), and returns the create request. */
export const subscribe = (
  hub: WatchHub.WatchHub,
  stream: Stream,
  options: { readonly spec?: WatchHub.WatchSpec; readonly revision: number; readonly streamId: number }
) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(WatchHub.subscribe(hub, options.spec ?? spec()))
    const request = yield* Queue.take(stream.requests)
    send(stream, { header: { revision: String(options.revision) }, watchId: String(options.streamId), created: true })
    return { subscription: yield* Fiber.join(fiber), request: request.createRequest! }
  })

/** Breaks the stream, lets the backoff pass, and returns the new stream. */
export const reconnect = (opened: Queue.Queue<Stream>, stream: Stream) =>
  Effect.gen(function*() {
    stream.handlers.onEnd(new EtcdError.EtcdUnavailable({ method: "m", endpoints: [], reason: "reset" }))
    yield* Deferred.await(stream.closed)
    yield* TestClock.adjust("5 seconds")
    return yield* Queue.take(opened)
  })

/** Lets the hub's requests of this turn go out (they are written together, in a microtask). */
export const flush = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
