import { defineConfig } from "vitest/config"

// the bench's own unit tests (the chart writer): no etcd, so none of the shared real-etcd setup
export default defineConfig({ test: { include: ["test/**/*.test.ts"] } })
