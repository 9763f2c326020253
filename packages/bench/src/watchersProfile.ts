/**
 * Where the time and memory of `watchers-10k` go, in load-independent figures: client CPU µs
 * per watcher created and per event delivered (`process.cpuUsage`), heap KB per watcher after
 * a full GC, and the peak RSS above the start, for
 *
 * - `effect-etcd`: the workload's pattern (`Watch.subscribe`, then
 *   `Effect.forkScoped(Stream.runCount(Stream.take(watcher.events, 1)))`, one put per prefix);
 * - `hub`: the same watchers with no consumer (what the client's watch hub costs alone);
 * - `puts`: the puts alone, with no watcher;
 * - `stream-floor`: the same consumer pattern on an in-memory source, no etcd and no client:
 *   what Effect's Stream machinery costs per consuming fiber;
 * - `fiber-floor`: one plain fiber per watcher waiting on that source.
 *
 * `node --expose-gc --import tsx src/watchersProfile.ts [watchers] [--cpu-profile]` (in packages/bench);
 * with `--cpu-profile`, each etcd section's delivery phase is written to `watchers-<section>.cpuprofile`.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { Chunk, Effect, Fiber, ManagedRuntime, type Scope, Stream } from "effect"
import { Etcd, KeyRange, Kv, Watch } from "effect-etcd"
import * as fs from "node:fs"
import { Session } from "node:inspector/promises"
import { collect, secondsSince } from "./measure.js"
import { makeSource, streamOf } from "./streamFloor.js"

const watchers = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 10_000)
const cpuProfile = process.argv.includes("--cpu-profile")
const concurrency = 64
const value = "x".repeat(64)
const indices = (n: number) => Array.from({ length: n }, (_, i) => i)
const cpuSeconds = () => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

/** Runs `phase` and gives its CPU seconds, with a CPU profile of it when `profileAs` is set. */
const measured = <A, E, R>(phase: Effect.Effect<A, E, R>, profileAs?: string) =>
  Effect.gen(function*() {
    const inspector = profileAs === undefined ? undefined : new Session()
    if (inspector) {
      inspector.connect()
      yield* Effect.promise(() => inspector.post("Profiler.enable").then(() => inspector.post("Profiler.start")))
    }
    const start = cpuSeconds()
    const wallStart = process.hrtime.bigint()
    const result = yield* phase
    const cpu = cpuSeconds() - start
    const wall = secondsSince(wallStart)
    if (inspector) {
      const { profile } = yield* Effect.promise(() => inspector.post("Profiler.stop"))
      fs.writeFileSync(`watchers-${profileAs}.cpuprofile`, JSON.stringify(profile))
      inspector.disconnect()
    }
    return { result, cpu, wall }
  })

const heapMb = () => process.memoryUsage().heapUsed / (1024 * 1024)

/**
 * Peak RSS in MB above the RSS when it starts, sampled every 5 ms, and the peak heap used
 * above the start in each phase (`phase()` starts the next one): the RSS peak is the heap's
 * headroom over what is live, and this says in which phase it grew.
 */
const rssPeak = () => {
  const start = process.memoryUsage.rss()
  const heapStart = heapMb()
  let peak = start
  const heapPeaks = [0]
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage.rss())
    heapPeaks[heapPeaks.length - 1] = Math.max(heapPeaks[heapPeaks.length - 1], heapMb() - heapStart)
  }
  const timer = setInterval(sample, 5)
  return {
    /** Ends a phase with a sample of its own (a phase that never yields is not sampled by the timer). */
    phase: () => {
      sample()
      heapPeaks.push(0)
    },
    stop: () => {
      clearInterval(timer)
      sample()
      return {
        peak_rss_above_mb: Math.round((peak - start) / (1024 * 1024)),
        peak_heap_above_mb: { create: Math.round(heapPeaks[0]), deliver: Math.round(heapPeaks[1] ?? 0) }
      }
    }
  }
}

type Section = "effect-etcd" | "watch" | "hub" | "puts"

/** The watchers the server holds (`etcd_debugging_mvcc_watcher_total`). */
const serverWatchers = (server: EtcdServer.EtcdServer) =>
  Effect.map(
    Effect.orDie(server.metrics(0)),
    (text) =>
      text.split("\n").filter((line) => line.startsWith("etcd_debugging_mvcc_watcher_total"))
        .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0)
  )

/** Polls every 50 ms until `done` holds of the server's watcher count. */
const untilServerWatchers = (server: EtcdServer.EtcdServer, done: (count: number) => boolean) =>
  Effect.gen(function*() {
    for (let polls = 0; !done(yield* serverWatchers(server)); polls++) {
      if (polls >= 1200) return yield* Effect.dieMessage("waited 60 s for the server's watchers")
      yield* Effect.sleep(50)
    }
  })

const etcdSection = (server: EtcdServer.EtcdServer, section: Section, prefix: string, n: number, report: boolean) =>
  Effect.scoped(Effect.gen(function*() {
    collect()
    const heapStart = heapMb()
    const stopRss = rssPeak()
    if (section === "watch") yield* untilServerWatchers(server, (count) => count === 0)
    const create = yield* measured(
      section === "puts" ? Effect.succeed([]) : section === "watch" ?
        Effect.tap(
          Effect.forEach(
            indices(n),
            (i) => Effect.forkScoped(Stream.runCount(Stream.take(Watch.watch(KeyRange.prefix(`${prefix}${i}/`)), 1)))
          ),
          () => untilServerWatchers(server, (count) => count >= n)
        ) :
        Effect.forEach(indices(n), (i) =>
          Effect.flatMap(
            Watch.subscribe(KeyRange.prefix(`${prefix}${i}/`)),
            (watcher): Effect.Effect<Fiber.Fiber<number, unknown>, never, Scope.Scope> =>
              section === "hub"
                ? Effect.succeed(Fiber.succeed(1))
                : Effect.forkScoped(Stream.runCount(Stream.take(watcher.events, 1)))
          ), { concurrency })
    )
    collect()
    const heapPerWatcherKb = (heapMb() - heapStart) * 1024 / n
    stopRss.phase()
    const deliver = yield* measured(
      Effect.gen(function*() {
        yield* Effect.forEach(indices(n), (i) => Kv.put(`${prefix}${i}/k`, value), { concurrency, discard: true })
        for (const consumer of create.result) yield* Fiber.join(consumer)
      }),
      report && cpuProfile ? section : undefined
    )
    const peaks = stopRss.stop()
    if (report) {
      console.log(JSON.stringify({
        section,
        watchers: n,
        create_s: Number(create.wall.toFixed(2)),
        deliver_s: Number(deliver.wall.toFixed(2)),
        cpu_us_per_create: Math.round(create.cpu / n * 1e6),
        cpu_us_per_event: Math.round(deliver.cpu / n * 1e6),
        heap_kb_per_watcher: Number(heapPerWatcherKb.toFixed(2)),
        ...peaks
      }))
    }
  }))

const floorSection = (section: "stream-floor" | "fiber-floor", n: number) =>
  Effect.scoped(Effect.gen(function*() {
    // what the previous section left is collected only once its fibers' last ticks ran
    yield* Effect.sleep(50)
    collect()
    const heapStart = heapMb()
    const stopRss = rssPeak()
    const sources = indices(n).map(makeSource)
    const start = yield* measured(
      Effect.forEach(sources, (source) =>
        Effect.forkScoped(
          section === "fiber-floor"
            ? Effect.map(source.take, Chunk.size)
            : Stream.runCount(Stream.take(streamOf(source.take), 1))
        ))
    )
    yield* Effect.sleep(10)
    collect()
    const heapPerWatcherKb = (heapMb() - heapStart) * 1024 / n
    stopRss.phase()
    const deliver = yield* measured(Effect.gen(function*() {
      for (const source of sources) source.fire()
      for (const fiber of start.result) yield* Fiber.join(fiber)
    }))
    console.log(JSON.stringify({
      section,
      watchers: n,
      cpu_us_per_create: Math.round(start.cpu / n * 1e6),
      cpu_us_per_event: Math.round(deliver.cpu / n * 1e6),
      heap_kb_per_watcher: Number(heapPerWatcherKb.toFixed(2)),
      ...stopRss.stop()
    }))
  }))

const program = Effect.gen(function*() {
  if (!global.gc) return yield* Effect.dieMessage("run with --expose-gc")
  const server = yield* EtcdServer.EtcdServer
  const runtime = ManagedRuntime.make(Etcd.layer({ endpoints: server.endpoints }))
  yield* floorSection("stream-floor", watchers)
  yield* floorSection("fiber-floor", watchers)
  yield* Effect.promise(() =>
    runtime.runPromise(Effect.gen(function*() {
      for (const section of ["puts", "hub", "effect-etcd", "watch"] as const) {
        yield* etcdSection(server, section, `/profile/${section}/warmup/`, Math.ceil(watchers / 10), false)
        yield* etcdSection(server, section, `/profile/${section}/`, watchers, true)
      }
      yield* Kv.deletePrefix("/profile/")
    }))
  )
  yield* Effect.promise(() => runtime.dispose())
})

Effect.runPromise(Effect.scoped(program.pipe(Effect.provide(EtcdServer.layer())))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
