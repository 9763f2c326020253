/** Shared test setup: a real etcd started by the harness, and a client connected to it. */
import { EtcdServer } from "@effect-etcd/testing"
import { Effect, Layer, Tracer } from "effect"
import { Etcd } from "effect-etcd"

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
