/**
 * The one-key read behind `EtcdConfig`'s provider: a `Config` whose value comes from one key
 * (`Config.string("host")`, `Config.nested("db")(Config.integer("port"))`, a `Config.map`
 * of one, a `Schema.Config`, a `Config.redacted`...) is read with one lookup and one parse,
 * without `ConfigProvider.fromFlat`'s walk of effects.
 *
 * The result must be the one `fromFlat` gives, value or `ConfigError` alike, so only the
 * shapes whose walk is known step by step go this way: Effect 3's `Primitive`, `Nested`,
 * `Described`, `MapOrFail` and `Redacted` nodes (`effect/src/internal/config.ts`), walked
 * as `fromFlatLoop` walks them (`effect/src/internal/configProvider.ts`) under a provider
 * with no path patch and at the top (no sequence split). A `Config` holding any other node
 * (`Fallback` from `orElse`, `withDefault` and `option`, `ZipWith` from `all`, `Sequence`,
 * `HashMap`, `Lazy`, `Constant`, `Fail`, or a node this module does not know) has no plan:
 * the provider reads it through `fromFlat`.
 */
import type * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"

/**
 * The value at a path as the flat provider's `load` gives it without a split: the primitive's
 * parse of the key's text, or the error the flat load fails with.
 */
export type LoadOne = <A>(
  path: ReadonlyArray<string>,
  primitive: Config.Config.Primitive<A>
) => Either.Either<A, ConfigError.ConfigError>

/** The fields of Effect 3's `Config` nodes read here, by their `_tag`. */
type Node =
  | { readonly _tag: "Primitive" } & Config.Config.Primitive<unknown>
  | { readonly _tag: "Nested"; readonly name: string; readonly config: Config.Config<unknown> }
  | { readonly _tag: "Described"; readonly config: Config.Config<unknown> }
  | {
    readonly _tag: "MapOrFail"
    readonly original: Config.Config<unknown>
    mapOrFail(value: unknown): Either.Either<unknown, ConfigError.ConfigError>
  }
  | { readonly _tag: "Redacted"; readonly original: Config.Config<unknown>; redact(value: unknown): unknown }
  | { readonly _tag: "other" }

const nodeOf = (config: Config.Config<unknown>): Node => config as unknown as Node

/** A `MapOrFail` node, with the path its errors are prefixed with. */
interface MapStep {
  readonly _tag: "MapOrFail"
  readonly node: Extract<Node, { readonly _tag: "MapOrFail" }>
  readonly errorPath: Array<string>
}

/** A `Redacted` node. */
interface RedactStep {
  readonly _tag: "Redacted"
  readonly node: Extract<Node, { readonly _tag: "Redacted" }>
}

/**
 * How a one-key `Config` reads: the path of its key, its primitive, and the steps from the
 * parsed value to the `Config`'s value, outermost first.
 */
export interface Plan<A> {
  readonly path: ReadonlyArray<string>
  readonly primitive: Config.Config.Primitive<unknown>
  readonly steps: ReadonlyArray<MapStep | RedactStep>
  /** Phantom: the type of the value. */
  readonly _A?: (_: never) => A
}

/**
 * The path `fromFlatLoop` prefixes a `MapOrFail`'s errors with (its `appendConfigPath`): the
 * path so far, then the names of the `Nested` nodes directly under the map, and no further.
 */
const errorPathOf = (path: ReadonlyArray<string>, original: Config.Config<unknown>): Array<string> => {
  const out = path.slice()
  let node = nodeOf(original)
  while (node._tag === "Nested") {
    out.push(node.name)
    node = nodeOf(node.config)
  }
  return out
}

/** The plan of a `Config`, walked from the top, or `undefined` when it is not one key. */
const walk = <A>(config: Config.Config<A>): Plan<A> | undefined => {
  const path: Array<string> = []
  const steps: Array<MapStep | RedactStep> = []
  let node = nodeOf(config)
  for (;;) {
    switch (node._tag) {
      case "Primitive":
        return { path, primitive: node, steps }
      case "Nested":
        path.push(node.name)
        node = nodeOf(node.config)
        break
      case "Described":
        node = nodeOf(node.config)
        break
      case "MapOrFail":
        steps.push({ _tag: "MapOrFail", node, errorPath: errorPathOf(path, node.original) })
        node = nodeOf(node.original)
        break
      case "Redacted":
        steps.push({ _tag: "Redacted", node })
        node = nodeOf(node.original)
        break
      default:
        return undefined
    }
  }
}

/** The plans of the `Config`s seen so far (a `Config` is immutable); `null` for "not one key". */
const plans = new WeakMap<object, Plan<unknown> | null>()

/**
 * The plan of a `Config` that reads one key, or `undefined` for any other shape (which the
 * caller reads through `ConfigProvider.fromFlat`). Computed once per `Config` value.
 */
export const planOf = <A>(config: Config.Config<A>): Plan<A> | undefined => {
  const known = plans.get(config)
  if (known !== undefined) return known === null ? undefined : known as Plan<A>
  const plan = walk(config)
  plans.set(config, plan ?? null)
  return plan
}

/** `fromFlat`'s message for any error under a `Config.redacted`: the paths stay, the text goes. */
const redactedReducer: ConfigError.ConfigErrorReducer<unknown, ConfigError.ConfigError> = {
  andCase: (_, left, right) => ConfigError.And(left, right),
  orCase: (_, left, right) => ConfigError.Or(left, right),
  invalidDataCase: (_, path) => ConfigError.InvalidData([...path], "<redacted>"),
  missingDataCase: (_, path) => ConfigError.MissingData([...path], "<redacted>"),
  sourceUnavailableCase: (_, path, _message, cause) => ConfigError.SourceUnavailable([...path], "<redacted>", cause),
  unsupportedCase: (_, path) => ConfigError.Unsupported([...path], "<redacted>")
}

/** One step, as `fromFlatLoop` applies it to the one value below it. */
const applyStep = (
  step: MapStep | RedactStep,
  below: Either.Either<unknown, ConfigError.ConfigError>
): Either.Either<unknown, ConfigError.ConfigError> => {
  if (step._tag === "Redacted") {
    return Either.isLeft(below)
      ? Either.left(ConfigError.reduceWithContext(below.left, undefined, redactedReducer))
      : Either.right(step.node.redact(below.right))
  }
  if (Either.isLeft(below)) return below
  const mapped = step.node.mapOrFail(below.right)
  return Either.isLeft(mapped) ? Either.left(ConfigError.prefixed(mapped.left, step.errorPath)) : mapped
}

/**
 * The value of a one-key `Config`, or its `ConfigError`, as `fromFlat` gives them: the key
 * loaded and parsed (`load`), then each step from the innermost out. A parse or map that
 * throws throws here: called inside an effect, that is the defect `fromFlat` dies with.
 */
export const run = <A>(plan: Plan<A>, load: LoadOne): Either.Either<A, ConfigError.ConfigError> => {
  let result = load(plan.path, plan.primitive)
  for (let i = plan.steps.length - 1; i >= 0; i--) result = applyStep(plan.steps[i], result)
  return result as Either.Either<A, ConfigError.ConfigError>
}
