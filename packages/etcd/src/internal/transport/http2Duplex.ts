/**
 * gRPC calls spoken directly over `node:http2`, for the calls where grpc-js's cost per
 * message is most of the work. `openCall` runs one call on a given connection (the unary
 * calls of `http2Unary.ts` share one per member); `open` runs a bidirectional call on a
 * connection of its own (the lease keepalive stream: thousands of tiny messages a second
 * for thousands of leases). Messages go out as the caller framed them (`grpcFrames.frame`),
 * several in one write when the caller has several; answers come back as the raw bytes of
 * each message, cut by `FrameReader`. A call ends with its status: `grpc-status` from the
 * trailers (or from the headers of a trailers-only answer); a stream reset by the server
 * with the status grpc-js maps its HTTP/2 code to, and a dropped connection as UNAVAILABLE;
 * in the shape grpc-js gives its errors (`code`, `details`), so that `grpcError.fromGrpc`
 * maps both the same way.
 *
 * A call the server provably never processed says so (`unprocessed`), so that even a
 * write may be sent again: the server refused its stream (RST_STREAM REFUSED_STREAM), its
 * stream ID is above the last-stream-id of the server's GOAWAY, or the connection was
 * never made or was gone before the request's bytes left this process.
 */
import * as http2 from "node:http2"
import {
  decodeGrpcMessage,
  defaultMaxReceiveBytes,
  FrameError,
  FrameReader,
  FrameTooLarge
} from "../wire/grpcFrames.js"
import { Status } from "./grpcStatus.js"

/** How a call ended, other than with status OK: as grpc-js's errors look to `fromGrpc`. */
export class StreamStatusError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    /** The server provably never processed the call (gRPC's "transparent retry" case). */
    readonly unprocessed: boolean = false,
    /**
     * Set when the call ended without a gRPC status, by a reset stream or a dropped
     * connection (the stream's HTTP/2 code): the call broke, whatever `code` grpc-js's
     * table gives it, so that `fromGrpc` takes it as transient.
     */
    readonly rstCode: number | undefined = undefined
  ) {
    super(`${code} ${details}`)
  }
}

/**
 * HTTP/2 PINGs on a connection (grpc-js's `keepalive_time_ms` and `keepalive_timeout_ms`):
 * one every `intervalMs`, and the connection taken as dead when one is not answered within
 * `timeoutMs`. One object per member, shared by its connections: when the member closes
 * one for too many pings (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; etcd wants at least
 * 5 s between them), `intervalMs` doubles for every later connection, as grpc-js does.
 */
export interface KeepAlive {
  intervalMs: number
  readonly timeoutMs: number
}

/** What is known of a connection, for the calls on it. */
export interface ConnectionState {
  /** Whether the connection was made (before that, nothing of a call can have been sent). */
  connected: boolean
  /** The last-stream-id of the server's GOAWAY, once it sent one: streams above it were never processed. */
  goawayLastStreamId: number | undefined
  /** Why this side dropped the connection (a keepalive PING not answered), if it did. */
  dropped: string | undefined
}

/** The debug data of etcd's (grpc-go's) GOAWAY for a client that pings too often. */
const tooManyPings = Buffer.from("too_many_pings")

/**
 * The state of `session`, kept up to date by its events: connected, the server's GOAWAY;
 * and a GOAWAY for too many pings doubles `keepAlive`'s interval.
 */
export const track = (session: http2.ClientHttp2Session, keepAlive?: KeepAlive | undefined): ConnectionState => {
  const state: ConnectionState = { connected: false, goawayLastStreamId: undefined, dropped: undefined }
  session.on("connect", () => {
    state.connected = true
  })
  session.on("goaway", (code: number, lastStreamId: number, data?: Buffer) => {
    state.goawayLastStreamId = state.goawayLastStreamId === undefined
      ? lastStreamId
      : Math.min(state.goawayLastStreamId, lastStreamId)
    if (keepAlive !== undefined && code === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM && data?.equals(tooManyPings)) {
      keepAlive.intervalMs *= 2
    }
  })
  return state
}

/**
 * The status of a stream reset without one, by its HTTP/2 code, as grpc-js maps it:
 * REFUSED_STREAM is UNAVAILABLE, CANCEL is CANCELLED, ENHANCE_YOUR_CALM is
 * RESOURCE_EXHAUSTED, INADEQUATE_SECURITY is PERMISSION_DENIED, every other is INTERNAL.
 */
export const codeOfRst = (rstCode: number): number => {
  switch (rstCode) {
    case http2.constants.NGHTTP2_REFUSED_STREAM:
      return Status.UNAVAILABLE
    case http2.constants.NGHTTP2_CANCEL:
      return Status.CANCELLED
    case http2.constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return Status.RESOURCE_EXHAUSTED
    case http2.constants.NGHTTP2_INADEQUATE_SECURITY:
      return Status.PERMISSION_DENIED
    default:
      return Status.INTERNAL
  }
}

/** The names of HTTP/2's error codes, for messages. */
const rstNames = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED"
]
const rstName = (rstCode: number): string => rstNames[rstCode] ?? `code ${rstCode}`

/** Where and how to open the stream. */
export interface Http2DuplexOptions {
  /** `http://host:port` or `https://host:port`. */
  readonly origin: string
  /** TLS settings of the connection (for `https:` origins); `servername` also names the `:authority`. */
  readonly connect?: http2.SecureClientSessionOptions | undefined
  /** The method's path, `/package.Service/Method`. */
  readonly path: string
  /** Extra request headers (gRPC metadata): an auth token, `hasleader`. */
  readonly headers: Readonly<Record<string, string>>
  /** Each message of the answer, as its raw bytes (valid only during the call). */
  readonly onMessage: (message: Buffer) => void
  /** The call failed (or ended with a status other than OK); called once, and never after `cancel`. */
  readonly onError: (error: StreamStatusError) => void
  /** The call ended with status OK; called once, and never after `cancel`. */
  readonly onEnd: () => void
  /**
   * HTTP/2 PINGs on the connection every `intervalMs`: one not answered within `timeoutMs`
   * fails the call with UNAVAILABLE (grpc-js's `keepalive_time_ms` and `keepalive_timeout_ms`),
   * so that a call that only listens finds out when its member stops answering.
   */
  readonly keepAlive?: KeepAlive | undefined
  /** The largest message of the answer (larger ones fail the call with RESOURCE_EXHAUSTED). */
  readonly maxReceiveBytes?: number | undefined
}

/** An open call. */
export interface Http2Duplex {
  /** Sends bytes already framed (one message or several). */
  readonly write: (framed: Buffer) => void
  /** Ends the call and its connection; no callback runs afterwards. */
  readonly cancel: () => void
}

/** The text of a header that may come as a list. */
const headerText = (value: string | ReadonlyArray<string> | number | undefined): string | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value.join(",") : String(value)

/** The HTTP status of an answer that is not gRPC, as grpc-js maps it. */
const codeOfHttpStatus = (status: number): number => {
  switch (status) {
    case 400:
      return Status.INTERNAL
    case 401:
      return Status.UNAUTHENTICATED
    case 403:
      return Status.PERMISSION_DENIED
    case 404:
      return Status.UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE
    default:
      return Status.UNKNOWN
  }
}

/** What becomes of a call's answer. */
export interface CallHandlers {
  /**
   * Each message of the answer, as its raw bytes: valid only during the call, unless
   * `owned` (a message gathered from several chunks into a buffer of its own).
   */
  readonly onMessage: (message: Buffer, owned: boolean) => void
  /** The call failed (or ended with a status other than OK); called once, and never after `cancel`. */
  readonly onError: (error: StreamStatusError) => void
  /** The call ended with status OK; called once, and never after `cancel`. */
  readonly onEnd: () => void
}

/** A call open on a connection. */
export interface Call {
  /** Sends bytes already framed (one message or several). */
  readonly write: (framed: Buffer) => void
  /** Sends the last bytes (framed) and ends this side of the call. */
  readonly end: (framed: Buffer) => void
  /** Ends the call; no callback runs afterwards. */
  readonly cancel: () => void
  /** Fails the call with `code` (UNAVAILABLE unless said) and `details`, unless it ended already. */
  readonly abort: (details: string, code?: number) => void
}

/**
 * Has the chunks Node reads for `stream` go to `onData` straight from its `push`, rather
 * than through the Readable machinery to a `data` listener: that way costs, per chunk (one
 * a message for a stream of small answers: the server sends each in a DATA frame of its
 * own), a buffering step, a `process.nextTick` and the microtask turn after it. The end of
 * the stream (`push(null)`) still goes the Readable way, and so would chunks delivered
 * otherwise than by `push`: the stream's `data` listener gets those.
 */
const readDirectly = (stream: http2.ClientHttp2Stream, onData: (chunk: Buffer) => void): void => {
  const push = stream.push
  stream.push = function(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (!Buffer.isBuffer(chunk)) return push.call(this, chunk, encoding)
    onData(chunk)
    return true
  }
}

/** The receive window of a connection and of each stream on it (HTTP/2's default is 64 KiB). */
const receiveWindow = 4 * 1024 * 1024

/**
 * Opens a connection to `origin` for gRPC calls: with receive windows large enough that
 * an answer of a few MiB (a range of a thousand values) is not held up by window updates,
 * and without Node's cap on a session's memory (10 MB by default, past which Node refuses
 * new streams; grpc-js lifts it too). The connection's failures come to its calls.
 */
export const connect = (
  origin: string,
  options: http2.SecureClientSessionOptions | undefined
): http2.ClientHttp2Session => {
  const session = http2.connect(origin, {
    ...options,
    maxSessionMemory: Number.MAX_SAFE_INTEGER,
    settings: { ...options?.settings, initialWindowSize: receiveWindow }
  })
  session.once("remoteSettings", () => {
    if (!session.destroyed) session.setLocalWindowSize(receiveWindow)
  })
  return session
}

/** The text of a connection failure, as grpc-js says it when no connection was made (`neverSent` knows it). */
export const connectionFailure = (error: Error, connected: boolean): string => {
  // a stream cancelled because its connection failed ("The pending stream has been
  // canceled (caused by: connect ECONNREFUSED ...)"): the connection's error says why
  const cause = (error as { readonly cause?: unknown }).cause
  const reason = cause instanceof Error ? cause.message : error.message
  return connected ? reason : `No connection established. Last error: ${reason}`
}

/**
 * A call's `grpc-timeout` header for `ms` milliseconds: the server gives the call that
 * deadline, so that a member that stalled (paused, overloaded) drops a call its client
 * stopped waiting for instead of running it when it comes back. At most 8 digits, as gRPC
 * requires: milliseconds, then seconds, then hours.
 */
export const grpcTimeout = (ms: number): string => {
  const millis = Math.max(1, Math.ceil(ms))
  if (millis < 1e8) return `${millis}m`
  const seconds = Math.ceil(millis / 1000)
  return seconds < 1e8 ? `${seconds}S` : `${Math.min(99_999_999, Math.ceil(seconds / 3600))}H`
}

/**
 * How a stream that closed without a status ended, read once Node has closed it (its
 * `rstCode` is set then) and before this side closes it: never processed, or broken, and
 * by what. A function of its own rather than a closure of each call.
 */
const withoutStatus = (
  session: http2.ClientHttp2Session,
  stream: http2.ClientHttp2Stream,
  state: ConnectionState,
  streamError: Error | undefined
): StreamStatusError => {
  const id = stream.id
  if (!state.connected) {
    // nothing can have been sent on a connection that was never made
    return new StreamStatusError(
      Status.UNAVAILABLE,
      connectionFailure(streamError ?? new Error("the connection closed"), false),
      true
    )
  }
  const rstCode = stream.rstCode ?? http2.constants.NGHTTP2_NO_ERROR
  if (rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) {
    return new StreamStatusError(
      Status.UNAVAILABLE,
      "the server refused the stream (REFUSED_STREAM): not processed",
      true,
      rstCode
    )
  }
  if (id === undefined) {
    return new StreamStatusError(Status.UNAVAILABLE, "the stream was never opened: not processed", true, rstCode)
  }
  if (state.goawayLastStreamId !== undefined && id > state.goawayLastStreamId) {
    return new StreamStatusError(
      Status.UNAVAILABLE,
      `the server is going away (GOAWAY) and took no stream after ${state.goawayLastStreamId}: not processed`,
      true,
      rstCode
    )
  }
  if (session.closed || session.destroyed) {
    if (state.dropped !== undefined) {
      // this side gave up on a silent member: what was written may still reach it
      return new StreamStatusError(Status.UNAVAILABLE, state.dropped, false, rstCode)
    }
    const why = streamError === undefined ? "the connection closed" : connectionFailure(streamError, true)
    // the connection is gone and the request (all of it: this side ended the stream) had
    // not all left this process: the server cannot have read the whole of its one message,
    // so never ran it (a stream that goes on writing may have had earlier messages run)
    return session.destroyed && stream.writableEnded && stream.writableLength > 0
      ? new StreamStatusError(Status.UNAVAILABLE, `${why} before the request was sent: not processed`, true, rstCode)
      : new StreamStatusError(Status.UNAVAILABLE, `${why} (connection dropped)`, false, rstCode)
  }
  return new StreamStatusError(
    codeOfRst(rstCode),
    rstCode === http2.constants.NGHTTP2_NO_ERROR
      ? "the call ended without a gRPC status"
      : `the server reset the stream (${rstName(rstCode)})`,
    false,
    rstCode
  )
}

/**
 * Opens one gRPC call on `session`, whose `state` tells, when the call breaks, whether the
 * server can have processed it (see `StreamStatusError.unprocessed`).
 */
export const openCall = (
  session: http2.ClientHttp2Session,
  request: {
    readonly path: string
    readonly authority?: string | undefined
    readonly headers: Readonly<Record<string, string>>
    /** How long the caller waits, as `grpc-timeout` tells the server (see `grpcTimeout`). */
    readonly timeout?: string | undefined
    readonly state: ConnectionState
    /** The largest message of the answer; `defaultMaxReceiveBytes` unless said. */
    readonly maxReceiveBytes?: number | undefined
  },
  handlers: CallHandlers
): Call => {
  let settled = false
  /** The status the server sent, once it did. */
  let status: { readonly code: number; readonly details: string } | undefined
  /** Why the call broke on this side (a malformed frame, an answer over the limit), if it did. */
  let broken: StreamStatusError | undefined
  /** The stream's `error`, if it had one: what a dropped connection says of itself. */
  let streamError: Error | undefined
  let stream: http2.ClientHttp2Stream | undefined
  const state = request.state

  const finish = () => {
    if (settled) return
    settled = true
    if (status !== undefined && status.code === Status.OK && broken === undefined) {
      stream?.close(http2.constants.NGHTTP2_CANCEL)
      return handlers.onEnd()
    }
    // read before this side closes the stream, which sets its code
    const error = broken ??
      (status === undefined
        ? withoutStatus(session, stream!, state, streamError)
        : new StreamStatusError(status.code, status.details))
    stream?.close(http2.constants.NGHTTP2_CANCEL)
    handlers.onError(error)
  }
  const breakWith = (code: number, details: string) => {
    if (broken === undefined) broken = new StreamStatusError(code, details)
    finish()
  }
  const readStatus = (headers: http2.IncomingHttpHeaders) => {
    const code = headerText(headers["grpc-status"])
    if (code === undefined) return
    const parsed = Number(code)
    status = {
      code: Number.isInteger(parsed) ? parsed : Status.UNKNOWN,
      details: decodeGrpcMessage(headers["grpc-message"])
    }
  }

  // one object per call, on every call's path: the optional headers set on it, not spread in
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": request.path,
    "content-type": "application/grpc",
    te: "trailers",
    ...request.headers
  }
  if (request.authority !== undefined) headers[":authority"] = request.authority
  if (request.timeout !== undefined) headers["grpc-timeout"] = request.timeout
  try {
    stream = session.request(headers, { endStream: false })
  } catch (error) {
    const cause = error instanceof Error ? error : new Error(String(error))
    // a stream that could not be opened sent nothing, whatever the connection's state
    broken = new StreamStatusError(Status.UNAVAILABLE, connectionFailure(cause, false), true)
    finish()
    return { write: () => {}, end: () => {}, cancel: () => {}, abort: () => {} }
  }

  const reader = new FrameReader(handlers.onMessage, request.maxReceiveBytes ?? defaultMaxReceiveBytes)
  stream.on("response", (headers) => {
    const httpStatus = Number(headers[":status"])
    if (httpStatus !== 200) {
      return breakWith(codeOfHttpStatus(httpStatus), `the server answered HTTP ${httpStatus}`)
    }
    // a trailers-only answer: the status comes with the headers
    readStatus(headers)
  })
  const onData = (chunk: Buffer) => {
    if (settled) return
    try {
      reader.push(chunk)
    } catch (error) {
      if (!(error instanceof FrameError)) throw error
      breakWith(error instanceof FrameTooLarge ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL, error.message)
    }
  }
  stream.on("data", onData)
  readDirectly(stream, onData)
  stream.on("trailers", (trailers) => readStatus(trailers))
  // the stream closes after its error: what became of it is read then
  stream.on("error", (error) => {
    streamError ??= error
  })
  // the server's side is over once every message was read: the call is, even while this
  // side (a stream that never ends its writes) keeps the HTTP/2 stream half open; without
  // a status, how it ended is read once it closed (its RST_STREAM code is set then), or
  // now when it stays open (the server ended its side without trailers)
  const ended = () => {
    if (status !== undefined || broken !== undefined || !stream!.closed) finish()
  }
  stream.on("end", ended)
  stream.on("close", finish)

  return {
    write: (framed) => {
      if (!settled) stream?.write(framed)
    },
    end: (framed) => {
      if (!settled) stream?.end(framed)
    },
    cancel: () => {
      if (settled) return
      settled = true
      stream?.close(http2.constants.NGHTTP2_CANCEL)
    },
    abort: (details, code = Status.UNAVAILABLE) => breakWith(code, details)
  }
}

/**
 * Opens a bidirectional call on a connection of its own (made on the way): nothing throws,
 * failures come to `onError`, and the connection ends with the call.
 */
export const open = (options: Http2DuplexOptions): Http2Duplex => {
  let done = false
  const session = connect(options.origin, options.connect)
  const state = track(session, options.keepAlive)
  // the call sees the connection's failures as its own; this only keeps them from being thrown
  session.on("error", () => {})
  let pinger: ReturnType<typeof setInterval> | undefined
  const close = () => {
    if (done) return
    done = true
    if (pinger !== undefined) clearInterval(pinger)
    // not a graceful close: the connection is the call's own, and closing it ends the call
    // on the server at once, even on a member that stopped answering
    session.destroy()
  }
  const call = openCall(session, {
    path: options.path,
    authority: options.connect?.servername,
    headers: options.headers,
    state,
    maxReceiveBytes: options.maxReceiveBytes
  }, {
    onMessage: options.onMessage,
    onError: (error) => {
      close()
      options.onError(error)
    },
    onEnd: () => {
      close()
      options.onEnd()
    }
  })
  const keepAlive = options.keepAlive
  if (keepAlive !== undefined) {
    const timeoutMs = keepAlive.timeoutMs
    pinger = setInterval(() => {
      if (done || !state.connected) return
      const timer = setTimeout(() => call.abort(`no answer to a keepalive ping within ${timeoutMs} ms`), timeoutMs)
      // an error here is the connection's, which the call sees on its own
      const sent = session.ping(() => clearTimeout(timer))
      if (!sent) clearTimeout(timer)
    }, keepAlive.intervalMs)
    pinger.unref()
  }
  // the call's stream sees the connection close first, as a rule; should it not, the call
  // still ends (after the stream's own events, which come in the same turn)
  session.on("close", () => {
    if (done) return
    setImmediate(() => call.abort(connectionFailure(new Error("the connection closed"), state.connected)))
  })
  return {
    write: call.write,
    cancel: () => {
      call.cancel()
      close()
    }
  }
}
