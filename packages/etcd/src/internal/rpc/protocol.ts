/**
 * What an `Etcd` client is made of below its public face: the KV, Watch and Lease RPCs, the
 * shared watch and keepalive streams, the transport under them and the client's resources.
 * The public `Etcd` carries them as an opaque `Etcd.Protocol`; the public modules take
 * them out with {@link of}. Types only from the public modules.
 */
import type * as Etcd from "../../Etcd.js"
import type * as Metrics from "../base/metrics.js"
import type { KeepAliveHub } from "../streams/keepAliveHub.js"
import type { WatchHub } from "../streams/watchHub.js"
import type { Transport } from "../transport/transport.js"
import type { KvRpc } from "./kvRpc.js"
import type { LeaseRpc } from "./leaseRpc.js"
import type { Resources } from "./resources.js"

/** The parts of a client. */
export interface Parts {
  /** The KV service at the protocol level: what `Kv` and `Txn` are built on. */
  readonly kv: KvRpc
  /** The shared Watch stream: what `Watch` is built on. */
  readonly watches: WatchHub
  /** The Lease RPCs: what `Lease` is built on. */
  readonly leases: LeaseRpc
  /** The shared LeaseKeepAlive stream. */
  readonly keepAlives: KeepAliveHub
  readonly transport: Transport
  readonly resources: Resources
  /** Whether the client records metrics, and how (the recipes read it too). */
  readonly metrics: Metrics.Settings
}

/** The parts as the opaque value an `Etcd` carries. */
export const wrap = (parts: Parts): Etcd.Protocol => parts as unknown as Etcd.Protocol

/** The parts of a client: every `Etcd.Protocol` is made by {@link wrap}. */
export const of = (etcd: Etcd.Etcd): Parts => etcd.protocol as unknown as Parts
