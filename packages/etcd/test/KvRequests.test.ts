import { describe, expect, it } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { descriptor } from "../src/internal/wire/proto/descriptor.js"
import { kvRequestEncoders, loaderOptions, methods } from "../src/internal/wire/proto/loader.js"

// The KV requests are written by hand-written encoders; these check that the server's
// decoder (here the generated one) reads from their bytes what it reads from the
// generated encoder's.
const generated = protoLoader.fromJSON(descriptor, loaderOptions)["etcdserverpb.KV"] as grpc.ServiceDefinition
const generatedOf = (name: string) => generated[name] as grpc.MethodDefinition<unknown, unknown>

const same = (name: "Range" | "Put" | "DeleteRange" | "Txn", request: unknown) => {
  const method = {
    Range: methods.kv.range,
    Put: methods.kv.put,
    DeleteRange: methods.kv.deleteRange,
    Txn: methods.kv.txn
  }[
    name
  ] as grpc.MethodDefinition<unknown, unknown>
  const reference = generatedOf(name)
  expect(reference.requestDeserialize(method.requestSerialize(request))).toStrictEqual(
    reference.requestDeserialize(reference.requestSerialize(request))
  )
}

const bytes = (text: string) => Buffer.from(text)

describe("KV request encoders", () => {
  it("the client's KV methods use them", () => {
    expect(methods.kv.range.requestSerialize).toBe(kvRequestEncoders.range)
    expect(methods.kv.put.requestSerialize).toBe(kvRequestEncoders.put)
    expect(methods.kv.deleteRange.requestSerialize).toBe(kvRequestEncoders.deleteRange)
    expect(methods.kv.txn.requestSerialize).toBe(kvRequestEncoders.txn)
  })

  it("Range: every field, int64 of every size, enums by name and number", () => {
    same("Range", {})
    same("Range", { key: bytes("a") })
    same("Range", {
      key: bytes("a/"),
      rangeEnd: bytes("a0"),
      limit: "10",
      revision: "1099511627776",
      sortOrder: "DESCEND",
      sortTarget: 3,
      serializable: true,
      keysOnly: true,
      countOnly: false,
      minModRevision: "9007199254740993",
      maxModRevision: 42,
      minCreateRevision: "-1",
      maxCreateRevision: "9223372036854775807"
    })
    same("Range", { key: new Uint8Array([0, 255, 1]), rangeEnd: new Uint8Array([0]) })
    same("Range", { key: bytes("x".repeat(20_000)) })
  })

  it("Put and DeleteRange", () => {
    same("Put", { key: bytes("k"), value: bytes("v") })
    same("Put", { key: bytes("k"), value: bytes(""), lease: "7587869583648227338", prevKv: true })
    same("Put", { key: bytes("k"), ignoreValue: true, ignoreLease: true })
    same("Put", { key: bytes("k"), value: Buffer.alloc(20_000, 7) })
    same("DeleteRange", { key: bytes("a"), rangeEnd: bytes("b"), prevKv: true })
  })

  it("Txn: compares of every target, zero values in a compare's oneof, nested txns", () => {
    same("Txn", {})
    same("Txn", {
      compare: [
        { result: "EQUAL", target: "VALUE", key: bytes("k"), value: bytes("") },
        { result: "EQUAL", target: "VERSION", key: bytes("k"), version: "0" },
        { result: "GREATER", target: "CREATE", key: bytes("k"), createRevision: 5 },
        { result: "LESS", target: "MOD", key: bytes("k"), modRevision: "0", rangeEnd: bytes("l") },
        { result: "NOT_EQUAL", target: "LEASE", key: bytes("k"), lease: "0" }
      ],
      success: [
        { requestRange: { key: bytes("a"), limit: "1" } },
        { requestPut: { key: bytes("b"), value: bytes("x".repeat(200)) } },
        { requestDeleteRange: { key: bytes("c") } },
        {
          requestTxn: {
            compare: [{ target: "VERSION", key: bytes("d"), version: "3" }],
            success: [{ requestPut: { key: bytes("d"), value: bytes("e") } }],
            failure: [{ requestRange: {} }]
          }
        }
      ],
      failure: [{ requestRange: { key: bytes("z") } }]
    })
    same("Txn", { success: Array.from({ length: 128 }, (_, i) => ({ requestRange: { key: bytes(`key/${i}`) } })) })
  })

  it("a request the encoders do not take (text where bytes go) is left to the generated encoder", () => {
    same("Range", { key: "YQ==" })
    same("Txn", { success: [{ requestPut: { key: "YQ==", value: "Yg==" } }] })
  })
})
