/**
 * Security edges: the auth token goes to the members of its cluster only, a snapshot
 * file is readable by its owner alone, and a password written into an endpoint URL is
 * never quoted back.
 */
import { EtcdServer } from "@effect-etcd/testing"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Inspectable, Layer, Redacted, Stream } from "effect"
import { Etcd, Maintenance } from "effect-etcd"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { withServer } from "./support.js"

const rootPassword = "root-pw-5c1d0e"
const root = { username: "root", password: Redacted.make(rootPassword) }

/** A loopback port that accepts connections for the scope's life and counts them; it never answers. */
const countingPort = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly port: number; readonly connections: () => number; readonly close: () => Promise<void> }>(
      (resolve) => {
        const sockets = new Set<net.Socket>()
        let connections = 0
        const server = net.createServer((socket) => {
          connections++
          sockets.add(socket)
        })
        const close = () =>
          new Promise<void>((closed) => {
            sockets.forEach((socket) => socket.destroy())
            server.close(() => closed())
          })
        server.listen(
          0,
          "127.0.0.1",
          () => resolve({ port: (server.address() as net.AddressInfo).port, connections: () => connections, close })
        )
      }
    )
  ),
  ({ close }) => Effect.promise(close)
)

/** The tag a call fails with, or "no answer" when it has not ended after 3 seconds. */
const failureOf = <A, E extends { readonly _tag: string }, R>(call: Effect.Effect<A, E, R>) =>
  Effect.flip(call).pipe(
    Effect.map((error): string => error._tag),
    Effect.timeoutTo({ duration: "3 seconds", onTimeout: () => "no answer", onSuccess: (tag) => tag })
  )

/** Every form a user may see an error in. */
const renderings = (error: unknown): Array<string> => [
  (error as Error).message,
  String(error),
  JSON.stringify(error),
  Inspectable.format(error)
]

layer(withServer({ auth: { rootPassword } }, root), { excludeTestServices: true })("Security with auth", (it) => {
  it.scoped("calls aimed at an endpoint outside the cluster are refused, and nothing is sent there", () =>
    Effect.gen(function*() {
      const server = yield* EtcdServer.EtcdServer
      const stranger = yield* countingPort
      const url = `http://127.0.0.1:${stranger.port}`
      const refusals = [
        yield* failureOf(Maintenance.status(url, { timeout: "1 second" })),
        yield* failureOf(Maintenance.hashKv(url, 0n, { timeout: "1 second" })),
        yield* failureOf(Maintenance.defragment(url, { timeout: "1 second" }))
      ]
      expect(refusals).toEqual(["EtcdInvalidArgument", "EtcdInvalidArgument", "EtcdInvalidArgument"])
      expect(stranger.connections()).toBe(0)
      const refused = yield* Effect.flip(Maintenance.status(url))
      expect(refused.message).toContain("not a member of the cluster")
      expect(yield* failureOf(Stream.runDrain(Maintenance.snapshot({ endpoint: url })))).toBe("EtcdInvalidArgument")
      const file = path.join(EtcdServer.dataRoot(), `refused-${process.pid}-${Date.now()}.db`)
      const written = yield* Effect.flip(
        Maintenance.snapshotToFile(file, { endpoint: url }).pipe(Effect.provide(NodeContext.layer))
      )
      expect(written._tag).toBe("SnapshotFailed")
      expect((written.cause as { readonly _tag: string })._tag).toBe("EtcdInvalidArgument")
      expect(fs.existsSync(file)).toBe(false)
      expect(stranger.connections()).toBe(0)
      // a member is asked as before
      expect((yield* Maintenance.status(server.endpoints[0])).endpoint).toBe(server.endpoints[0])
    }))
})

layer(withServer(), { excludeTestServices: true })("Security", (it) => {
  it.scoped("a snapshot file is created with mode 600, whatever the umask", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => {
          fs.mkdirSync(EtcdServer.dataRoot(), { recursive: true })
          return fs.mkdtempSync(path.join(EtcdServer.dataRoot(), "snapshot-mode-"))
        }),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const file = path.join(dir, "backup.db")
      // a umask that lets the group and others read what is created
      const before = process.umask(0o022)
      yield* Maintenance.snapshotToFile(file).pipe(
        Effect.provide(NodeContext.layer),
        Effect.ensuring(Effect.sync(() => process.umask(before)))
      )
      expect((fs.statSync(file).mode & 0o777).toString(8)).toBe("600")
    }))
})

it.effect("an endpoint with a password in it is refused without quoting the password", () =>
  Effect.gen(function*() {
    const given = yield* Effect.flip(
      Layer.build(Etcd.layer({ endpoints: ["http://root:secret@127.0.0.1:1"], connectTimeout: "200 millis" }))
    )
    const fromEnvironment = yield* Effect.flip(
      Layer.build(Etcd.layerConfig(Etcd.config)).pipe(
        Effect.provide(NodeContext.layer),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["ETCD_ENDPOINTS", "http://127.0.0.1:1,user:secret@127.0.0.1:2"]]))
        )
      )
    )
    const unparsable = yield* Effect.flip(
      Layer.build(Etcd.layer({ endpoints: "http://root:se/cret@127.0.0.1:2379" }))
    )
    for (const error of [given, fromEnvironment, unparsable]) {
      expect(error._tag).toBe("EtcdInvalidArgument")
      for (const text of renderings(error)) expect(text).not.toContain("secret")
      for (const text of renderings(error)) expect(text).not.toContain("cret")
    }
    expect(given.message).toContain("http://***@127.0.0.1:1")
  }).pipe(Effect.scoped))
