/** Shared test setup: a real etcd started by the harness, and a client connected to it. */
import { EtcdServer } from "@effect-etcd/testing"
import { Effect, Layer } from "effect"
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
