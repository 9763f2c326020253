// @ts-check
/**
 * `pnpm mutate`: mutation testing (Stryker) of the modules where a silent bug costs most.
 * Each mutant runs only the tests that cover it (perTest coverage), from the etcd-free
 * tests of packages/etcd/vitest.stryker.config.ts. `scripts/mutation-scores.mjs` then
 * reads the JSON report and fails when a module scores under 80%.
 *
 * @type {import("@stryker-mutator/api/core").PartialStrykerOptions}
 */
export default {
  packageManager: "pnpm",
  // named, not discovered: under pnpm the plugins are not beside @stryker-mutator/core
  plugins: ["@stryker-mutator/vitest-runner", "@stryker-mutator/typescript-checker"],
  testRunner: "vitest",
  vitest: { configFile: "packages/etcd/vitest.stryker.config.ts", dir: "packages/etcd", related: false },
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.stryker.json",
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: "perTest",
  mutate: [
    "packages/etcd/src/internal/transport/grpcError.ts",
    // the retry decision: which failures are transient, which writes may be sent again,
    // which become AmbiguousOutcome
    "packages/etcd/src/internal/transport/retryPolicy.ts",
    "packages/etcd/src/internal/recipes/queue.ts",
    // the resume bookkeeping: the next revision of each response, the fragments, which
    // events of a replay are new (watchResume.ts); the create's start revision and the
    // re-creation after a suspension or a broken stream (watchHub.ts)
    // (line ranges: keep them on createRequest..answeredCreate (which create an answer is
    // for, pipelined or not), resume, deliver..handle and the runner's re-creation
    // (`opened`, `closed`) when the file changes)
    "packages/etcd/src/internal/streams/watchResume.ts",
    "packages/etcd/src/internal/streams/watchHub.ts:355-410",
    "packages/etcd/src/internal/streams/watchHub.ts:459-465",
    "packages/etcd/src/internal/streams/watchHub.ts:480-630",
    "packages/etcd/src/internal/streams/watchHub.ts:686-714",
    "packages/etcd/src/internal/streams/readBatcher.ts",
    "packages/etcd/src/internal/streams/keepAliveHub.ts",
    // the session loop both hubs run: reopening, backoff, token refresh, giving up
    "packages/etcd/src/internal/streams/streamSession.ts"
  ],
  concurrency: 2,
  timeoutMS: 5_000,
  thresholds: { high: 90, low: 80, break: 80 },
  reporters: ["clear-text", "progress", "json", "html"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always"
}
