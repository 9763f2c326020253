/**
 * etcd as Effect's configuration: a `ConfigProvider` over the keys under a prefix, the
 * decoded value of a `Config` as a live `Stream` and `SubscriptionRef`, and a whole
 * configuration value written in one transaction.
 *
 * The layout follows Effect's own `ConfigProvider.fromMap`, with `/` as the path delimiter:
 * `Config.nested("db")(Config.integer("port"))` reads `<prefix>db/port`, a sequence is read
 * from indexed keys (`<prefix>hosts[0]`, `<prefix>hosts[1]`) or from one key whose value
 * is split on `,`, and `Config.hashMap` enumerates the names under a path. Moving a
 * configuration from `fromMap`, `fromJson` or `fromEnv` into etcd changes no `Config`
 * declaration (only where the keys live).
 *
 * Values are read from a `Mirror` of the prefix: a read costs no round trip, and the first
 * read waits for the first list. A `Config` of one key (`Config.string("host")`, under
 * `Config.nested`, `withDescription`, `map`/`mapOrFail`, `redacted`) is read with one lookup
 * in the snapshot; any other shape through `ConfigProvider.fromFlat`, with the same value or
 * `ConfigError` either way. A live value is decoded again at each revision the mirror
 * reaches, from one map, so a change written in one transaction is seen as one new value.
 *
 * @example
 * ```ts
 * import { Config, Effect, Layer } from "effect"
 * import { EtcdConfig } from "effect-etcd"
 *
 * const port = Config.nested("db")(Config.integer("port"))
 *
 * // every Config read by the program comes from the keys under "apps/api/"
 * const program = Effect.gen(function*() {
 *   return yield* port
 * }).pipe(Effect.provide(EtcdConfig.layer("apps/api/")))
 * ```
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import type * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as PathPatch from "effect/ConfigProviderPathPatch"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import type * as Equivalence from "effect/Equivalence"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { isUtf8 } from "node:buffer"
import * as Compare from "./Compare.js"
import type { Etcd } from "./Etcd.js"
import type * as EtcdError from "./EtcdError.js"
import { toText } from "./internal/data/codec.js"
import { TaggedError } from "./internal/errors/taggedError.js"
import * as OneKeyConfig from "./internal/recipes/oneKeyConfig.js"
import * as KeyRange from "./KeyRange.js"
import * as Kv from "./Kv.js"
import * as Mirror from "./Mirror.js"
import * as Op from "./Op.js"
import * as Txn from "./Txn.js"

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * A prefix or a delimiter that cannot lay out a configuration: an empty prefix, one that
 * does not end with the path delimiter or is not well-formed text, an empty delimiter.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidConfigLayout extends TaggedError("InvalidConfigLayout")<{
  readonly prefix: string
  readonly reason: string
}> {
  /** @since 0.2.0 */
  override get message(): string {
    return `the configuration prefix ${JSON.stringify(this.prefix)} cannot be used: ${this.reason}`
  }
}

/**
 * A path that has no key of its own: a segment that holds the path delimiter, an empty
 * segment, or a name that would read as a sequence index.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidConfigPath extends TaggedError("InvalidConfigPath")<{
  readonly path: ReadonlyArray<string>
  readonly reason: string
}> {
  /** @since 0.2.0 */
  override get message(): string {
    return `the configuration path ${JSON.stringify(this.path)} has no key: ${this.reason}`
  }
}

/**
 * A key that is not under the configuration's prefix.
 *
 * @since 0.2.0
 * @category errors
 */
export class KeyOutsidePrefix extends TaggedError("KeyOutsidePrefix")<{
  readonly key: string
  readonly prefix: string
}> {
  /** @since 0.2.0 */
  override get message(): string {
    return `the key ${JSON.stringify(this.key)} is not under the configuration prefix ${JSON.stringify(this.prefix)}`
  }
}

/**
 * A value `write` cannot store so that it reads back the same: a number that is not
 * finite, an empty array, an array element holding the sequence delimiter, a function...
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidConfigValue extends TaggedError("InvalidConfigValue")<{
  readonly path: ReadonlyArray<string>
  readonly reason: string
}> {
  /** @since 0.2.0 */
  override get message(): string {
    return `the configuration value at ${JSON.stringify(this.path)} cannot be written: ${this.reason}`
  }
}

/**
 * `write` found the prefix changed under it at each of its attempts.
 *
 * @since 0.2.0
 * @category errors
 */
export class ConfigWriteConflict extends TaggedError("ConfigWriteConflict")<{
  readonly prefix: string
  readonly attempts: number
}> {
  /** @since 0.2.0 */
  override get message(): string {
    return `the keys under ${JSON.stringify(this.prefix)} changed during each of ${this.attempts} attempts to write`
  }
}

/**
 * The keys under the prefix, at one revision, do not decode as the `Config` asks: a key
 * missing, a bad integer, a value failing its Schema, a value that is not UTF-8. `key` is
 * the first key the `ConfigError` names (the prefix itself when it names none), `reason`
 * its message and `cause` the `ConfigError` itself.
 *
 * @since 0.2.0
 * @category errors
 */
export class ConfigDecodeError extends TaggedError("ConfigDecodeError")<{
  readonly key: string
  readonly revision: bigint
  readonly reason: string
  readonly cause: ConfigError.ConfigError
}> {
  /** @since 0.2.0 */
  override get message(): string {
    return `the configuration at revision ${this.revision} does not decode (${this.key}): ${this.reason}`
  }
}

/**
 * Every error of this module.
 *
 * @since 0.2.0
 * @category errors
 */
export type EtcdConfigError =
  | InvalidConfigLayout
  | InvalidConfigPath
  | KeyOutsidePrefix
  | InvalidConfigValue
  | ConfigWriteConflict
  | ConfigDecodeError

// ---------------------------------------------------------------------------
// layout
// ---------------------------------------------------------------------------

/**
 * How paths become keys: `pathDelimiter` joins the segments of a path after the prefix
 * (default `/`), and a value read as a sequence without indexed keys is split on
 * `sequenceDelimiter` (default `,`), as `ConfigProvider.fromMap` does.
 *
 * @since 0.2.0
 * @category models
 */
export interface LayoutOptions {
  readonly pathDelimiter?: string | undefined
  readonly sequenceDelimiter?: string | undefined
}

/**
 * Options of `make` and `layer`: the layout, and the options of the mirror behind the
 * provider.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends LayoutOptions {
  readonly mirror?: Omit<Mirror.MirrorOptions, "onDecodeError"> | undefined
}

interface Layout {
  readonly prefix: string
  readonly pathDelimiter: string
  readonly sequenceDelimiter: string
  /** The sequence delimiter with the spaces around it, as `fromMap` splits. */
  readonly sequenceSplitter: RegExp
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const layoutOf = (prefix: string, options: LayoutOptions | undefined): Either.Either<Layout, InvalidConfigLayout> => {
  const pathDelimiter = options?.pathDelimiter ?? "/"
  const sequenceDelimiter = options?.sequenceDelimiter ?? ","
  const fail = (reason: string) => Either.left(new InvalidConfigLayout({ prefix: String(prefix), reason }))
  if (typeof prefix !== "string") return fail("a prefix is text")
  if (typeof pathDelimiter !== "string" || pathDelimiter.length === 0) {
    return fail("the path delimiter is empty")
  }
  if (/[[\]]/.test(pathDelimiter)) return fail("the path delimiter holds a bracket, which marks sequence indices")
  if (typeof sequenceDelimiter !== "string" || sequenceDelimiter.length === 0) {
    return fail("the sequence delimiter is empty")
  }
  if (prefix.length === 0) return fail("the prefix is empty (a configuration lives under a prefix of its own)")
  if (loneSurrogate.test(prefix)) return fail("the prefix is not well-formed text (a lone surrogate)")
  if (!prefix.endsWith(pathDelimiter)) {
    return fail(`the prefix does not end with the path delimiter ${JSON.stringify(pathDelimiter)}`)
  }
  return Either.right({
    prefix,
    pathDelimiter,
    sequenceDelimiter,
    sequenceSplitter: new RegExp(`\\s*${escapeRegExp(sequenceDelimiter)}\\s*`)
  })
}

const indexPattern = /\[(\d+)\]/g
const trailingIndices = /^(.*?)((?:\[\d+\])+)$/

/** One segment of a key, with its trailing indices apart: `hosts[0]` is `hosts`, `[0]`. */
const splitSegment = (segment: string): Array<string> => {
  const match = trailingIndices.exec(segment)
  if (match === null) return [segment]
  const indices = Array.from(match[2].matchAll(indexPattern), (index) => `[${Number.parseInt(index[1], 10)}]`)
  return match[1].length === 0 ? indices : [match[1], ...indices]
}

const isIndex = (segment: string): boolean => /^\[\d+\]$/.test(segment)

/** The key of a path: indices join the segment before them, as `fromMap` writes them. */
const render = (layout: Layout, path: ReadonlyArray<string>): string => {
  let key = ""
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]
    key += i === 0 || isIndex(segment) ? segment : layout.pathDelimiter + segment
  }
  return layout.prefix + key
}

const pathOfKey = (layout: Layout, key: string): Array<string> =>
  key.slice(layout.prefix.length).split(layout.pathDelimiter).flatMap(splitSegment)

/** Why a segment of a path given to the provider or to `write` has no key, if it has none. */
const segmentProblem = (layout: Layout, segment: string): string | undefined =>
  segment.length === 0
    ? "a segment is empty"
    : segment.includes(layout.pathDelimiter)
    ? `the segment ${JSON.stringify(segment)} holds the path delimiter ${JSON.stringify(layout.pathDelimiter)}`
    : undefined

/**
 * The key that holds a path (`["db", "hosts", "[0]"]` under `app/` is `app/db/hosts[0]`),
 * or why the path has none.
 *
 * @since 0.2.0
 * @category layout
 */
export const keyOf = (
  prefix: string,
  path: ReadonlyArray<string>,
  options?: LayoutOptions
): Either.Either<string, InvalidConfigLayout | InvalidConfigPath> =>
  Either.flatMap(layoutOf(prefix, options), (layout) => {
    for (const segment of path) {
      const problem = segmentProblem(layout, segment)
      if (problem !== undefined) return Either.left(new InvalidConfigPath({ path, reason: problem }))
    }
    return Either.right(render(layout, path))
  })

/**
 * The path a key holds (`app/db/hosts[0]` under `app/` is `["db", "hosts", "[0]"]`), or
 * `KeyOutsidePrefix`.
 *
 * @since 0.2.0
 * @category layout
 */
export const pathOf = (
  prefix: string,
  key: string,
  options?: LayoutOptions
): Either.Either<ReadonlyArray<string>, InvalidConfigLayout | KeyOutsidePrefix> =>
  Either.flatMap(layoutOf(prefix, options), (layout) =>
    key.startsWith(layout.prefix)
      ? Either.right(pathOfKey(layout, key))
      : Either.left(new KeyOutsidePrefix({ key, prefix: layout.prefix })))

// ---------------------------------------------------------------------------
// the map the provider reads
// ---------------------------------------------------------------------------

/** A stored pair whose key or value is not UTF-8 text: reading it fails, nothing is coerced. */
class NotText {
  constructor(readonly part: "key" | "value") {}
}

type Stored = string | NotText

const storedOf = (key: Uint8Array, value: Uint8Array): Stored =>
  !isUtf8(key) ? new NotText("key") : !isUtf8(value) ? new NotText("value") : toText(value)

const source = (layout: Layout): Mirror.Source<string, Stored> => ({
  range: KeyRange.prefix(layout.prefix),
  decode: (kv) => Either.right({ key: kv.key, value: storedOf(kv.keyBytes, kv.valueBytes) }),
  decodeKey: (kv) => Either.right(kv.key),
  equivalence: (a, b) => typeof a === "string" ? a === b : typeof b !== "string" && a.part === b.part,
  decodeBytes: (key, value) => ({ key: toText(key), value: storedOf(key, value) })
})

/** A path as one string; `[]` and `[""]` stay apart. */
const pathId = (path: ReadonlyArray<string>): string => {
  let id = ""
  for (const segment of path) id += "\u0000" + segment
  return id
}

interface Leaf {
  readonly key: string
  readonly value: Stored
}

interface Index {
  readonly leaves: ReadonlyMap<string, Leaf>
  readonly children: ReadonlyMap<string, HashSet.HashSet<string>>
}

const buildIndex = (layout: Layout, values: ReadonlyMap<string, Stored>): Index => {
  const leaves = new Map<string, Leaf>()
  const children = new Map<string, Set<string>>()
  for (const [key, value] of values) {
    // the mirror holds the prefix's range only; a key outside it has no path
    if (!key.startsWith(layout.prefix)) continue
    const path = pathOfKey(layout, key)
    leaves.set(pathId(path), { key, value })
    let id = ""
    for (const segment of path) {
      let names = children.get(id)
      if (names === undefined) children.set(id, names = new Set())
      names.add(segment)
      id += "\u0000" + segment
    }
  }
  const frozen = new Map<string, HashSet.HashSet<string>>()
  for (const [id, names] of children) frozen.set(id, HashSet.fromIterable(names))
  return { leaves, children: frozen }
}

const escapeRegExp = (text: string): string => text.replace(/[/\-\\^$*+?.()|[\]{}]/g, "\\$&")

/** One value's text parsed whole, its error prefixed with the path, as `fromMap` does. */
const parseOne = <A>(
  text: string,
  path: ReadonlyArray<string>,
  primitive: Config.Config.Primitive<A>
): Either.Either<A, ConfigError.ConfigError> => {
  const result = primitive.parse(text)
  return Either.isLeft(result) ? Either.left(ConfigError.prefixed(result.left, [...path])) : result
}

/** What `fromMap` does with a value's text: parsed whole, or split on the sequence delimiter. */
const parsePrimitive = <A>(
  layout: Layout,
  text: string,
  path: ReadonlyArray<string>,
  primitive: Config.Config.Primitive<A>,
  split: boolean
): Effect.Effect<Array<A>, ConfigError.ConfigError> => {
  if (!split) {
    return Either.match(parseOne(text, path, primitive), {
      onLeft: Effect.fail,
      onRight: (value) => Effect.succeed([value])
    })
  }
  const parts = text.split(layout.sequenceSplitter)
  const parsed: Array<A> = []
  for (const part of parts) {
    const result = parseOne(part.trim(), path, primitive)
    if (Either.isLeft(result)) return Effect.fail(result.left)
    parsed.push(result.right)
  }
  return Effect.succeed(parsed)
}

const invalidPath = (layout: Layout, path: ReadonlyArray<string>): ConfigError.ConfigError | undefined => {
  for (const segment of path) {
    const problem = segmentProblem(layout, segment)
    if (problem !== undefined) {
      return ConfigError.InvalidData([...path], new InvalidConfigPath({ path, reason: problem }).message)
    }
  }
  return undefined
}

/** The text at a path in one snapshot, or the error the flat provider's load fails with. */
const textAt = (
  layout: Layout,
  index: Index,
  revision: bigint,
  path: ReadonlyArray<string>
): Either.Either<string, ConfigError.ConfigError> => {
  const invalid = invalidPath(layout, path)
  if (invalid !== undefined) return Either.left(invalid)
  const leaf = index.leaves.get(pathId(path))
  if (leaf === undefined) {
    return Either.left(
      ConfigError.MissingData(
        [...path],
        `Expected ${render(layout, path)} to exist in etcd (under ${layout.prefix}, at revision ${revision})`
      )
    )
  }
  if (typeof leaf.value !== "string") {
    return Either.left(
      ConfigError.InvalidData(
        [...path],
        `The ${leaf.value.part} of ${leaf.key} is not valid UTF-8 (at revision ${revision})`
      )
    )
  }
  return Either.right(leaf.value)
}

/** The flat provider of one snapshot of the mirror. */
const flatAt = (layout: Layout, index: Index, revision: bigint): ConfigProvider.ConfigProvider.Flat =>
  ConfigProvider.makeFlat({
    // called when the load runs: computed at once, nothing to suspend
    load: (path, primitive, split) =>
      Either.match(textAt(layout, index, revision, path), {
        onLeft: Effect.fail,
        onRight: (text) => parsePrimitive(layout, text, path, primitive, split)
      }),
    enumerateChildren: (path) => {
      const invalid = invalidPath(layout, path)
      if (invalid !== undefined) return Effect.fail(invalid)
      return Effect.succeed(index.children.get(pathId(path)) ?? HashSet.empty())
    },
    patch: PathPatch.empty
  })

/** `flatAt`'s load of one key without a split, as an `Either`: what a one-key read parses. */
const loadOneAt = (layout: Layout, index: Index, revision: bigint): OneKeyConfig.LoadOne => (path, primitive) =>
  Either.flatMap(textAt(layout, index, revision, path), (text) => parseOne(text, path, primitive))

/** The first path a `ConfigError` names, for the key of a `ConfigDecodeError`. */
const firstPath = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return firstPath(error.left)
    default:
      return error.path
  }
}

const toDecodeError = (layout: Layout, revision: bigint) => (error: ConfigError.ConfigError): ConfigDecodeError =>
  new ConfigDecodeError({
    key: render(layout, firstPath(error)),
    revision,
    reason: String(error),
    cause: error
  })

/**
 * Whether two decoded values are the same: `Equal.equals`, and arrays and plain objects
 * compared member by member (a `Config.all` builds a new object at each decode).
 */
const sameValue = (a: unknown, b: unknown): boolean => {
  if (Equal.equals(a, b)) return true
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => sameValue(item, b[i]))
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length &&
      keys.every((key) => Object.hasOwn(b, key) && sameValue(a[key], b[key]))
  }
  return false
}

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

// ---------------------------------------------------------------------------
// the service
// ---------------------------------------------------------------------------

/**
 * A live value of a `Config`: `ref` holds the latest value that decoded, `values` streams
 * it (the current one first, then each new one, equal ones left out; changes that come
 * faster than they are decoded are decoded once, at the latest revision, so a value in
 * between may be skipped, as with any `SubscriptionRef`), `errors` streams the
 * changes that did not decode (each is logged too, and leaves `ref` as it was); a reader of
 * `errors` first gets the latest 16 of those reported before it started. `values`
 * and `errors` fail with the mirror's error if it stops (a permission refused...);
 * `ref` then keeps its last value.
 *
 * @since 0.2.0
 * @category models
 */
export interface Live<A> {
  readonly ref: SubscriptionRef.SubscriptionRef<A>
  readonly values: Stream.Stream<A, EtcdError.MirrorError>
  readonly errors: Stream.Stream<ConfigDecodeError, EtcdError.MirrorError>
  /** The revision of the keys `ref`'s value was decoded from. */
  readonly revision: Effect.Effect<bigint>
}

/**
 * Options of `live` and `values`: when two decoded values are the same (by default
 * `Equal.equals`, arrays and plain objects compared member by member).
 *
 * @since 0.2.0
 * @category models
 */
export interface LiveOptions<A> {
  readonly equivalence?: Equivalence.Equivalence<A> | undefined
}

/**
 * The configuration under one prefix.
 *
 * @since 0.2.0
 * @category models
 */
export interface EtcdConfig {
  readonly prefix: string
  /**
   * A `ConfigProvider` over the keys: its `load` decodes a whole `Config` from one snapshot;
   * composed (`orElse`, `nested`, `within`), each value is read from the latest one.
   */
  readonly provider: ConfigProvider.ConfigProvider
  /** Decodes a `Config` from the keys as they are now, at one revision. */
  readonly load: <A>(config: Config.Config<A>) => Effect.Effect<A, ConfigDecodeError | EtcdError.MirrorError>
  /**
   * A live value: fails with `ConfigDecodeError` if the keys do not decode now; once
   * started, a change that does not decode is reported on `errors` and never replaces it.
   */
  readonly live: <A>(
    config: Config.Config<A>,
    options?: LiveOptions<A>
  ) => Effect.Effect<Live<A>, ConfigDecodeError | EtcdError.MirrorError, Scope.Scope>
  /** The value of a `Config`, the current one first, then each new one: `live(config)`'s `values`. */
  readonly values: <A>(
    config: Config.Config<A>,
    options?: LiveOptions<A>
  ) => Stream.Stream<A, ConfigDecodeError | EtcdError.MirrorError>
  /** The revision of the keys the provider reads (0 before the first list). */
  readonly revision: Effect.Effect<bigint>
  /** Done once the first list of the prefix is in. */
  readonly ready: Effect.Effect<void, EtcdError.MirrorError>
  /**
   * Done once the provider reads the keys at `revision` or later: read-your-writes after
   * `write`. With `timeout`, fails with `MirrorTimeout` after waiting that long (as
   * `Mirror`'s `waitFor`).
   */
  readonly waitFor: (
    revision: bigint,
    options?: Mirror.WaitForOptions
  ) => Effect.Effect<void, EtcdError.MirrorError | EtcdError.MirrorTimeout>
}

/**
 * The configuration of `layer`, in the context.
 *
 * @since 0.2.0
 * @category tags
 */
export const EtcdConfig: Context.Tag<EtcdConfig, EtcdConfig> = Context.GenericTag<EtcdConfig>(
  "effect-etcd/EtcdConfig"
)

/** The errors a new reader of `Live.errors` gets first, and those kept for a slow reader. */
const errorsBuffer = 16

const sourceUnavailable = (layout: Layout, path: ReadonlyArray<string>) => (error: EtcdError.MirrorError) =>
  ConfigError.SourceUnavailable(
    [...path],
    `the mirror of ${layout.prefix} stopped: ${error.message}`,
    Cause.fail(error)
  )

/**
 * The configuration under a prefix: a mirror of the prefix (lasting as long as the scope)
 * and the provider, live values and loads over it. Fails with `InvalidConfigLayout` for a
 * prefix that cannot be used.
 *
 * @example
 * ```ts
 * import { Config, Effect, Stream } from "effect"
 * import { EtcdConfig } from "effect-etcd"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const config = yield* EtcdConfig.make("apps/api/")
 *   const live = yield* config.live(Config.integer("max-connections"))
 *   // the current value now, then each new one an operator writes
 *   return yield* live.values.pipe(Stream.take(2), Stream.runCollect)
 * }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  prefix: string,
  options?: Options
): Effect.Effect<EtcdConfig, InvalidConfigLayout, Etcd | Scope.Scope> =>
  Effect.gen(function*() {
    const layout = yield* layoutOf(prefix, options)
    const mirror = yield* Mirror.make(source(layout), options?.mirror)

    // the readers of the latest snapshot: the mirror hands out the same map until it changes
    let cached:
      | {
        readonly values: ReadonlyMap<string, Stored>
        readonly index: Index
        revision: bigint
        provider: ConfigProvider.ConfigProvider
        loadOne: OneKeyConfig.LoadOne
      }
      | undefined
    const readersAt = (snapshot: Mirror.Snapshot<string, Stored>) => {
      if (cached === undefined || cached.values !== snapshot.values) {
        const index = buildIndex(layout, snapshot.values)
        cached = {
          values: snapshot.values,
          index,
          revision: snapshot.revision,
          provider: ConfigProvider.fromFlat(flatAt(layout, index, snapshot.revision)),
          loadOne: loadOneAt(layout, index, snapshot.revision)
        }
      } else if (cached.revision !== snapshot.revision) {
        cached.revision = snapshot.revision
        cached.provider = ConfigProvider.fromFlat(flatAt(layout, cached.index, snapshot.revision))
        cached.loadOne = loadOneAt(layout, cached.index, snapshot.revision)
      }
      return cached
    }
    const providerAt = (snapshot: Mirror.Snapshot<string, Stored>): ConfigProvider.ConfigProvider =>
      readersAt(snapshot).provider

    /**
     * A whole `Config` from one snapshot: a one-key `Config` read straight from the index
     * (the value or error `fromFlat` gives, without its walk), any other through `fromFlat`.
     * Called inside an effect: a parse or map that throws is a defect, as under `fromFlat`.
     */
    const readAt = <A>(
      snapshot: Mirror.Snapshot<string, Stored>,
      config: Config.Config<A>
    ): Effect.Effect<A, ConfigError.ConfigError> => {
      const plan = OneKeyConfig.planOf(config)
      return plan === undefined
        ? providerAt(snapshot).load(config)
        : OneKeyConfig.run(plan, readersAt(snapshot).loadOne)
    }

    const snapshotFor = (path: ReadonlyArray<string>) =>
      Effect.mapError(mirror.snapshot, sourceUnavailable(layout, path))

    const flattened = ConfigProvider.makeFlat({
      load: (path, primitive, split) =>
        Effect.flatMap(snapshotFor(path), (snapshot) => providerAt(snapshot).flattened.load(path, primitive, split)),
      enumerateChildren: (path) =>
        Effect.flatMap(snapshotFor(path), (snapshot) => providerAt(snapshot).flattened.enumerateChildren(path)),
      patch: PathPatch.empty
    })
    // one effect for every load of a whole Config, not one per read
    const snapshotOfAll = snapshotFor([])
    const provider = ConfigProvider.make({
      load: (config) => Effect.flatMap(snapshotOfAll, (snapshot) => readAt(snapshot, config)),
      flattened
    })

    const decodeAt = <A>(snapshot: Mirror.Snapshot<string, Stored>, config: Config.Config<A>) =>
      Effect.mapError(readAt(snapshot, config), toDecodeError(layout, snapshot.revision))

    const load = <A>(config: Config.Config<A>) =>
      Effect.flatMap(mirror.snapshot, (snapshot) => decodeAt(snapshot, config))

    const start = <A>(config: Config.Config<A>, liveOptions?: LiveOptions<A>) =>
      Effect.gen(function*() {
        const equivalence: Equivalence.Equivalence<A> = liveOptions?.equivalence ?? sameValue
        // subscribed before the first read: no change between the two is missed
        const changes = yield* mirror.subscribe
        const first = yield* mirror.snapshot
        let current = yield* decodeAt(first, config)
        let revision = first.revision
        let decodedAt = first.revision
        const ref = yield* SubscriptionRef.make(current)
        const errors = yield* Effect.acquireRelease(
          PubSub.sliding<ConfigDecodeError>({ capacity: errorsBuffer, replay: errorsBuffer }),
          PubSub.shutdown
        )
        const stopped = yield* Deferred.make<never, EtcdError.MirrorError>()

        /** Decodes the keys as the mirror has them now, once per revision, never an older one. */
        const refresh = Effect.gen(function*() {
          const snapshot = yield* mirror.snapshot
          if (snapshot.revision <= decodedAt) return
          decodedAt = snapshot.revision
          const decoded = yield* Effect.either(decodeAt(snapshot, config))
          if (Either.isLeft(decoded)) {
            const error = decoded.left
            yield* Effect.logWarning("EtcdConfig: a change does not decode; the last good value stays").pipe(
              Effect.annotateLogs({
                prefix: layout.prefix,
                key: error.key,
                revision: error.revision.toString(),
                reason: error.reason
              })
            )
            yield* PubSub.publish(errors, error)
            return
          }
          revision = snapshot.revision
          if (equivalence(current, decoded.right)) return
          current = decoded.right
          yield* SubscriptionRef.set(ref, decoded.right)
        })

        yield* changes.pipe(
          // a chunk of changes (a transaction's keys, a burst) is one decode
          Stream.runForEachChunk(() => refresh),
          Effect.catchAll((error) =>
            Effect.zipRight(
              Effect.logError("EtcdConfig: the mirror stopped; the last good value stays").pipe(
                Effect.annotateLogs({ prefix: layout.prefix, error: error.message })
              ),
              Deferred.fail(stopped, error)
            )
          ),
          Effect.interruptible,
          Effect.forkScoped
        )

        const handle: Live<A> = {
          ref,
          values: Stream.interruptWhen(ref.changes, Deferred.await(stopped)),
          errors: Stream.interruptWhen(
            Stream.unwrapScoped(Effect.map(PubSub.subscribe(errors), (queue) => Stream.fromQueue(queue))),
            Deferred.await(stopped)
          ),
          revision: Effect.sync(() => revision)
        }
        return handle
      })

    /**
     * `start` in a scope of its own within the caller's: a live value that fails to start
     * leaves no subscription behind (an unread one would hold the mirror back once full).
     */
    const live = <A>(config: Config.Config<A>, liveOptions?: LiveOptions<A>) =>
      Effect.flatMap(Effect.scope, (outer) =>
        Effect.flatMap(Scope.fork(outer, ExecutionStrategy.sequential), (own) =>
          start(config, liveOptions).pipe(
            Scope.extend(own),
            Effect.onError((cause) => Scope.close(own, Exit.failCause(cause)))
          )))

    const service: EtcdConfig = {
      prefix: layout.prefix,
      provider,
      load,
      live,
      values: (config, liveOptions) =>
        Stream.unwrapScoped(Effect.map(live(config, liveOptions), (handle) =>
          handle.values)),
      revision: mirror.revision,
      ready: mirror.ready,
      waitFor: mirror.waitFor
    }
    return service
  })

/**
 * The configuration under a prefix as a layer: provides `EtcdConfig` and installs its
 * provider as the default `ConfigProvider` (`Layer.setConfigProvider`), so every `Config`
 * read below it comes from etcd. To fall back to the environment, build the provider
 * yourself: `ConfigProvider.orElse(config.provider, ConfigProvider.fromEnv)`.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { EtcdConfig, EtcdMemory } from "effect-etcd"
 *
 * const program = Effect.gen(function*() {
 *   const host = yield* Config.string("host")   // reads apps/api/host
 *   return host
 * }).pipe(Effect.provide(EtcdConfig.layer("apps/api/")), Effect.provide(EtcdMemory.layer()))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  prefix: string,
  options?: Options
): Layer.Layer<EtcdConfig, InvalidConfigLayout, Etcd> =>
  Layer.unwrapScoped(
    Effect.map(make(prefix, options), (config) =>
      Layer.merge(Layer.succeed(EtcdConfig, config), Layer.setConfigProvider(config.provider)))
  )

// ---------------------------------------------------------------------------
// writing
// ---------------------------------------------------------------------------

/**
 * A configuration value `write` stores: text, numbers, booleans, bigints and `Redacted`
 * values as keys; objects and `HashMap`s as paths; arrays as indexed keys. `null` and
 * `undefined` members are left out (a `Config.option` or `withDefault` reads them as absent).
 *
 * @since 0.2.0
 * @category models
 */
export type ConfigValue =
  | string
  | number
  | boolean
  | bigint
  | Redacted.Redacted<ConfigValue>
  | ReadonlyArray<ConfigValue>
  | HashMap.HashMap<string, ConfigValue>
  | { readonly [name: string]: ConfigValue | null | undefined }

/**
 * Options of `write`: the layout, and `merge: true` to keep the keys under the prefix the
 * value does not write (by default the prefix ends up holding the value's keys and no
 * other, as one transaction that also deletes the others).
 *
 * @since 0.2.0
 * @category models
 */
export interface WriteOptions extends LayoutOptions {
  readonly merge?: boolean | undefined
  /** Attempts when another writer changes the prefix meanwhile (default 5). */
  readonly attempts?: number | undefined
}

/**
 * What `write` did: the revision of its transaction, the keys it wrote and those it deleted.
 *
 * @since 0.2.0
 * @category models
 */
export interface WriteResult {
  readonly revision: bigint
  readonly written: ReadonlyArray<string>
  readonly deleted: ReadonlyArray<string>
}

/**
 * The keys and texts of a configuration value, in the layout the provider reads, or why
 * the value cannot be written so that it reads back the same.
 *
 * @since 0.2.0
 * @category layout
 */
export const encode = (
  prefix: string,
  value: ConfigValue,
  options?: LayoutOptions
): Either.Either<
  ReadonlyArray<readonly [key: string, text: string]>,
  InvalidConfigLayout | InvalidConfigPath | InvalidConfigValue
> =>
  Either.flatMap(layoutOf(prefix, options), (layout) => {
    const entries: Array<readonly [string, string]> = []
    const invalid = (path: ReadonlyArray<string>, reason: string) => new InvalidConfigValue({ path, reason })
    const leaf = (path: ReadonlyArray<string>, text: string, inSequence: boolean) => {
      if (inSequence && text.includes(layout.sequenceDelimiter)) {
        return invalid(
          path,
          `a sequence element holding the sequence delimiter ${
            JSON.stringify(layout.sequenceDelimiter)
          } would read back as several elements`
        )
      }
      entries.push([render(layout, path), text])
      return undefined
    }
    const member = (path: ReadonlyArray<string>, name: unknown, item: unknown) => {
      if (typeof name !== "string") return invalid(path, "a name is text")
      const problem = segmentProblem(layout, name) ??
        (splitSegment(name).length > 1 ? `the name ${JSON.stringify(name)} would read as a sequence index` : undefined)
      if (problem !== undefined) return new InvalidConfigPath({ path: [...path, name], reason: problem })
      return item === null || item === undefined ? undefined : loop([...path, name], item, false)
    }
    const loop = (
      path: ReadonlyArray<string>,
      item: unknown,
      inSequence: boolean
    ): InvalidConfigValue | InvalidConfigPath | undefined => {
      if (path.length === 0 && !isPlainObject(item) && !HashMap.isHashMap(item)) {
        return invalid(path, "a configuration is an object or a HashMap of names")
      }
      switch (typeof item) {
        case "string":
          return leaf(path, item, inSequence)
        case "number":
          return Number.isFinite(item) ? leaf(path, String(item), inSequence) : invalid(path, `${item} is not finite`)
        case "boolean":
        case "bigint":
          return leaf(path, String(item), inSequence)
      }
      if (Redacted.isRedacted(item)) return loop(path, Redacted.value(item), inSequence)
      if (Array.isArray(item)) {
        if (item.length === 0) {
          return invalid(path, "an empty array has no key (leave it out and read it with Config.withDefault)")
        }
        for (let i = 0; i < item.length; i++) {
          const element: unknown = item[i]
          if (element === null || element === undefined) return invalid([...path, `[${i}]`], "an element is absent")
          const error = loop([...path, `[${i}]`], element, true)
          if (error !== undefined) return error
        }
        return undefined
      }
      if (HashMap.isHashMap(item)) {
        for (const [name, child] of item as HashMap.HashMap<unknown, unknown>) {
          const error = member(path, name, child)
          if (error !== undefined) return error
        }
        return undefined
      }
      if (isPlainObject(item)) {
        for (const name of Object.keys(item)) {
          const error = member(path, name, item[name])
          if (error !== undefined) return error
        }
        return undefined
      }
      return invalid(path, `a ${item === null ? "null" : typeof item} is not a configuration value`)
    }
    const error = loop([], value, false)
    return error === undefined ? Either.right(entries) : Either.left(error)
  })

/**
 * Writes a whole configuration value under a prefix in one transaction, in the layout the
 * provider reads (`encode`): each key of the value is put, and, unless `merge` is set, each
 * other key under the prefix is deleted, guarded by the revision it was read at (tried
 * again if another writer got in between). A live value sees the write as one change.
 * The transaction holds one op per key: a value of more keys than the server's
 * `--max-txn-ops` (128 by default) fails with `TooManyOps`.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { EtcdConfig } from "effect-etcd"
 *
 * const seed = EtcdConfig.write("apps/api/", {
 *   db: { host: "10.0.0.5", port: 5432, password: Redacted.make("s3cret") },
 *   hosts: ["a.example", "b.example"],   // hosts[0], hosts[1]
 *   "max-connections": 100
 * })
 * ```
 *
 * @since 0.2.0
 * @category writing
 */
export const write = (
  prefix: string,
  value: ConfigValue,
  options?: WriteOptions
): Effect.Effect<
  WriteResult,
  | InvalidConfigLayout
  | InvalidConfigPath
  | InvalidConfigValue
  | ConfigWriteConflict
  | EtcdError.ReadError
  | EtcdError.TxnError,
  Etcd
> =>
  Effect.gen(function*() {
    const entries = yield* encode(prefix, value, options)
    const puts = entries.map(([key, text]) => Op.put(key, text))
    const written = entries.map(([key]) => key)
    if (options?.merge === true) {
      const result = yield* Txn.txnCompare([], puts)
      return { revision: result.revision, written, deleted: [] }
    }
    const range = KeyRange.prefix(prefix)
    const keep = new Set(written)
    const attempts = Math.max(1, Math.trunc(options?.attempts ?? 5))
    for (let attempt = 0; attempt < attempts; attempt++) {
      const existing = yield* Kv.range(range, { keysOnly: true })
      // deleted by their bytes: a key that is not UTF-8 text is deleted too, not its lossy text
      const stale = existing.kvs.filter((kv) => !keep.has(kv.key))
      const deleted = stale.map((kv) => kv.key)
      const result = yield* Txn.txnCompare(
        [Compare.modRevision(range).lessThan(existing.revision + 1n)],
        [...stale.map((kv) => Op.delete(kv.keyBytes)), ...puts]
      )
      if (result.succeeded) return { revision: result.revision, written, deleted }
    }
    return yield* new ConfigWriteConflict({ prefix, attempts })
  })
