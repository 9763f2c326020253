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
 * A message over the receive limit: the call fails with RESOURCE_EXHAUSTED, in grpc-js's
 * words (`Received message larger than max (size vs limit)`), which `grpcError.fromGrpc`
 * maps to `ResponseTooLarge`.
 */
export class FrameTooLarge extends FrameError {
  constructor(readonly size: number, readonly limit: number) {
    super(`Received message larger than max (${size} vs ${limit})`)
  }
}

/**
 * The largest answer a client receives unless told otherwise: about Go clientv3's 2 GiB
 * (`math.MaxInt32`), the largest length a gRPC prefix can say that is still below Node's
 * largest Buffer everywhere.
 */
export const defaultMaxReceiveBytes = 2 ** 31 - 1

/** The first buffer a message split across chunks gets: it doubles as the bytes come. */
const initialGather = 64 * 1024

/**
 * Cuts DATA chunks into messages. A message that fits in one chunk is handed on as a view
 * of that chunk (no copy; `owned` false: valid only during the call, as the chunk's memory
 * may be reused); one split across chunks is copied, as it comes, into a buffer of its own
 * (`owned` true: the receiver may keep it). That buffer follows the bytes received, not
 * the length the prefix announces: it starts small and doubles as needed up to that
 * length, so that a prefix announcing 2 GiB followed by a few bytes holds a few bytes.
 * Messages are handed to `onMessage` in order, while `push` runs; it throws a `FrameError`
 * on a compressed message (none is asked for, so none may come) and a `FrameTooLarge` on
 * one over `maxLength` bytes.
 */
export class FrameReader {
  /** A prefix split across chunks, and how much of it came. */
  private readonly prefix = Buffer.alloc(prefixLength)
  private prefixFilled = 0
  /** A message split across chunks: its buffer so far, how much of it came, and its length. */
  private body: Buffer | undefined = undefined
  private bodyFilled = 0
  private bodyLength = 0

  constructor(
    private readonly onMessage: (message: Buffer, owned: boolean) => void,
    private readonly maxLength: number = defaultMaxReceiveBytes
  ) {}

  /** Whether part of a message is still waiting for the rest of it. */
  get pending(): boolean {
    return this.prefixFilled > 0 || this.body !== undefined
  }

  /** The bytes held for a message still coming (what it costs in memory now). */
  get reserved(): number {
    return this.body === undefined ? 0 : this.body.length
  }

  push(chunk: Buffer): void {
    let position = 0
    while (position < chunk.length) {
      let body = this.body
      if (body !== undefined) {
        const taken = Math.min(this.bodyLength - this.bodyFilled, chunk.length - position)
        if (this.bodyFilled + taken > body.length) body = this.grow(body, this.bodyFilled + taken)
        chunk.copy(body, this.bodyFilled, position, position + taken)
        this.bodyFilled += taken
        position += taken
        if (this.bodyFilled < this.bodyLength) return
        this.body = undefined
        this.onMessage(body, true)
      } else if (this.prefixFilled > 0 || chunk.length - position < prefixLength) {
        const taken = Math.min(prefixLength - this.prefixFilled, chunk.length - position)
        chunk.copy(this.prefix, this.prefixFilled, position, position + taken)
        this.prefixFilled += taken
        position += taken
        if (this.prefixFilled < prefixLength) return
        this.prefixFilled = 0
        this.gather(this.lengthAt(this.prefix, 0), chunk.length - position)
      } else {
        const length = this.lengthAt(chunk, position)
        const end = position + prefixLength + length
        if (end <= chunk.length) {
          this.onMessage(chunk.subarray(position + prefixLength, end), false)
          position = end
        } else {
          position += prefixLength
          this.gather(length, chunk.length - position)
        }
      }
    }
  }

  /**
   * Starts gathering a message of `length` bytes (an empty one is whole at once), in a
   * buffer for what has come so far (`available` bytes of this chunk), not for `length`.
   */
  private gather(length: number, available: number): void {
    if (length === 0) return this.onMessage(Buffer.alloc(0), true)
    this.body = Buffer.allocUnsafe(Math.min(length, Math.max(initialGather, available)))
    this.bodyFilled = 0
    this.bodyLength = length
  }

  /** A larger buffer for the message, holding what came of it: at least twice as large, at most its length. */
  private grow(body: Buffer, needed: number): Buffer {
    const grown = Buffer.allocUnsafe(Math.min(this.bodyLength, Math.max(needed, body.length * 2)))
    body.copy(grown, 0, 0, this.bodyFilled)
    this.body = grown
    return grown
  }

  private lengthAt(data: Buffer, position: number): number {
    if (data[position] !== 0) throw new FrameError("the server sent a compressed message, which was not asked for")
    const length = data.readUInt32BE(position + 1)
    if (length > this.maxLength) throw new FrameTooLarge(length, this.maxLength)
    return length
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
