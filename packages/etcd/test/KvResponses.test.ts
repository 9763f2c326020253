import { describe, expect, it } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { descriptor } from "../src/internal/wire/proto/descriptor.js"
import {
  decodeDeleteRangeResponse,
  decodePutResponse,
  decodeRangeResponse,
  decodeTxnResponse
} from "../src/internal/wire/proto/kvResponses.js"
import { loaderOptions, methods } from "../src/internal/wire/proto/loader.js"
import { header, keyValue } from "./protoFixtures.js"

// The KV responses are read by hand-written decoders; these check them against the
// generated encoder and decoder on the same messages: the objects must be the same.
const generated = protoLoader.fromJSON(descriptor, loaderOptions)["etcdserverpb.KV"] as grpc.ServiceDefinition
const generatedOf = (name: string) => generated[name] as grpc.MethodDefinition<unknown, unknown>

const same = (name: string, decode: (bytes: Buffer) => unknown, message: unknown) => {
  const bytes = generatedOf(name).responseSerialize(message)
  expect(decode(bytes)).toStrictEqual(generatedOf(name).responseDeserialize(bytes))
}

describe("KV response decoders", () => {
  it("the client's KV methods use them", () => {
    expect(methods.kv.range.responseDeserialize).toBe(decodeRangeResponse)
    expect(methods.kv.put.responseDeserialize).toBe(decodePutResponse)
    expect(methods.kv.deleteRange.responseDeserialize).toBe(decodeDeleteRangeResponse)
    expect(methods.kv.txn.responseDeserialize).toBe(decodeTxnResponse)
  })

  it("Range: headers, kvs, empty and absent fields, int64 of every size", () => {
    same("Range", decodeRangeResponse, {})
    same("Range", decodeRangeResponse, { header: {} })
    same("Range", decodeRangeResponse, {
      header,
      kvs: [
        keyValue("a", "one", "1"),
        keyValue("b", "", "9007199254740991"),
        keyValue("", "x", "9007199254740993"),
        { key: Buffer.from("only-key") },
        { modRevision: "-1", lease: "-9223372036854775808", version: "4294967296" }
      ],
      more: true,
      count: "18446744073709551615"
    })
  })

  it("Put and DeleteRange, with and without previous kvs", () => {
    same("Put", decodePutResponse, {})
    same("Put", decodePutResponse, { header })
    same("Put", decodePutResponse, { header, prevKv: keyValue("k", "v", "5") })
    same("DeleteRange", decodeDeleteRangeResponse, { header, deleted: "0" })
    same("DeleteRange", decodeDeleteRangeResponse, {
      header,
      deleted: "2",
      prevKvs: [keyValue("a", "1", "2"), keyValue("b", "2", "3")]
    })
  })

  it("Txn: every kind of response, nested txns, and a oneof's case named", () => {
    same("Txn", decodeTxnResponse, {})
    same("Txn", decodeTxnResponse, {
      header,
      succeeded: true,
      responses: [
        { responseRange: { header, kvs: [keyValue("a", "1", "7")], count: "1" } },
        { responseRange: {} },
        { responsePut: { header, prevKv: keyValue("a", "0", "6") } },
        { responseDeleteRange: { header, deleted: "1" } },
        {
          responseTxn: {
            header,
            succeeded: false,
            responses: [{ responsePut: { header } }, { responseTxn: {} }]
          }
        },
        {}
      ]
    })
  })

  it("a member's IDs read once are read right on the next response, and other IDs too", () => {
    const other = { ...header, clusterId: "9223372036854775808", memberId: "18446744073709551615" }
    for (const each of [header, other, header, { ...header, revision: "-9223372036854775807" }]) {
      same("Put", decodePutResponse, { header: each })
    }
  })

  it("a truncated response fails to decode", () => {
    const bytes = generatedOf("Range").responseSerialize({ header, kvs: [keyValue("a", "1", "7")] })
    expect(() => decodeRangeResponse(bytes.subarray(0, bytes.length - 3))).toThrow()
  })
})
