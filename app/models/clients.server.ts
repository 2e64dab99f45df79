import { and, asc, eq, isNull, ne, sql } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { clients, endpoints, type Client, type Role } from "~/db/schema";
import { newId } from "~/lib/crypto.server";
import { isStaffAddress } from "~/models/approval-policies.server";
import { changeWithAudit, DirectoryError, type DirectoryActor } from "~/models/directory-audit.server";
import { isValidTimeZone } from "@protocol/approvals";
import { describeZodError } from "@protocol/messages";

export interface ClientSummary {
  id: string;
  name: string;
  contactName: string | null;
  contactEmail: string | null;
  endpointCount: number;
  onlineCount: number;
  archivedAt: number | null;
}

/** The tenant's clients; archived ones only when asked for (they are kept, not listed with the active ones). */
export async function listClients(db: Database, orgId: string, { includeArchived = false } = {}): Promise<ClientSummary[]> {
  return db
    .select({
      id: clients.id,
      name: clients.name,
      contactName: clients.contactName,
      contactEmail: clients.contactEmail,
      endpointCount: sql<number>`count(${endpoints.id})`,
      onlineCount: sql<number>`coalesce(sum(${endpoints.online}), 0)`,
      archivedAt: clients.archivedAt,
    })
    .from(clients)
    .leftJoin(endpoints, eq(endpoints.clientId, clients.id))
    .where(includeArchived ? eq(clients.orgId, orgId) : and(eq(clients.orgId, orgId), isNull(clients.archivedAt)))
    .groupBy(clients.id)
    .orderBy(asc(clients.name));
}

/** A client of this tenant, or null (callers answer 404 so other tenants' ids are not disclosed). */
export async function getClientForOrg(db: Database, orgId: string, clientId: string) {
  const [row] = await db
    .select()
    .from(clients)
    .where(and(eq(clients.orgId, orgId), eq(clients.id, clientId)));
  return row ?? null;
}

export type TimeZoneResult = { ok: true; timeZone: string } | { ok: false; status: 400 | 404; error: string };

/**
 * Sets the IANA zone the client's people live in (approval pages and emails
 * show times in it). Validated against the runtime's own zone database, so a
 * zone saved here is one every formatter in the stack accepts.
 */
export async function setClientTimeZone(db: Database, orgId: string, clientId: string, zone: string): Promise<TimeZoneResult> {
  const canonical = canonicalTimeZone(zone);
  if (!canonical.ok) return canonical;
  const { timeZone } = canonical;
  const updated = await db
    .update(clients)
    .set({ timeZone })
    .where(and(eq(clients.orgId, orgId), eq(clients.id, clientId)))
    .returning({ id: clients.id });
  if (updated.length === 0) return { ok: false, status: 404, error: "No such client in your organisation." };
  return { ok: true, timeZone };
}

function canonicalTimeZone(zone: string): TimeZoneResult {
  const typed = zone.trim();
  if (!typed || typed.length > 64 || !isValidTimeZone(typed)) {
    return { ok: false, status: 400, error: `"${typed.slice(0, 64)}" is not a time zone. Use an IANA name such as Europe/Berlin or America/Chicago.` };
  }
  // Zone names match case-insensitively; store the canonical spelling ("europe/berlin" → "Europe/Berlin").
  return { ok: true, timeZone: new Intl.DateTimeFormat("en-US", { timeZone: typed }).resolvedOptions().timeZone };
}

// ---------------------------------------------------------------------------
// Admin screens: create, edit, archive and restore (docs/decisions/0022-admin-screens.md).

/** Only admins change the client directory. */
export const CLIENT_ADMIN_ROLES: readonly Role[] = ["admin"];

const NO_SUCH_CLIENT = "No such client in your organisation.";

export const clientFieldsSchema = z.object({
  name: z.string().trim().min(1, "Give the client a name.").max(100, "The client's name is at most 100 characters."),
  contactName: z.string().trim().max(100, "The contact's name is at most 100 characters.").default(""),
  contactEmail: z
    .string()
    .trim()
    .max(200)
    .default("")
    .pipe(z.union([z.literal(""), z.email("The contact's email is not an email address.")])),
  timeZone: z.string().max(100).default("UTC"),
  notes: z.string().max(2000, "Notes are at most 2,000 characters.").default(""),
});
export type ClientFieldsInput = z.input<typeof clientFieldsSchema>;
type ClientFields = { name: string; contactName: string | null; contactEmail: string | null; timeZone: string; notes: string };

function requireClientAdmin(actor: DirectoryActor): void {
  if (!CLIENT_ADMIN_ROLES.includes(actor.role)) throw new DirectoryError(`The ${actor.role} role cannot change clients.`, 403);
}

/**
 * Validates the form into stored values. The contact is the client's default
 * approver (when no approval policy names others), so the same rule as the
 * policy editor applies: nobody who works for the MSP may be it.
 */
async function validateFields(db: Database, orgId: string, input: ClientFieldsInput, selfId: string | null): Promise<ClientFields> {
  const parsed = clientFieldsSchema.safeParse(input);
  if (!parsed.success) throw new DirectoryError(describeZodError(parsed.error), 400);
  const zone = canonicalTimeZone(parsed.data.timeZone);
  if (!zone.ok) throw new DirectoryError(zone.error, 400);
  const fields: ClientFields = {
    name: parsed.data.name,
    contactName: parsed.data.contactName || null,
    contactEmail: parsed.data.contactEmail || null,
    timeZone: zone.timeZone,
    notes: parsed.data.notes.trim(),
  };
  if (fields.contactEmail && !fields.contactName) throw new DirectoryError("Name the contact whose email this is.", 400);
  if (fields.contactEmail && (await isStaffAddress(db, orgId, fields.contactEmail))) {
    throw new DirectoryError(
      `${fields.contactEmail} is a member of your organisation. The contact is the client's default approver and must be the client's own person, never staff.`,
      400,
    );
  }
  const sameName = await db
    .select({ id: clients.id })
    .from(clients)
    .where(and(eq(clients.orgId, orgId), sql`${clients.name} = ${fields.name} collate nocase`, selfId ? ne(clients.id, selfId) : undefined));
  if (sameName.length) throw new DirectoryError(`Another client is already called "${fields.name}".`, 409);
  return fields;
}

async function loadForAdmin(db: Database, actor: DirectoryActor, clientId: string): Promise<Client> {
  requireClientAdmin(actor);
  const client = await getClientForOrg(db, actor.orgId, clientId);
  if (!client) throw new DirectoryError(NO_SUCH_CLIENT, 404);
  return client;
}

export async function createClient(db: Database, actor: DirectoryActor, input: ClientFieldsInput, now = Date.now()): Promise<{ id: string }> {
  requireClientAdmin(actor);
  const fields = await validateFields(db, actor.orgId, input, null);
  const id = newId("cl");
  await changeWithAudit(
    db,
    actor,
    { kind: "client.created", subjectType: "client", subjectId: id, detail: { ...fields, notes: fields.notes ? "(set)" : "" } },
    (d1) => [
      d1
        .prepare("INSERT INTO clients (id, org_id, name, contact_name, contact_email, time_zone, notes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(id, actor.orgId, fields.name, fields.contactName, fields.contactEmail, fields.timeZone, fields.notes, now),
    ],
    now,
  );
  return { id };
}

export interface ClientUpdate {
  /** Field names whose value changed (empty: nothing was saved or audited). */
  changed: (keyof ClientFields)[];
  /** The endpoint sessions must re-read their policy copy: the zone or the default approver changed. */
  sessionsNeedRefresh: boolean;
}

/** Applies `patch` over the client's current values (a form may send only the fields it shows). */
export async function updateClient(
  db: Database,
  actor: DirectoryActor,
  clientId: string,
  patch: Partial<ClientFieldsInput>,
  now = Date.now(),
): Promise<ClientUpdate> {
  const client = await loadForAdmin(db, actor, clientId);
  const current: ClientFieldsInput = {
    name: client.name,
    contactName: client.contactName ?? "",
    contactEmail: client.contactEmail ?? "",
    timeZone: client.timeZone,
    notes: client.notes,
  };
  const fields = await validateFields(db, actor.orgId, { ...current, ...patch }, client.id);
  const before: ClientFields = { name: client.name, contactName: client.contactName, contactEmail: client.contactEmail, timeZone: client.timeZone, notes: client.notes };
  const changed = (Object.keys(fields) as (keyof ClientFields)[]).filter((key) => fields[key] !== before[key]);
  if (changed.length === 0) return { changed, sessionsNeedRefresh: false };
  // Notes are the MSP's free text: the trail says they changed, not what they say.
  const detail = Object.fromEntries(changed.map((key) => [key, key === "notes" ? "(changed)" : { from: before[key], to: fields[key] }]));
  const { applied } = await changeWithAudit(
    db,
    actor,
    { kind: "client.updated", subjectType: "client", subjectId: client.id, detail },
    (d1) => [
      d1
        .prepare("UPDATE clients SET name = ?, contact_name = ?, contact_email = ?, time_zone = ?, notes = ? WHERE id = ? AND org_id = ?")
        .bind(fields.name, fields.contactName, fields.contactEmail, fields.timeZone, fields.notes, client.id, actor.orgId),
    ],
    now,
  );
  if (!applied) throw new DirectoryError(NO_SUCH_CLIENT, 404);
  return { changed, sessionsNeedRefresh: changed.some((key) => key === "timeZone" || key === "contactName" || key === "contactEmail") };
}

/**
 * Archives a client: hidden from default lists, no new enrollment tokens, and its
 * outstanding tokens for new endpoints are revoked in the same batch (a token
 * handed out before would otherwise still add endpoints). Its endpoints stay
 * readable and keep running: ending service for an endpoint is decommissioning.
 */
export async function archiveClient(db: Database, actor: DirectoryActor, clientId: string, now = Date.now()): Promise<{ revokedTokens: number }> {
  const client = await loadForAdmin(db, actor, clientId);
  if (client.archivedAt !== null) throw new DirectoryError(`${client.name} is already archived.`, 409);
  const { applied, results } = await changeWithAudit(
    db,
    actor,
    { kind: "client.archived", subjectType: "client", subjectId: client.id, detail: { name: client.name } },
    (d1) => [
      d1
        .prepare("UPDATE enrollment_tokens SET revoked_at = ? WHERE org_id = ? AND client_id = ? AND endpoint_id IS NULL AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses")
        .bind(now, actor.orgId, client.id, now),
      d1
        .prepare("UPDATE clients SET archived_at = ?, archived_by = ? WHERE id = ? AND org_id = ? AND archived_at IS NULL")
        .bind(now, actor.name, client.id, actor.orgId),
    ],
    now,
  );
  if (!applied) throw new DirectoryError(`${client.name} is already archived.`, 409);
  return { revokedTokens: results[0]!.meta.changes };
}

/** Lists the client again and allows new tokens; tokens revoked by the archive stay revoked. */
export async function restoreClient(db: Database, actor: DirectoryActor, clientId: string, now = Date.now()): Promise<void> {
  const client = await loadForAdmin(db, actor, clientId);
  if (client.archivedAt === null) throw new DirectoryError(`${client.name} is not archived.`, 409);
  const { applied } = await changeWithAudit(
    db,
    actor,
    { kind: "client.restored", subjectType: "client", subjectId: client.id, detail: { name: client.name } },
    (d1) => [
      d1
        .prepare("UPDATE clients SET archived_at = NULL, archived_by = NULL WHERE id = ? AND org_id = ? AND archived_at IS NOT NULL")
        .bind(client.id, actor.orgId),
    ],
    now,
  );
  if (!applied) throw new DirectoryError(`${client.name} is not archived.`, 409);
}
