/**
 * A config follower: the application's settings live under a prefix, one key per setting. The
 * follower reads them once, then watches the prefix from the revision after that read and
 * reloads on every change. A change made in one txn arrives as one response, so it is applied
 * as one reload, never half of it. A value that does not parse is refused and the previous
 * settings stay in force.
 *
 * The settings are decoded with Effect's own `Config`, from a `ConfigProvider` over the keys.
 *
 * `pnpm example config` runs `program` against a throwaway etcd.
 */
import type { ConfigError } from "effect"
import { Config, ConfigProvider, Console, Effect, Either, Fiber, Stream, SubscriptionRef } from "effect"
import type { Etcd, EtcdError } from "effect-etcd"
import { KeyRange, Kv, Op, Txn, Watch } from "effect-etcd"

/** The application's settings. */
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

/** Decodes the raw keys (names without the prefix) into settings. */
const decode = (keys: ReadonlyMap<string, string>) =>
  Effect.withConfigProvider(settings, ConfigProvider.fromMap(new Map(keys)))

/**
 * Reads the settings under `prefix` once, into `current`, and returns with `reloads`: an effect
 * that, while it runs, applies every change to `current` and calls `onReload`.
 */
export const follow = (
  prefix: string,
  onReload: (settings: Settings) => Effect.Effect<void>
): Effect.Effect<
  {
    readonly current: SubscriptionRef.SubscriptionRef<Settings>
    readonly reloads: Effect.Effect<void, EtcdError.EtcdError, Etcd.Etcd>
  },
  EtcdError.EtcdError | ConfigError.ConfigError,
  Etcd.Etcd
> =>
  Effect.gen(function*() {
    const snapshot = yield* Kv.range(KeyRange.prefix(prefix))
    const keys = new Map(snapshot.kvs.map((kv) => [kv.key.slice(prefix.length), kv.value]))
    const first = yield* decode(keys)
    const current = yield* SubscriptionRef.make(first)
    // one response holds every event of one revision: a txn's changes are applied together
    const reloads = Watch.responses(KeyRange.prefix(prefix), { startRevision: snapshot.revision + 1n }).pipe(
      Stream.runForEach((response) =>
        Effect.gen(function*() {
          if (response.events.length === 0) return
          for (const event of response.events) {
            const name = event.key.slice(prefix.length)
            if (event.type === "put") keys.set(name, event.value)
            else keys.delete(name)
          }
          const decoded = yield* Effect.either(decode(keys))
          if (Either.isLeft(decoded)) {
            yield* Console.log(
              `   refused revision ${response.revision}, keeping the previous settings: ${decoded.left}`
            )
            return
          }
          yield* SubscriptionRef.set(current, decoded.right)
          yield* onReload(decoded.right)
        })
      )
    )
    return { current, reloads }
  })

const show = (settings: Settings) =>
  `logLevel=${settings.logLevel} maxConnections=${settings.maxConnections} featureX=${settings.featureX}`

/**
 * An operator changes the settings five times while the application follows them. Returns
 * every settings the application loaded, the first one included.
 */
export const program = (prefix = "config/app/"): Effect.Effect<
  ReadonlyArray<Settings>,
  EtcdError.EtcdError | ConfigError.ConfigError,
  Etcd.Etcd
> =>
  Effect.scoped(Effect.gen(function*() {
    yield* Console.log(`operator: initial settings under ${prefix}`)
    yield* Txn.txn([Op.put(`${prefix}log-level`, "info"), Op.put(`${prefix}max-connections`, "100")])

    const loaded: Array<Settings> = []
    const { current, reloads } = yield* follow(prefix, (settings) =>
      Effect.zipRight(
        Effect.sync(() => loaded.push(settings)),
        Console.log(`   reloaded: ${show(settings)}`)
      ))
    const first = yield* SubscriptionRef.get(current)
    loaded.push(first)
    yield* Console.log(`   loaded: ${show(first)}`)
    const follower = yield* Effect.forkScoped(reloads)
    /** Waits until the application runs with settings that satisfy `predicate`. */
    const until = (predicate: (settings: Settings) => boolean) =>
      current.changes.pipe(Stream.filter(predicate), Stream.take(1), Stream.runDrain)

    yield* Console.log("operator: log-level=debug")
    yield* Kv.put(`${prefix}log-level`, "debug")
    yield* until((settings) => settings.logLevel === "debug")

    yield* Console.log("operator: max-connections=200 and feature-x=true, in one txn")
    yield* Txn.txn([Op.put(`${prefix}max-connections`, "200"), Op.put(`${prefix}feature-x`, "true")])
    yield* until((settings) => settings.maxConnections === 200)

    yield* Console.log("operator: max-connections=lots (a typo)")
    yield* Kv.put(`${prefix}max-connections`, "lots")
    yield* Console.log("operator: max-connections=300 (fixed)")
    yield* Kv.put(`${prefix}max-connections`, "300")
    yield* until((settings) => settings.maxConnections === 300)

    yield* Console.log("operator: deletes feature-x (back to its default)")
    yield* Kv.delete(`${prefix}feature-x`)
    yield* until((settings) => !settings.featureX)

    yield* Fiber.interrupt(follower)
    return loaded
  }))
