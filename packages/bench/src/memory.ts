/**
 * The `memory-100k` entry: 100 000 puts, then 100 000 gets, through the public `Kv` module
 * on `EtcdMemory`, the in-memory etcd, in this process. It tells how cheap tests on the
 * memory layer are; no server and no other client take part.
 */
import { Effect } from "effect"
import { EtcdMemory, Kv } from "effect-etcd"

/** What the entry reports. */
export interface MemoryMeasurement {
  readonly ops: number
  readonly put_s: number
  readonly get_s: number
  readonly total_s: number
}

/** `ops` puts of distinct keys (64-byte values), then a get of each, one at a time. */
export const memory100k = (ops: number): Effect.Effect<MemoryMeasurement> =>
  Effect.gen(function*() {
    const value = "x".repeat(64)
    const keys = Array.from({ length: ops }, (_, i) => `bench/memory/k/${i}`)
    const start = performance.now()
    for (const key of keys) yield* Kv.put(key, value)
    const putDone = performance.now()
    let found = 0
    for (const key of keys) if ((yield* Kv.get(key))._tag === "Some") found++
    const end = performance.now()
    if (found !== ops) return yield* Effect.dieMessage(`memory-100k read back ${found} of ${ops} keys`)
    return {
      ops,
      put_s: (putDone - start) / 1000,
      get_s: (end - putDone) / 1000,
      total_s: (end - start) / 1000
    }
  }).pipe(Effect.provide(EtcdMemory.layer()), Effect.orDie)
