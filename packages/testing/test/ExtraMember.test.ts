/** Extra members: reserved on free loopback ports, joined to the cluster, stopped with it. */
import { EtcdServer } from "@effect-etcd/testing"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import * as fs from "node:fs"

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("EtcdServer extra members", () => {
  it.live(
    "a reserved member joins as a learner, stops on demand, and is gone with the cluster's scope",
    () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(EtcdServer.layer(), scope)
        const server = Context.get(context, EtcdServer.EtcdServer)
        const reserved = yield* server.reserveMember("extra")
        for (const url of [reserved.clientUrl, reserved.peerUrl, reserved.metricsUrl]) {
          expect(new URL(url).hostname).toBe("127.0.0.1")
          expect([2379, 2380]).not.toContain(Number(new URL(url).port))
        }
        expect(reserved.dataDir.startsWith("/dev/shm/")).toBe(true)
        expect(server.endpoints).not.toContain(reserved.clientUrl)

        yield* server.etcdctl(["member", "add", reserved.name, `--peer-urls=${reserved.peerUrl}`, "--learner"])
        const initialCluster = [
          `${server.members[0].name}=${server.members[0].peerUrl}`,
          `${reserved.name}=${reserved.peerUrl}`
        ].join(",")
        const extra = yield* server.startExtra(reserved, {
          initialCluster,
          initialClusterState: "existing",
          waitFor: "serving"
        })
        const pid = Option.getOrThrow(yield* extra.pid)
        expect(alive(pid)).toBe(true)
        expect(fs.existsSync(reserved.dataDir)).toBe(true)
        const list = yield* server.etcdctl(["member", "list"])
        expect(list).toContain(reserved.peerUrl)
        expect(list).toContain(reserved.clientUrl)

        yield* extra.stop
        expect(yield* extra.pid).toEqual(Option.none())
        expect(alive(pid)).toBe(false)

        const again = yield* server.startExtra(reserved, {
          initialCluster,
          initialClusterState: "existing",
          waitFor: "serving"
        })
        const second = Option.getOrThrow(yield* again.pid)
        yield* Scope.close(scope, Exit.void)
        expect(alive(second)).toBe(false)
        expect(fs.existsSync(reserved.dataDir)).toBe(false)
      }),
    60_000
  )
})
