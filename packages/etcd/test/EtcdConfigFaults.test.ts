/**
 * `EtcdConfig`'s live values on a 3-member cluster: after a compaction past the mirror's
 * revision (its member paused meanwhile), and while members are killed and restarted. A
 * live value never goes back: each value the stream emits is newer than the one before,
 * and the stream ends on the last value written. Every loop is bounded; all traffic is
 * loopback.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Chunk, Config, Duration, Effect, Fiber, Option, Ref, Stream, SubscriptionRef } from "effect"
import { Compare, Etcd, EtcdConfig, Kv, Mirror, Op, Txn } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

const cluster = {
  requestTimeout: "2 seconds",
  connectTimeout: "5 seconds",
  keepAliveTime: "5 seconds",
  keepAliveTimeout: "2 seconds"
} as const

const memberInUse = Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  return server.endpoints.indexOf(yield* Etcd.currentEndpoint)
})

/** A counter and a label written together: a value holds both, and they must agree. */
const counter = Config.all({ n: Config.integer("n"), label: Config.string("label") })

/** Writes n and its label in one txn, only over n - 1: the stored counter only goes up. */
const bump = (p: string, n: number) =>
  Txn.txnCompare(
    [Compare.value(`${p}n`).equals(String(n - 1))],
    [Op.put(`${p}n`, String(n)), Op.put(`${p}label`, `label-${n}`)]
  )

/**
 * Waits (bounded) until `fiber` is suspended: a fiber that starts consuming a Stream of
 * changes subscribes before it first waits, so the subscription exists once it is.
 */
const awaitSubscribed = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if ((yield* Fiber.status(fiber))._tag === "Suspended") return
      yield* Effect.yieldNow()
    }
    throw new Error("the consumer never waited for a change")
  })

/** Each value agrees with itself and is newer than the one before. */
const expectForward = (values: ReadonlyArray<{ readonly n: number; readonly label: string }>) => {
  for (let i = 0; i < values.length; i++) {
    expect(values[i].label).toBe(`label-${values[i].n}`)
    if (i > 0) expect(values[i].n).toBeGreaterThan(values[i - 1].n)
  }
}

layer(withServer({ members: 3 }, cluster), { excludeTestServices: true })("EtcdConfig on a 3-member cluster", (it) => {
  it.scoped(
    "a compaction past the mirror's revision while its member was paused: resynced, never stale",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("config-paused")
        yield* Txn.txn([Op.put(`${p}n`, "0"), Op.put(`${p}label`, "label-0")])
        const config = yield* EtcdConfig.make(p)
        const live = yield* config.live(counter)
        // a mirror of the same prefix, on the same connection: it shows the resync the config's went through
        const probe = yield* Mirror.prefix(p)
        yield* probe.ready
        const resynced = yield* probe.changes.pipe(
          Stream.filter((change) => change._tag === "Resynced"),
          Stream.runHead,
          Effect.fork
        )
        const seen = yield* live.values.pipe(Stream.takeUntil(({ n }) => n === 6), Stream.runCollect, Effect.fork)
        yield* awaitSubscribed(resynced)
        yield* awaitSubscribed(seen)
        const paused = yield* memberInUse
        expect(paused).toBeGreaterThanOrEqual(0)
        yield* server.pause(paused)
        yield* Effect.gen(function*() {
          // a read moves the client to a live member; then writes and a compaction there
          yield* Kv.get(`${p}n`)
          for (let n = 1; n <= 5; n++) yield* bump(p, n)
          const { revision } = yield* Kv.put(`${p}other`, "x")
          yield* Kv.compact(revision)
          // long enough for the keepalive to give up on the paused member
          yield* Effect.sleep(Duration.seconds(8))
        }).pipe(Effect.ensuring(server.resume(paused)))
        yield* bump(p, 6)
        const values = Chunk.toReadonlyArray(yield* Fiber.join(seen).pipe(Effect.timeout(Duration.seconds(30))))
        expect(Option.isSome(yield* Fiber.join(resynced).pipe(Effect.timeout(Duration.seconds(30))))).toBe(true)
        expectForward(values)
        // the five bumps made while the watch was stuck arrive as one value, from the new list (or
        // with the next bump, if it landed before the list)
        expect(values[0]).toEqual({ n: 0, label: "label-0" })
        expect(values[values.length - 1]).toEqual({ n: 6, label: "label-6" })
        expect(values.map(({ n }) => n).filter((n) => n > 0 && n < 5)).toEqual([])
        expect(yield* SubscriptionRef.get(live.ref)).toEqual({ n: 6, label: "label-6" })
      }),
    90_000
  )

  it.scoped(
    "members killed and restarted: the live value never goes back, and ends on the last write",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("config-chaos")
        yield* Txn.txn([Op.put(`${p}n`, "0"), Op.put(`${p}label`, "label-0")])
        const config = yield* EtcdConfig.make(p)
        const live = yield* config.live(counter)
        const emitted: Array<{ readonly n: number; readonly label: string }> = []
        const refBehind: Array<string> = []
        yield* live.values.pipe(
          Stream.runForEach((value) =>
            Effect.gen(function*() {
              // the ref holds this value or a newer one, never an older one
              const held = yield* SubscriptionRef.get(live.ref)
              if (held.n < value.n) refBehind.push(`${held.n} < ${value.n}`)
              emitted.push(value)
            })
          ),
          Effect.forkScoped
        )
        const stopped = yield* Ref.make(false)
        const faults: Array<string> = []
        const writer = yield* Effect.gen(function*() {
          let n = 0
          for (let i = 0; i < 5_000 && !(yield* Ref.get(stopped)); i++) {
            const result = yield* Effect.either(bump(p, n + 1))
            if (result._tag === "Left") faults.push(result.left._tag)
            // what is stored now, whatever a failed or ambiguous write did
            const stored = yield* Effect.option(Kv.get(`${p}n`))
            if (Option.isSome(stored) && Option.isSome(stored.value)) n = Number(stored.value.value)
            yield* Effect.sleep(Duration.millis(10))
          }
          return n
        }).pipe(Effect.fork)

        yield* Effect.sleep(Duration.seconds(2))
        const inUse = yield* memberInUse
        yield* server.kill(inUse)
        yield* Effect.sleep(Duration.seconds(5))
        yield* server.start(inUse)
        yield* Effect.sleep(Duration.seconds(3))
        yield* server.kill((inUse + 1) % 3)
        yield* Effect.sleep(Duration.seconds(4))
        yield* server.start((inUse + 1) % 3)
        yield* Effect.sleep(Duration.seconds(2))
        yield* Ref.set(stopped, true)
        const last = yield* Fiber.join(writer)
        const final = yield* bump(p, last + 1)
        expect(final.succeeded).toBe(true)
        const reached = yield* live.values.pipe(
          Stream.filter(({ n }) => n === last + 1),
          Stream.runHead,
          Effect.timeout(Duration.seconds(30))
        )
        expect(reached).toEqual(Option.some({ n: last + 1, label: `label-${last + 1}` }))

        expect(
          faults.filter((tag) => !["AmbiguousOutcome", "EtcdTimeout", "EtcdUnavailable", "NoLeader"].includes(tag))
        ).toEqual([])
        expect(last).toBeGreaterThan(100)
        expectForward(emitted)
        expect(refBehind).toEqual([])
        expect(yield* SubscriptionRef.get(live.ref)).toEqual({ n: last + 1, label: `label-${last + 1}` })
      }),
    120_000
  )
})
