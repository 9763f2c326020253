/**
 * A key-value pair as etcd stores it, with its revisions.
 *
 * @since 0.1.0
 */
import { NodeInspectSymbol } from "effect/Inspectable"
import { toText } from "./internal/data/codec.js"

/**
 * A stored key and value with etcd's metadata. `key` and `value` decode UTF-8 on access;
 * `keyBytes` and `valueBytes` are exact.
 *
 * @since 0.1.0
 * @category models
 */
export class KeyValue {
  constructor(
    /** The key's bytes. */
    readonly keyBytes: Uint8Array,
    /** The value's bytes (empty when the read was keys-only). */
    readonly valueBytes: Uint8Array,
    /** The revision of the last creation of this key. */
    readonly createRevision: bigint,
    /** The revision of the last change of this key. */
    readonly modRevision: bigint,
    /** How many times the key was written since its creation (1 after the creation). */
    readonly version: number,
    /** The lease the key is attached to, 0n when none. */
    readonly lease: bigint
  ) {}

  /** The key as UTF-8 text. */
  get key(): string {
    return toText(this.keyBytes)
  }

  /** The value as UTF-8 text. */
  get value(): string {
    return toText(this.valueBytes)
  }

  /** @internal */
  toJSON(): unknown {
    return {
      _id: "KeyValue",
      key: this.key,
      value: this.value,
      createRevision: this.createRevision.toString(),
      modRevision: this.modRevision.toString(),
      version: this.version,
      lease: this.lease.toString()
    }
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
