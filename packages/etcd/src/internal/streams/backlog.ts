/**
 * What waits for one consumer: items counted in bytes, taken a slice of bytes at a time,
 * then an end (a failure, or none). The producer never waits; bounding the bytes is the
 * producer's business (the watch hub suspends a watcher whose backlog is past its bound).
 * An item larger than a slice can be split, for a consumer that takes parts, so that it
 * is handed about a slice at a time however large the items.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/** An item and the bytes it counts for. */
export interface Sized {
  readonly bytes: number
}

/** Splits an item into a first part of at most `maxBytes` (or the smallest it can) and the rest; `undefined` when it cannot be split. */
export type Split<A> = (item: A, maxBytes: number) => readonly [A, A] | undefined

export class Backlog<A extends Sized, E> {
  constructor(readonly split: Split<A> = () => undefined) {}

  #items: Array<A> = []
  #head = 0
  #bytes = 0
  #ended = false
  #error: Option.Option<E> = Option.none()
  #wake: (() => void) | undefined = undefined

  /** The bytes of the items not taken yet. */
  get bytes(): number {
    return this.#bytes
  }

  /** Adds an item, unless the backlog has ended. */
  offer(item: A): void {
    if (this.#ended) return
    this.#items.push(item)
    this.#bytes += item.bytes
    this.#notify()
  }

  /** Ends the backlog: the consumer gets what is left, then `error` (or the end). */
  end(error: Option.Option<E>): void {
    if (this.#ended) return
    this.#ended = true
    this.#error = error
    this.#notify()
  }

  /** Ends the backlog and drops what is left: the consumer is gone. */
  shutdown(): void {
    this.#items = []
    this.#head = 0
    this.#bytes = 0
    this.end(Option.none())
  }

  /**
   * Takes the oldest items, up to `maxBytes` of them but at least one (with `parts`, the
   * first part of the oldest when it is larger and can be split), waiting for one
   * when none is there; fails with `None` at the end, or `Some` with the error it ended with.
   * `onTaken` runs after each take, in the same step.
   *
   * A take waits with no canceler: a consumer waits on its backlog for most of its life,
   * and one to run on interruption would cost every wait a few more steps and objects. An
   * interrupted take's wake-up stays until the next item, the next take (which replaces
   * it) or the end, and then resumes nothing (a fiber ignores a resume once interrupted).
   */
  take(maxBytes: number, parts = false, onTaken?: () => void): Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> {
    const take: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> = Effect.suspend(() => {
      if (this.#head < this.#items.length) {
        const taken = this.#takeUpTo(maxBytes, parts)
        if (onTaken !== undefined) onTaken()
        return Effect.succeed(taken)
      }
      if (this.#ended) return Effect.fail(this.#error)
      return Effect.async<Chunk.Chunk<A>, Option.Option<E>>((resume) => {
        this.#wake = () => resume(take)
      })
    })
    return take
  }

  #takeUpTo(maxBytes: number, parts: boolean): Chunk.Chunk<A> {
    const items = this.#items
    const head = items[this.#head]
    if (parts && head.bytes > maxBytes) {
      const parts = this.split(head, maxBytes)
      if (parts !== undefined) {
        items[this.#head] = parts[1]
        this.#bytes -= parts[0].bytes
        return Chunk.of(parts[0])
      }
    }
    let end = this.#head + 1
    let bytes = items[this.#head].bytes
    while (end < items.length && bytes + items[end].bytes <= maxBytes) bytes += items[end++].bytes
    const taken = items.slice(this.#head, end)
    this.#bytes -= bytes
    if (end === items.length) {
      this.#items = []
      this.#head = 0
    } else if (end > 1024 && end * 2 > items.length) {
      // drop the taken front now and then, so the array does not only grow
      this.#items = items.slice(end)
      this.#head = 0
    } else this.#head = end
    return Chunk.unsafeFromArray(taken)
  }

  #notify(): void {
    const wake = this.#wake
    if (wake === undefined) return
    this.#wake = undefined
    wake()
  }
}
