/** Shared test setup: a real etcd started by the harness, and a client connected to it. */
import { EtcdServer, Ports } from "@effect-etcd/testing"
import { Effect, Layer, Tracer } from "effect"
import { Etcd } from "effect-etcd"
import * as net from "node:net"

/** A fresh etcd (one member unless told otherwise) plus a client of it, both in the context. */
export const withServer = (
  server: EtcdServer.Options = {},
  client: Omit<Etcd.EtcdOptions, "endpoints"> = {}
): Layer.Layer<Etcd.Etcd | EtcdServer.EtcdServer, unknown> =>
  Layer.provideMerge(
    Layer.unwrapEffect(Effect.map(EtcdServer.EtcdServer, (s) => Etcd.layer({ ...client, endpoints: s.endpoints }))),
    EtcdServer.layer(server)
  )

let counter = 0
/** A key prefix no other test uses, so tests of one file can share a server. */
export const uniquePrefix = (name: string): string =>
  `test/${name}/${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}/`

/** A span the recording tracer saw. */
export interface RecordedSpan {
  readonly name: string
  readonly kind: Tracer.SpanKind
  readonly attributes: Map<string, unknown>
}

/** A tracer that keeps every span it is asked for, with its attributes, in `spans`. */
export const recordingTracer = (): { readonly spans: Array<RecordedSpan>; readonly tracer: Tracer.Tracer } => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      spans.push({ name, kind, attributes })
      return {
        _tag: "Span",
        name,
        spanId: `span-${spans.length}`,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links,
        sampled: true,
        kind,
        end: () => {},
        attribute: (key, value) => attributes.set(key, value),
        event: () => {},
        addLinks: () => {}
      }
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

/** A loopback port nobody listens on. */
export const closedPort: Effect.Effect<number> = Effect.orDie(Ports.freePort)

/** A loopback port that accepts connections and never says a word, for the scope's life. */
export const silentPort = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ port: number; server: net.Server; sockets: Set<net.Socket> }>((resolve) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer((socket) => sockets.add(socket))
      server.listen(
        0,
        "127.0.0.1",
        () => resolve({ port: (server.address() as net.AddressInfo).port, server, sockets })
      )
    })
  ),
  ({ server, sockets }) =>
    Effect.promise(() =>
      new Promise<void>((resolve) => {
        sockets.forEach((socket) => socket.destroy())
        server.close(() => resolve())
      })
    )
).pipe(Effect.map(({ port }) => port))
