import { EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Exit, Layer, type Scope } from "effect"
import {
  Election,
  Etcd,
  EtcdMemory,
  KeyRange,
  Kv,
  Lease,
  Lock,
  Maintenance,
  Mirror,
  Op,
  RwLock,
  Session,
  Txn
} from "effect-etcd"

// One unit rule for durations: every duration of the API, an option or a parameter, is an
// `Etcd.DurationWithUnit` ("15 seconds", Duration.seconds(15)), never a bare number, so
// `{ ttl: 15, timeout: 30 }` (15 seconds of TTL, 30 milliseconds of patience under the old
// types) cannot be written. Each `@ts-expect-error` below is a line that must not compile
// (`pnpm check` fails on one that does); the same line, run as plain JavaScript would run it,
// fails with `EtcdInvalidArgument` naming the option.

const work = Effect.succeed("done")
const hold = (lease: Lease.Lease) => Effect.succeed(lease.id)

interface Refused {
  readonly name: string
  readonly option: string
  readonly run: Effect.Effect<unknown, unknown, Etcd.Etcd | EtcdMemory.EtcdMemory | Scope.Scope>
}

/** Each case as written by a caller that types a bare number. */
const refused: ReadonlyArray<Refused> = [
  {
    name: "Lock.withLock(name, effect, { ttl: 15, timeout: 30 }), the report of the issue",
    option: "ttl",
    // @ts-expect-error a bare number is no duration: its unit is not written
    run: Lock.withLock("jobs", work, { ttl: 15, timeout: 30 })
  },
  {
    name: "effect.pipe(Lock.withLock(name, { ttl: 15, timeout: 30 }))",
    option: "ttl",
    // @ts-expect-error a bare number is no duration
    run: work.pipe(Lock.withLock("jobs", { ttl: 15, timeout: 30 }))
  },
  {
    name: "Lock.withLock with the ttl right and the timeout bare",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: work.pipe(Lock.withLock("jobs", { ttl: "15 seconds", timeout: 30 }))
  },
  {
    name: "Lock.make({ ttl: 15 })",
    option: "ttl",
    // @ts-expect-error a bare number is no duration
    run: Lock.make("jobs", { ttl: 15 })
  },
  {
    name: "Lock.make({ releaseTimeout: 5000 })",
    option: "releaseTimeout",
    // @ts-expect-error a bare number is no duration
    run: Lock.make("jobs", { releaseTimeout: 5000 })
  },
  {
    name: "RwLock.read({ timeout: 30 })",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: RwLock.read("rw", { timeout: 30 })
  },
  {
    name: "RwLock.withWrite({ ttl: 15 })",
    option: "ttl",
    // @ts-expect-error a bare number is no duration
    run: work.pipe(RwLock.withWrite("rw", { ttl: 15 }))
  },
  {
    name: "Election.campaign({ ttl: 15, timeout: 30 })",
    option: "ttl",
    // @ts-expect-error a bare number is no duration
    run: Election.campaign("election", "me", { ttl: 15, timeout: 30 })
  },
  {
    name: "Election.withLeadership({ timeout: 30 })",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: Election.withLeadership(() => work, "election", "me", { timeout: 30 })
  },
  {
    name: "Lease.grant(10)",
    option: "ttl",
    // @ts-expect-error a bare number is no duration (etcetra's grant_lease(10) is Lease.grant("10 seconds"))
    run: Lease.grant(10)
  },
  {
    name: "Lease.grant(10n)",
    option: "ttl",
    // @ts-expect-error a bare bigint (nanoseconds to Effect) is no duration either
    run: Lease.grant(10n)
  },
  {
    name: "Lease.grant with a bare timeout",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: Lease.grant("10 seconds", { timeout: 1000 })
  },
  {
    name: "Lease.make(10)",
    option: "ttl",
    // @ts-expect-error a bare number is no duration
    run: Lease.make(10)
  },
  {
    name: "Lease.make with a bare interval",
    option: "interval",
    // @ts-expect-error a bare number is no duration
    run: Lease.make("10 seconds", { interval: 500 })
  },
  {
    name: "Lease.make with a bare revokeTimeout",
    option: "revokeTimeout",
    // @ts-expect-error a bare number is no duration
    run: Lease.make("10 seconds", { revokeTimeout: 5000 })
  },
  {
    name: "Lease.withLease(f, 10)",
    option: "ttl",
    // @ts-expect-error a bare number is no duration
    run: Lease.withLease(hold, 10)
  },
  {
    name: "Lease.keepAlive(id, { interval: 500 })",
    option: "interval",
    // @ts-expect-error a bare number is no duration
    run: Lease.keepAlive(1n, { interval: 500 })
  },
  {
    name: "Lease.revoke(id, { timeout: 1000 })",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: Lease.revoke(1n, { timeout: 1000 })
  },
  {
    name: "Session.make({ ttl: 10 })",
    option: "ttl",
    // @ts-expect-error a bare number is no duration
    run: Session.make({ ttl: 10 })
  },
  {
    name: "Session.layer({ interval: 500 })",
    option: "interval",
    // @ts-expect-error a bare number is no duration
    run: Layer.build(Session.layer({ interval: 500 }))
  },
  {
    name: "Kv.get({ timeout: 1000 })",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: Kv.get("k", { timeout: 1000 })
  },
  {
    name: "Kv.put({ timeout: 1000 })",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: Kv.put("k", "v", { timeout: 1000 })
  },
  {
    name: "Txn.txn({ timeout: 1000 })",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: Txn.txn([Op.get("k")], { timeout: 1000 })
  },
  {
    name: "Maintenance.status({ timeout: 1000 })",
    option: "timeout",
    // @ts-expect-error a bare number is no duration
    run: Maintenance.status(undefined, { timeout: 1000 })
  },
  {
    name: "Mirror.make({ maxRetryDelay: 5000 })",
    option: "maxRetryDelay",
    run: Effect.flatMap(
      // @ts-expect-error a bare number is no duration
      Mirror.make(Mirror.textSource(KeyRange.prefix("mirrored/")), { maxRetryDelay: 5000 }),
      (mirror) => mirror.ready
    )
  },
  {
    name: "mirror.waitFor(revision, { timeout: 1000 })",
    option: "timeout",
    run: Effect.flatMap(
      Mirror.prefix("mirrored/"),
      // @ts-expect-error a bare number is no duration
      (mirror) => mirror.waitFor(1n, { timeout: 1000 })
    )
  },
  {
    name: "Etcd.make({ requestTimeout: 1000 })",
    option: "requestTimeout",
    // @ts-expect-error a bare number is no duration
    run: Etcd.make({ endpoints: ["http://127.0.0.1:1"], requestTimeout: 1000 })
  },
  {
    name: "Etcd.make({ autoSyncInterval: 30000 })",
    option: "autoSyncInterval",
    // @ts-expect-error a bare number is no duration
    run: Etcd.make({ endpoints: ["http://127.0.0.1:1"], autoSyncInterval: 30000 })
  },
  {
    name: "Etcd.make({ retrySchedule: Etcd.retrySchedule({ base: 50 }) })",
    option: "retrySchedule.base",
    // @ts-expect-error a bare number is no duration
    run: Etcd.make({ endpoints: ["http://127.0.0.1:1"], retrySchedule: Etcd.retrySchedule({ base: 50 }) })
  },
  {
    name: "EtcdMemory.make({ minLeaseTtl: 1 })",
    option: "minLeaseTtl",
    // @ts-expect-error a bare number is no duration
    run: EtcdMemory.make({ minLeaseTtl: 1 })
  },
  {
    name: "EtcdMemory.hangFor(1000)",
    option: "duration",
    // @ts-expect-error a bare number is no duration
    run: EtcdMemory.hangFor(1000)
  }
]

describe("a bare number is refused", () => {
  for (const { name, option, run } of refused) {
    it.scoped(`${name}: InvalidArgument naming ${option}`, () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(run)
        expect(exit).toMatchObject(Exit.fail({ _tag: "EtcdInvalidArgument", option }))
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
          expect((exit.cause.error as { message: string }).message).toMatch(/duration with its unit/)
        }
      }).pipe(Effect.provide(EtcdMemory.layer())))
  }

  it.scoped("@effect-etcd/testing: EtcdServer's authTokenTtl, before anything starts", () =>
    Effect.gen(function*() {
      // @ts-expect-error a bare number is no duration
      const error = yield* Effect.flip(EtcdServer.make({ auth: { authTokenTtl: 60 } }))
      expect(error._tag).toBe("EtcdServerError")
      expect(error.message).toMatch(/authTokenTtl must be a duration with its unit.*got 60/)
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("durations with their unit", () => {
  it("the type takes what Effect writes with a unit, and neither number nor bigint", () => {
    expectTypeOf<"15 seconds">().toMatchTypeOf<Etcd.DurationWithUnit>()
    expectTypeOf<Duration.Duration>().toMatchTypeOf<Etcd.DurationWithUnit>()
    expectTypeOf<readonly [seconds: number, nanos: number]>().toMatchTypeOf<Etcd.DurationWithUnit>()
    expectTypeOf<number>().not.toMatchTypeOf<Etcd.DurationWithUnit>()
    expectTypeOf<bigint>().not.toMatchTypeOf<Etcd.DurationWithUnit>()
    expectTypeOf<Lease.Ttl>().toEqualTypeOf<Etcd.DurationWithUnit>()
  })

  it.scoped("{ ttl: \"15 seconds\", timeout: Duration.seconds(30) } holds the lock with a 15 second lease", () =>
    Effect.gen(function*() {
      const lock = yield* Lock.make("units/lock", { ttl: "15 seconds", timeout: Duration.seconds(30) })
      expect(lock.lease.ttl).toBe(15)
      expect((yield* Lease.grant([2, 500_000_000])).ttl).toBe(3)
      expect((yield* Lease.grant("1500 millis", { timeout: "5 seconds" })).ttl).toBe(2)
    }).pipe(Effect.provide(EtcdMemory.layer())))

  it.scoped("EtcdMemory's minLeaseTtl is a duration too", () =>
    Effect.gen(function*() {
      expect((yield* Lease.grant("1 second")).ttl).toBe(1)
    }).pipe(Effect.provide(EtcdMemory.layer({ minLeaseTtl: "1 second" }))))

  it.effect("layerConfig reads durations with Config.duration, and refuses a bare number there", () =>
    Effect.gen(function*() {
      const read = (env: Record<string, string>) =>
        Config.duration("ETCD_REQUEST_TIMEOUT").pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
        )
      const timeout: Etcd.DurationWithUnit = yield* read({ ETCD_REQUEST_TIMEOUT: "3 seconds" })
      expect(Duration.toMillis(timeout)).toBe(3000)
      expect((yield* Effect.flip(read({ ETCD_REQUEST_TIMEOUT: "3000" })))._op).toBe("InvalidData")
      const config = yield* Etcd.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ETCD_CONNECT_TIMEOUT", "2 seconds"]])))
      )
      const options: Etcd.EtcdOptions = config
      expect(options.connectTimeout).toEqual(Duration.seconds(2))
    }))
})
