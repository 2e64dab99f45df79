// The tenant's runtime target version (docs/decisions/0016-runtime-updates.md).
// An admin picks a released version; the console resolves it against the
// release manifest (hash and signature per platform), stores it on the tenant
// and tells every endpoint session of the tenant to re-read it. The sessions
// offer it to their runtimes; this module never talks to a runtime.
import { and, asc, eq, isNotNull, isNull } from "drizzle-orm";
import * as z from "zod";
import { createDb } from "~/db/client.server";
import { endpoints, organisations } from "~/db/schema";
import type { Env } from "~/lib/env.server";
import {
  compareRuntimeVersions,
  runtimeManifestSchema,
  runtimeObjectKeys,
  runtimeVersionSchema,
  type RuntimeManifest,
} from "@protocol/runtime-release";
import { runtimeTargetReloadedSchema, runtimeTargetSchema, SESSION_PATHS, type RuntimeTarget } from "@protocol/session-contract";
import { describeZodError } from "@protocol/messages";
import { callSessionAsDirectory } from "./session-call.server";
import { sessionAddress, sessionPlacementColumns } from "./session-placement.server";

const CONCURRENCY = 8;
const PUSH_TIMEOUT_MS = 10_000;

export class RuntimeTargetError extends Error {}

export const runtimeTargetFormSchema = z.object({
  /** Empty: stop offering updates. */
  version: z.union([z.literal(""), runtimeVersionSchema]),
  /** Checkbox: the admin confirms offering a version older than what endpoints run. */
  allowDowngrade: z.preprocess((v) => v === "on" || v === "true" || v === true, z.boolean()),
});

/** The release manifest of `version`, from R2 (or, when set for dev/tests, the configured releases URL). */
export async function readRuntimeManifest(env: Pick<Env, "RUNTIME_RELEASES" | "CAISEY_RUNTIME_RELEASES_URL">, version: string): Promise<RuntimeManifest | null> {
  let raw: unknown;
  // An explicit releases URL (local dev and the update fault test serve a build directory) wins over R2.
  if (env.CAISEY_RUNTIME_RELEASES_URL) {
    const response = await fetch(`${env.CAISEY_RUNTIME_RELEASES_URL.replace(/\/$/, "")}/${version}/manifest.json`);
    if (response.status === 404) return null;
    if (!response.ok) throw new RuntimeTargetError(`the release store answered ${response.status}`);
    raw = await response.json();
  } else if (env.RUNTIME_RELEASES) {
    const object = await env.RUNTIME_RELEASES.get(runtimeObjectKeys.manifest(version));
    if (!object) return null;
    raw = await object.json();
  } else {
    throw new RuntimeTargetError("no runtime release store is configured (RUNTIME_RELEASES)");
  }
  const parsed = runtimeManifestSchema.safeParse(raw);
  if (!parsed.success) throw new RuntimeTargetError(`the manifest of ${version} is malformed: ${describeZodError(parsed.error)}`);
  if (parsed.data.version !== version) throw new RuntimeTargetError(`the manifest stored for ${version} says ${parsed.data.version}`);
  return parsed.data;
}

/** Released versions, newest first (from R2's runtime/<version>/ prefixes; none listed without R2). */
export async function listRuntimeVersions(env: Pick<Env, "RUNTIME_RELEASES">): Promise<string[]> {
  if (!env.RUNTIME_RELEASES) return [];
  const versions: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.RUNTIME_RELEASES.list({ prefix: "runtime/", delimiter: "/", cursor });
    for (const prefix of page.delimitedPrefixes) {
      const version = prefix.slice("runtime/".length, -1);
      if (runtimeVersionSchema.safeParse(version).success) versions.push(version);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return versions.sort((a, b) => compareRuntimeVersions(b, a));
}

/** Where a runtime fetches an artifact: the console's download route, or the dev/test releases URL. */
function artifactUrl(env: Pick<Env, "RUNTIME_RELEASES" | "CAISEY_RUNTIME_RELEASES_URL">, manifest: RuntimeManifest, platform: string, file: string): string {
  if (env.CAISEY_RUNTIME_RELEASES_URL) {
    return `${env.CAISEY_RUNTIME_RELEASES_URL.replace(/\/$/, "")}/${manifest.version}/${platform}/${file}`;
  }
  return `/runtime/download/${platform}?version=${encodeURIComponent(manifest.version)}`;
}

export async function getRuntimeTarget(env: Pick<Env, "DB">, orgId: string): Promise<RuntimeTarget | null> {
  const [row] = await createDb(env.DB).select({ target: organisations.runtimeTarget }).from(organisations).where(eq(organisations.id, orgId));
  if (!row?.target) return null;
  const parsed = runtimeTargetSchema.safeParse(JSON.parse(row.target));
  return parsed.success ? parsed.data : null;
}

export interface RuntimeTargetPush {
  target: RuntimeTarget | null;
  pushed: number;
  failed: { endpointId: string; hostname: string }[];
}

/**
 * Sets (or clears, with an empty version) the tenant's target and tells every
 * live endpoint session. A session that misses the push re-reads the target the
 * next time its runtime connects with a stale copy.
 */
export async function setRuntimeTarget(
  env: Env,
  orgId: string,
  actor: { userId: string; name: string; address?: string | null },
  input: z.infer<typeof runtimeTargetFormSchema>,
): Promise<RuntimeTargetPush> {
  let target: RuntimeTarget | null = null;
  if (input.version) {
    const manifest = await readRuntimeManifest(env, input.version);
    if (!manifest) throw new RuntimeTargetError(`version ${input.version} is not in the release store`);
    target = {
      version: manifest.version,
      allowDowngrade: input.allowDowngrade,
      setAt: Date.now(),
      setBy: actor.name,
      artifacts: manifest.artifacts.map((a) => ({ platform: a.platform, size: a.size, sha256: a.sha256, signature: a.signature, url: artifactUrl(env, manifest, a.platform, a.file) })),
    };
  }
  const db = createDb(env.DB);
  await db
    .update(organisations)
    .set({ runtimeTargetVersion: target?.version ?? null, runtimeTarget: target ? JSON.stringify(target) : null })
    .where(eq(organisations.id, orgId));

  const fleet = await db
    .select({ endpointId: endpoints.id, hostname: endpoints.hostname, ...sessionPlacementColumns })
    .from(endpoints)
    // Unplaced sessions read the target when their runtime's first contact creates them.
    .where(and(eq(endpoints.orgId, orgId), isNull(endpoints.decommissionedAt), isNotNull(endpoints.placedAt)))
    .orderBy(asc(endpoints.hostname), asc(endpoints.id));
  const failed: RuntimeTargetPush["failed"] = [];
  let pushed = 0;
  let next = 0;
  const worker = async () => {
    while (next < fleet.length) {
      const endpoint = fleet[next++]!;
      const result = await callSessionAsDirectory(env, {
        session: sessionAddress({ id: endpoint.endpointId, ...endpoint }),
        orgId,
        path: SESSION_PATHS.runtimeTarget,
        body: {},
        actor: { userId: actor.userId, name: actor.name, address: actor.address ?? null },
        timeoutMs: PUSH_TIMEOUT_MS,
      });
      if (result.answered && result.status === 200 && runtimeTargetReloadedSchema.safeParse(result.body).success) pushed++;
      else failed.push({ endpointId: endpoint.endpointId, hostname: endpoint.hostname });
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, fleet.length) }, worker));
  return { target, pushed, failed };
}

const updateStateSchema = z.object({ version: z.string(), phase: z.string(), detail: z.string(), at: z.number() });

/** What the endpoint page shows about the runtime: version and platform as reported, the latest update step, the tenant's target. */
export async function getEndpointRuntime(env: Pick<Env, "DB">, orgId: string, endpointId: string) {
  const [row] = await createDb(env.DB)
    .select({ version: endpoints.runtimeVersion, platform: endpoints.runtimePlatform, update: endpoints.runtimeUpdate, target: organisations.runtimeTargetVersion })
    .from(endpoints)
    .innerJoin(organisations, eq(organisations.id, endpoints.orgId))
    .where(and(eq(endpoints.orgId, orgId), eq(endpoints.id, endpointId)));
  if (!row) return null;
  let update: z.infer<typeof updateStateSchema> | null = null;
  if (row.update) {
    const parsed = updateStateSchema.safeParse(JSON.parse(row.update));
    update = parsed.success ? parsed.data : null;
  }
  return { version: row.version, platform: row.platform, update, target: row.target };
}

/** Per reported version, how many of the tenant's live endpoints run it (the admin page's overview). */
export async function runtimeVersionCounts(env: Pick<Env, "DB">, orgId: string): Promise<{ version: string | null; platform: string | null; endpoints: number }[]> {
  const rows = await env.DB.prepare(
    `SELECT runtime_version AS version, runtime_platform AS platform, COUNT(*) AS endpoints FROM endpoints
     WHERE org_id = ? AND decommissioned_at IS NULL GROUP BY runtime_version, runtime_platform ORDER BY endpoints DESC`,
  )
    .bind(orgId)
    .all<{ version: string | null; platform: string | null; endpoints: number }>();
  return rows.results;
}
