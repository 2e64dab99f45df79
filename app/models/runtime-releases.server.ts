// Runtime releases as the console serves them: executables, manifests and the
// Windows service wrapper, read from the RUNTIME_RELEASES R2 bucket that
// scripts/publish-runtime.mjs fills. The hash a download carries always comes
// from the manifest, never from the object itself, so an object swapped in
// the bucket fails the installer's check instead of carrying its own hash.
import * as z from "zod";
import {
  runtimeManifestSchema,
  runtimeObjectKeys,
  runtimePlatformSchema,
  runtimeVersionSchema,
  type RuntimeArtifact,
  type RuntimeManifest,
  type RuntimePlatform,
} from "@protocol/runtime-release";
import { describeZodError } from "@protocol/messages";
import type { Env } from "~/lib/env.server";

/** Something the caller can be told plainly: 400 bad input, 404 no such thing, 503 not published yet. */
export class ReleaseError extends Error {
  constructor(message: string, readonly status: 400 | 404 | 503) {
    super(message);
  }
}

const PUBLISH_HINT = "publish a build with scripts/publish-runtime.mjs (npm run dev does this locally)";

export const releaseQuerySchema = z.object({ version: runtimeVersionSchema.optional() }).strict();

/** Parses `?version=` (the only parameter); anything else is a 400. */
export function parseReleaseQuery(url: URL): { version?: string } {
  const parsed = releaseQuerySchema.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) throw new ReleaseError(`Bad query: ${describeZodError(parsed.error)}`, 400);
  return parsed.data;
}

export function parsePlatform(value: string | undefined): RuntimePlatform {
  const parsed = runtimePlatformSchema.safeParse(value);
  if (!parsed.success) {
    throw new ReleaseError(`Unknown platform ${JSON.stringify(value ?? "")}; use one of ${runtimePlatformSchema.options.join(", ")}.`, 404);
  }
  return parsed.data;
}

function bucketOf(env: Env): R2Bucket {
  if (!env.RUNTIME_RELEASES) throw new ReleaseError(`Runtime downloads are not configured: the RUNTIME_RELEASES R2 binding is missing.`, 503);
  return env.RUNTIME_RELEASES;
}

async function readJson(bucket: R2Bucket, key: string): Promise<unknown | null> {
  const object = await bucket.get(key);
  if (!object) return null;
  try {
    return await object.json();
  } catch {
    return undefined;
  }
}

const latestSchema = z.object({ version: runtimeVersionSchema });

/** The version offered for new installs. */
export async function latestRuntimeVersion(env: Env): Promise<string> {
  const data = await readJson(bucketOf(env), runtimeObjectKeys.latest);
  if (data === null) throw new ReleaseError(`No runtime release has been published yet: ${PUBLISH_HINT}.`, 503);
  const parsed = latestSchema.safeParse(data);
  if (!parsed.success) throw new ReleaseError(`${runtimeObjectKeys.latest} in the release bucket is invalid; publish the release again.`, 503);
  return parsed.data.version;
}

export async function getRuntimeManifest(env: Env, version?: string): Promise<RuntimeManifest> {
  const wanted = version ?? (await latestRuntimeVersion(env));
  const data = await readJson(bucketOf(env), runtimeObjectKeys.manifest(wanted));
  if (data === null) {
    if (version) throw new ReleaseError(`Runtime version ${version} is not published.`, 404);
    throw new ReleaseError(`The latest runtime (${wanted}) has no manifest in the release bucket: ${PUBLISH_HINT}.`, 503);
  }
  const parsed = runtimeManifestSchema.safeParse(data);
  if (!parsed.success || parsed.data.version !== wanted) {
    throw new ReleaseError(`The manifest of runtime ${wanted} in the release bucket is invalid; publish the release again.`, 503);
  }
  return parsed.data;
}

export interface ArtifactDownload {
  version: string;
  artifact: RuntimeArtifact;
  body: ReadableStream;
}

export async function getRuntimeArtifact(env: Env, platform: RuntimePlatform, version?: string): Promise<ArtifactDownload> {
  const manifest = await getRuntimeManifest(env, version);
  const artifact = manifest.artifacts.find((a) => a.platform === platform);
  if (!artifact) throw new ReleaseError(`Runtime ${manifest.version} has no build for ${platform}.`, 404);
  const object = await bucketOf(env).get(runtimeObjectKeys.artifact(manifest.version, platform, artifact.file));
  if (!object) {
    throw new ReleaseError(`The ${platform} executable of runtime ${manifest.version} is missing from the release bucket; publish the release again.`, 503);
  }
  return { version: manifest.version, artifact, body: object.body };
}

/** Headers every executable download carries (the installers and the updater read them). */
export function artifactHeaders(download: ArtifactDownload, pinned: boolean): Headers {
  const { artifact, version } = download;
  return new Headers({
    "Content-Type": "application/octet-stream",
    "Content-Length": String(artifact.size),
    "Content-Disposition": `attachment; filename="${artifact.file}"`,
    "X-Caisey-Sha256": artifact.sha256,
    "X-Caisey-Signature": artifact.signature,
    "X-Caisey-Version": version,
    ETag: `"${artifact.sha256}"`,
    // A pinned version never changes; "latest" moves when a release is published.
    "Cache-Control": pinned ? "public, max-age=31536000, immutable" : "public, max-age=60",
  });
}

/**
 * WinSW, the Windows service wrapper install.ps1 registers the runtime with
 * (docs/decisions/0013-runtime-install-and-service.md), published next to the
 * releases with its own small manifest.
 */
export const serviceWrapperKeys = {
  manifest: "runtime/tools/service-wrapper/manifest.json",
  file: (file: string) => `runtime/tools/service-wrapper/${file}`,
} as const;

export const serviceWrapperManifestSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  source: z.string().min(1),
  file: z.string().regex(/^[\w.-]+$/),
  size: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export async function getServiceWrapper(env: Env) {
  const bucket = bucketOf(env);
  const data = await readJson(bucket, serviceWrapperKeys.manifest);
  if (data === null) throw new ReleaseError(`The Windows service wrapper has not been published: ${PUBLISH_HINT}.`, 503);
  const parsed = serviceWrapperManifestSchema.safeParse(data);
  if (!parsed.success) throw new ReleaseError(`The service wrapper manifest in the release bucket is invalid; publish again.`, 503);
  const object = await bucket.get(serviceWrapperKeys.file(parsed.data.file));
  if (!object) throw new ReleaseError(`The Windows service wrapper is missing from the release bucket; publish again.`, 503);
  const wrapper = parsed.data;
  const headers = new Headers({
    "Content-Type": "application/octet-stream",
    "Content-Length": String(wrapper.size),
    "Content-Disposition": `attachment; filename="${wrapper.file}"`,
    "X-Caisey-Sha256": wrapper.sha256,
    "X-Caisey-Version": wrapper.version,
    ETag: `"${wrapper.sha256}"`,
    "Cache-Control": "public, max-age=300",
  });
  return { headers, body: object.body };
}

/** A ReleaseError as the plain-text answer curl and Invoke-WebRequest print. */
export function releaseErrorResponse(error: unknown): Response {
  if (!(error instanceof ReleaseError)) throw error;
  return new Response(`${error.message}\n`, {
    status: error.status,
    headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" },
  });
}
