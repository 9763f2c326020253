/** Test certificates, made with openssl when a TLS server starts. */
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { EtcdServerError } from "../EtcdServerError.js"

/** PEM text and files of a test PKI. */
export interface TlsMaterial {
  readonly ca: string
  readonly caFile: string
  readonly serverCert: string
  readonly serverCertFile: string
  readonly serverKey: string
  readonly serverKeyFile: string
  readonly clientCert: string
  readonly clientCertFile: string
  readonly clientKey: string
  readonly clientKeyFile: string
  /** A CA that signed nothing here: a client trusting it must fail the handshake. */
  readonly wrongCa: string
  readonly wrongCaFile: string
}

const openssl = (cwd: string, args: ReadonlyArray<string>) =>
  new Promise<void>((resolve, reject) =>
    execFile(
      "openssl",
      args as Array<string>,
      { cwd },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`openssl ${args[0]} failed: ${stderr || error.message}`)) : resolve()
    )
  )

const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

/** A CA, a server certificate for 127.0.0.1/localhost, a client certificate for `root`, and a stray CA. */
export const makeTlsMaterial = (dir: string): Effect.Effect<TlsMaterial, EtcdServerError> =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(dir, { recursive: true })
      const ca = (name: string) =>
        openssl(dir, [
          "req",
          "-x509",
          ...key,
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.crt`,
          "-days",
          "2",
          "-subj",
          `/CN=${name}`
        ])
      const leaf = async (name: string, cn: string, usage: string) => {
        await fs.writeFile(
          path.join(dir, `${name}.ext`),
          `subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=${usage}\nkeyUsage=digitalSignature,keyEncipherment\n`
        )
        await openssl(dir, ["req", ...key, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`])
        await openssl(dir, [
          "x509",
          "-req",
          "-in",
          `${name}.csr`,
          "-CA",
          "ca.crt",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-out",
          `${name}.crt`,
          "-days",
          "2",
          "-extfile",
          `${name}.ext`
        ])
      }
      await ca("ca")
      await ca("wrong-ca")
      await leaf("server", "localhost", "serverAuth,clientAuth")
      await leaf("client", "root", "clientAuth")
      const file = (name: string) => path.join(dir, name)
      const read = (name: string) => fs.readFile(file(name), "utf8")
      return {
        ca: await read("ca.crt"),
        caFile: file("ca.crt"),
        serverCert: await read("server.crt"),
        serverCertFile: file("server.crt"),
        serverKey: await read("server.key"),
        serverKeyFile: file("server.key"),
        clientCert: await read("client.crt"),
        clientCertFile: file("client.crt"),
        clientKey: await read("client.key"),
        clientKeyFile: file("client.key"),
        wrongCa: await read("wrong-ca.crt"),
        wrongCaFile: file("wrong-ca.crt")
      }
    },
    catch: (cause) =>
      new EtcdServerError({ message: `cannot make test certificates with openssl: ${String(cause)}`, cause })
  })
