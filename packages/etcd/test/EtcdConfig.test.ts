/**
 * etcd as Effect's configuration, on a real etcd (direct and through etcd's gRPC proxy) and
 * on `EtcdMemory`: every `Config` combinator read through the provider, the same reads from
 * `ConfigProvider.fromJson`, fallback and nesting, live values (a change, a transaction as
 * one value, a bad change kept out), writes, and each bad input's tagged error. No test
 * waits on time: live values are awaited on their streams. Recovery after a compaction and
 * after member restarts: EtcdConfigFaults.test.ts, on a 3-member cluster.
 */
import { expect, layer } from "@effect/vitest"
import {
  Chunk,
  Config,
  ConfigProvider,
  Effect,
  Either,
  Fiber,
  HashMap,
  type Layer,
  Option,
  Redacted,
  Schema,
  Stream,
  SubscriptionRef
} from "effect"
import { type Etcd, EtcdConfig, EtcdMemory, Kv, Op, Txn } from "effect-etcd"
import { withProxy } from "./proxies.js"
import { uniquePrefix, withServer } from "./support.js"

interface Target {
  readonly name: string
  readonly layer: Layer.Layer<Etcd.Etcd, unknown>
  readonly live: boolean
}

/** A configuration with every shape a `Config` reads. */
const document = {
  host: "db.internal",
  port: 5432,
  debug: true,
  ratio: 0.25,
  password: Redacted.make("s3cret"),
  hosts: ["a.example", "b.example", "c.example"],
  db: { pool: { min: 1, max: 10 }, name: "orders" },
  limits: { "read-rps": 100, "write-rps": 20 },
  servers: [{ name: "one", weight: 1 }, { name: "two", weight: 3 }],
  level: "info"
}

/** The same configuration as JSON, for `ConfigProvider.fromJson`. */
const json = { ...document, password: "s3cret" }

const Level = Schema.Literal("debug", "info", "warning")

/** One Config per combinator, all read at once. */
const everything = Config.all({
  host: Config.string("host"),
  port: Config.integer("port"),
  debug: Config.boolean("debug"),
  ratio: Config.number("ratio"),
  password: Config.redacted("password"),
  hosts: Config.array(Config.string(), "hosts"),
  pool: Config.all({ min: Config.integer("min"), max: Config.integer("max") }).pipe(
    Config.nested("pool"),
    Config.nested("db")
  ),
  dbName: Config.nested("db")(Config.string("name")),
  limits: Config.hashMap(Config.integer(), "limits"),
  servers: Config.array(Config.all({ name: Config.string("name"), weight: Config.integer("weight") }), "servers"),
  level: Schema.Config("level", Level),
  missing: Config.option(Config.string("missing")),
  defaulted: Config.withDefault(Config.integer("absent"), 7)
})

const viewOf = (value: Config.Config.Success<typeof everything>) => ({
  ...value,
  password: Redacted.value(value.password),
  limits: Object.fromEntries(HashMap.toEntries(value.limits))
})

/**
 * Waits (bounded) until `fiber` is suspended: a fiber that starts consuming `values`
 * subscribes before it first waits, so the subscription exists once it is.
 */
const awaitSubscribed = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if ((yield* Fiber.status(fiber))._tag === "Suspended") return
      yield* Effect.yieldNow()
    }
    throw new Error("the consumer never waited for a value")
  })

const suite = (target: Target) =>
  layer(target.layer, { excludeTestServices: target.live })(`EtcdConfig: ${target.name}`, (it) => {
    it.scoped("every Config combinator reads the keys write put, as fromJson reads the same document", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-all")
        const written = yield* EtcdConfig.write(p, document)
        expect(written.written).toContain(`${p}hosts[1]`)
        expect(written.written).toContain(`${p}db/pool/max`)
        expect(written.written).toContain(`${p}servers[1]/weight`)
        expect(yield* Kv.get(`${p}password`)).toEqual(Option.some("s3cret"))
        const config = yield* EtcdConfig.make(p)
        const fromEtcd = yield* Effect.withConfigProvider(everything, config.provider)
        const fromJson = yield* Effect.withConfigProvider(everything, ConfigProvider.fromJson(json))
        expect(viewOf(fromEtcd)).toEqual(viewOf(fromJson))
        expect(viewOf(fromEtcd)).toMatchObject({
          host: "db.internal",
          port: 5432,
          debug: true,
          ratio: 0.25,
          password: "s3cret",
          hosts: ["a.example", "b.example", "c.example"],
          pool: { min: 1, max: 10 },
          dbName: "orders",
          limits: { "read-rps": 100, "write-rps": 20 },
          servers: [{ name: "one", weight: 1 }, { name: "two", weight: 3 }],
          level: "info",
          missing: Option.none(),
          defaulted: 7
        })
        expect(String(fromEtcd.password)).not.toContain("s3cret")
        // load reads at one revision, and gives the same
        expect(viewOf(yield* config.load(everything))).toEqual(viewOf(fromEtcd))
      }))

    it.scoped("a sequence from one key is split on the delimiter, as fromMap does", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-split")
        yield* Kv.put(`${p}ports`, "80, 443 ,8080")
        yield* Kv.put(`${p}motd`, "hello, world")
        const config = yield* EtcdConfig.make(p)
        const read = Config.all([Config.array(Config.integer(), "ports"), Config.string("motd")])
        const fromEtcd = yield* Effect.withConfigProvider(read, config.provider)
        const fromMap = yield* Effect.withConfigProvider(
          read,
          ConfigProvider.fromMap(new Map([["ports", "80, 443 ,8080"], ["motd", "hello, world"]]))
        )
        expect(fromEtcd).toEqual([[80, 443, 8080], "hello, world"])
        expect(fromEtcd).toEqual(fromMap)
        const semicolons = yield* EtcdConfig.make(p, { sequenceDelimiter: ";" })
        const { revision } = yield* Kv.put(`${p}ports`, "1;2")
        yield* semicolons.waitFor(revision)
        expect(yield* semicolons.load(Config.array(Config.integer(), "ports"))).toEqual([1, 2])
      }))

    it.scoped("orElse falls back to another provider; nested and within move the paths", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-compose")
        yield* EtcdConfig.write(p, { db: { host: "etcd-host" }, service: { port: 8080 } })
        const config = yield* EtcdConfig.make(p)
        const env = ConfigProvider.fromMap(new Map([["DB_USER", "env-user"], ["db.host", "env-host"]]))
        const withFallback = ConfigProvider.orElse(config.provider, () => env)
        const read = Config.all({ host: Config.nested("db")(Config.string("host")), user: Config.string("DB_USER") })
        expect(yield* Effect.withConfigProvider(read, withFallback)).toEqual({ host: "etcd-host", user: "env-user" })
        // nested: the provider's keys live under "service"
        const service = ConfigProvider.nested(config.provider, "service")
        expect(yield* Effect.withConfigProvider(Config.integer("port"), service)).toBe(8080)
        // within: only the paths under "db" go through the given transformation
        const upper = ConfigProvider.within(config.provider, ["db"], (provider) => ConfigProvider.upperCase(provider))
        const { revision } = yield* Kv.put(`${p}db/HOST`, "upper-host")
        yield* config.waitFor(revision)
        expect(yield* Effect.withConfigProvider(Config.nested("db")(Config.string("host")), upper)).toBe("upper-host")
        // a missing key falls through to the other provider with both errors
        const missing = yield* Effect.flip(Effect.withConfigProvider(Config.string("nowhere"), withFallback))
        expect(missing._op).toBe("Or")
      }))

    it.scoped("layer installs the provider: Config reads in the program come from etcd", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-layer")
        yield* EtcdConfig.write(p, { greeting: "hello", retries: 3 })
        const program = Effect.gen(function*() {
          const greeting = yield* Config.string("greeting")
          const retries = yield* Config.integer("retries")
          const service = yield* EtcdConfig.EtcdConfig
          return { greeting, retries, prefix: service.prefix }
        })
        expect(yield* Effect.provide(program, EtcdConfig.layer(p))).toEqual({
          greeting: "hello",
          retries: 3,
          prefix: p
        })
      }))

    it.scoped("a live value: the current value first, a change on the stream and in the ref, equal ones left out", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-live")
        yield* EtcdConfig.write(p, { mode: "fast", size: 1 })
        const config = yield* EtcdConfig.make(p)
        const read = Config.all({ mode: Config.string("mode"), size: Config.integer("size") })
        const live = yield* config.live(read)
        expect(yield* SubscriptionRef.get(live.ref)).toEqual({ mode: "fast", size: 1 })
        const seen = yield* live.values.pipe(Stream.takeUntil(({ size }) => size === 2), Stream.runCollect, Effect.fork)
        yield* awaitSubscribed(seen)
        // a write of a key the Config does not read, and one that writes the same value again
        yield* Kv.put(`${p}other`, "x")
        yield* Kv.put(`${p}mode`, "fast")
        const { revision } = yield* Kv.put(`${p}mode`, "slow")
        yield* Kv.put(`${p}size`, "2")
        const values = Chunk.toReadonlyArray(yield* Fiber.join(seen))
        // changes that come faster than they are decoded are decoded once, at the latest: the
        // middle value may be skipped, never repeated
        expect([
          [{ mode: "fast", size: 1 }, { mode: "slow", size: 1 }, { mode: "slow", size: 2 }],
          [{ mode: "fast", size: 1 }, { mode: "slow", size: 2 }]
        ]).toContainEqual(values)
        expect(yield* SubscriptionRef.get(live.ref)).toEqual({ mode: "slow", size: 2 })
        expect(yield* live.revision).toBeGreaterThan(revision)
        // values: a Stream of its own, the current value first
        const first = yield* config.values(read).pipe(Stream.runHead)
        expect(first).toEqual(Option.some({ mode: "slow", size: 2 }))
      }))

    it.scoped("a multi-key transaction is one new value, never a mixture", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-txn")
        yield* EtcdConfig.write(p, { a: 0, b: 0, c: 0 })
        const config = yield* EtcdConfig.make(p)
        const read = Config.all([Config.integer("a"), Config.integer("b"), Config.integer("c")])
        const live = yield* config.live(read)
        const seen = yield* live.values.pipe(
          Stream.takeUntil(([a]) => a === 5),
          Stream.runCollect,
          Effect.fork
        )
        yield* awaitSubscribed(seen)
        for (let round = 1; round <= 5; round++) {
          yield* Txn.txn([
            Op.put(`${p}a`, String(round)),
            Op.put(`${p}b`, String(round)),
            Op.put(`${p}c`, String(round))
          ])
        }
        const values = Chunk.toReadonlyArray(yield* Fiber.join(seen))
        for (const [a, b, c] of values) {
          expect(b).toBe(a)
          expect(c).toBe(a)
        }
        expect(values[0]).toEqual([0, 0, 0])
        expect(values[values.length - 1]).toEqual([5, 5, 5])
        // and write replaces the whole value in one transaction: seen as one value too
        const next = yield* live.values.pipe(Stream.drop(1), Stream.take(1), Stream.runHead, Effect.fork)
        yield* awaitSubscribed(next)
        yield* EtcdConfig.write(p, { a: 9, b: 9, c: 9 })
        expect(yield* Fiber.join(next)).toEqual(Option.some([9, 9, 9]))
      }))

    it.scoped("a bad change keeps the last good value and is reported with its key and revision", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-bad")
        yield* EtcdConfig.write(p, { port: 80, level: "info" })
        const config = yield* EtcdConfig.make(p)
        const read = Config.all({ port: Config.integer("port"), level: Schema.Config("level", Level) })
        const live = yield* config.live(read)
        const bad = yield* Kv.put(`${p}port`, "eighty")
        const error = yield* live.errors.pipe(Stream.runHead, Effect.map(Option.getOrThrow))
        expect(error).toMatchObject({ _tag: "ConfigDecodeError", key: `${p}port`, revision: bad.revision })
        expect(error.reason).toContain("eighty")
        expect(yield* SubscriptionRef.get(live.ref)).toEqual({ port: 80, level: "info" })
        // a value failing its Schema, then a key deleted: each reported, the last good value stays
        yield* Kv.put(`${p}port`, "81")
        const badLevel = yield* Kv.put(`${p}level`, "loud")
        const missing = yield* Kv.delete(`${p}level`)
        const reported = yield* live.errors.pipe(
          Stream.filter((error) => error.revision >= badLevel.revision),
          Stream.take(2),
          Stream.runCollect
        )
        expect(Chunk.toReadonlyArray(reported).map((error) => [error.key, error.revision])).toEqual([
          [`${p}level`, badLevel.revision],
          [`${p}level`, missing.revision]
        ])
        // the stream is alive: the next good change arrives
        yield* Kv.put(`${p}level`, "debug")
        const good = yield* live.values.pipe(Stream.filter((value) => value.level === "debug"), Stream.runHead)
        expect(good).toEqual(Option.some({ port: 81, level: "debug" }))
        // a live value that does not decode at the start fails with the error
        const failed = yield* Effect.flip(config.live(Config.integer("level")))
        expect(failed).toMatchObject({ _tag: "ConfigDecodeError", key: `${p}level` })
      }))

    it.scoped("a live value that failed to start holds nothing: the mirror goes on past its buffer", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-failed-start")
        yield* EtcdConfig.write(p, { n: 0 })
        const config = yield* EtcdConfig.make(p, { mirror: { changesBuffer: 2 } })
        for (let i = 0; i < 3; i++) {
          expect((yield* Effect.flip(config.live(Config.integer("missing"))))._tag).toBe("ConfigDecodeError")
        }
        const live = yield* config.live(Config.integer("n"))
        for (let n = 1; n <= 10; n++) yield* Kv.put(`${p}n`, String(n))
        expect(yield* live.values.pipe(Stream.filter((n) => n === 10), Stream.runHead)).toEqual(Option.some(10))
      }))

    it.scoped("bad input: prefix, path segments, values that are not UTF-8, keys outside the prefix", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-input")
        for (const prefix of ["", "no-delimiter", "bad\uD800/"]) {
          const error = yield* Effect.flip(EtcdConfig.make(prefix))
          expect(error._tag).toBe("InvalidConfigLayout")
          expect(error.message).toContain(JSON.stringify(prefix))
        }
        expect((yield* Effect.flip(EtcdConfig.make(p, { pathDelimiter: "" })))._tag).toBe("InvalidConfigLayout")
        expect((yield* Effect.flip(EtcdConfig.make(p, { pathDelimiter: "[" })))._tag).toBe("InvalidConfigLayout")

        yield* Kv.put(`${p}db/host`, "h")
        yield* Kv.put(`${p}blob`, new Uint8Array([0x66, 0xff, 0xfe]))
        const config = yield* EtcdConfig.make(p)
        // a segment holding the delimiter is not read as a nested path
        const slash = yield* Effect.flip(Effect.withConfigProvider(Config.string("db/host"), config.provider))
        expect(slash._op).toBe("InvalidData")
        expect(String(slash)).toContain("path delimiter")
        const notText = yield* Effect.flip(config.load(Config.string("blob")))
        expect(notText).toMatchObject({ _tag: "ConfigDecodeError", key: `${p}blob` })
        expect(notText.message).toContain("not valid UTF-8")

        expect(EtcdConfig.keyOf(p, ["db", "hosts", "[0]", "name"])).toEqual(Either.right(`${p}db/hosts[0]/name`))
        expect(EtcdConfig.pathOf(p, `${p}db/hosts[0]/name`)).toEqual(Either.right(["db", "hosts", "[0]", "name"]))
        const outside = EtcdConfig.pathOf(p, "elsewhere/db")
        expect(Either.isLeft(outside) && outside.left._tag).toBe("KeyOutsidePrefix")
        const badPath = EtcdConfig.keyOf(p, ["db", "a/b"])
        expect(Either.isLeft(badPath) && badPath.left._tag).toBe("InvalidConfigPath")

        // values write refuses rather than coerces
        const cases: ReadonlyArray<readonly [EtcdConfig.ConfigValue, string]> = [
          [{ "a/b": "x" }, "InvalidConfigPath"],
          [{ "": "x" }, "InvalidConfigPath"],
          [{ "name[0]": "x" }, "InvalidConfigPath"],
          [{ n: Number.NaN }, "InvalidConfigValue"],
          [{ list: [] }, "InvalidConfigValue"],
          [{ list: ["a,b"] }, "InvalidConfigValue"],
          [{ f: (() => 1) as unknown as string }, "InvalidConfigValue"],
          ["just text", "InvalidConfigValue"]
        ]
        for (const [value, tag] of cases) {
          const error = yield* Effect.flip(EtcdConfig.write(`${p}w/`, value))
          expect(error._tag).toBe(tag)
        }
        expect(yield* Kv.count(`${p}w/`)).toBe(0)
      }))

    it.scoped("write replaces the whole value in one transaction, or merges into it", () =>
      Effect.gen(function*() {
        const p = uniquePrefix("config-write")
        yield* EtcdConfig.write(p, { a: "1", old: { x: "1", y: "2" } })
        // a key that is not UTF-8 text is deleted by its bytes
        yield* Kv.put(new Uint8Array([...new TextEncoder().encode(p), 0xff]), "stray")
        const replaced = yield* EtcdConfig.write(p, { a: "2", b: HashMap.make(["k", 1n]) })
        expect(replaced.deleted).toHaveLength(3)
        expect(replaced.deleted).toEqual(expect.arrayContaining([`${p}old/x`, `${p}old/y`]))
        expect(yield* Kv.getPrefix(p)).toEqual(new Map([[`${p}a`, "2"], [`${p}b/k`, "1"]]))
        const merged = yield* EtcdConfig.write(p, { c: false }, { merge: true })
        expect(merged.deleted).toEqual([])
        expect(yield* Kv.getPrefix(p)).toEqual(new Map([[`${p}a`, "2"], [`${p}b/k`, "1"], [`${p}c`, "false"]]))
        // every key of one write has the write's revision
        const kvs = yield* Kv.range(`${p}a`)
        expect(kvs.kvs[0]?.modRevision).toBe(replaced.revision)
      }))
  })

suite({ name: "real etcd", layer: withServer(), live: true })
suite({ name: "EtcdMemory", layer: EtcdMemory.layer(), live: false })
// through etcd's gRPC proxy, which serves the watchers of one range from one upstream watch
suite({ name: "real etcd through grpc-proxy", layer: withProxy("grpc-proxy"), live: true })
