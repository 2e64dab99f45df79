// Fault-injection tests: real stack (workerd via wrangler), real runtime
// processes. Needs `npm run build` first; runs files one at a time.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/faults/**/*.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 150_000,
  },
});
