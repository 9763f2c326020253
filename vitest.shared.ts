import * as path from "node:path"
import type { ViteUserConfig } from "vitest/config"

const root = path.dirname(new URL(import.meta.url).pathname)

/** Settings every package's vitest config shares: source aliases and the real-etcd timeouts. */
export const shared: ViteUserConfig = {
  resolve: {
    alias: {
      "@effect-etcd/testing": path.join(root, "packages/testing/src/index.ts"),
      "@effect-etcd/cluster": path.join(root, "packages/cluster/src/index.ts"),
      "effect-etcd": path.join(root, "packages/etcd/src/index.ts")
    }
  },
  test: {
    include: ["test/**/*.test.ts"],
    // a process per worker: etcd's children and grpc's sockets stay out of the runner's process
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: [path.join(root, "packages/testing/src/globalSetup.ts")]
  }
}
