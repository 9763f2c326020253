/** Auth administration against a real etcd with auth enabled, as root. */
import { EtcdServer } from "@effect-etcd/testing"
import { expect, layer } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { Auth, Etcd, KeyRange, Kv } from "effect-etcd"
import { uniquePrefix, withServer } from "./support.js"

const rootPassword = "root-pw-admin"
const root = { username: "root", password: Redacted.make(rootPassword) }

/** Runs `effect` with a client signed in as `username`. */
const as = (username: string, password: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(EtcdServer.EtcdServer, (s) =>
    effect.pipe(
      Effect.provide(Etcd.layer({ endpoints: s.endpoints, username, password: Redacted.make(password) }))
    ))

let counter = 0
const uniqueName = (what: string) => `${what}-${process.pid}-${(counter++).toString(36)}`

layer(withServer({ auth: { rootPassword } }, root), { excludeTestServices: true })("Auth administration", (it) => {
  it.effect("a user with a read-only role on a prefix reads there, cannot write, and cannot read elsewhere", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("readonly")
      const user = uniqueName("reader")
      const role = uniqueName("read-prefix")
      yield* Kv.put(`${p}visible/k`, "v")
      yield* Kv.put(`${p}hidden/k`, "h")
      yield* Auth.addRole(role)
      yield* Auth.grantPermission(role, "read", KeyRange.prefix(`${p}visible/`))
      yield* Auth.addUser(user, Redacted.make("reader-pw"))
      yield* Auth.grantRole(user, role)
      expect(yield* Auth.getUser(user)).toEqual({ name: user, roles: [role] })
      const { permissions } = yield* Auth.getRole(role)
      expect(permissions).toEqual([{ type: "read", keys: KeyRange.prefix(`${p}visible/`) }])

      const asReader = as(user, "reader-pw")
      expect(yield* asReader(Kv.get(`${p}visible/k`))).toEqual(Option.some("v"))
      expect((yield* Effect.flip(asReader(Kv.put(`${p}visible/k`, "w"))))._tag).toBe("EtcdPermissionDenied")
      expect((yield* Effect.flip(asReader(Kv.get(`${p}hidden/k`))))._tag).toBe("EtcdPermissionDenied")
      expect(yield* Kv.get(`${p}visible/k`)).toEqual(Option.some("v"))

      // without the role, not even the prefix is readable
      yield* Auth.revokeRole(user, role)
      expect((yield* Effect.flip(asReader(Kv.get(`${p}visible/k`))))._tag).toBe("EtcdPermissionDenied")
    }))

  it.effect("write and readwrite permissions on a key and a range; revoking one takes it away", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("rw")
      const user = uniqueName("writer")
      const role = uniqueName("write-role")
      yield* Auth.addRole(role)
      yield* Auth.grantPermission(role, "write", `${p}only`)
      yield* Auth.grantPermission(role, "readwrite", KeyRange.between(`${p}a`, `${p}m`))
      yield* Auth.addUser(user, Redacted.make("writer-pw"))
      yield* Auth.grantRole(user, role)
      const asWriter = as(user, "writer-pw")
      yield* asWriter(Kv.put(`${p}only`, "1"))
      expect((yield* Effect.flip(asWriter(Kv.get(`${p}only`))))._tag).toBe("EtcdPermissionDenied")
      yield* asWriter(Kv.put(`${p}b`, "2"))
      expect(yield* asWriter(Kv.get(`${p}b`))).toEqual(Option.some("2"))
      expect((yield* Effect.flip(asWriter(Kv.put(`${p}z`, "3"))))._tag).toBe("EtcdPermissionDenied")
      expect((yield* Auth.getRole(role)).permissions).toEqual([
        { type: "readwrite", keys: KeyRange.between(`${p}a`, `${p}m`) },
        { type: "write", keys: KeyRange.key(`${p}only`) }
      ])

      yield* Auth.revokePermission(role, `${p}only`)
      expect((yield* Effect.flip(asWriter(Kv.put(`${p}only`, "4"))))._tag).toBe("EtcdPermissionDenied")
      expect((yield* Auth.getRole(role)).permissions).toHaveLength(1)
    }))

  it.effect("users and roles are listed, found, changed and deleted; missing or duplicate ones fail with tags", () =>
    Effect.gen(function*() {
      const user = uniqueName("someone")
      const role = uniqueName("some-role")
      yield* Auth.addUser(user, Redacted.make("first"))
      yield* Auth.addRole(role)
      expect(yield* Auth.listUsers).toContain(user)
      expect(yield* Auth.listUsers).toContain("root")
      expect(yield* Auth.listRoles).toContain(role)
      expect((yield* Effect.flip(Auth.addUser(user, Redacted.make("again"))))._tag).toBe("EtcdAlreadyExists")
      expect((yield* Effect.flip(Auth.addRole(role)))._tag).toBe("EtcdAlreadyExists")

      yield* Auth.changePassword(user, Redacted.make("second"))
      expect((yield* Effect.flip(as(user, "first")(Kv.get("k"))))._tag).toBe("EtcdAuthFailed")
      // signed in with the new password: the call itself is refused for lack of a role
      expect((yield* Effect.flip(as(user, "second")(Kv.get("k"))))._tag).toBe("EtcdPermissionDenied")

      yield* Auth.deleteUser(user)
      yield* Auth.deleteRole(role)
      expect(yield* Auth.listUsers).not.toContain(user)
      expect(yield* Auth.listRoles).not.toContain(role)
      expect((yield* Effect.flip(Auth.getUser(user)))._tag).toBe("EtcdNotFound")
      expect((yield* Effect.flip(Auth.getRole(role)))._tag).toBe("EtcdNotFound")
      expect((yield* Effect.flip(Auth.grantRole("root", role)))._tag).toBe("EtcdNotFound")
    }))

  it.effect("a namespaced client grants and lists permissions inside its namespace", () =>
    Effect.gen(function*() {
      const p = uniquePrefix("ns")
      const user = uniqueName("tenant-user")
      const role = uniqueName("tenant-role")
      yield* Auth.addRole(role)
      yield* Effect.gen(function*() {
        yield* Auth.grantPermission(role, "readwrite", KeyRange.prefix("app/"))
        yield* Auth.grantPermission(role, "read", KeyRange.all)
        expect((yield* Auth.getRole(role)).permissions).toEqual([
          { type: "read", keys: KeyRange.all },
          { type: "readwrite", keys: KeyRange.prefix("app/") }
        ])
      }).pipe(Etcd.withNamespace(p))
      // the server holds them under the namespace's prefix
      expect((yield* Auth.getRole(role)).permissions).toEqual([
        { type: "read", keys: KeyRange.prefix(p) },
        { type: "readwrite", keys: KeyRange.prefix(`${p}app/`) }
      ])
      yield* Kv.put(`${p}outside-app`, "o")
      yield* Kv.put(`${uniquePrefix("elsewhere")}k`, "e")
      yield* Auth.addUser(user, Redacted.make("tenant-pw"))
      yield* Auth.grantRole(user, role)
      const asTenant = as(user, "tenant-pw")
      yield* asTenant(Kv.put("app/x", "1").pipe(Etcd.withNamespace(p)))
      expect(yield* Kv.get(`${p}app/x`)).toEqual(Option.some("1"))
      expect(yield* asTenant(Kv.get("outside-app").pipe(Etcd.withNamespace(p)))).toEqual(Option.some("o"))
      expect((yield* Effect.flip(asTenant(Kv.put("outside-app", "2").pipe(Etcd.withNamespace(p)))))._tag).toBe(
        "EtcdPermissionDenied"
      )
      yield* Auth.revokePermission(role, KeyRange.prefix("app/")).pipe(Etcd.withNamespace(p))
      expect((yield* Auth.getRole(role)).permissions).toEqual([{ type: "read", keys: KeyRange.prefix(p) }])
    }))

  it.effect("auth can be turned off and on again", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const p = uniquePrefix("toggle")
      const anonymous = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.provide(effect, Etcd.layer({ endpoints: server.endpoints }))
      const refused = yield* Effect.flip(anonymous(Kv.put(`${p}k`, "before")))
      // a call without a token, with auth on
      expect(refused).toMatchObject({ _tag: "EtcdInvalidArgument", reason: "user name is empty" })
      yield* Auth.disable
      yield* anonymous(Kv.put(`${p}k`, "open"))
      expect(yield* anonymous(Kv.get(`${p}k`))).toEqual(Option.some("open"))
      yield* Auth.enable
      expect((yield* Effect.flip(anonymous(Kv.put(`${p}k`, "after"))))._tag).toBe(refused._tag)
      // root's client takes a new token by itself
      yield* Kv.put(`${p}k`, "root")
      expect(yield* Kv.get(`${p}k`)).toEqual(Option.some("root"))
    }))
})
