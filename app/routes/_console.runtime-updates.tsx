import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { callerAddress } from "~/lib/request.server";
import {
  getRuntimeTarget,
  listRuntimeVersions,
  RuntimeTargetError,
  runtimeTargetFormSchema,
  runtimeVersionCounts,
  setRuntimeTarget,
} from "~/models/runtime-updates.server";
import { describeZodError } from "@protocol/messages";

export const meta: MetaFunction = () => [{ title: "Runtime updates · Caisey" }];

/** Only admins choose what runs on every endpoint of the tenant. */
const ROLES = ["admin"] as const;

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args, ROLES);
  const env = getEnv(args.context);
  const [target, versions, fleet] = await Promise.all([
    getRuntimeTarget(env, member.org.id),
    listRuntimeVersions(env).catch(() => [] as string[]),
    runtimeVersionCounts(env, member.org.id),
  ]);
  return json({ target, versions, fleet });
}

export async function action(args: ActionFunctionArgs) {
  const member = await requireMember(args, ROLES);
  const parsed = runtimeTargetFormSchema.safeParse(Object.fromEntries(await args.request.formData()));
  if (!parsed.success) return json({ error: describeZodError(parsed.error), saved: null }, { status: 400 });
  try {
    const outcome = await setRuntimeTarget(getEnv(args.context), member.org.id, { userId: member.userId, name: member.name, address: callerAddress(args.request) }, parsed.data);
    return json({ error: null, saved: { version: outcome.target?.version ?? null, pushed: outcome.pushed, failed: outcome.failed } });
  } catch (error) {
    if (error instanceof RuntimeTargetError) return json({ error: error.message, saved: null }, { status: 400 });
    throw error;
  }
}

export default function RuntimeUpdatesPage() {
  const { target, versions, fleet } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== "idle";
  return (
    <section className="max-w-3xl space-y-6">
      <div>
        <h1 className="text-2xl font-semibold">Runtime updates</h1>
        <p className="mt-1 text-sm text-slate-600">
          Every endpoint of your organisation is offered the target version when it is online and idle. It installs it only if the
          download matches the release&apos;s hash and signature, and keeps it only if the new version connects within a minute;
          otherwise it goes back to the version it had.
        </p>
      </div>
      <p data-testid="runtime-target">
        {target ? (
          <>Target: <strong>{target.version}</strong>{target.allowDowngrade ? " (downgrade allowed)" : ""}, set by {target.setBy} {formatTimestamp(target.setAt)}</>
        ) : (
          "No target version: runtimes are not updated."
        )}
      </p>
      <Form method="post" className="space-y-3 rounded border border-slate-200 p-4">
        <label className="block text-sm font-medium">
          Target version
          <input name="version" list="runtime-versions" defaultValue={target?.version ?? ""} placeholder="e.g. 1.2.3 (empty: no updates)" className="mt-1 block w-60 rounded border border-slate-300 px-2 py-1 font-mono" />
          <datalist id="runtime-versions">{versions.map((v) => <option key={v} value={v} />)}</datalist>
        </label>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" name="allowDowngrade" defaultChecked={target?.allowDowngrade ?? false} />
          Also offer it to endpoints running a newer version (downgrade)
        </label>
        <button type="submit" disabled={busy} className="rounded bg-indigo-700 px-3 py-1.5 text-sm font-medium text-white disabled:opacity-50">Save target</button>
        {result?.error ? <p role="alert" className="text-sm text-red-700">{result.error}</p> : null}
        {result?.saved ? (
          <p role="status" className="text-sm text-slate-700" data-testid="runtime-target-saved">
            {result.saved.version ? `Target ${result.saved.version} saved` : "Updates turned off"}; {result.saved.pushed} endpoint session(s) told now
            {result.saved.failed.length ? `; not reached (they pick it up when their runtime next connects): ${result.saved.failed.map((f) => f.hostname).join(", ")}` : ""}.
          </p>
        ) : null}
      </Form>
      <div className="max-w-full overflow-x-auto"><table className="text-sm">
        <thead><tr><th className="pr-6 text-left">Runtime version</th><th className="pr-6 text-left">Platform</th><th className="text-right">Endpoints</th></tr></thead>
        <tbody>
          {fleet.map((row) => (
            <tr key={`${row.version}-${row.platform}`}>
              <td className="pr-6 font-mono">{row.version ?? "not reported"}</td>
              <td className="pr-6">{row.platform ?? "—"}</td>
              <td className="text-right">{row.endpoints}</td>
            </tr>
          ))}
        </tbody>
      </table></div>
    </section>
  );
}
