import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { KeyRange } from "effect-etcd"

const hex = (bytes: Uint8Array | undefined) => bytes === undefined ? undefined : Buffer.from(bytes).toString("hex")

describe("KeyRange", () => {
  it("prefixEnd increments the last byte below 0xff and drops what follows", () => {
    expect(hex(KeyRange.prefixEnd("a"))).toBe("62")
    expect(hex(KeyRange.prefixEnd("config/"))).toBe(Buffer.from("config0").toString("hex"))
    expect(hex(KeyRange.prefixEnd(new Uint8Array([0x61, 0xff])))).toBe("62")
    expect(hex(KeyRange.prefixEnd(new Uint8Array([0x61, 0xfe, 0xff, 0xff])))).toBe("61ff")
  })

  it("prefixEnd of the empty prefix or of only 0xff bytes is the end of the keyspace", () => {
    expect(hex(KeyRange.prefixEnd(""))).toBe("00")
    expect(hex(KeyRange.prefixEnd(new Uint8Array([0xff, 0xff])))).toBe("00")
  })

  it("the empty prefix and all are the whole keyspace", () => {
    expect(hex(KeyRange.prefix("").start)).toBe("00")
    expect(hex(KeyRange.prefix("").end)).toBe("00")
    expect(hex(KeyRange.all.start)).toBe("00")
    expect(hex(KeyRange.all.end)).toBe("00")
  })

  it("key has no end, between and from have theirs", () => {
    expect(KeyRange.key("k").end).toBeUndefined()
    expect(hex(KeyRange.between("a", "c").end)).toBe("63")
    expect(hex(KeyRange.from("m").end)).toBe("00")
    expect(KeyRange.format(KeyRange.prefix("a/"))).toBe("\"a/\" .. \"a0\"")
    expect(KeyRange.format(KeyRange.from("m"))).toBe("\"m\" .. (end)")
  })

  it.effect("validate rejects a single empty key only", () =>
    Effect.gen(function*() {
      expect((yield* Effect.flip(KeyRange.validate(KeyRange.key(""))))._tag).toBe("EmptyKey")
      yield* KeyRange.validate(KeyRange.prefix(""))
      yield* KeyRange.validate(KeyRange.key("x"))
    }))
})
