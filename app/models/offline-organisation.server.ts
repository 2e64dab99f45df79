// Offline sign-in as the first admin of a brand-new organisation (docs/decisions/0020-tenant-onboarding.md).
// Server-only: the zod schema must not reach the browser bundle (zod probes \`new Function\`, which the CSP refuses).
import type { ActionFunctionArgs } from "@remix-run/cloudflare";
import { json, redirect } from "@remix-run/cloudflare";
import * as z from "zod";
import { getEnv } from "~/lib/env.server";
import { isSecureRequest, mintOfflineSessionToken, sessionCookieHeaders } from "~/lib/offline-auth.server";
import { safeRedirectPath } from "~/lib/redirect";
import { trustedOrigins } from "~/lib/request.server";

/**
 * What Clerk would mint for the first admin of an organisation that has never
 * used Caisey: the directory knows neither, and provisions both on the first
 * request (app/models/member-sync.server.ts), exactly as with Clerk.
 */
const newOrganisationSchema = z.object({
  orgName: z.string().trim().min(2, "Name the organisation").max(200),
  name: z.string().trim().min(1, "Enter your name").max(200),
  email: z.email("Enter an email address").max(320),
});

export async function signInAsNewOrganisation(request: Request, context: ActionFunctionArgs["context"], signingKeyPem: string, form: FormData) {
  const parsed = newOrganisationSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return json({ error: parsed.error.issues.map((i) => i.message).join("; ") }, { status: 400 });
  const slug = parsed.data.orgName.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "org";
  const suffix = crypto.randomUUID().slice(0, 8);
  const { token, iat } = await mintOfflineSessionToken({
    signingKeyPem,
    userId: `user_offline_${suffix}`,
    orgId: `org_offline_${suffix}`,
    orgSlug: `${slug}-${suffix}`,
    role: "admin",
    profile: { email: parsed.data.email, name: parsed.data.name, orgName: parsed.data.orgName },
  });
  const headers = new Headers({ "Cache-Control": "no-store" });
  for (const cookie of sessionCookieHeaders(token, iat, isSecureRequest(request))) headers.append("Set-Cookie", cookie);
  return redirect(safeRedirectPath(String(form.get("redirect_url") ?? ""), "/clients", trustedOrigins(request, getEnv(context))), { headers });
}

