/**
 * Precise error channels: each public function is typed with the family of errors it can
 * produce (checked by the compiler), and each failure a call really meets against a real
 * etcd is in that family (checked here at run time).
 *
 * The `expectTypeOf` assertions and the `@ts-expect-error` lines do nothing when vitest
 * runs this file: they bite in `pnpm check` (`tsc -p tsconfig.json`, whose `include` lists every
 * package's `test` folder), which CI (`.ci/run`, step "typecheck") runs before the tests. A wrong
 * family, or a handler for an impossible case that the compiler accepts, fails there.
 */
import { EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, expectTypeOf, it, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Redacted, Schema, Scope, Stream } from "effect"
import type { Mirror, RwLock, Session } from "effect-etcd"
import {
  Auth,
  Cluster,
  Election,
  Etcd,
  EtcdError,
  KeyRange,
  Keyspace,
  Kv,
  Lease,
  Lock,
  Maintenance,
  Op,
  Stm,
  Txn,
  Watch
} from "effect-etcd"
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
    expectTypeOf<ErrorOf<ReturnType<typeof flags.get>>>().toEqualTypeOf<
      EtcdError.ReadError | EtcdError.EtcdDecodeError
    >()
    expectTypeOf<ErrorOf<ReturnType<typeof flags.put>>>().toEqualTypeOf<
      EtcdError.PutError | EtcdError.EtcdDecodeError
    >()
    expectTypeOf<ErrorOf<ReturnType<typeof flags.watch>>>().toEqualTypeOf<
      EtcdError.WatchError | EtcdError.EtcdDecodeError
    >()
    expectTypeOf<ErrorOf<Mirror.Mirror<string, string>["snapshot"]>>().toEqualTypeOf<EtcdError.MirrorError>()
    expectTypeOf<ErrorOf<ReturnType<Mirror.Mirror<string, string>["waitFor"]>>>().toEqualTypeOf<
      EtcdError.MirrorError | EtcdError.MirrorTimeout
    >()
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

  it("the recipes and the administration modules name their families too", () => {
    // Election
    expectTypeOf<ErrorOf<ReturnType<typeof Election.campaign>>>().toEqualTypeOf<EtcdError.CampaignError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Election.proclaim>>>().toEqualTypeOf<EtcdError.ProclaimError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Election.resign>>>().toEqualTypeOf<EtcdError.DeleteError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Election.leader>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Election.observe>>>().toEqualTypeOf<EtcdError.WatchError>()
    expectTypeOf<ErrorOf<ReturnType<Election.Leadership["proclaim"]>>>().toEqualTypeOf<EtcdError.ProclaimError>()
    expectTypeOf<ErrorOf<Election.Leadership["resign"]>>().toEqualTypeOf<EtcdError.DeleteError>()
    expectTypeOf<ErrorOf<Election.Leadership["lost"]>>().toEqualTypeOf<EtcdError.LeaseLost>()
    expectTypeOf<ErrorOf<ReturnType<typeof Election.withLeadership<number, "mine", never>>>>().toEqualTypeOf<
      "mine" | EtcdError.CampaignError
    >()
    // Stm: the transaction's own errors pass through, untouched
    expectTypeOf<ErrorOf<ReturnType<typeof Stm.runWithRevision<number, "mine", never>>>>().toEqualTypeOf<
      "mine" | EtcdError.StmError
    >()
    expectTypeOf<ErrorOf<ReturnType<typeof Stm.get>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Stm.modRevision>>>().toEqualTypeOf<EtcdError.ReadError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Stm.put>>>().toEqualTypeOf<never>()
    expectTypeOf<ErrorOf<ReturnType<typeof Stm.delete>>>().toEqualTypeOf<never>()
    expectTypeOf<ErrorOf<ReturnType<typeof Stm.run<number, "mine", Stm.Transaction>>>>().toEqualTypeOf<
      "mine" | EtcdError.StmError
    >()
    // Maintenance
    expectTypeOf<ErrorOf<ReturnType<typeof Maintenance.status>>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<typeof Maintenance.alarms>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Maintenance.disarm>>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Maintenance.defragment>>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Maintenance.hashKv>>>().toEqualTypeOf<EtcdError.HashKvError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Maintenance.moveLeader>>>().toEqualTypeOf<EtcdError.StateChangeError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Maintenance.snapshot>>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Maintenance.snapshotToFile>>>().toEqualTypeOf<EtcdError.SnapshotFailed>()
    // Cluster
    expectTypeOf<ErrorOf<typeof Cluster.members>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Cluster.addMember>>>().toEqualTypeOf<EtcdError.MemberAddError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Cluster.promoteMember>>>().toEqualTypeOf<EtcdError.MemberPromoteError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Cluster.removeMember>>>().toEqualTypeOf<EtcdError.MemberRemoveError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Cluster.updateMember>>>().toEqualTypeOf<EtcdError.MemberUpdateError>()
    // Auth
    expectTypeOf<ErrorOf<typeof Auth.enable>>().toEqualTypeOf<EtcdError.StateChangeError>()
    expectTypeOf<ErrorOf<typeof Auth.disable>>().toEqualTypeOf<EtcdError.AdminWriteError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.addUser>>>().toEqualTypeOf<EtcdError.CreateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.addRole>>>().toEqualTypeOf<EtcdError.CreateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.getUser>>>().toEqualTypeOf<EtcdError.LookupError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.getRole>>>().toEqualTypeOf<EtcdError.LookupError>()
    expectTypeOf<ErrorOf<typeof Auth.listUsers>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<typeof Auth.listRoles>>().toEqualTypeOf<EtcdError.CallError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.deleteUser>>>().toEqualTypeOf<EtcdError.UpdateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.changePassword>>>().toEqualTypeOf<EtcdError.UpdateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.grantRole>>>().toEqualTypeOf<EtcdError.UpdateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.revokeRole>>>().toEqualTypeOf<EtcdError.UpdateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.deleteRole>>>().toEqualTypeOf<EtcdError.UpdateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.grantPermission>>>().toEqualTypeOf<EtcdError.UpdateError>()
    expectTypeOf<ErrorOf<ReturnType<typeof Auth.revokePermission>>>().toEqualTypeOf<EtcdError.UpdateError>()
    // endpoint discovery
    expectTypeOf<ErrorOf<typeof Etcd.syncEndpoints>>().toEqualTypeOf<EtcdError.CallError>()
    // SnapshotFailed is one of the union's, and Maintenance's is the same class
    expectTypeOf<Extract<EtcdError.EtcdError, { readonly _tag: "SnapshotFailed" }>>().toEqualTypeOf<
      EtcdError.SnapshotFailed
    >()
    expect(Maintenance.SnapshotFailed).toBe(EtcdError.SnapshotFailed)
    expect(EtcdError.isEtcdError(new Maintenance.SnapshotFailed({ path: "p", bytesReceived: 0, cause: "c" }))).toBe(
      true
    )
  })

  it("the families say what cannot happen: a read is never ambiguous, only writes and locks are", () => {
    expectTypeOf<Extract<EtcdError.ReadError, EtcdError.AmbiguousOutcome>>().toBeNever()
    expectTypeOf<Extract<EtcdError.ReadError, EtcdError.LockTimeout | EtcdError.EtcdConnectionFailed>>().toBeNever()
    expectTypeOf<Extract<EtcdError.LockError, EtcdError.Compacted>>().toBeNever()
    expectTypeOf<Extract<EtcdError.PutError, EtcdError.AmbiguousOutcome>>().toEqualTypeOf<EtcdError.AmbiguousOutcome>()
    expectTypeOf<Extract<EtcdError.CallError, EtcdError.EtcdTlsError>>().toBeNever()
    // the runtime lists and the types agree
    const readTags: ReadonlyArray<EtcdError.ReadError["_tag"]> = EtcdError.families.read
    expect(readTags).not.toContain("AmbiguousOutcome")
    expect(EtcdError.families.put).toContain("AmbiguousOutcome")
  })

  it("an error outside a family becomes EtcdUnknown, a TLS failure once connected EtcdUnavailable", () => {
    const toRead = EtcdError.toFamily("read")
    const stray = toRead(new EtcdError.LockTimeout({ lockName: "l", timeout: Duration.seconds(1) }))
    expect(stray._tag).toBe("EtcdUnknown")
    expect(stray._tag === "EtcdUnknown" && stray.cause).toBeInstanceOf(EtcdError.LockTimeout)
    const tls = toRead(
      new EtcdError.EtcdTlsError({ endpoints: ["https://127.0.0.1:1"], reason: "certificate expired" })
    )
    expect(tls).toMatchObject({ _tag: "EtcdUnavailable", endpoints: ["https://127.0.0.1:1"] })
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
      const granted = yield* Lease.grant("30 seconds")
      yield* failsWithin("leaseGrant", Lease.grant("30 seconds", { id: granted.id }), "LeaseExists")
      yield* Lease.revoke(granted.id)
      // a lock that is held
      const held = yield* Lock.make(`${p}lock`)
      expect(held.key.startsWith(`${p}lock/`)).toBe(true)
      yield* failsWithin("lock", Effect.scoped(Lock.make(`${p}lock`, { timeout: "200 millis" })), "LockTimeout")
    }))

  it.scoped("elections and STM meet failures of their families only", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("recipes")
      // a campaign that cannot win in time
      const leadership = yield* Election.campaign(`${p}election`, "first")
      yield* failsWithin(
        "campaign",
        Effect.scoped(Election.campaign(`${p}election`, "second", { timeout: "200 millis" })),
        "CampaignTimeout"
      )
      yield* failsWithin("campaign", Effect.scoped(Election.campaign("", "x")), "EmptyKey")
      // a deposed leader proclaims
      yield* Election.resign(leadership)
      yield* failsWithin("proclaim", Election.proclaim(leadership, "again"), "NotLeader")
      // a transaction that conflicts on every attempt, and one given a bad option
      let n = 0
      yield* failsWithin(
        "stm",
        Stm.run(
          Effect.gen(function*() {
            yield* Stm.get(`${p}hot`)
            yield* Kv.put(`${p}hot`, String(n++))
            yield* Stm.put(`${p}out`, "never")
          }),
          { isolation: "serializable", retries: 1 }
        ),
        "StmRetriesExhausted"
      )
      expect(n).toBe(2)
      yield* failsWithin("stm", Stm.run(Effect.void, { retries: -1 }), "EtcdInvalidArgument")
      yield* failsWithin("read", Stm.run(Stm.get("")), "EmptyKey")
    }))

  it.scoped("administration calls meet failures of their families only", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const endpoint = server.members[0].clientUrl
      const p = uniquePrefix("admin").replaceAll("/", "-")
      // members
      const unknownMember = 0x7eadbeefn
      yield* failsWithin("memberRemove", Cluster.removeMember(unknownMember), "EtcdNotFound")
      yield* failsWithin("memberUpdate", Cluster.updateMember(unknownMember, ["http://127.0.0.1:1"]), "EtcdNotFound")
      yield* failsWithin("memberPromote", Cluster.promoteMember(unknownMember), "EtcdNotFound")
      const [self] = yield* Cluster.members
      yield* failsWithin("memberPromote", Cluster.promoteMember(self.id), "EtcdPreconditionFailed")
      yield* failsWithin(
        "memberAdd",
        Cluster.addMember([server.members[0].peerUrl], { learner: true }),
        "EtcdAlreadyExists"
      )
      expect(yield* Cluster.members).toHaveLength(1)
      // users and roles
      yield* failsWithin("lookup", Auth.getUser(`${p}nobody`), "EtcdNotFound")
      yield* failsWithin("lookup", Auth.getRole(`${p}nothing`), "EtcdNotFound")
      yield* failsWithin("update", Auth.deleteUser(`${p}nobody`), "EtcdNotFound")
      yield* failsWithin("update", Auth.grantRole(`${p}nobody`, `${p}nothing`), "EtcdNotFound")
      yield* failsWithin("create", Auth.addUser(""), "EtcdInvalidArgument")
      yield* Auth.addRole(`${p}role`)
      yield* failsWithin("create", Auth.addRole(`${p}role`), "EtcdAlreadyExists")
      yield* failsWithin("update", Auth.revokePermission(`${p}role`, KeyRange.prefix(p)), "EtcdNotFound")
      yield* Auth.deleteRole(`${p}role`)
      // no root user: auth cannot be turned on
      yield* failsWithin("stateChange", Auth.enable, "EtcdPreconditionFailed")
      // maintenance
      const first = yield* Kv.put(`${p}k`, "1")
      const last = yield* Kv.put(`${p}k`, "2")
      yield* Kv.compact(last.revision)
      yield* failsWithin("hashKv", Maintenance.hashKv(endpoint, first.revision), "Compacted")
      yield* failsWithin("hashKv", Maintenance.hashKv(endpoint, last.revision + 1_000_000n), "FutureRevision")
      yield* failsWithin("stateChange", Maintenance.moveLeader(unknownMember), "EtcdPreconditionFailed")
      yield* failsWithin("call", Maintenance.status("http://127.0.0.1:99999"), "EtcdInvalidArgument")
      const unwritable = yield* Effect.flip(
        Maintenance.snapshotToFile("/nonexistent-dir-e81b07/snapshot.db").pipe(Effect.provide(NodeContext.layer))
      )
      expect(unwritable._tag).toBe("SnapshotFailed")
      expect(EtcdError.isEtcdError(unwritable)).toBe(true)
    }))

  it.scoped("a stopped member gives reads EtcdTimeout and writes AmbiguousOutcome, each in its family", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("stopped")
      yield* Kv.put(`${p}k`, "v")
      yield* Effect.acquireRelease(server.pause(0), () => server.resume(0))
      yield* failsWithin("read", Kv.get(`${p}k`, { timeout: "500 millis" }), "EtcdTimeout")
      yield* failsWithin("put", Kv.put(`${p}k`, "w", { timeout: "500 millis" }), "AmbiguousOutcome")
      yield* failsWithin("lease", Lease.revoke(1n, { timeout: "500 millis" }), "EtcdTimeout")
    }))
})

/**
 * A call whose handlers hold a type error on purpose: the compiler no longer knows what it
 * requires, which is the client.
 */
const handled = <A>(call: Effect.Effect<A, unknown, unknown>) => call as Effect.Effect<A, unknown, Etcd.Etcd>

layer(withServer(), { excludeTestServices: true })("Error channels (handlers)", (it) => {
  // each call fails for real, its handler catches the failure, and a handler for a case
  // its family lacks is a type error (`pnpm check` fails on an unused @ts-expect-error)
  it.effect("a handler for a case the call meets catches it; one for an impossible case is a type error", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("handlers").replaceAll("/", "-")
      const first = yield* Kv.put(`${p}k`, "1")
      yield* Kv.compact((yield* Kv.put(`${p}k`, "2")).revision)
      const read = yield* handled(
        Kv.get(`${p}k`, { revision: first.revision }).pipe(
          Effect.catchTags({
            Compacted: (error) => Effect.succeed(`Compacted at ${error.compactRevision}`),
            // @ts-expect-error a read cannot fail with LockTimeout
            LockTimeout: () => Effect.succeed("LockTimeout")
          })
        )
      )
      expect(read).toMatch(/^Compacted at \d+$/)
      // reading the leader is a read; a client whose scope has closed refuses it
      const scope = yield* Scope.make()
      const closed = yield* Scope.extend(Etcd.make({ endpoints: server.endpoints }), scope)
      yield* Scope.close(scope, Exit.void)
      const leader = yield* handled(
        Election.leader(`${p}election`).pipe(
          Effect.provideService(Etcd.Etcd, closed),
          Effect.catchTags({
            ClientClosed: () => Effect.succeed("ClientClosed"),
            // @ts-expect-error reading the leader is a read: it cannot fail with LockTimeout
            LockTimeout: () => Effect.succeed("LockTimeout")
          })
        )
      )
      expect(leader).toBe("ClientClosed")
      const status = yield* handled(
        Maintenance.status("http://127.0.0.1:99999").pipe(
          Effect.catchTags({
            EtcdInvalidArgument: () => Effect.succeed("EtcdInvalidArgument"),
            // @ts-expect-error a member's status is no campaign
            CampaignTimeout: () => Effect.succeed("CampaignTimeout")
          })
        )
      )
      expect(status).toBe("EtcdInvalidArgument")
      const user = yield* handled(
        Auth.getUser(`${p}nobody`).pipe(
          Effect.catchTags({
            EtcdNotFound: () => Effect.succeed("EtcdNotFound"),
            // @ts-expect-error a lookup is never ambiguous
            AmbiguousOutcome: () => Effect.succeed("AmbiguousOutcome")
          })
        )
      )
      expect(user).toBe("EtcdNotFound")
      const removed = yield* handled(
        Cluster.removeMember(0x7eadbeefn).pipe(
          Effect.catchTags({
            EtcdNotFound: () => Effect.succeed("EtcdNotFound"),
            // @ts-expect-error only a promotion waits for a learner
            LearnerNotReady: () => Effect.succeed("LearnerNotReady")
          })
        )
      )
      expect(removed).toBe("EtcdNotFound")
      expect(yield* Cluster.members).toHaveLength(1)
    }))
})

const rootPassword = "root-pw-e81b07"

layer(withServer({ auth: { rootPassword } }), { excludeTestServices: true })("Error channels with auth", (it) => {
  it.effect("wrong credentials fail the layer with EtcdAuthFailed, a call without them is refused in its family", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const wrong = yield* Effect.flip(Effect.scoped(Layer.build(Etcd.layer({
        endpoints: server.endpoints,
        username: "root",
        password: Redacted.make("not-it")
      }))))
      expect(wrong._tag).toBe("EtcdAuthFailed")
      expect(EtcdError.families.connect as ReadonlyArray<string>).toContain(wrong._tag)
      // no credentials at all: the server refuses the token it did not get
      const refused = yield* Effect.flip(Kv.get("k").pipe(Effect.provide(Etcd.layer({ endpoints: server.endpoints }))))
      expect(EtcdError.families.read as ReadonlyArray<string>).toContain(refused._tag)
    }))
})
