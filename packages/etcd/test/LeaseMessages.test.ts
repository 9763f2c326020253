import { describe, expect, it } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { descriptor } from "../src/internal/proto/descriptor.js"
import { decodeLeaseGrantResponse, decodeLeaseRevokeResponse } from "../src/internal/proto/leaseMessages.js"
import { leaseEncoders, loaderOptions, methods } from "../src/internal/proto/loader.js"
import { header } from "./protoFixtures.js"

// LeaseGrant and LeaseRevoke are coded by hand-written encoders and decoders; these check
// them against the generated ones on the same messages: the server reads the same
// request, and the client gets the same objects.
const generated = protoLoader.fromJSON(descriptor, loaderOptions)["etcdserverpb.Lease"] as grpc.ServiceDefinition
const generatedOf = (name: "LeaseGrant" | "LeaseRevoke") => generated[name] as grpc.MethodDefinition<unknown, unknown>
const methodOf = (name: "LeaseGrant" | "LeaseRevoke") =>
  (name === "LeaseGrant" ? methods.lease.grant : methods.lease.revoke) as grpc.MethodDefinition<unknown, unknown>

const sameRequest = (name: "LeaseGrant" | "LeaseRevoke", request: unknown) => {
  const reference = generatedOf(name)
  expect(reference.requestDeserialize(methodOf(name).requestSerialize(request))).toStrictEqual(
    reference.requestDeserialize(reference.requestSerialize(request))
  )
}

const sameResponse = (name: "LeaseGrant" | "LeaseRevoke", response: unknown) => {
  const bytes = generatedOf(name).responseSerialize(response)
  expect(methodOf(name).responseDeserialize(bytes)).toStrictEqual(generatedOf(name).responseDeserialize(bytes))
}

describe("Lease grant and revoke codecs", () => {
  it("the client's lease methods use them", () => {
    expect(methods.lease.grant.requestSerialize).toBe(leaseEncoders.grant)
    expect(methods.lease.revoke.requestSerialize).toBe(leaseEncoders.revoke)
    expect(methods.lease.grant.responseDeserialize).toBe(decodeLeaseGrantResponse)
    expect(methods.lease.revoke.responseDeserialize).toBe(decodeLeaseRevokeResponse)
  })

  it("requests: TTL and ID as text or numbers, zero left out, IDs past 2^53 and negative ones", () => {
    sameRequest("LeaseGrant", {})
    sameRequest("LeaseGrant", { TTL: "10" })
    sameRequest("LeaseGrant", { TTL: 60, ID: "0" })
    sameRequest("LeaseGrant", { TTL: "9007199254740993", ID: "7587869583648227338" })
    sameRequest("LeaseGrant", { TTL: "-1", ID: "-9223372036854775808" })
    sameRequest("LeaseRevoke", {})
    sameRequest("LeaseRevoke", { ID: "7587869583648227338" })
    sameRequest("LeaseRevoke", { ID: 42 })
  })

  it("a request these encoders do not take (a Long) is left to the generated encoder", () => {
    const id = { low: 5, high: 1, unsigned: false }
    sameRequest("LeaseRevoke", { ID: id })
  })

  it("responses: header, ID, TTL and error, absent and default fields", () => {
    sameResponse("LeaseGrant", {})
    sameResponse("LeaseGrant", { header })
    sameResponse("LeaseGrant", { header, ID: "7587869583648227338", TTL: "60" })
    sameResponse("LeaseGrant", { ID: "-1", TTL: "9007199254740993", error: "lease already exists ✓" })
    sameResponse("LeaseRevoke", {})
    sameResponse("LeaseRevoke", { header })
  })

  it("a truncated response fails to decode rather than giving a wrong lease", () => {
    const bytes = generatedOf("LeaseGrant").responseSerialize({ header, ID: "7587869583648227338", TTL: "60" })
    expect(() => decodeLeaseGrantResponse(bytes.subarray(0, bytes.length - 3))).toThrow()
  })
})
