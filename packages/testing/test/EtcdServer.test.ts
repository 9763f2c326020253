/** The test harness itself: where it starts etcd, what its controls do, and that it cleans up. */
import { EtcdProxy, EtcdServer } from "@effect-etcd/testing"
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Clock, Context, Effect, Exit, Layer, Option, Scope, TestContext } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

/** Whether a process with this pid still exists. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const portOf = (url: string): number => Number(new URL(url).port)

const root = path.resolve(import.meta.dirname, "../../..")
const heldServers = path.resolve(import.meta.dirname, "fixtures/heldServers.ts")

/** The state letter of a process in `/proc/<pid>/stat` ("T" when stopped). */
const stateLetter = (pid: number): string => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  return stat.charAt(stat.lastIndexOf(")") + 2)
}

/** Whether a process with this pid runs (a zombie no longer does). */
const running = (pid: number): boolean => {
  try {
    return !["Z", "X"].includes(stateLetter(pid))
  } catch {
    return false
  }
}

layer(EtcdServer.layer(), { excludeTestServices: true })("EtcdServer, one member", (it) => {
  it.effect("serves on free loopback ports, never 2379/2380, with its data under /dev/shm", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const [member] = server.members
      for (const url of [member.clientUrl, member.peerUrl, member.metricsUrl]) {
        expect(new URL(url).hostname).toBe("127.0.0.1")
        expect([2379, 2380]).not.toContain(portOf(url))
      }
      expect(member.dataDir.startsWith("/dev/shm/")).toBe(true)
      expect(fs.existsSync(member.dataDir)).toBe(true)
      yield* server.etcdctl(["put", "harness/a", "1"])
      expect((yield* server.etcdctl(["get", "harness/a", "--print-value-only"])).trim()).toBe("1")
    }))

  it.effect("kill stops the member; start and restart bring it back on the same data", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      yield* server.etcdctl(["put", "harness/durable", "kept"])
      const before = Option.getOrThrow(yield* server.pid(0))
      yield* server.kill(0)
      expect(yield* server.pid(0)).toEqual(Option.none())
      expect(alive(before)).toBe(false)
      const refused = yield* Effect.either(server.etcdctl(["--command-timeout=1s", "get", "harness/durable"]))
      expect(refused._tag).toBe("Left")
      yield* server.start(0)
      expect((yield* server.etcdctl(["get", "harness/durable", "--print-value-only"])).trim()).toBe("kept")
      const started = Option.getOrThrow(yield* server.pid(0))
      yield* server.restart(0)
      const restarted = Option.getOrThrow(yield* server.pid(0))
      expect(restarted).not.toBe(started)
      // a stopped member cannot be paused; resuming it changes nothing
      yield* server.kill(0)
      const pausedStopped = yield* Effect.exit(server.pause(0))
      yield* server.resume(0)
      expect(yield* server.pid(0)).toEqual(Option.none())
      expect(Exit.isFailure(pausedStopped) && Cause.pretty(pausedStopped.cause)).toContain("m0: it is not running")
      yield* server.start(0)
      expect(alive(started)).toBe(false)
      expect((yield* server.etcdctl(["get", "harness/durable", "--print-value-only"])).trim()).toBe("kept")
    }))

  it.effect("pause holds every answer until resume", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const pid = Option.getOrThrow(yield* server.pid(0))
      yield* server.pause(0)
      // stopped by the time pause returns, not only signalled
      const whilePaused = stateLetter(pid)
      const paused = yield* Effect.either(server.etcdctl(["--command-timeout=1s", "put", "harness/p", "x"]))
      yield* server.resume(0)
      expect(whilePaused).toBe("T")
      expect(stateLetter(pid)).not.toBe("T")
      expect(paused._tag).toBe("Left")
      yield* server.etcdctl(["put", "harness/p", "y"])
      expect((yield* server.etcdctl(["get", "harness/p", "--print-value-only"])).trim()).toBe("y")
    }))

  it.effect("metric reads a value from the member's /metrics", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      expect(yield* server.metric(0, "etcd_server_has_leader")).toBe(1)
      expect(yield* server.metrics(0)).toContain("etcd_server_is_leader")
    }))
})

describe("EtcdServer lifecycle", () => {
  // on TestClock, time moves only when the test adjusts it (provided here: it.effect's own is
  // left out in a file where a layer suite excludes the test services)
  it.effect(
    "on TestClock, the server and a gateway start, and its controls end, waiting on the system's clock",
    () =>
      Effect.gen(function*() {
        const server = yield* EtcdServer.EtcdServer
        const gateway = yield* EtcdProxy.EtcdProxy
        yield* server.restart(0)
        yield* server.pause(0)
        yield* server.resume(0)
        yield* server.kill(0)
        yield* server.start(0)
        yield* server.etcdctl(["put", "harness/clock", "ticked"])
        expect((yield* server.etcdctl(["get", "harness/clock", "--print-value-only"])).trim()).toBe("ticked")
        expect(gateway.endpoints).toHaveLength(1)
        // the test's clock never moved
        expect(yield* Clock.currentTimeMillis).toBe(0)
      }).pipe(
        Effect.provide(EtcdProxy.layerGateway().pipe(Layer.provideMerge(EtcdServer.layer()))),
        Effect.provide(TestContext.TestContext)
      ),
    120_000
  )

  it.effect("closing the scope stops every member of a cluster and removes their data", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(EtcdServer.layer({ members: 3 }), scope)
      const server = Context.get(context, EtcdServer.EtcdServer)
      expect(server.endpoints).toHaveLength(3)
      expect(new Set(server.members.map((m) => portOf(m.clientUrl))).size).toBe(3)
      const leaders = yield* Effect.forEach([0, 1, 2], (i) => server.metric(i, "etcd_server_is_leader"))
      expect(leaders.reduce((a, b) => a + b, 0)).toBe(1)
      const pids = yield* Effect.forEach([0, 1, 2], (i) => Effect.map(server.pid(i), Option.getOrThrow))
      yield* Scope.close(scope, Exit.void)
      expect(pids.filter(alive)).toEqual([])
      expect(server.members.filter((m) => fs.existsSync(m.dataDir))).toEqual([])
    }), 120_000)

  it.effect("a failing test still stops its server", () =>
    Effect.gen(function*() {
      let pid = -1
      let dataDir = ""
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(EtcdServer.layer())
        const server = Context.get(context, EtcdServer.EtcdServer)
        pid = Option.getOrThrow(yield* server.pid(0))
        dataDir = server.members[0].dataDir
        return yield* Effect.fail("the test failed")
      })))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(pid).toBeGreaterThan(0)
      expect(alive(pid)).toBe(false)
      expect(fs.existsSync(dataDir)).toBe(false)
    }))

  // on the live clock: it waits for another process
  it.scopedLive(
    "a program killed with SIGKILL, its scopes never closed, leaves no member, gateway or data behind",
    () =>
      Effect.gen(function*() {
        const program = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn(process.execPath, ["--import", "tsx", heldServers], {
              cwd: root,
              stdio: ["ignore", "pipe", "inherit"]
            })
          ),
          (child) => Effect.sync(() => child.kill("SIGKILL"))
        )
        const held = yield* Effect.async<{ readonly pids: Array<number>; readonly dataDirs: Array<string> }>(
          (resume) => {
            let text = ""
            program.stdout!.on("data", (chunk: Buffer) => {
              text += chunk.toString("utf8")
              const line = text.indexOf("\n")
              if (line >= 0) resume(Effect.succeed(JSON.parse(text.slice(0, line))))
            })
          }
        ).pipe(
          Effect.timeoutFail({ duration: "90 seconds", onTimeout: () => new Error("the program never said it runs") })
        )
        expect(held.pids).toHaveLength(2)
        expect(held.pids.every(running)).toBe(true)
        const serverDir = path.dirname(held.dataDirs[0])
        expect(fs.existsSync(serverDir)).toBe(true)

        program.kill("SIGKILL")
        const left = () => [...held.pids.filter(running), ...[serverDir, ...held.dataDirs].filter(fs.existsSync)]
        for (let attempt = 0; attempt < 100 && left().length > 0; attempt++) yield* Effect.sleep("100 millis")
        expect(left()).toEqual([])
      }),
    120_000
  )
})
