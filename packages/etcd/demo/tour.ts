/**
 * `pnpm demo`: a tour of effect-etcd against a throwaway etcd started for it (or the
 * cluster named by ETCD_ENDPOINTS), printing each step. Without ETCD_ENDPOINTS and without
 * an etcd binary, the tour runs on `EtcdMemory`, the in-memory etcd, and says so.
 */
import { EtcdProxy, EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, Console, Duration, Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
import {
  Compare,
  Election,
  Etcd,
  EtcdMemory,
  EtcdMetrics,
  KeyRange,
  Keyspace,
  Kv,
  Lease,
  Lock,
  Op,
  RwLock,
  Session,
  Stm,
  Txn,
  Watch
} from "effect-etcd"

const step = (title: string) => Console.log(`\n── ${title}`)
const show = (label: string, value: unknown) =>
  Console.log(`   ${label.padEnd(28)} ${typeof value === "string" ? value : inspect(value)}`)
/** Options as `Some(...)` or `None`, bigints (revisions) as plain numbers, maps as objects. */
const inspect = (value: unknown): string => {
  if (Option.isOption(value)) return Option.match(value, { onNone: () => "None", onSome: (v) => `Some(${inspect(v)})` })
  if (typeof value === "bigint") return value.toString()
  if (value instanceof Map) return inspect(Object.fromEntries(value))
  if (Array.isArray(value)) return `[${value.map(inspect).join(", ")}]`
  if (typeof value === "object" && value !== null) {
    return `{ ${Object.entries(value).map(([k, v]) => `${k}: ${inspect(v)}`).join(", ")} }`
  }
  return JSON.stringify(value)
}

/** The error of a call that is meant to fail. */
const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flip(Effect.flatMap(effect, () => Effect.dieMessage("the call was expected to fail")))

const tour = Effect.gen(function*() {
  const etcd = yield* Etcd.Etcd
  yield* Console.log(`connected to ${etcd.endpoints.join(", ")}`)
  const p = `demo/${Date.now().toString(36)}/`

  yield* step("put and get")
  const first = yield* Kv.put(`${p}config/db/host`, "10.0.0.5")
  yield* show("put config/db/host", `revision ${first.revision}`)
  yield* show("get config/db/host", yield* Kv.get(`${p}config/db/host`))
  yield* show("get config/db/missing", yield* Kv.get(`${p}config/db/missing`))
  const update = yield* Kv.put(`${p}config/db/host`, "10.0.0.6", { prevKv: true })
  yield* show("put again with prevKv", Option.map(update.prevKv, (kv) => kv.value))
  const meta = Option.getOrThrow(yield* Kv.getKeyValue(`${p}config/db/host`))
  yield* show("metadata", { createRevision: meta.createRevision, modRevision: meta.modRevision, version: meta.version })
  yield* show("get at the first revision", yield* Kv.get(`${p}config/db/host`, { revision: first.revision }))

  yield* step("prefixes and ranges")
  yield* Kv.put(`${p}config/db/port`, "5432")
  yield* Kv.put(`${p}config/cache/ttl`, "60")
  const db = yield* Kv.getPrefix(`${p}config/db/`)
  yield* show("getPrefix config/db/", new Map([...db].map(([k, v]) => [k.slice(p.length), v])))
  yield* show("keysPrefix config/", (yield* Kv.keysPrefix(`${p}config/`)).map((k) => k.slice(p.length)))
  yield* show("count config/", yield* Kv.count(KeyRange.prefix(`${p}config/`)))
  const newest = yield* Kv.range(KeyRange.prefix(`${p}config/`), { sortTarget: "mod", sortOrder: "descend", limit: 1 })
  yield* show("newest under config/", newest.kvs.map((kv) => kv.key.slice(p.length)))

  yield* step("transactions with compares")
  const swapped = yield* Txn.txnCompare(
    [Compare.value(`${p}config/db/host`).equals("10.0.0.6")],
    [Op.put(`${p}config/db/host`, "10.0.0.7"), Op.get(`${p}config/db/port`)],
    [Op.get(`${p}config/db/host`)]
  )
  yield* show("compare-and-swap succeeded", swapped.succeeded)
  const again = yield* Txn.txnCompare(
    [Compare.value(`${p}config/db/host`).equals("10.0.0.6")],
    [Op.put(`${p}config/db/host`, "never written")],
    [Op.get(`${p}config/db/host`)]
  )
  yield* show("same swap again succeeded", again.succeeded)
  if (!again.succeeded) yield* show("failure branch read", again.results[0].kvs[0]?.value)
  const created = yield* Txn.txnCompare(
    [Compare.version(`${p}jobs/1`).equals(0)],
    [Op.put(`${p}jobs/1`, "queued")]
  )
  yield* show("create-if-absent jobs/1", created.succeeded)

  yield* step("watch a prefix")
  const watcher = yield* Watch.subscribe(KeyRange.prefix(`${p}jobs/`), { prevKv: true })
  const events = yield* watcher.events.pipe(Stream.take(3), Stream.runCollect, Effect.fork)
  yield* Kv.put(`${p}jobs/1`, "running")
  yield* Kv.put(`${p}jobs/2`, "queued")
  yield* Kv.delete(`${p}jobs/1`)
  for (const event of yield* Fiber.join(events)) {
    yield* show(`${event.type} ${event.key.slice(p.length)}`, {
      value: event.value,
      previous: Option.getOrNull(event.prevValue),
      revision: event.revision
    })
  }

  yield* step("a lease kept alive by a fiber")
  yield* Effect.scoped(Effect.gen(function*() {
    const lease = yield* Lease.make("2 seconds")
    yield* Kv.put(`${p}services/api`, "10.0.0.9:8080", { lease })
    yield* Effect.sleep(Duration.seconds(3))
    yield* show("after 3 s (TTL 2 s)", yield* Kv.get(`${p}services/api`))
  }))
  yield* show("after the scope closed", yield* Kv.get(`${p}services/api`))

  yield* step("a lock")
  const fencing = yield* Effect.gen(function*() {
    const lock = yield* Effect.scoped(Lock.make(`${p}locks/other`))
    return lock.revision
  }).pipe(Lock.withLock(`${p}locks/report`, { timeout: "5 seconds" }))
  yield* show("fencing token of a lock", fencing)
  const contended = yield* Effect.scoped(Effect.gen(function*() {
    yield* Lock.make(`${p}locks/report`)
    return yield* failure(Effect.scoped(Lock.make(`${p}locks/report`, { timeout: "200 millis" })))
  }))
  yield* show("second acquirer", contended.message)

  yield* step("a typed keyspace")
  const Endpoint = Schema.Struct({ host: Schema.String, port: Schema.Number })
  const api = Keyspace.json(`${p}services/typed/`, Endpoint)
  yield* api.put("node-1", { host: "10.0.0.5", port: 8080 })
  yield* api.put("node-2", { host: "10.0.0.6", port: 8080 })
  yield* show("get node-1", yield* api.get("node-1"))
  yield* show("getAll", (yield* api.getAll()).values)
  yield* Kv.put(`${p}services/typed/node-3`, "not json")
  const undecodable = yield* failure(api.get("node-3"))
  yield* show("a value that does not decode", `${undecodable._tag}: ${undecodable.message.split("\n")[0]}`)
  yield* show("getAll, skipping it", [...(yield* api.getAll({ onDecodeError: "skip" })).values.keys()])

  yield* step("a live mirror")
  const flags = Keyspace.make({ prefix: `${p}flags/`, key: Schema.String, value: Schema.parseJson(Schema.Boolean) })
  yield* flags.put("dark-mode", true)
  yield* Effect.scoped(Effect.gen(function*() {
    const mirror = yield* Keyspace.mirror(flags)
    yield* mirror.ready
    yield* show("after the first list", (yield* mirror.snapshot).values)
    const changes = yield* mirror.changes.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
    yield* Effect.sleep(Duration.millis(50))
    const put = yield* flags.put("beta", true)
    yield* mirror.waitFor(put.revision)
    yield* show("get beta after waitFor", yield* mirror.get("beta"))
    yield* flags.delete("dark-mode")
    for (const change of yield* Fiber.join(changes)) {
      yield* show(
        `change ${change._tag}`,
        change._tag === "Resynced" ? change.revision : {
          key: change.key,
          revision: change.revision
        }
      )
    }
    yield* show("snapshot", (yield* mirror.snapshot).values)
  }))

  yield* step("locks on a session")
  yield* Effect.scoped(Effect.gen(function*() {
    const session = yield* Session.make({ ttl: "10 seconds" })
    const leasesBefore = (yield* Lease.leases()).length
    for (let i = 0; i < 3; i++) yield* Effect.void.pipe(Lock.withLock(`${p}locks/report`, { session }))
    yield* show("session lease", session.lease.id.toString(16))
    yield* show("3 locks, leases granted", (yield* Lease.leases()).length - leasesBefore)
  }))

  yield* step("a readers-writer lock")
  const readers = yield* Effect.all(
    [1, 2, 3].map((i) => Effect.as(Effect.sleep("100 millis"), i).pipe(RwLock.withRead(`${p}locks/config`))),
    { concurrency: "unbounded" }
  )
  yield* show("3 readers at once", readers)
  const written = yield* Kv.put(`${p}config/mode`, "b").pipe(RwLock.withWrite(`${p}locks/config`))
  yield* show("writer alone, wrote at", written.revision)

  yield* step("an election")
  const observed = yield* Election.observe(`${p}election`).pipe(
    Stream.takeUntil((leader) => leader.value === "node-2"),
    Stream.runCollect,
    Effect.fork
  )
  yield* Effect.sleep("200 millis")
  yield* Effect.scoped(Effect.gen(function*() {
    const leadership = yield* Election.campaign(`${p}election`, "node-1")
    const follower = yield* Effect.fork(Effect.scoped(Election.campaign(`${p}election`, "node-2")))
    yield* show("leader", Option.map(yield* Election.leader(`${p}election`), (leader) => leader.value))
    yield* leadership.proclaim("node-1 (ready)")
    yield* leadership.resign
    yield* Fiber.join(follower)
    const stale = yield* failure(leadership.proclaim("node-1 again"))
    yield* show("proclaim after resigning", stale._tag)
  }))
  const leaders = yield* Fiber.join(observed)
  yield* show("observe saw", Array.from(leaders, (leader) => leader.value))

  yield* step("software transactional memory")
  yield* Kv.put(`${p}bank/alice`, "100")
  yield* Kv.put(`${p}bank/bob`, "0")
  const balance = (key: string) => Effect.map(Stm.get(key), (v) => Number(Option.getOrElse(v, () => "0")))
  yield* Effect.all(
    Array.from({ length: 10 }, () =>
      Stm.run(
        Effect.gen(function*() {
          const alice = yield* balance(`${p}bank/alice`)
          const bob = yield* balance(`${p}bank/bob`)
          yield* Stm.put(`${p}bank/alice`, String(alice - 10))
          yield* Stm.put(`${p}bank/bob`, String(bob + 10))
        }),
        { isolation: "serializable", retries: 50 }
      )),
    { concurrency: "unbounded" }
  )
  yield* show(
    "10 concurrent transfers of 10",
    yield* Kv.getPrefix(`${p}bank/`).pipe(
      Effect.map((all) => new Map([...all].map(([k, v]) => [k.slice(p.length), v])))
    )
  )

  yield* step("typed errors")
  const tooLarge = yield* failure(Kv.put(`${p}big`, Buffer.alloc(2_000_000)))
  yield* show("2 MB value", `${tooLarge._tag}: ${tooLarge.message}`)
  const empty = yield* failure(Kv.get(""))
  yield* show("empty key", `${empty._tag}: ${empty.message}`)

  yield* Kv.deletePrefix(p)
  yield* metricsTable
  yield* Console.log("\ntour complete")
})

/** What the client measured during the tour (its layer has `metrics: true`): calls per method, watch lag, leases. */
const metricsTable = Effect.gen(function*() {
  yield* step("metrics the tour produced (EtcdMetrics, docs/metrics.md)")
  const values = yield* EtcdMetrics.snapshot
  const of = (name: string) => values.filter((value) => value.name === name)
  const bound = (ms: number | undefined) => ms === undefined ? "-" : ms === Infinity ? "> 16 s" : `≤ ${ms} ms`
  const byMethod = new Map<string, Array<EtcdMetrics.MetricValue>>()
  for (const value of of(EtcdMetrics.names.rpcDuration)) {
    const method = value.tags["rpc.method"] ?? "?"
    byMethod.set(method, [...(byMethod.get(method) ?? []), value])
  }
  yield* Console.log(
    `   ${"method".padEnd(20)} ${"calls".padStart(6)} ${"failed".padStart(6)}  ${"p50".padEnd(10)} p99`
  )
  for (const [method, series] of [...byMethod].sort(([a], [b]) => a.localeCompare(b))) {
    const calls = series.reduce((sum, value) => sum + value.value, 0)
    const failed = series.filter((value) => value.tags["rpc.grpc.status_code"] !== "0")
      .reduce((sum, value) => sum + value.value, 0)
    // the quantiles of the method's busiest series (its successes, mostly)
    const main = series.reduce((a, b) => (b.value > a.value ? b : a))
    yield* Console.log(
      `   ${method.padEnd(20)} ${String(calls).padStart(6)} ${String(failed).padStart(6)}  ${
        bound(main.p50).padEnd(10)
      } ${bound(main.p99)}`
    )
  }
  const lag = of(EtcdMetrics.names.watchLag)[0]
  const events = of(EtcdMetrics.names.watchEvents).reduce((sum, value) => sum + value.value, 0)
  yield* show(
    "watch",
    lag === undefined
      ? `${events} events delivered`
      : `${events} events delivered, lag p50 ≤ ${lag.p50} p99 ≤ ${lag.p99} revisions (${lag.count} takes)`
  )
  const held = of(EtcdMetrics.names.leasesHeld).reduce((sum, value) => sum + value.value, 0)
  const keepAlives = of(EtcdMetrics.names.keepAliveDuration)[0]
  yield* show(
    "leases",
    `${held} held now, ${keepAlives?.count ?? 0} keepalives (p99 ${bound(keepAlives?.p99)})`
  )
  const waits = of(EtcdMetrics.names.lockWait)
  yield* show(
    "lock and election waits",
    waits.map((value) => `${value.tags.recipe} ${value.tags.outcome}: ${value.count} (p99 ${bound(value.p99)})`)
      .join(", ") || "none"
  )
})

/** `ETCD_DEMO_PROXY=grpc-proxy` or `gateway`: the throwaway etcd is reached through that proxy of etcd's (CI runs both). */
const proxy = process.env.ETCD_DEMO_PROXY

/** The tour turns the client's metrics on (off by default) to show what they say at its end. */
const metrics = true

/** A throwaway etcd; without an etcd binary on this machine, the in-memory one. */
const throwaway: Layer.Layer<Etcd.Etcd, unknown> = Layer.unwrapScoped(Effect.gen(function*() {
  yield* Console.log("starting a throwaway etcd (set ETCD_ENDPOINTS to use your own)")
  const server = yield* EtcdServer.EtcdServer
  if (proxy === undefined || proxy === "") return Etcd.layer({ endpoints: server.endpoints, metrics })
  if (proxy !== "grpc-proxy" && proxy !== "gateway") {
    return yield* Effect.dieMessage(`ETCD_DEMO_PROXY is grpc-proxy or gateway, not ${proxy}`)
  }
  const front = yield* EtcdProxy.make({ kind: proxy, endpoints: server.endpoints }).pipe(
    Effect.provide(NodeContext.layer)
  )
  yield* Console.log(`reaching it through etcd ${proxy} at ${front.endpoints.join(", ")}`)
  return Etcd.layer({ endpoints: front.endpoints, metrics })
})).pipe(
  Layer.provide(EtcdServer.layer()),
  Layer.catchAll((error) =>
    error._tag === "EtcdServerError" && / not found /.test(error.message)
      ? Layer.unwrapEffect(
        Console.log(
          `no etcd binary here (${error.message})\n` +
            "running the tour on EtcdMemory, effect-etcd's in-memory etcd, instead"
        ).pipe(Effect.as(EtcdMemory.layer({ metrics })))
      )
      : Layer.fail(error)
  )
)

const etcd: Layer.Layer<Etcd.Etcd, unknown> = process.env.ETCD_ENDPOINTS
  ? Etcd.layerConfig(Config.map(Etcd.config, (config) => ({ ...config, metrics }))).pipe(
    Layer.provide(NodeContext.layer)
  )
  : throwaway

tour.pipe(Effect.scoped, Effect.provide(etcd), NodeRuntime.runMain)
