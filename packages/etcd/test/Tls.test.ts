import { EtcdServer } from "@effect-etcd/testing"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { expect, layer } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option } from "effect"
import { Etcd, Kv, Lease } from "effect-etcd"
import { uniquePrefix } from "./support.js"

/** The server's TLS material; the layers below always start with TLS. */
const material = Effect.flatMap(EtcdServer.EtcdServer, (server) =>
  Option.match(server.tls, {
    onNone: () => Effect.dieMessage("the server was started without TLS"),
    onSome: Effect.succeed
  }))

/** Connects with `options`, writes and reads a key back, and returns the value read. */
const roundTrip = (options: Etcd.EtcdOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const etcd = yield* Etcd.make({ connectTimeout: "2 seconds", ...options })
    const key = `${uniquePrefix("tls")}k`
    yield* Kv.put(key, "over TLS").pipe(Effect.provideService(Etcd.Etcd, etcd))
    return yield* Kv.get(key).pipe(Effect.provideService(Etcd.Etcd, etcd))
  }))

/**
 * Connects with `options` and holds a 2 s lease for 3 s: whether its keepalives, which go on
 * a stream of the client's own (node:http2, not grpc-js), kept it alive over TLS, and whether
 * the revoke when its scope closed (also sent over node:http2) took it away.
 */
const leaseKeptAlive = (options: Etcd.EtcdOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const etcd = yield* Etcd.make({ connectTimeout: "2 seconds", ...options })
    return yield* Effect.gen(function*() {
      const held = yield* Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lease.make("2 seconds")
        yield* Effect.sleep(Duration.seconds(3))
        const info = yield* Lease.timeToLive(lease.id)
        return { id: lease.id, lost: yield* lease.isLost, alive: info.ttl > 0 }
      }))
      const after = yield* Effect.either(Lease.timeToLive(held.id))
      return {
        lost: held.lost,
        alive: held.alive,
        revoked: after._tag === "Left" && after.left._tag === "LeaseNotFound"
      }
    }).pipe(Effect.provideService(Etcd.Etcd, etcd))
  }))

/**
 * Connects with `options`, grants a lease and renews it once with `Lease.keepAliveOnce`: a call
 * on the member's grpc-js channel, which is made when first needed, from the same TLS settings.
 * Returns the TTL the renewal answered.
 */
const renewedOnce = (options: Etcd.EtcdOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const etcd = yield* Etcd.make({ connectTimeout: "2 seconds", ...options })
    return yield* Effect.scoped(Effect.gen(function*() {
      const lease = yield* Lease.make("30 seconds")
      return yield* Lease.keepAliveOnce(lease.id)
    })).pipe(Effect.provideService(Etcd.Etcd, etcd))
  }))

layer(EtcdServer.layer({ tls: true }), { excludeTestServices: true })("TLS", (it) => {
  it.effect("https endpoints with the CA as PEM text work", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const tls = yield* material
      expect(server.endpoints.every((endpoint) => endpoint.startsWith("https://"))).toBe(true)
      expect(yield* roundTrip({ endpoints: server.endpoints, tls: { ca: tls.ca } })).toEqual(Option.some("over TLS"))
    }))

  it.effect("the CA read from a file, and ETCD_CA_FILE through layerConfig, work", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const files = yield* material
      const tls = yield* Etcd.readTlsFiles({ caFile: files.caFile }).pipe(Effect.provide(NodeFileSystem.layer))
      expect(yield* roundTrip({ endpoints: server.endpoints, tls })).toEqual(Option.some("over TLS"))

      const provider = ConfigProvider.fromMap(
        new Map([["ETCD_ENDPOINTS", server.endpoints.join(",")], ["ETCD_CA_FILE", files.caFile]])
      )
      const key = `${uniquePrefix("tls-config")}k`
      const read = yield* Kv.put(key, "configured").pipe(
        Effect.zipRight(Kv.get(key)),
        Effect.provide(Etcd.layerConfig(Etcd.config).pipe(Layer.provide(NodeFileSystem.layer))),
        Effect.withConfigProvider(provider)
      )
      expect(read).toEqual(Option.some("configured"))
    }))

  it.effect("a CA that did not sign the server's certificate fails with EtcdTlsError naming the endpoint", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const tls = yield* material
      const error = yield* Effect.flip(roundTrip({ endpoints: server.endpoints, tls: { ca: tls.wrongCa } }))
      expect(error._tag).toBe("EtcdTlsError")
      expect(error.message).toContain(server.endpoints[0])
    }))

  it.effect("the server name override: a name in the certificate works, another fails with EtcdTlsError", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const tls = yield* material
      const ok = yield* roundTrip({ endpoints: server.endpoints, tls: { ca: tls.ca, serverName: "localhost" } })
      expect(ok).toEqual(Option.some("over TLS"))
      // the keepalive stream checks the certificate against the same name
      expect(yield* leaseKeptAlive({ endpoints: server.endpoints, tls: { ca: tls.ca, serverName: "localhost" } }))
        .toEqual({ lost: false, alive: true, revoked: true })
      // and so does the grpc-js channel of a single renewal
      expect(yield* renewedOnce({ endpoints: server.endpoints, tls: { ca: tls.ca, serverName: "localhost" } }))
        .toBe(30)
      const error = yield* Effect.flip(
        roundTrip({ endpoints: server.endpoints, tls: { ca: tls.ca, serverName: "etcd.elsewhere.test" } })
      )
      expect(error._tag).toBe("EtcdTlsError")
    }))

  it.effect("a missing TLS file fails with EtcdTlsError naming the file", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Etcd.readTlsFiles({ caFile: "/dev/shm/no-such-dir/ca.crt" }).pipe(Effect.provide(NodeFileSystem.layer))
      )
      expect(error._tag).toBe("EtcdTlsError")
      expect(error.message).toContain("/dev/shm/no-such-dir/ca.crt")
    }))

  it.effect("a plaintext client of a TLS member fails within its connect timeout", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const plain = server.endpoints.map((endpoint) => endpoint.replace("https://", "http://"))
      const error = yield* Effect.flip(Etcd.make({ endpoints: plain, connectTimeout: "1 second" }).pipe(Effect.scoped))
      expect(["EtcdConnectionFailed", "EtcdTlsError"]).toContain(error._tag)
      expect(error.message).toContain(plain[0])
    }))
})

layer(EtcdServer.layer({ tls: { clientCertAuth: true } }), { excludeTestServices: true })("mTLS", (it) => {
  it.effect("a client certificate and key (PEM text or files) are accepted", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const tls = yield* material
      const inline = yield* roundTrip({
        endpoints: server.endpoints,
        tls: { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey }
      })
      expect(inline).toEqual(Option.some("over TLS"))
      // the keepalive stream presents the same client certificate
      const kept = yield* leaseKeptAlive({
        endpoints: server.endpoints,
        tls: { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey }
      })
      expect(kept).toEqual({ lost: false, alive: true, revoked: true })
      // and so does the grpc-js channel of a single renewal
      const renewed = yield* renewedOnce({
        endpoints: server.endpoints,
        tls: { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey }
      })
      expect(renewed).toBe(30)
      const fromFiles = yield* Etcd.readTlsFiles({
        caFile: tls.caFile,
        certFile: tls.clientCertFile,
        keyFile: tls.clientKeyFile
      }).pipe(Effect.provide(NodeFileSystem.layer))
      expect(yield* roundTrip({ endpoints: server.endpoints, tls: fromFiles })).toEqual(Option.some("over TLS"))
    }))

  it.effect("without a client certificate the member refuses the client: a tagged error, no hang", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const tls = yield* material
      const error = yield* Effect.flip(roundTrip({ endpoints: server.endpoints, tls: { ca: tls.ca } }))
      expect(["EtcdTlsError", "EtcdConnectionFailed"]).toContain(error._tag)
      expect(error.message).toContain(server.endpoints[0])
    }))

  it.effect("a certificate without its key is refused before any connection", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const tls = yield* material
      const error = yield* Effect.flip(
        roundTrip({ endpoints: server.endpoints, tls: { ca: tls.ca, cert: tls.clientCert } })
      )
      expect(error._tag).toBe("EtcdTlsError")
      expect(error.message).toContain("needs its key")
    }))

  it.effect("a key that is not PEM is refused before any connection, naming the problem", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const tls = yield* material
      const error = yield* Effect.flip(
        roundTrip({ endpoints: server.endpoints, tls: { ca: tls.ca, cert: tls.clientCert, key: "not a key" } })
      )
      expect(error._tag).toBe("EtcdTlsError")
      expect(error.message).toContain("invalid TLS material")
    }))
})
