// The script library: list, create and edit (each save a new version), history, archive/restore.
// The editor takes the script body as JSON (params, steps, stopOnFailure); the server validates it.
import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { getScriptVersion, listScriptHistory, listScripts, saveScript, ScriptError, setScriptArchived } from "~/models/script-library.server";
import { roleMay, rolesWith } from "@protocol/permissions";

export const meta: MetaFunction = () => [{ title: "Script library · Caisey" }];

const EXAMPLE_BODY = JSON.stringify(
  {
    description: "Disk usage of one directory",
    params: [{ name: "dir", type: "string", label: "Directory", default: "/var/log" }],
    steps: [{ text: "du -sh {{dir}}", shell: "sh" }],
    stopOnFailure: true,
  },
  null,
  2,
);

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args);
  const db = createDb(getEnv(args.context).DB);
  const selected = new URL(args.request.url).searchParams.get("script");
  const scripts = await listScripts(db, member.org.id, { includeArchived: true });
  const current = selected ? await getScriptVersion(db, member.org.id, selected) : null;
  const history = current ? await listScriptHistory(db, member.org.id, current.id) : [];
  return json({
    scripts,
    current,
    history: history.map(({ body: _body, ...rest }) => rest),
    canEdit: roleMay(member.role, "library.edit"),
    canArchive: roleMay(member.role, "library.archive"),
  });
}

export async function action(args: ActionFunctionArgs) {
  const form = await args.request.formData();
  const intent = String(form.get("intent") ?? "");
  const member = await requireMember(args, rolesWith(intent === "archive" || intent === "restore" ? "library.archive" : "library.edit"));
  const db = createDb(getEnv(args.context).DB);
  const actor = { userId: member.userId, name: member.name };
  const scriptId = String(form.get("scriptId") ?? "") || null;
  try {
    if (intent === "archive" || intent === "restore") {
      await setScriptArchived(db, member.org.id, scriptId ?? "", intent === "archive", actor);
      return json({ error: null, saved: null });
    }
    if (intent !== "save") return json({ error: "Unknown action", saved: null }, { status: 400 });
    let body: unknown;
    try {
      body = JSON.parse(String(form.get("body") ?? ""));
    } catch {
      return json({ error: "The script body must be JSON", saved: null }, { status: 400 });
    }
    const baseVersion = Number(form.get("baseVersion")) || null;
    const saved = await saveScript(db, member.org.id, scriptId, { name: String(form.get("name") ?? ""), body: body as never, changeNote: String(form.get("changeNote") ?? ""), baseVersion }, actor);
    return json({ error: null, saved });
  } catch (error) {
    if (error instanceof ScriptError) return json({ error: error.message, saved: null }, { status: error.status });
    throw error;
  }
}

export default function LibraryPage() {
  const { scripts, current, history, canEdit, canArchive } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state !== "idle";
  return (
    <section className="space-y-6">
      <h1 className="text-2xl font-semibold">Script library</h1>
      <table className="w-full text-sm" data-testid="library-list">
        <thead className="text-left text-slate-500">
          <tr><th>Name</th><th>Version</th><th>Parameters</th><th>Steps</th><th>Last change</th><th /></tr>
        </thead>
        <tbody>
          {scripts.map((script) => (
            <tr key={script.id} className={script.archivedAt ? "text-slate-400" : ""}>
              <td><Link to={`/library?script=${script.id}`} className="text-indigo-700 hover:underline">{script.name}</Link>{script.archivedAt ? " (archived)" : ""}</td>
              <td>v{script.latestVersion}</td>
              <td className="font-mono">{script.params.map((p) => `${p.name}: ${p.type}`).join(", ") || "—"}</td>
              <td>{script.stepCount}</td>
              <td>{script.changedByName}, {formatTimestamp(script.changedAt)}</td>
              <td />
            </tr>
          ))}
        </tbody>
      </table>
      {result?.error ? <p role="alert" className="rounded border border-red-300 bg-red-50 p-2 text-sm text-red-800" data-testid="library-error">{result.error}</p> : null}
      {result?.saved ? <p className="text-sm text-emerald-700" data-testid="library-saved">Saved version {result.saved.version}</p> : null}
      {canEdit ? (
        <Form method="post" className="space-y-2" key={current ? `${current.id}@${current.version}` : "new"}>
          <h2 className="text-lg font-semibold">{current ? `Edit ${current.name} (v${current.version}; saving makes v${current.version + 1})` : "New script"}</h2>
          <input type="hidden" name="intent" value="save" />
          {current ? <input type="hidden" name="scriptId" value={current.id} /> : null}
          {current ? <input type="hidden" name="baseVersion" value={current.version} /> : null}
          <input name="name" aria-label="Script name" defaultValue={current?.name ?? ""} placeholder="Name" className="w-full rounded border px-2 py-1" />
          <textarea name="body" aria-label="Script body (JSON)" rows={14} defaultValue={current ? JSON.stringify(current.body, null, 2) : EXAMPLE_BODY} className="w-full rounded border px-2 py-1 font-mono text-xs" />
          <p className="text-xs text-slate-500">
            Parameters: string (pattern, maxLength), integer (min, max), enum (values), boolean; each may have a default. In a step, {"{{name}}"} is replaced
            by the value quoted as one argument for the step's shell (sh, bash, powershell or cmd), never pasted as code.
          </p>
          <input name="changeNote" aria-label="Change note" placeholder="What changed (shown in the history)" className="w-full rounded border px-2 py-1" />
          <button className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white" disabled={busy}>Save</button>
          {current ? <Link to="/library" className="ml-3 text-sm text-indigo-700">New script instead</Link> : null}
        </Form>
      ) : null}
      {current ? (
        <div className="space-y-2">
          {canArchive ? (
            <Form method="post">
              <input type="hidden" name="scriptId" value={current.id} />
              <button name="intent" value={current.archivedAt ? "restore" : "archive"} className="rounded border px-3 py-1 text-sm">
                {current.archivedAt ? "Restore" : "Archive"}
              </button>
            </Form>
          ) : null}
          <h2 className="text-lg font-semibold">History</h2>
          <ol className="text-sm" data-testid="library-history">
            {history.map((entry) => (
              <li key={entry.version}>v{entry.version}: {entry.changedByName}, {formatTimestamp(entry.changedAt)}{entry.changeNote ? ` — ${entry.changeNote}` : ""}</li>
            ))}
          </ol>
        </div>
      ) : null}
    </section>
  );
}
