/**
 * Which keys a call addresses: one key, every key under a prefix, a half-open range
 * `[start, end)`, every key from one on, or the whole keyspace.
 *
 * Range ends are computed on bytes, so a prefix ending in `0xff` and the empty prefix
 * (the whole keyspace) are right.
 *
 * @example
 * ```ts
 * import { KeyRange } from "effect-etcd"
 *
 * KeyRange.key("config/db")          // exactly one key
 * KeyRange.prefix("config/")         // every key starting with "config/"
 * KeyRange.between("a", "c")         // "a" <= key < "c"
 * KeyRange.from("m")                 // "m" <= key
 * KeyRange.all                       // every key
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as EtcdError from "./EtcdError.js"
import { type Bytes, toBuffer, toText } from "./internal/data/codec.js"
import * as Validate from "./internal/data/validate.js"

/**
 * A set of keys. `end` is absent for a single key; a zero byte as `end` means "no
 * upper bound", as in etcd's protocol.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyRange {
  readonly _tag: "KeyRange"
  readonly start: Uint8Array
  readonly end: Uint8Array | undefined
}

export type {
  /**
   * Keys and values are UTF-8 text or raw bytes.
   *
   * @since 0.1.0
   * @category models
   */
  Bytes
}

const zero = new Uint8Array([0])

const make = (start: Uint8Array, end: Uint8Array | undefined): KeyRange => ({ _tag: "KeyRange", start, end })

/**
 * The bytes of a key. Something else (from untyped JavaScript) is kept as it is, so that
 * the constructors never throw and {@link validate} refuses the range when it is used.
 */
const bytesOf = (input: Bytes): Uint8Array => Validate.isBytes(input) ? toBuffer(input) : Validate.bytesOrMarker(input)

/**
 * Whether a value is a `KeyRange`.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isKeyRange = (u: unknown): u is KeyRange =>
  typeof u === "object" && u !== null && (u as KeyRange)._tag === "KeyRange"

/**
 * Exactly one key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const key = (key: Bytes): KeyRange => make(bytesOf(key), undefined)

/**
 * The first key after every key that starts with `prefix`: the prefix with its last
 * byte below `0xff` incremented and what follows dropped; a zero byte (no upper bound)
 * when there is no such byte (the empty prefix, or only `0xff` bytes).
 *
 * @since 0.1.0
 * @category utils
 */
export const prefixEnd = (prefix: Bytes): Uint8Array => {
  if (!Validate.isBytes(prefix)) return zero
  const bytes = toBuffer(prefix)
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = Buffer.alloc(i + 1)
      bytes.copy(end, 0, 0, i + 1)
      end[i] = bytes[i] + 1
      return end
    }
  }
  return zero
}

/**
 * Every key that starts with `prefix`; the empty prefix is the whole keyspace.
 *
 * @since 0.1.0
 * @category constructors
 */
export const prefix = (prefix: Bytes): KeyRange => {
  if (!Validate.isBytes(prefix)) return make(bytesOf(prefix), zero)
  const start = toBuffer(prefix)
  return make(start.length === 0 ? zero : start, prefixEnd(start))
}

/**
 * Every key `k` with `start <= k < end`. An empty `start` means the first key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const between = (start: Bytes, end: Bytes): KeyRange => {
  const from = bytesOf(start)
  return make(from.length === 0 ? zero : from, bytesOf(end))
}

/**
 * Every key greater than or equal to `start`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const from = (start: Bytes): KeyRange => {
  const bytes = bytesOf(start)
  return make(bytes.length === 0 ? zero : bytes, zero)
}

/**
 * Every key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const all: KeyRange = make(zero, zero)

/**
 * A single key, or a range passed through.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromInput = (input: Bytes | KeyRange): KeyRange => isKeyRange(input) ? input : key(input)

/**
 * Fails with `EmptyKey` for a single empty key (etcd has no such key), and with
 * `InvalidArgument` for a range built from something that is neither text nor bytes
 * (possible from untyped JavaScript).
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (
  range: KeyRange,
  option = "key"
): Effect.Effect<KeyRange, EtcdError.EmptyKey | EtcdError.InvalidArgument> =>
  Effect.suspend((): Effect.Effect<KeyRange, EtcdError.EmptyKey | EtcdError.InvalidArgument> => {
    const problem = Validate.keyRangeProblem(option, range)
    return problem === undefined ? Effect.succeed(range) : Effect.fail(problem)
  })

/**
 * A readable form for logs and errors, e.g. `"config/" .. "config0"`.
 *
 * @since 0.1.0
 * @category utils
 */
export const format = (range: KeyRange): string =>
  Validate.keyRange("key", range) !== undefined
    ? "(not a key range)"
    : range.end === undefined
    ? JSON.stringify(toText(range.start))
    : `${JSON.stringify(toText(range.start))} .. ${
      range.end.length === 1 && range.end[0] === 0 ? "(end)" : JSON.stringify(toText(range.end))
    }`
