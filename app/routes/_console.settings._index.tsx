import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { getRetention, RetentionSettingError, setRetention } from "~/models/retention.server";

export const meta: MetaFunction = () => [{ title: "Settings · Caisey" }];

/** Only admins decide how long the tenant's history is kept. */
const ROLES = ["admin"] as const;

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args, ROLES);
  return json({ retention: await getRetention(getEnv(args.context), member.org.id) });
}

export async function action(args: ActionFunctionArgs) {
  const member = await requireMember(args, ROLES);
  try {
    const saved = await setRetention(getEnv(args.context), member.org.id, member, Object.fromEntries(await args.request.formData()));
    return json({ error: null, saved });
  } catch (error) {
    if (error instanceof RetentionSettingError) return json({ error: error.message, saved: null }, { status: 400 });
    throw error;
  }
}

export default function SettingsPage() {
  const { retention } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== "idle";
  return (
    <section className="max-w-3xl space-y-6">
      <h1 className="text-2xl font-semibold">Settings</h1>
      <Form method="post" className="space-y-3 rounded border border-slate-200 p-4">
        <h2 className="font-medium">Retention</h2>
        <p className="text-sm text-slate-600">
          Finished commands, their output and audit events older than this are removed from endpoint sessions. Audit events are
          archived to signed files before they leave the audit database.
        </p>
        <label className="block text-sm font-medium">
          Keep history for (days)
          <input name="retentionDays" type="number" min={7} max={3650} defaultValue={retention.days} className="mt-1 block w-32 rounded border border-slate-300 px-2 py-1" />
        </label>
        {retention.updatedBy ? <p className="text-xs text-slate-500">Last changed by {retention.updatedBy} {formatTimestamp(retention.updatedAt)}</p> : null}
        <button type="submit" disabled={busy} className="rounded bg-indigo-700 px-3 py-1.5 text-sm font-medium text-white disabled:opacity-50">Save retention</button>
        {result?.error ? <p role="alert" className="text-sm text-red-700">{result.error}</p> : null}
        {result?.saved ? (
          <p role="status" className="text-sm text-slate-700" data-testid="retention-saved">
            Retention set to {result.saved.days} days; {result.saved.refreshed} endpoint session(s) told now
            {result.saved.failed.length ? `; not reached (they pick it up when their runtime next connects): ${result.saved.failed.map((f) => f.hostname).join(", ")}` : ""}.
          </p>
        ) : null}
      </Form>
    </section>
  );
}
