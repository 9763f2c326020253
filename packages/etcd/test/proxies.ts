/** Test setup behind etcd's own proxies: a real etcd, a proxy in front of it, and a client that only knows the proxy. */
import { EtcdProxy, EtcdServer } from "@effect-etcd/testing"
import { Effect, Layer } from "effect"
import { Etcd } from "effect-etcd"

/**
 * A fresh etcd (one member unless told otherwise), `etcd grpc-proxy start` or `etcd gateway
 * start` in front of all its members, and a client of the proxy alone; all three in the context.
 */
export const withProxy = (
  kind: EtcdProxy.Kind,
  server: EtcdServer.Options = {},
  client: Omit<Etcd.EtcdOptions, "endpoints"> = {}
): Layer.Layer<Etcd.Etcd | EtcdProxy.EtcdProxy | EtcdServer.EtcdServer, unknown> =>
  Layer.unwrapEffect(Effect.map(EtcdProxy.EtcdProxy, (proxy) => Etcd.layer({ ...client, endpoints: proxy.endpoints })))
    .pipe(
      Layer.provideMerge(kind === "grpc-proxy" ? EtcdProxy.layerGrpcProxy() : EtcdProxy.layerGateway()),
      Layer.provideMerge(EtcdServer.layer(server))
    )
