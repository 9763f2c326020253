import { describe, expect, it } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { descriptor } from "../src/internal/wire/proto/descriptor.js"
import { decodeLeaseGrantResponse } from "../src/internal/wire/proto/leaseMessages.js"
import { leaseGrantRequestEncoder, loaderOptions, methods } from "../src/internal/wire/proto/loader.js"
import { header } from "./protoFixtures.js"

// LeaseGrant is coded by a hand-written encoder and decoder; these check them against the
// generated ones on the same messages: the server reads the same request, and the client
// gets the same objects.
const generated = protoLoader.fromJSON(descriptor, loaderOptions)["etcdserverpb.Lease"] as grpc.ServiceDefinition
const reference = generated.LeaseGrant as grpc.MethodDefinition<unknown, unknown>
const grant = methods.lease.grant as grpc.MethodDefinition<unknown, unknown>

const sameRequest = (request: unknown) => {
  expect(reference.requestDeserialize(grant.requestSerialize(request))).toStrictEqual(
    reference.requestDeserialize(reference.requestSerialize(request))
  )
}

const sameResponse = (response: unknown) => {
  const bytes = reference.responseSerialize(response)
  expect(grant.responseDeserialize(bytes)).toStrictEqual(reference.responseDeserialize(bytes))
}

describe("LeaseGrant codec", () => {
  it("the client's grant uses it", () => {
    expect(methods.lease.grant.requestSerialize).toBe(leaseGrantRequestEncoder)
    expect(methods.lease.grant.responseDeserialize).toBe(decodeLeaseGrantResponse)
  })

  it("requests: TTL and ID as text or numbers, zero left out, IDs past 2^53 and negative ones", () => {
    sameRequest({})
    sameRequest({ TTL: "10" })
    sameRequest({ TTL: 60, ID: "0" })
    sameRequest({ TTL: "9007199254740993", ID: "7587869583648227338" })
    sameRequest({ TTL: "-1", ID: "-9223372036854775808" })
  })

  it("a request these encoders do not take (a Long) is left to the generated encoder", () => {
    const id = { low: 5, high: 1, unsigned: false }
    sameRequest({ TTL: 5, ID: id })
  })

  it("responses: header, ID, TTL and error, absent and default fields", () => {
    sameResponse({})
    sameResponse({ header })
    sameResponse({ header, ID: "7587869583648227338", TTL: "60" })
    sameResponse({ ID: "-1", TTL: "9007199254740993", error: "lease already exists ✓" })
  })

  it("a truncated response fails to decode rather than giving a wrong lease", () => {
    const bytes = reference.responseSerialize({ header, ID: "7587869583648227338", TTL: "60" })
    expect(() => decodeLeaseGrantResponse(bytes.subarray(0, bytes.length - 3))).toThrow()
  })
})
