import { describe, expect, it } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { prefixLength } from "../src/internal/wire/grpcFrames.js"
import {
  type Answer,
  idLength,
  idVarint,
  readAnswer,
  requestLength,
  setIdParts,
  writeRequest
} from "../src/internal/wire/keepAliveCodec.js"
import { descriptor } from "../src/internal/wire/proto/descriptor.js"
import { loaderOptions } from "../src/internal/wire/proto/loader.js"
import { header } from "./protoFixtures.js"

// The keepalive stream's hand-written messages, checked against the generated codec.
const generated = protoLoader.fromJSON(descriptor, loaderOptions)["etcdserverpb.Lease"] as grpc.ServiceDefinition
const reference = generated.LeaseKeepAlive as grpc.MethodDefinition<unknown, unknown>

const ids = [
  0n,
  1n,
  127n,
  128n,
  2n ** 28n - 1n,
  2n ** 28n,
  2n ** 53n + 1n,
  7587869583648227338n,
  2n ** 63n - 1n,
  -1n,
  -9223372036854775808n
]

const partsOf = (id: bigint) => {
  const varint = idVarint(id)
  const parts = { id0: 0, id1: 0, id2: 0 }
  setIdParts(parts, varint, 0, varint.length)
  return parts
}

const emptyAnswer = (): Answer => ({ idStart: 0, idEnd: 0, id0: 0, id1: 0, id2: 0, ttl: 0 })

describe("keepalive codec", () => {
  it("requests written from an ID's parts, several in one buffer, are what the generated decoder reads", () => {
    const parts = ids.map(partsOf)
    const length = parts.reduce((sum, p) => sum + requestLength(idLength(p)), 0)
    const bytes = Buffer.alloc(length)
    let offset = 0
    for (const p of parts) offset = writeRequest(bytes, offset, p)
    expect(offset).toBe(length)
    const decoded: Array<unknown> = []
    for (let at = 0; at < bytes.length;) {
      expect(bytes[at]).toBe(0)
      const size = bytes.readUInt32BE(at + 1)
      decoded.push(reference.requestDeserialize(bytes.subarray(at + prefixLength, at + prefixLength + size)))
      at += prefixLength + size
    }
    expect(decoded).toStrictEqual(
      ids.map((id) => reference.requestDeserialize(reference.requestSerialize({ ID: String(id) })))
    )
  })

  it("different IDs have different parts", () => {
    const keys = new Set(ids.map((id) => JSON.stringify(partsOf(id))))
    expect(keys.size).toBe(ids.length)
  })

  it("an answer gives its ID's parts (and where its bytes are) and its TTL; a negative TTL reads as -1", () => {
    for (const id of ids) {
      for (const ttl of [0, 1, 6, 2 ** 31, -5]) {
        const bytes = reference.responseSerialize({ header, ID: String(id), TTL: String(ttl) })
        const answer = emptyAnswer()
        readAnswer(bytes, answer)
        expect({ id0: answer.id0, id1: answer.id1, id2: answer.id2 }).toStrictEqual(partsOf(id))
        expect(bytes.subarray(answer.idStart, answer.idEnd)).toStrictEqual(idVarint(id))
        expect(answer.ttl).toBe(ttl < 0 ? -1 : ttl)
      }
    }
  })

  it("a record read again holds only the new answer", () => {
    const answer = emptyAnswer()
    readAnswer(reference.responseSerialize({ header, ID: "42", TTL: "6" }), answer)
    readAnswer(reference.responseSerialize({ header }), answer)
    expect(answer).toStrictEqual(emptyAnswer())
  })
})
