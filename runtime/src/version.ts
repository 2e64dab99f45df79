// What this runtime build is. scripts/build-runtime.mjs replaces the
// __CAISEY_*__ identifiers with literals through esbuild's `define`; run from
// source (tests, tsx) they are undeclared and `typeof` keeps that safe.
import { createHash } from "node:crypto";
import type { RuntimePlatform } from "../../protocol/runtime-release";

declare const __CAISEY_RUNTIME_VERSION__: string | undefined;
declare const __CAISEY_UPDATE_PUBLIC_KEY__: string | undefined;
declare const __CAISEY_RUNTIME_PLATFORM__: RuntimePlatform | undefined;
declare const __CAISEY_RUNTIME_EXECUTABLE__: boolean | undefined;

/** Version of the source tree when not built (kept equal to package.json's version). */
const SOURCE_VERSION = "0.1.0";

/** Reported in `hello` and `--version`; set by the build from `--version` (default: package.json). */
export const RUNTIME_VERSION: string = typeof __CAISEY_RUNTIME_VERSION__ === "string" ? __CAISEY_RUNTIME_VERSION__ : SOURCE_VERSION;

/**
 * Base64 SPKI DER of the Ed25519 key that signs runtime releases, embedded at build time.
 * Undefined when run from source: such a runtime must never accept an update.
 */
export const UPDATE_PUBLIC_KEY: string | undefined =
  typeof __CAISEY_UPDATE_PUBLIC_KEY__ === "string" ? __CAISEY_UPDATE_PUBLIC_KEY__ : undefined;

/** True only inside a single-file executable (where process.execPath is the runtime itself, not Node). */
export const RUNTIME_EXECUTABLE: boolean = typeof __CAISEY_RUNTIME_EXECUTABLE__ === "boolean" ? __CAISEY_RUNTIME_EXECUTABLE__ : false;

/** Maps Node's platform/arch to our release platform names; undefined where we ship no executable. */
export function runtimePlatformOf(platform: NodeJS.Platform, arch: string): RuntimePlatform | undefined {
  const os = platform === "win32" ? "windows" : platform === "darwin" ? "darwin" : platform === "linux" ? "linux" : undefined;
  if (!os || (arch !== "x64" && arch !== "arm64")) return undefined;
  const name = `${os}-${arch}`;
  return name === "windows-arm64" ? undefined : (name as RuntimePlatform);
}

/**
 * The platform whose artifact this is. An executable knows what it was built as (an x64 build under
 * Rosetta or Windows-on-ARM emulation must be updated with x64 artifacts); from source it is the host's.
 */
export const RUNTIME_PLATFORM: RuntimePlatform | undefined =
  typeof __CAISEY_RUNTIME_PLATFORM__ === "string" ? __CAISEY_RUNTIME_PLATFORM__ : runtimePlatformOf(process.platform, process.arch);

/** Short fingerprint of the update key (SHA-256 of the DER), to compare with a release manifest's publicKey. */
export function updateKeyFingerprint(publicKey: string): string {
  return createHash("sha256").update(Buffer.from(publicKey, "base64")).digest("hex").slice(0, 16);
}

/** One line for `caisey-runtime version` and support: which build this is and which releases it will accept. */
export function describeBuild(): string {
  const kind = RUNTIME_EXECUTABLE ? "executable" : "Node script";
  const key = UPDATE_PUBLIC_KEY ? `update key ${updateKeyFingerprint(UPDATE_PUBLIC_KEY)}` : "no update key (built from source)";
  return `caisey-runtime ${RUNTIME_VERSION} (${RUNTIME_PLATFORM ?? `${process.platform}-${process.arch}`} ${kind}, ${key})`;
}
