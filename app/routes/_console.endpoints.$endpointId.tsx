import { useCallback, useState } from "react";
import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { describePlacement } from "@protocol/location-hints";
import { Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { LifecycleActions, LifecycleBanner, type LifecycleActionResult } from "~/components/endpoint-lifecycle";
import { EndpointDetailsEditor } from "~/components/endpoint-details-editor";
import { ExportLinks } from "~/components/export-links";
import { OnlineBadge } from "~/components/status-badge";
import { LiveSession } from "~/components/transcript/live-session";
import { createDb } from "~/db/client.server";
import { CAN_RUN_COMMANDS, requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatAge } from "~/lib/format";
import { Time } from "~/lib/time-zone";
import { callerAddress } from "~/lib/request.server";
import {
  decommissionEndpoint,
  LIFECYCLE_INTENTS,
  LIFECYCLE_ROLES,
  LifecycleError,
  lifecycleIntentSchema,
  revokeRuntimeCredential,
  rotateRuntimeCredential,
  type LifecycleOutcome,
} from "~/models/endpoint-lifecycle.server";
import { getEndpointForOrg } from "~/models/endpoints.server";
import { getEndpointRuntime } from "~/models/runtime-updates.server";
import { saveTemplateSchema } from "~/models/sequence-templates.server";
import { listScripts, saveScript, ScriptError } from "~/models/script-library.server";
import { queueLibraryRun } from "~/models/automation.server";
import { LibraryRunPanel } from "~/components/library-run-panel";
import { roleMay, rolesWith } from "@protocol/permissions";
import { describeZodError } from "@protocol/messages";

export const meta: MetaFunction<typeof loader> = ({ data }) => [{ title: data ? `${data.endpoint.displayName ?? data.endpoint.hostname} · Caisey` : "Caisey" }];

async function loadEndpoint(args: LoaderFunctionArgs, roles?: Parameters<typeof requireMember>[1]) {
  const member = await requireMember(args, roles);
  const db = createDb(getEnv(args.context).DB);
  const endpoint = await getEndpointForOrg(db, member.org.id, args.params.endpointId ?? "");
  if (!endpoint) throw new Response("No such endpoint in your organisation.", { status: 404, statusText: "Not Found" });
  return { member, db, endpoint };
}

export async function loader(args: LoaderFunctionArgs) {
  const { member, db, endpoint } = await loadEndpoint(args);
  // A decommissioned endpoint is read-only for everyone: the session refuses runs too.
  const canRun = CAN_RUN_COMMANDS.includes(member.role) && endpoint.decommissionedAt === null;
  // NOC staff queue diagnostic sequences (drafted or from the library) but no live commands (docs/roles.md).
  const canQueue = roleMay(member.role, "sequence.queue") && endpoint.decommissionedAt === null;
  const scripts = canQueue ? await listScripts(db, member.org.id) : [];
  // Scripts without parameters also load into the sequence drafting panel (they were its templates).
  const templates = scripts
    .filter((script) => script.params.length === 0)
    .map((script) => ({ id: script.id, name: script.name, steps: script.steps, stopOnFailure: script.stopOnFailure, createdBy: script.changedByName }));
  const runtime = await getEndpointRuntime(getEnv(args.context), member.org.id, endpoint.id);
  return json({ endpoint, canRun, canQueue, role: member.role, isAdmin: LIFECYCLE_ROLES.includes(member.role), templates, scripts, runtime, userId: member.userId, now: Date.now() });
}

/** Saves a reusable diagnostic sequence (from the sequence panel), or changes the endpoint's lifecycle (admins). */
export async function action(args: ActionFunctionArgs) {
  const form = await args.request.formData();
  const intent = form.get("intent");
  if (typeof intent === "string" && LIFECYCLE_INTENTS.includes(intent)) return lifecycleAction(args, Object.fromEntries(form));
  if (intent === "run-script") return runScriptAction(args, form);
  const { member, db } = await loadEndpoint(args, rolesWith("library.edit"));
  if (intent !== "save-template") return json({ error: "Unknown action" }, { status: 400 });
  let raw: unknown;
  try {
    raw = JSON.parse(String(form.get("template") ?? ""));
  } catch {
    return json({ error: "Template must be JSON" }, { status: 400 });
  }
  const parsed = saveTemplateSchema.safeParse(raw);
  if (!parsed.success) return json({ error: describeZodError(parsed.error) }, { status: 400 });
  // Saved into the script library: a new script, or a new version of the one with this name.
  const existing = (await listScripts(db, member.org.id, { includeArchived: true })).find((script) => script.name === parsed.data.name);
  try {
    await saveScript(db, member.org.id, existing?.id ?? null, { name: parsed.data.name, body: { steps: parsed.data.steps, stopOnFailure: parsed.data.stopOnFailure }, changeNote: "Saved from the sequence panel" }, { userId: member.userId, name: member.name });
  } catch (error) {
    if (error instanceof ScriptError) return json({ error: error.message }, { status: error.status });
    throw error;
  }
  return json({ saved: parsed.data.name });
}

/** Runs a library script here: values validated and quoted on the server, queued through the session (role and approval checked there). */
async function runScriptAction(args: ActionFunctionArgs, form: FormData) {
  const member = await requireMember(args, rolesWith("sequence.queue"));
  const params: Record<string, string> = {};
  for (const key of new Set([...form.keys()].filter((k) => k.startsWith("param.")))) {
    const values = form.getAll(key);
    params[key.slice("param.".length)] = String(values[values.length - 1] ?? "");
  }
  const outcome = await queueLibraryRun(
    getEnv(args.context),
    member.org.id,
    args.params.endpointId ?? "",
    { scriptId: String(form.get("scriptId") ?? ""), params, notBefore: null, expiresAt: null, reason: String(form.get("reason") ?? "").trim() },
    { userId: member.userId, name: member.name, email: member.email, role: member.role, canRun: CAN_RUN_COMMANDS.includes(member.role), address: callerAddress(args.request) },
  );
  if (outcome.status >= 300) return json({ error: String(outcome.body.error) }, { status: outcome.status });
  const script = outcome.body.script as { name: string; version: number };
  return json({ queued: `${script.name} v${script.version}` });
}

/**
 * Revoke, rotate or decommission. The role is checked before the form is read
 * (403), the tenant before anything changes (404, as for any other tenant's id);
 * the model checks both again so no other caller can skip them.
 */
async function lifecycleAction(args: ActionFunctionArgs, form: Record<string, FormDataEntryValue>) {
  const member = await requireMember(args, LIFECYCLE_ROLES);
  const parsed = lifecycleIntentSchema.safeParse(form);
  const intent = String(form.intent) as LifecycleActionResult["intent"];
  const answer = (result: Partial<LifecycleActionResult>, status = 200) =>
    json<LifecycleActionResult>({ intent, error: null, sessionWarning: null, rotation: null, ...result }, { status });
  if (!parsed.success) return answer({ error: describeZodError(parsed.error) }, 400);
  const env = getEnv(args.context);
  const endpointId = args.params.endpointId ?? "";
  const actor = { userId: member.userId, name: member.name, role: member.role, orgId: member.org.id, address: callerAddress(args.request) };
  const warning = (outcome: LifecycleOutcome) => (outcome.session.reached ? null : outcome.session.message);
  try {
    switch (parsed.data.intent) {
      case "revoke-credential": {
        const outcome = await revokeRuntimeCredential(env, actor, endpointId);
        return answer({ sessionWarning: warning(outcome) });
      }
      case "rotate-credential": {
        const outcome = await rotateRuntimeCredential(env, actor, endpointId);
        return answer({ sessionWarning: warning(outcome), rotation: { token: outcome.token, command: outcome.command, expiresAt: outcome.expiresAt } });
      }
      case "decommission": {
        const outcome = await decommissionEndpoint(env, actor, endpointId, parsed.data.confirmHostname);
        return answer({ sessionWarning: warning(outcome) });
      }
    }
  } catch (error) {
    if (!(error instanceof LifecycleError)) throw error;
    if (error.status === 403 || error.status === 404) {
      throw new Response(error.message, { status: error.status, statusText: error.status === 403 ? "Forbidden" : "Not Found" });
    }
    return answer({ error: error.message }, error.status);
  }
}

export default function EndpointPage() {
  const { endpoint, canRun, canQueue, role, isAdmin, templates, scripts, runtime, userId, now } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const lifecycleResult = actionData && "intent" in actionData ? (actionData as LifecycleActionResult) : null;
  const navigation = useNavigation();
  // The header badge follows the live session once it has spoken; until then, the directory's word.
  const [liveOnline, setLiveOnline] = useState<boolean | null>(null);
  const onRuntimeState = useCallback((runtime: { online: boolean } | null) => setLiveOnline(runtime ? runtime.online : null), []);
  return (
    <section className="space-y-4">
      <div>
        <Link to={`/endpoints?client=${endpoint.clientId}`} className="text-sm text-indigo-700 hover:underline">← {endpoint.clientName}</Link>
        <div className="mt-1 flex flex-wrap items-center gap-3">
          {endpoint.displayName ? (
            <h1 className="text-2xl font-semibold">
              <span data-testid="endpoint-display-name">{endpoint.displayName}</span>{" "}
              <span className="font-mono text-base font-normal text-slate-600" data-testid="endpoint-hostname">{endpoint.hostname}</span>
            </h1>
          ) : (
            <h1 className="break-all font-mono text-2xl font-semibold" data-testid="endpoint-hostname">{endpoint.hostname}</h1>
          )}
          {endpoint.decommissionedAt === null ? <OnlineBadge online={liveOnline ?? endpoint.online} /> : null}
          <div className="ml-auto">
            <ExportLinks endpointId={endpoint.id} />
          </div>
        </div>
        <dl className="mt-2 flex flex-wrap gap-x-6 gap-y-1 text-sm text-slate-600">
          <div><dt className="inline font-medium">OS </dt><dd className="inline">{endpoint.os} {endpoint.osVersion}</dd></div>
          <div><dt className="inline font-medium">Region </dt><dd className="inline" data-testid="endpoint-placement">{describePlacement({ jurisdiction: endpoint.jurisdiction, locationHint: endpoint.locationHint, placedAt: endpoint.placedAt, colo: endpoint.runtimeColo })}</dd></div>
          <div><dt className="inline font-medium">Last seen </dt><dd className="inline">{formatAge(endpoint.lastSeenAt, now)}</dd></div>
          <div><dt className="inline font-medium">Enrolled </dt><dd className="inline"><Time at={endpoint.enrolledAt} /></dd></div>
          <div><dt className="inline font-medium">Tags </dt><dd className="inline" data-testid="endpoint-tags">{endpoint.tags.join(", ") || "—"}</dd></div>
          <div data-testid="runtime-version">
            <dt className="inline font-medium">Runtime </dt>
            <dd className="inline">{runtime?.version ? `${runtime.version} (${runtime.platform ?? "platform not reported"})` : "not reported yet"}</dd>
          </div>
          {runtime?.update ? (
            <div data-testid="runtime-update" title={runtime.update.detail}>
              <dt className="inline font-medium">Update </dt>
              <dd className="inline">{runtime.update.version}: {runtime.update.phase.replace("_", " ")} <Time at={runtime.update.at} />{runtime.update.detail && (runtime.update.phase === "rolled_back" || runtime.update.phase === "failed") ? ` (${runtime.update.detail})` : ""}</dd>
            </div>
          ) : null}
          {runtime?.target && runtime.target !== runtime.version ? (
            <div><dt className="inline font-medium">Target </dt><dd className="inline">{runtime.target}</dd></div>
          ) : null}
        </dl>
        {isAdmin && endpoint.decommissionedAt === null ? <EndpointDetailsEditor endpoint={endpoint} /> : null}
      </div>
      <LifecycleBanner endpoint={endpoint} />
      {endpoint.placedAt === null ? (
        // Opening the socket would create the session here, near this browser; it is created near the endpoint.
        <p className="rounded border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900" data-testid="session-not-placed">
          This endpoint's session does not exist yet. It is created near the endpoint when its runtime first connects; the transcript and
          command input appear then.
        </p>
      ) : (
        <>
          <LiveSession endpointId={endpoint.id} userId={userId} canRun={canRun} canQueue={canQueue} role={role} defaultShell="default" templates={templates} onRuntimeState={onRuntimeState} />
          {canQueue ? <LibraryRunPanel scripts={scripts as never} /> : null}
        </>
      )}
      {isAdmin ? <LifecycleActions endpoint={endpoint} result={lifecycleResult} busy={navigation.state !== "idle"} /> : null}
    </section>
  );
}
