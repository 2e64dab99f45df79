// Mutation testing of the runtime and the shared protocol (npm run test:mutation; ADR 0023). Driven by the unit
// layer through vitest.mutation.config.ts; the session's workerd code is covered by scripts/safety-mutations.mjs.
// MUTATE narrows the run (comma-separated globs), e.g. MUTATE=runtime/src/outbox.ts npm run test:mutation.
const everything = ["runtime/src/**/*.ts", "protocol/**/*.ts"];
const mutate = process.env.MUTATE ? process.env.MUTATE.split(",") : everything;

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  packageManager: "npm",
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts" },
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.mutation.json",
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate,
  // Only what the unit layer and the runtime build need; keeps the sandbox copy small.
  ignorePatterns: ["/app", "/e2e", "/workers", "/public", "/build", "/functions", "/docs", "/.data", "/test-results", "/playwright-report", "/.wrangler", "/.cache"],
  coverageAnalysis: "perTest",
  // Static mutants (module-level constants) would rerun the whole layer each; reported as ignored.
  ignoreStatic: true,
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 2),
  timeoutMS: 20_000,
  incremental: true,
  incrementalFile: ".cache/stryker-incremental.json",
  reporters: ["json", "progress", "clear-text"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".cache/stryker-tmp",
  cleanTempDir: "always",
};
