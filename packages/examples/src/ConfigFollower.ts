/**
 * A service configured from etcd: its settings live under a prefix, one key per setting, and its
 * `Layer` graph reads them with Effect's own `Config`. `EtcdConfig.layer(prefix)` installs a
 * `ConfigProvider` over the keys (so `Config.string("service-name")` reads `<prefix>service-name`)
 * and provides the `EtcdConfig` service, whose `live` keeps the settings current: the service's
 * behaviour changes as soon as an operator runs `etcdctl put`. A change made in one txn is one new
 * value, never half of it; a value that does not parse is refused, reported, and the previous
 * settings stay in force.
 *
 * `pnpm example config` runs `program` against a throwaway etcd.
 */
import type { ConfigError } from "effect"
import { Config, Console, Context, Effect, Layer, Stream, SubscriptionRef } from "effect"
import type { Etcd, EtcdError } from "effect-etcd"
import { EtcdConfig, Kv, Op, Txn } from "effect-etcd"

/** The application's settings, followed live. */
export interface Settings {
  readonly logLevel: string
  readonly maxConnections: number
  readonly featureX: boolean
}

/** How the settings are read from the keys `log-level`, `max-connections` and `feature-x`. */
export const settings: Config.Config<Settings> = Config.all({
  logLevel: Config.literal("debug", "info", "warning", "error")("log-level"),
  maxConnections: Config.integer("max-connections"),
  featureX: Config.withDefault(Config.boolean("feature-x"), false)
})

/** The service: answers requests as its current settings say. */
export class Frontend extends Context.Tag("examples/Frontend")<Frontend, {
  readonly handle: (request: string) => Effect.Effect<string>
  /** The settings in force: the current ones first, then each new one. */
  readonly changes: Stream.Stream<Settings, EtcdError.MirrorError>
  /** The changes that were refused. */
  readonly refused: Stream.Stream<EtcdConfig.ConfigDecodeError, EtcdError.MirrorError>
}>() {}

/**
 * The service's layer: its name is read once, at start, through the `ConfigProvider` the
 * `EtcdConfig` layer installed; its settings are followed live.
 */
export const FrontendLive: Layer.Layer<
  Frontend,
  EtcdConfig.ConfigDecodeError | EtcdError.MirrorError | ConfigError.ConfigError,
  EtcdConfig.EtcdConfig
> = Layer.scoped(
  Frontend,
  Effect.gen(function*() {
    const name = yield* Config.string("service-name")
    const config = yield* EtcdConfig.EtcdConfig
    const live = yield* config.live(settings)
    return {
      handle: (request) =>
        Effect.map(
          SubscriptionRef.get(live.ref),
          (current) =>
            `${name}[${current.logLevel}] ${request}: ${
              current.featureX ? "served by feature X" : "served"
            } (up to ${current.maxConnections} connections)`
        ),
      changes: live.values,
      refused: live.errors
    }
  })
)

/** The application's layers: the service over the configuration under `prefix`. */
export const AppLayer = (prefix: string) => FrontendLive.pipe(Layer.provide(EtcdConfig.layer(prefix)))

const show = (settings: Settings) =>
  `logLevel=${settings.logLevel} maxConnections=${settings.maxConnections} featureX=${settings.featureX}`

/**
 * An operator changes the settings five times while the service runs. Returns every settings the
 * service ran with, the first one included.
 */
export const program = (prefix = "config/app/"): Effect.Effect<
  ReadonlyArray<Settings>,
  unknown,
  Etcd.Etcd
> =>
  Effect.gen(function*() {
    yield* Console.log(`operator: initial settings under ${prefix} (one txn)`)
    yield* EtcdConfig.write(prefix, { "service-name": "frontend", "log-level": "info", "max-connections": 100 })

    const run = Effect.scoped(Effect.gen(function*() {
      const frontend = yield* Frontend
      const loaded: Array<Settings> = []
      /**
       * Waits until the service runs with settings that satisfy `predicate`, keeping each it runs
       * with on the way. `changes` starts with the settings in force, so none is missed.
       */
      const until = (predicate: (settings: Settings) => boolean) =>
        frontend.changes.pipe(
          Stream.takeUntil(predicate),
          Stream.runForEach((next) =>
            Effect.gen(function*() {
              const last = loaded[loaded.length - 1]
              if (last !== undefined && show(last) === show(next)) return
              loaded.push(next)
              yield* Console.log(`   running with: ${show(next)}`)
              yield* Console.log(`   ${yield* frontend.handle("GET /")}`)
            })
          )
        )
      /** Runs what an operator would type, through the client. */
      const etcdctlPut = (key: string, value: string) =>
        Effect.zipRight(Console.log(`operator: etcdctl put ${prefix}${key} ${value}`), Kv.put(`${prefix}${key}`, value))

      yield* until(() => true)

      yield* etcdctlPut("log-level", "debug")
      yield* until((settings) => settings.logLevel === "debug")

      yield* Console.log("operator: max-connections=200 and feature-x=true, in one txn")
      yield* Txn.txn([Op.put(`${prefix}max-connections`, "200"), Op.put(`${prefix}feature-x`, "true")])
      yield* until((settings) => settings.maxConnections === 200)

      const typo = yield* etcdctlPut("max-connections", "lots")
      const refused = yield* frontend.refused.pipe(
        Stream.filter((error) => error.revision >= typo.revision),
        Stream.take(1),
        Stream.runCollect
      )
      for (const error of refused) {
        yield* Console.log(`   refused revision ${error.revision}, keeping the previous settings: ${error.reason}`)
      }
      yield* etcdctlPut("max-connections", "300")
      yield* until((settings) => settings.maxConnections === 300)

      yield* Console.log(`operator: etcdctl del ${prefix}feature-x (back to its default)`)
      yield* Kv.delete(`${prefix}feature-x`)
      yield* until((settings) => !settings.featureX)
      return loaded
    }))
    return yield* Effect.provide(run, AppLayer(prefix))
  })
