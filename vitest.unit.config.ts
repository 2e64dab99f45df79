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
  test: { include: ["tests/unit/**/*.test.ts"], environment: "node", globalSetup: ["tests/unit/global-setup.ts"] },
});
