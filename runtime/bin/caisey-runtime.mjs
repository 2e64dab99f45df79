#!/usr/bin/env node
// Thin launcher so `npm install -g` / `npx caisey-runtime` work; the runtime itself is the esbuild bundle.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const bundle = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write(`caisey-runtime: ${fileURLToPath(bundle)} is missing; run npm run build:runtime\n`);
  process.exit(1);
}
await import(bundle.href);
