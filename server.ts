// Pages Functions entry: the edge guard and the authenticated socket/runtime
// edge routes first (handleEdgeRequest), then the Remix console; security
// headers on whatever answers. Neither the edge routes nor Remix import
// partyserver; they only talk to the session worker's Durable Object namespace binding.
import { createPagesFunctionHandler } from "@remix-run/cloudflare-pages";
import * as build from "@remix-run/dev/server-build";
import { handleEdgeRequest, isRuntimeApiRequest } from "./app/edge/router.server";
import type { Env } from "./app/lib/env.server";
import { createCspNonce, withSecurityHeaders } from "./app/lib/security-headers.server";

const handleRemixRequest = createPagesFunctionHandler<Env>({
  build,
  mode: build.mode,
  // The nonce travels in the Pages per-request `data` bag: the handler is
  // created once, so getLoadContext is the only per-request hook into Remix.
  getLoadContext: ({ context }) => ({
    cloudflare: { ...context.cloudflare, cf: context.cloudflare.request.cf },
    cspNonce: (context.cloudflare.data as { cspNonce?: string }).cspNonce,
  }),
});

export const onRequest: PagesFunction<Env> = async (context) => {
  const nonce = createCspNonce();
  (context.data as { cspNonce?: string }).cspNonce = nonce;
  // handleEdgeRequest runs the origin guard (app/lib/request.server.ts guardRequest) before anything else.
  const response = (await handleEdgeRequest(context.request, context.env)) ?? (await handleRemixRequest(context));
  if (isRuntimeApiRequest(context.request)) return response;
  return withSecurityHeaders(response, context.env, nonce);
};
