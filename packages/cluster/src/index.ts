/**
 * etcd as the coordination backend of `@effect/cluster` (the `@effect-etcd/cluster` package).
 *
 * @since 0.1.0
 */

/**
 * `RunnerStorage` on etcd: runner membership on a lease, shard locks fenced by revisions.
 *
 * @since 0.1.0
 */
export * as EtcdRunnerStorage from "./EtcdRunnerStorage.js"

/**
 * A runner in one call: socket (or HTTP) transport, etcd storage, no-op message storage.
 *
 * @since 0.1.0
 */
export * as EtcdClusterSocket from "./EtcdClusterSocket.js"
