/**
 * The members calls go to, and failover between them: one connection per member for the
 * unary calls (`http2Unary.ts`), a grpc-js channel made only when a call needs one
 * (`grpcJs.ts`), the member calls prefer (the next one after a failure is reported), the
 * list that endpoint discovery replaces, and the members dialled for one call aimed at an
 * endpoint the client was not built with. Closing the scope closes every connection, and
 * every call made afterwards fails at once with ClientClosed.
 */
import type * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as http2 from "node:http2"
import * as EtcdError from "../../EtcdError.js"
import { type Endpoint, parse as parseEndpoint } from "../base/endpoint.js"
import * as Metrics from "../base/metrics.js"
import type { KeepAlive } from "./http2Duplex.js"
import { MemberConnection } from "./http2Unary.js"

/** One member and its connections. */
export interface Member {
  readonly endpoint: Endpoint
  /** The member's grpc-js channel, made when a call first needs it. */
  client: grpc.Client | undefined
  /** The member's connection for unary calls. */
  readonly http2: MemberConnection
  /** The PINGs of its connections made without grpc-js (their interval backs off per member). */
  readonly keepAlive: KeepAlive | undefined
}

/** What the members' connections are made with. */
export interface MembersConfig {
  readonly endpoints: ReadonlyArray<Endpoint>
  /** The TLS settings of the connections made without grpc-js; undefined for plain endpoints. */
  readonly tlsConnect: http2.SecureClientSessionOptions | undefined
  /** grpc-js's channel options: their keepalive settings apply to the other connections too. */
  readonly channelOptions: grpc.ChannelOptions
  readonly maxReceiveMessageBytes: number
  /** Whether connections and failovers are counted (`metrics.ts`). */
  readonly metrics?: boolean | undefined
}

/** The members, the one calls prefer, and whether the client closed. */
export interface Members {
  /** The members calls may go to (`setEndpoints` replaces them). */
  readonly all: () => ReadonlyArray<Member>
  /** Their URLs, for the error messages. */
  readonly urls: () => ReadonlyArray<string>
  /** The member calls go to now. */
  readonly preferred: () => Member
  /** Makes the member at `index` of `all()` the preferred one. */
  readonly prefer: (index: number) => void
  /** Whether the scope closed: every call fails with ClientClosed then. */
  readonly closed: () => boolean
  /** A member that misbehaved: the next calls go to the next member, when there is another. */
  readonly reportFailure: (endpoint: Endpoint) => void
  /**
   * Replaces the members (endpoint discovery): the connections of members still listed are
   * kept, and the preferred member stays preferred while it is listed. An empty list
   * changes nothing.
   */
  readonly setEndpoints: (endpoints: ReadonlyArray<Endpoint>) => void
  /**
   * The member at `url` (matched by its address when the text differs): one of the
   * client's own, or one dialled for the scope's lifetime. `vouch`, when given, must accept
   * an endpoint the client was not built with before it is dialled (see `listedIn`).
   */
  readonly at: (
    url: string,
    vouch: ((endpoint: Endpoint) => Effect.Effect<void, EtcdError.EtcdError>) | undefined
  ) => Effect.Effect<Member, EtcdError.EtcdError, Scope.Scope>
  /** `http://host:port`, or `https:` when the client uses TLS, for the connections made without grpc-js. */
  readonly originOf: (endpoint: Endpoint) => string
}

/** Dials the members given; their connections close with the scope. */
export const make = (config: MembersConfig): Effect.Effect<Members, never, Scope.Scope> =>
  Effect.gen(function*() {
    let closed = false
    const originOf = (endpoint: Endpoint): string =>
      `${config.tlsConnect === undefined ? "http" : "https"}://${endpoint.address}`
    const dial = (endpoint: Endpoint): Member => {
      const keepAlive = keepAliveOf(config.channelOptions)
      return {
        endpoint,
        client: undefined,
        http2: new MemberConnection(originOf(endpoint), config.tlsConnect, {
          keepAlive,
          maxReceiveBytes: config.maxReceiveMessageBytes,
          onEvent: config.metrics === true ? (event) => Metrics.connectionEvent(endpoint, event) : undefined
        }),
        keepAlive
      }
    }
    /** Members left out by `setEndpoints`: calls may still run on them, so they close with the scope. */
    const retired: Array<Member> = []
    const members: Array<Member> = yield* Effect.acquireRelease(
      Effect.sync(() => config.endpoints.map(dial)),
      (members) =>
        Effect.sync(() => {
          closed = true
          ;[...members, ...retired].forEach(hangUp)
        })
    )
    let urls = config.endpoints.map((endpoint) => endpoint.url)
    let preferred = 0
    if (config.metrics === true) {
      members.forEach((member, index) => Metrics.preferredIs(member.endpoint, index === 0 ? 1 : 0))
    }

    const at = (
      url: string,
      vouch: ((endpoint: Endpoint) => Effect.Effect<void, EtcdError.EtcdError>) | undefined
    ): Effect.Effect<Member, EtcdError.EtcdError, Scope.Scope> => {
      const parsed = parseEndpoint(url)
      if (typeof parsed === "string") return Effect.fail(new EtcdError.EtcdInvalidArgument({ reason: parsed }))
      const known = members.find((member) => member.endpoint.url === url) ??
        members.find((member) => member.endpoint.address === parsed.address)
      if (known !== undefined) return Effect.succeed(known)
      const dialled = Effect.acquireRelease(Effect.sync(() => dial(parsed)), (member) =>
        Effect.sync(() => hangUp(member)))
      return vouch === undefined ? dialled : Effect.zipRight(vouch(parsed), dialled)
    }

    return {
      all: () =>
        members,
      urls: () => urls,
      preferred: () => members[preferred],
      prefer: (index) => {
        if (config.metrics === true && index !== preferred) {
          Metrics.preferredIs(members[preferred].endpoint, 0)
          Metrics.preferredIs(members[index].endpoint, 1)
        }
        preferred = index
      },
      closed: () => closed,
      reportFailure: (endpoint) => {
        if (members.length > 1 && members[preferred].endpoint === endpoint) {
          const next = (preferred + 1) % members.length
          if (config.metrics === true) Metrics.failedOver(members[preferred].endpoint, members[next].endpoint)
          preferred = next
        }
      },
      setEndpoints: (next) => {
        if (next.length === 0) return
        const current = members[preferred]
        const pool = [...members, ...retired]
        const kept = next.map((endpoint) =>
          pool.find((member) => member.endpoint.address === endpoint.address) ?? dial(endpoint)
        )
        retired.splice(0, retired.length, ...pool.filter((member) => !kept.includes(member)))
        members.splice(0, members.length, ...kept)
        urls = kept.map((member) => member.endpoint.url)
        preferred = Math.max(0, members.indexOf(current))
      },
      at,
      originOf
    } satisfies Members
  })

/**
 * Whether the cluster's member list names `endpoint` among its client URLs: with
 * credentials, the only members dialled besides the client's own (the token goes to no
 * other server).
 */
export const listedIn = (
  list: { readonly members: ReadonlyArray<{ readonly clientURLs: ReadonlyArray<string> }> },
  endpoint: Endpoint
): boolean =>
  list.members.some((member) =>
    member.clientURLs.some((clientUrl) => {
      const listed = parseEndpoint(clientUrl)
      return typeof listed !== "string" && listed.address === endpoint.address
    })
  )

const hangUp = (member: Member): void => {
  member.client?.close()
  member.http2.close()
}

/**
 * The PINGs of grpc-js's channels (`grpc.keepalive_time_ms`, `grpc.keepalive_timeout_ms`),
 * if they send any: a new object for each member, whose interval doubles when the member
 * closes a connection for too many pings.
 */
const keepAliveOf = (channelOptions: grpc.ChannelOptions): KeepAlive | undefined => {
  const intervalMs = channelOptions["grpc.keepalive_time_ms"]
  if (typeof intervalMs !== "number" || intervalMs <= 0) return undefined
  const timeoutMs = channelOptions["grpc.keepalive_timeout_ms"]
  return { intervalMs, timeoutMs: typeof timeoutMs === "number" && timeoutMs > 0 ? timeoutMs : 20_000 }
}
