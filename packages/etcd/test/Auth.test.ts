import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Cause, Chunk, Duration, Effect, Inspectable, Layer, Logger, LogLevel, Option, Redacted, Stream } from "effect"
import { Etcd, Kv, Lease, Watch } from "effect-etcd"
import { recordingTracer, uniquePrefix, withServer } from "./support.js"

const rootPassword = "root-pw-7f3a9c"
/** Simple tokens expire after this long without use. */
const tokenTtl = Duration.seconds(2)
const idleBeyondTtl = Effect.sleep(Duration.sum(tokenTtl, Duration.millis(1_500)))

const server = { auth: { rootPassword, authTokenTtl: tokenTtl } }
const root = { username: "root", password: Redacted.make(rootPassword) }

/** Connects as `username` and runs `effect` with that client. */
const as = (username: string, password: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(EtcdServer.EtcdServer, (s) =>
    effect.pipe(
      Effect.provide(Etcd.layer({ endpoints: s.endpoints, username, password: Redacted.make(password) }))
    ))

layer(withServer(server, root), { excludeTestServices: true })("Auth", (it) => {
  it.effect("calls, watches and leases keep working across token expiry", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("expiry")
      const { spans, tracer } = recordingTracer()
      const authentications = () => spans.filter((span) => span.name === "etcdserverpb.Auth/Authenticate").length
      yield* Effect.scoped(Effect.gen(function*() {
        const lease = yield* Lease.make("2 seconds")
        const early = yield* Watch.subscribe(`${p}early`)
        for (let round = 0; round < 3; round++) {
          const before = authentications()
          yield* idleBeyondTtl
          yield* Kv.put(`${p}k`, `round ${round}`, { lease })
          expect(yield* Kv.get(`${p}k`)).toEqual(Option.some(`round ${round}`))
          // the token expired while idle and was replaced without the caller seeing it
          expect(authentications()).toBe(before + 1)
        }
        // a watcher created on a stream whose token expired meanwhile
        const late = yield* Watch.subscribe(`${p}late`)
        yield* Kv.put(`${p}early`, "e")
        yield* Kv.put(`${p}late`, "l")
        const [first] = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(early.events, 1)))
        const [second] = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(late.events, 1)))
        expect([first.value, second.value]).toEqual(["e", "l"])
        expect(yield* lease.isLost).toBe(false)
      })).pipe(
        // a client of its own, built under the tracer, so that its Authenticate calls are seen
        Effect.provide(
          Layer.unwrapEffect(Effect.map(EtcdServer.EtcdServer, (s) => Etcd.layer({ endpoints: s.endpoints, ...root })))
        ),
        Effect.withTracer(tracer)
      )
    }), 60_000)

  it.effect("a wrong password or an unknown user fails with EtcdAuthFailed, and the password is never shown", () =>
    Effect.gen(function*() {
      const wrong = yield* Effect.flip(as("root", "not-the-password")(Kv.get("k")))
      expect(wrong._tag).toBe("EtcdAuthFailed")
      expect(wrong.message).not.toContain("not-the-password")
      expect(Inspectable.format(wrong)).not.toContain("not-the-password")
      const unknown = yield* Effect.flip(as("nobody", "whatever-pw")(Kv.get("k")))
      expect(unknown._tag).toBe("EtcdAuthFailed")
      expect(unknown.message).toContain("nobody")
    }))

  it.effect("missing rights give EtcdPermissionDenied, for reads, writes and watches", () =>
    Effect.gen(function*() {
      const s = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("rights")
      const user = `reader-${p.length}${Date.now().toString(36)}`
      yield* s.etcdctl(["role", "add", `${user}-role`])
      yield* s.etcdctl(["role", "grant-permission", `${user}-role`, "read", `${p}open/`, "--prefix=true"])
      yield* s.etcdctl(["user", "add", `${user}:reader-pw`])
      yield* s.etcdctl(["user", "grant-role", user, `${user}-role`])
      yield* Kv.put(`${p}open/a`, "visible")

      const reader = as(user, "reader-pw")
      expect(yield* reader(Kv.get(`${p}open/a`))).toEqual(Option.some("visible"))
      const write = yield* Effect.flip(reader(Kv.put(`${p}open/a`, "changed")))
      expect(write._tag).toBe("EtcdPermissionDenied")
      const outside = yield* Effect.flip(reader(Kv.get(`${p}closed`)))
      expect(outside._tag).toBe("EtcdPermissionDenied")
      const watch = yield* Effect.flip(reader(Effect.scoped(Watch.subscribe(`${p}closed`))))
      expect(watch._tag).toBe("EtcdPermissionDenied")
      expect(yield* Kv.get(`${p}open/a`)).toEqual(Option.some("visible"))
    }))

  it.effect(
    "the password appears in no log line and no span attribute, an auth failure's warning included",
    () =>
      Effect.gen(function*() {
        const s = yield* EtcdServer.EtcdServer
        const p = uniquePrefix("secret")
        const user = `logged-${Date.now().toString(36)}`
        const password = `pw-${user}-4d1e`
        yield* s.etcdctl(["role", "add", `${user}-role`])
        yield* s.etcdctl(["role", "grant-permission", `${user}-role`, "readwrite", p, "--prefix=true"])
        yield* s.etcdctl(["user", "add", `${user}:${password}`])
        yield* s.etcdctl(["user", "grant-role", user, `${user}-role`])
        // every line at every level, with its annotations and its cause, as a logger would print it
        const lines: Array<string> = []
        const capture = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ annotations, cause, logLevel, message }) => {
            lines.push(Inspectable.format({ logLevel: logLevel.label, message, annotations: [...annotations] }))
            if (!Cause.isEmpty(cause)) lines.push(Cause.pretty(cause, { renderErrorCause: true }))
          })
        )
        const { spans, tracer } = recordingTracer()
        yield* Effect.scoped(Effect.gen(function*() {
          const lease = yield* Lease.make("30 seconds")
          yield* Kv.put(`${p}k`, "v", { lease })
          // the token expires while idle and is replaced with the password
          yield* idleBeyondTtl
          expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("v"))
          // the user goes, and its token with it: revoking the lease when the scope closes
          // needs a new token, which the password no longer gets, and the client warns
          yield* s.etcdctl(["user", "delete", user])
        })).pipe(
          Effect.provide(Etcd.layer({ endpoints: s.endpoints, username: user, password: Redacted.make(password) })),
          Effect.provide(capture),
          Logger.withMinimumLogLevel(LogLevel.All),
          Effect.withTracer(tracer)
        )
        expect(spans.map((span) => span.name)).toContain("etcdserverpb.Auth/Authenticate")
        const attributes = spans.flatMap((span) => [...span.attributes.values()].map((v) => Inspectable.format(v)))
        expect(attributes.some((value) => value.includes(password) || value.includes(rootPassword))).toBe(false)
        // the path logged: the lease could not be revoked for want of credentials
        expect(lines.some((line) => line.includes("could not revoke lease"))).toBe(true)
        expect(lines.filter((line) => line.includes(password) || line.includes(rootPassword))).toEqual([])
      }),
    30_000
  )
})
