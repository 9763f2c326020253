/**
 * A sharded counter on 3 runners of `@effect/cluster`, coordinated by etcd
 * (`@effect-etcd/cluster`): each runner registers under a lease, takes shard locks attached to
 * it, and serves the counters whose shards it holds. A counter keeps its value in etcd and
 * writes it through a txn fenced by its shard's lock, so a runner that lost the shard (paused,
 * cut off) can never overwrite the new owner's count.
 *
 * The runners here share one process for brevity (each has its own etcd client, lease, socket
 * server and `Sharding`); in production each is its own process, built the same way with
 * `EtcdClusterSocket.layer`. Runner 3 stops half way: its shards move to the other two and the
 * counts go on from where they were.
 *
 * `pnpm example cluster` runs `program` against a throwaway etcd.
 */
import { EtcdClusterSocket, EtcdRunnerStorage } from "@effect-etcd/cluster"
import { Ports } from "@effect-etcd/testing"
import * as Entity from "@effect/cluster/Entity"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as Rpc from "@effect/rpc/Rpc"
import { Console, Effect, Exit, Layer, Option, Schedule, Schema, Scope } from "effect"
import { Etcd, KeyRange, Kv, Op, Txn } from "effect-etcd"

/** The counter entity: `Increment` adds to the count and answers it, with the runner that served it. */
export const Counter = Entity.make("Counter", [
  Rpc.make("Increment", {
    payload: { by: Schema.Number },
    success: Schema.Struct({ count: Schema.Number, runner: Schema.Number }),
    // the shard moved while the message was on its way, or etcd could not be reached: sent again
    error: Schema.Literal("ShardMoved", "StorageFailed")
  })
])

/** The counter's behaviour on the runner listening on `port`: the count lives in etcd, written fenced. */
const CounterLive = (prefix: string, port: number) =>
  Counter.toLayer(Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    const locks = yield* EtcdRunnerStorage.ShardLocks
    const etcd = yield* Etcd.Etcd
    const key = `${prefix}counters/${address.entityId}`
    return {
      Increment: ({ payload }) =>
        Effect.gen(function*() {
          const lock = yield* locks.get(address.shardId)
          if (Option.isNone(lock)) return yield* Effect.fail("ShardMoved" as const)
          const count = Number(Option.getOrElse(yield* Kv.get(key), () => "0")) + payload.by
          // lands only while this runner holds the shard's lock
          const written = yield* Txn.txnCompare([lock.value.fence], [Op.put(key, String(count))])
          if (!written.succeeded) return yield* Effect.fail("ShardMoved" as const)
          return { count, runner: port }
        }).pipe(
          Effect.provideService(Etcd.Etcd, etcd),
          Effect.mapError((error) => typeof error === "string" ? error : "StorageFailed" as const)
        )
    }
  }))

/** One runner on `port`, with its own etcd client (same endpoints as the one given). */
const runner = (prefix: string, port: number, endpoints: ReadonlyArray<string>) =>
  CounterLive(prefix, port).pipe(
    Layer.provideMerge(EtcdClusterSocket.layer({
      storage: { prefix: `${prefix}cluster/`, ttl: "6 seconds" },
      shardingConfig: {
        runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)),
        shardLockRefreshInterval: "2 seconds",
        shardLockExpiration: "6 seconds",
        refreshAssignmentsInterval: "500 millis",
        entityTerminationTimeout: "1 second"
      }
    })),
    Layer.provide(Etcd.layer({ endpoints: endpoints.slice() }))
  )

/**
 * Starts 3 runners, sends increments to 6 counters through runner 1, stops runner 3, and sends
 * more: returns each counter's final count.
 */
export const program = (prefix: string) =>
  Effect.gen(function*() {
    const endpoints = yield* Etcd.memberEndpoints
    const ports = yield* Ports.freePorts(3)
    const scopes = yield* Effect.forEach(ports, () => Scope.make())
    yield* Effect.addFinalizer(() => Effect.forEach(scopes.slice().reverse(), (scope) => Scope.close(scope, Exit.void)))
    const contexts = yield* Effect.forEach(ports, (port, i) =>
      Layer.buildWithScope(runner(prefix, port, endpoints), scopes[i]))
    yield* Console.log(`3 runners on ports ${ports.join(", ")}`)

    const locks = KeyRange.prefix(`${prefix}cluster/shards/`)
    const shardsPerRunner = Effect.map(Kv.range(locks), (result) => {
      const counts = new Map<string, number>()
      for (const kv of result.kvs) {
        counts.set(kv.value, (counts.get(kv.value) ?? 0) + 1)
      }
      return counts
    })
    const everyShardHeld = (runners: number) =>
      shardsPerRunner.pipe(
        Effect.filterOrFail(
          (counts) =>
            counts.size === runners && [...counts.values()].reduce((a, b) => a + b, 0) === 300,
          () => new Error(`the 300 shards are not yet spread over ${runners} runners`)
        ),
        Effect.retry({ times: 150, schedule: Schedule.spaced("200 millis") })
      )
    yield* Console.log("shards per runner:", Object.fromEntries(yield* everyShardHeld(3)))

    const makeClient = yield* Effect.provide(Counter.client, contexts[0])
    const counters = ["apples", "pears", "plums", "figs", "limes", "kiwis"]
    const increment = (name: string, by: number) =>
      Effect.suspend(() => makeClient(name).Increment({ by })).pipe(
        Effect.exit,
        Effect.flatMap((exit) => Exit.isSuccess(exit) ? Effect.succeed(exit.value) : Effect.fail(exit.cause)),
        Effect.timeout("5 seconds"),
        Effect.retry({ times: 40, schedule: Schedule.spaced("250 millis") }),
        Effect.provide(contexts[0])
      )
    const round = (label: string) =>
      Effect.forEach(counters, (name, i) =>
        Effect.tap(increment(name, i + 1), ({ count, runner }) =>
          Console.log(`${label}: ${name} = ${count} (served by the runner on ${runner})`)))

    yield* round("round 1")
    yield* round("round 2")

    yield* Console.log(`stopping the runner on ${ports[2]}: its shards move to the others`)
    yield* Scope.close(scopes[2], Exit.void)
    yield* Console.log("shards per runner:", Object.fromEntries(yield* everyShardHeld(2)))
    const last = yield* round("round 3")
    return Object.fromEntries(counters.map((name, i) => [name, last[i].count]))
  }).pipe(Effect.scoped)
