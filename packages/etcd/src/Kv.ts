/**
 * Reading and writing keys: etcetra's `get`, `get_prefix`, `get_range`, `keys_prefix`,
 * `keys_range`, `put`, `delete`, `delete_prefix` and `delete_range`, with every option
 * of etcd's Range, Put and DeleteRange requests.
 *
 * Keys and values are `string` (UTF-8) or `Uint8Array`. The simple calls return text;
 * the `*Bytes` and {@link range} forms return exact bytes and etcd's metadata.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Kv } from "effect-etcd"
 *
 * const program = Effect.gen(function*() {
 *   yield* Kv.put("config/db/host", "10.0.0.5")
 *   yield* Kv.put("config/db/port", "5432")
 *   const host = yield* Kv.get("config/db/host")         // Option.some("10.0.0.5")
 *   const all = yield* Kv.getPrefix("config/db/")         // Map { host => ..., port => ... }
 *   const { revision } = yield* Kv.delete("config/db/port")
 *   return { host: Option.getOrElse(host, () => "?"), all, revision }
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { isUtf8 } from "node:buffer"
import { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import { type Bytes, toBuffer, toInt64 } from "./internal/data/codec.js"
import * as Validate from "./internal/data/validate.js"
import * as KvCodec from "./internal/wire/kvCodec.js"
import * as KeyRange from "./KeyRange.js"
import type { KeyValue } from "./KeyValue.js"

/**
 * Options every read takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadOptions {
  /** Read the store as it was at this revision (it must not be compacted). */
  readonly revision?: bigint | undefined
  /** Serve from the member's local state without a quorum round: faster, possibly stale. */
  readonly serializable?: boolean | undefined
  /** Keep only keys created at or after this revision. */
  readonly minCreateRevision?: bigint | undefined
  /** Keep only keys created at or before this revision. */
  readonly maxCreateRevision?: bigint | undefined
  /** Keep only keys last modified at or after this revision. */
  readonly minModRevision?: bigint | undefined
  /** Keep only keys last modified at or before this revision. */
  readonly maxModRevision?: bigint | undefined
  /** This call's deadline instead of the client's `requestTimeout`. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * The order of a range's results.
 *
 * @since 0.1.0
 * @category models
 */
export type SortOrder = "none" | "ascend" | "descend"

/**
 * What a range's results are sorted by.
 *
 * @since 0.1.0
 * @category models
 */
export type SortTarget = "key" | "version" | "create" | "mod" | "value"

/**
 * Options of range reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface RangeOptions extends ReadOptions {
  /** At most this many keys (0: no limit); `more` tells whether keys were left out. */
  readonly limit?: number | undefined
  readonly sortOrder?: SortOrder | undefined
  readonly sortTarget?: SortTarget | undefined
  /** Return keys and metadata without values. */
  readonly keysOnly?: boolean | undefined
  /** Return only the count of matching keys. */
  readonly countOnly?: boolean | undefined
}

/**
 * A lease as `put` accepts it: its ID, or anything that carries one (a held `Lease`).
 *
 * @since 0.1.0
 * @category models
 */
export type LeaseInput = bigint | { readonly id: bigint }

/**
 * Options of `put`.
 *
 * @since 0.1.0
 * @category models
 */
export interface PutOptions {
  /** Attach the key to this lease: it is deleted when the lease ends. */
  readonly lease?: LeaseInput | undefined
  /** Return the previous key-value pair, if there was one. */
  readonly prevKv?: boolean | undefined
  /** Keep the current value (the key must exist); the value given is not sent. */
  readonly ignoreValue?: boolean | undefined
  /** Keep the current lease (the key must exist). */
  readonly ignoreLease?: boolean | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Options of deletes.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeleteOptions {
  /** Return the deleted key-value pairs. */
  readonly prevKv?: boolean | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * What a range read returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface RangeResult {
  /** The store's revision when the read was served. */
  readonly revision: bigint
  readonly kvs: ReadonlyArray<KeyValue>
  /** Whether `limit` left matching keys out. */
  readonly more: boolean
  /** How many keys matched (all of them, not only those returned). */
  readonly count: number
}

/**
 * What `put` returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface PutResult {
  /** The revision of the write. */
  readonly revision: bigint
  /** The previous key-value pair, when asked for with `prevKv` and there was one. */
  readonly prevKv: Option.Option<KeyValue>
}

/**
 * What a delete returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeleteResult {
  /** The store's revision after the delete. */
  readonly revision: bigint
  /** How many keys were deleted. */
  readonly deleted: number
  /** The deleted pairs, when asked for with `prevKv`. */
  readonly prevKvs: ReadonlyArray<KeyValue>
}

/**
 * A read: the caller's options are checked (and the range refused if it was built from
 * something that is neither text nor bytes) before anything is sent; `extra` options
 * (keys-only, count-only) are added after the check.
 */
const withRange = <A>(
  keys: () => KeyRange.KeyRange,
  option: string,
  options: RangeOptions | undefined,
  f: (result: RangeResult) => Effect.Effect<A, EtcdError.ReadError>,
  extra?: Partial<RangeOptions>
): Effect.Effect<A, EtcdError.ReadError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) => {
    const problem = Validate.problemOf(() => Validate.rangeOptions(options))
    if (problem !== undefined) return Effect.fail(problem)
    const range = keys()
    const request = extra === undefined ? options : { ...options, ...extra }
    const rangeProblem = Validate.keyRangeProblem(option, range)
    if (rangeProblem !== undefined) return Effect.fail(rangeProblem)
    return Effect.flatMap(
      etcd.kv.range(KvCodec.rangeRequest(range, request), request),
      (response) => f(KvCodec.decodeRange(response))
    )
  })

const firstValue = (result: RangeResult): Option.Option<KeyValue> => Option.fromNullable(result.kvs[0])

/**
 * The calls that return a `Map` keyed by text refuse a key that is not valid UTF-8: two
 * such keys could decode to the same text and one of them would silently be lost.
 */
const textKeyOf = (call: string, kv: KeyValue): string | EtcdError.InvalidArgument =>
  isUtf8(kv.keyBytes) ? kv.key : new EtcdError.InvalidArgument({
    option: "keys",
    reason: `Kv.${call} gives keys as text, but the key 0x${
      Buffer.from(kv.keyBytes).toString("hex")
    } is not valid UTF-8; read it with Kv.range, whose KeyValue.keyBytes are exact`
  })

const toMap =
  (call: string) => (result: RangeResult): Effect.Effect<Map<string, string>, EtcdError.InvalidArgument> => {
    const map = new Map<string, string>()
    for (const kv of result.kvs) {
      const key = textKeyOf(call, kv)
      if (typeof key !== "string") return Effect.fail(key)
      map.set(key, kv.value)
    }
    return Effect.succeed(map)
  }

/** Keys as text, one per key (never merged): a key that is not valid UTF-8 has U+FFFD in it. */
const toKeys = (result: RangeResult): Effect.Effect<Array<string>> => Effect.succeed(result.kvs.map((kv) => kv.key))

/**
 * Reads keys: the general form behind every other read, returning etcd's metadata
 * (revisions, version, lease) with exact bytes, the store's revision, `more` and `count`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { KeyRange, Kv } from "effect-etcd"
 *
 * const newest = Effect.gen(function*() {
 *   const { kvs, revision } = yield* Kv.range(KeyRange.prefix("jobs/"), {
 *     sortTarget: "mod",
 *     sortOrder: "descend",
 *     limit: 10
 *   })
 *   return { keys: kvs.map((kv) => kv.key), revision }
 * })
 * ```
 *
 * @since 0.1.0
 * @category reads
 */
export const range = (
  keys: Bytes | KeyRange.KeyRange,
  options?: RangeOptions
): Effect.Effect<RangeResult, EtcdError.ReadError, Etcd> =>
  withRange(() => KeyRange.fromInput(keys), "keys", options, Effect.succeed)

/**
 * The value of one key as text, `Option.none()` when the key does not exist
 * (etcetra's `get`).
 *
 * @since 0.1.0
 * @category reads
 */
export const get = (
  key: Bytes,
  options?: ReadOptions
): Effect.Effect<Option.Option<string>, EtcdError.ReadError, Etcd> =>
  withRange(
    () => KeyRange.key(key),
    "key",
    options,
    (result) => Effect.succeed(Option.map(firstValue(result), (kv) => kv.value))
  )

/**
 * The value of one key as exact bytes.
 *
 * @since 0.1.0
 * @category reads
 */
export const getBytes = (
  key: Bytes,
  options?: ReadOptions
): Effect.Effect<Option.Option<Uint8Array>, EtcdError.ReadError, Etcd> =>
  withRange(
    () => KeyRange.key(key),
    "key",
    options,
    (result) => Effect.succeed(Option.map(firstValue(result), (kv) => kv.valueBytes))
  )

/**
 * One key with its metadata (create and mod revision, version, lease).
 *
 * @since 0.1.0
 * @category reads
 */
export const getKeyValue = (
  key: Bytes,
  options?: ReadOptions
): Effect.Effect<Option.Option<KeyValue>, EtcdError.ReadError, Etcd> =>
  withRange(() => KeyRange.key(key), "key", options, (result) => Effect.succeed(firstValue(result)))

/**
 * Every key under a prefix with its value, as a `Map` in the order etcd returned them
 * (by key unless sorted otherwise); etcetra's `get_prefix`.
 *
 * Keys are text: a key that is not valid UTF-8 fails the call with `InvalidArgument`
 * rather than being decoded lossily (two such keys could collide and one would be lost).
 * {@link range} gives exact bytes. Values that are not valid UTF-8 are decoded with U+FFFD.
 *
 * @since 0.1.0
 * @category reads
 */
export const getPrefix = (
  prefix: Bytes,
  options?: RangeOptions
): Effect.Effect<Map<string, string>, EtcdError.ReadError, Etcd> =>
  withRange(() => KeyRange.prefix(prefix), "prefix", options, toMap("getPrefix"))

/**
 * Every key in `[start, end)` with its value; etcetra's `get_range`. Keys that are not
 * valid UTF-8 fail the call, as in {@link getPrefix}.
 *
 * @since 0.1.0
 * @category reads
 */
export const getRange = (
  start: Bytes,
  end: Bytes,
  options?: RangeOptions
): Effect.Effect<Map<string, string>, EtcdError.ReadError, Etcd> =>
  withRange(() => KeyRange.between(start, end), "start", options, toMap("getRange"))

/**
 * The keys under a prefix, without their values; etcetra's `keys_prefix`. One string per
 * key: a key that is not valid UTF-8 is decoded with U+FFFD (nothing is merged or left
 * out); {@link range} gives exact bytes.
 *
 * @since 0.1.0
 * @category reads
 */
export const keysPrefix = (
  prefix: Bytes,
  options?: RangeOptions
): Effect.Effect<Array<string>, EtcdError.ReadError, Etcd> =>
  withRange(() => KeyRange.prefix(prefix), "prefix", options, toKeys, { keysOnly: true })

/**
 * The keys in `[start, end)`, without their values; etcetra's `keys_range`. Keys that are
 * not valid UTF-8 are decoded with U+FFFD, as in {@link keysPrefix}.
 *
 * @since 0.1.0
 * @category reads
 */
export const keysRange = (
  start: Bytes,
  end: Bytes,
  options?: RangeOptions
): Effect.Effect<Array<string>, EtcdError.ReadError, Etcd> =>
  withRange(() => KeyRange.between(start, end), "start", options, toKeys, { keysOnly: true })

/**
 * How many keys a range holds, without transferring them.
 *
 * @since 0.1.0
 * @category reads
 */
export const count = (
  keys: Bytes | KeyRange.KeyRange,
  options?: ReadOptions
): Effect.Effect<number, EtcdError.ReadError, Etcd> =>
  withRange(() => KeyRange.fromInput(keys), "keys", options, (result) => Effect.succeed(result.count), {
    countOnly: true
  })

/**
 * Every key-value pair of a range as a Stream, read in pages of `pageSize` keys, all at
 * one revision (the first page's, or `revision`), so the whole is one consistent
 * snapshot even while others write. Fails with `Compacted` if that revision is
 * compacted before the last page is read.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { KeyRange, Kv } from "effect-etcd"
 *
 * const total = Kv.stream(KeyRange.prefix("orders/"), { pageSize: 500 }).pipe(
 *   Stream.runFold(0, (sum, kv) => sum + Number(kv.value))
 * )
 * ```
 *
 * @since 0.1.0
 * @category reads
 */
export const stream = (
  keys: Bytes | KeyRange.KeyRange,
  options?: ReadOptions & { readonly pageSize?: number | undefined; readonly keysOnly?: boolean | undefined }
): Stream.Stream<KeyValue, EtcdError.ReadError, Etcd> =>
  Stream.unwrap(Effect.gen(function*() {
    yield* Validate.check(() =>
      Validate.first(
        () => Validate.readOptions(options),
        () => Validate.count("pageSize", options?.pageSize, 1),
        () => Validate.flag("keysOnly", options?.keysOnly)
      )
    )
    const range = yield* KeyRange.validate(KeyRange.fromInput(keys), "keys")
    return pages(range, options)
  }))

const pages = (
  range: KeyRange.KeyRange,
  options: ReadOptions & { readonly pageSize?: number | undefined; readonly keysOnly?: boolean | undefined } | undefined
): Stream.Stream<KeyValue, EtcdError.ReadError, Etcd> => {
  const pageSize = options?.pageSize ?? 1000
  const end = range.end ?? Buffer.concat([toBuffer(range.start), Buffer.from([0])])
  return Stream.paginateChunkEffect(
    { start: range.start, revision: options?.revision },
    (cursor) =>
      withRange(() => KeyRange.between(cursor.start, end), "keys", {
        ...options,
        revision: cursor.revision,
        // no sort asked: etcd returns a range in key order by itself, and a sorted request
        // would make it read the whole rest of the range for every page
        limit: pageSize
      }, (result) => {
        const last = result.kvs[result.kvs.length - 1]
        const next = result.more && last !== undefined
          ? Option.some({
            start: Buffer.concat([toBuffer(last.keyBytes), Buffer.from([0])]),
            revision: cursor.revision ?? result.revision
          })
          : Option.none()
        return Effect.succeed([Chunk.unsafeFromArray(result.kvs as Array<KeyValue>), next] as const)
      })
  )
}

/**
 * Writes a key; etcetra's `put`. Returns the write's revision, and the previous pair
 * when `prevKv` is set.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Kv } from "effect-etcd"
 *
 * const swap = Effect.gen(function*() {
 *   const { prevKv, revision } = yield* Kv.put("leader", "node-2", { prevKv: true })
 *   return { before: prevKv, revision }
 * })
 * ```
 *
 * @since 0.1.0
 * @category writes
 */
export const put = (
  key: Bytes,
  value: Bytes,
  options?: PutOptions
): Effect.Effect<PutResult, EtcdError.PutError, Etcd> =>
  // the arguments are checked when the effect runs, before anything is sent
  Effect.flatMap(Etcd, (etcd) => {
    const problem = Validate.problemOf(() =>
      Validate.first(
        () => Validate.bytes("value", value),
        () => Validate.putOptions(options)
      )
    ) ?? Validate.keyRangeProblem("key", KeyRange.key(key))
    if (problem !== undefined) return Effect.fail(problem)
    return Effect.map(etcd.kv.put(KvCodec.putRequest(key, value, options), options), KvCodec.decodePut)
  })

const deleteKeys = (
  keys: () => KeyRange.KeyRange,
  option: string,
  options: DeleteOptions | undefined
): Effect.Effect<DeleteResult, EtcdError.DeleteError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) => {
    const problem = Validate.problemOf(() => Validate.deleteOptions(options))
    if (problem !== undefined) return Effect.fail(problem)
    const range = keys()
    const rangeProblem = Validate.keyRangeProblem(option, range)
    if (rangeProblem !== undefined) return Effect.fail(rangeProblem)
    return Effect.map(etcd.kv.deleteRange(KvCodec.deleteRequest(range, options), options), KvCodec.decodeDelete)
  })

const deleteOne = (
  key: Bytes | KeyRange.KeyRange,
  options?: DeleteOptions
): Effect.Effect<DeleteResult, EtcdError.DeleteError, Etcd> => deleteKeys(() => KeyRange.fromInput(key), "key", options)

export {
  /**
   * Deletes one key (or any `KeyRange`); etcetra's `delete`. `deleted` says how many
   * keys went, `prevKvs` holds them when `prevKv` is set.
   *
   * @since 0.1.0
   * @category writes
   */
  deleteOne as delete
}

/**
 * Deletes every key under a prefix; etcetra's `delete_prefix`.
 *
 * @since 0.1.0
 * @category writes
 */
export const deletePrefix = (
  prefix: Bytes,
  options?: DeleteOptions
): Effect.Effect<DeleteResult, EtcdError.DeleteError, Etcd> =>
  deleteKeys(() => KeyRange.prefix(prefix), "prefix", options)

/**
 * Deletes every key in `[start, end)`; etcetra's `delete_range`.
 *
 * @since 0.1.0
 * @category writes
 */
export const deleteRange = (
  start: Bytes,
  end: Bytes,
  options?: DeleteOptions
): Effect.Effect<DeleteResult, EtcdError.DeleteError, Etcd> =>
  deleteKeys(() => KeyRange.between(start, end), "start", options)

/**
 * Discards the history before `revision`: reads and watches at older revisions fail
 * with `Compacted` afterwards. With `physical`, waits until the space is reclaimed.
 * `revision` must be 1 or more (`InvalidArgument` otherwise, before anything is sent).
 *
 * @since 0.1.0
 * @category maintenance
 */
export const compact = (
  revision: bigint,
  options?: { readonly physical?: boolean | undefined; readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<bigint, EtcdError.CompactError, Etcd> =>
  Effect.zipRight(
    Validate.check(() =>
      Validate.first(
        () => Validate.int64("revision", revision, 1n),
        () => Validate.timeout(options),
        () => Validate.flag("physical", options?.physical)
      )
    ),
    Effect.flatMap(Etcd, (etcd) =>
      Effect.map(
        etcd.kv.compact({ revision: toInt64(revision), physical: options?.physical ?? false }, options),
        (response) => KvCodec.revisionOf(response.header)
      ))
  )
