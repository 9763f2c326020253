/**
 * Printing that never throws: the results and handles of the API, and its errors, go through
 * `JSON.stringify`, Effect's loggers (which stringify what they are given), `Inspectable`,
 * `Cause.pretty`, `String` and test diffs. Revisions and lease IDs are bigints, which
 * `JSON.stringify` refuses: here they become decimal strings, at any depth. Effects and
 * functions (the methods of a handle) are left out, the data of a handle stays.
 *
 * Records get this behaviour from a prototype ({@link Proto}, or the class {@link Class}),
 * so making one costs nothing more than the plain object it replaces.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Option from "effect/Option"

/** `value` made safe for `JSON.stringify`: bigints as decimal strings, deep; effects and functions dropped. */
export const jsonSafe = (value: unknown): unknown => safe(value, new Set())

const safe = (value: unknown, seen: Set<object>): unknown => {
  switch (typeof value) {
    case "bigint":
      return value.toString()
    case "function":
    case "symbol":
      return undefined
    case "object": {
      if (value === null) return null
      if (seen.has(value)) return "[Circular]"
      seen.add(value)
      try {
        if (value instanceof Uint8Array) return Array.from(value)
        if (Array.isArray(value)) return value.map((item) => safe(item, seen) ?? null)
        if (value instanceof Map) return Array.from(value, ([k, v]) => [safe(k, seen), safe(v, seen) ?? null])
        if (value instanceof Set) return Array.from(value, (item) => safe(item, seen) ?? null)
        const toJSON = (value as { toJSON?: unknown }).toJSON
        if (typeof toJSON === "function" && toJSON.length === 0) {
          const json: unknown = toJSON.call(value)
          return json === value ? fields(value, seen) : safe(json, seen)
        }
        if (value instanceof Error) {
          return { name: value.name, message: value.message, ...(fields(value, seen) as object) }
        }
        return fields(value, seen)
      } finally {
        seen.delete(value)
      }
    }
    default:
      return value
  }
}

const fields = (value: object, seen: Set<object>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key]
    if (isProgram(field)) continue
    const json = safe(field, seen)
    if (json !== undefined) out[key] = json
  }
  return out
}

/**
 * Whether a field is an effect to run (a handle's `lost`, `resign`): left out. Options,
 * Eithers, Exits and errors are effects too in Effect 3, but they are data: kept.
 */
const isProgram = (value: unknown): boolean =>
  Effect.isEffect(value) && !Option.isOption(value) && !Either.isEither(value) && !Exit.isExit(value) &&
  !(value instanceof Error)

/** The JSON form of a record: `_id` (its kind) first, then its own fields, made safe. */
export const toJSON = (id: string | undefined, record: object): unknown => {
  const json = fields(record, new Set([record]))
  return id === undefined ? json : { _id: id, ...json }
}

/** The methods every printable record shares; `_id` names the kind of record in its JSON. */
export interface Printable {
  toJSON(): unknown
  toString(): string
}

/** A prototype that makes the records made from it print safely (see {@link make}). */
export const Proto = (id?: string): Printable => ({
  toJSON(this: object) {
    return toJSON(id, this)
  },
  toString(this: Printable) {
    return JSON.stringify(this.toJSON())
  },
  [NodeInspectSymbol](this: Printable) {
    return this.toJSON()
  }
} as Printable)

/** A record with the fields given, on `proto`: prints safely, compares equal to the plain object. */
export const make = <A extends object>(proto: Printable, fields: A): A => Object.assign(Object.create(proto), fields)

/**
 * An array of bigints (lease IDs) that prints: a `toJSON` of its own (not enumerable) gives
 * the IDs as decimal strings. Arrays have no prototype of ours to carry it.
 */
export const bigints = (values: Array<bigint>): Array<bigint> =>
  Object.defineProperty(values, "toJSON", {
    value: bigintsToJSON,
    enumerable: false,
    writable: true,
    configurable: true
  })

function bigintsToJSON(this: ReadonlyArray<bigint>): Array<string> {
  return this.map((value) => value.toString())
}

/**
 * A base class for records made on a hot path: its constructor costs what a plain object
 * does, and it prints safely.
 */
export class Class {
  /** @internal */
  toJSON(): unknown {
    return toJSON(undefined, this)
  }
  /** @internal */
  toString(): string {
    return JSON.stringify(this.toJSON())
  }
  /** @internal */
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}
