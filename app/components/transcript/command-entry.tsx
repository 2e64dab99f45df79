import { memo, useEffect, useState } from "react";
import { describeSkew } from "@protocol/time";
import { formatDuration, formatMs } from "~/lib/format";
import { Time, useFormatTime } from "~/lib/time-zone";
import { isFinished, ranOnEndpoint, type ApprovalRecipient, type RuntimeRefusal, type TranscriptCommand } from "~/lib/transcript";

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
  interrupted: "bg-fuchsia-100 text-fuchsia-900",
};

/** Memoised: a new event re-renders only the command it belongs to. */
export const CommandEntry = memo(function CommandEntry({
  command,
  browserRttMs,
  canCancel,
  canReissue,
  onCancel,
  onReissue,
  queueAhead,
  onSequenceAction,
  onRerun,
  serverClockOffsetMs = 0,
}: {
  command: TranscriptCommand;
  browserRttMs: number | undefined;
  /** Runs the same text in the same shell again (absent for those who cannot run commands). */
  onRerun?: (command: TranscriptCommand) => void;
  /** Browser clock minus server clock, so elapsed times count from the server's start time. */
  serverClockOffsetMs?: number;
  /** May cancel commands and withdraw approval requests (anyone who can run commands). */
  canCancel: boolean;
  /** May re-issue approval links (admins). */
  canReissue: boolean;
  onCancel: (commandId: string) => void;
  onReissue: (commandId: string) => void;
  /** Commands ahead of this queued one (undefined when it is not waiting in line). */
  queueAhead?: number;
  onSequenceAction?: (sequenceId: string, action: "retry" | "skip" | "abort") => void;
}) {
  const fmt = useFormatTime();
  const finished = isFinished(command);
  const pendingApproval = command.status === "pending_approval";
  const skew = command.endpointClock ? describeSkew(command.endpointClock.offsetMs, command.endpointClock.uncertaintyMs) : null;
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
        <span title="sent">sent <Time at={command.queuedAt} /></span>
        {command.notBefore && !command.dispatchedAt && !command.maintenanceWindow ? <span data-testid="not-before">not before <Time at={command.notBefore} timeOnly /></span> : null}
        {command.maintenanceWindow && !command.dispatchedAt ? <span data-testid="maintenance-window">waits for the maintenance window (client's time zone)</span> : null}
        {command.expiresAt && !command.startedAt ? <span>expires <Time at={command.expiresAt} timeOnly /></span> : null}
        {command.dispatchedAt ? <span title="dispatched to the runtime">dispatched <Time at={command.dispatchedAt} timeOnly /></span> : null}
        {command.startedAt ? <span title="executed on the endpoint (server time)">executed <Time at={command.startedAt} timeOnly /></span> : null}
        {skew && command.endpointClock?.reportedStartedAt ? (
          <span className="text-amber-300" data-testid="endpoint-clock" title="times above are server time; this is what the endpoint's own clock said">
            {skew}: it read <Time at={command.endpointClock.reportedStartedAt} timeOnly />
          </span>
        ) : null}
        {command.returnedAt ? <span title="result returned">returned <Time at={command.returnedAt} timeOnly /></span> : null}
        {command.status === "queued" && queueAhead !== undefined ? (
          <span className="rounded bg-slate-700 px-1.5 py-0.5 text-slate-200" data-testid="queue-position" data-ahead={queueAhead}>
            {queueAhead === 0 ? "next in line" : `${queueAhead} ahead in line`}
          </span>
        ) : null}
        {command.alongside ? <span className="text-slate-300">runs alongside</span> : null}
        {command.retryOf ? <span className="text-fuchsia-300" data-testid="retry-of">retry of an interrupted attempt</span> : null}
        {command.status === "running" && command.startedAt !== null ? (
          <Elapsed since={command.startedAt} serverClockOffsetMs={serverClockOffsetMs} label="running" />
        ) : command.status === "dispatched" && command.dispatchedAt !== null ? (
          <Elapsed since={command.dispatchedAt} serverClockOffsetMs={serverClockOffsetMs} label="waiting for the runtime" />
        ) : null}
        {finished && command.exitCode !== null ? <span>exit {command.exitCode}</span> : null}
        {finished && command.timings ? (
          <span data-testid="command-duration" data-duration-ms={Math.round(command.timings.onEndpointMs)} title="time it ran on the endpoint">
            took {command.timings.onEndpointMs < 10_000 ? formatMs(command.timings.onEndpointMs) : formatDuration(command.timings.onEndpointMs)}
          </span>
        ) : null}
        <span className="ml-auto flex gap-1">
          <CopyButton text={command.text} />
          {onRerun ? (
            <button
              type="button"
              onClick={() => onRerun(command)}
              className="rounded border border-slate-600 px-1.5 text-slate-300 hover:text-white"
              aria-label={`Re-run: ${command.text}`}
              data-testid="command-rerun"
            >
              Re-run
            </button>
          ) : null}
        {/* A request waiting for the client is withdrawn from its prompt, with a confirmation. */}
        {canCancel && !finished && !pendingApproval ? (
          <button
            type="button"
            onClick={() => onCancel(command.commandId)}
            className="rounded border border-slate-600 px-1.5 text-slate-300 hover:text-white"
            aria-label={`Cancel: ${command.text}`}
            data-testid="command-cancel"
          >
            {command.cancelRequestedBy ? "Cancelling…" : "Cancel"}
          </button>
        ) : null}
        </span>
      </header>
      <pre className="mt-1 whitespace-pre-wrap break-all font-mono text-sm text-sky-300">
        <span className="select-none text-slate-400">$ </span>
        {command.text}
      </pre>
      {command.approval ? (
        <ApprovalPrompt
          commandId={command.commandId}
          approval={command.approval}
          pending={pendingApproval}
          canWithdraw={canCancel}
          canReissue={canReissue}
          onWithdraw={onCancel}
          onReissue={onReissue}
        />
      ) : null}
      {command.output.length ? (
        <pre className="mt-1 max-h-[32rem] overflow-auto whitespace-pre-wrap break-all font-mono text-sm" data-testid="command-output">
          {command.output.map((chunk, index) => (
            <span key={index} className={chunk.stream === "stderr" ? "text-red-300" : "text-slate-100"}>{chunk.data}</span>
          ))}
        </pre>
      ) : null}
      {command.truncatedAtBytes !== null ? (
        <p className="mt-1 text-xs text-orange-300" data-testid="truncated">
          {command.truncatedBy === "runtime_cap"
            ? `Output truncated on the endpoint by the runtime's limit: ${Math.round(command.truncatedAtBytes / 1024)} KiB kept; the command kept running.`
            : `Output truncated after ${Math.round(command.truncatedAtBytes / 1024)} KiB; the command kept running.`}
        </p>
      ) : null}
      {command.outputLost ? (
        <p className="mt-1 text-xs text-orange-300" data-testid="output-lost">
          Part of the output was lost on the way from the endpoint; what arrived is shown.
        </p>
      ) : null}
      {command.status === "interrupted" ? (
        <p className="mt-1 text-xs text-fuchsia-300" data-testid="interrupted">
          Interrupted: runtime stopped
          {command.startedAt ? ` · started ${fmt(command.startedAt)}` : " before it started"}
          {command.output.length ? " · the output above is what it printed so far" : " · no output arrived"}
        </p>
      ) : null}
      {command.status === "cancelled" && command.finishedBy ? (
        <p className="mt-1 text-xs text-slate-300" data-testid="cancelled-by">
          Cancelled by {command.finishedBy.name} at {fmt(command.finishedAt)}
        </p>
      ) : null}
      {command.error ? <p className="mt-1 text-xs text-red-300">{command.error}</p> : null}
      {command.refusals.map((refusal) => <RefusalLine key={refusal.seq} refusal={refusal} />)}
      {command.sequence && (command.paused || command.resumed) ? (
        <SequencePause command={command} canAct={canCancel} onAction={onSequenceAction} />
      ) : null}
      {finished && ranOnEndpoint(command) ? <TimingLine command={command} browserRttMs={browserRttMs} /> : null}
    </article>
  );
});

const RESUMED_TEXT = { retry: "Retried", skip: "Skipped", abort: "Aborted the rest" } as const;

/** A sequence waiting on this interrupted step: the technician decides how it goes on. */
function SequencePause({
  command,
  canAct,
  onAction,
}: {
  command: TranscriptCommand;
  canAct: boolean;
  onAction?: (sequenceId: string, action: "retry" | "skip" | "abort") => void;
}) {
  const fmt = useFormatTime();
  const sequence = command.sequence!;
  const resumed = command.resumed;
  if (resumed) {
    return (
      <p className="mt-1 text-xs text-fuchsia-200" data-testid="sequence-resumed" data-action={resumed.action}>
        {resumed.action === "auto_retry"
          ? `The step is safe to run twice: retried automatically at ${fmt(resumed.at)}.`
          : `${RESUMED_TEXT[resumed.action]} by ${resumed.by?.name ?? "someone"} at ${fmt(resumed.at)}.`}
      </p>
    );
  }
  return (
    <div className="mt-2 rounded border border-fuchsia-400/40 bg-fuchsia-950/40 p-2 text-xs text-fuchsia-100" data-testid="sequence-paused" role="group" aria-label="Sequence paused">
      <p className="font-medium">
        “{sequence.name}” is paused: step {sequence.step + 1} of {sequence.steps} was interrupted. It may have partly run.
      </p>
      {canAct && onAction ? (
        <p className="mt-2 flex flex-wrap gap-2">
          <button type="button" onClick={() => onAction(sequence.id, "retry")} className="rounded border border-fuchsia-400/60 px-2 py-0.5 hover:bg-fuchsia-900" data-testid="sequence-retry">
            Retry step
          </button>
          <button type="button" onClick={() => onAction(sequence.id, "skip")} className="rounded border border-fuchsia-400/60 px-2 py-0.5 hover:bg-fuchsia-900" data-testid="sequence-skip">
            Skip step
          </button>
          <button
            type="button"
            // The console asks for confirmation before aborting (live-session.tsx).
            onClick={() => onAction(sequence.id, "abort")}
            className="rounded border border-fuchsia-400/60 px-2 py-0.5 hover:bg-fuchsia-900"
            data-testid="sequence-abort"
          >
            Abort sequence
          </button>
        </p>
      ) : (
        <p className="mt-1 text-fuchsia-300">A technician who can run commands decides whether to retry, skip or abort.</p>
      )}
    </div>
  );
}

const DELIVERY_TEXT: Record<ApprovalRecipient["delivery"], string> = {
  pending: "sending…",
  sent: "sent",
  retrying: "retrying",
  failed: "not delivered",
};

const DELIVERY_STYLE: Record<ApprovalRecipient["delivery"], string> = {
  pending: "text-violet-300",
  sent: "text-emerald-300",
  retrying: "text-amber-300",
  failed: "text-red-300",
};

/**
 * The requester's view of a request for the client's consent: who it went to
 * and whether the email arrived. Never a link: only the approvers get those.
 */
function ApprovalPrompt({
  commandId,
  approval,
  pending,
  canWithdraw,
  canReissue,
  onWithdraw,
  onReissue,
}: {
  commandId: string;
  approval: NonNullable<TranscriptCommand["approval"]>;
  pending: boolean;
  canWithdraw: boolean;
  canReissue: boolean;
  onWithdraw: (commandId: string) => void;
  onReissue: (commandId: string) => void;
}) {
  const fmt = useFormatTime();
  // Both ask for confirmation in the console's dialog (live-session.tsx) before anything is sent.
  const withdraw = () => onWithdraw(commandId);
  const reissue = () => onReissue(commandId);
  return (
    <div className="mt-2 rounded border border-violet-400/40 bg-violet-950/40 p-2 text-xs text-violet-100" data-testid="approval-prompt">
      {approval.decision ? (
        <p data-testid="approval-decision">
          {approval.decision === "approve" ? "Approved" : "Denied"} by {approval.decidedBy}
          {approval.decidedByAddress ? ` (${approval.decidedByAddress})` : ""} at {fmt(approval.decidedAt)}
        </p>
      ) : pending ? (
        <p className="font-medium">Waiting for the client&apos;s approval; the request expires {fmt(approval.expiresAt)}.</p>
      ) : (
        <p className="font-medium">Approval request closed without a decision.</p>
      )}
      <p className="mt-0.5 text-violet-200" data-testid="approval-reason">Reason: {approval.reason || "—"}</p>
      {approval.rule ? <p className="mt-0.5 text-violet-300" data-testid="approval-rule">Needs approval: {approval.rule}</p> : null}
      {pending ? (
        <>
          <p className="mt-0.5 text-violet-300">
            Requested {fmt(approval.requestedAt)}
            {approval.reissuedBy ? ` · links re-issued by ${approval.reissuedBy.name} at ${fmt(approval.reissuedAt)}` : ""}
          </p>
          {approval.approvers.length ? (
            <ul className="mt-1 space-y-0.5">
              {approval.approvers.map((approver) => (
                <ApproverLine key={`${approver.name}|${approver.address}`} approver={approver} />
              ))}
            </ul>
          ) : (
            <p className="mt-1 text-red-300">No approver was asked.</p>
          )}
          {canWithdraw || canReissue ? (
            <p className="mt-2 flex flex-wrap gap-2">
              {canWithdraw ? (
                <button type="button" onClick={withdraw} className="rounded border border-violet-400/60 px-2 py-0.5 hover:bg-violet-900" data-testid="approval-withdraw">
                  Withdraw request
                </button>
              ) : null}
              {canReissue ? (
                <button type="button" onClick={reissue} className="rounded border border-violet-400/60 px-2 py-0.5 hover:bg-violet-900" data-testid="approval-reissue">
                  Re-issue links
                </button>
              ) : null}
            </p>
          ) : null}
        </>
      ) : null}
    </div>
  );
}

function ApproverLine({ approver }: { approver: ApprovalRecipient }) {
  const fmt = useFormatTime();
  return (
    <li data-testid="approval-approver" data-delivery={approver.delivery}>
      <span className="font-medium">{approver.name}</span>
      {approver.address ? <span className="text-violet-300"> · {approver.address}</span> : null}
      {" · "}
      <span className={DELIVERY_STYLE[approver.delivery]}>
        {DELIVERY_TEXT[approver.delivery]}
        {approver.delivery === "sent" && approver.sentAt !== null ? ` ${fmt(approver.sentAt)}` : ""}
        {approver.delivery === "retrying" && approver.nextAttemptAt !== null ? `, next attempt ${fmt(approver.nextAttemptAt)}` : ""}
      </span>
      {approver.error && approver.delivery !== "sent" ? <span className="block pl-3 text-red-300">{approver.error}</span> : null}
    </li>
  );
}

/** A runtime message the session refused: shown so a technician notices, though nothing changed. */
export function RefusalLine({ refusal }: { refusal: RuntimeRefusal }) {
  const fmt = useFormatTime();
  return (
    <p className="mt-1 text-xs text-amber-300" data-testid="runtime-refused" data-command-id={refusal.commandId ?? ""}>
      ⚠ Refused the runtime&apos;s &ldquo;{refusal.message}&rdquo; report at {fmt(refusal.at)}: {refusal.reason}. Nothing changed.
    </p>
  );
}

function TimingLine({ command, browserRttMs }: { command: TranscriptCommand; browserRttMs: number | undefined }) {
  const t = command.timings;
  // The submitter's browser measured click → rendered output; what the server did not see is this browser's own leg.
  const browserLegMs = browserRttMs !== undefined && t ? Math.max(0, browserRttMs - t.serverRoundTripMs) : undefined;
  return (
    <p
      className="mt-1 font-mono text-xs text-slate-400"
      data-testid="command-timing"
      data-server-rtt-ms={t?.serverRoundTripMs}
      data-on-endpoint-ms={t?.onEndpointMs}
    >
      {browserRttMs !== undefined ? (
        <span className="mr-3 text-emerald-300" data-testid="command-rtt" data-rtt-ms={browserRttMs} title="from your click to the output on your screen">
          round trip {formatMs(browserRttMs)}
        </span>
      ) : null}
      {t ? (
        <>
          <span className="mr-3 text-sky-300" data-testid="command-server-rtt" title="from the server accepting it to the result back at the server, as every viewer sees it">
            server round trip {formatMs(t.serverRoundTripMs)}
          </span>
          <span title="server's breakdown: waiting in queue, to the endpoint, running on the endpoint, back to the server">
            queue {formatMs(t.queuedMs)} · to endpoint {formatMs(t.toEndpointMs)} · on endpoint {formatMs(t.onEndpointMs)} · back {formatMs(t.backMs)}
          </span>
          {browserLegMs !== undefined ? (
            <span className="ml-3" data-testid="command-browser-leg" title="your browser to the server and back, and rendering">
              · your link {formatMs(browserLegMs)}
            </span>
          ) : null}
        </>
      ) : null}
    </p>
  );
}

/** Time since a server timestamp, ticking once a second; only this span re-renders. */
function Elapsed({ since, serverClockOffsetMs, label }: { since: number; serverClockOffsetMs: number; label: string }) {
  const elapsed = () => Math.max(0, Date.now() - serverClockOffsetMs - since);
  const [ms, setMs] = useState(elapsed);
  useEffect(() => {
    setMs(elapsed());
    const timer = setInterval(() => setMs(elapsed()), 1000);
    return () => clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [since, serverClockOffsetMs]);
  return (
    <span className="tabular-nums text-amber-200" data-testid="command-elapsed" data-elapsed-ms={ms} role="timer" aria-label={`${label} for ${formatDuration(ms)}`}>
      {label} {formatDuration(ms)}
    </span>
  );
}

function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState<"copied" | "failed" | null>(null);
  useEffect(() => {
    if (!copied) return;
    const timer = setTimeout(() => setCopied(null), 2000);
    return () => clearTimeout(timer);
  }, [copied]);
  return (
    <button
      type="button"
      onClick={() => navigator.clipboard.writeText(text).then(() => setCopied("copied"), () => setCopied("failed"))}
      className="rounded border border-slate-600 px-1.5 text-slate-300 hover:text-white"
      aria-label={`Copy: ${text}`}
      data-testid="command-copy"
    >
      {copied === "copied" ? "Copied" : copied === "failed" ? "Copy failed" : "Copy"}
    </button>
  );
}
