import { describe, expect, it } from "@effect/vitest"
import {
  decodeGrpcMessage,
  defaultMaxReceiveBytes,
  frame,
  FrameError,
  FrameReader,
  FrameTooLarge
} from "../src/internal/wire/grpcFrames.js"

// gRPC's length-prefixed messages, as the keepalive stream reads them from raw DATA chunks.
const messages = [Buffer.from([0x08, 0x01]), Buffer.alloc(0), Buffer.from("a longer message, split anywhere")]
const wire = Buffer.concat(messages.map(frame))

const read = (chunks: ReadonlyArray<Buffer>): Array<string> => {
  const got: Array<string> = []
  const reader = new FrameReader((message) => got.push(message.toString("hex")))
  for (const chunk of chunks) reader.push(chunk)
  expect(reader.pending).toBe(false)
  return got
}
const expected = messages.map((message) => message.toString("hex"))

describe("gRPC frames", () => {
  it("a frame is the flag 0, the length big-endian, then the message", () => {
    expect([...frame(Buffer.from([0x08, 0x2a]))]).toEqual([0, 0, 0, 0, 2, 0x08, 0x2a])
  })

  it("several messages in one chunk are all read, in order", () => {
    expect(read([wire])).toEqual(expected)
  })

  it("messages split at every possible point across two chunks are read whole", () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      expect(read([wire.subarray(0, cut), wire.subarray(cut)])).toEqual(expected)
    }
  })

  it("messages arriving a byte at a time are read whole", () => {
    expect(read(Array.from(wire, (byte) => Buffer.from([byte])))).toEqual(expected)
  })

  it("a message held across chunks is not changed when the chunks' memory is reused", () => {
    const got: Array<string> = []
    const reader = new FrameReader((message) => got.push(message.toString("hex")))
    const framed = frame(Buffer.from("abcdef"))
    const chunk = Buffer.from(framed.subarray(0, 7))
    reader.push(chunk)
    chunk.fill(0xff)
    reader.push(framed.subarray(7))
    expect(got).toEqual([Buffer.from("abcdef").toString("hex")])
  })

  it("a message split across chunks comes in a buffer of its own; one within a chunk as a view of it", () => {
    const got: Array<{ readonly message: Buffer; readonly owned: boolean }> = []
    const reader = new FrameReader((message, owned) => got.push({ message, owned }))
    const split = frame(Buffer.from("split across three chunks"))
    const whole = frame(Buffer.from("whole"))
    const chunks = [split.subarray(0, 3), split.subarray(3, 12), Buffer.concat([split.subarray(12), whole])]
      .map((chunk) => Buffer.from(chunk))
    for (const chunk of chunks) reader.push(chunk)
    expect(got.map(({ message, owned }) => [message.toString(), owned])).toEqual([
      ["split across three chunks", true],
      ["whole", false]
    ])
    // the owned one is in memory of its own: reusing the chunks changes only the view
    for (const chunk of chunks) chunk.fill(0x2e)
    expect(got.map(({ message }) => message.toString())).toEqual(["split across three chunks", "....."])
  })

  it("a partial message is reported pending until its rest comes", () => {
    const reader = new FrameReader(() => {})
    reader.push(wire.subarray(0, 3))
    expect(reader.pending).toBe(true)
    reader.push(wire.subarray(3))
    expect(reader.pending).toBe(false)
  })

  it("a compressed message, never asked for, is an error", () => {
    const compressed = Buffer.from([1, 0, 0, 0, 1, 0x08])
    expect(() => new FrameReader(() => {}).push(compressed)).toThrow(FrameError)
  })

  it("a message over the limit is an error before it is gathered, in grpc-js's words", () => {
    const reader = new FrameReader(() => {}, 16)
    expect(() => reader.push(Buffer.from([0, 0, 0, 0, 17]))).toThrow(FrameTooLarge)
    expect(() => new FrameReader(() => {}, 16).push(Buffer.from([0, 0, 0, 0, 17])))
      .toThrow("Received message larger than max (17 vs 16)")
  })

  it("the default limit is Go clientv3's: 2 GiB - 1 (a 70 MiB answer is not over it)", () => {
    expect(defaultMaxReceiveBytes).toBe(2 ** 31 - 1)
    const reader = new FrameReader(() => {})
    // a prefix announcing 70 MiB is taken, not refused
    expect(() => reader.push(Buffer.from([0, 0x04, 0x60, 0, 0]))).not.toThrow()
    expect(reader.pending).toBe(true)
  })

  it("memory follows the bytes received, not the length a prefix announces", () => {
    const reader = new FrameReader(() => {})
    const announced = 64 * 1024 * 1024
    const prefix = Buffer.alloc(5)
    prefix.writeUInt32BE(announced, 1)
    // the prefix and a few bytes, in one chunk and then alone
    reader.push(Buffer.concat([prefix, Buffer.alloc(10)]))
    expect(reader.pending).toBe(true)
    expect(reader.reserved).toBeLessThan(1024 * 1024)
    const alone = new FrameReader(() => {})
    alone.push(prefix)
    alone.push(Buffer.alloc(10))
    expect(alone.reserved).toBeLessThan(1024 * 1024)
    // a MiB more: the buffer grows with it, at most twice what came
    reader.push(Buffer.alloc(1024 * 1024))
    expect(reader.reserved).toBeGreaterThanOrEqual(1024 * 1024 + 10)
    expect(reader.reserved).toBeLessThanOrEqual(2 * (1024 * 1024 + 10))
  })

  it("a large message arriving in many chunks is read whole, in one buffer of its exact length", () => {
    const got: Array<{ readonly message: Buffer; readonly owned: boolean }> = []
    const reader = new FrameReader((message, owned) => got.push({ message, owned }))
    const message = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < message.length; i++) message[i] = i % 251
    const framed = Buffer.concat([frame(message), frame(Buffer.from("next"))])
    for (let at = 0; at < framed.length; at += 16 * 1024 + 3) reader.push(framed.subarray(at, at + 16 * 1024 + 3))
    expect(got.map(({ message }) => message.length)).toEqual([message.length, 4])
    expect(got[0].message.equals(message)).toBe(true)
    expect(got[0].owned).toBe(true)
    expect(got[1].message.toString()).toBe("next")
    expect(reader.pending).toBe(false)
    expect(reader.reserved).toBe(0)
  })

  it("grpc-message text is percent-decoded; text that is not valid encoding is kept", () => {
    expect(decodeGrpcMessage("etcdserver:%20no%20leader")).toBe("etcdserver: no leader")
    expect(decodeGrpcMessage("100%")).toBe("100%")
    expect(decodeGrpcMessage(undefined)).toBe("")
  })
})
