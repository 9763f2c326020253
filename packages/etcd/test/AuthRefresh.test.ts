/**
 * Auth tokens across auth changes and many streams: a token that predates a change of
 * users or roles is replaced and the request sent again; streams share one token.
 */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Stream } from "effect"
import { Etcd, Kv, Lease, Lock, Watch } from "effect-etcd"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { recordingTracer, uniquePrefix, withServer } from "./support.js"

const rootPassword = "root-pw-41c2d8"
const root = { username: "root", password: Redacted.make(rootPassword) }
const authenticate = "etcdserverpb.Auth/Authenticate"

/** A client of its own, built under `tracer`, so that its Authenticate calls are counted. */
const ownClient = Layer.unwrapEffect(
  Effect.map(EtcdServer.EtcdServer, (s) => Etcd.layer({ endpoints: s.endpoints, ...root }))
)

/** An RSA key pair for etcd's JWT tokens, made with openssl, removed when the scope closes. */
const jwtKeys = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = fs.mkdtempSync("/dev/shm/effect-etcd-jwt-")
    const privateKey = path.join(dir, "jwt.key")
    const publicKey = path.join(dir, "jwt.pub")
    execFileSync("openssl", ["genrsa", "-out", privateKey, "2048"], { stdio: "ignore" })
    execFileSync("openssl", ["rsa", "-in", privateKey, "-pubout", "-out", publicKey], { stdio: "ignore" })
    return { dir, privateKey, publicKey }
  }),
  ({ dir }) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A server whose tokens are JWTs: they carry the auth store's revision, so any auth change makes them old. */
const jwtServer = Layer.unwrapScoped(Effect.map(jwtKeys, (keys) =>
  withServer({
    auth: { rootPassword },
    extraArgs: [`--auth-token=jwt,pub-key=${keys.publicKey},priv-key=${keys.privateKey},sign-method=RS256,ttl=10m`]
  }, root)))

layer(jwtServer, { excludeTestServices: true })("Auth refresh with JWT tokens", (it) => {
  it.effect("after another client changes users, the next calls refresh the token and go through", () =>
    Effect.gen(function*() {
      const s = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("authchange")
      yield* Kv.put(`${p}before`, "1")
      // the auth store's revision moves on: every token issued before is "old" now
      yield* s.etcdctl(["user", "add", `someone-${Date.now().toString(36)}:pw-123456`])
      yield* Kv.put(`${p}after`, "2")
      expect(yield* Kv.get(`${p}after`)).toEqual(Option.some("2"))
      yield* s.etcdctl(["role", "add", `role-${Date.now().toString(36)}`])
      const lease = yield* Lease.grant("30 seconds")
      yield* Lease.revoke(lease.id)
      yield* s.etcdctl(["role", "add", `role2-${Date.now().toString(36)}`])
      // a watcher created on a stream whose token predates the change
      const events = yield* Effect.scoped(Effect.gen(function*() {
        const watcher = yield* Watch.subscribe(`${p}watched`)
        yield* Kv.put(`${p}watched`, "seen")
        return yield* watcher.events.pipe(Stream.take(1), Stream.runCollect)
      }))
      expect([...events].map((e) => e.value)).toEqual(["seen"])
    }))
})

layer(withServer({ auth: { rootPassword } }, root), { excludeTestServices: true })("Auth tokens and streams", (it) => {
  it.effect("streams reuse the client's token: one Authenticate for many watches, leases and locks", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("onetoken")
      const { spans, tracer } = recordingTracer()
      yield* Effect.scoped(Effect.gen(function*() {
        for (let i = 0; i < 5; i++) {
          const watcher = yield* Watch.subscribe(`${p}w${i}`)
          yield* Kv.put(`${p}w${i}`, "x")
          yield* watcher.events.pipe(Stream.take(1), Stream.runDrain)
        }
        for (let i = 0; i < 5; i++) {
          const lease = yield* Lease.grant("30 seconds")
          yield* Lease.keepAliveOnce(lease.id)
          yield* Lease.revoke(lease.id)
        }
        yield* Lock.withLock(`${p}lock`, Effect.void)
      })).pipe(Effect.provide(ownClient), Effect.withTracer(tracer))
      expect(spans.filter((span) => span.name === authenticate).length).toBe(1)
    }))
})
