// /api/v1: the REST API for automation (docs/decisions/0025-script-library-and-api.md).
// JSON in and out, bearer API tokens only (never cookies, so the browser origin
// guard has nothing to protect here and exempts this prefix), every body and
// query validated by the zod schemas in app/models/automation.server.ts, which
// also generate the OpenAPI document served at /api/v1/openapi.json.
import type { z } from "zod";
import { createDb } from "~/db/client.server";
import type { Env } from "~/lib/env.server";
import { callerAddress } from "~/lib/request.server";
import { authenticateApiRequest, recordApiAudit, type ApiScope } from "~/models/api-tokens.server";
import { apiActor, queueLibraryRun, queueScriptRequestSchema, readReview, readTranscript, receiveAlert, transcriptQuerySchema } from "~/models/automation.server";
import { openApiDocument } from "~/models/openapi.server";
import { describeZodError } from "@protocol/messages";

export const API_PREFIX = "/api/v1/";

const NO_STORE = { "Cache-Control": "no-store" } as const;

function reply(status: number, body: unknown): Response {
  return Response.json(body, { status, headers: NO_STORE });
}

async function readJson(request: Request): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  if (!(request.headers.get("content-type") ?? "").toLowerCase().includes("application/json")) {
    return { ok: false, response: reply(415, { error: "Send the body as JSON with Content-Type: application/json" }) };
  }
  try {
    return { ok: true, value: await request.json() };
  } catch {
    return { ok: false, response: reply(400, { error: "Body is not valid JSON" }) };
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): { ok: true; value: z.output<T> } | { ok: false; response: Response } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = parsed.error.issues.map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message));
  return { ok: false, response: reply(400, { error: `Invalid ${what}: ${describeZodError(parsed.error)}`, issues }) };
}

const ROUTES: { method: string; pattern: RegExp; scope: ApiScope | null; handle: (args: RouteArgs) => Promise<Response> }[] = [
  {
    method: "GET",
    pattern: /^openapi\.json$/,
    scope: null,
    handle: async ({ request }) => reply(200, openApiDocument(new URL(request.url).origin)),
  },
  {
    method: "POST",
    pattern: /^endpoints\/([^/]+)\/sequences$/,
    scope: "sequences:queue",
    handle: async ({ request, env, caller, match }) => {
      const body = await readJson(request);
      if (!body.ok) return body.response;
      const input = parse(queueScriptRequestSchema, body.value, "request");
      if (!input.ok) return input.response;
      const endpointId = decodeURIComponent(match[1]!);
      const outcome = await queueLibraryRun(env, caller!.orgId, endpointId, input.value, apiActor(caller!, callerAddress(request)));
      await recordApiAudit(createDb(env.DB), {
        orgId: caller!.orgId,
        kind: outcome.status < 300 ? "api.sequence_queued" : "api.sequence_refused",
        actor: caller!.name,
        tokenId: caller!.tokenId,
        detail: { endpointId, scriptId: input.value.scriptId, version: input.value.version ?? null, params: input.value.params, status: outcome.status },
      });
      return reply(outcome.status, outcome.body);
    },
  },
  {
    method: "GET",
    pattern: /^endpoints\/([^/]+)\/transcript$/,
    scope: "transcripts:read",
    handle: async ({ request, env, caller, match }) => {
      const query = parse(transcriptQuerySchema, Object.fromEntries(new URL(request.url).searchParams), "query");
      if (!query.ok) return query.response;
      const outcome = await readTranscript(createDb(env.DB), caller!.orgId, decodeURIComponent(match[1]!), query.value);
      return reply(outcome.status, outcome.body);
    },
  },
  {
    method: "GET",
    pattern: /^review$/,
    scope: "review:read",
    handle: async ({ request, env, caller }) => {
      const outcome = await readReview(createDb(env.DB), caller!.orgId, caller!, new URL(request.url).searchParams);
      return reply(outcome.status, outcome.body);
    },
  },
  {
    method: "POST",
    pattern: /^alerts\/([^/]+)$/,
    scope: "sequences:queue",
    handle: async ({ request, env, caller, match }) => {
      const body = await readJson(request);
      if (!body.ok) return body.response;
      const outcome = await receiveAlert(env, caller!, decodeURIComponent(match[1]!), body.value, callerAddress(request));
      return reply(outcome.status, outcome.body);
    },
  },
];

interface RouteArgs {
  request: Request;
  env: Env;
  caller: Awaited<ReturnType<typeof authenticateApiRequest>> extends infer R ? (R extends { ok: true; caller: infer C } ? C : never) | null : never;
  match: RegExpMatchArray;
}

export async function handleApiRequest(request: Request, env: Env): Promise<Response> {
  const rest = new URL(request.url).pathname.slice(API_PREFIX.length);
  const candidates = ROUTES.map((route) => ({ route, match: rest.match(route.pattern) })).filter((c) => c.match);
  if (candidates.length === 0) return reply(404, { error: `No API route ${new URL(request.url).pathname}; see /api/v1/openapi.json` });
  const found = candidates.find((c) => c.route.method === request.method);
  if (!found) return reply(405, { error: `Use ${candidates.map((c) => c.route.method).join(" or ")}` });
  let caller: RouteArgs["caller"] = null;
  if (found.route.scope) {
    const auth = await authenticateApiRequest(createDb(env.DB), request, found.route.scope);
    if (!auth.ok) return new Response(JSON.stringify({ error: auth.error }), { status: auth.status, headers: { ...NO_STORE, "content-type": "application/json", ...(auth.status === 401 ? { "WWW-Authenticate": 'Bearer realm="caisey-api"' } : {}) } });
    caller = auth.caller;
  }
  return found.route.handle({ request, env, caller, match: found.match! });
}
