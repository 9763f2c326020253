/**
 * Watches through `etcd grpc-proxy start`, which numbers each stream's watchers itself (from
 * 0, whatever ID the client asked for) and answers a create that joins a range it already
 * watches at once, before an earlier create that waits for its member: the client must
 * cancel by the IDs the proxy answered with, and match each answer to its create without
 * trusting either the IDs or the order.
 */
import { expect, layer } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Scope, Stream } from "effect"
import { Kv, Watch } from "effect-etcd"
import { withProxy } from "./proxies.js"
import { uniquePrefix } from "./support.js"

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), Chunk.toReadonlyArray)

/** The first `n` values a watcher sees; bounded, so that a deaf watcher fails the test instead of hanging it. */
const values = (watcher: Watch.Watcher, n: number) =>
  collect(watcher.events, n).pipe(
    Effect.map((events) => events.map((event) => [event.key, event.value])),
    Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => "the watcher heard nothing" })
  )

layer(withProxy("grpc-proxy"), { excludeTestServices: true })("Watch through grpc-proxy", (it) => {
  it.scoped("releasing a watcher cancels that one: the others on the stream still hear their keys", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("proxy-release")
      const firstScope = yield* Scope.make()
      const first = yield* Watch.subscribe(`${p}a`).pipe(Scope.extend(firstScope))
      const second = yield* Watch.subscribe(`${p}b`)
      yield* Kv.put(`${p}a`, "1")
      expect(yield* values(first, 1)).toEqual([[`${p}a`, "1"]])
      yield* Scope.close(firstScope, Exit.void)
      yield* Kv.put(`${p}b`, "2")
      expect(yield* values(second, 1)).toEqual([[`${p}b`, "2"]])
      // a watcher created after the release is matched to its own answer
      const third = yield* Watch.subscribe(`${p}c`)
      yield* Kv.put(`${p}c`, "3")
      yield* Kv.put(`${p}b`, "4")
      expect(yield* values(third, 1)).toEqual([[`${p}c`, "3"]])
      expect(yield* values(second, 1)).toEqual([[`${p}b`, "4"]])
    }))

  it.scoped("creates answered out of order are still matched each to its own watcher", () =>
    Effect.gen(function*() {
      // the proxy answers out of order only when its member is slower than itself: try a few times
      for (let round = 0; round < 20; round++) {
        const p = uniquePrefix("proxy-order")
        // a watcher of `a` that the proxy serves from an upstream watch
        const existing = yield* Watch.subscribe(`${p}a`)
        const { revision } = yield* Kv.put(`${p}a`, "0")
        expect(yield* values(existing, 1)).toEqual([[`${p}a`, "0"]])
        // together: `b` opens a new upstream watch (answered once the member has), while `a`
        // from the next revision joins the existing one (answered at once, so often first)
        const [onB, onA] = yield* Effect.all([
          Watch.subscribe(`${p}b`),
          Watch.subscribe(`${p}a`, { startRevision: revision + 1n })
        ], { concurrency: "unbounded" })
        yield* Kv.put(`${p}a`, "1")
        yield* Kv.put(`${p}b`, "2")
        expect(yield* values(onA, 1)).toEqual([[`${p}a`, "1"]])
        expect(yield* values(onB, 1)).toEqual([[`${p}b`, "2"]])
      }
    }))

  it.scoped("a watcher suspended for a slow consumer resumes in order, and its neighbours never notice", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("proxy-suspend")
      // a small buffer: the writes below take it past its bound, so it is canceled and created again
      const slow = yield* Watch.subscribe(`${p}slow`, { bufferBytes: 1024 })
      const neighbour = yield* Watch.subscribe(`${p}neighbour`)
      const written: Array<string> = []
      for (let i = 0; i < 40; i++) {
        const value = `${i}-${"x".repeat(200)}`
        yield* Kv.put(`${p}slow`, value)
        written.push(value)
      }
      yield* Kv.put(`${p}neighbour`, "still here")
      expect(yield* values(neighbour, 1)).toEqual([[`${p}neighbour`, "still here"]])
      expect((yield* values(slow, 40)).map(([, value]) => value)).toEqual(written)
      yield* Kv.put(`${p}slow`, "after")
      yield* Kv.put(`${p}neighbour`, "again")
      expect(yield* values(slow, 1)).toEqual([[`${p}slow`, "after"]])
      expect(yield* values(neighbour, 1)).toEqual([[`${p}neighbour`, "again"]])
    }))

  it.scoped("a chosen watchId stays the watcher's ID, though the proxy numbers it its own way", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("proxy-chosen")
      const other = yield* Watch.subscribe(`${p}other`)
      const chosen = yield* Watch.subscribe(`${p}k`, { watchId: 7_000 })
      expect(chosen.watchId).toBe(7_000n)
      const error = yield* Effect.flip(Watch.subscribe(`${p}again`, { watchId: 7_000 }))
      expect(error._tag).toBe("EtcdInvalidArgument")
      yield* Kv.put(`${p}k`, "1")
      yield* Kv.put(`${p}other`, "2")
      expect(yield* values(chosen, 1)).toEqual([[`${p}k`, "1"]])
      expect(yield* values(other, 1)).toEqual([[`${p}other`, "2"]])
    }))
})
