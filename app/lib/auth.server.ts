import { getAuth } from "@clerk/remix/ssr.server";
import { redirect } from "@remix-run/cloudflare";
import { and, eq } from "drizzle-orm";
import { createDb } from "~/db/client.server";
import { members, organisations, type Role } from "~/db/schema";
import { getEnv, type Env } from "./env.server";
import { CLERK_ROLE_TO_ROLE, provisionFromToken } from "~/models/member-sync.server";
import { resolveAuthMode } from "./offline-auth.server";

export interface SignedInMember {
  userId: string;
  name: string;
  email: string;
  role: Role;
  org: { id: string; name: string; slug: string };
}

/** The arguments every loader/action gets; also built by hand for the socket proxy. */
export interface AuthArgs {
  request: Request;
  context: { cloudflare: { env: Env } } | Record<string, unknown>;
}


export const CAN_RUN_COMMANDS: readonly Role[] = ["admin", "technician"];
export const CAN_MANAGE_ENROLLMENT: readonly Role[] = ["admin", "technician"];

export type AuthFailure =
  | { kind: "signed_out" }
  | { kind: "forbidden"; message: string };

/** One resolution per request: Remix runs the root, layout and page loaders with one load context. */
const resolvedPerRequest = new WeakMap<object, Promise<SignedInMember | AuthFailure>>();

/**
 * Verifies the Clerk session (the same code path in production and offline
 * mode; only the keys differ) and resolves the member in D1, once per request.
 * Never throws for an unauthenticated request; see requireMember for the
 * page-level wrapper.
 */
export function authenticateMember(args: AuthArgs): Promise<SignedInMember | AuthFailure> {
  const key = args.context as object;
  let resolved = resolvedPerRequest.get(key);
  if (!resolved) {
    resolved = resolveMember(args);
    resolvedPerRequest.set(key, resolved);
  }
  return resolved;
}

async function resolveMember(args: AuthArgs): Promise<SignedInMember | AuthFailure> {
  const env = getEnv(args.context as never);
  resolveAuthMode(env); // fails closed on a misconfigured offline mode
  const auth = await getAuth(args as never);
  if (!auth.userId) return { kind: "signed_out" };
  if (!auth.orgId) return { kind: "forbidden", message: "Choose an organisation to continue." };
  const role = auth.orgRole ? CLERK_ROLE_TO_ROLE[auth.orgRole] : undefined;
  if (!role) return { kind: "forbidden", message: "Your organisation role has no access to Caisey." };

  const db = createDb(env.DB);
  // The member lookup runs on every page: read it from the nearest D1 replica (Sessions API), not the primary.
  // A replica may trail the primary by its replication lag, so provisioning and its re-read use the primary.
  const nearest = createDb(env.DB.withSession("first-unconstrained"));
  const lookup = (from = nearest) =>
    from
      .select({
        name: members.name,
        email: members.email,
        orgName: organisations.name,
        orgSlug: organisations.slug,
      })
      .from(members)
      .innerJoin(organisations, eq(organisations.id, members.orgId))
      .where(and(eq(members.orgId, auth.orgId!), eq(members.userId, auth.userId!)));
  let [row] = await lookup();
  if (!row) {
    // First sign-in of this member (or of the whole organisation): provision from the verified token.
    const outcome = await provisionFromToken(db, {
      userId: auth.userId,
      orgId: auth.orgId,
      orgSlug: auth.orgSlug,
      role,
      issuedAtMs: Number(auth.sessionClaims?.iat ?? 0) * 1000,
      claims: auth.sessionClaims,
    });
    if (!outcome.provisioned) return { kind: "forbidden", message: outcome.message };
    [row] = await lookup(db);
    if (!row) return { kind: "forbidden", message: "Your account is not provisioned for this organisation." };
  }

  return {
    userId: auth.userId,
    name: row.name,
    email: row.email,
    role,
    org: { id: auth.orgId, name: row.orgName, slug: row.orgSlug },
  };
}

export function signInUrl(env: Env, request: Request): string {
  const url = new URL(request.url);
  const back = encodeURIComponent(url.pathname + url.search);
  const base = resolveAuthMode(env).mode === "offline" ? "/offline/sign-in" : env.CLERK_SIGN_IN_URL || "/sign-in";
  return `${base}?redirect_url=${back}`;
}

/** For loaders and actions: the signed-in member, or a thrown redirect/403. */
export async function requireMember(
  args: AuthArgs,
  allowedRoles: readonly Role[] = ["admin", "technician", "noc"],
): Promise<SignedInMember> {
  const result = await authenticateMember(args);
  if ("kind" in result) {
    if (result.kind === "signed_out") throw redirect(signInUrl(getEnv(args.context as never), args.request));
    throw new Response(result.message, { status: 403, statusText: "Forbidden" });
  }
  if (!allowedRoles.includes(result.role)) {
    throw new Response(`The ${result.role} role cannot do this.`, { status: 403, statusText: "Forbidden" });
  }
  return result;
}
