/**
 * Real etcd servers for tests, as Effect layers (the `@effect-etcd/testing` package).
 *
 * @since 0.1.0
 */

/**
 * Start one member or a 3-member cluster, with TLS and auth when asked.
 *
 * @since 0.1.0
 */
export * as EtcdServer from "./EtcdServer.js"

/**
 * etcd's gRPC proxy or gateway in front of a test cluster.
 *
 * @since 0.1.0
 */
export * as EtcdProxy from "./EtcdProxy.js"

/**
 * Free loopback ports, all of one call held together while they are picked so they differ.
 *
 * @since 0.2.0
 */
export * as Ports from "./Ports.js"
