import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Cause, Chunk, Duration, Effect, Exit, Option, Stream } from "effect"
import { Compare, Election, Etcd, KeyRange, Kv, Lease, Lock, Op, RwLock, Stm, Txn, Watch } from "effect-etcd"
import * as Protocol from "../src/internal/rpc/protocol.js"
import { uniquePrefix, withServer } from "./support.js"

/** Plain JavaScript callers pass anything: this is how the table says "not what the types allow". */
const untyped = <A>(value: unknown): A => value as A

interface Case {
  readonly name: string
  readonly run: (p: string) => Effect.Effect<unknown, unknown, Etcd.Etcd | EtcdServer.EtcdServer>
  readonly tag: string
  /** What the error message must name: the option and the value. */
  readonly mentions?: ReadonlyArray<string>
}

const ok = (p: string) => `${p}ok`

const cases: ReadonlyArray<Case> = [
  // -- reads ---------------------------------------------------------------------------------
  {
    name: "get revision NaN",
    run: (p) => Kv.get(ok(p), { revision: untyped(NaN) }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "NaN"]
  },
  {
    name: "get revision -1n",
    run: (p) => Kv.get(ok(p), { revision: -1n }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "-1n"]
  },
  {
    name: "get revision 2^64",
    run: (p) => Kv.get(ok(p), { revision: 2n ** 64n }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "18446744073709551616n"]
  },
  {
    name: "get revision 1.5",
    run: (p) => Kv.get(ok(p), { revision: untyped(1.5) }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "1.5"]
  },
  {
    name: "get revision Infinity",
    run: (p) => Kv.get(ok(p), { revision: untyped(Infinity) }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "Infinity"]
  },
  {
    name: "get revision as a string",
    run: (p) => Kv.get(ok(p), { revision: untyped("5") }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "\"5\""]
  },
  {
    name: "get minModRevision -5n",
    run: (p) => Kv.get(ok(p), { minModRevision: -5n }),
    tag: "EtcdInvalidArgument",
    mentions: ["minModRevision", "-5n"]
  },
  {
    name: "get maxCreateRevision NaN",
    run: (p) => Kv.get(ok(p), { maxCreateRevision: untyped(NaN) }),
    tag: "EtcdInvalidArgument",
    mentions: ["maxCreateRevision", "NaN"]
  },
  {
    name: "getPrefix limit -1",
    run: (p) => Kv.getPrefix(p, { limit: -1 }),
    tag: "EtcdInvalidArgument",
    mentions: ["limit", "-1"]
  },
  {
    name: "getPrefix limit 1.5",
    run: (p) => Kv.getPrefix(p, { limit: 1.5 }),
    tag: "EtcdInvalidArgument",
    mentions: ["limit", "1.5"]
  },
  {
    name: "getPrefix limit NaN",
    run: (p) => Kv.getPrefix(p, { limit: NaN }),
    tag: "EtcdInvalidArgument",
    mentions: ["limit", "NaN"]
  },
  {
    name: "range sortOrder \"up\"",
    run: (p) => Kv.range(KeyRange.prefix(p), { sortOrder: untyped("up") }),
    tag: "EtcdInvalidArgument",
    mentions: ["sortOrder", "\"up\""]
  },
  {
    name: "range sortTarget \"size\"",
    run: (p) => Kv.range(KeyRange.prefix(p), { sortTarget: untyped("size") }),
    tag: "EtcdInvalidArgument",
    mentions: ["sortTarget", "\"size\""]
  },
  {
    name: "get timeout -1 (a bare number)",
    run: (p) => Kv.get(ok(p), { timeout: untyped(-1) }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "-1"]
  },
  {
    name: "get timeout \"-1 millis\"",
    run: (p) => Kv.get(ok(p), { timeout: "-1 millis" }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "\"-1 millis\""]
  },
  {
    name: "get timeout \"soon\"",
    run: (p) => Kv.get(ok(p), { timeout: untyped("soon") }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "\"soon\""]
  },
  {
    name: "get timeout infinite",
    run: (p) => Kv.get(ok(p), { timeout: Duration.infinity }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "finite"]
  },
  {
    name: "get timeout 0 (a bare number)",
    run: (p) => Kv.get(ok(p), { timeout: untyped(0) }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "got 0"]
  },
  {
    name: "get timeout \"0 seconds\"",
    run: (p) => Kv.get(ok(p), { timeout: "0 seconds" }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "got \"0 seconds\""]
  },
  {
    name: "get(undefined)",
    run: () => Kv.get(untyped(undefined)),
    tag: "EtcdInvalidArgument",
    mentions: ["key", "undefined"]
  },
  { name: "get(123)", run: () => Kv.get(untyped(123)), tag: "EtcdInvalidArgument", mentions: ["key", "123"] },
  {
    name: "get with null options",
    run: (p) => Kv.get(ok(p), untyped(null)),
    tag: "EtcdInvalidArgument",
    mentions: ["options", "null"]
  },
  {
    name: "getPrefix(null)",
    run: () => Kv.getPrefix(untyped(null)),
    tag: "EtcdInvalidArgument",
    mentions: ["prefix", "null"]
  },
  {
    name: "getRange with an undefined end",
    run: (p) => Kv.getRange(p, untyped(undefined)),
    tag: "EtcdInvalidArgument",
    mentions: ["end", "undefined"]
  },
  {
    name: "count revision -1n",
    run: (p) => Kv.count(KeyRange.prefix(p), { revision: -1n }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "-1n"]
  },
  {
    name: "get serializable \"yes\"",
    run: (p) => Kv.get(ok(p), { serializable: untyped("yes") }),
    tag: "EtcdInvalidArgument",
    mentions: ["serializable", "\"yes\""]
  },
  { name: "get of the empty key", run: () => Kv.get(""), tag: "EmptyKey" },
  // -- writes --------------------------------------------------------------------------------
  {
    name: "put(k, null)",
    run: (p) => Kv.put(`${p}w`, untyped(null)),
    tag: "EtcdInvalidArgument",
    mentions: ["value", "null"]
  },
  {
    name: "put(undefined, v)",
    run: () => Kv.put(untyped(undefined), "v"),
    tag: "EtcdInvalidArgument",
    mentions: ["key", "undefined"]
  },
  {
    name: "put lease -1n",
    run: (p) => Kv.put(`${p}w`, "v", { lease: -1n }),
    tag: "EtcdInvalidArgument",
    mentions: ["lease", "-1n"]
  },
  {
    name: "put lease NaN",
    run: (p) => Kv.put(`${p}w`, "v", { lease: untyped(NaN) }),
    tag: "EtcdInvalidArgument",
    mentions: ["lease", "NaN"]
  },
  {
    name: "put lease 2^63",
    run: (p) => Kv.put(`${p}w`, "v", { lease: 2n ** 63n }),
    tag: "EtcdInvalidArgument",
    mentions: ["lease", "9223372036854775808n"]
  },
  {
    name: "put lease { id: \"x\" }",
    run: (p) => Kv.put(`${p}w`, "v", { lease: { id: untyped("x") } }),
    tag: "EtcdInvalidArgument",
    mentions: ["lease", "\"x\""]
  },
  {
    name: "delete timeout NaN",
    run: (p) => Kv.delete(`${p}w`, { timeout: untyped(NaN) }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "NaN"]
  },
  {
    name: "deletePrefix(undefined)",
    run: () => Kv.deletePrefix(untyped(undefined)),
    tag: "EtcdInvalidArgument",
    mentions: ["prefix", "undefined"]
  },
  { name: "compact(-1n)", run: () => Kv.compact(-1n), tag: "EtcdInvalidArgument", mentions: ["revision", "-1n"] },
  { name: "compact(0n)", run: () => Kv.compact(0n), tag: "EtcdInvalidArgument", mentions: ["revision", "0n"] },
  {
    name: "compact(NaN)",
    run: () => Kv.compact(untyped(NaN)),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "NaN"]
  },
  {
    name: "compact with timeout \"soon\"",
    run: () => Kv.compact(1n, { timeout: untyped("soon") }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "\"soon\""]
  },
  // -- paged reads ---------------------------------------------------------------------------
  {
    name: "stream pageSize 0",
    run: (p) => Stream.runDrain(Kv.stream(KeyRange.prefix(p), { pageSize: 0 })),
    tag: "EtcdInvalidArgument",
    mentions: ["pageSize", "0"]
  },
  {
    name: "stream pageSize NaN",
    run: (p) => Stream.runDrain(Kv.stream(KeyRange.prefix(p), { pageSize: NaN })),
    tag: "EtcdInvalidArgument",
    mentions: ["pageSize", "NaN"]
  },
  {
    name: "stream revision -1n",
    run: (p) => Stream.runDrain(Kv.stream(KeyRange.prefix(p), { revision: -1n })),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "-1n"]
  },
  {
    name: "stream of undefined",
    run: () => Stream.runDrain(Kv.stream(untyped(undefined))),
    tag: "EtcdInvalidArgument",
    mentions: ["keys", "undefined"]
  },
  // -- transactions --------------------------------------------------------------------------
  {
    name: "Compare.version equals NaN",
    run: (p) => Txn.txnCompare([Compare.version(ok(p)).equals(NaN)], [Op.put(`${p}t`, "v")]),
    tag: "EtcdInvalidArgument",
    mentions: ["compares[0] operand", "NaN"]
  },
  {
    // etcd compares any int64 (`version > -1` always holds): beyond int64 is refused
    name: "Compare.modRevision lessThan 2^63",
    run: (p) => Txn.txnCompare([Compare.modRevision(ok(p)).lessThan(2n ** 63n)], [Op.put(`${p}t`, "v")]),
    tag: "EtcdInvalidArgument",
    mentions: ["compares[0] operand", "9223372036854775808n"]
  },
  {
    name: "Compare.value equals undefined",
    run: (p) => Txn.txnCompare([Compare.value(ok(p)).equals(untyped(undefined))], []),
    tag: "EtcdInvalidArgument",
    mentions: ["compares[0] operand", "undefined"]
  },
  {
    name: "Op.get revision NaN",
    run: (p) => Txn.txn([Op.get(ok(p), { revision: untyped(NaN) })]),
    tag: "EtcdInvalidArgument",
    mentions: ["success[0].revision", "NaN"]
  },
  {
    name: "Op.put value undefined",
    run: (p) => Txn.txn([Op.get(ok(p)), Op.put(`${p}t`, untyped(undefined))]),
    tag: "EtcdInvalidArgument",
    mentions: ["success[1].value", "undefined"]
  },
  {
    name: "Op.put lease -2n in the failure branch",
    run: (p) => Txn.txnCompare([], [], [Op.put(`${p}t`, "v", { lease: -2n })]),
    tag: "EtcdInvalidArgument",
    mentions: ["failure[0].lease", "-2n"]
  },
  {
    name: "Txn.txn(undefined)",
    run: () => Txn.txn(untyped<ReadonlyArray<Op.Op>>(undefined)),
    tag: "EtcdInvalidArgument",
    mentions: ["success", "undefined"]
  },
  {
    name: "nested txn with a bad compare",
    run: (p) => Txn.txn([Op.txn([Compare.createRevision(ok(p)).greaterThan(untyped(0.5))], [])]),
    tag: "EtcdInvalidArgument",
    mentions: ["success[0].compares[0] operand", "0.5"]
  },
  {
    name: "txn timeout \"soon\"",
    run: (p) => Txn.txn([Op.get(ok(p))], { timeout: untyped("soon") }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "\"soon\""]
  },
  {
    name: "txn with an empty key",
    run: () => Txn.txn([Op.put("", "v")]),
    tag: "EmptyKey"
  },
  {
    name: "txn with an empty key to read, in a nested txn's failure branch",
    run: (p) => Txn.txn([Op.get(ok(p)), Op.txn([], [], [Op.get("")])]),
    tag: "EmptyKey"
  },
  {
    name: "get revision 2^64 as a number (integral, beyond 2^53)",
    run: (p) => Kv.get(ok(p), { revision: untyped(2 ** 64) }),
    tag: "EtcdInvalidArgument",
    mentions: ["revision", "18446744073709552000"]
  },
  {
    name: "put lease -1 as a number",
    run: (p) => Kv.put(`${p}w`, "v", { lease: untyped(-1) }),
    tag: "EtcdInvalidArgument",
    mentions: ["lease", "-1"]
  },
  {
    name: "delete timeout Duration.zero",
    run: (p) => Kv.delete(ok(p), { timeout: Duration.zero }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "an object (Object)"]
  },
  {
    name: "delete timeout Duration.infinity (a deadline must be finite)",
    run: (p) => Kv.delete(ok(p), { timeout: Duration.infinity }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "finite"]
  },
  // -- leases --------------------------------------------------------------------------------
  { name: "grant(NaN)", run: () => Lease.grant(untyped(NaN)), tag: "EtcdInvalidArgument", mentions: ["ttl", "NaN"] },
  {
    name: "grant(Infinity)",
    run: () => Lease.grant(untyped(Infinity)),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "Infinity"]
  },
  { name: "grant(-5)", run: () => Lease.grant(untyped(-5)), tag: "EtcdInvalidArgument", mentions: ["ttl", "-5"] },
  { name: "grant(0)", run: () => Lease.grant(untyped(0)), tag: "EtcdInvalidArgument", mentions: ["ttl", "got 0"] },
  {
    name: "grant(10), a bare number (it used to mean 10 seconds)",
    run: () => Lease.grant(untyped(10)),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "got 10", "unit"]
  },
  {
    name: "grant(10n), a bare bigint",
    run: () => Lease.grant(untyped(10n)),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "got 10n", "unit"]
  },
  {
    name: "grant(Duration.infinity)",
    run: () => Lease.grant(Duration.infinity),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "finite"]
  },
  {
    name: "grant(\"-5 seconds\")",
    run: () => Lease.grant("-5 seconds"),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "\"-5 seconds\""]
  },
  {
    name: "grant of a TTL above etcd's maximum",
    run: () => Lease.grant("10000000000 seconds"),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "\"10000000000 seconds\"", "9000000000"]
  },
  {
    name: "grant(\"abc\")",
    run: () => Lease.grant(untyped("abc")),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "\"abc\""]
  },
  {
    name: "grant id -1n",
    run: () => Lease.grant("10 seconds", { id: -1n }),
    tag: "EtcdInvalidArgument",
    mentions: ["id", "-1n"]
  },
  {
    name: "grant id 2^63",
    run: () => Lease.grant("10 seconds", { id: 2n ** 63n }),
    tag: "EtcdInvalidArgument",
    mentions: ["id", "9223372036854775808n"]
  },
  { name: "revoke(-1n)", run: () => Lease.revoke(-1n), tag: "EtcdInvalidArgument", mentions: ["id", "-1n"] },
  { name: "revoke(NaN)", run: () => Lease.revoke(untyped(NaN)), tag: "EtcdInvalidArgument", mentions: ["id", "NaN"] },
  {
    name: "timeToLive(2^63)",
    run: () => Lease.timeToLive(2n ** 63n),
    tag: "EtcdInvalidArgument",
    mentions: ["id", "9223372036854775808n"]
  },
  { name: "keepAliveOnce(0n)", run: () => Lease.keepAliveOnce(0n), tag: "EtcdInvalidArgument", mentions: ["id", "0n"] },
  {
    name: "keepAliveOnce timeout \"x\"",
    run: () => Lease.keepAliveOnce(1n, { timeout: untyped("x") }),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "\"x\""]
  },
  {
    name: "Lease.make(NaN)",
    run: () => Effect.scoped(Lease.make(untyped(NaN))),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "NaN"]
  },
  {
    name: "Lease.make interval -1 (a bare number)",
    run: () => Effect.scoped(Lease.make("10 seconds", { interval: untyped(-1) })),
    tag: "EtcdInvalidArgument",
    mentions: ["interval", "-1"]
  },
  {
    name: "Lease.make interval 500 (a bare number)",
    run: () => Effect.scoped(Lease.make("10 seconds", { interval: untyped(500) })),
    tag: "EtcdInvalidArgument",
    mentions: ["interval", "got 500", "unit"]
  },
  {
    name: "Lease.keepAlive(-1n)",
    run: () => Effect.scoped(Lease.keepAlive(-1n)),
    tag: "EtcdInvalidArgument",
    mentions: ["id", "-1n"]
  },
  // -- locks ---------------------------------------------------------------------------------
  {
    name: "Lock ttl NaN",
    run: (p) => Effect.scoped(Lock.make(`${p}lock`, { ttl: untyped(NaN) })),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "NaN"]
  },
  {
    name: "Lock { ttl: 15, timeout: 30 } (bare numbers)",
    run: (p) => Effect.scoped(Lock.make(`${p}lock`, { ttl: untyped(15), timeout: untyped(30) })),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "got 15", "unit"]
  },
  {
    name: "Lock timeout 30 (a bare number)",
    run: (p) => Effect.scoped(Lock.make(`${p}lock`, { ttl: "15 seconds", timeout: untyped(30) })),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "got 30", "unit"]
  },
  {
    name: "Lock timeout \"never\"",
    run: (p) => Effect.scoped(Lock.make(`${p}lock`, { timeout: untyped("never") })),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "\"never\""]
  },
  {
    name: "Lock.make(undefined)",
    run: () => Effect.scoped(Lock.make(untyped(undefined))),
    tag: "EtcdInvalidArgument",
    mentions: ["name", "undefined"]
  },
  { name: "Lock.make(\"\")", run: () => Effect.scoped(Lock.make("")), tag: "EmptyKey" },
  // -- recipes -------------------------------------------------------------------------------
  {
    name: "RwLock timeout NaN",
    run: (p) => Effect.scoped(RwLock.read(`${p}rw`, { timeout: untyped(NaN) })),
    tag: "EtcdInvalidArgument",
    mentions: ["timeout", "NaN"]
  },
  {
    name: "Election.campaign ttl -5",
    run: (p) => Effect.scoped(Election.campaign(`${p}election`, "me", { ttl: untyped(-5) })),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "-5"]
  },
  {
    name: "Election.campaign ttl \"-5 seconds\"",
    run: (p) => Effect.scoped(Election.campaign(`${p}election`, "me", { ttl: "-5 seconds" })),
    tag: "EtcdInvalidArgument",
    mentions: ["ttl", "\"-5 seconds\""]
  },
  {
    name: "Election.campaign value undefined",
    run: (p) => Effect.scoped(Election.campaign(`${p}election`, untyped(undefined))),
    tag: "EtcdInvalidArgument",
    mentions: ["value", "undefined"]
  },
  {
    name: "Stm.run retries 1.5",
    run: (p) => Stm.run(Stm.get(`${p}stm`), { retries: 1.5 }),
    tag: "EtcdInvalidArgument",
    mentions: ["retries", "1.5"]
  },
  {
    name: "Stm.run isolation \"linearizable\"",
    run: (p) => Stm.run(Stm.get(`${p}stm`), { isolation: untyped("linearizable") }),
    tag: "EtcdInvalidArgument",
    mentions: ["isolation", "\"linearizable\""]
  },
  // -- watches -------------------------------------------------------------------------------
  {
    name: "subscribe startRevision -1n",
    run: (p) => Effect.scoped(Watch.subscribe(ok(p), { startRevision: -1n })),
    tag: "EtcdInvalidArgument",
    mentions: ["startRevision", "-1n"]
  },
  {
    name: "subscribe startRevision NaN",
    run: (p) => Effect.scoped(Watch.subscribe(ok(p), { startRevision: untyped(NaN) })),
    tag: "EtcdInvalidArgument",
    mentions: ["startRevision", "NaN"]
  },
  {
    name: "subscribe watchId 2^63",
    run: (p) => Effect.scoped(Watch.subscribe(ok(p), { watchId: 2n ** 63n })),
    tag: "EtcdInvalidArgument",
    mentions: ["watchId", "9223372036854775808n"]
  },
  {
    name: "subscribe watchId -1",
    run: (p) => Effect.scoped(Watch.subscribe(ok(p), { watchId: -1 })),
    tag: "EtcdInvalidArgument",
    mentions: ["watchId", "-1"]
  },
  {
    name: "subscribe bufferBytes NaN",
    run: (p) => Effect.scoped(Watch.subscribe(ok(p), { bufferBytes: NaN })),
    tag: "EtcdInvalidArgument",
    mentions: ["bufferBytes", "NaN"]
  },
  {
    name: "subscribe(undefined)",
    run: () => Effect.scoped(Watch.subscribe(untyped(undefined))),
    tag: "EtcdInvalidArgument",
    mentions: ["keys", "undefined"]
  },
  {
    name: "watch stream from startRevision -1n",
    run: (p) => Stream.runDrain(Watch.watch(ok(p), { startRevision: -1n })),
    tag: "EtcdInvalidArgument",
    mentions: ["startRevision", "-1n"]
  },
  {
    name: "withNamespace(undefined)",
    run: (p) => Kv.get(ok(p)).pipe(Etcd.withNamespace(untyped(undefined))),
    tag: "EtcdInvalidArgument",
    mentions: ["namespace", "undefined"]
  },
  // -- client options ------------------------------------------------------------------------
  ...([
    ["requestTimeout 0", { requestTimeout: 0 }, ["requestTimeout", "got 0"]],
    ["connectTimeout NaN", { connectTimeout: NaN }, ["connectTimeout", "NaN"]],
    ["readBatching maxOps 0", { readBatching: { maxOps: 0 } }, ["readBatching.maxOps", "got 0"]],
    ["maxSendMessageBytes -1", { maxSendMessageBytes: -1 }, ["maxSendMessageBytes", "-1"]],
    ["keepAliveTime \"soon\"", { keepAliveTime: untyped("soon") }, ["keepAliveTime", "\"soon\""]],
    ["endpoints [123]", { endpoints: untyped([123]) }, ["endpoints"]],
    ["namespace 5", { namespace: untyped(5) }, ["namespace", "5"]]
  ] as const).map(([name, options, mentions]): Case => ({
    name: `Etcd.make ${name}`,
    run: () =>
      Effect.flatMap(
        EtcdServer.EtcdServer,
        (server) => Effect.scoped(Etcd.make({ endpoints: server.endpoints, ...options as Etcd.EtcdOptions }))
      ),
    tag: "EtcdInvalidArgument",
    mentions
  }))
]

/**
 * What every mechanism of the client must still do after a bad call: reads through the
 * batcher (several at once), a write, a watch that delivers, and a lease kept alive.
 */
const stillWorks = (p: string) =>
  Effect.gen(function*() {
    yield* Kv.put(ok(p), "v")
    const reads = yield* Effect.all(Array.from({ length: 5 }, () => Kv.get(ok(p))), { concurrency: "unbounded" })
    expect(reads).toEqual(Array.from({ length: 5 }, () => Option.some("v")))
    yield* Effect.scoped(Effect.gen(function*() {
      const watcher = yield* Watch.subscribe(`${p}watched`)
      yield* Kv.put(`${p}watched`, "seen")
      const events = yield* watcher.events.pipe(Stream.take(1), Stream.runCollect)
      expect(Chunk.toReadonlyArray(events).map((event) => event.value)).toEqual(["seen"])
    }))
    yield* Effect.scoped(Effect.gen(function*() {
      const lease = yield* Lease.make("10 seconds")
      expect((yield* Lease.timeToLive(lease.id)).grantedTtl).toBe(10)
    }))
  })

layer(withServer(), { excludeTestServices: true })("Bad input", (it) => {
  it.effect(
    `a table of ${cases.length} bad inputs: each fails with its tag, and the client still works`,
    () =>
      Effect.gen(function*() {
        expect(cases.length).toBeGreaterThanOrEqual(40)
        const p = uniquePrefix("table")
        yield* stillWorks(p)
        for (const bad of cases) {
          // no exception at call time: building the effect must not throw
          let effect: Effect.Effect<unknown, unknown, Etcd.Etcd | EtcdServer.EtcdServer> | undefined
          expect(() => {
            effect = bad.run(p)
          }, bad.name).not.toThrow()
          const exit = yield* effect!.pipe(
            // a hang guard, not a timing assertion: a bad input must fail, never wait
            Effect.timeoutFail({ duration: Duration.seconds(20), onTimeout: () => "hung" as const }),
            Effect.exit
          )
          expect(Exit.isFailure(exit), bad.name).toBe(true)
          if (Exit.isFailure(exit)) {
            expect(Cause.isDie(exit.cause), `${bad.name}: ${Cause.pretty(exit.cause)}`).toBe(false)
            const error = Cause.failureOption(exit.cause)
            expect(Option.isSome(error), bad.name).toBe(true)
            const failure = Option.getOrThrow(error) as { _tag: string; message: string }
            expect(failure._tag, `${bad.name}: ${failure.message}`).toBe(bad.tag)
            for (const mention of bad.mentions ?? []) expect(failure.message, bad.name).toContain(mention)
          }
          yield* stillWorks(p)
        }
      }),
    120_000
  )

  it.effect("a read with revision NaN fails alone; every later read still works (the batcher stays healthy)", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("nan")
      yield* Kv.put(`${p}k`, "v")
      const results = yield* Effect.all(
        [
          Effect.either(Kv.get(`${p}k`, { revision: untyped(NaN) })),
          ...Array.from({ length: 10 }, () => Effect.either(Kv.get(`${p}k`)))
        ],
        { concurrency: "unbounded" }
      )
      expect(results[0]).toMatchObject({ _tag: "Left", left: { _tag: "EtcdInvalidArgument", option: "revision" } })
      for (const result of results.slice(1)) expect(result).toMatchObject({ _tag: "Right", right: Option.some("v") })
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("v"))
    }))

  it.effect("a read that throws while being built dies alone, alone or in a batch; the batcher stays healthy", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("throws")
      yield* Kv.put(`${p}k`, "v")
      const etcd = yield* Etcd.Etcd
      // impossible through the public API (requests are validated first): a request whose
      // field throws when read stands for any failure while a read is built or sent
      const poisoned = () => ({
        key: Buffer.from(`${p}k`),
        get revision(): string {
          throw new Error("poisoned request")
        }
      })
      const good = Effect.map(Kv.get(`${p}k`), Option.getOrNull)
      // first alone (nothing in flight), then in the middle of a batch
      expect(Exit.isFailure(yield* Effect.exit(Protocol.of(etcd).kv.range(poisoned())))).toBe(true)
      const mixed = yield* Effect.all(
        [
          ...Array.from({ length: 5 }, () => Effect.exit(good)),
          Effect.exit(Effect.asVoid(Protocol.of(etcd).kv.range(poisoned()))),
          ...Array.from(
            { length: 5 },
            () => Effect.exit(good)
          )
        ],
        { concurrency: "unbounded" }
      )
      expect(Exit.isFailure(mixed[5] as Exit.Exit<unknown, unknown>)).toBe(true)
      for (const [i, exit] of mixed.entries()) {
        if (i !== 5) expect(exit as unknown).toEqual(Exit.succeed("v"))
      }
      yield* stillWorks(p)
    }))

  it.effect("a TTL the server refuses as too large is EtcdInvalidArgument, not EtcdUnknown", () =>
    Effect.gen(function*() {
      const etcd = yield* Etcd.Etcd
      // past the client's own check, at the protocol level
      const error = yield* Effect.flip(Protocol.of(etcd).leases.grant({ TTL: "9000000001" }))
      expect(error).toMatchObject({ _tag: "EtcdInvalidArgument", option: "ttl" })
      expect(error.message).toContain("too large lease TTL")
    }))

  it.effect("revision 0, limit 0, lease 0, watch ID 0 and startRevision 0 keep etcd's meaning", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("zero")
      yield* Kv.put(`${p}a`, "1", { lease: 0n })
      yield* Kv.put(`${p}b`, "2")
      expect(yield* Kv.get(`${p}a`, { revision: 0n })).toEqual(Option.some("1"))
      expect((yield* Kv.getPrefix(p, { limit: 0 })).size).toBe(2)
      yield* Effect.scoped(Effect.gen(function*() {
        const watcher = yield* Watch.subscribe(`${p}a`, { startRevision: 0n, watchId: 0 })
        yield* Kv.put(`${p}a`, "3")
        const events = yield* watcher.events.pipe(Stream.take(1), Stream.runCollect)
        // only what happened after the watch exists
        expect(Chunk.toReadonlyArray(events).map((event) => event.value)).toEqual(["3"])
      }))
    }))

  it.effect("keys that are not valid UTF-8 fail the Map-returning reads instead of colliding in the Map", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("utf8")
      const prefix = Buffer.from(p)
      // two different keys that both decode to "<prefix>\uFFFD"
      yield* Kv.put(Buffer.concat([prefix, Buffer.from([0xff])]), "a")
      yield* Kv.put(Buffer.concat([prefix, Buffer.from([0xfe])]), "b")
      const error = yield* Effect.flip(Kv.getPrefix(p))
      expect(error).toMatchObject({ _tag: "EtcdInvalidArgument", option: "keys" })
      expect(error.message).toContain(`0x${Buffer.concat([prefix, Buffer.from([0xfe])]).toString("hex")}`)
      expect(error.message).toContain("Kv.range")
      expect(yield* Effect.flip(Kv.getRange(p, KeyRange.prefixEnd(p)))).toMatchObject({
        _tag: "EtcdInvalidArgument",
        option: "keys"
      })
      // key lists keep one entry per key, decoded with U+FFFD
      expect(yield* Kv.keysPrefix(p)).toEqual([`${p}\ufffd`, `${p}\ufffd`])
      // the bytes are always available
      const { kvs } = yield* Kv.range(KeyRange.prefix(p))
      expect(kvs.map((kv) => Buffer.from(kv.keyBytes).at(-1))).toEqual([0xfe, 0xff])
      expect(kvs.map((kv) => kv.value)).toEqual(["b", "a"])
      // valid keys are unaffected
      const q = uniquePrefix("utf8-ok")
      yield* Kv.put(`${q}é`, "1")
      expect(yield* Kv.getPrefix(q)).toEqual(new Map([[`${q}é`, "1"]]))
    }))

  it.effect("plain JavaScript type violations fail the Effect instead of throwing at call time", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("types")
      const get = Kv.get(untyped(undefined))
      const put = Kv.put(`${p}k`, untyped(null))
      const op = Op.get(untyped(undefined))
      const compare = Compare.value(untyped(null)).equals("x")
      expect(yield* Effect.flip(get)).toMatchObject({ _tag: "EtcdInvalidArgument", option: "key" })
      expect(yield* Effect.flip(put)).toMatchObject({ _tag: "EtcdInvalidArgument", option: "value" })
      expect(yield* Effect.flip(Txn.txn([op]))).toMatchObject({
        _tag: "EtcdInvalidArgument",
        option: "success[0].keys"
      })
      expect(yield* Effect.flip(Txn.txnCompare([compare], []))).toMatchObject({
        _tag: "EtcdInvalidArgument",
        option: "compares[0].keys"
      })
      yield* stillWorks(p)
    }))
})
