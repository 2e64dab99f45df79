// Pages Functions entry: the edge guard and the authenticated socket/runtime
// edge routes first (handleEdgeRequest), then the Remix console; security
// headers on whatever answers. Neither the edge routes nor Remix import
// partyserver; they only talk to the session worker's Durable Object namespace binding.
import { createPagesFunctionHandler } from "@remix-run/cloudflare-pages";
import * as build from "@remix-run/dev/server-build";
import { handleEdgeRequest, isRuntimeApiRequest } from "./app/edge/router.server";
import { meterD1 } from "./app/lib/d1-metering.server";
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
  const d1 = meterD1(context.env.DB);
  const env = { ...context.env, DB: d1.db };
  // handleEdgeRequest runs the origin guard (app/lib/request.server.ts guardRequest) before anything else.
  const response = (await handleEdgeRequest(context.request, env)) ?? (await handleRemixRequest({ ...context, env }));
  if (isRuntimeApiRequest(context.request)) return response;
  const secured = withSecurityHeaders(response, context.env, nonce);
  if (secured.status !== 101) secured.headers.set("X-D1-Round-Trips", String(d1.roundTrips()));
  return secured;
};
