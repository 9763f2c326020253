/**
 * gRPC's message framing over HTTP/2 (the "Length-Prefixed-Message" of the gRPC protocol):
 * each message is a one-byte compressed flag, its length as a big-endian uint32, then its
 * bytes. Writing is a prefix per message; reading cuts a stream of DATA chunks, which may
 * split a message anywhere or hold several, back into messages. Also the trailer text
 * (`grpc-message` is percent-encoded). No I/O here: the stream of `http2Duplex.ts` uses it.
 */

/** The length of a message's prefix: the compressed flag and the length. */
export const prefixLength = 5

/** `message` with its gRPC prefix (uncompressed), in one buffer. */
export const frame = (message: Uint8Array): Buffer => {
  const framed = Buffer.allocUnsafe(prefixLength + message.length)
  framed[0] = 0
  framed.writeUInt32BE(message.length, 1)
  framed.set(message, prefixLength)
  return framed
}

/** Why a stream of frames cannot be read further. */
export class FrameError extends Error {}

/**
 * Cuts DATA chunks into messages. A message that fits in one chunk is handed on as a view
 * of that chunk (no copy); one split across chunks is gathered first. Messages are handed
 * to `onMessage` in order, while `push` runs; it throws a `FrameError` on a compressed
 * message (none is asked for, so none may come) or one over `maxLength` bytes.
 */
export class FrameReader {
  /** The parts of a message (or of its prefix) split across chunks. */
  private parts: Array<Buffer> = []
  private partsLength = 0

  constructor(
    private readonly onMessage: (message: Buffer) => void,
    private readonly maxLength: number = 64 * 1024 * 1024
  ) {}

  /** Whether part of a message is still waiting for the rest of it. */
  get pending(): boolean {
    return this.partsLength > 0
  }

  push(chunk: Buffer): void {
    let data = chunk
    if (this.partsLength > 0) {
      const needed = this.needed()
      // the prefix is not complete yet, or the message: keep gathering
      if (needed === undefined || this.partsLength + chunk.length < needed) {
        if (needed === undefined && this.partsLength + chunk.length >= prefixLength) {
          // the prefix completes in this chunk: join what is held with the chunk and read on
          data = Buffer.concat([...this.parts, chunk])
          this.parts = []
          this.partsLength = 0
        } else {
          this.hold(chunk)
          return
        }
      } else {
        const head = Buffer.concat([...this.parts, chunk.subarray(0, needed - this.partsLength)])
        data = chunk.subarray(needed - this.partsLength)
        this.parts = []
        this.partsLength = 0
        this.onMessage(head.subarray(prefixLength))
      }
    }
    let position = 0
    while (data.length - position >= prefixLength) {
      const length = this.lengthAt(data, position)
      const end = position + prefixLength + length
      if (end > data.length) break
      this.onMessage(data.subarray(position + prefixLength, end))
      position = end
    }
    if (position < data.length) this.hold(data.subarray(position))
  }

  /** The whole length (prefix included) of the message held, once its prefix is complete. */
  private needed(): number | undefined {
    if (this.partsLength < prefixLength) return undefined
    const head = this.parts.length === 1 || this.parts[0].length >= prefixLength
      ? this.parts[0]
      : Buffer.concat(this.parts)
    return prefixLength + this.lengthAt(head, 0)
  }

  private lengthAt(data: Buffer, position: number): number {
    if (data[position] !== 0) throw new FrameError("the server sent a compressed message, which was not asked for")
    const length = data.readUInt32BE(position + 1)
    if (length > this.maxLength) {
      throw new FrameError(`the server sent a message of ${length} bytes, over the limit of ${this.maxLength}`)
    }
    return length
  }

  private hold(part: Buffer): void {
    // a copy: the chunk's memory may be reused by whoever handed it over
    this.parts.push(Buffer.from(part))
    this.partsLength += part.length
  }
}

/** The text of a `grpc-message` header or trailer: percent-decoded where it can be. */
export const decodeGrpcMessage = (value: string | ReadonlyArray<string> | undefined): string => {
  const text = typeof value === "string" ? value : value === undefined ? "" : value.join(",")
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
