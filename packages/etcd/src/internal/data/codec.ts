/** Conversions between the public data types and the wire's representation. */

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8")

/** Keys and values as callers give them: UTF-8 text or raw bytes. */
export type Bytes = string | Uint8Array

/** The bytes of a key or value, without copying when they are bytes already. */
export const toBuffer = (value: Bytes): Buffer =>
  typeof value === "string"
    ? Buffer.from(value, "utf8")
    : Buffer.isBuffer(value)
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength)

/** UTF-8 text of bytes (invalid sequences become U+FFFD: ask for bytes to keep them). */
export const toText = (bytes: Uint8Array): string =>
  Buffer.isBuffer(bytes) ? bytes.toString("utf8") : decoder.decode(bytes)

/** Encodes text to bytes. */
export const textBytes = (text: string): Uint8Array => encoder.encode(text)

/** An int64 for the wire: decimal text keeps every bit (protobufjs accepts it). */
export const toInt64 = (value: bigint | number): string =>
  typeof value === "bigint" ? value.toString() : Math.trunc(value).toString()

/** The varint bytes of an int64 (a negative one as its 64-bit two's complement, ten bytes). */
export const int64Varint = (value: bigint): Array<number> => {
  const bytes: Array<number> = []
  let rest = BigInt.asUintN(64, value)
  do {
    const low = Number(rest & 0x7fn)
    rest >>= 7n
    bytes.push(rest > 0n ? low | 0x80 : low)
  } while (rest > 0n)
  return bytes
}

/** An int64 from the wire (`longs: String`), exactly. */
export const fromInt64 = (value: string | number | null | undefined): bigint =>
  value === undefined || value === null || value === "" ? 0n : BigInt(value)

/** An int64 that counts things (keys, versions, seconds): a number is exact far past any real count. */
export const fromCount = (value: string | number | null | undefined): number =>
  value === undefined || value === null || value === "" ? 0 : Number(value)
