import { useFetcher } from "@remix-run/react";
import { useState } from "react";
import type { ScriptSummary } from "~/models/script-library.server";

const inputClass = "rounded bg-slate-800 px-2 py-1 text-slate-100 placeholder:text-slate-500";

/**
 * Runs a library script on this endpoint: the server validates the values against the script's declarations,
 * quotes each for its step's shell and queues the rendered steps in the session (which checks role and approval).
 */
export function LibraryRunPanel({ scripts }: { scripts: ScriptSummary[] }) {
  const fetcher = useFetcher<{ error?: string; queued?: string }>();
  const [scriptId, setScriptId] = useState(scripts[0]?.id ?? "");
  const script = scripts.find((s) => s.id === scriptId);
  if (scripts.length === 0) return null;
  return (
    <fetcher.Form method="post" className="space-y-2 border-t border-slate-700 p-3 text-sm text-slate-200" data-testid="library-run">
      <input type="hidden" name="intent" value="run-script" />
      <div className="flex flex-wrap items-center gap-2">
        <label className="flex items-center gap-1.5">
          Run from library
          <select name="scriptId" value={scriptId} onChange={(e) => setScriptId(e.target.value)} aria-label="Library script" className={inputClass}>
            {scripts.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} (v{s.latestVersion})
              </option>
            ))}
          </select>
        </label>
        {script?.description ? <span className="text-xs text-slate-400">{script.description}</span> : null}
      </div>
      <div className="flex flex-wrap gap-2" key={scriptId}>
        {script?.params.map((param) => {
          const label = param.label || param.name;
          const name = `param.${param.name}`;
          if (param.type === "enum") {
            return (
              <label key={param.name} className="flex items-center gap-1.5">
                {label}
                <select name={name} defaultValue={param.default ?? param.values[0]} aria-label={label} className={inputClass}>
                  {param.values.map((value) => <option key={value}>{value}</option>)}
                </select>
              </label>
            );
          }
          if (param.type === "boolean") {
            return (
              <label key={param.name} className="flex items-center gap-1.5">
                <input type="hidden" name={name} value="false" />
                <input type="checkbox" name={name} value="true" defaultChecked={param.default} aria-label={label} />
                {label}
              </label>
            );
          }
          return (
            <label key={param.name} className="flex items-center gap-1.5">
              {label}
              <input
                name={name}
                aria-label={label}
                inputMode={param.type === "integer" ? "numeric" : undefined}
                defaultValue={param.default === undefined ? "" : String(param.default)}
                className={`${inputClass} font-mono`}
              />
            </label>
          );
        })}
        <input name="reason" aria-label="Library run reason" placeholder="Reason (shown to the client if approval is needed)" maxLength={500} className={`${inputClass} min-w-72 flex-1`} />
        <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white" disabled={fetcher.state !== "idle"}>
          Queue script
        </button>
      </div>
      {fetcher.data?.error ? <p role="alert" className="text-red-300" data-testid="library-run-error">{fetcher.data.error}</p> : null}
      {fetcher.data?.queued ? <p className="text-emerald-300" data-testid="library-run-queued">Queued {fetcher.data.queued}</p> : null}
    </fetcher.Form>
  );
}
