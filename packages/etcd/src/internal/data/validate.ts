/**
 * Validation of every numeric and structural input, before anything is sent.
 *
 * Each check returns `undefined` when the input is fine, or an `InvalidArgument` naming
 * the option and the value. `check` runs checks when its effect runs (never when the
 * public function is called), so a bad input from plain JavaScript fails the Effect
 * instead of throwing, and fails that call alone: no shared mechanism (the read batcher,
 * the watch stream, the keepalive stream) ever sees it.
 *
 * Where etcd gives a value a meaning, it is kept: revision 0 is the latest revision,
 * `limit: 0` is no limit, lease 0 is no lease, watch ID 0 lets the client pick one.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as EtcdError from "../../EtcdError.js"

/** A failed check, or `undefined`. */
export type Problem = EtcdError.InvalidArgument | undefined

/** The largest int64, the bound of etcd's revisions, lease IDs, limits and watch IDs. */
export const maxInt64 = 2n ** 63n - 1n

/**
 * The smallest int64. etcd compares any int64 operand of a compare: `version > -1` is the
 * compare that always holds, which etcd3 and others use.
 */
export const minInt64 = -(2n ** 63n)

/** etcd's largest lease TTL in seconds (`MaxLeaseTTL`); a larger one is refused. */
export const maxLeaseTtlSeconds = 9_000_000_000

/** A value as an error message shows it: `-1n`, `NaN`, `"soon"`, `undefined`, `an object`. */
export const show = (value: unknown): string => {
  switch (typeof value) {
    case "bigint":
      return `${value}n`
    case "number":
    case "boolean":
    case "undefined":
      return String(value)
    case "string":
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
    case "symbol":
      return value.toString()
    case "function":
      return "a function"
    default:
      if (value === null) return "null"
      if (value instanceof Uint8Array) return `${value.constructor.name}(${value.byteLength})`
      if (Array.isArray(value)) return `an array of ${value.length}`
      return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`
  }
}

/** The failure for `option`. */
export const invalid = (option: string, value: unknown, expected: string): EtcdError.InvalidArgument =>
  new EtcdError.InvalidArgument({ option, reason: `${option} must be ${expected}, got ${show(value)}` })

/** The first problem found, now (for a call that checks its arguments inside an effect of its own). */
export const problemOf = (checks: () => Problem): Problem => {
  try {
    return checks()
  } catch (error) {
    // a getter that throws, a proxy, ...: still a bad argument, not a defect
    return new EtcdError.InvalidArgument({ reason: `an argument could not be read: ${String(error)}` })
  }
}

/** Fails with the first problem found; the checks run when the effect runs. */
export const check = (checks: () => Problem): Effect.Effect<void, EtcdError.InvalidArgument> =>
  Effect.suspend(() => {
    const problem = problemOf(checks)
    return problem === undefined ? Effect.void : Effect.fail(problem)
  })

/**
 * The first problem of several. (On a hot path, `a ?? b ?? c` does the same without a
 * closure per check: each problem is `undefined` when the input is fine.)
 */
export const first = (...problems: ReadonlyArray<() => Problem>): Problem => {
  for (const problem of problems) {
    const found = problem()
    if (found !== undefined) return found
  }
  return undefined
}

/** An int64 (a bigint, or an integral number) within `[min, max]`. */
export const int64 = (
  option: string,
  value: unknown,
  min: bigint,
  meaning = "",
  max: bigint = maxInt64
): Problem => {
  // the message is built only for a value that fails
  if (
    typeof value === "bigint"
      ? value >= min && value <= max
      : typeof value === "number" && Number.isInteger(value) && inRange(value, min, max)
  ) {
    return undefined
  }
  return invalid(option, value, `an integer from ${min} to ${max}${meaning}`)
}

/**
 * Whether an integral number is within `[min, max]`, exactly: a safe integer compares
 * exactly with a bound rounded to a number (a bound beyond 2^53 stays beyond it).
 */
const inRange = (value: number, min: bigint, max: bigint): boolean =>
  Number.isSafeInteger(value)
    ? value >= Number(min) && value <= Number(max)
    : BigInt(value) >= min && BigInt(value) <= max

/** An optional int64. */
export const optionalInt64 = (option: string, value: unknown, min: bigint, meaning = ""): Problem =>
  value === undefined ? undefined : int64(option, value, min, meaning)

/** A revision: 0 (the latest) or more. */
export const revision = (option: string, value: unknown): Problem =>
  optionalInt64(option, value, 0n, " (0: the latest revision)")

/** The ID of an existing lease. */
export const leaseId = (option: string, value: unknown): Problem => int64(option, value, 1n)

/** A count held in a JavaScript number (a page size, a buffer size, a number of ops). */
export const count = (option: string, value: unknown, min: number): Problem =>
  value === undefined || (typeof value === "number" && Number.isSafeInteger(value) && value >= min)
    ? undefined
    : invalid(option, value, `an integer of at least ${min}`)

/** A boolean flag (a truthy non-boolean is refused: it is a sign of a mix-up). */
export const flag = (option: string, value: unknown): Problem =>
  value === undefined || typeof value === "boolean" ? undefined : invalid(option, value, "true or false")

/**
 * The options a queued recipe takes (`Lock`, `RwLock`, `Election.campaign`): a name that
 * is text, and a positive `timeout` (infinite allowed), `ttl` and `releaseTimeout`.
 */
export const queueOptions = (name: unknown, given: unknown): Problem => {
  const o = given as
    | { readonly ttl?: unknown; readonly timeout?: unknown; readonly releaseTimeout?: unknown }
    | undefined
  return (typeof name === "string" ? undefined : invalid("name", name, "a string")) ??
    options("options", given) ??
    (o?.ttl === undefined ? undefined : ttl("ttl", o.ttl)) ??
    duration("timeout", o?.timeout, true) ??
    duration("releaseTimeout", o?.releaseTimeout)
}

/** One of a few strings. */
export const oneOf = (option: string, value: unknown, allowed: ReadonlyArray<string>): Problem =>
  value === undefined || (typeof value === "string" && allowed.includes(value))
    ? undefined
    : invalid(option, value, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`)

/** Whether a value is a key or value as the client takes them. */
export const isBytes = (value: unknown): value is string | Uint8Array =>
  typeof value === "string" || value instanceof Uint8Array

/** A key, value or prefix: text or bytes. */
export const bytes = (option: string, value: unknown): Problem =>
  isBytes(value) ? undefined : invalid(option, value, "a string or a Uint8Array")

/** An options argument: absent, or an object. */
export const options = (option: string, value: unknown): Problem =>
  value === undefined || (typeof value === "object" && value !== null)
    ? undefined
    : invalid(option, value, "an object of options, or absent")

/** A duration for a deadline or an interval: finite (unless allowed) and above zero. */
export const duration = (option: string, value: unknown, allowInfinite = false): Problem => {
  if (value === undefined) return undefined
  // the usual inputs, a number of milliseconds or a Duration, without decoding
  if (typeof value === "number") {
    return value > 0 && (allowInfinite || value !== Number.POSITIVE_INFINITY)
      ? undefined
      : invalidDuration(option, value, allowInfinite)
  }
  const duration = Duration.isDuration(value) ? value : Duration.decodeUnknown(value).pipe(Option.getOrUndefined)
  // Duration.decode turns negatives into zero: look at raw bigints first
  if (duration === undefined || (typeof value === "bigint" && value <= 0n)) {
    return invalidDuration(option, value, allowInfinite)
  }
  const millis = Duration.toMillis(duration)
  return millis > 0 && (allowInfinite || millis !== Number.POSITIVE_INFINITY)
    ? undefined
    : invalidDuration(option, value, allowInfinite)
}

const invalidDuration = (option: string, value: unknown, allowInfinite: boolean): EtcdError.InvalidArgument =>
  invalid(
    option,
    value,
    allowInfinite
      ? "a positive duration (a number of milliseconds, \"5 seconds\", a Duration, or Duration.infinity)"
      : "a positive, finite duration (a number of milliseconds, \"5 seconds\", a Duration)"
  )

/** The `timeout` of a call. */
export const timeout = (options: unknown, prefix = ""): Problem =>
  options === undefined
    ? undefined
    : optionsAt(prefix, options) ?? duration(`${prefix}timeout`, (options as { timeout?: unknown }).timeout)

const optionsAt = (prefix: string, value: unknown): Problem =>
  value === undefined || (typeof value === "object" && value !== null)
    ? undefined
    : options(prefix === "" ? "options" : prefix.slice(0, -1), value)

/**
 * A lease TTL: a number of seconds, or a duration, above zero and at most etcd's maximum
 * (9,000,000,000 seconds).
 */
export const ttl = (option: string, value: unknown): Problem => {
  const expected = `a positive number of seconds up to ${maxLeaseTtlSeconds}, or a duration such as "10 seconds"`
  if (typeof value === "number") {
    return value > 0 && value <= maxLeaseTtlSeconds ? undefined : invalid(option, value, expected)
  }
  const problem = duration(option, value)
  if (problem !== undefined) return invalid(option, value, expected)
  return Duration.toSeconds(Duration.decode(value as Duration.DurationInput)) <= maxLeaseTtlSeconds
    ? undefined
    : invalid(option, value, expected)
}

/** The lease of a put: 0 (none) or a lease ID, or anything with an `id`. */
export const leaseInput = (option: string, value: unknown): Problem => {
  if (value === undefined) return undefined
  const id = typeof value === "object" && value !== null && "id" in value ? (value as { id: unknown }).id : value
  return int64(option, id, 0n, " (0: no lease)")
}

/** The options every read takes. */
export const readOptions = (options: unknown, prefix = ""): Problem => {
  if (options === undefined) return undefined
  const problem = optionsAt(prefix, options)
  if (problem !== undefined) return problem
  const o = options as Record<string, unknown>
  // each option's name is built only when it is given
  return (o.revision === undefined ? undefined : revision(`${prefix}revision`, o.revision)) ??
    (o.minCreateRevision === undefined ? undefined : revision(`${prefix}minCreateRevision`, o.minCreateRevision)) ??
    (o.maxCreateRevision === undefined ? undefined : revision(`${prefix}maxCreateRevision`, o.maxCreateRevision)) ??
    (o.minModRevision === undefined ? undefined : revision(`${prefix}minModRevision`, o.minModRevision)) ??
    (o.maxModRevision === undefined ? undefined : revision(`${prefix}maxModRevision`, o.maxModRevision)) ??
    (o.serializable === undefined ? undefined : flag(`${prefix}serializable`, o.serializable)) ??
    (o.timeout === undefined ? undefined : duration(`${prefix}timeout`, o.timeout))
}

const sortOrders: ReadonlyArray<string> = ["none", "ascend", "descend"]
const sortTargets: ReadonlyArray<string> = ["key", "version", "create", "mod", "value"]

/** The options of range reads. */
export const rangeOptions = (options: unknown, prefix = ""): Problem => {
  if (options === undefined) return undefined
  const o = options as Record<string, unknown>
  return readOptions(options, prefix) ??
    (o.limit === undefined ? undefined : optionalInt64(`${prefix}limit`, o.limit, 0n, " (0: no limit)")) ??
    (o.sortOrder === undefined ? undefined : oneOf(`${prefix}sortOrder`, o.sortOrder, sortOrders)) ??
    (o.sortTarget === undefined ? undefined : oneOf(`${prefix}sortTarget`, o.sortTarget, sortTargets)) ??
    (o.keysOnly === undefined ? undefined : flag(`${prefix}keysOnly`, o.keysOnly)) ??
    (o.countOnly === undefined ? undefined : flag(`${prefix}countOnly`, o.countOnly))
}

/** The options of a put. */
export const putOptions = (options: unknown, prefix = ""): Problem => {
  if (options === undefined) return undefined
  const problem = optionsAt(prefix, options)
  if (problem !== undefined) return problem
  const o = options as Record<string, unknown>
  return (o.lease === undefined ? undefined : leaseInput(`${prefix}lease`, o.lease)) ??
    (o.prevKv === undefined ? undefined : flag(`${prefix}prevKv`, o.prevKv)) ??
    (o.ignoreValue === undefined ? undefined : flag(`${prefix}ignoreValue`, o.ignoreValue)) ??
    (o.ignoreLease === undefined ? undefined : flag(`${prefix}ignoreLease`, o.ignoreLease)) ??
    (o.timeout === undefined ? undefined : duration(`${prefix}timeout`, o.timeout))
}

/** The options of a delete. */
export const deleteOptions = (options: unknown, prefix = ""): Problem => {
  if (options === undefined) return undefined
  const o = options as Record<string, unknown>
  return timeout(options, prefix) ?? (o.prevKv === undefined ? undefined : flag(`${prefix}prevKv`, o.prevKv))
}

/**
 * What a `KeyRange` constructor keeps in place of bytes when given something else (from
 * untyped JavaScript), so that it never throws and the range is refused when it is used.
 */
export class NotBytes {
  constructor(readonly value: unknown) {}
}

/** The bytes of an input, or a `NotBytes` holding it. */
export const bytesOrMarker = (value: unknown): Uint8Array =>
  isBytes(value)
    ? typeof value === "string" ? Buffer.from(value, "utf8") : value
    : new NotBytes(value) as unknown as Uint8Array

/** A key range, as `KeyRange` builds it (its parts are bytes). */
export const keyRange = (option: string, value: unknown): Problem => {
  if (typeof value !== "object" || value === null || (value as { _tag?: unknown })._tag !== "KeyRange") {
    return bytes(option, value)
  }
  const range = value as { start: unknown; end: unknown }
  if (range.start instanceof NotBytes) return bytes(option, range.start.value)
  if (!(range.start instanceof Uint8Array)) return bytes(option, range.start)
  if (range.end instanceof NotBytes) return bytes("end", range.end.value)
  if (range.end !== undefined && !(range.end instanceof Uint8Array)) return bytes("end", range.end)
  return undefined
}
/** What `KeyRange.validate` fails with, or `undefined` for a range that may be sent: not a range, or an empty key. */
export const keyRangeProblem = (
  option: string,
  range: unknown
): EtcdError.EmptyKey | EtcdError.InvalidArgument | undefined =>
  keyRange(option, range) ??
    ((range as { readonly start: Uint8Array }).start.length === 0 ? new EtcdError.EmptyKey({}) : undefined)
