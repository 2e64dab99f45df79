import { memo } from "react";
import { formatMs, formatTimestamp } from "~/lib/format";
import { isFinished, type TranscriptCommand } from "~/lib/transcript";

const STATUS_STYLE: Record<string, string> = {
  queued: "bg-slate-200 text-slate-700",
  dispatched: "bg-sky-100 text-sky-800",
  running: "bg-amber-100 text-amber-800",
  succeeded: "bg-emerald-100 text-emerald-800",
  failed: "bg-red-100 text-red-800",
  timed_out: "bg-orange-100 text-orange-800",
  cancelled: "bg-slate-300 text-slate-700",
  pending_approval: "bg-violet-100 text-violet-800",
  expired: "bg-slate-300 text-slate-700",
  skipped: "bg-slate-300 text-slate-600",
  denied: "bg-red-200 text-red-900",
};

/** Memoised: a new event re-renders only the command it belongs to. */
export const CommandEntry = memo(function CommandEntry({
  command,
  browserRttMs,
  approvalLink,
  canCancel,
  onCancel,
}: {
  command: TranscriptCommand;
  browserRttMs: number | undefined;
  approvalLink: string | undefined;
  canCancel: boolean;
  onCancel: (commandId: string) => void;
}) {
  const finished = isFinished(command);
  return (
    <article
      id={command.commandId}
      // content-visibility: off-screen entries skip layout, so a long transcript stays cheap to update.
      className="scroll-mt-4 border-b border-slate-800 px-4 py-3 [contain-intrinsic-size:auto_5rem] [content-visibility:auto] target:bg-indigo-950/60"
      data-testid="command-entry"
      data-command-id={command.commandId}
      data-status={command.status}
    >
      <header className="flex flex-wrap items-center gap-2 text-xs text-slate-400">
        <span className={`rounded px-1.5 py-0.5 font-medium ${STATUS_STYLE[command.status] ?? ""}`} data-testid="command-status">
          {command.status.replace("_", " ")}
        </span>
        {command.sequence ? (
          <span className="rounded bg-slate-700 px-1.5 py-0.5 text-slate-200" data-testid="sequence-step">
            {command.sequence.name} · step {command.sequence.step + 1}/{command.sequence.steps}
          </span>
        ) : null}
        <span>{command.requestedBy.name}</span>
        <span title="sent">sent {formatTimestamp(command.queuedAt)}</span>
        {command.notBefore && !command.dispatchedAt ? <span>not before {formatTimestamp(command.notBefore)}</span> : null}
        {command.expiresAt && !command.startedAt ? <span>expires {formatTimestamp(command.expiresAt)}</span> : null}
        {command.dispatchedAt ? <span title="dispatched to the runtime">dispatched {formatTimestamp(command.dispatchedAt)}</span> : null}
        {command.startedAt ? <span title="executed on the endpoint">executed {formatTimestamp(command.startedAt)}</span> : null}
        {command.returnedAt ? <span title="result returned">returned {formatTimestamp(command.returnedAt)}</span> : null}
        {finished && command.exitCode !== null ? <span>exit {command.exitCode}</span> : null}
        {canCancel && !finished ? (
          <button onClick={() => onCancel(command.commandId)} className="ml-auto rounded border border-slate-600 px-1.5 text-slate-300 hover:text-white">
            {command.cancelRequestedBy ? "Cancelling…" : "Cancel"}
          </button>
        ) : null}
      </header>
      <pre className="mt-1 whitespace-pre-wrap break-all font-mono text-sm text-sky-300">
        <span className="select-none text-slate-500">$ </span>
        {command.text}
      </pre>
      {command.approval ? <ApprovalPrompt approval={command.approval} link={approvalLink} pending={command.status === "pending_approval"} /> : null}
      {command.output.length ? (
        <pre className="mt-1 max-h-[32rem] overflow-auto whitespace-pre-wrap break-all font-mono text-sm" data-testid="command-output">
          {command.output.map((chunk, index) => (
            <span key={index} className={chunk.stream === "stderr" ? "text-red-300" : "text-slate-100"}>{chunk.data}</span>
          ))}
        </pre>
      ) : null}
      {command.truncatedAtBytes !== null ? (
        <p className="mt-1 text-xs text-orange-300" data-testid="truncated">
          Output truncated after {Math.round(command.truncatedAtBytes / 1024)} KiB; the command kept running.
        </p>
      ) : null}
      {command.outputLost ? (
        <p className="mt-1 text-xs text-orange-300" data-testid="output-lost">
          Part of the output was lost on the way from the endpoint; what arrived is shown.
        </p>
      ) : null}
      {command.error ? <p className="mt-1 text-xs text-red-300">{command.error}</p> : null}
      {finished ? <TimingLine command={command} browserRttMs={browserRttMs} /> : null}
    </article>
  );
});

function ApprovalPrompt({
  approval,
  link,
  pending,
}: {
  approval: NonNullable<TranscriptCommand["approval"]>;
  link: string | undefined;
  pending: boolean;
}) {
  return (
    <div className="mt-2 rounded border border-violet-400/40 bg-violet-950/40 p-2 text-xs text-violet-100" data-testid="approval-prompt">
      {approval.decision ? (
        <p data-testid="approval-decision">
          {approval.decision === "approve" ? "Approved" : "Denied"} by {approval.decidedBy} at {formatTimestamp(approval.decidedAt)}
        </p>
      ) : pending ? (
        <>
          <p>
            Waiting for the client's approval{approval.approvers.length ? ` (${approval.approvers.join(", ")})` : ""}; the link expires{" "}
            {formatTimestamp(approval.expiresAt)}.{approval.pattern ? ` Matched policy rule /${approval.pattern}/.` : ""}
          </p>
          {approval.reason ? <p className="mt-0.5 text-violet-300">Reason: {approval.reason}</p> : null}
          {link ? (
            <p className="mt-1 flex items-center gap-2">
              <code className="select-all break-all font-mono text-violet-50" data-testid="approval-link">{link}</code>
              <button type="button" className="rounded border border-violet-400/60 px-1.5" onClick={() => void navigator.clipboard?.writeText(link)}>
                Copy
              </button>
            </p>
          ) : (
            <p className="mt-1 text-violet-300">The link was shown to the requesting technician and sent to the approvers.</p>
          )}
        </>
      ) : null}
    </div>
  );
}

function TimingLine({ command, browserRttMs }: { command: TranscriptCommand; browserRttMs: number | undefined }) {
  const t = command.timings;
  return (
    <p
      className="mt-1 font-mono text-xs text-slate-400"
      data-testid="command-timing"
      data-server-rtt-ms={t?.serverRoundTripMs}
      data-on-endpoint-ms={t?.onEndpointMs}
    >
      {browserRttMs !== undefined ? (
        <span className="mr-3 text-emerald-300" data-testid="command-rtt" data-rtt-ms={browserRttMs}>round trip {formatMs(browserRttMs)}</span>
      ) : null}
      {t ? (
        <span title="server's breakdown: waiting in queue, to the endpoint, running on the endpoint, back to the server">
          queue {formatMs(t.queuedMs)} · to endpoint {formatMs(t.toEndpointMs)} · on endpoint {formatMs(t.onEndpointMs)} · back {formatMs(t.backMs)}
        </span>
      ) : null}
    </p>
  );
}
