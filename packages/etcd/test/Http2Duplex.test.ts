import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as http2 from "node:http2"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { fromGrpc, neverSent } from "../src/internal/transport/grpcError.js"
import * as Http2Duplex from "../src/internal/transport/http2Duplex.js"
import { MemberConnection } from "../src/internal/transport/http2Unary.js"
import { frame, FrameReader } from "../src/internal/wire/grpcFrames.js"

// The keepalive stream's own gRPC call over node:http2, against a plain HTTP/2 server on
// loopback that answers as a gRPC server would, in each of the ways a call can end (a real
// etcd only ends it when a member fails, which the Lease and Cluster tests cover).

interface Outcome {
  readonly messages: Array<string>
  readonly end: "ok" | Http2Duplex.StreamStatusError
}

/** What the server saw of the last call: its headers and the messages it read. */
const seen: { headers?: http2.IncomingHttpHeaders; messages: Array<string>; closed: boolean } = {
  messages: [],
  closed: false
}

let server: http2.Http2Server
const sessions = new Set<http2.ServerHttp2Session>()
let origin = ""

beforeAll(async () => {
  server = http2.createServer()
  server.on("session", (session) => sessions.add(session))
  server.on("stream", (stream, headers) => {
    seen.headers = headers
    seen.messages = []
    seen.closed = false
    stream.on("close", () => {
      seen.closed = true
    })
    const answer = (text: string) => frame(Buffer.from(text))
    switch (headers[":path"]) {
      case "/test/Echo": {
        // answers each message, the first two in one DATA frame, then fails the call
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
        const reader = new FrameReader((message) => {
          seen.messages.push(message.toString())
          if (seen.messages.length === 3) {
            stream.write(Buffer.concat([answer("one"), answer("two")]))
            // the third split across two DATA frames
            const third = answer("three")
            stream.write(third.subarray(0, 3))
            stream.end(third.subarray(3))
          }
        })
        stream.on("data", (chunk: Buffer) => reader.push(chunk))
        stream.on(
          "wantTrailers",
          () => stream.sendTrailers({ "grpc-status": "14", "grpc-message": "etcdserver:%20no%20leader" })
        )
        break
      }
      case "/test/TrailersOnly":
        stream.respond({
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "16",
          "grpc-message": "etcdserver: invalid auth token"
        }, { endStream: true })
        break
      case "/test/Ok":
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
        stream.end(answer("done"))
        break
      case "/test/Unary": {
        // answers the one message with its text upper-cased, once the request has ended
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
        const texts: Array<string> = []
        const reader = new FrameReader((message) => texts.push(message.toString()))
        stream.on("data", (chunk: Buffer) => reader.push(chunk))
        stream.on("end", () => stream.end(answer(texts.join("").toUpperCase())))
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
        break
      }
      case "/test/Empty":
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0" }, { endStream: true })
        break
      case "/test/Hang":
        // a member that took the call and never answers it
        stream.respond({ ":status": 200, "content-type": "application/grpc" })
        break
      case "/test/Hold":
        stream.respond({ ":status": 200, "content-type": "application/grpc" })
        break
      default:
        stream.respond({ ":status": 404 }, { endStream: true })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  // whatever connection a failed test left open
  sessions.forEach((session) => session.destroy())
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const call = (
  path: string,
  options: { readonly origin?: string; readonly requests?: ReadonlyArray<string> } = {}
): Promise<Outcome> =>
  new Promise((resolve) => {
    const messages: Array<string> = []
    const duplex = Http2Duplex.open({
      origin: options.origin ?? origin,
      path,
      headers: { token: "the-token", hasleader: "true" },
      onMessage: (message) => messages.push(message.toString()),
      onError: (error) => resolve({ messages, end: error }),
      onEnd: () => resolve({ messages, end: "ok" })
    })
    const requests = options.requests ?? []
    // all of them in one write, as the keepalive hub sends a tick's requests
    if (requests.length > 0) duplex.write(Buffer.concat(requests.map((text) => frame(Buffer.from(text)))))
  })

const context = { method: "/test/Echo", endpoint: "http://127.0.0.1:1", endpoints: [], timeout: 1_000 as never }

describe("Http2Duplex", () => {
  it("sends gRPC's headers and the metadata, reads each message, and ends with the trailers' status", async () => {
    const outcome = await call("/test/Echo", { requests: ["a", "b", "c"] })
    expect(seen.headers?.["content-type"]).toBe("application/grpc")
    expect(seen.headers?.te).toBe("trailers")
    expect(seen.headers?.token).toBe("the-token")
    expect(seen.headers?.hasleader).toBe("true")
    expect(seen.messages).toEqual(["a", "b", "c"])
    expect(outcome.messages).toEqual(["one", "two", "three"])
    expect(outcome.end).toBeInstanceOf(Http2Duplex.StreamStatusError)
    const error = outcome.end as Http2Duplex.StreamStatusError
    expect([error.code, error.details]).toEqual([14, "etcdserver: no leader"])
    // mapped as a grpc-js error with the same status would be
    expect(fromGrpc(error, context)._tag).toBe("NoLeader")
  })

  it("reads the status of a trailers-only answer from its headers", async () => {
    const outcome = await call("/test/TrailersOnly")
    expect(outcome.messages).toEqual([])
    expect(fromGrpc(outcome.end, context)._tag).toBe("InvalidAuthToken")
  })

  it("an answer ending with status OK ends the call without an error", async () => {
    const outcome = await call("/test/Ok")
    expect(outcome).toEqual({ messages: ["done"], end: "ok" })
  })

  it("an answer that is not gRPC fails with the status its HTTP code maps to", async () => {
    const outcome = await call("/test/Missing")
    expect((outcome.end as Http2Duplex.StreamStatusError).code).toBe(12)
  })

  it("a refused connection fails as UNAVAILABLE, known as never sent", async () => {
    const closed = http2.createServer()
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const outcome = await call("/test/Echo", { origin: `http://127.0.0.1:${port}` })
    const error = fromGrpc(outcome.end, context)
    expect(error._tag).toBe("Unavailable")
    expect(neverSent(error)).toBe(true)
  })

  it("a call on a connection that goes silent fails by its keepalive PINGs, not never", async () => {
    // a member that accepts the connection and then says nothing at all, as one stopped with
    // SIGSTOP does: the kernel completes the TCP handshake, no HTTP/2 frame ever comes back
    const sockets = new Set<net.Socket>()
    const silent = net.createServer((socket) => sockets.add(socket))
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    try {
      const outcome = await new Promise<Outcome>((resolve) => {
        const duplex = Http2Duplex.open({
          origin: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
          path: "/test/Echo",
          headers: {},
          keepAlive: { intervalMs: 50, timeoutMs: 100 },
          onMessage: () => {},
          onError: (error) => resolve({ messages: [], end: error }),
          onEnd: () => resolve({ messages: [], end: "ok" })
        })
        duplex.write(frame(Buffer.from("x")))
      })
      const error = outcome.end as Http2Duplex.StreamStatusError
      expect([error.code, error.details]).toEqual([14, "no answer to a keepalive ping within 100 ms"])
      // the connection was made, so what was written may have arrived
      expect(neverSent(fromGrpc(error, context))).toBe(false)
      expect(sockets.size).toBe(1)
    } finally {
      sockets.forEach((socket) => socket.destroy())
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  })

  it("cancel ends the call on the server, and no callback runs afterwards", async () => {
    let called = false
    const duplex = Http2Duplex.open({
      origin,
      path: "/test/Hold",
      headers: {},
      onMessage: () => {
        called = true
      },
      onError: () => {
        called = true
      },
      onEnd: () => {
        called = true
      }
    })
    duplex.write(frame(Buffer.from("x")))
    // wait until the server has the call, then cancel it
    while (seen.headers?.[":path"] !== "/test/Hold") await new Promise((resolve) => setTimeout(resolve, 10))
    duplex.cancel()
    while (!seen.closed) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(called).toBe(false)
  })
})

/** One unary call on `connection`: the answer's text, or the error. */
const unary = (connection: MemberConnection, path: string, request: string) =>
  new Promise<string | Http2Duplex.StreamStatusError>((resolve) => {
    connection.unary(path, { token: "t" }, undefined, 1_500, Buffer.from(request), (error, response) => {
      resolve(error ?? response!.toString())
    })
  })

describe("grpcTimeout", () => {
  it("is at most 8 digits and a unit: milliseconds, then seconds, then hours; never 0", () => {
    expect([0.2, 1_500, 99_999_999, 100_000_000, 1e12].map(Http2Duplex.grpcTimeout))
      .toEqual(["1m", "1500m", "99999999m", "100000S", "277778H"])
  })
})

describe("MemberConnection (unary calls over node:http2)", () => {
  it("sends the request framed and ended, and gives back the answer's one message", async () => {
    const connection = new MemberConnection(origin, undefined)
    expect(await unary(connection, "/test/Unary", "revoke")).toBe("REVOKE")
    expect(seen.headers?.token).toBe("t")
    // the server is told how long the caller waits
    expect(seen.headers?.["grpc-timeout"]).toBe("1500m")
    // calls one after another share the connection
    expect(await unary(connection, "/test/Unary", "again")).toBe("AGAIN")
    connection.close()
  })

  it("many calls at once on the one connection each get their own answer", async () => {
    const connection = new MemberConnection(origin, undefined)
    const texts = Array.from({ length: 200 }, (_, i) => `call ${i}`)
    const answers = await Promise.all(texts.map((text) => unary(connection, "/test/Unary", text)))
    expect(answers).toEqual(texts.map((text) => text.toUpperCase()))
    connection.close()
  })

  it("an error status fails the call with it; status OK without a message is an error too", async () => {
    const connection = new MemberConnection(origin, undefined)
    const refused = await unary(connection, "/test/TrailersOnly", "x")
    expect(fromGrpc(refused, context)._tag).toBe("InvalidAuthToken")
    const empty = await unary(connection, "/test/Empty", "x")
    expect((empty as Http2Duplex.StreamStatusError).code).toBe(13)
    connection.close()
  })

  it("a call to a member that is not there fails as never sent; the next call tries again", async () => {
    const closed = http2.createServer()
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const connection = new MemberConnection(`http://127.0.0.1:${port}`, undefined)
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = fromGrpc(await unary(connection, "/test/Unary", "x"), context)
      expect(error._tag).toBe("Unavailable")
      expect(neverSent(error)).toBe(true)
    }
    connection.close()
  })

  it("a call whose deadline passed with nothing heard drops the connection: the next call makes another", async () => {
    const connection = new MemberConnection(origin, undefined)
    expect(await unary(connection, "/test/Unary", "first")).toBe("FIRST")
    const before = sessions.size
    let called = false
    const call = connection.unary("/test/Hang", {}, undefined, 1_500, Buffer.from("x"), () => {
      called = true
    })
    while (seen.headers?.[":path"] !== "/test/Hang") await new Promise((resolve) => setTimeout(resolve, 10))
    call.expire()
    expect(await unary(connection, "/test/Unary", "second")).toBe("SECOND")
    expect(sessions.size).toBe(before + 1)
    expect(called).toBe(false)
    connection.close()
  })

  it("a call cancelled in flight calls back never; close ends the connection and fails later calls", async () => {
    const connection = new MemberConnection(origin, undefined)
    let called = false
    const call = connection.unary("/test/Hang", {}, undefined, 1_500, Buffer.from("x"), () => {
      called = true
    })
    while (seen.headers?.[":path"] !== "/test/Hang") await new Promise((resolve) => setTimeout(resolve, 10))
    call.cancel()
    while (!seen.closed) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(called).toBe(false)
    connection.close()
    const error = await unary(connection, "/test/Unary", "x")
    expect((error as Http2Duplex.StreamStatusError).code).toBe(1)
  })
})
