/**
 * effect-etcd's lease keepalives at rest, in figures that do not depend on the machine's
 * load: N leases of 6 s made with `Lease.make` in one scope on one client (a tenth as many
 * first, unmeasured), a few seconds for their keepalives to settle, then an idle window
 * that reports the process's CPU µs per keepalive (the keepalives counted by the server:
 * `etcd_debugging_lease_renewed_total`), the CPU time of each of its threads, and, when
 * asked, the bytes allocated per keepalive by allocation site (V8's sampling heap profiler,
 * counting what the GC already took; the CPU figure then carries the profiler's cost).
 *
 * `pnpm probe:keepalive [--leases 10000] [--idle 10] [--heap]` from packages/bench (it
 * builds first); it starts an etcd of its own.
 */
import { EtcdServer } from "@effect-etcd/testing"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Etcd, Lease } from "effect-etcd"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { Session } from "node:inspector/promises"

const args = process.argv.slice(2)
const option = (name: string, fallback: number): number =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback
const leases = option("--leases", 10_000)
const idleSeconds = option("--idle", 10)
const heap = args.includes("--heap")

/** The server's count of lease renewals so far. */
const renewals = (endpoint: string) =>
  Effect.promise(async () => {
    const text = await (await fetch(`${endpoint}/metrics`)).text()
    const line = text.split("\n").find((l) => l.startsWith("etcd_debugging_lease_renewed_total "))
    return line === undefined ? Number.NaN : Number(line.split(" ")[1])
  })

/** The user and system CPU ticks of each of this process's threads, by thread. */
const threadTicks = (): Map<string, number> => {
  const ticks = new Map<string, number>()
  for (const task of fs.readdirSync("/proc/self/task")) {
    const stat = fs.readFileSync(`/proc/self/task/${task}/stat`, "utf8")
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    ticks.set(`${task} ${name}`, Number(fields[11]) + Number(fields[12]))
  }
  return ticks
}

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<HeapNode>
}

/** Bytes allocated by each function (self), largest first. */
const allocationSites = (root: HeapNode): Array<readonly [string, number]> => {
  const sites = new Map<string, number>()
  const visit = (node: HeapNode) => {
    const frame = node.callFrame
    const site = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").slice(-2).join("/")}:${
      frame.lineNumber + 1
    }`
    if (node.selfSize > 0) sites.set(site, (sites.get(site) ?? 0) + node.selfSize)
    node.children.forEach(visit)
  }
  visit(root)
  return [...sites].sort((a, b) => b[1] - a[1])
}

const round = (endpoint: string, count: number, measured: boolean) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.forEach(Array.from({ length: count }), () => Lease.make("6 seconds"), { concurrency: 64 }).pipe(
      Scope.extend(scope)
    )
    if (!measured) return yield* Scope.close(scope, Exit.void)
    // the keepalives of the grants settle into their rhythm; the grants' garbage goes
    yield* Effect.sleep(Duration.seconds(3))
    globalThis.gc?.()
    const inspector = new Session()
    inspector.connect()
    if (heap) {
      yield* Effect.promise(() =>
        inspector.post("HeapProfiler.startSampling", {
          samplingInterval: 1024,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true
        })
      )
    }
    const renewed0 = yield* renewals(endpoint)
    const threads0 = threadTicks()
    const cpu0 = process.cpuUsage()
    const start = process.hrtime.bigint()
    yield* Effect.sleep(Duration.seconds(idleSeconds))
    const cpu = process.cpuUsage(cpu0)
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const threads = threadTicks()
    const keepalives = (yield* renewals(endpoint)) - renewed0
    const profile = heap
      ? (yield* Effect.promise(() => inspector.post("HeapProfiler.stopSampling"))).profile as unknown as {
        readonly head: HeapNode
      }
      : undefined
    inspector.disconnect()
    const closeStart = process.hrtime.bigint()
    yield* Scope.close(scope, Exit.void)
    const close_s = Number(process.hrtime.bigint() - closeStart) / 1e9
    const us = cpu.user + cpu.system
    yield* Console.log(JSON.stringify({
      leases: count,
      idle_s: +seconds.toFixed(2),
      keepalives,
      cpu_pct: +(us / 1e4 / seconds).toFixed(2),
      cpu_us_per_keepalive: +(us / keepalives).toFixed(2),
      user_us_per_keepalive: +(cpu.user / keepalives).toFixed(2),
      system_us_per_keepalive: +(cpu.system / keepalives).toFixed(2),
      close_s: +close_s.toFixed(2)
    }))
    for (const [thread, ticks] of threads) {
      const spent = ticks - (threads0.get(thread) ?? 0)
      if (spent > 0) yield* Console.log(`thread ${thread}: ${spent} ticks`)
    }
    if (profile !== undefined) {
      const sites = allocationSites(profile.head)
      const total = sites.reduce((sum, [, bytes]) => sum + bytes, 0)
      yield* Console.log(`allocated: ${(total / keepalives).toFixed(1)} B per keepalive (profiler's own included)`)
      for (const [site, bytes] of sites.slice(0, 15)) {
        yield* Console.log(`${(bytes / keepalives).toFixed(1).padStart(8)} B  ${site}`)
      }
    }
  })

Effect.gen(function*() {
  const server = yield* EtcdServer.EtcdServer
  const endpoint = server.endpoints[0]
  const client = Etcd.layer({ endpoints: endpoint })
  yield* Effect.provide(
    Effect.gen(function*() {
      yield* round(endpoint, Math.ceil(leases / 10), false)
      yield* round(endpoint, leases, true)
    }),
    Layer.fresh(client)
  )
}).pipe(Effect.provide(EtcdServer.layer()), NodeRuntime.runMain)
