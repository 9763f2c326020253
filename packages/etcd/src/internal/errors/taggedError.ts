/**
 * The base of every effect-etcd error: `Data.TaggedError` with a JSON form that never throws.
 * May import Effect and the printing helpers; nothing of the public modules but types.
 */
import * as Data from "effect/Data"
import * as Printable from "../base/printable.js"

/**
 * `Data.TaggedError` whose JSON (what `JSON.stringify`, Effect's loggers, `Inspectable` and
 * `Exit`/`Cause` printing use) never throws: `_tag` and `message` first, then every field,
 * bigints (revisions, lease IDs) as decimal strings. Effect's own `toJSON` spreads the
 * fields as they are, and `JSON.stringify` refuses a bigint.
 */
export const TaggedError = <Tag extends string>(tag: Tag): ReturnType<typeof Data.TaggedError<Tag>> => {
  const Base = Data.TaggedError(tag)
  Object.defineProperty(Base.prototype, "toJSON", {
    value(this: Error & { readonly _tag: Tag }) {
      const json = { _tag: this._tag, message: this.message, ...(Printable.toJSON(undefined, this) as object) }
      // a cause given to the constructor is an own property JSON does not list
      return this.cause === undefined ? json : { ...json, cause: Printable.jsonSafe(this.cause) }
    },
    writable: true,
    configurable: true
  })
  return Base
}
