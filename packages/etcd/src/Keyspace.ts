/**
 * Typed keyspaces: the keys under one prefix, with a Schema for the rest of each key and
 * one for its value. Reads decode, writes encode, watches give typed events, and ops and
 * compares for transactions are built from typed keys and values. A stored value that
 * does not decode is a `EtcdDecodeError` naming the key, the revision and the Schema's
 * message, never a defect; `getAll` and `watch` can skip such entries instead of failing.
 *
 * @example
 * ```ts
 * import { Effect, Option, Schema } from "effect"
 * import { Keyspace } from "effect-etcd"
 *
 * const Endpoint = Schema.Struct({ host: Schema.String, port: Schema.Number })
 * const services = Keyspace.json("services/api/", Endpoint)
 *
 * const program = Effect.gen(function*() {
 *   yield* services.put("node-1", { host: "10.0.0.5", port: 8080 })
 *   const one = yield* services.get("node-1")            // Option<{ host, port }>
 *   const { values, revision } = yield* services.getAll() // ReadonlyMap<string, { host, port }>
 *   return { one: Option.getOrNull(one), count: values.size, revision }
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Compare from "./Compare.js"
import type { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Printable from "./internal/base/printable.js"
import { toText } from "./internal/data/codec.js"
import * as KeyRange from "./KeyRange.js"
import type { KeyValue } from "./KeyValue.js"
import * as Kv from "./Kv.js"
import * as Mirror from "./Mirror.js"
import * as Op from "./Op.js"
import * as Watch from "./Watch.js"

/**
 * What to do with a stored entry that does not decode: fail with `EtcdDecodeError`, or leave
 * the entry out (and log it at warning level).
 *
 * @since 0.1.0
 * @category models
 */
export type OnDecodeError = "fail" | "skip"

/**
 * One decoded entry with etcd's metadata (`kv`: create and mod revision, version, lease).
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry<K, V> {
  readonly key: K
  readonly value: V
  readonly kv: KeyValue
}

/**
 * What `getAll` returns: the values by key, the entries with their metadata, the
 * revision of the read, and the errors of the entries left out under `"skip"`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entries<K, V> {
  readonly values: ReadonlyMap<K, V>
  readonly entries: ReadonlyMap<K, Entry<K, V>>
  /** The store's revision the read reflects. */
  readonly revision: bigint
  readonly skipped: ReadonlyArray<EtcdError.EtcdDecodeError>
}

/**
 * A typed change: a put with its decoded value, or a delete.
 *
 * @since 0.1.0
 * @category models
 */
export type Event<K, V> =
  | { readonly _tag: "Put"; readonly key: K; readonly value: V; readonly revision: bigint; readonly kv: KeyValue }
  | { readonly _tag: "Delete"; readonly key: K; readonly revision: bigint }

// entries and events print safely: their revisions are bigints
const EntryProto = Printable.Proto("Keyspace.Entry")
const EntriesProto = Printable.Proto("Keyspace.Entries")
const EventProto = Printable.Proto("Keyspace.Event")

/**
 * Options of `getAll`: those of `Kv.range` and what to do with undecodable entries
 * (`"fail"` by default).
 *
 * @since 0.1.0
 * @category models
 */
export interface GetAllOptions extends Omit<Kv.RangeOptions, "keysOnly" | "countOnly"> {
  readonly onDecodeError?: OnDecodeError | undefined
}

/**
 * Options of `watch`: those of `Watch.watch` and what to do with undecodable entries
 * (`"fail"` by default).
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchOptions extends Omit<Watch.WatchOptions, "noPut" | "noDelete" | "watchId"> {
  readonly onDecodeError?: OnDecodeError | undefined
}

/**
 * The comparisons of one target of one typed key; each builds a `Compare` for
 * `Txn.txnCompare`, or fails with `EtcdDecodeError` if the key or operand does not encode.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompareBuilder<A> {
  readonly equals: (operand: A) => Effect.Effect<Compare.Compare, EtcdError.EtcdDecodeError>
  readonly notEquals: (operand: A) => Effect.Effect<Compare.Compare, EtcdError.EtcdDecodeError>
  readonly lessThan: (operand: A) => Effect.Effect<Compare.Compare, EtcdError.EtcdDecodeError>
  readonly greaterThan: (operand: A) => Effect.Effect<Compare.Compare, EtcdError.EtcdDecodeError>
}

/**
 * Marks a `Keyspace`.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-etcd/Keyspace")

/**
 * The type of {@link TypeId}.
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The keys under `prefix`, typed: `K` is the rest of each key after the prefix, `V` its
 * value. Keys should decode to primitives (strings, numbers) so that maps can look them up.
 *
 * @since 0.1.0
 * @category models
 */
export interface Keyspace<K, V> {
  readonly [TypeId]: TypeId
  /** The text every key starts with. */
  readonly prefix: string
  /** Every key of the keyspace, for `Kv`, `Watch` and `Compare` calls. */
  readonly range: KeyRange.KeyRange
  readonly keySchema: Schema.Schema<K, any>
  readonly valueSchema: Schema.Schema<V, any>
  /** Whether values are given to the value Schema as text or as bytes (from its encoded type). */
  readonly valueEncoding: "text" | "bytes"
  /** The full etcd key of a typed key (an `Either`, which is also an Effect). */
  readonly key: (key: K) => Either.Either<string, EtcdError.EtcdDecodeError>
  /** Decodes a stored key-value pair of this keyspace, e.g. from a typed get op's result. */
  readonly decode: (kv: KeyValue) => Either.Either<Entry<K, V>, EtcdError.EtcdDecodeError>
  /** Decodes only the key of a stored pair (a delete event has no value). */
  readonly decodeKey: (kv: KeyValue) => Either.Either<K, EtcdError.EtcdDecodeError>
  /** The value of one key, `Option.none()` when it does not exist. */
  readonly get: (
    key: K,
    options?: Kv.ReadOptions
  ) => Effect.Effect<Option.Option<V>, EtcdError.ReadError | EtcdError.EtcdDecodeError, Etcd>
  /** One key with its value and metadata. */
  readonly getEntry: (
    key: K,
    options?: Kv.ReadOptions
  ) => Effect.Effect<Option.Option<Entry<K, V>>, EtcdError.ReadError | EtcdError.EtcdDecodeError, Etcd>
  /** Every key of the keyspace, read at one revision. */
  readonly getAll: (
    options?: GetAllOptions
  ) => Effect.Effect<Entries<K, V>, EtcdError.ReadError | EtcdError.EtcdDecodeError, Etcd>
  /** Writes a key, encoding its value. */
  readonly put: (
    key: K,
    value: V,
    options?: Kv.PutOptions
  ) => Effect.Effect<Kv.PutResult, EtcdError.PutError | EtcdError.EtcdDecodeError, Etcd>
  /** Deletes one key. */
  readonly delete: (
    key: K,
    options?: Kv.DeleteOptions
  ) => Effect.Effect<Kv.DeleteResult, EtcdError.DeleteError | EtcdError.EtcdDecodeError, Etcd>
  /** The changes of the keyspace, decoded. */
  readonly watch: (
    options?: WatchOptions
  ) => Stream.Stream<Event<K, V>, EtcdError.WatchError | EtcdError.EtcdDecodeError, Etcd>
  /** Typed ops for `Txn.txn` and `Txn.txnCompare`; decode a get's result with `decode`. */
  readonly op: {
    readonly get: (key: K, options?: Kv.RangeOptions) => Effect.Effect<Op.Get, EtcdError.EtcdDecodeError>
    readonly put: (key: K, value: V, options?: Kv.PutOptions) => Effect.Effect<Op.Put, EtcdError.EtcdDecodeError>
    readonly delete: (key: K, options?: Kv.DeleteOptions) => Effect.Effect<Op.Delete, EtcdError.EtcdDecodeError>
  }
  /** Typed compares for `Txn.txnCompare`. */
  readonly compare: {
    readonly value: (key: K) => CompareBuilder<V>
    readonly version: (key: K) => CompareBuilder<bigint | number>
    readonly createRevision: (key: K) => CompareBuilder<bigint | number>
    readonly modRevision: (key: K) => CompareBuilder<bigint | number>
    readonly lease: (key: K) => CompareBuilder<bigint | number>
  }
}

/**
 * Options of `make`: the prefix, a Schema from the rest of each key (text), and a Schema
 * from each value (text, or bytes when its encoded type is `Uint8Array`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<K, KI extends string, V, VI extends string | Uint8Array> {
  readonly prefix: string
  readonly key: Schema.Schema<K, KI>
  readonly value: Schema.Schema<V, VI>
}

const parseFailure = (
  key: string,
  part: "key" | "value",
  direction: "decode" | "encode",
  revision: bigint | undefined,
  error: ParseResult.ParseError
) => new EtcdError.EtcdDecodeError({ key, part, direction, revision, reason: error.message, cause: error })

/**
 * A typed keyspace.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Keyspace } from "effect-etcd"
 *
 * // jobs/<number> => a JSON record; counters/<name> => a number as text; blobs/<name> => bytes
 * const jobs = Keyspace.make({
 *   prefix: "jobs/",
 *   key: Schema.NumberFromString,
 *   value: Schema.parseJson(Schema.Struct({ state: Schema.Literal("queued", "done") }))
 * })
 * const counters = Keyspace.make({ prefix: "counters/", key: Schema.String, value: Schema.NumberFromString })
 * const blobs = Keyspace.make({ prefix: "blobs/", key: Schema.String, value: Schema.Uint8ArrayFromSelf })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <K, KI extends string, V, VI extends string | Uint8Array>(
  options: Options<K, KI, V, VI>
): Keyspace<K, V> => {
  const prefix = options.prefix
  const keySchema = options.key as Schema.Schema<K, any>
  const valueSchema = options.value as Schema.Schema<V, any>
  const valueEncoding = Schema.is(Schema.encodedSchema(valueSchema))(new Uint8Array(0)) ? "bytes" : "text"
  const encodeKeyEither = Schema.encodeEither(keySchema)
  const decodeKeyEither = Schema.decodeUnknownEither(keySchema)
  const encodeValueEither = Schema.encodeEither(valueSchema)
  const decodeValueEither = Schema.decodeUnknownEither(valueSchema)

  const fullKey = (key: K): Either.Either<string, EtcdError.EtcdDecodeError> =>
    Either.match(encodeKeyEither(key), {
      onLeft: (error) => Either.left(parseFailure(`${prefix}${String(key)}`, "key", "encode", undefined, error)),
      onRight: (rest) => Either.right(`${prefix}${rest}`)
    })
  const encodeValue = (key: string, value: V): Either.Either<string | Uint8Array, EtcdError.EtcdDecodeError> =>
    Either.mapLeft(encodeValueEither(value), (error) => parseFailure(key, "value", "encode", undefined, error))

  const decodeKeyOf = (kv: KeyValue): Either.Either<K, EtcdError.EtcdDecodeError> => {
    const text = kv.key
    return Either.mapLeft(
      decodeKeyEither(text.startsWith(prefix) ? text.slice(prefix.length) : text),
      (error) => parseFailure(text, "key", "decode", kv.modRevision, error)
    )
  }
  const decodeEither = (kv: KeyValue): Either.Either<Entry<K, V>, EtcdError.EtcdDecodeError> =>
    Either.flatMap(
      decodeKeyOf(kv),
      (key) =>
        Either.match(decodeValueEither(valueEncoding === "bytes" ? kv.valueBytes : toText(kv.valueBytes)), {
          onLeft: (error) => Either.left(parseFailure(kv.key, "value", "decode", kv.modRevision, error)),
          onRight: (value) => Either.right(Printable.make(EntryProto, { key, value, kv }))
        })
    )

  const keyEffect = (key: K) => Effect.suspend(() => fullKey(key))

  const compareBuilder = <A>(
    target: (key: string) => Compare.Builder<any>,
    operand: (key: string, a: A) => Either.Either<unknown, EtcdError.EtcdDecodeError>
  ) =>
  (key: K): CompareBuilder<A> => {
    const build = (method: keyof Compare.Builder<any>) => (a: A) =>
      Effect.suspend(() =>
        Either.flatMap(fullKey(key), (full) => Either.map(operand(full, a), (encoded) => target(full)[method](encoded)))
      )
    return {
      equals: build("equals"),
      notEquals: build("notEquals"),
      lessThan: build("lessThan"),
      greaterThan: build("greaterThan")
    }
  }
  const plain = (_key: string, a: bigint | number) => Either.right(a)

  const keyspace: Keyspace<K, V> = {
    [TypeId]: TypeId,
    prefix,
    range: KeyRange.prefix(prefix),
    keySchema,
    valueSchema,
    valueEncoding,
    key: fullKey,
    decode: decodeEither,
    decodeKey: decodeKeyOf,
    getEntry: (key, options) =>
      Effect.flatMap(
        keyEffect(key),
        (full) =>
          Effect.flatMap(Kv.getKeyValue(full, options), (kv) =>
            Option.isNone(kv) ? Effect.succeedNone : Effect.asSome(decodeEither(kv.value)))
      ),
    get: (key, options) => Effect.map(keyspace.getEntry(key, options), Option.map((entry) => entry.value)),
    getAll: (options) =>
      Effect.gen(function*() {
        const { onDecodeError, ...rangeOptions } = options ?? {}
        const result = yield* Kv.range(keyspace.range, rangeOptions)
        const values = new Map<K, V>()
        const entries = new Map<K, Entry<K, V>>()
        const skipped: Array<EtcdError.EtcdDecodeError> = []
        for (const kv of result.kvs) {
          const decoded = decodeEither(kv)
          if (Either.isLeft(decoded)) {
            if (onDecodeError !== "skip") return yield* Effect.fail(decoded.left)
            skipped.push(decoded.left)
            continue
          }
          values.set(decoded.right.key, decoded.right.value)
          entries.set(decoded.right.key, decoded.right)
        }
        if (skipped.length > 0) {
          yield* Effect.logWarning("Keyspace.getAll left out entries that do not decode").pipe(
            Effect.annotateLogs({ prefix, skipped: skipped.length, first: skipped[0].message })
          )
        }
        return Printable.make(EntriesProto, { values, entries, revision: result.revision, skipped })
      }),
    put: (key, value, options) =>
      Effect.flatMap(
        keyEffect(key),
        (full) =>
          Effect.flatMap(Effect.suspend(() => encodeValue(full, value)), (bytes) => Kv.put(full, bytes, options))
      ),
    delete: (key, options) => Effect.flatMap(keyEffect(key), (full) => Kv.delete(full, options)),
    watch: (options) => {
      const { onDecodeError, ...watchOptions } = options ?? {}
      return Stream.mapEffect(
        Watch.watch(keyspace.range, watchOptions),
        (event): Effect.Effect<Option.Option<Event<K, V>>, EtcdError.EtcdDecodeError> => {
          const decoded: Either.Either<Event<K, V>, EtcdError.EtcdDecodeError> = event.type === "delete"
            ? Either.map(
              decodeKeyOf(event.kv),
              (key) => Printable.make(EventProto, { _tag: "Delete", key, revision: event.revision })
            )
            : Either.map(
              decodeEither(event.kv),
              (entry) =>
                Printable.make(EventProto, {
                  _tag: "Put",
                  key: entry.key,
                  value: entry.value,
                  revision: event.revision,
                  kv: event.kv
                })
            )
          if (Either.isRight(decoded)) return Effect.succeedSome(decoded.right)
          if (onDecodeError !== "skip") return Effect.fail(decoded.left)
          return Effect.as(
            Effect.logWarning("Keyspace.watch left out an event that does not decode").pipe(
              Effect.annotateLogs({ prefix, error: decoded.left.message })
            ),
            Option.none()
          )
        }
      ).pipe(Stream.filterMap((event) => event))
    },
    op: {
      get: (key, options) => Effect.map(keyEffect(key), (full) => Op.get(full, options)),
      put: (key, value, options) =>
        Effect.flatMap(
          keyEffect(key),
          (full) => Effect.map(Effect.suspend(() => encodeValue(full, value)), (bytes) => Op.put(full, bytes, options))
        ),
      delete: (key, options) => Effect.map(keyEffect(key), (full) => Op.delete(full, options))
    },
    compare: {
      value: compareBuilder(Compare.value, encodeValue),
      version: compareBuilder(Compare.version, plain),
      createRevision: compareBuilder(Compare.createRevision, plain),
      modRevision: compareBuilder(Compare.modRevision, plain),
      lease: compareBuilder(Compare.lease, plain)
    }
  }
  return keyspace
}

/**
 * A keyspace of JSON values checked by `value`, with text keys (the rest after the prefix).
 *
 * @since 0.1.0
 * @category constructors
 */
export const json = <V, I>(prefix: string, value: Schema.Schema<V, I>): Keyspace<string, V> =>
  make({ prefix, key: Schema.String, value: Schema.parseJson(value) })

/**
 * A live local copy of the keyspace (see `Mirror`): lists it at one revision, then
 * follows its changes, decoded. Entries that do not decode fail the mirror, or are left
 * out with `onDecodeError: "skip"`. With `{ metadata: true }`, each value is a
 * `Mirror.Entry` carrying its key's `createRevision`, `modRevision`, `version` and `lease`.
 *
 * @example
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Keyspace } from "effect-etcd"
 *
 * const flags = Keyspace.make({ prefix: "flags/", key: Schema.String, value: Schema.parseJson(Schema.Boolean) })
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const mirror = yield* Keyspace.mirror(flags)
 *   const { revision } = yield* flags.put("dark-mode", true)
 *   yield* mirror.waitFor(revision)          // read-your-writes
 *   return yield* mirror.get("dark-mode")    // Option.some(true), no round trip
 * }))
 * ```
 *
 * @since 0.1.0
 * @category mirrors
 */
export const mirror: {
  <K, V>(
    keyspace: Keyspace<K, V>,
    options: Mirror.PrefixOptions & { readonly metadata: true }
  ): Effect.Effect<Mirror.Mirror<K, Mirror.Entry<V>>, never, Etcd | Scope.Scope>
  <K, V>(
    keyspace: Keyspace<K, V>,
    options?: Mirror.PrefixOptions & { readonly metadata?: false | undefined }
  ): Effect.Effect<Mirror.Mirror<K, V>, never, Etcd | Scope.Scope>
} = <K, V>(
  keyspace: Keyspace<K, V>,
  options?: Mirror.PrefixOptions
): Effect.Effect<Mirror.Mirror<K, any>, never, Etcd | Scope.Scope> => {
  const source: Mirror.Source<K, V> = {
    range: keyspace.range,
    decode: keyspace.decode,
    decodeKey: keyspace.decodeKey,
    equivalence: Schema.equivalence(keyspace.valueSchema)
  }
  return options?.metadata === true ? Mirror.make(Mirror.withMetadata(source), options) : Mirror.make(source, options)
}
