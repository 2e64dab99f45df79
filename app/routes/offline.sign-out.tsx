// Offline sign-out: clears the offline session cookies. POST only; 404 unless
// offline mode is on.
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/cloudflare";
import { redirect } from "@remix-run/cloudflare";
import { getEnv } from "~/lib/env.server";
import { OFFLINE_SIGN_IN_PATH, clearSessionCookieHeaders, resolveAuthMode } from "~/lib/offline-auth.server";

function requireOffline(context: LoaderFunctionArgs["context"]) {
  if (resolveAuthMode(getEnv(context)).mode !== "offline") {
    throw new Response("Not Found", { status: 404, statusText: "Not Found" });
  }
}

export async function loader({ context }: LoaderFunctionArgs) {
  requireOffline(context);
  return new Response("Sign out with POST.", { status: 405, headers: { Allow: "POST" } });
}

export async function action({ context }: ActionFunctionArgs) {
  requireOffline(context);
  const headers = new Headers({ "Cache-Control": "no-store" });
  for (const cookie of clearSessionCookieHeaders()) headers.append("Set-Cookie", cookie);
  return redirect(OFFLINE_SIGN_IN_PATH, { headers });
}
