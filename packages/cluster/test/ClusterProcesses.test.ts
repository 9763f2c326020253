/**
 * A real cluster on loopback: 3 runner processes (test/fixtures/runner.ts, run by tsx), each with
 * `Sharding` on the socket transport, the fenced counter entity and `EtcdRunnerStorage` over a
 * 3-member etcd; message storage is the no-op one, so messages go straight to their runner.
 * This process is a client-only member of the cluster and sends the messages.
 *
 * It kills a runner with SIGKILL (its shards move once its lease expires), freezes another with
 * SIGSTOP for longer than its lease TTL (it finds its shards lost on SIGCONT), then pauses an
 * etcd member and kills etcd's leader. Every entity invocation writes a log entry through a
 * `Txn` fenced by its shard's lock: per shard, in etcd's order, a lock that was replaced never
 * writes again and one lock belongs to one runner, so no two runners served one entity at once.
 * Bounded throughout; every process is killed at the end.
 */
import { EtcdRunnerStorage } from "@effect-etcd/cluster"
import { EtcdServer, Ports } from "@effect-etcd/testing"
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Schedule } from "effect"
import { KeyRange, Kv } from "effect-etcd"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { FencedCounter } from "./fixtures/fencedCounter.js"

const root = path.resolve(import.meta.dirname, "../../..")
const runnerScript = path.resolve(import.meta.dirname, "fixtures/runner.ts")
const prefix = `cluster-test/${process.pid}/`
const entities = Array.from({ length: 200 }, (_, i) => `entity-${i}`)

interface RunnerProcess {
  readonly port: number
  readonly child: ChildProcess
  readonly events: Array<Record<string, unknown>>
}

/** A runner process on `port` for the scope's life, killed with SIGKILL (after SIGCONT) when it closes. */
const startRunner = (endpoints: ReadonlyArray<string>, port: number) =>
  Effect.gen(function*() {
    const events: Array<Record<string, unknown>> = []
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", runnerScript], {
          cwd: root,
          env: { ...process.env, ETCD_ENDPOINTS: endpoints.join(","), RUNNER_PORT: String(port), PREFIX: prefix },
          stdio: ["pipe", "pipe", "inherit"]
        })
      ),
      (child) =>
        Effect.sync(() => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGCONT")
            child.kill("SIGKILL")
          }
        })
    )
    let buffered = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split("\n")
      buffered = lines.pop()!
      for (const line of lines) {
        try {
          events.push(JSON.parse(line))
        } catch {
          // not an event
        }
      }
    })
    diagnostics.push(() =>
      `runner ${port} (exit ${child.exitCode ?? child.signalCode ?? "-"}): ${
        events.slice(-8).map((event) => JSON.stringify(event)).join("\n  ")
      }`
    )
    return { port, child, events } satisfies RunnerProcess
  })

/** What the runners said last, for a failure's message. */
const diagnostics: Array<() => string> = []

/** Polls `check` every 100 ms until it holds, at most `seconds`; fails the test otherwise. */
const eventually = <E, R>(what: string, seconds: number, check: Effect.Effect<boolean, E, R>) =>
  check.pipe(
    Effect.orElseSucceed(() => false),
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("100 millis") }),
    Effect.timeoutFail({
      duration: Duration.seconds(seconds),
      onTimeout: () => new Error(`${what}: not within ${seconds} s\n${diagnostics.map((f) => f()).join("\n")}`)
    })
  )

/** The lock keys of the shards and who holds them (the runner's port). */
const shardOwners = Effect.map(
  Kv.range(KeyRange.prefix(`${prefix}shards/`)),
  (result) => new Map(result.kvs.map((kv) => [kv.key.slice(`${prefix}shards/`.length), Number(kv.value.split(":")[1])]))
)

/** How many shards are locked under the lease of a registered runner (its current session). */
const servedShards = Effect.gen(function*() {
  const runnerLeases = new Set((yield* Kv.range(KeyRange.prefix(`${prefix}runners/`))).kvs.map((kv) => kv.lease))
  const locks = yield* Kv.range(KeyRange.prefix(`${prefix}shards/`))
  return locks.kvs.filter((kv) => runnerLeases.has(kv.lease)).length
})

const client = NodeClusterSocket.layer({
  clientOnly: true,
  storage: "byo",
  shardingConfig: {
    runnerAddress: Option.none(),
    refreshAssignmentsInterval: "500 millis",
    sendRetryInterval: "100 millis"
  }
}).pipe(
  Layer.provideMerge(MessageStorage.layerNoop),
  Layer.provideMerge(EtcdRunnerStorage.layer({ prefix, ttl: "4 seconds" }))
)

const faultClient = {
  requestTimeout: "2 seconds",
  connectTimeout: "5 seconds",
  keepAliveTime: "5 seconds",
  keepAliveTimeout: "2 seconds"
} as const

layer(EtcdServer.layerClient({ members: 3 }, faultClient), { excludeTestServices: true })("a cluster on etcd", (it) => {
  it.scoped(
    "200 entities served; a killed runner's and a frozen runner's shards move; etcd faults; never served twice",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        yield* Effect.addFinalizer(() => Effect.forEach([0, 1, 2], (i) => server.resume(i), { discard: true }))
        const runners = yield* Effect.forEach(yield* Ports.freePorts(3), (port) => startRunner(server.endpoints, port))
        const context = yield* Layer.build(client)
        const makeClient = yield* FencedCounter.client.pipe(Effect.provide(context))
        let seq = 0
        /**
         * One message to an entity, retried (bounded) until a runner serves it. A request the
         * client gives up on (its runner left) ends as an interruption of that request only.
         */
        const send = (entity: string) =>
          Effect.suspend(() => makeClient(entity).Increment({ seq: seq++ })).pipe(
            Effect.timeout("4 seconds"),
            Effect.exit,
            Effect.flatMap((exit) => Exit.isSuccess(exit) ? Effect.succeed(exit.value) : Effect.fail(exit.cause)),
            Effect.retry({ times: 60, schedule: Schedule.spaced("250 millis") }),
            Effect.provide(context)
          )
        const round = Effect.forEach(entities, send, { concurrency: 25 })

        // the runners start (tsx compiles their sources first: slow on a loaded machine)
        yield* eventually(
          "3 runners ready",
          150,
          Effect.sync(() => runners.every((runner) => runner.events.some((event) => event.event === "ready")))
        )
        // all shards acquired by the 3 runners
        yield* eventually(
          "300 shards held by 3 runners",
          60,
          Effect.map(shardOwners, (owners) => owners.size === 300 && new Set(owners.values()).size === 3)
        )
        yield* Effect.log("phase: first round")
        const first = yield* round
        expect(first.length).toBe(200)
        expect(new Set(first.map((served) => served.runner)).size).toBe(3)

        yield* Effect.log("phase: kill")
        // kill -9: the survivors take the shards once the lease expires
        const killed = runners[2]
        const killedAt = Date.now()
        killed.child.kill("SIGKILL")
        yield* eventually(
          "the killed runner's shards taken over",
          30,
          Effect.map(shardOwners, (owners) => owners.size === 300 && ![...owners.values()].includes(killed.port))
        )
        const takeoverMs = Date.now() - killedAt
        yield* Effect.log("phase: second round")
        const second = yield* round
        expect(second.every((served) => served.runner !== killed.port)).toBe(true)

        // traffic runs from now on, through the freeze and the etcd faults
        let running = true
        const traffic = yield* Effect.forkScoped(
          Effect.forEach(entities, (entity) => Effect.ignore(send(entity)), { concurrency: 10 }).pipe(
            Effect.repeat({ while: () => running })
          )
        )

        yield* Effect.log("phase: freeze")
        // SIGSTOP longer than the lease TTL, then SIGCONT: the frozen runner finds its lease lost
        const frozen = runners[0]
        frozen.child.kill("SIGSTOP")
        yield* Effect.sleep("7 seconds").pipe(Effect.ensuring(Effect.sync(() => frozen.child.kill("SIGCONT"))))
        yield* eventually(
          "the frozen runner hears its lease was lost",
          20,
          Effect.sync(() => frozen.events.some((event) => String(event.message).includes("lease was lost")))
        )
        yield* eventually(
          "every shard served again after the freeze",
          30,
          servedShards.pipe(Effect.map((n) => n === 300))
        )

        yield* Effect.log("phase: etcd faults")
        // an etcd member paused, then etcd's leader killed and restarted
        const isLeader = (i: number) =>
          Effect.orElseSucceed(server.metric(i, "etcd_server_is_leader"), () => 0).pipe(
            Effect.map((flag) => flag === 1)
          )
        let leader = -1
        yield* eventually(
          "a leader",
          20,
          Effect.gen(function*() {
            for (const i of [0, 1, 2]) if (yield* isLeader(i)) leader = i
            return leader >= 0
          })
        )
        const paused = (leader + 1) % 3
        yield* server.pause(paused)
        yield* Effect.sleep("3 seconds").pipe(Effect.ensuring(server.resume(paused)))
        yield* server.kill(leader)
        yield* Effect.sleep("3 seconds")
        yield* server.start(leader)
        yield* eventually(
          "every shard held again after healing",
          60,
          Effect.map(shardOwners, (owners) => owners.size === 300)
        )
        yield* Effect.log("phase: healed, stopping traffic")
        running = false
        yield* Fiber.join(traffic).pipe(Effect.timeout("60 seconds"))
        yield* Effect.log("phase: healed round")
        const healed = yield* round
        expect(healed.length).toBe(200)

        yield* Effect.log("phase: log check")
        // the fenced log: per shard, in etcd's order, no replaced lock writes again, and one lock is one runner's
        const log = yield* Kv.range(KeyRange.prefix(`${prefix}log/`))
        const byShard = new Map<
          string,
          Array<{ readonly lock: bigint; readonly runner: string; readonly at: bigint }>
        >()
        for (const kv of log.kvs) {
          const [shard, , , runner] = kv.key.slice(`${prefix}log/`.length).split("/")
          const entries = byShard.get(shard) ?? []
          entries.push({ lock: BigInt(kv.value), runner, at: kv.modRevision })
          byShard.set(shard, entries)
        }
        const overlaps: Array<string> = []
        const lockOwners = new Map<string, string>()
        for (const [shard, entries] of byShard) {
          entries.sort((a, b) => (a.at < b.at ? -1 : 1))
          entries.forEach((entry, i) => {
            if (i > 0 && entry.lock < entries[i - 1].lock) overlaps.push(`${shard} at ${entry.at}`)
            const key = `${shard}@${entry.lock}`
            if ((lockOwners.get(key) ?? entry.runner) !== entry.runner) overlaps.push(`${key} by two runners`)
            lockOwners.set(key, entry.runner)
          })
        }
        expect(overlaps).toEqual([])
        const refused = runners.reduce((n, runner) => n + runner.events.filter((e) => e.event === "refused").length, 0)
        yield* Effect.log("cluster run").pipe(Effect.annotateLogs({
          takeoverMs,
          fencedWrites: log.kvs.length,
          refusedWrites: refused,
          shardsThatWrote: byShard.size,
          locksThatWrote: lockOwners.size
        }))
        // shards did move: more locks wrote than shards
        expect(lockOwners.size).toBeGreaterThan(byShard.size)
      }),
    360_000
  )
})
