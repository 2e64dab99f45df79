import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Link, useLoaderData } from "@remix-run/react";
import { ExportLinks } from "~/components/export-links";
import { OnlineBadge } from "~/components/status-badge";
import { LiveSession } from "~/components/transcript/live-session";
import { createDb } from "~/db/client.server";
import { CAN_RUN_COMMANDS, requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatAge, formatTimestamp } from "~/lib/format";
import { getEndpointForOrg } from "~/models/endpoints.server";
import { listSequenceTemplates, saveSequenceTemplate, saveTemplateSchema } from "~/models/sequence-templates.server";
import { describeZodError } from "../../protocol/messages";

export const meta: MetaFunction<typeof loader> = ({ data }) => [{ title: data ? `${data.endpoint.hostname} · Caisey` : "Caisey" }];

async function loadEndpoint(args: LoaderFunctionArgs, roles?: Parameters<typeof requireMember>[1]) {
  const member = await requireMember(args, roles);
  const db = createDb(getEnv(args.context).DB);
  const endpoint = await getEndpointForOrg(db, member.org.id, args.params.endpointId ?? "");
  if (!endpoint) throw new Response("No such endpoint in your organisation.", { status: 404, statusText: "Not Found" });
  return { member, db, endpoint };
}

export async function loader(args: LoaderFunctionArgs) {
  const { member, db, endpoint } = await loadEndpoint(args);
  const canRun = CAN_RUN_COMMANDS.includes(member.role);
  const templates = canRun ? await listSequenceTemplates(db, member.org.id) : [];
  return json({ endpoint, canRun, role: member.role, templates, now: Date.now() });
}

/** Saves a reusable diagnostic sequence for the tenant (from the sequence panel). */
export async function action(args: ActionFunctionArgs) {
  const { member, db } = await loadEndpoint(args, CAN_RUN_COMMANDS);
  const form = await args.request.formData();
  if (form.get("intent") !== "save-template") return json({ error: "Unknown action" }, { status: 400 });
  let raw: unknown;
  try {
    raw = JSON.parse(String(form.get("template") ?? ""));
  } catch {
    return json({ error: "Template must be JSON" }, { status: 400 });
  }
  const parsed = saveTemplateSchema.safeParse(raw);
  if (!parsed.success) return json({ error: describeZodError(parsed.error) }, { status: 400 });
  await saveSequenceTemplate(db, member.org.id, parsed.data, member.name);
  return json({ saved: parsed.data.name });
}

export default function EndpointPage() {
  const { endpoint, canRun, role, templates, now } = useLoaderData<typeof loader>();
  return (
    <section className="space-y-4">
      <div>
        <Link to={`/endpoints?client=${endpoint.clientId}`} className="text-sm text-indigo-700 hover:underline">← {endpoint.clientName}</Link>
        <div className="mt-1 flex items-center gap-3">
          <h1 className="font-mono text-2xl font-semibold" data-testid="endpoint-hostname">{endpoint.hostname}</h1>
          <OnlineBadge online={endpoint.online} />
          <div className="ml-auto">
            <ExportLinks endpointId={endpoint.id} />
          </div>
        </div>
        <dl className="mt-2 flex flex-wrap gap-x-6 gap-y-1 text-sm text-slate-600">
          <div><dt className="inline font-medium">OS </dt><dd className="inline">{endpoint.os} {endpoint.osVersion}</dd></div>
          <div><dt className="inline font-medium">Region </dt><dd className="inline">{endpoint.region || "—"}</dd></div>
          <div><dt className="inline font-medium">Last seen </dt><dd className="inline">{formatAge(endpoint.lastSeenAt, now)}</dd></div>
          <div><dt className="inline font-medium">Enrolled </dt><dd className="inline">{formatTimestamp(endpoint.enrolledAt)}</dd></div>
          <div><dt className="inline font-medium">Tags </dt><dd className="inline">{endpoint.tags.join(", ") || "—"}</dd></div>
        </dl>
      </div>
      <LiveSession endpointId={endpoint.id} canRun={canRun} role={role} defaultShell="default" templates={templates} />
    </section>
  );
}
