import { useEffect } from "react";
import { json, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Link, useLoaderData, useRevalidator } from "@remix-run/react";
import { ViewerTime, ViewerZoneLabel } from "~/components/viewer-time";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { TARGET_STATE_LABELS, TARGET_STATES, type TargetState } from "~/lib/fleet-states";
import { getFleetRunProgress } from "~/models/fleet-runs.server";

export const meta: MetaFunction<typeof loader> = ({ data }) => [{ title: data ? `${data.run.name} · Fleet run · Caisey` : "Caisey" }];

/** How often the page re-reads progress while any target can still change. */
const REFRESH_MS = 2_000;
const SETTLED: readonly TargetState[] = ["done", "failed", "never_connected", "not_queued"];

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args);
  const progress = await getFleetRunProgress(createDb(getEnv(args.context).DB), member.org.id, args.params.runId ?? "");
  if (!progress) throw new Response("No such fleet run in your organisation.", { status: 404, statusText: "Not Found" });
  return json(progress);
}

const STATE_CLASS: Record<TargetState, string> = {
  queued: "bg-slate-100 text-slate-700",
  waiting_for_approval: "bg-amber-100 text-amber-800",
  waiting_for_window: "bg-sky-100 text-sky-800",
  running: "bg-indigo-100 text-indigo-800",
  done: "bg-emerald-100 text-emerald-800",
  failed: "bg-red-100 text-red-800",
  offline: "bg-slate-200 text-slate-700",
  never_connected: "bg-slate-200 text-slate-500",
  not_queued: "bg-red-50 text-red-700",
};

export default function FleetRunPage() {
  const { run, counts, targets } = useLoaderData<typeof loader>();
  const revalidator = useRevalidator();
  const live = targets.some((target) => !SETTLED.includes(target.state));
  // Progress comes from the sessions' audit replicas; re-read it while anything can still change.
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => {
      if (revalidator.state === "idle" && document.visibilityState === "visible") revalidator.revalidate();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [live, revalidator]);
  return (
    <section className="space-y-4">
      <div>
        <Link to="/fleet" className="text-sm text-indigo-700 hover:underline">← Fleet runs</Link>
        <h1 className="text-2xl font-semibold">{run.name}</h1>
        <p className="text-sm text-slate-600">
          {run.kind === "sequence" ? `${run.steps.length}-step sequence` : "single command"} ·{" "}
          {run.schedule === "window" ? "in each endpoint's maintenance window" : run.schedule === "at" ? <>not before <ViewerTime at={run.notBefore} /></> : "as soon as each endpoint is reachable"} ·
          started by {run.createdByName} at <ViewerTime at={run.createdAt} />
        </p>
        <ol className="mt-1 list-decimal pl-6 font-mono text-xs text-slate-700">
          {run.steps.map((step, index) => <li key={index}>{step.text}</li>)}
        </ol>
        <p className="text-xs text-slate-500"><ViewerZoneLabel /> {live ? "Updating live." : "Every target has settled."}</p>
      </div>
      <ul className="flex flex-wrap gap-2 text-sm" aria-label="Counts">
        {TARGET_STATES.filter((state) => counts[state] > 0 || ["queued", "running", "done", "failed", "offline"].includes(state)).map((state) => (
          <li key={state} className={`rounded px-2 py-1 ${STATE_CLASS[state]}`} data-testid={`count-${state}`} data-count={counts[state]}>
            {TARGET_STATE_LABELS[state]}: <strong>{counts[state]}</strong>
          </li>
        ))}
      </ul>
      <table className="w-full overflow-hidden rounded-lg bg-white text-sm shadow">
        <thead className="bg-slate-100 text-left text-slate-600">
          <tr><th className="px-4 py-2">Endpoint</th><th className="px-4 py-2">Client</th><th className="px-4 py-2">State</th><th className="px-4 py-2">Step</th><th className="px-4 py-2">Last change</th></tr>
        </thead>
        <tbody>
          {targets.map((target) => (
            <tr key={target.endpointId} className="border-t border-slate-100" data-testid="fleet-target" data-endpoint={target.endpointId} data-state={target.state}>
              <td className="px-4 py-2"><Link to={`/endpoints/${target.endpointId}`} className="font-medium text-indigo-700 hover:underline" title="Open its transcript">{target.hostname}</Link></td>
              <td className="px-4 py-2">{target.clientName}</td>
              <td className="px-4 py-2">
                <span className={`rounded px-2 py-0.5 ${STATE_CLASS[target.state]}`}>{TARGET_STATE_LABELS[target.state]}</span>
                {target.detail ? <span className="ml-2 text-xs text-slate-500">{target.detail}</span> : null}
              </td>
              <td className="px-4 py-2">{target.step ? `${target.step} of ${target.steps}` : "—"}</td>
              <td className="px-4 py-2">{target.lastEventAt ? <ViewerTime at={target.lastEventAt} /> : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
