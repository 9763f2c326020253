import { EtcdServer } from "@effect-etcd/testing"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { Etcd, Kv } from "effect-etcd"
import { closedPort, recordingTracer, silentPort, uniquePrefix, withServer } from "./support.js"

describe("Etcd connection", () => {
  it.scopedLive("a closed port fails the layer with EtcdConnectionFailed naming the endpoint", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const endpoint = `http://127.0.0.1:${port}`
      const error = yield* Effect.flip(Etcd.make({ endpoints: [endpoint], connectTimeout: "1 second" }))
      expect(error._tag).toBe("EtcdConnectionFailed")
      if (error._tag !== "EtcdConnectionFailed") return
      expect(error.endpoints).toEqual([endpoint])
      expect(error.message).toContain(endpoint)
    }))

  it.scopedLive("a member that accepts but never answers fails within the connect timeout", () =>
    Effect.gen(function*() {
      const ports = [yield* silentPort, yield* silentPort]
      const endpoints = ports.map((port) => `127.0.0.1:${port}`)
      const error = yield* Effect.flip(Etcd.make({ endpoints, connectTimeout: "500 millis" }))
      expect(error).toMatchObject({ _tag: "EtcdConnectionFailed", endpoints })
      expect(error.message).toContain(endpoints[1])
    }))

  it.scopedLive("an endpoint that cannot be parsed fails with EtcdInvalidArgument", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Etcd.make({ endpoints: ["http://127.0.0.1:notaport"] }))
      expect(error._tag).toBe("EtcdInvalidArgument")
      const none = yield* Effect.flip(Etcd.make({ endpoints: [] }))
      expect(none._tag).toBe("EtcdInvalidArgument")
    }))
})

layer(withServer(), { excludeTestServices: true })("Etcd with a server", (it) => {
  it.scoped("connects through a live member when the first endpoint is down", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const dead = `http://127.0.0.1:${yield* closedPort}`
      const client = yield* Etcd.make({ endpoints: [dead, ...server.endpoints], connectTimeout: "2 seconds" })
      const p = uniquePrefix("failover")
      const value = yield* Kv.put(`${p}k`, "v").pipe(
        Effect.zipRight(Kv.get(`${p}k`)),
        Effect.provideService(Etcd.Etcd, client)
      )
      expect(value).toEqual(Option.some("v"))
    }))

  it.effect("layerConfig reads ETCD_ENDPOINTS (comma-separated) from the config", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("config")
      const provider = ConfigProvider.fromMap(new Map([["ETCD_ENDPOINTS", ` ${server.endpoints.join(" , ")} `]]))
      const value = yield* Kv.put(`${p}k`, "from config").pipe(
        Effect.zipRight(Kv.get(`${p}k`)),
        Effect.provide(Etcd.layerConfig(Etcd.config).pipe(Layer.provide(NodeFileSystem.layer))),
        Effect.withConfigProvider(provider)
      )
      expect(value).toEqual(Option.some("from config"))
    }))

  it.effect("ETCD_REQUIRE_LEADER sets requireLeader; a client with it works, and a bad value is refused", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const read = (entries: ReadonlyArray<[string, string]>) =>
        Effect.withConfigProvider(Etcd.config, ConfigProvider.fromMap(new Map(entries)))
      expect((yield* read([["ETCD_REQUIRE_LEADER", "true"]])).requireLeader).toBe(true)
      expect((yield* read([["ETCD_REQUIRE_LEADER", "false"]])).requireLeader).toBe(false)
      expect((yield* read([])).requireLeader).toBeUndefined()
      // a member with a leader answers the calls that carry hasleader as any other
      const p = uniquePrefix("require-leader-config")
      const value = yield* Kv.put(`${p}k`, "v").pipe(
        Effect.zipRight(Kv.get(`${p}k`)),
        Effect.provide(Etcd.layer({ endpoints: server.endpoints, requireLeader: true }))
      )
      expect(value).toEqual(Option.some("v"))
      const refused = yield* Effect.flip(Etcd.make({ endpoints: server.endpoints, requireLeader: "yes" as never }))
      expect(refused).toMatchObject({ _tag: "EtcdInvalidArgument", option: "requireLeader" })
    }).pipe(Effect.scoped))

  it.effect("ETCD_NAMESPACE confines the configured client to its prefix", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("config-ns")
      const provider = ConfigProvider.fromMap(
        new Map([["ETCD_ENDPOINTS", server.endpoints.join(",")], ["ETCD_NAMESPACE", `${p}tenant/`]])
      )
      const keys = yield* Kv.put("k", "v").pipe(
        Effect.zipRight(Kv.keysPrefix("")),
        Effect.provide(Etcd.layerConfig(Etcd.config).pipe(Layer.provide(NodeFileSystem.layer))),
        Effect.withConfigProvider(provider)
      )
      expect(keys).toEqual(["k"])
      expect(yield* Kv.keysPrefix(p)).toEqual([`${p}tenant/k`])
    }))

  it.effect("the default config reads credentials as Redacted", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(
        new Map([["ETCD_ENDPOINTS", "http://127.0.0.1:1"], ["ETCD_USERNAME", "u"], ["ETCD_PASSWORD", "secret"]])
      )
      const options = yield* Effect.withConfigProvider(Etcd.config, provider)
      expect(options.username).toBe("u")
      expect(Redacted.isRedacted(options.password)).toBe(true)
      expect(String(options.password)).not.toContain("secret")
    }))

  it.effect("the default config reads TLS files, the server name, timeouts and the retry bound", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(
        new Map([
          ["ETCD_ENDPOINTS", "https://127.0.0.1:1"],
          ["ETCD_CA_FILE", "/pki/ca.crt"],
          ["ETCD_CERT_FILE", "/pki/client.crt"],
          ["ETCD_KEY_FILE", "/pki/client.key"],
          ["ETCD_TLS_SERVER_NAME", "etcd.internal"],
          ["ETCD_REQUEST_TIMEOUT", "3 seconds"],
          ["ETCD_MAX_RETRIES", "0"]
        ])
      )
      const options = yield* Effect.withConfigProvider(Etcd.config, provider)
      expect(options.tls).toEqual({
        caFile: "/pki/ca.crt",
        certFile: "/pki/client.crt",
        keyFile: "/pki/client.key",
        serverName: "etcd.internal"
      })
      expect(options.requestTimeout).toEqual(Duration.seconds(3))
      expect(options.retrySchedule).toBeDefined()
      const invalid = ConfigProvider.fromMap(new Map([["ETCD_MAX_RETRIES", "-1"]]))
      expect((yield* Effect.flip(Effect.withConfigProvider(Etcd.config, invalid)))._op).toBe("InvalidData")
    }))

  it.effect("closing the scope closes the channels: later calls fail instead of hanging", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const scope = yield* Scope.make()
      const client = yield* Scope.extend(Etcd.make({ endpoints: server.endpoints }), scope)
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Effect.exit(Kv.get("any").pipe(Effect.provideService(Etcd.Etcd, client)))
      expect(Exit.isFailure(exit)).toBe(true)
    }))

  it.effect("every RPC runs in a client span named after the method, with the member's address", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const { spans, tracer } = recordingTracer()
      const p = uniquePrefix("spans")
      yield* Kv.put(`${p}k`, "v").pipe(
        Effect.provide(Etcd.layer({ endpoints: server.endpoints, spanAttributes: { "app.name": "tests" } })),
        Effect.withTracer(tracer)
      )
      const put = spans.find((span) => span.name === "etcdserverpb.KV/Put")
      expect(put?.kind).toBe("client")
      expect(put?.attributes.get("rpc.system")).toBe("grpc")
      expect(put?.attributes.get("rpc.method")).toBe("Put")
      expect(put?.attributes.get("server.address")).toBe("127.0.0.1")
      expect(put?.attributes.get("app.name")).toBe("tests")
    }))
})
