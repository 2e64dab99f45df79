import { useState } from "react";
import { ShellOptions } from "~/components/shell-options";
import { json, redirect, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { ViewerTime, ViewerZoneLabel } from "~/components/viewer-time";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { callerAddress } from "~/lib/request.server";
import { listClients } from "~/models/clients.server";
import { listTagNames } from "~/models/endpoints.server";
import {
  createFleetRun,
  describeZodError,
  FLEET_RUN_ROLES,
  FleetRunError,
  fleetRunInputSchema,
  listEndpointFilters,
  listFleetRuns,
  saveEndpointFilter,
  savedFilterSchema,
} from "~/models/fleet-runs.server";
import { deleteMaintenanceWindow, listMaintenanceWindows, MaintenanceWindowError, saveMaintenanceWindow, saveWindowSchema } from "~/models/maintenance-windows.server";

export const meta: MetaFunction = () => [{ title: "Fleet runs · Caisey" }];

const WEEKDAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args);
  const env = getEnv(args.context);
  const db = createDb(env.DB);
  const [runs, clients, tagNames, filters, windows, tagRows] = await Promise.all([
    listFleetRuns(db, member.org.id),
    listClients(db, member.org.id),
    listTagNames(db, member.org.id),
    listEndpointFilters(db, member.org.id),
    listMaintenanceWindows(db, member.org.id),
    env.DB.prepare("SELECT id, name FROM tags WHERE org_id = ? ORDER BY name").bind(member.org.id).all<{ id: string; name: string }>(),
  ]);
  return json({
    runs,
    clients: clients.map((c) => ({ id: c.id, name: c.name })),
    tagNames,
    tags: tagRows.results,
    filters,
    windows: windows.map((w) => ({ id: w.id, owner: w.clientName ? `client ${w.clientName}` : `tag ${w.tagName}`, description: w.description })),
    canStart: FLEET_RUN_ROLES.includes(member.role),
    isAdmin: member.role === "admin",
  });
}

export async function action(args: ActionFunctionArgs) {
  const form = Object.fromEntries(await args.request.formData());
  const env = getEnv(args.context);
  const db = createDb(env.DB);
  const intent = String(form.intent ?? "");
  if (intent === "save-window" || intent === "delete-window") {
    const member = await requireMember(args, ["admin"]);
    const actor = { userId: member.userId, name: member.name };
    try {
      if (intent === "delete-window") {
        const refresh = await deleteMaintenanceWindow(env, db, member.org.id, String(form.windowId ?? ""), actor);
        return json({ error: null, notice: `Window removed; ${refresh.refreshed} session(s) updated${refresh.failed.length ? `, ${refresh.failed.length} not reachable (they re-read it when their runtime next connects)` : ""}.` });
      }
      const [scope, id] = String(form.scope ?? "").split(":");
      const [hours, minutes] = String(form.start ?? "").split(":").map(Number);
      const parsed = saveWindowSchema.safeParse({
        clientId: scope === "client" ? id : "",
        tagId: scope === "tag" ? id : "",
        days: WEEKDAY_NAMES.map((_, day) => (form[`day${day}`] ? day : -1)).filter((day) => day >= 0),
        startMinute: (hours ?? NaN) * 60 + (minutes ?? NaN),
        durationMinutes: Number(form.durationMinutes),
      });
      if (!parsed.success) return json({ error: describeZodError(parsed.error), notice: null }, { status: 400 });
      const { refresh } = await saveMaintenanceWindow(env, db, member.org.id, parsed.data, actor);
      return json({ error: null, notice: `Window saved; ${refresh.refreshed} session(s) updated${refresh.failed.length ? `, ${refresh.failed.length} not reachable (they re-read it when their runtime next connects)` : ""}.` });
    } catch (error) {
      if (error instanceof MaintenanceWindowError) return json({ error: error.message, notice: null }, { status: 404 });
      throw error;
    }
  }
  const member = await requireMember(args, FLEET_RUN_ROLES);
  if (intent === "save-filter") {
    const parsed = savedFilterSchema.safeParse(form);
    if (!parsed.success) return json({ error: describeZodError(parsed.error), notice: null }, { status: 400 });
    await saveEndpointFilter(db, member.org.id, parsed.data, member.name);
    return json({ error: null, notice: `Saved filter “${parsed.data.name}”.` });
  }
  if (intent !== "start") return json({ error: "Unknown action", notice: null }, { status: 400 });
  const steps = String(form.steps ?? "")
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((text) => ({ text, shell: String(form.shell || "default") }));
  const parsed = fleetRunInputSchema.safeParse({
    name: form.name,
    steps,
    asSequence: form.asSequence === "on",
    stopOnFailure: form.stopOnFailure === "on",
    schedule: form.schedule || "now",
    notBefore: form.notBefore ? Number(form.notBefore) : null,
    reason: form.reason ?? "",
    selector: { client: form.client ?? "", tag: form.tag ?? "", os: form.os ?? "", filterId: form.filterId ?? "" },
  });
  if (!parsed.success) return json({ error: describeZodError(parsed.error), notice: null }, { status: 400 });
  try {
    const { fleetRunId } = await createFleetRun(env, db, member.org.id, { ...member, address: callerAddress(args.request) }, parsed.data);
    return redirect(`/fleet/${fleetRunId}`);
  } catch (error) {
    if (error instanceof FleetRunError) return json({ error: error.message, notice: null }, { status: 400 });
    throw error;
  }
}

const input = "rounded border border-slate-300 px-2 py-1";

export default function FleetRunsPage() {
  const { runs, clients, tagNames, tags, filters, windows, canStart, isAdmin } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== "idle";
  const [schedule, setSchedule] = useState("now");
  const [notBefore, setNotBefore] = useState("");
  return (
    <section className="space-y-6">
      <div className="flex items-baseline justify-between">
        <h1 className="text-2xl font-semibold">Fleet runs</h1>
        <p className="text-xs text-slate-500"><ViewerZoneLabel /></p>
      </div>
      {result?.error ? <p role="alert" className="rounded bg-red-50 px-3 py-2 text-sm text-red-700">{result.error}</p> : null}
      {result?.notice ? <p className="rounded bg-emerald-50 px-3 py-2 text-sm text-emerald-800">{result.notice}</p> : null}

      {canStart ? (
        <Form method="post" className="space-y-3 rounded-lg bg-white p-4 text-sm shadow" aria-label="Start a fleet run">
          <input type="hidden" name="intent" value="start" />
          <div className="flex flex-wrap gap-2">
            <input name="name" aria-label="Run name" placeholder="Name, e.g. Disk check" className={`${input} flex-1`} required />
            <select name="shell" aria-label="Shell" className={input} defaultValue="default">
              <ShellOptions />
            </select>
          </div>
          <textarea name="steps" aria-label="Commands" rows={3} placeholder={"One command per line; several lines run as a sequence, in order"} className={`${input} w-full font-mono`} required />
          <div className="flex flex-wrap items-center gap-3">
            <span className="font-medium">Endpoints:</span>
            <select name="client" aria-label="Client" className={input} defaultValue="">
              <option value="">any client</option>
              {clients.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
            </select>
            <select name="tag" aria-label="Tag" className={input} defaultValue="">
              <option value="">any tag</option>
              {tagNames.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
            <select name="os" aria-label="OS" className={input} defaultValue="">
              <option value="">any OS</option>
              <option value="windows">Windows</option>
              <option value="linux">Linux</option>
              <option value="macos">macOS</option>
            </select>
            <select name="filterId" aria-label="Saved filter" className={input} defaultValue="">
              <option value="">no saved filter</option>
              {filters.map((f) => <option key={f.id} value={f.id}>{f.name} ({f.description})</option>)}
            </select>
          </div>
          <div className="flex flex-wrap items-center gap-3">
            <span className="font-medium">When:</span>
            {(["now", "at", "window"] as const).map((value) => (
              <label key={value} className="flex items-center gap-1">
                <input type="radio" name="schedule" value={value} checked={schedule === value} onChange={() => setSchedule(value)} />
                {value === "now" ? "as soon as each endpoint is reachable" : value === "at" ? "not before" : "in each endpoint's maintenance window"}
              </label>
            ))}
            {schedule === "at" ? (
              <>
                <input type="datetime-local" aria-label="Run at (your time zone)" value={notBefore} onChange={(e) => setNotBefore(e.target.value)} className={input} />
                <input type="hidden" name="notBefore" value={notBefore ? String(new Date(notBefore).getTime()) : ""} />
              </>
            ) : null}
          </div>
          <div className="flex flex-wrap items-center gap-3">
            <label className="flex items-center gap-1"><input type="checkbox" name="asSequence" /> Run a single command as a one-step sequence</label>
            <label className="flex items-center gap-1"><input type="checkbox" name="stopOnFailure" defaultChecked /> Stop on failure</label>
            <input name="reason" aria-label="Reason (shown to the client if approval is needed)" placeholder="Reason, for the client if a step needs approval" className={`${input} flex-1`} />
            <button disabled={busy} className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white disabled:opacity-50">Start fleet run</button>
          </div>
        </Form>
      ) : (
        <p className="text-sm text-slate-600">Your role can watch fleet runs but not start them.</p>
      )}

      <table className="w-full overflow-hidden rounded-lg bg-white text-sm shadow">
        <thead className="bg-slate-100 text-left text-slate-600">
          <tr><th className="px-4 py-2">Run</th><th className="px-4 py-2">Kind</th><th className="px-4 py-2">When</th><th className="px-4 py-2">By</th><th className="px-4 py-2">Started</th></tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} className="border-t border-slate-100" data-testid="fleet-run-row">
              <td className="px-4 py-2"><Link to={`/fleet/${run.id}`} className="font-medium text-indigo-700 hover:underline">{run.name}</Link></td>
              <td className="px-4 py-2">{run.kind}</td>
              <td className="px-4 py-2">{run.schedule === "window" ? "maintenance window" : run.schedule === "at" ? "scheduled" : "now"}</td>
              <td className="px-4 py-2">{run.createdByName}</td>
              <td className="px-4 py-2"><ViewerTime at={run.createdAt} /></td>
            </tr>
          ))}
          {runs.length === 0 ? <tr><td colSpan={5} className="px-4 py-6 text-center text-slate-500">No fleet runs yet.</td></tr> : null}
        </tbody>
      </table>

      {canStart ? (
        <Form method="post" className="flex flex-wrap items-center gap-2 rounded-lg bg-white p-4 text-sm shadow" aria-label="Save an endpoint filter">
          <input type="hidden" name="intent" value="save-filter" />
          <span className="font-medium">Save a filter:</span>
          <input name="name" aria-label="Filter name" placeholder="Filter name" className={input} required />
          <input name="q" aria-label="Search text" placeholder="hostname, client or tag text" className={input} />
          <select name="client" aria-label="Filter client" className={input} defaultValue="">
            <option value="">any client</option>
            {clients.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
          </select>
          <select name="tag" aria-label="Filter tag" className={input} defaultValue="">
            <option value="">any tag</option>
            {tagNames.map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
          <select name="os" aria-label="Filter OS" className={input} defaultValue="">
            <option value="">any OS</option>
            <option value="windows">Windows</option>
            <option value="linux">Linux</option>
            <option value="macos">macOS</option>
          </select>
          <button className="rounded border border-slate-300 px-3 py-1">Save filter</button>
        </Form>
      ) : null}

      <section className="rounded-lg bg-white p-4 text-sm shadow" aria-label="Maintenance windows">
        <h2 className="font-semibold">Maintenance windows</h2>
        <p className="text-xs text-slate-500">Recurring, in each endpoint's client's time zone (a daylight-saving night shortens a window whose start the clock skips).</p>
        <ul className="mt-2 space-y-1">
          {windows.map((w) => (
            <li key={w.id} className="flex items-center gap-2" data-testid="maintenance-window">
              <span>{w.owner}: {w.description}</span>
              {isAdmin ? (
                <Form method="post">
                  <input type="hidden" name="intent" value="delete-window" />
                  <input type="hidden" name="windowId" value={w.id} />
                  <button className="text-xs text-red-700 underline">remove</button>
                </Form>
              ) : null}
            </li>
          ))}
          {windows.length === 0 ? <li className="text-slate-500">None yet: work queued “in the maintenance window” waits until one is defined.</li> : null}
        </ul>
        {isAdmin ? (
          <Form method="post" className="mt-3 flex flex-wrap items-center gap-2" aria-label="Add a maintenance window">
            <input type="hidden" name="intent" value="save-window" />
            <select name="scope" aria-label="Window applies to" className={input} required defaultValue="">
              <option value="" disabled>client or tag…</option>
              {clients.map((c) => <option key={c.id} value={`client:${c.id}`}>client {c.name}</option>)}
              {tags.map((t) => <option key={t.id} value={`tag:${t.id}`}>tag {t.name}</option>)}
            </select>
            {WEEKDAY_NAMES.map((day, index) => (
              <label key={day} className="flex items-center gap-0.5"><input type="checkbox" name={`day${index}`} defaultChecked /> {day}</label>
            ))}
            <label className="flex items-center gap-1">from <input type="time" name="start" aria-label="Opens at (client's local time)" defaultValue="02:00" className={input} required /></label>
            <label className="flex items-center gap-1">for <input type="number" name="durationMinutes" aria-label="Minutes" min={1} max={1440} defaultValue={120} className={`${input} w-20`} required /> min</label>
            <button className="rounded border border-slate-300 px-3 py-1">Add window</button>
          </Form>
        ) : null}
      </section>
    </section>
  );
}
