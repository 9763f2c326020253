/**
 * Unary gRPC calls spoken directly over `node:http2`, on one connection per member shared
 * by all of them. grpc-js's own path (call stack, filters, a timer and metadata per call)
 * cost a third of the client's CPU per put: in one process alternating the two paths on
 * the same etcd, a put at 128 in flight took 169 µs of CPU through grpc-js and 107 µs
 * here, a revoke of ten thousand at once about 250 µs against 70. The call ends as
 * grpc-js's would (`callback(error, response)`, the error shaped as grpc-js shapes its
 * errors), so that the transport keeps its deadlines, retries, failover and error
 * mapping around it.
 */
import type * as http2 from "node:http2"
import * as Monotonic from "../base/monotonic.js"
import { frame } from "../wire/grpcFrames.js"
import { Status } from "./grpcStatus.js"
import {
  type Call,
  connect,
  type ConnectionState,
  grpcTimeout,
  type KeepAlive,
  openCall,
  StreamStatusError,
  track
} from "./http2Duplex.js"

/** A connection and what is known of it. */
interface Connection {
  readonly session: http2.ClientHttp2Session
  readonly state: ConnectionState
  /** How many times anything was heard from the member on it (an answer, a status). */
  heard: number
  /** How many calls it carried: HTTP/2 numbers a connection's streams, up to 2^31. */
  calls: number
  /** How many calls are in flight on it: it is pinged only while there are some. */
  inFlight: number
  /**
   * When its last call in flight ended (`monotonic.ts` milliseconds); `-Infinity` until one
   * did, so that a new connection counts as idle since long ago.
   */
  idleSince: number
  /** Its keepalive timer, when it has one. */
  pinger: ReturnType<typeof setInterval> | undefined
}

/** How a member's connections are used: PINGs while calls are in flight, and the receive limit. */
export interface MemberConnectionOptions {
  readonly keepAlive?: KeepAlive | undefined
  readonly maxReceiveBytes?: number | undefined
  /** Told when a connection is made, closes, or is dropped for an unanswered PING (metrics only). */
  readonly onEvent?: ((event: "connect" | "disconnect" | "keepaliveTimeout") => void) | undefined
}

/**
 * How long a connection must have had no call in flight for the next call to wait two turns
 * of the event loop before writing to it (see `MemberConnection.unary`): calls that follow
 * one another closely never wait.
 */
const idleCheckMs = 2

/** Calls on one connection before the next call opens another (each takes a stream ID). */
const callsPerConnection = 1_000_000_000

/**
 * The connection to one member: made on the first call, made again after it breaks, and
 * holding the process open only while a call is in flight (as grpc-js's channels do).
 */
export class MemberConnection {
  private connection: Connection | undefined = undefined
  private active = 0
  private closed = false

  constructor(
    private readonly origin: string,
    private readonly connect: http2.SecureClientSessionOptions | undefined,
    private readonly options: MemberConnectionOptions = {}
  ) {}

  /** The connection, made now when there is none (or the last one broke or is going away). */
  private current(): Connection {
    const existing = this.connection
    if (existing !== undefined && !existing.session.closed && !existing.session.destroyed) {
      if (existing.calls < callsPerConnection) return existing
      // out of stream IDs soon: the calls in flight finish on it, new ones go on a new one
      existing.session.close()
    }
    const session = connect(this.origin, this.connect)
    const keepAlive = this.options.keepAlive
    const onEvent = this.options.onEvent
    if (onEvent !== undefined) {
      session.once("connect", () => onEvent("connect"))
      session.once("close", () => onEvent("disconnect"))
    }
    const made: Connection = {
      session,
      state: track(session, keepAlive),
      heard: 0,
      calls: 0,
      inFlight: 0,
      idleSince: Number.NEGATIVE_INFINITY,
      pinger: undefined
    }
    const forget = () => {
      if (this.connection === made) this.connection = undefined
    }
    // a call on it sees the failure as its own
    session.on("error", () => {})
    session.on("close", () => {
      forget()
      if (made.pinger !== undefined) clearInterval(made.pinger)
    })
    // new calls go on a new connection; the ones in flight finish on this one
    session.on("goaway", forget)
    if (keepAlive !== undefined) made.pinger = this.pingWhileBusy(made, keepAlive)
    if (this.active === 0) session.unref()
    this.connection = made
    return made
  }

  /**
   * PINGs `connection` every `keepAlive.intervalMs` while calls are in flight on it (never
   * when idle: etcd closes a connection pinged without calls, GOAWAY "too_many_pings"),
   * and drops it when one is not answered within `keepAlive.timeoutMs`: a member that went
   * silent is found then, not only by each call's deadline. Its calls fail as UNAVAILABLE
   * (a write's outcome is open: the member may still run it); new calls make another.
   */
  private pingWhileBusy(connection: Connection, keepAlive: KeepAlive): ReturnType<typeof setInterval> {
    const { session, state } = connection
    const timeoutMs = keepAlive.timeoutMs
    let awaiting = false
    const pinger = setInterval(() => {
      if (awaiting || connection.inFlight === 0 || !state.connected || session.closed || session.destroyed) return
      awaiting = true
      const timer = setTimeout(() => {
        state.dropped = `no answer to a keepalive ping within ${timeoutMs} ms`
        this.options.onEvent?.("keepaliveTimeout")
        if (this.connection === connection) this.connection = undefined
        session.destroy()
      }, timeoutMs)
      const sent = session.ping(() => {
        awaiting = false
        clearTimeout(timer)
      })
      if (!sent) {
        awaiting = false
        clearTimeout(timer)
      }
    }, keepAlive.intervalMs)
    pinger.unref()
    return pinger
  }

  /**
   * One call: `request` (serialized, not framed) to `path`, which the server is told to
   * give up on after `timeoutMs` (the caller's deadline); `callback` gets the answer's
   * one message, or the error; once, and not after `cancel` or `expire`. `expire` is for a
   * call whose deadline passed: when nothing at all was heard on the connection since the
   * call began, the connection is taken for dead (a member cut off without the connection
   * breaking, which only the TCP timeout would notice) and the next call makes another;
   * the calls still in flight on it end by their own deadlines, and then it closes.
   */
  unary(
    path: string,
    headers: Readonly<Record<string, string>>,
    authority: string | undefined,
    timeoutMs: number,
    request: Buffer,
    callback: (error: StreamStatusError | null, response?: Buffer) => void
  ): { readonly cancel: () => void; readonly expire: () => void } {
    const connection = this.closed ? undefined : this.current()
    if (
      connection === undefined || connection.inFlight > 0 || !connection.state.connected ||
      Monotonic.now() - connection.idleSince < idleCheckMs
    ) return this.start(connection, path, headers, authority, timeoutMs, request, callback)
    // The connection sat idle: the event loop first takes in what came on it meanwhile, so
    // that a member that died since (its side of the connection closed: a killed process)
    // is seen before the request is written to it. The call then goes on a new connection
    // and, when the member is down, fails as never sent (a write may go to another member)
    // rather than as dropped after it was written (ambiguous). Two turns of the loop
    // (`setImmediate` twice), and only for a call that finds its connection idle.
    let started: { readonly cancel: () => void; readonly expire: () => void } | undefined
    let stopped = false
    setImmediate(() =>
      setImmediate(() => {
        if (!stopped) {
          started = this.start(
            this.closed ? undefined : this.current(),
            path,
            headers,
            authority,
            timeoutMs,
            request,
            callback
          )
        }
      })
    )
    return {
      cancel: () => {
        stopped = true
        started?.cancel()
      },
      expire: () => {
        stopped = true
        started?.expire()
      }
    }
  }

  /** A call on `connection` (none: the client closed), as `unary` describes it. */
  private start(
    connection: Connection | undefined,
    path: string,
    headers: Readonly<Record<string, string>>,
    authority: string | undefined,
    timeoutMs: number,
    request: Buffer,
    callback: (error: StreamStatusError | null, response?: Buffer) => void
  ): { readonly cancel: () => void; readonly expire: () => void } {
    if (connection === undefined) {
      callback(new StreamStatusError(Status.CANCELLED, "the client closed"))
      return { cancel: () => {}, expire: () => {} }
    }
    connection.calls++
    connection.inFlight++
    const session = connection.session
    if (this.active++ === 0) session.ref()
    const heardBefore = connection.heard
    const heard = () => {
      connection.heard++
    }
    let answer: Buffer | undefined
    let done = false
    const settle = () => {
      if (done) return false
      done = true
      if (--connection.inFlight === 0) connection.idleSince = Monotonic.now()
      if (--this.active === 0) this.connection?.session.unref()
      return true
    }
    const call: Call = openCall(session, {
      path,
      authority,
      headers,
      timeout: grpcTimeout(timeoutMs),
      state: connection.state,
      maxReceiveBytes: this.options.maxReceiveBytes
    }, {
      onMessage: (message, owned) => {
        heard()
        if (done) return
        // a unary answer has one message: a second fails the call, as in grpc-js
        if (answer !== undefined) return call.abort("Too many responses received", Status.UNIMPLEMENTED)
        // a view of a chunk is valid only during the callback: kept as a copy
        answer = owned ? message : Buffer.from(message)
      },
      onError: (error) => {
        heard()
        if (settle()) callback(error)
      },
      onEnd: () => {
        heard()
        if (!settle()) return
        if (answer === undefined) {
          callback(new StreamStatusError(Status.INTERNAL, "the server answered without a message"))
        } else callback(null, answer)
      }
    })
    call.end(frame(request))
    const cancel = () => {
      settle()
      call.cancel()
    }
    return {
      cancel,
      expire: () => {
        cancel()
        if (connection.heard === heardBefore) {
          // new calls go on a new connection; the others in flight on this one end by their
          // own deadlines (or answers), and then it closes
          if (this.connection === connection) this.connection = undefined
          connection.session.close()
        }
      }
    }
  }

  /** Closes the connection; calls made afterwards fail at once. */
  close(): void {
    this.closed = true
    if (this.connection?.pinger !== undefined) clearInterval(this.connection.pinger)
    this.connection?.session.destroy()
    this.connection = undefined
  }
}
