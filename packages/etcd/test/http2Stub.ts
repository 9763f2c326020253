/**
 * A small HTTP/2 server on loopback that answers gRPC calls as a test needs: refused or
 * reset streams, a GOAWAY, two messages, oversized frames, a dropped connection. Each
 * test gives its own `handle`; the helpers below write gRPC's answers.
 */
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import { frame } from "../src/internal/wire/grpcFrames.js"

/** A running stub server. */
export interface Stub {
  /** `http://127.0.0.1:port`. */
  readonly origin: string
  /** The paths of the calls it got, in order. */
  readonly calls: Array<string>
  /** Every connection made to it. */
  readonly sessions: Set<http2.ServerHttp2Session>
  /** How many PINGs it got. */
  readonly pings: () => number
  /** Ends every connection and stops listening. */
  readonly close: () => Promise<void>
}

/** What the stub does with one call: `request` is the call's whole body once it ended. */
export type Handler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  request: Promise<Buffer>
) => void

/** Starts a stub that handles every call with `handle`. */
export const start = async (handle: Handler): Promise<Stub> => {
  const server = http2.createServer()
  const sessions = new Set<http2.ServerHttp2Session>()
  const calls: Array<string> = []
  let pings = 0
  server.on("session", (session) => {
    sessions.add(session)
    session.on("ping", () => pings++)
    session.on("error", () => {})
  })
  server.on("stream", (stream, headers) => {
    calls.push(String(headers[":path"]))
    stream.on("error", () => {})
    const chunks: Array<Buffer> = []
    const request = new Promise<Buffer>((resolve) => {
      stream.on("data", (chunk: Buffer) => chunks.push(chunk))
      stream.on("end", () => resolve(Buffer.concat(chunks)))
    })
    handle(stream, headers, request)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    sessions,
    pings: () => pings,
    close: () =>
      new Promise<void>((resolve) => {
        sessions.forEach((session) => session.destroy())
        server.close(() => resolve())
      })
  }
}

/** Answers with `messages` (each framed) and then the status `code` (0: OK). */
export const answer = (
  stream: http2.ServerHttp2Stream,
  messages: ReadonlyArray<Uint8Array>,
  code = 0,
  details?: string
): void => {
  if (stream.destroyed) return
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
  stream.on("wantTrailers", () =>
    stream.sendTrailers({
      "grpc-status": String(code),
      ...(details === undefined ? {} : { "grpc-message": encodeURIComponent(details) })
    }))
  stream.end(Buffer.concat(messages.map((message) => frame(message))))
}

/** Resolves once the client has read everything sent before on `session`: its answer to a PING comes after. */
export const flushed = (session: http2.Http2Session): Promise<void> =>
  new Promise((resolve, reject) => {
    session.ping((error) => (error === null ? resolve() : reject(error)))
  })
