/**
 * Free loopback ports, for anything a test or a program starts that must be told its port in
 * advance: an etcd member, a proxy, a `@effect/cluster` runner, a metrics endpoint. The test
 * servers (`EtcdServer`, `EtcdProxy`) pick theirs here too.
 *
 * A port is found by listening on port 0 of 127.0.0.1 and reading the port the system gave.
 * The ports of one call are all held open together before any is released, so they are
 * distinct; once released, another process may take one before its user binds it, as with
 * any port picked in advance.
 *
 * @example
 * ```ts
 * import { Ports } from "@effect-etcd/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   // three distinct ports, e.g. for three runners
 *   const [a, b, c] = yield* Ports.freePorts(3)
 *   // one port, e.g. for a metrics endpoint
 *   const metrics = yield* Ports.freePort
 *   return { runners: [a, b, c], metrics }
 * })
 * ```
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as net from "node:net"
import { EtcdServerError } from "./EtcdServerError.js"

/** etcd's default client and peer ports, never handed out. */
const reserved = new Set([2379, 2380])

/**
 * `count` distinct ports that were free on 127.0.0.1 a moment ago (never etcd's default
 * 2379/2380). All are held open together while they are picked, so they are distinct, and all
 * are released before the Effect succeeds. `freePorts(0)` is the empty array. Fails with
 * `EtcdServerError` when the system refuses a listener on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { Ports } from "@effect-etcd/testing"
 * import { Effect } from "effect"
 *
 * // a client URL and a peer URL for one etcd member
 * const urls = Effect.map(Ports.freePorts(2), ([client, peer]) => ({
 *   clientUrl: `http://127.0.0.1:${client}`,
 *   peerUrl: `http://127.0.0.1:${peer}`
 * }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const freePorts = (count: number): Effect.Effect<Array<number>, EtcdServerError> =>
  Effect.tryPromise({
    try: async () => {
      const servers: Array<net.Server> = []
      const ports: Array<number> = []
      try {
        while (ports.length < count) {
          const server = net.createServer()
          await new Promise<void>((resolve, reject) => {
            server.once("error", reject)
            server.listen(0, "127.0.0.1", () => resolve())
          })
          servers.push(server)
          const port = (server.address() as net.AddressInfo).port
          if (!reserved.has(port)) ports.push(port)
        }
        return ports
      } finally {
        await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
      }
    },
    catch: (cause) => new EtcdServerError({ message: "cannot find free loopback ports", cause })
  })

/**
 * One port that was free on 127.0.0.1 a moment ago (never etcd's default 2379/2380): `freePorts(1)`'s
 * port. For several ports that must differ, take them in one `freePorts(n)` call rather than
 * `freePort` n times.
 *
 * @example
 * ```ts
 * import { Ports } from "@effect-etcd/testing"
 * import { Effect } from "effect"
 *
 * // a loopback URL nobody listens on, for a test of an unreachable member
 * const unreachable = Effect.map(Ports.freePort, (port) => `http://127.0.0.1:${port}`)
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const freePort: Effect.Effect<number, EtcdServerError> = Effect.map(freePorts(1), ([port]) => port)
