/**
 * EtcdConfig's one-key read (internal/recipes/oneKeyConfig.ts), on `EtcdMemory`: a `Config`
 * that reads one key (`Primitive` under `Nested`, `Described`, `MapOrFail`, `Redacted`) is
 * read straight from the snapshot, any other shape through `ConfigProvider.fromFlat`. For
 * each shape, the provider's `Exit` is the one `fromFlat` gives over the provider's own flat
 * (the path every shape took before: same keys, same messages), compared member by member
 * (a `ConfigError` has no `Equal`: its kind, path, message and printed form are compared), and,
 * but for the messages of missing keys (which name where a key was looked for), the one
 * `ConfigProvider.fromMap` gives over the same keys and values. Each shape is also declared
 * fast or not, and the plan must agree: the comparisons are not all of the slow path.
 */
import { expect, layer } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Config,
  ConfigError,
  ConfigProvider,
  Effect,
  Either,
  Exit,
  HashMap,
  Option,
  Redacted,
  Schema
} from "effect"
import { EtcdConfig, EtcdMemory, Kv } from "effect-etcd"
import * as OneKeyConfig from "../src/internal/recipes/oneKeyConfig.js"
import { uniquePrefix } from "./support.js"

/** The configuration every shape reads: each key holds a text of its own, so a wrong key shows. */
const document = {
  host: "db.internal",
  port: "5432",
  ratio: "0.25",
  debug: "true",
  "bad-port": "eighty",
  "bad-flag": "maybe",
  password: "s3cret",
  level: "loud",
  "log-level": "warning",
  timeout: "5 seconds",
  empty: "",
  list: "1, 2,3",
  db: { name: "orders", port: "6432", pool: { max: "10", min: "1" } },
  hosts: ["a.example", "b.example"],
  limits: { read: "100", write: "20" }
}

const boom = new Error("the map threw")

const tooBig = (n: number) =>
  n > 1000 ? Either.left(ConfigError.InvalidData(["limit"], `${n} is over 1000`)) : Either.right(n)

/** Each shape, and whether it reads one key (the fast path). */
const shapes: ReadonlyArray<readonly [name: string, config: Config.Config<unknown>, fast: boolean]> = [
  ["string", Config.string("host"), true],
  ["integer", Config.integer("port"), true],
  ["number", Config.number("ratio"), true],
  ["boolean", Config.boolean("debug"), true],
  ["nested", Config.nested("db")(Config.string("name")), true],
  ["nested twice", Config.integer("max").pipe(Config.nested("pool"), Config.nested("db")), true],
  ["described", Config.string("host").pipe(Config.withDescription("the database host")), true],
  ["described, nested", Config.nested(Config.withDescription(Config.integer("min"), "floor"), "pool"), true],
  ["map", Config.map(Config.integer("port"), (port) => port + 1), true],
  ["map of a map", Config.integer("port").pipe(Config.map((n) => n * 2), Config.map(String)), true],
  ["mapOrFail failure", Config.mapOrFail(Config.integer("port"), tooBig), true],
  // the map's errors are prefixed with the Nested names right under it, not those under Described
  [
    "mapOrFail failure under nested, over described",
    Config.nested("db")(Config.mapOrFail(Config.withDescription(Config.integer("port"), "d"), tooBig)),
    true
  ],
  [
    "mapOrFail failure, nested twice",
    Config.nested(Config.mapOrFail(Config.nested(Config.integer("max"), "pool"), () => tooBig(5000)), "db"),
    true
  ],
  [
    "validate failure",
    Config.validate(Config.string("host"), { message: "short", validation: (s) => s.length < 3 }),
    true
  ],
  ["missing key", Config.string("absent"), true],
  ["missing nested key", Config.nested("db")(Config.integer("absent")), true],
  ["missing key, no name", Config.string(), true],
  ["invalid integer", Config.integer("bad-port"), true],
  ["invalid boolean", Config.boolean("bad-flag"), true],
  ["invalid number, nested", Config.nested("db")(Config.number("name")), true],
  ["literal", Config.nested("db")(Config.literal("orders", "users")("name")), true],
  ["literal failure", Config.nested("db")(Config.literal("users")("name")), true],
  ["non-empty string, empty", Config.nonEmptyString("empty"), true],
  ["redacted", Config.redacted("password"), true],
  ["redacted integer, invalid", Config.redacted(Config.integer("bad-port")), true],
  ["redacted, missing", Config.redacted("absent"), true],
  ["redacted, failing map", Config.redacted(Config.mapOrFail(Config.integer("port"), () => tooBig(5000))), true],
  ["secret", Config.secret("password"), true],
  ["Schema.Config", Schema.Config("host", Schema.String), true],
  ["Schema.Config failure", Schema.Config("level", Schema.Literal("debug", "info")), true],
  ["logLevel", Config.logLevel("log-level"), true],
  ["duration", Config.duration("timeout"), true],
  ["url failure", Config.url("host"), true],
  ["all of one", Config.all({ host: Config.string("host") }), true],
  [
    "map that throws",
    Config.map(Config.string("host"), () => {
      throw boom
    }),
    true
  ],
  // every other shape goes through fromFlat, unchanged
  ["withDefault, present", Config.withDefault(Config.integer("port"), 1), false],
  ["withDefault, absent", Config.withDefault(Config.integer("absent"), 1), false],
  ["withDefault, invalid", Config.withDefault(Config.integer("bad-port"), 1), false],
  ["option, absent", Config.option(Config.string("absent")), false],
  ["orElse", Config.orElse(Config.string("absent"), () => Config.string("host")), false],
  ["all", Config.all({ host: Config.string("host"), port: Config.integer("port") }), false],
  ["all, both failing", Config.all([Config.integer("bad-port"), Config.string("absent")]), false],
  ["array of indexed keys", Config.array(Config.string(), "hosts"), false],
  ["array split from one key", Config.array(Config.integer(), "list"), false],
  ["array, missing", Config.array(Config.integer(), "absent"), false],
  ["hashMap", Config.hashMap(Config.integer(), "limits"), false],
  ["hashMap, nested", Config.nested("db")(Config.hashMap(Config.string(), "pool")), false],
  ["succeed", Config.succeed(1), false],
  ["fail", Config.fail("no"), false],
  ["suspend", Config.suspend(() => Config.string("host")), false],
  ["nested over suspend", Config.nested("db")(Config.suspend(() => Config.string("name"))), false]
]

/** Shapes on the keys `fromMap` cannot hold or lays out otherwise: compared with `fromFlat` only. */
const etcdOnly: ReadonlyArray<readonly [name: string, config: Config.Config<unknown>, fast: boolean]> = [
  ["value not UTF-8", Config.string("blob"), true],
  ["value not UTF-8, redacted", Config.redacted("blob"), true],
  ["segment holding the path delimiter", Config.string("db/name"), true],
  ["empty segment", Config.nested("")(Config.string("name")), true]
]

/** A `ConfigError` as plain data: kind, path, message and printed form (`withMessages` off: none of missing data). */
const viewError = (error: ConfigError.ConfigError, withMessages: boolean): unknown => {
  switch (error._op) {
    case "And":
    case "Or":
      return {
        op: error._op,
        left: viewError(error.left, withMessages),
        right: viewError(error.right, withMessages),
        ...(withMessages ? { printed: String(error) } : {})
      }
    default: {
      const messages = withMessages || error._op !== "MissingData"
      return {
        op: error._op,
        path: [...error.path],
        ...(messages ? { message: error.message, printed: String(error) } : {})
      }
    }
  }
}

/** A decoded value as plain data: a `Redacted`'s value, a `HashMap`'s entries in order. */
const viewValue = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return { redacted: viewValue(Redacted.value(value)) }
  if (HashMap.isHashMap(value)) {
    return {
      hashMap: (HashMap.toEntries(value) as Array<[string, unknown]>).sort(([a], [b]) => a.localeCompare(b)).map((
        [k, v]
      ) => [k, viewValue(v)])
    }
  }
  if (Array.isArray(value)) return value.map(viewValue)
  if (Option.isOption(value)) return Option.isSome(value) ? { some: viewValue(value.value) } : "none"
  return value
}

const viewExit = (exit: Exit.Exit<unknown, ConfigError.ConfigError>, withMessages = true): unknown =>
  Exit.isSuccess(exit)
    ? { success: viewValue(exit.value) }
    : {
      failures: Chunk.toReadonlyArray(Cause.failures(exit.cause)).map((error) => viewError(error, withMessages)),
      defects: Chunk.toReadonlyArray(Cause.defects(exit.cause))
    }

const readWith = (config: Config.Config<unknown>, provider: ConfigProvider.ConfigProvider) =>
  Effect.exit(Effect.withConfigProvider(config, provider))

layer(EtcdMemory.layer())("EtcdConfig: one-key reads", (it) => {
  for (const pathDelimiter of ["/", "."]) {
    it.scoped(`each shape reads as through fromFlat and fromMap (path delimiter ${JSON.stringify(pathDelimiter)})`, () =>
      Effect.gen(function*() {
        const p = `${uniquePrefix("config-one-key")}layout${pathDelimiter}`
        const layout = { pathDelimiter }
        yield* EtcdConfig.write(p, document, layout)
        yield* Kv.put(new TextEncoder().encode(`${p}blob`), new Uint8Array([0x66, 0xff, 0xfe]))
        const config = yield* EtcdConfig.make(p, layout)
        const slow = ConfigProvider.fromFlat(config.provider.flattened)
        const entries = Either.getOrThrow(EtcdConfig.encode(p, document, layout))
        const fromMap = ConfigProvider.fromMap(
          new Map(entries.map(([key, text]) => [key.slice(p.length), text])),
          { pathDelim: pathDelimiter }
        )
        for (const [name, read, fast] of [...shapes, ...etcdOnly]) {
          expect(OneKeyConfig.planOf(read) !== undefined, `${name}: one key`).toBe(fast)
          const exit = yield* readWith(read, config.provider)
          expect(viewExit(exit), name).toStrictEqual(viewExit(yield* readWith(read, slow)))
          if (!etcdOnly.some(([other]) => other === name)) {
            expect(viewExit(exit, false), `${name} (fromMap)`).toStrictEqual(
              viewExit(yield* readWith(read, fromMap), false)
            )
          }
          // load: the same value, or a ConfigDecodeError over the same ConfigError
          const loaded = yield* Effect.exit(config.load(read))
          if (Exit.isSuccess(exit)) {
            expect(Exit.isSuccess(loaded) && viewValue(loaded.value), `${name} (load)`).toStrictEqual(
              viewValue(exit.value)
            )
          } else if (Cause.isFailType(exit.cause)) {
            const decodeError = yield* Effect.flip(config.load(read))
            if (decodeError._tag !== "ConfigDecodeError") throw new Error(`${name}: ${decodeError.message}`)
            expect(viewError(decodeError.cause, true), `${name} (load)`).toStrictEqual(
              viewError(exit.cause.error, true)
            )
            expect(decodeError.reason).toBe(String(exit.cause.error))
          } else {
            expect(Chunk.toReadonlyArray(Cause.defects(Option.getOrThrow(Exit.causeOption(loaded)))), name)
              .toStrictEqual([boom])
          }
        }
      }))
  }

  it.scoped("the values and errors hold the keys as they are now, at the latest revision", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("config-one-key-change")
      yield* EtcdConfig.write(p, { port: "80" })
      const config = yield* EtcdConfig.make(p)
      const slow = ConfigProvider.fromFlat(config.provider.flattened)
      const port = Config.integer("port")
      const absent = Config.nested("db")(Config.string("host"))
      expect(yield* Effect.withConfigProvider(port, config.provider)).toBe(80)
      const first = yield* Effect.flip(Effect.withConfigProvider(absent, config.provider))
      const { revision } = yield* Kv.put(`${p}port`, "81")
      yield* config.waitFor(revision)
      expect(yield* Effect.withConfigProvider(port, config.provider)).toBe(81)
      // the message of a missing key names the revision it was read at: the new one
      const second = yield* Effect.flip(Effect.withConfigProvider(absent, config.provider))
      expect(second.message).toContain(`at revision ${revision}`)
      expect(second.message).not.toBe(first.message)
      expect(viewError(second, true)).toStrictEqual(
        viewError(yield* Effect.flip(Effect.withConfigProvider(absent, slow)), true)
      )
      // the key appears: it is read
      const written = yield* Kv.put(`${p}db/host`, "h")
      yield* config.waitFor(written.revision)
      expect(yield* Effect.withConfigProvider(absent, config.provider)).toBe("h")
    }))

  it.scoped("a ConfigProvider built over the provider (nested) reads through fromFlat", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("config-one-key-compose")
      yield* EtcdConfig.write(p, { service: { port: "8080" } })
      const config = yield* EtcdConfig.make(p)
      const nested = ConfigProvider.nested(config.provider, "service")
      expect(yield* Effect.withConfigProvider(Config.integer("port"), nested)).toBe(8080)
      const missing = yield* Effect.flip(Effect.withConfigProvider(Config.integer("other"), nested))
      expect(viewError(missing, true)).toMatchObject({ op: "MissingData", path: ["service", "other"] })
    }))
})
