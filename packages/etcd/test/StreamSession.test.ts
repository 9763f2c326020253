/**
 * The session loop both stream hubs run (internal/streams/streamSession.ts), on its own: a fake
 * transport whose opens succeed or fail as the test scripts them, and a policy that records what
 * the loop asks of it. What a session keeps when it breaks, when the runner wakes, how many
 * failures in a row each backoff counts, what a refused token does, and when the loop gives up.
 * The backoff is an Effect sleep, moved with the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, HashMap, Logger, LogLevel, Option, TestClock } from "effect"
import * as EtcdError from "../src/EtcdError.js"
import type { Endpoint } from "../src/internal/base/endpoint.js"
import { runStream, StreamSession } from "../src/internal/streams/streamSession.js"
import type { StreamPolicy } from "../src/internal/streams/streamSession.js"
import type { FramedHandlers, Transport } from "../src/internal/transport/transport.js"

const path = "/test.Stream/Run"

const endpointOf = (port: number): Endpoint => ({
  url: `http://127.0.0.1:${port}`,
  address: `127.0.0.1:${port}`,
  host: "127.0.0.1",
  port,
  secure: false
})

const unavailable = (reason: string) => new EtcdError.EtcdUnavailable({ endpoints: [], reason })
const fatal = new EtcdError.EtcdAuthFailed({ username: "bob" })
const refusedToken = new EtcdError.InvalidAuthToken({ method: path })

interface FakeStream {
  readonly handlers: FramedHandlers
  readonly endpoint: Endpoint
  readonly written: Array<string>
  canceled: boolean
}

/**
 * A transport whose opens take the next entry of `opens` (an error fails the open; the end of
 * the list opens), and whose token refreshes give `refresh`'s next entry (none: success).
 */
const fakeTransport = (opens: Array<EtcdError.EtcdError>, refreshes: Array<EtcdError.EtcdError> = []) => {
  const streams: Array<FakeStream> = []
  const reported: Array<string> = []
  const refreshed: Array<Option.Option<string>> = []
  let port = 1
  const transport = {
    framedDuplex: (_path: string, handlers: FramedHandlers) =>
      Effect.suspend(() => {
        const failure = opens.shift()
        if (failure !== undefined) return Effect.fail(failure)
        const stream: FakeStream = { handlers, endpoint: endpointOf(port++), written: [], canceled: false }
        streams.push(stream)
        return Effect.succeed({
          call: {
            write: (bytes: Buffer) => stream.written.push(bytes.toString()),
            cancel: () => {
              stream.canceled = true
            }
          },
          endpoint: stream.endpoint,
          token: Option.some(`token-${stream.endpoint.port}`)
        })
      }),
    streamError: (method: string, endpoint: Endpoint, error: unknown) =>
      new EtcdError.EtcdUnavailable({ method, endpoints: [endpoint.url], reason: String(error) }),
    current: () => endpointOf(99),
    reportFailure: (endpoint: Endpoint) => {
      reported.push(endpoint.url)
    },
    refreshToken: (rejected: Option.Option<string>) =>
      Effect.suspend(() => {
        refreshed.push(rejected)
        const failure = refreshes.shift()
        return failure === undefined ? Effect.void : Effect.fail(failure)
      })
  } as unknown as Transport
  return { transport, streams, reported, refreshed }
}

/**
 * A policy that records the loop's calls. A message "useful" marks its session healthy, a
 * message "unreadable" throws; `wanted` and `idle` are the test's to set.
 */
const recordingPolicy = () => {
  const state = {
    wanted: true,
    idle: false,
    opened: [] as Array<StreamSession>,
    closed: [] as Array<StreamSession>,
    backoffs: [] as Array<number>,
    gaveUp: [] as Array<EtcdError.EtcdError>,
    messages: [] as Array<string>
  }
  const policy: StreamPolicy<StreamSession> = {
    path,
    openOptions: {},
    makeSession: () => new StreamSession(),
    onMessage: (session, message) => {
      const text = message.toString()
      if (text === "unreadable") throw new Error("unreadable message")
      state.messages.push(text)
      if (text === "useful") session.healthy = true
    },
    wanted: () => state.wanted,
    idle: () => state.idle,
    opened: (session) => {
      state.opened.push(session)
      session.write(Buffer.from("hello"))
    },
    closed: (session) => {
      state.closed.push(session)
    },
    backoff: (failures) => {
      state.backoffs.push(failures)
      return Duration.seconds(failures)
    },
    isFatal: (error) => error._tag === "EtcdAuthFailed",
    giveUp: (error) => {
      state.gaveUp.push(error)
    }
  }
  return { policy, state }
}

/** Lets the runner fiber act on what the test did. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

describe("StreamSession", () => {
  it.effect("a session keeps the first reason it broke for, and wakes its waiting runner", () =>
    Effect.gen(function*() {
      const session = new StreamSession()
      expect(session.healthy).toBe(false)
      // nobody waits yet: nothing to wake
      session.wakeRunner()
      const waiting = yield* Effect.fork(session.awaitEnd(() => false))
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      const first = unavailable("first")
      session.break(first)
      session.break(unavailable("second"))
      expect(yield* Fiber.join(waiting)).toBe(first)
      expect(session.broken).toBe(first)
    }))

  it.effect("awaitEnd returns at once on a broken or idle session, and checks idle again each time it is woken", () =>
    Effect.gen(function*() {
      const broken = new StreamSession()
      const reason = unavailable("gone")
      broken.break(reason)
      expect(yield* broken.awaitEnd(() => false)).toBe(reason)
      expect(yield* new StreamSession().awaitEnd(() => true)).toBeUndefined()

      const session = new StreamSession()
      let idle = false
      const waiting = yield* Effect.fork(session.awaitEnd(() => idle))
      yield* settle
      session.wakeRunner()
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      idle = true
      session.wakeRunner()
      expect(yield* Fiber.join(waiting)).toBeUndefined()
    }))

  it.effect("an interrupted wait leaves no wake-up behind: the next wait is woken", () =>
    Effect.gen(function*() {
      const session = new StreamSession()
      const first = yield* Effect.fork(session.awaitEnd(() => false))
      yield* settle
      yield* Fiber.interrupt(first)
      let idle = false
      const second = yield* Effect.fork(session.awaitEnd(() => idle))
      yield* settle
      idle = true
      session.wakeRunner()
      expect(yield* Fiber.join(second)).toBeUndefined()
    }))

  it.effect("failed opens back off with the failures in a row counted; a fatal one gives up and ends the loop", () =>
    Effect.gen(function*() {
      const { streams, transport } = fakeTransport([unavailable("refused"), unavailable("refused"), fatal])
      const { policy, state } = recordingPolicy()
      const loop = yield* Effect.fork(runStream(transport, policy))
      yield* settle
      expect(state.backoffs).toStrictEqual([1])
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(state.backoffs).toStrictEqual([1, 2])
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(loop)
      expect(state.gaveUp).toStrictEqual([fatal])
      expect(state.backoffs).toStrictEqual([1, 2])
      expect(streams).toHaveLength(0)
    }))

  it.effect("a broken stream is canceled, closed and reported; the backoff counts on until a session was of use", () =>
    Effect.gen(function*() {
      const { reported, streams, transport } = fakeTransport([])
      const { policy, state } = recordingPolicy()
      const logs: Array<{ message: string; annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ annotations, message }) =>
        logs.push({ message: String(message), annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      )
      const loop = yield* Effect.fork(
        runStream(transport, policy).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.Debug)
        )
      )
      yield* settle
      expect(streams).toHaveLength(1)
      expect(streams[0].written).toStrictEqual(["hello"])
      expect(state.opened).toHaveLength(1)

      streams[0].handlers.onEnd(unavailable("reset"))
      yield* settle
      expect(streams[0].canceled).toBe(true)
      expect(state.closed).toStrictEqual(state.opened)
      expect(reported).toStrictEqual([streams[0].endpoint.url])
      expect(state.backoffs).toStrictEqual([1])
      expect(logs).toStrictEqual([{
        message: "stream broke; opening another",
        annotations: { method: path, endpoint: streams[0].endpoint.url, reason: unavailable("reset").message }
      }])

      yield* TestClock.adjust("1 second")
      yield* settle
      streams[1].handlers.onEnd(unavailable("reset again"))
      yield* settle
      expect(state.backoffs).toStrictEqual([1, 2])

      yield* TestClock.adjust("2 seconds")
      yield* settle
      streams[2].handlers.onMessage(Buffer.from("useful"))
      streams[2].handlers.onEnd(unavailable("reset after use"))
      yield* settle
      expect(state.backoffs).toStrictEqual([1, 2, 1])
      expect(reported).toStrictEqual(streams.map((stream) => stream.endpoint.url))

      state.wanted = false
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(loop)
      expect(streams).toHaveLength(3)
    }))

  it.effect("a message the hub throws on breaks the stream with the transport's error for its member", () =>
    Effect.gen(function*() {
      const { reported, streams, transport } = fakeTransport([])
      const { policy, state } = recordingPolicy()
      const loop = yield* Effect.fork(runStream(transport, policy))
      yield* settle
      const session = state.opened[0]
      streams[0].handlers.onMessage(Buffer.from("unreadable"))
      expect(session.broken).toMatchObject({
        _tag: "EtcdUnavailable",
        method: path,
        endpoints: [streams[0].endpoint.url],
        reason: "Error: unreadable message"
      })
      yield* settle
      expect(streams[0].canceled).toBe(true)
      expect(reported).toStrictEqual([streams[0].endpoint.url])
      state.wanted = false
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(loop)
    }))

  it.effect("a message thrown on before the open has returned breaks the session at the transport's current member", () =>
    Effect.gen(function*() {
      const fake = fakeTransport([])
      // the stream delivers a message while it is being opened, before the loop has its duplex
      const transport = {
        ...fake.transport,
        framedDuplex: (method: string, handlers: FramedHandlers) =>
          Effect.suspend(() => {
            handlers.onMessage(Buffer.from("unreadable"))
            return fake.transport.framedDuplex(method, handlers)
          })
      } as Transport
      const { policy, state } = recordingPolicy()
      const loop = yield* Effect.fork(runStream(transport, policy))
      yield* settle
      expect(state.opened[0].broken).toMatchObject({
        _tag: "EtcdUnavailable",
        endpoints: [endpointOf(99).url],
        reason: "Error: unreadable message"
      })
      expect(fake.streams[0].canceled).toBe(true)
      state.wanted = false
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(loop)
    }))

  it.effect("a refused token: a new token and a new stream at once; a failed refresh backs off, a fatal one gives up", () =>
    Effect.gen(function*() {
      const { refreshed, reported, streams, transport } = fakeTransport([], [unavailable("no member"), fatal])
      const { policy, state } = recordingPolicy()
      const loop = yield* Effect.fork(runStream(transport, policy))
      yield* settle
      // this refresh fails with an error worth another try: report, back off, open again
      streams[0].handlers.onEnd(refusedToken)
      yield* settle
      expect(refreshed).toStrictEqual([Option.some("token-1")])
      expect(reported).toStrictEqual([streams[0].endpoint.url])
      expect(state.backoffs).toStrictEqual([1])
      yield* TestClock.adjust("1 second")
      yield* settle
      // the refresh is fatal: every user is told, the loop ends
      streams[1].handlers.onEnd(refusedToken)
      yield* Fiber.join(loop)
      expect(refreshed).toStrictEqual([Option.some("token-1"), Option.some("token-2")])
      expect(state.gaveUp).toStrictEqual([fatal])
      expect(streams).toHaveLength(2)
    }))

  it.effect("a refused token refreshed: the next stream opens at once, with no backoff and nothing reported", () =>
    Effect.gen(function*() {
      const { reported, streams, transport } = fakeTransport([])
      const { policy, state } = recordingPolicy()
      const loop = yield* Effect.fork(runStream(transport, policy))
      yield* settle
      streams[0].handlers.onEnd(refusedToken)
      yield* settle
      expect(streams).toHaveLength(2)
      expect(state.backoffs).toStrictEqual([])
      expect(reported).toStrictEqual([])
      state.wanted = false
      state.idle = true
      state.opened[1].wakeRunner()
      yield* Fiber.join(loop)
    }))

  it.effect("an idle hub lets go of its stream when it wakes the runner: canceled and closed, no backoff, nothing reported", () =>
    Effect.gen(function*() {
      const { reported, streams, transport } = fakeTransport([])
      const { policy, state } = recordingPolicy()
      const loop = yield* Effect.fork(runStream(transport, policy))
      yield* settle
      // idle, but not woken: the stream stays
      state.idle = true
      yield* settle
      expect(streams[0].canceled).toBe(false)
      state.wanted = false
      state.opened[0].wakeRunner()
      yield* Fiber.join(loop)
      expect(streams[0].canceled).toBe(true)
      expect(state.closed).toStrictEqual([state.opened[0]])
      expect(state.backoffs).toStrictEqual([])
      expect(reported).toStrictEqual([])
      expect(streams).toHaveLength(1)
    }))
})
