/** Free loopback ports. */
import * as Effect from "effect/Effect"
import * as net from "node:net"
import { EtcdServerError } from "../EtcdServerError.js"

const reserved = new Set([2379, 2380])

/**
 * `count` distinct ports that were free on 127.0.0.1 a moment ago (never etcd's default
 * 2379/2380). All are held open together while they are picked, so they are distinct.
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
