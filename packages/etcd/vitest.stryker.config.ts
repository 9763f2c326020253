/**
 * The tests `pnpm mutate` (Stryker) runs against each mutant: only those that start no etcd
 * process (unit tests of the mutated modules, fake HTTP/2 servers on loopback, `EtcdMemory`),
 * since Stryker runs the tests that cover a mutant once per mutant. `pnpm test` does not use
 * this file. (Not `mergeConfig` with the shared settings: it would append to their `include`.)
 */
import { defineConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

export default defineConfig({
  resolve: shared.resolve,
  test: {
    include: [
      // internal/transport/grpcError.ts and the retry decision of internal/transport/retryPolicy.ts
      "test/EtcdError.test.ts",
      "test/Http2Duplex.test.ts",
      "test/GrpcErrorMapping.test.ts",
      // internal/recipes/queue.ts
      "test/QueueUnit.test.ts",
      // internal/streams/readBatcher.ts
      "test/ReadBatcher.test.ts",
      // internal/streams/watchResume.ts
      "test/WatchResumeValue.test.ts",
      // internal/streams/watchHub.ts (and watchResume.ts, streamSession.ts through it)
      "test/WatchResume.test.ts",
      "test/WatchHubCreates.test.ts",
      // internal/streams/keepAliveHub.ts (and streamSession.ts through it)
      "test/KeepAliveState.test.ts",
      // internal/streams/streamSession.ts on its own
      "test/StreamSession.test.ts"
    ],
    // a mutant that leaves a test waiting forever fails it soon (killed), rather than running
    // into Stryker's own timeout, after which the test runner process is started again
    testTimeout: 3_000,
    // the modules stay loaded from one mutant's run to the next (Stryker switches mutants on
    // at run time): a run then costs the tests that cover the mutant, not re-importing the client
    isolate: false
  }
})
