/** etcd's proxies in front of a test cluster: where they listen, that they forward, and that they go with their scope. */
import { EtcdProxy, EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { Etcd, Kv } from "effect-etcd"
import * as fs from "node:fs"

/** Whether a process with this pid still exists. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

layer(Layer.merge(EtcdServer.layer({ members: 3 }), NodeContext.layer), { excludeTestServices: true })(
  "EtcdProxy",
  (it) => {
    for (const kind of ["grpc-proxy", "gateway"] as const) {
      it.effect(`${kind}: a free loopback port in front of every member, gone when its scope closes`, () =>
        Effect.gen(function*() {
          const server = yield* EtcdServer.EtcdServer
          const scope = yield* Scope.make()
          const proxy = yield* EtcdProxy.make({ kind, endpoints: server.endpoints }).pipe(Scope.extend(scope))
          expect(proxy.kind).toBe(kind)
          expect(proxy.upstream).toEqual(server.endpoints)
          const [url] = proxy.endpoints
          expect(new URL(url).hostname).toBe("127.0.0.1")
          expect(["2379", "2380", ...server.endpoints.map((e) => new URL(e).port)]).not.toContain(new URL(url).port)
          // a client of the proxy alone reads what was written to the members
          yield* server.etcdctl(["put", `proxy/${kind}`, "behind"])
          const value = yield* Kv.get(`proxy/${kind}`).pipe(
            Effect.provide(Etcd.layer({ endpoints: proxy.endpoints }))
          )
          expect(value._tag === "Some" && value.value).toBe("behind")
          expect(alive(proxy.pid)).toBe(true)
          // what the run's global teardown looks for, should a crashed worker leave it behind
          expect(fs.readFileSync(`/proc/${proxy.pid}/environ`, "utf8")).toContain(
            `EFFECT_ETCD_TEST_PROXY_DIR=${EtcdServer.dataRoot()}/`
          )
          yield* Scope.close(scope, Exit.void)
          expect(alive(proxy.pid)).toBe(false)
        }))
    }

    it.effect("a cluster served over TLS is refused with a message, nothing started", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(EtcdProxy.make({ kind: "grpc-proxy", endpoints: ["https://127.0.0.1:1"] }))
        expect(error.message).toContain("plain http://")
      }).pipe(Effect.scoped))
  }
)
