/**
 * The workloads through effect-etcd, the way an Effect program runs them: each measured
 * section is one Effect, its operations on lanes (`each`). Effect's and effect-etcd's modules
 * are imported by path, as a server that is not bundled should import them (the indexes load
 * all of Effect, `Schema` included: see the bench's README).
 */
import * as Compare from "effect-etcd/Compare"
import * as Etcd from "effect-etcd/Etcd"
import * as EtcdConfig from "effect-etcd/EtcdConfig"
import * as KeyRange from "effect-etcd/KeyRange"
import * as Kv from "effect-etcd/Kv"
import * as Lease from "effect-etcd/Lease"
import * as Lock from "effect-etcd/Lock"
import * as Mirror from "effect-etcd/Mirror"
import * as Op from "effect-etcd/Op"
import * as Session from "effect-etcd/Session"
import * as Txn from "effect-etcd/Txn"
import * as Watch from "effect-etcd/Watch"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { execFile } from "node:child_process"
import * as path from "node:path"
import {
  collect,
  cpuMeter,
  heldMb,
  Latencies,
  measure,
  type MemoryPeaks,
  memorySampler,
  rssMb,
  rssSampler,
  secondsSince
} from "../measure.js"
import { makeSource, streamOf } from "../streamFloor.js"
import {
  type Job,
  keyOf,
  type LeasesFigures,
  type Measurement,
  payload,
  runnerLabel,
  scaleConcurrency,
  scaleLeaseTtl,
  type WatchersFigures
} from "../workloads.js"

/**
 * `countLeasesListed` of the raw client, loaded when the leases workload first asks: raw.ts
 * imports grpc-js, which effect-etcd itself loads only for the calls that need a channel of it.
 */
const leasesListed = (endpoint: string, ids: ReadonlyArray<bigint>): Promise<number> =>
  import("./raw.js").then((raw) => raw.countLeasesListed(endpoint, ids))

const indices = (n: number) => Array.from({ length: n }, (_, i) => i)

/** One workload; with `metrics`, on a client that records its metrics (the `metrics-cost` row). */
export const run = async (job: Job, options?: { readonly metrics?: boolean }): Promise<Measurement> => {
  const metrics = options?.metrics === true
  const runtime = ManagedRuntime.make(Etcd.layer({ endpoints: job.endpoint, metrics }))
  const latencies = new Latencies()
  const value = payload(64)
  const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      const done = latencies.start()
      return Effect.tap(effect, () => Effect.sync(done))
    })
  const section = (effect: (ops: number) => Effect.Effect<unknown, unknown, Etcd.Etcd>) =>
    measure(
      metrics ? "effect-etcd+metrics" : "effect-etcd",
      job,
      latencies,
      (ops) => runtime.runPromise(Effect.asVoid(effect(ops)))
    )
  /**
   * `n` operations on `job.concurrency` lanes, each lane taking the next index once its
   * last operation ended: the shape of `pool`, which the other clients run theirs in (a
   * fiber per lane, not one forked per operation).
   */
  const each = <R>(n: number, op: (i: number) => Effect.Effect<unknown, unknown, R>) =>
    Effect.suspend(() => {
      let next = 0
      const lane = Effect.whileLoop({ while: () => next < n, body: () => timed(op(next++)), step: () => {} })
      return Effect.forEach(indices(Math.min(n, job.concurrency)), () => lane, {
        concurrency: "unbounded",
        discard: true
      })
    })
  try {
    switch (job.workload) {
      case "put-1":
      case "put-128":
        return await section((n) => each(n, (i) => Kv.put(keyOf(job.prefix, i), value)))
      case "get-1":
      case "get-128":
        await runtime.runPromise(
          Effect.forEach(indices(1000), (i) => Kv.put(keyOf(job.prefix, i), value), { concurrency: 64 })
        )
        return await section((n) => each(n, (i) => Kv.get(keyOf(job.prefix, i))))
      case "range-1000x1KiB": {
        const big = payload(1024)
        await runtime.runPromise(Effect.forEach(
          indices(1000),
          (i) => Kv.put(`${job.prefix}r/${String(i).padStart(4, "0")}`, big),
          { concurrency: 64 }
        ))
        return await section((n) =>
          each(
            n,
            () =>
              Effect.flatMap(
                Kv.getPrefix(`${job.prefix}r/`),
                (all) => all.size === 1000 ? Effect.void : Effect.dieMessage(`range returned ${all.size} keys`)
              )
          )
        )
      }
      case "txn-cas-64": {
        const lanes = job.concurrency
        const current = indices(lanes).map(() => 0)
        await runtime.runPromise(
          Effect.forEach(indices(lanes), (lane) => Kv.put(`${job.prefix}cas/${lane}`, "0"), { concurrency: lanes })
        )
        let next = 0
        let ops = 0
        const lane = (l: number) =>
          Effect.whileLoop({
            while: () => next < ops,
            body: () =>
              Effect.suspend(() => {
                next++
                const key = `${job.prefix}cas/${l}`
                return timed(Txn.txnCompare(
                  [Compare.value(key).equals(String(current[l]))],
                  [Op.put(key, String(current[l] + 1))]
                )).pipe(
                  Effect.flatMap((result) =>
                    result.succeeded ? Effect.sync(() => current[l]++) : Effect.dieMessage("compare-and-swap lost")
                  )
                )
              }),
            step: () => {}
          })
        return await section((n) =>
          Effect.suspend(() => {
            next = 0
            ops = n
            return Effect.forEach(indices(lanes), lane, { concurrency: lanes, discard: true })
          })
        )
      }
      case "watch-20000": {
        const prefix = `${job.prefix}w/`
        return await section((n) =>
          Effect.scoped(Effect.gen(function*() {
            const watcher = yield* Watch.subscribe(KeyRange.prefix(prefix))
            const received = yield* Effect.fork(Stream.runDrain(Stream.take(watcher.events, n)))
            yield* each(n, (i) => Kv.put(`${prefix}${i % 1000}`, value))
            yield* Fiber.join(received)
          }))
        )
      }
      case "lease-grant-revoke":
        return await section((n) =>
          each(n, () => Effect.flatMap(Lease.grant("10 seconds"), (grant) => Lease.revoke(grant.id)))
        )
      case "lock-acquire-release":
        return await section((n) =>
          each(n, () => Lock.withLock(`${job.prefix}lock`, Effect.void, { ttl: "10 seconds" }))
        )
      case "lock-on-session": {
        // the session is set up once, outside the measured sections
        const scope = await runtime.runPromise(Scope.make())
        try {
          const session = await runtime.runPromise(Scope.extend(Session.make({ ttl: "10 seconds" }), scope))
          return await section((n) => each(n, () => Lock.withLock(`${job.prefix}lock`, Effect.void, { session })))
        } finally {
          await runtime.runPromise(Scope.close(scope, Exit.void))
        }
      }
    }
  } finally {
    await runtime.runPromise(Kv.deletePrefix(job.prefix))
    await runtime.dispose()
  }
}

/** Runs the writer of the slow-consumer check in a process of its own. */
const writer = (job: Job) =>
  Effect.async<void, Error>((resume) => {
    const child = execFile(
      process.execPath,
      [path.join(import.meta.dirname, "../worker.js"), "writer", JSON.stringify(job)],
      { timeout: 10 * 60_000 },
      (error, _stdout, stderr) => resume(error ? Effect.fail(new Error(`writer failed: ${stderr}`)) : Effect.void)
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/**
 * Memory under a slow consumer: a prefix watch whose consumer sleeps 1 ms per event while
 * another process writes `job.ops` events, 128 at a time. Returns the peaks of this
 * process's RSS, heap and memory outside the heap above the baseline taken before the
 * watch, in MB.
 */
export const slowConsumer = async (job: Job): Promise<MemoryPeaks> => {
  const runtime = ManagedRuntime.make(Etcd.layer({ endpoints: job.endpoint }))
  /** `events` written by another process, taken by a consumer that waits `pause` per event. */
  const watchWhileWriting = (prefix: string, events: number, pause: Duration.Duration) =>
    Effect.scoped(Effect.gen(function*() {
      const watcher = yield* Watch.subscribe(KeyRange.prefix(prefix))
      const consumer = yield* Effect.fork(
        watcher.events.pipe(Stream.take(events), Stream.runForEach(() => Effect.sleep(pause)))
      )
      yield* writer({ ...job, prefix, ops: events, concurrency: 128 })
      yield* Fiber.join(consumer)
    }))
  try {
    return await runtime.runPromise(Effect.gen(function*() {
      // the baseline is taken warm: after the same path has run on a few events
      yield* watchWhileWriting(`${job.prefix}warmup/`, Math.min(job.ops, 2_000), Duration.zero)
      if (global.gc) global.gc()
      const memory = memorySampler()
      yield* watchWhileWriting(`${job.prefix}slow/`, job.ops, Duration.millis(1))
      const peaks = memory.stop()
      yield* Kv.deletePrefix(job.prefix)
      return peaks
    }))
  } finally {
    await runtime.dispose()
  }
}

/** What the mirror check reports. */
export interface MirrorFigures {
  readonly keys: number
  /** Seconds from `Mirror.prefix` to `ready` (the first list in the map). */
  readonly build_s: number
  /** The bytes of the keys and values mirrored. */
  readonly raw_mb: number
  /** Heap held by the live mirror (after GC), above the heap before it was built. */
  readonly heap_mb: number
}

/**
 * A mirror of `job.ops` keys of 100 bytes, built from empty: the keys are written first
 * (128 puts per txn), then the time from `Mirror.prefix` to `ready`, and the heap the live
 * mirror holds after a GC, against the raw bytes of its keys and values.
 */
export const mirror = async (job: Job): Promise<MirrorFigures> => {
  const runtime = ManagedRuntime.make(Etcd.layer({ endpoints: job.endpoint }))
  const value = payload(100)
  const keyAt = (prefix: string, i: number) => `${prefix}${String(i).padStart(6, "0")}`
  const fill = (prefix: string, keys: number) =>
    Effect.forEach(
      indices(Math.ceil(keys / 128)),
      (batch) =>
        Txn.txn(
          indices(Math.min(128, keys - batch * 128)).map((i) => Op.put(keyAt(prefix, batch * 128 + i), value))
        ),
      { concurrency: 8, discard: true }
    )
  const gc = () => {
    if (global.gc) global.gc()
    if (global.gc) global.gc()
  }
  try {
    return await runtime.runPromise(Effect.gen(function*() {
      const prefix = `${job.prefix}m/`
      yield* fill(prefix, job.ops)
      // warm: the same path once on a smaller prefix, so the JIT's work is not counted
      yield* fill(`${job.prefix}warmup/`, Math.min(job.ops, 5_000))
      yield* Effect.scoped(Effect.flatMap(Mirror.prefix(`${job.prefix}warmup/`), (warm) => warm.ready))
      gc()
      const heapBefore = process.memoryUsage().heapUsed
      const figures = yield* Effect.scoped(Effect.gen(function*() {
        const start = process.hrtime.bigint()
        const live = yield* Mirror.prefix(prefix)
        yield* live.ready
        const build_s = Number(process.hrtime.bigint() - start) / 1e9
        const { values } = yield* live.snapshot
        if (values.size !== job.ops) return yield* Effect.dieMessage(`mirror holds ${values.size} keys`)
        let raw = 0
        for (const [key, value] of values) raw += Buffer.byteLength(key) + Buffer.byteLength(value)
        gc()
        const heap = process.memoryUsage().heapUsed - heapBefore
        return { keys: values.size, build_s, raw_mb: raw / 2 ** 20, heap_mb: heap / 2 ** 20 }
      }))
      yield* Kv.deletePrefix(job.prefix)
      return figures
    }))
  } finally {
    await runtime.dispose()
  }
}

/** What the config check reports. */
export interface ConfigFigures {
  readonly keys: number
  /** `Config` reads through `EtcdConfig`'s provider, their rate, and the Range RPCs etcd served meanwhile. */
  readonly config_reads: number
  readonly config_reads_per_s: number
  readonly config_range_rpcs: number
  /** The same keys read with `Kv.get`, one at a time: their rate and the Range RPCs per read. */
  readonly kv_reads: number
  readonly kv_reads_per_s: number
  readonly kv_range_rpcs_per_read: number
  /**
   * The same reads through Effect's own `ConfigProvider.fromMap` over the same keys and values:
   * Effect's floor for a `Config` read from memory, which no provider goes under.
   */
  readonly from_map_reads: number
  readonly from_map_reads_per_s: number
}

/** The Range RPCs etcd served so far, from its own metrics (`grpc_server_handled_total`). */
const rangesServed = (endpoint: string) =>
  Effect.promise(async () => {
    const text = await (await fetch(`${endpoint}/metrics`)).text()
    let total = 0
    for (const line of text.split("\n")) {
      if (line.startsWith("grpc_server_handled_total{") && line.includes(`grpc_method="Range"`)) {
        total += Number(line.slice(line.lastIndexOf(" ") + 1))
      }
    }
    return total
  })

/**
 * `config-100k`: a configuration of 20 keys written with `EtcdConfig.write`, then `job.ops`
 * `Config.string` reads through `EtcdConfig.make`'s provider (each `Effect.withConfigProvider`,
 * cycling over the keys), against a tenth as many `Kv.get`s of the same keys, one at a time,
 * and against as many reads through Effect's own `ConfigProvider.fromMap` over the same keys and
 * values (Effect's floor: a provider over an in-memory map). etcd's own count of Range RPCs
 * before and after each says how many each read cost. A tenth of each first, unmeasured (warm-up).
 */
export const configReads = async (job: Job): Promise<ConfigFigures> => {
  const runtime = ManagedRuntime.make(Etcd.layer({ endpoints: job.endpoint }))
  const keys = 20
  const names = indices(keys).map((i) => `setting-${i}`)
  const configs = names.map((name) => Config.string(name))
  try {
    return await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
      const prefix = `${job.prefix}c/`
      yield* EtcdConfig.write(prefix, Object.fromEntries(names.map((name, i) => [name, `value-${i}`])))
      const config = yield* EtcdConfig.make(prefix)
      yield* config.ready
      const fromMap = ConfigProvider.fromMap(
        new Map(names.map((name, i) => [name, `value-${i}`])),
        { pathDelim: "/" }
      )
      const readThrough = (provider: ConfigProvider.ConfigProvider) => (n: number) =>
        Effect.gen(function*() {
          for (let i = 0; i < n; i++) {
            yield* Effect.withConfigProvider(configs[i % keys], provider)
          }
        })
      const readConfig = readThrough(config.provider)
      const readFromMap = readThrough(fromMap)
      const readKv = (n: number) =>
        Effect.gen(function*() {
          for (let i = 0; i < n; i++) yield* Kv.get(`${prefix}${names[i % keys]}`)
        })
      const timed = <E, R>(effect: Effect.Effect<void, E, R>) =>
        Effect.gen(function*() {
          const before = yield* rangesServed(job.endpoint)
          const start = process.hrtime.bigint()
          yield* effect
          const seconds = Number(process.hrtime.bigint() - start) / 1e9
          return { seconds, ranges: (yield* rangesServed(job.endpoint)) - before }
        })
      const kvReads = Math.max(1, Math.round(job.ops / 10))
      yield* readConfig(Math.round(job.ops / 10))
      yield* readKv(Math.round(kvReads / 10))
      yield* readFromMap(Math.round(job.ops / 10))
      const configRun = yield* timed(readConfig(job.ops))
      const kvRun = yield* timed(readKv(kvReads))
      const fromMapRun = yield* timed(readFromMap(job.ops))
      yield* Kv.deletePrefix(job.prefix)
      return {
        keys,
        config_reads: job.ops,
        config_reads_per_s: job.ops / configRun.seconds,
        config_range_rpcs: configRun.ranges,
        kv_reads: kvReads,
        kv_reads_per_s: kvReads / kvRun.seconds,
        kv_range_rpcs_per_read: kvRun.ranges / kvReads,
        from_map_reads: job.ops,
        from_map_reads_per_s: job.ops / fromMapRun.seconds
      }
    })))
  } finally {
    await runtime.dispose()
  }
}

/**
 * `watchers-10k`: `job.ops` watchers, each on its own prefix and read by a fiber of its own
 * taking one event, read one of three ways:
 *
 * - `events`: `Watch.subscribe` (64 at a time, each acknowledged by the server), then
 *   `Stream.runCount(Stream.take(watcher.events, 1))` in a fiber of its own;
 * - `watch`: `Stream.runCount(Stream.take(Watch.watch(prefix), 1))` in a fiber of its own,
 *   all forked at once (the Stream-only API has no "created" signal: the creates are done
 *   when the server's `etcd_debugging_mvcc_watcher_total`, none before, reaches `job.ops`,
 *   polled every 100 ms);
 * - `next`: `Watch.subscribe` as for `events`, then one `watcher.next` in a fiber of its own.
 *
 * Then one put per prefix, 64 at a time, until every fiber has its event. A tenth as many
 * first, unmeasured (warm-up).
 */
export const watchers10k = async (
  job: Job,
  consumer: "events" | "watch" | "next" = "events"
): Promise<WatchersFigures> => {
  const runtime = ManagedRuntime.make(Etcd.layer({ endpoints: job.endpoint }))
  const value = payload(64)
  /**
   * Polls the server's watcher count every 100 ms until `done` (a scrape of etcd's metrics
   * costs both processes some CPU: not more often), for at most 60 s: a consumer that failed
   * would leave the count short for ever.
   */
  const untilServerWatchers = (done: (count: number) => boolean, what: string) =>
    Effect.gen(function*() {
      for (let polls = 0; !done(yield* Effect.promise(() => serverWatchers(job))); polls++) {
        if (polls >= 600) return yield* Effect.dieMessage(`waited 60 s for ${what}`)
        yield* Effect.sleep(Duration.millis(100))
      }
    })
  /** Creates the watchers and forks their consumers. */
  const create = (prefix: string, n: number) =>
    consumer === "watch"
      ? Effect.gen(function*() {
        // the watchers of the runs before (other processes', the warm-up's) are canceled
        // asynchronously: counted from none, none of theirs is taken for one of these
        yield* untilServerWatchers((count) => count === 0, "the server to drop its earlier watchers")
        const fibers = yield* Effect.forEach(
          indices(n),
          (i) => Effect.forkScoped(Stream.runCount(Stream.take(Watch.watch(KeyRange.prefix(`${prefix}${i}/`)), 1)))
        )
        yield* untilServerWatchers((count) => count >= n, `${n} watchers created`)
        return fibers
      })
      : Effect.forEach(
        indices(n),
        (i) =>
          Effect.flatMap(
            Watch.subscribe(KeyRange.prefix(`${prefix}${i}/`)),
            (watcher) =>
              Effect.forkScoped(
                consumer === "events"
                  ? Stream.runCount(Stream.take(watcher.events, 1))
                  : Effect.map(watcher.next, (events) => Option.isSome(events) ? 1 : 0)
              )
          ),
        { concurrency: scaleConcurrency }
      )
  const round = (prefix: string, n: number) =>
    Effect.scoped(Effect.gen(function*() {
      const rss = rssSampler()
      const start = process.hrtime.bigint()
      const consumers = yield* create(prefix, n)
      const create_s = secondsSince(start)
      const rss_watchers_mb = rssMb()
      const held_watchers_mb = heldMb()
      const putStart = process.hrtime.bigint()
      yield* Effect.forEach(indices(n), (i) => Kv.put(`${prefix}${i}/k`, value), {
        concurrency: scaleConcurrency,
        discard: true
      })
      let delivered = 0
      for (const consumer of consumers) delivered += yield* Fiber.join(consumer)
      const deliver_s = secondsSince(putStart)
      const rss_peak_mb = rss.stop()
      if (delivered !== n) return yield* Effect.dieMessage(`${delivered} of ${n} watchers got their event`)
      return { create_s, deliver_s, rss_watchers_mb, held_watchers_mb, rss_peak_mb, delivered }
    }))
  try {
    return await runtime.runPromise(Effect.gen(function*() {
      yield* round(`${job.prefix}warmup/`, Math.max(1, Math.ceil(job.ops / 10)))
      const held_base_mb = heldMb()
      const rss_base_mb = rssMb()
      const figures = yield* round(`${job.prefix}w/`, job.ops)
      yield* Kv.deletePrefix(job.prefix)
      const client = runnerLabel("watchers-10k", readers[consumer])
      return { client, watchers: job.ops, rss_base_mb, held_base_mb, ...figures }
    }))
  } finally {
    await runtime.dispose()
  }
}

const readers = { events: "effect-etcd", watch: "effect-etcd-watch", next: "effect-etcd-next" } as const

/** The sum of the server's `etcd_debugging_mvcc_watcher_total` samples: the watchers it holds. */
const serverWatchers = async (job: Job): Promise<number> => {
  if (job.metricsUrl === undefined) throw new Error("watchers-10k through Watch.watch needs the server's metricsUrl")
  const text = await (await fetch(`${job.metricsUrl}/metrics`)).text()
  let total = 0
  for (const line of text.split("\n")) {
    if (line.startsWith("etcd_debugging_mvcc_watcher_total")) total += Number(line.split(" ").pop())
  }
  return total
}

/**
 * `watchers-10k`'s floor: the same consumers (`Stream.runCount(Stream.take(stream, 1))`, each
 * in a fiber of its own) on `job.ops` in-memory sources, with no etcd and no client, phase by
 * phase as the workload: the fibers forked ("create"), then every source fired and every
 * fiber joined ("delivery"), RSS sampled throughout. What Effect's Stream machinery costs
 * per consumer, whatever the source. A tenth as many first, unmeasured (warm-up).
 */
export const streamFloor10k = async (job: Job): Promise<WatchersFigures> => {
  const round = (n: number) =>
    Effect.scoped(Effect.gen(function*() {
      const rss = rssSampler()
      const start = process.hrtime.bigint()
      const sources = indices(n).map(makeSource)
      const consumers = yield* Effect.forEach(
        sources,
        (source) => Effect.forkScoped(Stream.runCount(Stream.take(streamOf(source.take), 1)))
      )
      // every fiber has reached its wait: what the watchers' row measures once they are created
      yield* Effect.yieldNow()
      const create_s = secondsSince(start)
      const rss_watchers_mb = rssMb()
      const held_watchers_mb = heldMb()
      const fireStart = process.hrtime.bigint()
      for (const source of sources) source.fire()
      let delivered = 0
      for (const consumer of consumers) delivered += yield* Fiber.join(consumer)
      const deliver_s = secondsSince(fireStart)
      const rss_peak_mb = rss.stop()
      if (delivered !== n) return yield* Effect.dieMessage(`${delivered} of ${n} consumers got their element`)
      return { create_s, deliver_s, rss_watchers_mb, held_watchers_mb, rss_peak_mb, delivered }
    }))
  return Effect.runPromise(Effect.gen(function*() {
    yield* round(Math.max(1, Math.ceil(job.ops / 10)))
    const held_base_mb = heldMb()
    const rss_base_mb = rssMb()
    const figures = yield* round(job.ops)
    return {
      client: runnerLabel("watchers-10k", "stream-floor"),
      watchers: job.ops,
      rss_base_mb,
      held_base_mb,
      ...figures
    }
  }))
}

/**
 * `leases-10k`: `job.ops` leases of 6 s made with `Lease.make` in one scope, 64 at a
 * time; the process idles `job.idleSeconds` while they are kept alive; then the scope
 * closes (revoking them). A tenth as many first, unmeasured (warm-up).
 */
export const leases10k = async (job: Job): Promise<LeasesFigures> => {
  const runtime = ManagedRuntime.make(Etcd.layer({ endpoints: job.endpoint }))
  const round = (n: number, idleSeconds: number) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const start = process.hrtime.bigint()
      const leases = yield* Effect.forEach(indices(n), () => Lease.make(Duration.seconds(scaleLeaseTtl)), {
        concurrency: scaleConcurrency
      }).pipe(Scope.extend(scope))
      const grant_s = secondsSince(start)
      const ids = leases.map((lease) => lease.id)
      collect()
      const cpu = cpuMeter()
      yield* Effect.sleep(Duration.seconds(idleSeconds))
      const idle = cpu.stop()
      let lost = 0
      for (const lease of leases) if (yield* lease.isLost) lost++
      const alive_after_idle = yield* Effect.promise(() => leasesListed(job.endpoint, ids))
      const closeStart = process.hrtime.bigint()
      yield* Scope.close(scope, Exit.void)
      const close_s = secondsSince(closeStart)
      const left = yield* Effect.promise(() => leasesListed(job.endpoint, ids))
      return { grant_s, idle_cpu_pct: idle.percent, idle_s: idle.seconds, lost, alive_after_idle, close_s, left }
    })
  try {
    return await runtime.runPromise(Effect.gen(function*() {
      yield* round(Math.max(1, Math.ceil(job.ops / 10)), 0)
      const figures = yield* round(job.ops, job.idleSeconds ?? 10)
      return { client: "effect-etcd", leases: job.ops, ...figures }
    }))
  } finally {
    await runtime.dispose()
  }
}
