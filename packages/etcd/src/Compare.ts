/**
 * Conditions of a transaction: compare a key's value, version, create revision, mod
 * revision or lease with `=`, `!=`, `<` or `>` (etcetra's `CompareKey`). A compare on a
 * `KeyRange` holds when it holds for every key of the range.
 *
 * @example
 * ```ts
 * import { Compare, KeyRange } from "effect-etcd"
 *
 * Compare.value("config/mode").equals("primary")
 * Compare.version("jobs/42").equals(0)               // the key does not exist
 * Compare.modRevision("leader").lessThan(1234n)
 * Compare.createRevision(KeyRange.prefix("locks/")).greaterThan(0n)
 * Compare.lease("session").notEquals(0n)
 * ```
 *
 * @since 0.1.0
 */
import * as Printable from "./internal/base/printable.js"
import type { Bytes } from "./internal/data/codec.js"
import * as KeyRange from "./KeyRange.js"

/**
 * What a compare looks at.
 *
 * @since 0.1.0
 * @category models
 */
export type Target = "value" | "version" | "createRevision" | "modRevision" | "lease"

/**
 * How it compares.
 *
 * @since 0.1.0
 * @category models
 */
export type Operator = "=" | "!=" | "<" | ">"

/**
 * One condition of a transaction.
 *
 * @since 0.1.0
 * @category models
 */
export interface Compare {
  readonly _tag: "Compare"
  readonly keys: KeyRange.KeyRange
  readonly target: Target
  readonly operator: Operator
  readonly operand: Bytes | bigint | number
}

/**
 * The comparisons available on one target; `A` is the operand's type.
 *
 * @since 0.1.0
 * @category models
 */
export interface Builder<A> {
  readonly equals: (operand: A) => Compare
  readonly notEquals: (operand: A) => Compare
  readonly lessThan: (operand: A) => Compare
  readonly greaterThan: (operand: A) => Compare
}

/** A compare prints safely: its operand may be a bigint. */
const CompareProto = Printable.Proto()

const builder =
  <A extends Bytes | bigint | number>(target: Target) => (keys: Bytes | KeyRange.KeyRange): Builder<A> => {
    const range = KeyRange.fromInput(keys)
    const make = (operator: Operator) => (operand: A): Compare =>
      Printable.make(CompareProto, {
        _tag: "Compare",
        keys: range,
        target,
        operator,
        operand
      })
    return { equals: make("="), notEquals: make("!="), lessThan: make("<"), greaterThan: make(">") }
  }

/**
 * Compares the value (byte-wise, as etcd does).
 *
 * @since 0.1.0
 * @category constructors
 */
export const value: (keys: Bytes | KeyRange.KeyRange) => Builder<Bytes> = builder("value")

/**
 * Compares the version: how many times the key was written since its creation; 0 means
 * the key does not exist.
 *
 * @since 0.1.0
 * @category constructors
 */
export const version: (keys: Bytes | KeyRange.KeyRange) => Builder<bigint | number> = builder("version")

/**
 * Compares the revision of the key's creation; 0 means the key does not exist.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createRevision: (keys: Bytes | KeyRange.KeyRange) => Builder<bigint | number> = builder(
  "createRevision"
)

/**
 * Compares the revision of the key's last change.
 *
 * @since 0.1.0
 * @category constructors
 */
export const modRevision: (keys: Bytes | KeyRange.KeyRange) => Builder<bigint | number> = builder("modRevision")

/**
 * Compares the ID of the lease the key is attached to (0 for none).
 *
 * @since 0.1.0
 * @category constructors
 */
export const lease: (keys: Bytes | KeyRange.KeyRange) => Builder<bigint | number> = builder("lease")
