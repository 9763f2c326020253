/**
 * Administering etcd's access control: turning auth on and off, users, roles and the
 * permissions of roles on keys, as clientv3's `Auth` interface and the `etcd3` package's
 * `user` and `role` calls offer them. Signing in is not here: give `username` and
 * `password` to `Etcd.layer`.
 *
 * A permission covers one key, a prefix or any `KeyRange`. A namespaced client (see
 * `Etcd.namespaced`) grants and revokes permissions inside its namespace and lists only
 * the permissions inside it, without the prefix, as it does keys.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { Auth, KeyRange } from "effect-etcd"
 *
 * // as root: a user who may read the keys under config/ and nothing else
 * const provision = Effect.gen(function*() {
 *   yield* Auth.addRole("config-reader")
 *   yield* Auth.grantPermission("config-reader", "read", KeyRange.prefix("config/"))
 *   yield* Auth.addUser("reporter", Redacted.make("s3cret"))
 *   yield* Auth.grantRole("reporter", "config-reader")
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Etcd } from "./Etcd.js"
import * as EtcdError from "./EtcdError.js"
import * as Printable from "./internal/base/printable.js"
import { type Bytes, toBuffer } from "./internal/data/codec.js"
import type { CallOptions } from "./internal/transport/transport.js"
import type { Permission__Output } from "./internal/wire/proto/generated/authpb/Permission.js"
import { methods } from "./internal/wire/proto/loader.js"
import * as KeyRange from "./KeyRange.js"

// users and roles print as their JSON (String included)
const UserProto = Printable.Proto("Auth.User")
const RoleProto = Printable.Proto("Auth.Role")

/**
 * What a permission allows on its keys.
 *
 * @since 0.1.0
 * @category models
 */
export type PermissionType = "read" | "write" | "readwrite"

/**
 * A role's permission on a set of keys.
 *
 * @since 0.1.0
 * @category models
 */
export interface Permission {
  readonly type: PermissionType
  readonly keys: KeyRange.KeyRange
}

/**
 * A user and the roles granted to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface User {
  readonly name: string
  readonly roles: ReadonlyArray<string>
}

/**
 * A role and its permissions.
 *
 * @since 0.1.0
 * @category models
 */
export interface Role {
  readonly name: string
  readonly permissions: ReadonlyArray<Permission>
}

const read: CallOptions = { idempotency: "repeatable" }
const write: CallOptions = { idempotency: "mutation" }

const withinCall = EtcdError.within("call")
const withinLookup = EtcdError.within("lookup")
const withinCreate = EtcdError.within("create")
const withinUpdate = EtcdError.within("update")

const call = <Req, Res>(
  method: grpc.MethodDefinition<Req, Res>,
  request: Req,
  options: CallOptions
): Effect.Effect<Res, EtcdError.EtcdError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) => etcd.transport.unary(method, request, options))

/**
 * Turns auth on (clientv3 `AuthEnable`, etcd3 `auth.authEnable`). The `root` user must
 * exist first, with the `root` role, or this fails with `PreconditionFailed`.
 *
 * @since 0.1.0
 * @category auth
 */
export const enable: Effect.Effect<void, EtcdError.StateChangeError, Etcd> = Effect.asVoid(
  call(methods.auth.authEnable, {}, write)
).pipe(EtcdError.within("stateChange"))

/**
 * Turns auth off (clientv3 `AuthDisable`, etcd3 `auth.authDisable`).
 *
 * @since 0.1.0
 * @category auth
 */
export const disable: Effect.Effect<void, EtcdError.AdminWriteError, Etcd> = Effect.asVoid(
  call(methods.auth.authDisable, {}, write)
).pipe(EtcdError.within("adminWrite"))

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

/**
 * Adds a user (clientv3 `UserAdd`, etcd3 `user(name).create(password)`). Without a
 * password the user can only sign in with a client certificate whose common name is its
 * name. Fails with `AlreadyExists` when the user exists.
 *
 * @since 0.1.0
 * @category users
 */
export const addUser = (
  name: string,
  password?: Redacted.Redacted<string> | undefined
): Effect.Effect<void, EtcdError.CreateError, Etcd> =>
  Effect.asVoid(call(methods.auth.userAdd, {
    name,
    password: password === undefined ? "" : Redacted.value(password),
    options: { noPassword: password === undefined }
  }, write)).pipe(withinCreate)

/**
 * A user and its roles (clientv3 `UserGet`, etcd3 `user(name).roles()`); `NotFound` when
 * there is no such user.
 *
 * @since 0.1.0
 * @category users
 */
export const getUser = (name: string): Effect.Effect<User, EtcdError.LookupError, Etcd> =>
  Effect.map(
    call(methods.auth.userGet, { name }, read),
    (response) => Printable.make(UserProto, { name, roles: response.roles })
  ).pipe(withinLookup)

/**
 * The names of every user (clientv3 `UserList`, etcd3 `getUsers`).
 *
 * @since 0.1.0
 * @category users
 */
export const listUsers: Effect.Effect<ReadonlyArray<string>, EtcdError.CallError, Etcd> = Effect.map(
  call(methods.auth.userList, {}, read),
  (response) => response.users
).pipe(withinCall)

/**
 * Deletes a user (clientv3 `UserDelete`, etcd3 `user(name).delete()`).
 *
 * @since 0.1.0
 * @category users
 */
export const deleteUser = (name: string): Effect.Effect<void, EtcdError.UpdateError, Etcd> =>
  Effect.asVoid(call(methods.auth.userDelete, { name }, write)).pipe(withinUpdate)

/**
 * Sets a user's password (clientv3 `UserChangePassword`, etcd3 `user(name).setPassword`).
 * Tokens the user holds stay valid until they expire.
 *
 * @since 0.1.0
 * @category users
 */
export const changePassword = (
  name: string,
  password: Redacted.Redacted<string>
): Effect.Effect<void, EtcdError.UpdateError, Etcd> =>
  Effect.asVoid(call(methods.auth.userChangePassword, { name, password: Redacted.value(password) }, write)).pipe(
    withinUpdate
  )

/**
 * Grants a role to a user (clientv3 `UserGrantRole`, etcd3 `user(name).addRole(role)`).
 *
 * @since 0.1.0
 * @category users
 */
export const grantRole = (user: string, role: string): Effect.Effect<void, EtcdError.UpdateError, Etcd> =>
  Effect.asVoid(call(methods.auth.userGrantRole, { user, role }, write)).pipe(withinUpdate)

/**
 * Takes a role from a user (clientv3 `UserRevokeRole`, etcd3 `user(name).removeRole(role)`).
 *
 * @since 0.1.0
 * @category users
 */
export const revokeRole = (user: string, role: string): Effect.Effect<void, EtcdError.UpdateError, Etcd> =>
  Effect.asVoid(call(methods.auth.userRevokeRole, { name: user, role }, write)).pipe(withinUpdate)

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/**
 * Adds a role without permissions (clientv3 `RoleAdd`, etcd3 `role(name).create()`).
 *
 * @since 0.1.0
 * @category roles
 */
export const addRole = (name: string): Effect.Effect<void, EtcdError.CreateError, Etcd> =>
  Effect.asVoid(call(methods.auth.roleAdd, { name }, write)).pipe(withinCreate)

const zero = KeyRange.all.start
const isZero = (bytes: Uint8Array | undefined): boolean => bytes !== undefined && bytes.length === 1 && bytes[0] === 0

/** A range of the client's keyspace as a range of the server's: the namespace's prefix added. */
const intoNamespace = (namespace: Uint8Array | undefined, keys: KeyRange.KeyRange) => {
  if (namespace === undefined || namespace.length === 0) {
    return { key: toBuffer(keys.start), rangeEnd: keys.end === undefined ? Buffer.alloc(0) : toBuffer(keys.end) }
  }
  const prefix = toBuffer(namespace)
  return {
    key: isZero(keys.start) ? prefix : Buffer.concat([prefix, keys.start]),
    rangeEnd: keys.end === undefined
      ? Buffer.alloc(0)
      : isZero(keys.end)
      ? toBuffer(KeyRange.prefixEnd(prefix))
      : Buffer.concat([prefix, keys.end])
  }
}

/** A permission of the server as the client sees it; none when it lies outside the namespace. */
const fromServer = (namespace: Uint8Array | undefined, permission: Permission__Output): Array<Permission> => {
  const type: PermissionType = permission.permType === "READ"
    ? "read"
    : permission.permType === "WRITE"
    ? "write"
    : "readwrite"
  const key = permission.key
  const end = permission.rangeEnd.length === 0 ? undefined : permission.rangeEnd
  if (namespace === undefined || namespace.length === 0) {
    return [{ type, keys: { _tag: "KeyRange", start: isZero(key) ? zero : key, end: isZero(end) ? zero : end } }]
  }
  const prefix = toBuffer(namespace)
  if (!key.subarray(0, prefix.length).equals(prefix)) return []
  const start = key.length === prefix.length ? zero : key.subarray(prefix.length)
  if (end === undefined) return [{ type, keys: { _tag: "KeyRange", start, end } }]
  if (end.equals(toBuffer(KeyRange.prefixEnd(prefix)))) return [{ type, keys: { _tag: "KeyRange", start, end: zero } }]
  if (!end.subarray(0, prefix.length).equals(prefix)) return []
  return [{ type, keys: { _tag: "KeyRange", start, end: end.subarray(prefix.length) } }]
}

/**
 * A role and its permissions (clientv3 `RoleGet`, etcd3 `role(name).permissions()`);
 * `NotFound` when there is no such role.
 *
 * @since 0.1.0
 * @category roles
 */
export const getRole = (name: string): Effect.Effect<Role, EtcdError.LookupError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.map(
      call(methods.auth.roleGet, { role: name }, read),
      (response) =>
        Printable.make(RoleProto, {
          name,
          permissions: response.perm.flatMap((perm) => fromServer(etcd.namespace, perm))
        })
    )).pipe(withinLookup)

/**
 * The names of every role (clientv3 `RoleList`, etcd3 `getRoles`).
 *
 * @since 0.1.0
 * @category roles
 */
export const listRoles: Effect.Effect<ReadonlyArray<string>, EtcdError.CallError, Etcd> = Effect.map(
  call(methods.auth.roleList, {}, read),
  (response) => response.roles
).pipe(withinCall)

/**
 * Deletes a role (clientv3 `RoleDelete`, etcd3 `role(name).delete()`).
 *
 * @since 0.1.0
 * @category roles
 */
export const deleteRole = (name: string): Effect.Effect<void, EtcdError.UpdateError, Etcd> =>
  Effect.asVoid(call(methods.auth.roleDelete, { role: name }, write)).pipe(withinUpdate)

/**
 * Lets a role read, write or both on one key (a string or bytes), or on a `KeyRange`
 * (clientv3 `RoleGrantPermission`, etcd3 `role(name).grant({ permission, range })`).
 *
 * @since 0.1.0
 * @category roles
 */
export const grantPermission = (
  role: string,
  type: PermissionType,
  keys: Bytes | KeyRange.KeyRange
): Effect.Effect<void, EtcdError.UpdateError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.asVoid(call(methods.auth.roleGrantPermission, {
      name: role,
      perm: {
        permType: type === "read" ? "READ" : type === "write" ? "WRITE" : "READWRITE",
        ...intoNamespace(etcd.namespace, KeyRange.fromInput(keys))
      }
    }, write))).pipe(withinUpdate)

/**
 * Takes a role's permission on exactly these keys (clientv3 `RoleRevokePermission`,
 * etcd3 `role(name).revoke(...)`): the key or range must be the one granted.
 *
 * @since 0.1.0
 * @category roles
 */
export const revokePermission = (
  role: string,
  keys: Bytes | KeyRange.KeyRange
): Effect.Effect<void, EtcdError.UpdateError, Etcd> =>
  Effect.flatMap(Etcd, (etcd) =>
    Effect.asVoid(call(methods.auth.roleRevokePermission, {
      role,
      ...intoNamespace(etcd.namespace, KeyRange.fromInput(keys))
    }, write))).pipe(withinUpdate)
