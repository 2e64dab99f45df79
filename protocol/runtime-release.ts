// What a runtime build is, wherever it travels: the build writes a manifest per
// version, the deploy publishes the executables and manifest to R2, the console
// serves them, and a runtime verifies an update against it. One schema for all.
import * as z from "zod";

/** Platforms we build single-file executables for (`<os>-<arch>`, Node's naming). */
export const RUNTIME_PLATFORMS = ["linux-x64", "linux-arm64", "windows-x64", "darwin-arm64", "darwin-x64"] as const;
export const runtimePlatformSchema = z.enum(RUNTIME_PLATFORMS);
export type RuntimePlatform = z.infer<typeof runtimePlatformSchema>;

/** Semver-ish: 1.2.3 or 1.2.3-rc.1; compared with compareRuntimeVersions. */
export const runtimeVersionSchema = z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, "a version like 1.2.3");

export const runtimeArtifactSchema = z.object({
  platform: runtimePlatformSchema,
  /** File name inside `runtime/<version>/<platform>/` in R2, e.g. caisey-runtime or caisey-runtime.exe. */
  file: z.string().min(1),
  size: z.number().int().positive(),
  /** Lowercase hex SHA-256 of the file. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Base64 Ed25519 signature over runtimeSignatureMessage(version, platform, sha256). */
  signature: z.string().min(1),
});
export type RuntimeArtifact = z.infer<typeof runtimeArtifactSchema>;

export const runtimeManifestSchema = z.object({
  version: runtimeVersionSchema,
  builtAt: z.string(),
  /** Base64 SPKI DER of the Ed25519 public key the build embedded in these executables. */
  publicKey: z.string().min(1),
  artifacts: z.array(runtimeArtifactSchema).min(1),
});
export type RuntimeManifest = z.infer<typeof runtimeManifestSchema>;

/** The exact bytes that are signed: binding version and platform stops a valid binary being replayed as another. */
export function runtimeSignatureMessage(version: string, platform: RuntimePlatform, sha256: string): string {
  return `caisey-runtime\n${version}\n${platform}\n${sha256}\n`;
}

/** R2 object keys. */
export const runtimeObjectKeys = {
  manifest: (version: string) => `runtime/${version}/manifest.json`,
  artifact: (version: string, platform: RuntimePlatform, file: string) => `runtime/${version}/${platform}/${file}`,
  /** The version the console offers for new installs: `{ "version": "1.2.3" }`. */
  latest: "runtime/latest.json",
} as const;

export function compareRuntimeVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split("-", 2) as [string, string | undefined];
    return { parts: core.split(".").map((n) => Number.parseInt(n, 10)), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i += 1) {
    const d = (x.parts[i] ?? 0) - (y.parts[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}
