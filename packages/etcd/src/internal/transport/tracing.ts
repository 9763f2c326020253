/**
 * The client span of each RPC: named after the method (`etcdserverpb.KV/Put`), with gRPC's
 * attributes, the member it starts on (`server.address`, `server.port`) and the user's
 * `spanAttributes`. Under Effect's default tracer, which records nothing, the unary calls
 * make no span (`retry.ts` reads the tracer first, and a retry notes its member only on a
 * span that records), so that a program without tracing does not pay for one.
 */
import * as Effect from "effect/Effect"
import type { Endpoint } from "../base/endpoint.js"

/** The tracer a program has when it provides none: its spans go nowhere. */
export const defaultTracer = Effect.runSync(Effect.tracer)

/** The attributes naming a member. */
export const memberAttributes = (endpoint: Endpoint): Record<string, unknown> => ({
  "server.address": endpoint.host,
  "server.port": endpoint.port
})

/** The span's name: the method's path without its leading slash. */
export const spanName = (path: string): string => path.startsWith("/") ? path.slice(1) : path

const rpcAttributesCache = new Map<string, Record<string, unknown>>()

/** `rpc.system`, `rpc.service` and `rpc.method` of a method's path (one object per path). */
export const rpcAttributes = (path: string): Record<string, unknown> => {
  let attributes = rpcAttributesCache.get(path)
  if (attributes === undefined) {
    const [service, method] = spanName(path).split("/")
    attributes = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method }
    rpcAttributesCache.set(path, attributes)
  }
  return attributes
}

/** Runs `effect` in the RPC's client span, whatever the tracer. */
export const withRpcSpan = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  path: string,
  endpoint: Endpoint,
  attributes: Readonly<Record<string, unknown>>
): Effect.Effect<A, E, R> =>
  Effect.withSpan(effect, spanName(path), {
    kind: "client",
    captureStackTrace: false,
    attributes: { ...rpcAttributes(path), ...memberAttributes(endpoint), ...attributes }
  })

/**
 * Notes a retry on the RPC's span (there is none under the default tracer): the member it
 * goes to becomes the span's `server.address` and `server.port`, and the attempt is an
 * event of the span, `rpc.attempt`, with its number (the first retry is attempt 2), its
 * member and the failure that caused it (`error.type`), so that each attempt shows.
 */
export const annotateMember = (
  endpoint: Endpoint,
  attempt?: { readonly number: number; readonly failure: string } | undefined
): Effect.Effect<void> =>
  Effect.tracerWith((tracer) =>
    tracer === defaultTracer ? Effect.void : Effect.zipRight(
      Effect.annotateCurrentSpan(memberAttributes(endpoint)),
      attempt === undefined ?
        Effect.void :
        Effect.ignore(Effect.flatMap(Effect.currentSpan, (span) =>
          Effect.clockWith((clock) =>
            Effect.sync(() =>
              span.event("rpc.attempt", clock.unsafeCurrentTimeNanos(), {
                "rpc.attempt": attempt.number,
                "error.type": attempt.failure,
                ...memberAttributes(endpoint)
              })
            )
          )))
    )
  )
