// Pages Functions entry: the authenticated socket/runtime edge routes first,
// then the Remix console. Neither the edge routes nor Remix import partyserver;
// they only talk to the session worker's Durable Object namespace binding.
import { createPagesFunctionHandler } from "@remix-run/cloudflare-pages";
import * as build from "@remix-run/dev/server-build";
import { handleEdgeRequest } from "./app/edge/router.server";
import type { Env } from "./app/lib/env.server";

const handleRemixRequest = createPagesFunctionHandler({ build, mode: build.mode });

export const onRequest: PagesFunction<Env> = async (context) => {
  const edgeResponse = await handleEdgeRequest(context.request, context.env);
  return edgeResponse ?? handleRemixRequest(context);
};
