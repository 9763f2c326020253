/**
 * The workspace's test run (`pnpm test`): one project per package (listed in
 * `vitest.workspace.ts`), and the settings that keep
 * the run reliable on a small, busy machine (2 cores, other work running):
 *
 * - forks, at most `cores - 1` of them (one on 2 cores): every test file starts its own etcd,
 *   and more files at once than cores only makes each slower;
 * - nothing in a test blocks its worker's event loop for long (a synchronous child process,
 *   say): a worker that cannot read vitest's answers for 60 s fails the run with
 *   `Timeout calling "onTaskUpdate"` after every test passed. That is why the benchmark's
 *   smoke run is `pnpm bench:check`, a CI step of its own, and not a test;
 * - generous teardown for the etcd processes a file leaves to its global teardown.
 */
import * as os from "node:os"
import { defineConfig } from "vitest/config"
import projects from "./vitest.workspace.js"

const cores = os.availableParallelism?.() ?? os.cpus().length

export default defineConfig({
  test: {
    projects,
    pool: "forks",
    maxWorkers: Math.max(1, cores - 1),
    minWorkers: 1,
    teardownTimeout: 60_000
  }
})
