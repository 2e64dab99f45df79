// Clerk → Caisey: organisation and membership events keep the tenant directory in step with Clerk.
// Authenticated by the webhook signature (CLERK_WEBHOOK_SIGNING_SECRET), never by cookies.
import type { ActionFunctionArgs } from "@remix-run/cloudflare";
import { json } from "@remix-run/cloudflare";
import { getEnv } from "~/lib/env.server";
import { handleClerkWebhook } from "~/models/member-sync.server";

export async function action({ request, context }: ActionFunctionArgs) {
  if (request.method !== "POST") return json({ ok: false, error: "Use POST" }, { status: 405 });
  // Clerk gets its answer first; closing a removed member's sockets across the tenant's sessions finishes after it.
  const outcome = await handleClerkWebhook(getEnv(context), request, { defer: (work) => context.cloudflare.waitUntil?.(work) });
  return json(outcome.body, { status: outcome.status, headers: { "Cache-Control": "no-store" } });
}

export function loader() {
  return json({ ok: false, error: "Use POST" }, { status: 405 });
}
