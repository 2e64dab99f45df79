// An admin names an endpoint ("Reception PC") and sets its tags. Both are
// directory facts for people finding endpoints; the session and the runtime
// never use them, so the session is not told. Audited in the tenant's
// directory chain (directory-audit.server.ts) in the same batch as the change.
import { and, asc, eq } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { endpoints, endpointTags, tags, type Role } from "~/db/schema";
import { newId } from "~/lib/crypto.server";
import { changeWithAudit, DirectoryError, type DirectoryActor } from "~/models/directory-audit.server";
import { describeZodError } from "@protocol/messages";

/** Only admins rename or retag endpoints. */
export const ENDPOINT_DETAILS_ROLES: readonly Role[] = ["admin"];

export const MAX_TAGS_PER_ENDPOINT = 20;
const TAG_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N} ._:/+-]*$/u;

export const endpointDetailsSchema = z.object({
  displayName: z.string().trim().max(100, "The display name is at most 100 characters.").default(""),
  /** Comma-separated, as typed. */
  tags: z
    .string()
    .max(2000)
    .default("")
    .transform((text) => text.split(",").map((tag) => tag.trim()).filter(Boolean))
    .pipe(
      z
        .array(
          z
            .string()
            .max(40, "A tag is at most 40 characters.")
            .regex(TAG_PATTERN, "Tags are letters, digits, spaces and . _ : / + - (starting with a letter or digit), separated by commas."),
        )
        .max(MAX_TAGS_PER_ENDPOINT, `At most ${MAX_TAGS_PER_ENDPOINT} tags.`),
    ),
});
export type EndpointDetailsInput = z.input<typeof endpointDetailsSchema>;

export interface EndpointDetailsUpdate {
  /** "displayName" and/or "tags"; empty when nothing changed (nothing saved or audited). */
  changed: ("displayName" | "tags")[];
  displayName: string | null;
  tags: string[];
}

export async function updateEndpointDetails(
  db: Database,
  actor: DirectoryActor,
  endpointId: string,
  input: EndpointDetailsInput,
  now = Date.now(),
): Promise<EndpointDetailsUpdate> {
  // Role first (a forbidden caller learns nothing about the id), then tenant.
  if (!ENDPOINT_DETAILS_ROLES.includes(actor.role)) throw new DirectoryError(`The ${actor.role} role cannot rename or retag endpoints.`, 403);
  const [endpoint] = await db
    .select({ id: endpoints.id, displayName: endpoints.displayName, decommissionedAt: endpoints.decommissionedAt })
    .from(endpoints)
    .where(and(eq(endpoints.orgId, actor.orgId), eq(endpoints.id, endpointId)));
  if (!endpoint) throw new DirectoryError("No such endpoint in your organisation.", 404);
  if (endpoint.decommissionedAt !== null) throw new DirectoryError("This endpoint was decommissioned; it is kept as it was.", 409);
  const parsed = endpointDetailsSchema.safeParse(input);
  if (!parsed.success) throw new DirectoryError(describeZodError(parsed.error), 400);

  const currentTags = await db
    .select({ id: tags.id, name: tags.name })
    .from(endpointTags)
    .innerJoin(tags, eq(tags.id, endpointTags.tagId))
    .where(eq(endpointTags.endpointId, endpoint.id))
    .orderBy(asc(tags.name));
  // Tags match case-insensitively (the endpoint filter does too): an existing tag's spelling wins.
  const known = await db.select({ id: tags.id, name: tags.name }).from(tags).where(eq(tags.orgId, actor.orgId));
  const byLower = new Map(known.map((tag) => [tag.name.toLowerCase(), tag]));
  const wanted = new Map<string, { id: string; name: string; isNew: boolean }>();
  for (const typed of parsed.data.tags) {
    const key = typed.toLowerCase();
    if (wanted.has(key)) continue;
    const existing = byLower.get(key);
    wanted.set(key, existing ? { ...existing, isNew: false } : { id: newId("tag"), name: typed, isNew: true });
  }
  const nextTags = [...wanted.values()].map((tag) => tag.name).sort((a, b) => a.localeCompare(b));
  const previousTags = currentTags.map((tag) => tag.name).sort((a, b) => a.localeCompare(b));
  const displayName = parsed.data.displayName || null;

  const changed: EndpointDetailsUpdate["changed"] = [];
  if (displayName !== endpoint.displayName) changed.push("displayName");
  if (nextTags.join("\n") !== previousTags.join("\n")) changed.push("tags");
  if (changed.length === 0) return { changed, displayName, tags: nextTags };

  const detail: Record<string, unknown> = {};
  if (changed.includes("displayName")) detail.displayName = { from: endpoint.displayName, to: displayName };
  if (changed.includes("tags")) detail.tags = { from: previousTags, to: nextTags };
  const live = "EXISTS (SELECT 1 FROM endpoints WHERE id = ?1 AND org_id = ?2 AND decommissioned_at IS NULL)";
  const { applied } = await changeWithAudit(
    db,
    actor,
    { kind: "endpoint.details_updated", subjectType: "endpoint", subjectId: endpoint.id, detail },
    (d1) => [
      ...[...wanted.values()]
        .filter((tag) => tag.isNew)
        .map((tag) => d1.prepare("INSERT OR IGNORE INTO tags (id, org_id, name) VALUES (?, ?, ?)").bind(tag.id, actor.orgId, tag.name)),
      d1.prepare(`DELETE FROM endpoint_tags WHERE endpoint_id = ?1 AND ${live}`).bind(endpoint.id, actor.orgId),
      d1
        .prepare(
          `INSERT INTO endpoint_tags (endpoint_id, tag_id)
           SELECT ?1, t.id FROM tags t WHERE t.org_id = ?2 AND t.name IN (SELECT value FROM json_each(?3)) AND ${live}`,
        )
        .bind(endpoint.id, actor.orgId, JSON.stringify(nextTags)),
      // A tag no endpoint carries any more would linger in the endpoint filter.
      d1
        .prepare("DELETE FROM tags WHERE org_id = ?1 AND id IN (SELECT value FROM json_each(?2)) AND NOT EXISTS (SELECT 1 FROM endpoint_tags et WHERE et.tag_id = tags.id)")
        .bind(actor.orgId, JSON.stringify(currentTags.map((tag) => tag.id))),
      // Last: whether this matched decides whether the change is recorded.
      d1.prepare("UPDATE endpoints SET display_name = ?3 WHERE id = ?1 AND org_id = ?2 AND decommissioned_at IS NULL").bind(endpoint.id, actor.orgId, displayName),
    ],
    now,
  );
  if (!applied) throw new DirectoryError("This endpoint was decommissioned; it is kept as it was.", 409);
  return { changed, displayName, tags: nextTags };
}
