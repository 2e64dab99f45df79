// Bundles the endpoint runtime into one file (runtime/dist/cli.js) so an
// endpoint needs only Node 20, not node_modules. Run: npm run build:runtime
import { build } from "esbuild";
import { chmod } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

await build({
  entryPoints: [`${root}runtime/src/cli.ts`],
  outfile: `${root}runtime/dist/cli.js`,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  // ws (CommonJS) calls require(); an ESM bundle has no require unless we make one.
  banner: { js: 'import { createRequire } from "module"; const require = createRequire(import.meta.url);' },
  // Optional native speed-ups that ws loads inside try/catch; never needed.
  external: ["bufferutil", "utf-8-validate"],
});

// npm sets this on install, but a git checkout may lose it.
await chmod(`${root}runtime/bin/caisey-runtime.mjs`, 0o755);
console.log("built runtime/dist/cli.js");
