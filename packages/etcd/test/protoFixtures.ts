// Messages the hand-written protobuf readers are checked on (KvResponses, WatchCodec):
// int64s past 2^53, as the generated decoders give them (decimal text).

/** A response header whose cluster and member IDs are above 2^53. */
export const header = {
  clusterId: "14841639068965178418",
  memberId: "10276657743932975437",
  revision: "1099511627776",
  raftTerm: "9"
}

/** A KeyValue with a lease ID above 2^53. */
export const keyValue = (key: string, value: string, modRevision: string) => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  createRevision: "3",
  modRevision,
  version: "2",
  lease: "7587869583648227338"
})
