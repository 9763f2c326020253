/** Free loopback ports: distinct within a call, free to bind once handed out, never etcd's defaults. */
import { Ports } from "@effect-etcd/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"

/** Listens on `port` of 127.0.0.1 and closes again: fails when the port is taken. */
const bind = (port: number) =>
  Effect.async<void, Error>((resume) => {
    const server = net.createServer()
    server.once("error", (error) => resume(Effect.fail(error)))
    server.listen(port, "127.0.0.1", () => server.close(() => resume(Effect.void)))
  })

describe("Ports", () => {
  it.effect("freePorts(n): n distinct loopback ports, each free to bind, none of etcd's 2379/2380", () =>
    Effect.gen(function*() {
      const ports = yield* Ports.freePorts(20)
      expect(ports).toHaveLength(20)
      expect(new Set(ports).size).toBe(20)
      for (const port of ports) {
        expect(Number.isInteger(port) && port > 0 && port < 65536).toBe(true)
        expect([2379, 2380]).not.toContain(port)
      }
      // all released before the call returns: each can be bound, all at once
      yield* Effect.forEach(ports, bind, { concurrency: "unbounded", discard: true })
    }))

  it.effect("freePorts(0) is empty; freePort is one port, free to bind", () =>
    Effect.gen(function*() {
      expect(yield* Ports.freePorts(0)).toEqual([])
      const port = yield* Ports.freePort
      expect(Number.isInteger(port) && port > 0 && port < 65536).toBe(true)
      yield* bind(port)
    }))
})
