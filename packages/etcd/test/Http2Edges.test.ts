/**
 * The gRPC-over-HTTP/2 edges of the transport, against stub servers (`http2Stub.ts`) that
 * answer as each case needs: refused streams, a GOAWAY with a low last-stream-id, reset
 * streams, dropped connections, two answers to a unary call, oversized answers, a GOAWAY
 * for too many pings, a member that goes silent.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { Etcd, EtcdError, Kv } from "effect-etcd"
import * as http2 from "node:http2"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { fromGrpc, neverSent } from "../src/internal/transport/grpcError.js"
import * as Http2Duplex from "../src/internal/transport/http2Duplex.js"
import { MemberConnection } from "../src/internal/transport/http2Unary.js"
import * as Stub from "./http2Stub.js"

const stubs: Array<Stub.Stub> = []
const stub = async (handle: Stub.Handler): Promise<Stub.Stub> => {
  const started = await Stub.start(handle)
  stubs.push(started)
  return started
}
afterEach(async () => {
  await Promise.all(stubs.splice(0).map((stub) => stub.close()))
})

const context = { method: "/test/Call", endpoint: "http://127.0.0.1:1", endpoints: [], timeout: 1_000 as never }

/** One unary call on `connection`: the answer, or the error. */
const unary = (connection: MemberConnection, request = "x", path = "/test/Call") =>
  new Promise<Buffer | Http2Duplex.StreamStatusError>((resolve) => {
    connection.unary(path, {}, undefined, 30_000, Buffer.from(request), (error, response) => {
      resolve(error ?? response!)
    })
  })

const failure = (outcome: Buffer | Http2Duplex.StreamStatusError): Http2Duplex.StreamStatusError => {
  expect(outcome).toBeInstanceOf(Http2Duplex.StreamStatusError)
  return outcome as Http2Duplex.StreamStatusError
}

describe("a call the server never processed", () => {
  it("a stream refused (RST_STREAM REFUSED_STREAM) is UNAVAILABLE and known as never sent", async () => {
    const server = await stub((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM))
    const connection = new MemberConnection(server.origin, undefined)
    const error = failure(await unary(connection))
    expect([error.code, error.rstCode, error.unprocessed]).toEqual([14, 7, true])
    expect(error.details).toContain("REFUSED_STREAM")
    const mapped = fromGrpc(error, context)
    expect(mapped._tag).toBe("Unavailable")
    expect(neverSent(mapped)).toBe(true)
    connection.close()
  })

  it("a stream above the last-stream-id of the server's GOAWAY is known as never sent", async () => {
    // two calls: the server takes the first (stream 1) and, on seeing the second (stream 3),
    // says it goes away after stream 1, as a member shutting down does
    const server = await stub((stream) => {
      if (stream.id === 3) stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, 1)
      else setImmediate(() => Stub.answer(stream, [Buffer.from("first")]))
    })
    const connection = new MemberConnection(server.origin, undefined)
    const [first, second] = await Promise.all([unary(connection), unary(connection)])
    expect(first.toString()).toBe("first")
    const error = failure(second)
    expect([error.code, error.unprocessed]).toEqual([14, true])
    expect(neverSent(fromGrpc(error, context))).toBe(true)
    connection.close()
  })

  it("a stream reset with another code after the request was read is not: it broke, and may have run", async () => {
    const codes = [
      http2.constants.NGHTTP2_INTERNAL_ERROR,
      http2.constants.NGHTTP2_CANCEL,
      http2.constants.NGHTTP2_PROTOCOL_ERROR,
      http2.constants.NGHTTP2_ENHANCE_YOUR_CALM
    ]
    const server = await stub((stream, headers, request) => {
      void request.then(() => stream.close(Number(String(headers[":path"]).slice("/test/".length))))
    })
    const connection = new MemberConnection(server.origin, undefined)
    const errors = []
    for (const code of codes) errors.push(failure(await unary(connection, "x", `/test/${code}`)))
    // the status grpc-js gives each code, and the code itself in the text
    expect(errors.map((error) => [error.code, error.rstCode, error.unprocessed])).toEqual([
      [13, 2, false],
      [1, 8, false],
      [13, 1, false],
      [8, 11, false]
    ])
    expect(errors.map((error) => error.details)).toEqual([
      "the server reset the stream (INTERNAL_ERROR)",
      "the server reset the stream (CANCEL)",
      "the server reset the stream (PROTOCOL_ERROR)",
      "the server reset the stream (ENHANCE_YOUR_CALM)"
    ])
    // to the client, a broken call: transient (a read goes elsewhere), never "never sent"
    for (const error of errors) {
      const mapped = fromGrpc(error, context)
      expect(mapped._tag).toBe("Unavailable")
      expect(neverSent(mapped)).toBe(false)
    }
    connection.close()
  })

  it("maps every HTTP/2 code to a gRPC status as grpc-js does", () => {
    const codes = Array.from({ length: 14 }, (_, code) => Http2Duplex.codeOfRst(code))
    expect(codes).toEqual([13, 13, 13, 13, 13, 13, 13, 14, 1, 13, 13, 8, 7, 13])
  })

  it("an answer that ends without grpc-status is INTERNAL, and the call broke", async () => {
    const server = await stub((stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" })
      stream.end()
    })
    const connection = new MemberConnection(server.origin, undefined)
    const error = failure(await unary(connection))
    expect([error.code, error.details]).toEqual([13, "the call ended without a gRPC status"])
    expect(fromGrpc(error, context)._tag).toBe("Unavailable")
    connection.close()
  })

  it("a connection dropped after the request was read may have run it: not never sent", async () => {
    const server = await stub((stream, _headers, request) => {
      void request.then(() => stream.session?.destroy())
    })
    const connection = new MemberConnection(server.origin, undefined)
    const error = failure(await unary(connection))
    expect([error.code, error.unprocessed]).toEqual([14, false])
    const mapped = fromGrpc(error, context)
    expect(mapped._tag).toBe("Unavailable")
    expect(neverSent(mapped)).toBe(false)
    connection.close()
  })
})

describe("through the client: a write never processed is sent again; one that may have run is ambiguous", () => {
  /**
   * Two members: `first` handles Put and Range as the test says, `second` answers every
   * call with an empty message (a valid answer of any etcd method). Both answer the
   * client's probe, `first` before `second`, so that calls go to `first` first.
   */
  const twoMembers = async (first: (stream: http2.ServerHttp2Stream, request: Promise<Buffer>) => void) => {
    let firstProbed: () => void = () => {}
    const probed = new Promise<void>((resolve) => {
      firstProbed = resolve
    })
    const a = await stub((stream, headers, request) => {
      if (String(headers[":path"]).endsWith("/Status")) {
        Stub.answer(stream, [new Uint8Array(0)])
        return firstProbed()
      }
      first(stream, request)
    })
    const b = await stub((stream, headers, request) => {
      void request.then(async () => {
        if (String(headers[":path"]).endsWith("/Status")) await probed
        Stub.answer(stream, [new Uint8Array(0)])
      })
    })
    return { a, b, endpoints: [a.origin, b.origin] }
  }
  const client = (endpoints: ReadonlyArray<string>) =>
    Etcd.make({ endpoints, readBatching: false, requestTimeout: "5 seconds" })

  it.live("a put refused by the member in use is sent again to another member, and succeeds", () =>
    Effect.gen(function*() {
      const { a, b, endpoints } = yield* Effect.promise(() =>
        twoMembers((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM))
      )
      const etcd = yield* client(endpoints)
      const put = yield* Effect.either(Kv.put("k", "v").pipe(Effect.provideService(Etcd.Etcd, etcd)))
      expect(Either.isRight(put)).toBe(true)
      expect(a.calls.filter((path) => path.endsWith("/Put"))).toHaveLength(1)
      expect(b.calls.filter((path) => path.endsWith("/Put"))).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("a connection dropped after the request was written: a put is AmbiguousOutcome, a get goes to another member", () =>
    Effect.gen(function*() {
      const { a, b, endpoints } = yield* Effect.promise(() =>
        twoMembers((stream, request) => {
          void request.then(() => stream.session?.destroy())
        })
      )
      const etcd = yield* client(endpoints)
      const put = yield* Effect.flip(Kv.put("k", "v").pipe(Effect.provideService(Etcd.Etcd, etcd)))
      expect(put._tag).toBe("AmbiguousOutcome")
      expect(a.calls.filter((path) => path.endsWith("/Put"))).toHaveLength(1)
      expect(b.calls.filter((path) => path.endsWith("/Put"))).toHaveLength(0)
      // the put moved the client off the member; a get on it goes back to it, breaks the
      // same way, and is retried on the other member, where it succeeds
      const etcdAgain = yield* client([a.origin, b.origin])
      const got = yield* Kv.get("k").pipe(Effect.provideService(Etcd.Etcd, etcdAgain))
      expect(got).toEqual(Option.none())
      expect(a.calls.filter((path) => path.endsWith("/Range"))).toHaveLength(1)
      expect(b.calls.filter((path) => path.endsWith("/Range"))).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("a stream reset (INTERNAL_ERROR) after the request was read: a put is AmbiguousOutcome, a get goes elsewhere", () =>
    Effect.gen(function*() {
      const { a, b, endpoints } = yield* Effect.promise(() =>
        twoMembers((stream, request) => {
          void request.then(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR))
        })
      )
      const put = yield* Effect.flip(
        Kv.put("k", "v").pipe(Effect.provideServiceEffect(Etcd.Etcd, client(endpoints)))
      )
      expect(put._tag).toBe("AmbiguousOutcome")
      const got = yield* Kv.get("k").pipe(Effect.provideServiceEffect(Etcd.Etcd, client(endpoints)))
      expect(got).toEqual(Option.none())
      expect(a.calls.filter((path) => path.endsWith("/Range"))).toHaveLength(1)
      expect(b.calls.filter((path) => path.endsWith("/Range"))).toHaveLength(1)
    }).pipe(Effect.scoped))
})

describe("etcd's errors through its gRPC proxy (as UNKNOWN)", () => {
  it.live("a put answered \"leader changed\" is AmbiguousOutcome, never a definite failure", () =>
    Effect.gen(function*() {
      const server = yield* Effect.promise(() =>
        stub((stream, headers) =>
          String(headers[":path"]).endsWith("/Status")
            ? Stub.answer(stream, [new Uint8Array(0)])
            : Stub.answer(stream, [], 2, "etcdserver: leader changed")
        )
      )
      const etcd = yield* Etcd.make({ endpoints: [server.origin], readBatching: false, requestTimeout: "2 seconds" })
      const put = yield* Effect.flip(Kv.put("k", "v").pipe(Effect.provideService(Etcd.Etcd, etcd)))
      expect(put._tag).toBe("AmbiguousOutcome")
      expect(put._tag === "AmbiguousOutcome" && put.cause._tag).toBe("NoLeader")
    }).pipe(Effect.scoped))
})

describe("protocol strictness", () => {
  it("a unary answer with a second message fails the call, as grpc-js does", async () => {
    const server = await stub((stream) => Stub.answer(stream, [Buffer.from("one"), Buffer.from("two")]))
    const connection = new MemberConnection(server.origin, undefined)
    const error = failure(await unary(connection))
    expect([error.code, error.details]).toEqual([12, "Too many responses received"])
    connection.close()
  })
})

describe("large answers", () => {
  it("an answer of 70 MiB is received under the default limit", async () => {
    const big = Buffer.alloc(70 * 1024 * 1024, 0x61)
    const server = await stub((stream) => Stub.answer(stream, [big]))
    const connection = new MemberConnection(server.origin, undefined)
    const answer = await unary(connection)
    expect(Buffer.isBuffer(answer) && answer.length).toBe(big.length)
    connection.close()
  })

  it("an answer over a configured limit fails with ResponseTooLarge, which says the limit", async () => {
    const server = await stub((stream) => Stub.answer(stream, [Buffer.alloc(2048)]))
    const connection = new MemberConnection(server.origin, undefined, { maxReceiveBytes: 1024 })
    const error = failure(await unary(connection))
    expect(error.code).toBe(8)
    const mapped = fromGrpc(error, context)
    expect(mapped).toBeInstanceOf(EtcdError.ResponseTooLarge)
    expect(mapped).toMatchObject({ limit: 1024, size: 2048 })
    expect(mapped.message).toContain("1024")
    connection.close()
  })

  it("the client's maxReceiveMessageBytes sets the limit", () =>
    Effect.gen(function*() {
      const server = yield* Effect.promise(() =>
        stub((stream, headers) =>
          Stub.answer(stream, [String(headers[":path"]).endsWith("/Status") ? new Uint8Array(0) : Buffer.alloc(4096)])
        )
      )
      const etcd = yield* Etcd.make({ endpoints: [server.origin], maxReceiveMessageBytes: 1024, readBatching: false })
      const error = yield* Effect.flip(Kv.get("k").pipe(Effect.provideService(Etcd.Etcd, etcd)))
      expect(error._tag).toBe("ResponseTooLarge")
      expect(error).toMatchObject({ limit: 1024, size: 4096 })
    }).pipe(Effect.scoped, Effect.runPromise))

  it("answers that announce a large size and send little do not hold that size in memory", async () => {
    const announced = 60 * 1024 * 1024
    let delivered = 0
    let allDelivered: () => void = () => {}
    const calls = 8
    const done = new Promise<void>((resolve) => {
      allDelivered = resolve
    })
    const server = await stub((stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" })
      const prefix = Buffer.alloc(5)
      prefix.writeUInt32BE(announced, 1)
      stream.write(Buffer.concat([prefix, Buffer.alloc(10)]))
      // the client has read the prefix and the bytes once it answers a PING sent after them
      void Stub.flushed(stream.session!).then(() => {
        if (++delivered === calls) allDelivered()
      })
    })
    const connection = new MemberConnection(server.origin, undefined)
    const before = process.memoryUsage().arrayBuffers
    for (let i = 0; i < calls; i++) void unary(connection)
    await done
    const grown = process.memoryUsage().arrayBuffers - before
    // eight answers announcing 60 MiB each: far less than one of them is held
    expect(grown).toBeLessThan(announced / 2)
    connection.close()
  })
})

describe("keepalive", () => {
  it("a GOAWAY for too many pings doubles the member's ping interval", async () => {
    const server = await stub((stream) => {
      stream.session?.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"))
    })
    const keepAlive: Http2Duplex.KeepAlive = { intervalMs: 1_000, timeoutMs: 1_000 }
    const connection = new MemberConnection(server.origin, undefined, { keepAlive })
    const error = failure(await unary(connection))
    expect(error.code).toBe(14)
    expect(keepAlive.intervalMs).toBe(2_000)
    // and again on the next connection that is closed that way
    failure(await unary(connection))
    expect(keepAlive.intervalMs).toBe(4_000)
    connection.close()
  })

  it("the stream of its own connection backs off too", async () => {
    const server = await stub((stream) => {
      stream.session?.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"))
    })
    const keepAlive: Http2Duplex.KeepAlive = { intervalMs: 5_000, timeoutMs: 1_000 }
    await new Promise<void>((resolve) => {
      Http2Duplex.open({
        origin: server.origin,
        path: "/test/Watch",
        headers: {},
        keepAlive,
        onMessage: () => {},
        onError: () => resolve(),
        onEnd: () => resolve()
      }).write(Buffer.from([0, 0, 0, 0, 0]))
    })
    expect(keepAlive.intervalMs).toBe(10_000)
  })

  it("a unary call on a member that goes silent fails by the keepalive PINGs, not only by its deadline", async () => {
    // a member that accepts the connection and then says nothing at all (SIGSTOP)
    const sockets = new Set<net.Socket>()
    const silent = net.createServer((socket) => sockets.add(socket))
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    try {
      const connection = new MemberConnection(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, undefined, {
        keepAlive: { intervalMs: 50, timeoutMs: 100 }
      })
      // the call's own deadline (30 s) is the test's limit: only the PINGs can end it first
      const error = failure(await unary(connection))
      expect([error.code, error.details]).toEqual([14, "no answer to a keepalive ping within 100 ms"])
      // the request was written: its outcome is open
      expect(neverSent(fromGrpc(error, context))).toBe(false)
      connection.close()
    } finally {
      sockets.forEach((socket) => socket.destroy())
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  })

  it("a member connection is pinged while calls are in flight, and not while idle", async () => {
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let pinged: () => void = () => {}
    const firstPing = new Promise<void>((resolve) => {
      pinged = resolve
    })
    const server = await stub((stream) => {
      stream.session?.once("ping", () => pinged())
      void held.then(() => Stub.answer(stream, [Buffer.from("done")]))
    })
    const connection = new MemberConnection(server.origin, undefined, {
      keepAlive: { intervalMs: 20, timeoutMs: 5_000 }
    })
    const call = unary(connection)
    await firstPing
    release()
    expect(Buffer.isBuffer(await call)).toBe(true)
    const afterCall = server.pings()
    // idle for twenty intervals: no PING (etcd would count each as a strike)
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(server.pings() - afterCall).toBeLessThanOrEqual(1)
    connection.close()
  })
})
