import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
export default defineConfig({
  // The app imports the shared contract as @protocol/… and its own modules as ~/… (tsconfig paths); unit tests load some app modules.
  resolve: {
    alias: [
      { find: /^@protocol\//, replacement: fileURLToPath(new URL("./protocol/", import.meta.url)) },
      { find: /^~\//, replacement: fileURLToPath(new URL("./app/", import.meta.url)) },
    ],
  },
  test: {
    include: ["tests/unit/**/*.test.ts"],
    environment: "node",
    globalSetup: ["tests/unit/global-setup.ts"],
    // Most unit files wait on child processes (wrangler, the runtime CLI), not on the CPU: vitest 4's default of
    // half the cores runs them one after another on a 2-core CI machine.
    maxWorkers: 3,
  },
});
