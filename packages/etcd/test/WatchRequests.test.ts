import { describe, expect, it } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { descriptor } from "../src/internal/wire/proto/descriptor.js"
import { loaderOptions, methods } from "../src/internal/wire/proto/loader.js"

// WatchRequest is written by a hand-written encoder; these check that the server's decoder
// (here the generated one) reads from its bytes what it reads from the generated encoder's.
const generated = protoLoader.fromJSON(descriptor, loaderOptions)["etcdserverpb.Watch"] as grpc.ServiceDefinition
const reference = generated.Watch as grpc.MethodDefinition<unknown, unknown>
const watch = methods.watch.watch as grpc.MethodDefinition<unknown, unknown>

const same = (request: unknown) => {
  const bytes = watch.requestSerialize(request)
  expect(reference.requestDeserialize(bytes)).toStrictEqual(
    reference.requestDeserialize(reference.requestSerialize(request))
  )
}

const bytes = (text: string) => Buffer.from(text)

describe("WatchRequest encoder", () => {
  it("the client's Watch method uses it", () => {
    expect(methods.watch.watch.requestSerialize).not.toBe(reference.requestSerialize)
  })

  it("create: every field, an empty key, filters by name and number, int64 past 2^53", () => {
    same({ createRequest: {} })
    same({ createRequest: { key: bytes("") } })
    same({ createRequest: { key: bytes("a/"), rangeEnd: bytes("a0"), filters: [] } })
    same({
      createRequest: {
        key: bytes("jobs/"),
        rangeEnd: Uint8Array.of(0),
        startRevision: "9007199254740993",
        progressNotify: true,
        filters: ["NOPUT", "NODELETE"],
        prevKv: true,
        watchId: "7587869583648227338",
        fragment: true
      }
    })
    same({ createRequest: { key: bytes("k"), filters: [1, 0], startRevision: 12, watchId: "0", prevKv: false } })
    same({ createRequest: { key: bytes("k"), watchId: "-1" } })
  })

  it("cancel and progress", () => {
    same({ cancelRequest: { watchId: "42" } })
    same({ cancelRequest: { watchId: "0" } })
    same({ cancelRequest: {} })
    same({ progressRequest: {} })
  })

  it("a request it does not take (a string key, a Long) is left to the generated encoder", () => {
    same({ createRequest: { key: "text" } })
    same({ cancelRequest: { watchId: { low: 5, high: 1, unsigned: false } } })
  })
})
