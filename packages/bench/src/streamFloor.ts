/**
 * The floor of Effect's own Stream machinery, with no etcd and no client: a one-shot
 * in-memory source per consumer, read through a Stream of the shape `Watch` builds (one
 * channel: take, write, loop). `watchers-10k`'s floor row and `watchersProfile.ts` run the
 * workload's consumer (`Stream.runCount(Stream.take(stream, 1))`, in a fiber of its own) on it.
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** A one-shot in-memory source: `take` waits until `fire`, then gives one element. */
export const makeSource = () => {
  let fired: Chunk.Chunk<number> | undefined
  let wake: ((effect: Effect.Effect<Chunk.Chunk<number>>) => void) | undefined
  const take = Effect.suspend(() =>
    fired !== undefined ? Effect.succeed(fired) : Effect.async<Chunk.Chunk<number>>((resume) => {
      wake = resume
    })
  )
  const fire = () => {
    fired = Chunk.of(1)
    wake?.(Effect.succeed(fired))
  }
  return { take, fire }
}

/** A Stream of the source, one channel deep (the shape `Watch` builds). */
export const streamOf = (take: Effect.Effect<Chunk.Chunk<number>>): Stream.Stream<number> => {
  const loop: Channel.Channel<Chunk.Chunk<number>, unknown, never, unknown, void, unknown> = Channel.flatMap(
    Channel.fromEffect(Effect.map(take, Option.some)),
    (chunk) => Option.isNone(chunk) ? Channel.void : Channel.zipRight(Channel.write(chunk.value), loop)
  )
  return Stream.fromChannel(loop)
}
