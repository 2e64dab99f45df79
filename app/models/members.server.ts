// The members page: a read-only mirror of the tenant's Clerk membership, as
// member-sync.server.ts keeps it in D1 (webhook events and first sign-ins).
import { asc, eq, sql } from "drizzle-orm";
import type { Database } from "~/db/client.server";
import { members, type Role } from "~/db/schema";

/** Only admins see who is in the organisation and with which role. */
export const MEMBERS_PAGE_ROLES: readonly Role[] = ["admin"];

export interface MirroredMember {
  userId: string;
  name: string;
  email: string;
  role: Role;
  createdAt: number;
}

export async function listMembers(db: Database, orgId: string): Promise<MirroredMember[]> {
  return db
    .select({ userId: members.userId, name: members.name, email: members.email, role: members.role, createdAt: members.createdAt })
    .from(members)
    .where(eq(members.orgId, orgId))
    .orderBy(sql`case ${members.role} when 'admin' then 0 when 'technician' then 1 else 2 end`, asc(members.name), asc(members.userId));
}
