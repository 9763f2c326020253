/**
 * effect-etcd: an etcd v3 client for Effect.
 *
 * @since 0.1.0
 */

// first: stops a program whose `effect` is not Effect 3, before anything else of the package loads
import "./internal/base/effectVersion.js"

/**
 * Administering access control: auth on and off, users, roles, permissions.
 *
 * @since 0.1.0
 */
export * as Auth from "./Auth.js"

/**
 * The cluster's membership: list, add, promote, update and remove members.
 *
 * @since 0.1.0
 */
export * as Cluster from "./Cluster.js"

/**
 * Transaction conditions (etcetra's `CompareKey`).
 *
 * @since 0.1.0
 */
export * as Compare from "./Compare.js"

/**
 * Leader election: scoped leadership, proclamations, the current leader, observation.
 *
 * @since 0.1.0
 */
export * as Election from "./Election.js"

/**
 * The connection service, its layers and configuration.
 *
 * @since 0.1.0
 */
export * as Etcd from "./Etcd.js"

/**
 * etcd as Effect's configuration: a `ConfigProvider` over a prefix, live values, writes in one transaction.
 *
 * @since 0.2.0
 */
export * as EtcdConfig from "./EtcdConfig.js"

/**
 * The tagged errors of every call.
 *
 * @since 0.1.0
 */
export * as EtcdError from "./EtcdError.js"

/**
 * An in-memory etcd for tests, driven by Effect's Clock, with fault hooks.
 *
 * @since 0.1.0
 */
export * as EtcdMemory from "./EtcdMemory.js"

/**
 * The client's metrics (off by default, `metrics: true` on the layer): Effect `Metric`s
 * with OpenTelemetry's names, their names and a snapshot of their values.
 *
 * @since 0.2.0
 */
export * as EtcdMetrics from "./EtcdMetrics.js"

/**
 * Key sets: one key, a prefix, a range, the whole keyspace.
 *
 * @since 0.1.0
 */
export * as KeyRange from "./KeyRange.js"

/**
 * Stored key-value pairs with their revisions.
 *
 * @since 0.1.0
 */
export * as KeyValue from "./KeyValue.js"

/**
 * Typed keyspaces: Schema-typed keys and values under a prefix.
 *
 * @since 0.1.0
 */
export * as Keyspace from "./Keyspace.js"

/**
 * Leases, plain and scoped, with a shared keepalive stream.
 *
 * @since 0.1.0
 */
export * as Lease from "./Lease.js"

/**
 * Distributed locks as scoped resources.
 *
 * @since 0.1.0
 */
export * as Lock from "./Lock.js"

/**
 * Reads and writes of keys.
 *
 * @since 0.1.0
 */
export * as Kv from "./Kv.js"

/**
 * Live local copies of a range that follow etcd.
 *
 * @since 0.1.0
 */
export * as Mirror from "./Mirror.js"

/**
 * Operating a cluster: member status, alarms, defragmentation, hashes, snapshots.
 *
 * @since 0.1.0
 */
export * as Maintenance from "./Maintenance.js"

/**
 * The operations of a transaction.
 *
 * @since 0.1.0
 */
export * as Op from "./Op.js"

/**
 * Readers–writer locks: many readers or one writer.
 *
 * @since 0.1.0
 */
export * as RwLock from "./RwLock.js"

/**
 * Sessions: a lease kept alive for the life of a scope, shared by locks and elections.
 *
 * @since 0.1.0
 */
export * as Session from "./Session.js"

/**
 * Software transactional memory: transactions written as Effects, retried on conflict.
 *
 * @since 0.1.0
 */
export * as Stm from "./Stm.js"

/**
 * Transactions.
 *
 * @since 0.1.0
 */
export * as Txn from "./Txn.js"

/**
 * Watches as Streams.
 *
 * @since 0.1.0
 */
export * as Watch from "./Watch.js"
