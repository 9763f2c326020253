import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Stream } from "effect"
import { Compare, Etcd, KeyRange, Kv, Lease, Lock, Op, Txn, Watch } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

layer(withServer(), { excludeTestServices: true })("Namespace", (it) => {
  it.effect("namespaced and plain clients on one server see exactly their own keys", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ns-own")
      yield* Kv.put("a", "in a").pipe(Etcd.withNamespace(`${p}a/`))
      yield* Kv.put("shared", "in a").pipe(Etcd.withNamespace(`${p}a/`))
      yield* Kv.put("shared", "in b").pipe(Etcd.withNamespace(`${p}b/`))
      yield* Kv.put(`${p}plain`, "plain")

      // the empty prefix is the whole keyspace of the namespace, and no more
      const inA = yield* Kv.getPrefix("").pipe(Etcd.withNamespace(`${p}a/`))
      expect([...inA.entries()]).toEqual([["a", "in a"], ["shared", "in a"]])
      const inB = yield* Kv.getPrefix("").pipe(Etcd.withNamespace(`${p}b/`))
      expect([...inB.entries()]).toEqual([["shared", "in b"]])
      expect(yield* Kv.get("shared").pipe(Etcd.withNamespace(`${p}b/`))).toEqual(Option.some("in b"))
      expect(yield* Kv.get(`${p}plain`).pipe(Etcd.withNamespace(`${p}a/`))).toEqual(Option.none())

      // the plain client sees everything, under the full keys
      expect(yield* Kv.keysPrefix(p)).toEqual([`${p}a/a`, `${p}a/shared`, `${p}b/shared`, `${p}plain`])

      // a range from a key on, and a delete of the whole namespace, stop at its end
      expect(yield* Kv.count(KeyRange.from("b")).pipe(Etcd.withNamespace(`${p}a/`))).toBe(1)
      const removed = yield* Kv.deletePrefix("", { prevKv: true }).pipe(Etcd.withNamespace(`${p}a/`))
      expect(removed.deleted).toBe(2)
      expect(removed.prevKvs.map((kv) => kv.key).sort()).toEqual(["a", "shared"])
      expect(yield* Kv.keysPrefix(p)).toEqual([`${p}b/shared`, `${p}plain`])
    }))

  it.effect("txn compares, ops of both branches and nested txns are namespaced", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ns-txn")
      const ns = Etcd.withNamespace(`${p}ns/`)
      yield* Kv.put(`${p}counter`, "outside")
      yield* Kv.put("counter", "1").pipe(ns)
      const swapped = yield* Txn.txnCompare(
        [Compare.value("counter").equals("1")],
        [
          Op.put("counter", "2", { prevKv: true }),
          Op.get(KeyRange.prefix("")),
          Op.txn([Compare.version("missing").equals(0)], [Op.put("created", "yes")])
        ],
        [Op.get("counter")]
      ).pipe(ns)
      expect(swapped.succeeded).toBe(true)
      if (!swapped.succeeded) return
      const [put, all, nested] = swapped.results
      expect(Option.map(put.prevKv, (kv) => kv.key)).toEqual(Option.some("counter"))
      expect(all.kvs.map((kv) => kv.key)).toEqual(["counter"])
      expect(nested.succeeded).toBe(true)
      expect(yield* Kv.get(`${p}ns/created`)).toEqual(Option.some("yes"))
      expect(yield* Kv.get(`${p}counter`)).toEqual(Option.some("outside"))

      const failed = yield* Txn.txnCompare(
        [Compare.value("counter").equals("1")],
        [Op.put("counter", "never")],
        [Op.get("counter"), Op.delete("created", { prevKv: true })]
      ).pipe(ns)
      expect(failed.succeeded).toBe(false)
      if (failed.succeeded) return
      expect(failed.results[0].kvs.map((kv) => [kv.key, kv.value])).toEqual([["counter", "2"]])
      expect(failed.results[1].prevKvs.map((kv) => kv.key)).toEqual(["created"])
    }))

  it.effect("watch events come back without the prefix, and only the namespace's", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ns-watch")
      const ns = Etcd.withNamespace(`${p}ns/`)
      const events = yield* Effect.scoped(Effect.gen(function*() {
        const watcher = yield* Watch.subscribe(KeyRange.prefix(""), { prevKv: true }).pipe(ns)
        const collected = yield* Effect.fork(Stream.runCollect(Stream.take(watcher.events, 3)))
        yield* Kv.put(`${p}outside`, "not seen")
        yield* Kv.put("job", "queued").pipe(ns)
        yield* Kv.put("job", "running").pipe(ns)
        yield* Kv.delete("job").pipe(ns)
        return Chunk.toReadonlyArray(yield* Fiber.join(collected))
      }))
      expect(events.map((e) => [e.type, e.key, e.value])).toEqual([
        ["put", "job", "queued"],
        ["put", "job", "running"],
        ["delete", "job", ""]
      ])
      expect(events.map((e) => Option.map(e.prevKv, (kv) => kv.key))).toEqual([
        Option.none(),
        Option.some("job"),
        Option.some("job")
      ])
    }))

  it.effect("locks of the same name in two namespaces do not contend; their keys live in the namespace", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ns-lock")
      const keys = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* Lock.make("jobs", { timeout: "5 seconds" }).pipe(Etcd.withNamespace(`${p}a/`))
        // would time out if it waited on a's key
        const b = yield* Lock.make("jobs", { timeout: "5 seconds" }).pipe(Etcd.withNamespace(`${p}b/`))
        expect(a.key.startsWith("jobs/")).toBe(true)
        expect(b.key.startsWith("jobs/")).toBe(true)
        return [yield* Kv.keysPrefix(`${p}a/`), yield* Kv.keysPrefix(`${p}b/`)]
      }))
      expect(keys.map((ks) => ks.length)).toEqual([1, 1])
      expect(keys[0][0].startsWith(`${p}a/jobs/`)).toBe(true)
      expect(yield* Kv.count(KeyRange.prefix(p))).toBe(0)
    }))

  it.effect("lease keys are reported without the prefix; other namespaces' keys are left out", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ns-lease")
      const grant = yield* Lease.grant("30 seconds")
      yield* Kv.put("mine", "1", { lease: grant.id }).pipe(Etcd.withNamespace(`${p}a/`))
      yield* Kv.put("theirs", "1", { lease: grant.id }).pipe(Etcd.withNamespace(`${p}b/`))
      const info = yield* Lease.timeToLive(grant.id, { keys: true }).pipe(Etcd.withNamespace(`${p}a/`))
      expect(info.keys).toEqual(["mine"])
      yield* Lease.revoke(grant.id)
    }))

  it.effect("namespaces nest, and a prefix ending in 0xff still bounds its ranges", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ns-nest")
      yield* Kv.put("k", "nested").pipe(Etcd.withNamespace("inner/"), Etcd.withNamespace(`${p}outer/`))
      expect(yield* Kv.keysPrefix(p)).toEqual([`${p}outer/inner/k`])

      const ff = Buffer.concat([Buffer.from(`${p}ff`), Buffer.from([0xff])])
      const after = Buffer.concat([Buffer.from(`${p}fg`)])
      yield* Kv.put(Buffer.concat([ff, Buffer.from("x")]), "in")
      yield* Kv.put(after, "out")
      expect(yield* Kv.count(KeyRange.prefix("")).pipe(Etcd.withNamespace(ff))).toBe(1)
      expect(yield* Kv.keysPrefix("").pipe(Etcd.withNamespace(ff))).toEqual(["x"])
    }))
})
