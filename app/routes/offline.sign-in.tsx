// Local sign-in for offline auth (docs/decisions/0002-auth.md): pick a member
// from D1 and get a Clerk-shaped session token signed with the offline key.
// Answers 404 unless offline mode is on.
import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/cloudflare";
import { json, redirect } from "@remix-run/cloudflare";
import { Form, useActionData, useLoaderData } from "@remix-run/react";
import { and, asc, eq } from "drizzle-orm";
import { createDb } from "~/db/client.server";
import { members, organisations } from "~/db/schema";
import { getEnv } from "~/lib/env.server";
import {
  isSecureRequest,
  mintOfflineSessionToken,
  resolveAuthMode,
  sessionCookieHeaders,
} from "~/lib/offline-auth.server";
import { safeRedirectPath } from "~/lib/redirect";
import { signInAsNewOrganisation } from "~/models/offline-organisation.server";
import { trustedOrigins } from "~/lib/request.server";

export const meta: MetaFunction = () => [{ title: "Offline sign-in · Caisey" }];

function requireOffline(context: LoaderFunctionArgs["context"]) {
  const mode = resolveAuthMode(getEnv(context));
  if (mode.mode !== "offline") throw new Response("Not Found", { status: 404, statusText: "Not Found" });
  return mode;
}

export async function loader({ request, context }: LoaderFunctionArgs) {
  requireOffline(context);
  const db = createDb(getEnv(context).DB);
  const rows = await db
    .select({
      userId: members.userId,
      orgId: members.orgId,
      name: members.name,
      email: members.email,
      role: members.role,
      orgName: organisations.name,
      orgSlug: organisations.slug,
    })
    .from(members)
    .innerJoin(organisations, eq(organisations.id, members.orgId))
    .orderBy(asc(organisations.name), asc(members.name));
  const redirectUrl = new URL(request.url).searchParams.get("redirect_url") ?? "";
  return json(
    { members: rows, redirectUrl: safeRedirectPath(redirectUrl, "", trustedOrigins(request, getEnv(context))) },
    { headers: { "Cache-Control": "no-store" } },
  );
}

export async function action({ request, context }: ActionFunctionArgs) {
  const { signingKeyPem } = requireOffline(context);
  const form = await request.formData();
  if (form.get("intent") === "new-organisation") return signInAsNewOrganisation(request, context, signingKeyPem, form);
  const userId = String(form.get("userId") ?? "");
  const orgId = String(form.get("orgId") ?? "");
  if (!userId || !orgId) return json({ error: "Choose a member to sign in as." }, { status: 400 });

  const db = createDb(getEnv(context).DB);
  const [member] = await db
    .select({ userId: members.userId, orgId: members.orgId, role: members.role, orgSlug: organisations.slug, name: members.name, email: members.email, orgName: organisations.name })
    .from(members)
    .innerJoin(organisations, eq(organisations.id, members.orgId))
    .where(and(eq(members.orgId, orgId), eq(members.userId, userId)));
  if (!member) return json({ error: "No such member in this organisation." }, { status: 400 });

  const { token, iat } = await mintOfflineSessionToken({
    signingKeyPem,
    userId: member.userId,
    orgId: member.orgId,
    orgSlug: member.orgSlug,
    role: member.role,
    profile: { email: member.email, name: member.name, orgName: member.orgName },
  });
  const requested = String(form.get("redirect_url") ?? "") || new URL(request.url).searchParams.get("redirect_url");
  const headers = new Headers({ "Cache-Control": "no-store" });
  for (const cookie of sessionCookieHeaders(token, iat, isSecureRequest(request))) headers.append("Set-Cookie", cookie);
  return redirect(safeRedirectPath(requested, "/", trustedOrigins(request, getEnv(context))), { headers });
}

const ROLE_BADGE: Record<string, string> = {
  admin: "bg-violet-100 text-violet-800",
  technician: "bg-sky-100 text-sky-800",
  noc: "bg-emerald-100 text-emerald-800",
};

export default function OfflineSignIn() {
  const { members: rows, redirectUrl } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  return (
    <main className="flex min-h-full items-start justify-center px-4 py-12">
      <div className="w-full max-w-xl">
        <div
          role="note"
          className="mb-6 rounded-md border border-amber-300 bg-amber-100 px-4 py-3 text-sm font-medium text-amber-950"
        >
          Offline sign-in — local development only
          <p className="mt-1 text-xs font-normal text-amber-900">
            Tokens are signed with a local key from .dev.vars and are rejected by production Clerk.
          </p>
        </div>
        <h1 className="mb-1 text-2xl font-semibold">Sign in to Caisey</h1>
        <p className="mb-6 text-sm text-slate-600">Choose a member and organisation to act as.</p>
        {actionData && "error" in actionData ? (
          <p role="alert" className="mb-4 rounded-md border border-red-200 bg-red-50 px-4 py-2 text-sm text-red-800">
            {actionData.error}
          </p>
        ) : null}
        {rows.length === 0 ? (
          <p className="rounded-md border border-slate-200 bg-white px-4 py-6 text-sm text-slate-600">
            No members in the local database. Run <code className="font-mono">npm run dev</code> to migrate and seed it.
          </p>
        ) : (
          <ul className="space-y-2">
            {rows.map((m) => (
              <li key={`${m.orgId}/${m.userId}`}>
                <Form method="post" reloadDocument>
                  <input type="hidden" name="userId" value={m.userId} />
                  <input type="hidden" name="orgId" value={m.orgId} />
                  {redirectUrl ? <input type="hidden" name="redirect_url" value={redirectUrl} /> : null}
                  <button
                    type="submit"
                    className="flex w-full items-center gap-3 rounded-md border border-slate-200 bg-white px-4 py-3 text-left shadow-sm hover:border-slate-400 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-slate-500"
                  >
                    <span className="flex-1">
                      <span className="block font-medium">{m.name}</span>
                      <span className="block text-xs text-slate-500">{m.email}</span>
                    </span>
                    <span className={`rounded px-2 py-0.5 text-xs font-semibold uppercase ${ROLE_BADGE[m.role] ?? ""}`}>
                      {m.role}
                    </span>
                    <span className="w-32 text-right text-sm text-slate-700">{m.orgName}</span>
                  </button>
                </Form>
              </li>
            ))}
          </ul>
        )}
        <section className="mt-8 rounded-md border border-slate-200 bg-white p-4" aria-labelledby="new-organisation">
          <h2 id="new-organisation" className="mb-1 font-medium">A new organisation</h2>
          <p className="mb-3 text-xs text-slate-600">
            Sign in as the first admin of an organisation Caisey has never seen, as Clerk would after sign-up: the tenant and you are
            created on the first page you open.
          </p>
          <Form method="post" reloadDocument className="grid gap-2 sm:grid-cols-3">
            <input type="hidden" name="intent" value="new-organisation" />
            {redirectUrl ? <input type="hidden" name="redirect_url" value={redirectUrl} /> : null}
            <label className="text-sm">
              Organisation
              <input name="orgName" required className="mt-1 w-full rounded border border-slate-300 px-2 py-1" />
            </label>
            <label className="text-sm">
              Your name
              <input name="name" required className="mt-1 w-full rounded border border-slate-300 px-2 py-1" />
            </label>
            <label className="text-sm">
              Email
              <input name="email" type="email" required className="mt-1 w-full rounded border border-slate-300 px-2 py-1" />
            </label>
            <button type="submit" className="rounded bg-slate-900 px-3 py-1.5 text-sm font-medium text-white sm:col-span-3">
              Create and sign in as admin
            </button>
          </Form>
        </section>
      </div>
    </main>
  );
}
