/** TLS settings, and the Node TLS options and context built from them. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as http2 from "node:http2"
import * as tls from "node:tls"
import * as EtcdError from "../../EtcdError.js"

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

/**
 * The TLS context of the grpc-js channels (`grpc.credentials.createFromSecureContext`, made
 * when a channel is first needed), built here so that bad material fails the layer at once:
 * undefined for plain endpoints.
 */
export const secureContext = (
  secure: boolean,
  options: TlsOptions | undefined
): Effect.Effect<tls.SecureContext | undefined, EtcdError.TlsError> => {
  if (!secure) return Effect.succeed(undefined)
  if ((options?.cert === undefined) !== (options?.key === undefined)) {
    return Effect.fail(
      new EtcdError.TlsError({ endpoints: [], reason: "a client certificate needs its key, and a key its certificate" })
    )
  }
  return Effect.try({
    try: () =>
      tls.createSecureContext({
        ca: options?.ca === undefined ? undefined : toBuffer(options.ca),
        key: options?.key === undefined ? undefined : toBuffer(options.key),
        cert: options?.cert === undefined ? undefined : toBuffer(options.cert)
      }),
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
  options: TlsOptions | undefined
): http2.SecureClientSessionOptions | undefined => {
  if (!secure) return undefined
  return {
    ...(options?.ca === undefined ? {} : { ca: toBuffer(options.ca) }),
    ...(options?.cert === undefined ? {} : { cert: toBuffer(options.cert) }),
    ...(options?.key === undefined ? {} : { key: toBuffer(options.key) }),
    ...(options?.serverName === undefined ? {} : { servername: options.serverName })
  }
}
