/** TLS settings and the gRPC channel credentials built from them. */
import * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as http2 from "node:http2"
import * as EtcdError from "../EtcdError.js"

/** PEM text (or bytes) of the CA, client certificate and key, and a server name override. */
export interface TlsOptions {
  /** The CA that signed the members' certificates; the system roots when absent. */
  readonly ca?: string | Uint8Array | undefined
  /** Client certificate, for members started with `--client-cert-auth`. */
  readonly cert?: string | Uint8Array | undefined
  /** The client certificate's private key. */
  readonly key?: Redacted.Redacted<string> | string | Uint8Array | undefined
  /** The name to verify in the members' certificates instead of the endpoint's host. */
  readonly serverName?: string | undefined
}

const toBuffer = (value: string | Uint8Array | Redacted.Redacted<string>): Buffer =>
  typeof value === "string"
    ? Buffer.from(value, "utf8")
    : value instanceof Uint8Array
    ? Buffer.from(value)
    : Buffer.from(Redacted.value(value), "utf8")

/** Insecure credentials for plain endpoints, SSL credentials otherwise. */
export const channelCredentials = (
  secure: boolean,
  tls: TlsOptions | undefined
): Effect.Effect<grpc.ChannelCredentials, EtcdError.TlsError> => {
  if (!secure) return Effect.succeed(grpc.credentials.createInsecure())
  if ((tls?.cert === undefined) !== (tls?.key === undefined)) {
    return Effect.fail(
      new EtcdError.TlsError({ endpoints: [], reason: "a client certificate needs its key, and a key its certificate" })
    )
  }
  return Effect.try({
    try: () =>
      grpc.credentials.createSsl(
        tls?.ca === undefined ? null : toBuffer(tls.ca),
        tls?.key === undefined ? null : toBuffer(tls.key),
        tls?.cert === undefined ? null : toBuffer(tls.cert)
      ),
    catch: (cause) =>
      new EtcdError.TlsError({
        endpoints: [],
        reason: `invalid TLS material: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })
}

/**
 * The same settings as Node TLS options, for the connections the client opens itself
 * (the keepalive stream's, `http2Duplex.ts`): undefined for plain endpoints. The server name
 * override, as `grpc.ssl_target_name_override` does for the channels, is the name the
 * members' certificates are checked against.
 */
export const connectOptions = (
  secure: boolean,
  tls: TlsOptions | undefined
): http2.SecureClientSessionOptions | undefined => {
  if (!secure) return undefined
  return {
    ...(tls?.ca === undefined ? {} : { ca: toBuffer(tls.ca) }),
    ...(tls?.cert === undefined ? {} : { cert: toBuffer(tls.cert) }),
    ...(tls?.key === undefined ? {} : { key: toBuffer(tls.key) }),
    ...(tls?.serverName === undefined ? {} : { servername: tls.serverName })
  }
}
