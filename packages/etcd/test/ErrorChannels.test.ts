/**
 * Precise error channels: each public function is typed with the family of errors it can
 * produce (checked by the compiler, `pnpm check`), and each failure a call really meets
 * against a real etcd is in that family (checked here at run time).
 */
import { EtcdServer } from "@effect-etcd/testing"
import { describe, expect, expectTypeOf, it, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import type { Mirror, RwLock, Session } from "effect-etcd"
import { Etcd, EtcdError, KeyRange, Keyspace, Kv, Lease, Lock, Op, Txn, Watch } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

type ErrorOf<T> = T extends Effect.Effect<any, infer E, any> ? E : T extends Stream.Stream<any, infer E, any> ? E
: never

describe("Error channels (types)", () => {
  it("every public call names exactly its family", () => {
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.get>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.getBytes>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.getKeyValue>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.getPrefix>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.getRange>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.keysPrefix>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.keysRange>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.range>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.count>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.stream>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.put>>>().toEqualTypeOf<EtcdError.PutError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.delete>>>().toEqualTypeOf<EtcdError.DeleteError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.deletePrefix>>>().toEqualTypeOf<EtcdError.DeleteError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.deleteRange>>>().toEqualTypeOf<EtcdError.DeleteError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Kv.compact>>>().toEqualTypeOf<EtcdError.CompactError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Txn.txnCompare>>>().toEqualTypeOf<EtcdError.TxnError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.grant>>>().toEqualTypeOf<EtcdError.LeaseGrantError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.make>>>().toEqualTypeOf<EtcdError.LeaseGrantError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.revoke>>>().toEqualTypeOf<EtcdError.LeaseError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.timeToLive>>>().toEqualTypeOf<EtcdError.LeaseError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.keepAliveOnce>>>().toEqualTypeOf<EtcdError.LeaseError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.keepAlive>>>().toEqualTypeOf<EtcdError.LeaseError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.leases>>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Lock.make>>>().toEqualTypeOf<EtcdError.LockError>()
    expectTypeOf<ErrorOf<ReturnType<typeof RwLock.read>>>().toEqualTypeOf<EtcdError.LockError>()
    expectTypeOf<ErrorOf<ReturnType<typeof RwLock.write>>>().toEqualTypeOf<EtcdError.LockError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Session.make>>>().toEqualTypeOf<EtcdError.LeaseGrantError>()
    expectTypeOf<Layer.Layer.Error<ReturnType<typeof Session.layer>>>().toEqualTypeOf<EtcdError.LeaseGrantError>()
    const flags = Keyspace.json("flags/", Schema.Boolean)
    expect(flags.prefix).toBe("flags/")
    expectTypeOf<ErrorOf<ReturnType<typeof flags.get>>>().toEqualTypeOf<EtcdError.ReadError | EtcdError.DecodeError>()
    expectTypeOf<ErrorOf<ReturnType<typeof flags.put>>>().toEqualTypeOf<EtcdError.PutError | EtcdError.DecodeError>()
    expectTypeOf<ErrorOf<ReturnType<typeof flags.watch>>>().toEqualTypeOf<
      EtcdError.WatchError | EtcdError.DecodeError
    >()
    expectTypeOf<ErrorOf<Mirror.Mirror<string, string>["snapshot"]>>().toEqualTypeOf<EtcdError.MirrorError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Watch.subscribe>>>().toEqualTypeOf<EtcdError.WatchError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Watch.watch>>>().toEqualTypeOf<EtcdError.WatchError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Watch.watchPrefix>>>().toEqualTypeOf<EtcdError.WatchError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Watch.responses>>>().toEqualTypeOf<EtcdError.WatchError>()
    expectTypeOf<ErrorOf<Watch.Watcher["events"]>>().toEqualTypeOf<EtcdError.WatchError>()
    expectTypeOf<Layer.Layer.Error<ReturnType<typeof Etcd.layer>>>().toEqualTypeOf<EtcdError.ConnectError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Etcd.make>>>().toEqualTypeOf<EtcdError.ConnectError>()
    // composites add only what they add
    expectTypeOf<ErrorOf<ReturnType<typeof Lock.withLock<number, "mine", never>>>>().toEqualTypeOf<
      "mine" | EtcdError.LockError
    >()
    expectTypeOf<ErrorOf<ReturnType<typeof Lease.withLease<number, "mine", never>>>>().toEqualTypeOf<
      "mine" | EtcdError.LeaseGrantError | EtcdError.LeaseLost
    >()
  })

  it("the families say what cannot happen: a read is never ambiguous, only writes and locks are", () => {
    expectTypeOf<Extract<EtcdError.ReadError, EtcdError.AmbiguousOutcome>>().toBeNever()
    expectTypeOf<Extract<EtcdError.ReadError, EtcdError.LockTimeout | EtcdError.ConnectionFailed>>().toBeNever()
    expectTypeOf<Extract<EtcdError.LockError, EtcdError.Compacted>>().toBeNever()
    expectTypeOf<Extract<EtcdError.PutError, EtcdError.AmbiguousOutcome>>().toEqualTypeOf<EtcdError.AmbiguousOutcome>()
    expectTypeOf<Extract<EtcdError.CallError, EtcdError.TlsError>>().toBeNever()
    // the runtime lists and the types agree
    const readTags: ReadonlyArray<EtcdError.ReadError["_tag"]> = EtcdError.families.read
    expect(readTags).not.toContain("AmbiguousOutcome")
    expect(EtcdError.families.put).toContain("AmbiguousOutcome")
  })

  it("a handler for an impossible case is a type error", () => {
    const read = Kv.get("k").pipe(
      Effect.catchTags({
        Compacted: () => Effect.succeed(Option.none()),
        // @ts-expect-error a read cannot fail with LockTimeout
        LockTimeout: () => Effect.succeed(Option.none())
      })
    )
    expect(Effect.isEffect(read)).toBe(true)
  })

  it("an error outside a family becomes Unknown, a TLS failure once connected Unavailable", () => {
    const toRead = EtcdError.toFamily("read")
    const stray = toRead(new EtcdError.LockTimeout({ lockName: "l", timeout: Duration.seconds(1) }))
    expect(stray._tag).toBe("Unknown")
    expect(stray._tag === "Unknown" && stray.cause).toBeInstanceOf(EtcdError.LockTimeout)
    const tls = toRead(new EtcdError.TlsError({ endpoints: ["https://127.0.0.1:1"], reason: "certificate expired" }))
    expect(tls).toMatchObject({ _tag: "Unavailable", endpoints: ["https://127.0.0.1:1"] })
    const kept = new EtcdError.Compacted({ compactRevision: 5n })
    expect(toRead(kept)).toBe(kept)
  })
})

/** Runs a call expected to fail and checks the tag seen is the one expected and in the family declared. */
const failsWithin = <A, E extends EtcdError.EtcdError, R>(
  family: keyof typeof EtcdError.families,
  call: Effect.Effect<A, E, R>,
  expected: EtcdError.Tag
) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(call)
    expect(error._tag).toBe(expected)
    expect(EtcdError.families[family] as ReadonlyArray<string>).toContain(error._tag)
  })

layer(withServer({ maxRequestBytes: 64 * 1024 }), { excludeTestServices: true })("Error channels (run time)", (it) => {
  it.scoped("each failure a call meets is in the family its type declares", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("families")
      // a compacted revision
      const first = yield* Kv.put(`${p}k`, "1")
      const last = yield* Kv.put(`${p}k`, "2")
      yield* Kv.compact(last.revision)
      yield* failsWithin("read", Kv.get(`${p}k`, { revision: first.revision }), "Compacted")
      yield* failsWithin("read", Kv.range(KeyRange.prefix(p), { revision: first.revision }), "Compacted")
      yield* failsWithin("compact", Kv.compact(first.revision), "Compacted")
      yield* failsWithin(
        "watch",
        Watch.watch(`${p}k`, { startRevision: first.revision }).pipe(Stream.runDrain),
        "Compacted"
      )
      yield* failsWithin("txn", Txn.txn([Op.get(`${p}k`, { revision: first.revision })]), "Compacted")
      // an oversized value, an empty key, too many operations
      yield* failsWithin("put", Kv.put(`${p}big`, "x".repeat(128 * 1024)), "RequestTooLarge")
      yield* failsWithin("put", Kv.put("", "v"), "EmptyKey")
      yield* failsWithin("delete", Kv.delete(""), "EmptyKey")
      yield* failsWithin("txn", Txn.txn([Op.put(`${p}a`, "1"), Op.put(`${p}a`, "2")]), "DuplicateKey")
      // an unknown lease
      yield* failsWithin("lease", Lease.revoke(0x7eadbeefn), "LeaseNotFound")
      yield* failsWithin("lease", Lease.timeToLive(0x7eadbeefn), "LeaseNotFound")
      yield* failsWithin("lease", Lease.keepAliveOnce(0x7eadbeefn), "LeaseNotFound")
      yield* failsWithin("put", Kv.put(`${p}leased`, "v", { lease: 0x7eadbeefn }), "LeaseNotFound")
      const granted = yield* Lease.grant(30)
      yield* failsWithin("leaseGrant", Lease.grant(30, { id: granted.id }), "LeaseExists")
      yield* Lease.revoke(granted.id)
      // a lock that is held
      const held = yield* Lock.make(`${p}lock`)
      expect(held.key.startsWith(`${p}lock/`)).toBe(true)
      yield* failsWithin("lock", Effect.scoped(Lock.make(`${p}lock`, { timeout: "200 millis" })), "LockTimeout")
    }))

  it.scoped("a stopped member gives reads Timeout and writes AmbiguousOutcome, each in its family", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("stopped")
      yield* Kv.put(`${p}k`, "v")
      yield* Effect.acquireRelease(server.pause(0), () => server.resume(0))
      yield* failsWithin("read", Kv.get(`${p}k`, { timeout: "500 millis" }), "Timeout")
      yield* failsWithin("put", Kv.put(`${p}k`, "w", { timeout: "500 millis" }), "AmbiguousOutcome")
      yield* failsWithin("lease", Lease.revoke(1n, { timeout: "500 millis" }), "Timeout")
    }))
})

const rootPassword = "root-pw-e81b07"

layer(withServer({ auth: { rootPassword } }), { excludeTestServices: true })("Error channels with auth", (it) => {
  it.effect("wrong credentials fail the layer with AuthFailed, a call without them is refused in its family", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const wrong = yield* Effect.flip(Effect.scoped(Layer.build(Etcd.layer({
        endpoints: server.endpoints,
        username: "root",
        password: Redacted.make("not-it")
      }))))
      expect(wrong._tag).toBe("AuthFailed")
      expect(EtcdError.families.connect as ReadonlyArray<string>).toContain(wrong._tag)
      // no credentials at all: the server refuses the token it did not get
      const refused = yield* Effect.flip(Kv.get("k").pipe(Effect.provide(Etcd.layer({ endpoints: server.endpoints }))))
      expect(EtcdError.families.read as ReadonlyArray<string>).toContain(refused._tag)
    }))
})
