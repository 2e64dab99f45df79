// Same-origin stand-in for Clerk's Frontend API handshake in offline mode.
//
// With CLERK_PROXY_URL=/offline/clerk, @clerk/remix resolves the proxy against
// the request URL and answers a page load whose session needs refreshing
// (expired token, missing __client_uat, ...) with a 307 to
//   <origin>/offline/clerk/v1/client/handshake?redirect_url=<page>&...
// Real Clerk would refresh the session there. Offline, we verify the old
// token's signature with CLERK_JWT_KEY (expiry ignored), check the member still
// exists in D1, re-mint and send the browser back. Anything else goes to the
// offline sign-in page with cleared cookies (so the sign-in page itself cannot
// loop back here). Answers 404 unless offline mode is on.
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { and, eq } from "drizzle-orm";
import { createDb } from "~/db/client.server";
import { members, organisations } from "~/db/schema";
import { getEnv } from "~/lib/env.server";
import {
  OFFLINE_SIGN_IN_PATH,
  clearSessionCookieHeaders,
  isSecureRequest,
  mintOfflineSessionToken,
  readSessionCookie,
  resolveAuthMode,
  sessionCookieHeaders,
  verifyOfflineTokenSignature,
} from "~/lib/offline-auth.server";
import { safeRedirectPath } from "~/lib/redirect";
import { trustedOrigins } from "~/lib/request.server";

export async function loader({ request, context }: LoaderFunctionArgs) {
  const env = getEnv(context);
  const mode = resolveAuthMode(env);
  if (mode.mode !== "offline") throw new Response("Not Found", { status: 404, statusText: "Not Found" });

  const url = new URL(request.url);
  const back = safeRedirectPath(url.searchParams.get("redirect_url"), "/", trustedOrigins(request, env));
  const headers = new Headers({ "Cache-Control": "no-store" });

  const token = readSessionCookie(request);
  const claims = token ? await verifyOfflineTokenSignature(token, mode.jwtKeyPem) : null;
  const orgId = claims?.o && typeof claims.o.id === "string" ? claims.o.id : null;
  if (claims && orgId) {
    const db = createDb(env.DB);
    const [member] = await db
      .select({ userId: members.userId, orgId: members.orgId, role: members.role, orgSlug: organisations.slug, name: members.name, email: members.email, orgName: organisations.name })
      .from(members)
      .innerJoin(organisations, eq(organisations.id, members.orgId))
      .where(and(eq(members.orgId, orgId), eq(members.userId, claims.sub)));
    if (member) {
      const { token: fresh, iat } = await mintOfflineSessionToken({
        signingKeyPem: mode.signingKeyPem,
        userId: member.userId,
        orgId: member.orgId,
        orgSlug: member.orgSlug,
        role: member.role, // the current role in D1, not the one in the old token
        profile: { email: member.email, name: member.name, orgName: member.orgName },
      });
      for (const cookie of sessionCookieHeaders(fresh, iat, isSecureRequest(request))) headers.append("Set-Cookie", cookie);
      headers.set("Location", back);
      return new Response(null, { status: 307, headers });
    }
  }

  for (const cookie of clearSessionCookieHeaders()) headers.append("Set-Cookie", cookie);
  headers.set("Location", `${OFFLINE_SIGN_IN_PATH}?redirect_url=${encodeURIComponent(back)}`);
  return new Response(null, { status: 307, headers });
}
