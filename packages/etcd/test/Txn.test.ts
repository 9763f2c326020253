import { expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Compare, KeyRange, Kv, Lease, Op, Txn } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

layer(withServer(), { excludeTestServices: true })("Txn", (it) => {
  it.effect("txn without compares runs every op and returns each result in order", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("txn")
      yield* Kv.put(`${p}successkey`, "1111")
      const [get, put, removed] = yield* Txn.txn([
        Op.get(`${p}successkey`),
        Op.put(`${p}other`, "x", { prevKv: true }),
        Op.delete(`${p}successkey`, { prevKv: true })
      ])
      expect(get.kvs.map((kv) => kv.value)).toEqual(["1111"])
      expect(put.prevKv).toEqual(Option.none())
      expect(removed.deleted).toBe(1)
      expect(removed.prevKvs[0]?.value).toBe("1111")
      expect(put.revision).toBe(removed.revision)
    }))

  it.effect("etcetra's txn_compare example: value == and value > pick the success branch", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("etcetra")
      yield* Kv.put(`${p}successkey`, "1111")
      yield* Kv.put(`${p}comparekey`, "asd")
      yield* Kv.put(`${p}comparekey2`, "asdg")
      const result = yield* Txn.txnCompare(
        [Compare.value(`${p}comparekey`).equals("asd"), Compare.value(`${p}comparekey2`).greaterThan("asdf")],
        [Op.get(`${p}successkey`)]
      )
      expect(result.succeeded).toBe(true)
      if (!result.succeeded) return
      expect(result.results[0].kvs[0]?.value).toBe("1111")
    }))

  it.effect("a failing compare runs the failure branch and only it", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("failure")
      yield* Kv.put(`${p}k`, "current")
      const result = yield* Txn.txnCompare(
        [Compare.value(`${p}k`).equals("something else")],
        [Op.put(`${p}k`, "swapped")],
        [Op.get(`${p}k`), Op.put(`${p}failed`, "yes")]
      )
      expect(result.succeeded).toBe(false)
      if (result.succeeded) return
      const [current, marker] = result.results
      expect(current.kvs[0]?.value).toBe("current")
      expect(marker.revision).toBe(result.revision)
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("current"))
      expect(yield* Kv.get(`${p}failed`)).toEqual(Option.some("yes"))
    }))

  it.effect("every operator on values: =, !=, <, >", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("value-ops")
      yield* Kv.put(`${p}k`, "m")
      const holds = (compare: Compare.Compare) => Effect.map(Txn.txnCompare([compare], []), (r) => r.succeeded)
      const value = Compare.value(`${p}k`)
      expect(yield* holds(value.equals("m"))).toBe(true)
      expect(yield* holds(value.equals("n"))).toBe(false)
      expect(yield* holds(value.notEquals("n"))).toBe(true)
      expect(yield* holds(value.notEquals("m"))).toBe(false)
      expect(yield* holds(value.lessThan("n"))).toBe(true)
      expect(yield* holds(value.lessThan("a"))).toBe(false)
      expect(yield* holds(value.greaterThan("a"))).toBe(true)
      expect(yield* holds(value.greaterThan("z"))).toBe(false)
    }))

  it.effect("version, create revision and mod revision compares", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("revision-ops")
      const created = yield* Kv.put(`${p}k`, "1")
      const modified = yield* Kv.put(`${p}k`, "2")
      const holds = (compare: Compare.Compare) => Effect.map(Txn.txnCompare([compare], []), (r) => r.succeeded)
      expect(yield* holds(Compare.version(`${p}k`).equals(2))).toBe(true)
      expect(yield* holds(Compare.version(`${p}k`).lessThan(2))).toBe(false)
      expect(yield* holds(Compare.version(`${p}missing`).equals(0))).toBe(true)
      expect(yield* holds(Compare.createRevision(`${p}k`).equals(created.revision))).toBe(true)
      expect(yield* holds(Compare.createRevision(`${p}k`).lessThan(modified.revision))).toBe(true)
      expect(yield* holds(Compare.modRevision(`${p}k`).equals(modified.revision))).toBe(true)
      expect(yield* holds(Compare.modRevision(`${p}k`).greaterThan(modified.revision))).toBe(false)
      expect(yield* holds(Compare.modRevision(`${p}k`).notEquals(created.revision))).toBe(true)
    }))

  it.effect("lease compares", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("lease-ops")
      const grant = yield* Lease.grant("30 seconds")
      yield* Kv.put(`${p}leased`, "v", { lease: grant.id })
      yield* Kv.put(`${p}plain`, "v")
      const holds = (compare: Compare.Compare) => Effect.map(Txn.txnCompare([compare], []), (r) => r.succeeded)
      expect(yield* holds(Compare.lease(`${p}leased`).equals(grant.id))).toBe(true)
      expect(yield* holds(Compare.lease(`${p}plain`).equals(0n))).toBe(true)
      expect(yield* holds(Compare.lease(`${p}plain`).notEquals(grant.id))).toBe(true)
      yield* Lease.revoke(grant.id)
    }))

  it.effect("a compare over a range holds only when it holds for every key of it", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("range-compare")
      yield* Kv.put(`${p}a`, "ok")
      yield* Kv.put(`${p}b`, "ok")
      const allOk = Compare.value(KeyRange.prefix(p)).equals("ok")
      expect((yield* Txn.txnCompare([allOk], [])).succeeded).toBe(true)
      yield* Kv.put(`${p}c`, "not ok")
      expect((yield* Txn.txnCompare([allOk], [])).succeeded).toBe(false)
    }))

  it.effect("nested transactions run in both branches, with typed results", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("nested")
      yield* Kv.put(`${p}flag`, "on")
      const result = yield* Txn.txnCompare(
        [Compare.version(`${p}flag`).greaterThan(0)],
        [
          Op.txn(
            [Compare.value(`${p}flag`).equals("on")],
            [Op.put(`${p}inner`, "from-success"), Op.get(`${p}flag`)],
            [Op.put(`${p}inner`, "from-failure")]
          )
        ],
        [Op.txn([], [Op.put(`${p}outer-failure`, "x")])]
      )
      expect(result.succeeded).toBe(true)
      if (!result.succeeded) return
      const [inner] = result.results
      expect(inner.succeeded).toBe(true)
      if (!inner.succeeded) return
      expect(inner.results[1].kvs[0]?.value).toBe("on")
      expect(yield* Kv.get(`${p}inner`)).toEqual(Option.some("from-success"))
      expect(yield* Kv.get(`${p}outer-failure`)).toEqual(Option.none())
    }))

  it.effect("range ops inside a txn take every read option", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("txn-range")
      for (const k of ["a", "b", "c"]) yield* Kv.put(`${p}${k}`, k)
      const [page, count] = yield* Txn.txn([
        Op.get(KeyRange.prefix(p), { limit: 2, sortOrder: "descend" }),
        Op.get(KeyRange.prefix(p), { countOnly: true })
      ])
      expect(page.kvs.map((kv) => kv.value)).toEqual(["c", "b"])
      expect(page.more).toBe(true)
      expect(count.count).toBe(3)
    }))

  it.effect("compare-and-swap lets exactly one of many concurrent writers win", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("cas")
      const { revision } = yield* Kv.put(`${p}k`, "initial")
      const attempts = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        (i) => Txn.txnCompare([Compare.modRevision(`${p}k`).equals(revision)], [Op.put(`${p}k`, `writer-${i}`)]),
        { concurrency: "unbounded" }
      )
      expect(attempts.filter((a) => a.succeeded)).toHaveLength(1)
    }))

  it.effect("the same key twice in one branch fails with DuplicateKey and writes nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("duplicate")
      const error = yield* Effect.flip(Txn.txn([Op.put(`${p}k`, "1"), Op.put(`${p}k`, "2")]))
      expect(error._tag).toBe("DuplicateKey")
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.none())
    }))

  it.effect("more ops than the server allows fails with TooManyOps and writes nothing", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("too-many")
      const ops = Array.from({ length: 129 }, (_, i) => Op.put(`${p}${i}`, "v"))
      const error = yield* Effect.flip(Txn.txn(ops))
      expect(error._tag).toBe("TooManyOps")
      expect(yield* Kv.count(KeyRange.prefix(p))).toBe(0)
      const [first] = yield* Txn.txn(ops.slice(0, 128))
      expect(first.revision).toBeGreaterThan(0n)
    }))

  it.effect("an empty key anywhere in a txn fails with EmptyKey", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Txn.txnCompare([Compare.value("").equals("x")], []))
      expect(error._tag).toBe("EmptyKey")
      const inOp = yield* Effect.flip(Txn.txn([Op.put("", "x")]))
      expect(inOp._tag).toBe("EmptyKey")
    }))
})
