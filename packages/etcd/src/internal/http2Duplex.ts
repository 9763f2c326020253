/**
 * gRPC calls spoken directly over `node:http2`, for the calls where grpc-js's cost per
 * message is most of the work. `openCall` runs one call on a given connection (the unary
 * calls of `http2Unary.ts` share one per member); `open` runs a bidirectional call on a
 * connection of its own (the lease keepalive stream: thousands of tiny messages a second
 * for thousands of leases). Messages go out as the caller framed them (`grpcFrames.frame`),
 * several in one write when the caller has several; answers come back as the raw bytes of
 * each message, cut by `FrameReader`. A call ends with its status: `grpc-status` from the
 * trailers (or from the headers of a trailers-only answer), and a broken connection or
 * stream as UNAVAILABLE, in the shape grpc-js gives its errors (`code`, `details`), so that
 * `grpcError.fromGrpc` maps both the same way.
 */
import * as http2 from "node:http2"
import { decodeGrpcMessage, FrameError, FrameReader } from "./grpcFrames.js"
import { Status } from "./grpcStatus.js"

/** How a call ended, other than with status OK: as grpc-js's errors look to `fromGrpc`. */
export class StreamStatusError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(`${code} ${details}`)
  }
}

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
  readonly keepAlive?: { readonly intervalMs: number; readonly timeoutMs: number } | undefined
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
  /** Fails the call as UNAVAILABLE with `details`, unless it ended already. */
  readonly abort: (details: string) => void
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
 * Opens one gRPC call on `session`. `connected` tells, when the call breaks, whether the
 * connection had been made: a call that broke before proves it never reached the server.
 */
export const openCall = (
  session: http2.ClientHttp2Session,
  request: {
    readonly path: string
    readonly authority?: string | undefined
    readonly headers: Readonly<Record<string, string>>
    /** How long the caller waits, as `grpc-timeout` tells the server (see `grpcTimeout`). */
    readonly timeout?: string | undefined
    readonly connected: () => boolean
  },
  handlers: CallHandlers
): Call => {
  let settled = false
  /** The status the server sent, once it did. */
  let status: { readonly code: number; readonly details: string } | undefined
  /** Why the call broke on this side (the connection, a malformed frame), if it did. */
  let broken: StreamStatusError | undefined
  let stream: http2.ClientHttp2Stream | undefined

  const finish = () => {
    if (settled) return
    settled = true
    stream?.close(http2.constants.NGHTTP2_CANCEL)
    if (status !== undefined && status.code === Status.OK && broken === undefined) return handlers.onEnd()
    handlers.onError(
      broken ?? (status === undefined
        ? new StreamStatusError(Status.UNAVAILABLE, "the stream closed without a status")
        : new StreamStatusError(status.code, status.details))
    )
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
    breakWith(Status.UNAVAILABLE, connectionFailure(cause, false))
    return { write: () => {}, end: () => {}, cancel: () => {}, abort: () => {} }
  }

  const reader = new FrameReader(handlers.onMessage)
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
      breakWith(Status.INTERNAL, error.message)
    }
  }
  stream.on("data", onData)
  readDirectly(stream, onData)
  stream.on("trailers", (trailers) => readStatus(trailers))
  stream.on("error", (error) => breakWith(Status.UNAVAILABLE, connectionFailure(error, request.connected())))
  const ended = () => {
    if (status === undefined && broken === undefined) {
      broken = new StreamStatusError(
        Status.UNAVAILABLE,
        `the stream closed without a status (HTTP/2 code ${stream?.rstCode ?? "none"})`
      )
    }
    finish()
  }
  // the server's side is over once every message was read: the call is, even while this
  // side (a stream that never ends its writes) keeps the HTTP/2 stream half open
  stream.on("end", ended)
  stream.on("close", ended)

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
    abort: (details) => breakWith(Status.UNAVAILABLE, details)
  }
}

/**
 * Opens a bidirectional call on a connection of its own (made on the way): nothing throws,
 * failures come to `onError`, and the connection ends with the call.
 */
export const open = (options: Http2DuplexOptions): Http2Duplex => {
  let connected = false
  let done = false
  const session = connect(options.origin, options.connect)
  session.on("connect", () => {
    connected = true
  })
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
    connected: () => connected
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
    pinger = setInterval(() => {
      if (done || !connected) return
      const timer = setTimeout(
        () => call.abort(`no answer to a keepalive ping within ${keepAlive.timeoutMs} ms`),
        keepAlive.timeoutMs
      )
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
    setImmediate(() => call.abort(connectionFailure(new Error("the connection closed"), connected)))
  })
  return {
    write: call.write,
    cancel: () => {
      call.cancel()
      close()
    }
  }
}
