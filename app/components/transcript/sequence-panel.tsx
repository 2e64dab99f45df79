import { useFetcher } from "@remix-run/react";
import { ShellOptions } from "~/components/shell-options";
import { useState } from "react";
import { useTimeZone } from "~/lib/time-zone";
import type { SequenceTemplate } from "~/models/sequence-templates.server";
import type { Shell, ViewerMessage } from "@protocol/messages";

type SequenceRequest = Omit<Extract<ViewerMessage, { type: "run_sequence" }>, "type" | "requestId">;

/** datetime-local (the browser's wall clock: the viewer's zone, as everywhere on the console) → epoch ms, or null when empty. */
function localTimeToEpoch(value: string): number | null {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

const inputClass = "rounded bg-slate-800 px-2 py-1 text-slate-100 placeholder:text-slate-500";

/**
 * Drafts an ordered diagnostic sequence for this endpoint, online or not; it
 * runs at the runtime's next contact, inside the optional maintenance window.
 */
export function SequencePanel({
  templates,
  onQueue,
}: {
  templates: SequenceTemplate[];
  onQueue: (sequence: SequenceRequest) => void;
}) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [stepsText, setStepsText] = useState("");
  const [shell, setShell] = useState<Shell>("default");
  const [stopOnFailure, setStopOnFailure] = useState(true);
  const [idempotent, setIdempotent] = useState(false);
  const [notBefore, setNotBefore] = useState("");
  const [expiresAt, setExpiresAt] = useState("");
  const [inWindow, setInWindow] = useState(false);
  const [privileged, setPrivileged] = useState(false);
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const saver = useFetcher<{ error?: string; saved?: string }>();
  // datetime-local reads the browser's wall clock, which is the zone every time on the console is shown in (ADR 0024).
  const zone = useTimeZone();

  const steps = stepsText.split("\n").map((line) => line.trim()).filter(Boolean).map((text) => ({ text, shell, idempotent }));

  const loadTemplate = (id: string) => {
    const template = templates.find((t) => t.id === id);
    if (!template) return;
    setName(template.name);
    setStepsText(template.steps.map((s) => s.text).join("\n"));
    setShell(template.steps[0]?.shell ?? "default");
    setStopOnFailure(template.stopOnFailure);
    setIdempotent(template.steps.length > 0 && template.steps.every((s) => s.idempotent));
  };

  const queue = (event: React.FormEvent) => {
    event.preventDefault();
    const start = localTimeToEpoch(notBefore);
    const end = localTimeToEpoch(expiresAt);
    if (!name.trim() || steps.length === 0) return setProblem("Give the sequence a name and at least one step.");
    if (start !== null && end !== null && end <= start) return setProblem("The expiry must be after the window opens.");
    if (inWindow && start !== null) return setProblem("Choose either a start time or the maintenance window, not both.");
    if (privileged && !reason.trim()) return setProblem("Give a reason: the client reads it first when deciding whether to approve.");
    setProblem(null);
    // The reason travels even unticked: under the client's policy any step may still need approval.
    onQueue({ name: name.trim(), steps, stopOnFailure, notBefore: start, expiresAt: end, privileged, reason: reason.trim(), maintenanceWindow: inWindow });
    setStepsText("");
  };

  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)} className="m-3 mt-0 text-xs text-indigo-300 underline">
        Queue a diagnostic sequence…
      </button>
    );
  }
  return (
    <form onSubmit={queue} className="space-y-2 border-t border-slate-700 p-3 text-xs text-slate-300" aria-label="Diagnostic sequence">
      <div className="flex flex-wrap items-center gap-2">
        <input value={name} onChange={(e) => setName(e.target.value)} aria-label="Sequence name" placeholder="Sequence name" className={`${inputClass} flex-1`} />
        {templates.length ? (
          <select aria-label="Load template" defaultValue="" onChange={(e) => loadTemplate(e.target.value)} className={inputClass}>
            <option value="">Load a template…</option>
            {templates.map((t) => <option key={t.id} value={t.id}>{t.name}</option>)}
          </select>
        ) : null}
        <select value={shell} onChange={(e) => setShell(e.target.value as Shell)} aria-label="Sequence shell" className={inputClass}>
          <ShellOptions />
        </select>
      </div>
      <textarea
        value={stepsText}
        onChange={(e) => setStepsText(e.target.value)}
        aria-label="Steps"
        placeholder={"One command per line, run in order\nipconfig /all\nGet-Service Spooler"}
        rows={4}
        spellCheck={false}
        className={`${inputClass} w-full font-mono`}
      />
      <div className="flex flex-wrap items-center gap-3">
        <label className="flex items-center gap-1.5">
          <input type="checkbox" checked={stopOnFailure} onChange={(e) => setStopOnFailure(e.target.checked)} /> Stop on failure
        </label>
        <label className="flex items-center gap-1.5" title="If the runtime stops or crashes during a step, that step is run again once without asking">
          <input type="checkbox" checked={idempotent} onChange={(e) => setIdempotent(e.target.checked)} data-testid="sequence-idempotent" /> Steps are safe to run twice
        </label>
        <label className="flex items-center gap-1.5">Not before <input type="datetime-local" value={notBefore} onChange={(e) => setNotBefore(e.target.value)} aria-label={`Not before (${zone})`} className={inputClass} /></label>
        <label className="flex items-center gap-1.5" title="Each step starts only inside one of the client's (or the endpoint's tags') recurring maintenance windows, in the client's time zone">
          <input type="checkbox" checked={inWindow} onChange={(e) => setInWindow(e.target.checked)} /> In the maintenance window
        </label>
        <label className="flex items-center gap-1.5">Expires <input type="datetime-local" value={expiresAt} onChange={(e) => setExpiresAt(e.target.value)} aria-label={`Expires (${zone})`} className={inputClass} /></label>
        <span className="text-slate-400" data-testid="sequence-zone">times in {zone}</span>
        <label className="flex items-center gap-1.5">
          <input type="checkbox" checked={privileged} onChange={(e) => setPrivileged(e.target.checked)} /> Ask the client to approve every step
        </label>
        <input
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          // Not labelled "Reason": the command form's field owns that label.
          aria-label="Why this sequence (shown to the client)"
          placeholder="Why, in plain words for the client (required whenever a step needs approval)"
          maxLength={500}
          className={`${inputClass} min-w-0 flex-1 basis-64`}
        />
        <button className="rounded bg-indigo-600 px-3 py-1 font-medium text-white">Queue sequence</button>
        <button
          type="button"
          className="rounded border border-slate-600 px-2 py-1"
          disabled={saver.state !== "idle"}
          onClick={() => saver.submit({ intent: "save-template", template: JSON.stringify({ name: name.trim(), steps, stopOnFailure }) }, { method: "post" })}
        >
          Save as template
        </button>
        <button type="button" className="ml-auto underline" onClick={() => setOpen(false)}>close</button>
      </div>
      {problem || saver.data?.error ? <p role="alert" className="text-red-300">{problem ?? saver.data?.error}</p> : null}
      {saver.data?.saved ? <p className="text-emerald-300">Saved template “{saver.data.saved}”.</p> : null}
    </form>
  );
}
