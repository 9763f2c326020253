/**
 * grpc-js, for the few calls that still go through it: the server streams (snapshots) and
 * the rare bidirectional streams of `Transport.duplex` (one keepalive, the compact-revision
 * probe). The module is loaded, and a member's channel made, when the first of them runs:
 * the unary calls, the watch stream and the lease keepalives go over `node:http2` directly,
 * and a program that makes no other call never loads it (about 2.6 MB of heap, and 60 ms
 * of start).
 */
import type * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import type * as tls from "node:tls"
import * as EtcdError from "../../EtcdError.js"
import type { Member } from "./members.js"

/** The grpc-js module. */
export type GrpcModule = typeof grpc

/** grpc-js, loaded by the first call that needs it. */
export const load: Effect.Effect<GrpcModule> = Effect.promise(() => import("@grpc/grpc-js"))

/**
 * The member's grpc-js channel, made (and grpc-js loaded) by the first call that needs
 * one: most programs make none, and keep one connection per member. The calls on it are
 * bounded by their own timeouts, connecting included. Fails with ClientClosed once the
 * client closed (a closed grpc-js channel throws "Channel has been shut down" instead).
 */
export const channelOf = (
  member: Member,
  method: string,
  settings: {
    readonly closed: () => boolean
    /** The channels' TLS context; undefined for plain endpoints. */
    readonly secureContext: tls.SecureContext | undefined
    readonly channelOptions: grpc.ChannelOptions
  }
): Effect.Effect<{ readonly grpcJs: GrpcModule; readonly client: grpc.Client }, EtcdError.ClientClosed> =>
  Effect.flatMap(load, (grpcJs) => {
    if (settings.closed()) return new EtcdError.ClientClosed({ method })
    if (member.client === undefined) {
      const credentials = settings.secureContext === undefined
        ? grpcJs.credentials.createInsecure()
        : grpcJs.credentials.createFromSecureContext(settings.secureContext)
      member.client = new grpcJs.Client(member.endpoint.address, credentials, settings.channelOptions)
    }
    return Effect.succeed({ grpcJs, client: member.client })
  })

/** A call's headers as grpc-js metadata. */
export const metadataOf = (grpcJs: GrpcModule, headers: Readonly<Record<string, string>>): grpc.Metadata => {
  const metadata = new grpcJs.Metadata()
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value)
  return metadata
}
