import { Fragment, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { ShellOptions } from "~/components/shell-options";
import { useConfirmDialog } from "~/components/confirm-dialog";
import { searchBackwards, technicianHistory } from "~/lib/command-history";
import { describeRuntimeLink } from "~/lib/format";
import { Time, useTimeZone } from "~/lib/time-zone";
import { isFinished, noticesAfter, queuePositions, type TranscriptCommand, type TranscriptState } from "~/lib/transcript";
import type { Role } from "~/db/schema";
import type { Shell } from "@protocol/messages";
import type { SequenceTemplate } from "~/models/sequence-templates.server";
import { CommandEntry, RefusalLine } from "./command-entry";
import { LatencyPanel } from "./latency-panel";
import { ShortcutsDialog } from "./shortcuts-dialog";
import { SequencePanel } from "./sequence-panel";
import { useEndpointSession, type SessionError, type SocketStatus } from "./use-endpoint-session";

/** Errors that need more than the session's sentence: what the technician can do about them. */
const ERROR_TITLES: Partial<Record<SessionError["code"], string>> = {
  policy_unavailable: "Client approval policy unavailable",
  no_approvers: "No one can approve this",
  invalid_message: "Not sent",
  forbidden: "Not allowed",
};

const SOCKET_STATUS_TEXT: Record<SocketStatus, string> = {
  live: "● live",
  connecting: "○ connecting…",
  reconnecting: "○ reconnecting…",
  "access-removed": "✕ your access to this organisation was removed: reload to sign in again",
};

export const REASON_REQUIRED_MESSAGE = "Give a reason: the client reads it first when deciding whether to approve.";

export function LiveSession({
  endpointId,
  userId,
  canRun,
  canQueue = canRun,
  role,
  defaultShell,
  templates,
  onRuntimeState,
}: {
  /** Told whenever the session's word on the runtime changes (the page header's badge follows it live). */
  onRuntimeState?: (runtime: { online: boolean } | null) => void;
  endpointId: string;
  /** The signed-in member: the command history is theirs on this endpoint. */
  userId: string;
  canRun: boolean;
  /** May queue diagnostic sequences (NOC staff may, without live commands; docs/roles.md). */
  canQueue?: boolean;
  /** The member's role: only admins may re-issue approval links (the session enforces it too). */
  role: Role;
  defaultShell: Shell;
  templates: SequenceTemplate[];
}) {
  const session = useEndpointSession(endpointId);
  const { transcript } = session;
  useEffect(() => onRuntimeState?.(session.runtime ?? null), [session.runtime, onRuntimeState]);
  const zone = useTimeZone();
  const link = session.runtime ? describeRuntimeLink(session.runtime, Date.now(), zone) : null;
  const positions = useMemo(() => queuePositions(transcript), [transcript]);
  const [text, setText] = useState("");
  const [shell, setShell] = useState<Shell>(defaultShell);
  const [privileged, setPrivileged] = useState(false);
  const [alongside, setAlongside] = useState(false);
  const [reason, setReason] = useState("");
  const [reasonProblem, setReasonProblem] = useState<string | null>(null);
  /** performance.now() at submit, by requestId: the browser's own round-trip clock. */
  const submittedAtRef = useRef(new Map<string, number>());
  const [rttByRequest, setRttByRequest] = useState<Record<string, number>>({});
  const transcriptRef = useRef<HTMLDivElement>(null);
  const commandInputRef = useRef<HTMLInputElement>(null);
  const searchInputRef = useRef<HTMLInputElement>(null);
  const { confirm, element: confirmDialog } = useConfirmDialog();
  const historyItems = useMemo(() => technicianHistory(transcript, userId), [transcript, userId]);
  /** Where ArrowUp/ArrowDown stand in the history; null while editing the draft. */
  const [historyIndex, setHistoryIndex] = useState<number | null>(null);
  const draftRef = useRef("");
  /** Ctrl-R reverse search: the query and the history index it currently matches (-1: none). */
  const [search, setSearch] = useState<{ query: string; index: number } | null>(null);
  const announcement = useFinishedAnnouncement(transcript);
  const scrolledToTargetRef = useRef(false);

  // Runs once the finished output is in the DOM (before the browser paints the
  // frame): click → rendered output, without the wait for the next frame.
  useLayoutEffect(() => {
    const measured: Record<string, number> = {};
    for (const id of transcript.order) {
      const command = transcript.commands[id]!;
      const submittedAt = submittedAtRef.current.get(command.requestId);
      if (submittedAt !== undefined && isFinished(command)) {
        measured[command.requestId] = performance.now() - submittedAt;
        submittedAtRef.current.delete(command.requestId);
      }
    }
    if (Object.keys(measured).length) setRttByRequest((prev) => ({ ...prev, ...measured }));
    // A link to one command (from the review page) scrolls there once it has arrived and stays; otherwise follow the tail.
    const target = decodeURIComponent(window.location.hash.slice(1));
    if (target) {
      const element = scrolledToTargetRef.current ? null : document.getElementById(target);
      if (element) {
        element.scrollIntoView({ block: "center" });
        scrolledToTargetRef.current = true;
      }
      return;
    }
    // After the frame, so following the tail never forces a layout while messages are being handled. The transcript
    // scrolls to its end; the page moves only to keep the prompt the technician is typing at in view as the
    // transcript grows above it (on a phone it would slide below the fold).
    const frame = requestAnimationFrame(() => {
      const box = transcriptRef.current;
      if (box) box.scrollTop = box.scrollHeight;
      const input = commandInputRef.current;
      if (input && document.activeElement === input) input.scrollIntoView({ block: "nearest" });
    });
    return () => cancelAnimationFrame(frame);
  }, [transcript]);

  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    const command = text.trim();
    if (!command) return;
    if (privileged && !reason.trim()) {
      setReasonProblem(REASON_REQUIRED_MESSAGE);
      return;
    }
    setReasonProblem(null);
    const startedAt = performance.now();
    const requestId = session.run(command, shell, { privileged, reason, alongside });
    submittedAtRef.current.set(requestId, startedAt);
    setText("");
    setPrivileged(false);
    setReason("");
    setHistoryIndex(null);
    draftRef.current = "";
    commandInputRef.current?.focus();
  };

  const recall = (index: number | null) => {
    setHistoryIndex(index);
    if (index === null) {
      setText(draftRef.current);
      return;
    }
    const item = historyItems[index]!;
    setText(item.text);
    setShell(item.shell as Shell);
  };

  const onCommandKeyDown = (event: React.KeyboardEvent<HTMLInputElement>) => {
    if (event.key === "ArrowUp" && historyItems.length) {
      event.preventDefault();
      if (historyIndex === null) draftRef.current = text;
      recall(Math.max(0, (historyIndex ?? historyItems.length) - 1));
    } else if (event.key === "ArrowDown" && historyIndex !== null) {
      event.preventDefault();
      recall(historyIndex + 1 >= historyItems.length ? null : historyIndex + 1);
    } else if (event.key === "r" && event.ctrlKey) {
      event.preventDefault();
      if (historyIndex === null) draftRef.current = text;
      setSearch({ query: "", index: -1 });
    }
  };

  const searching = search !== null;
  useEffect(() => {
    if (searching) searchInputRef.current?.focus();
  }, [searching]);

  const closeSearch = (accept: boolean) => {
    if (accept && search && search.index >= 0) recall(search.index);
    setSearch(null);
    commandInputRef.current?.focus();
  };

  const onSearchKeyDown = (event: React.KeyboardEvent<HTMLInputElement>) => {
    if (!search) return;
    if (event.key === "r" && event.ctrlKey) {
      // Again: the next older match.
      event.preventDefault();
      const older = searchBackwards(historyItems, search.query, search.index >= 0 ? search.index : historyItems.length);
      if (older >= 0) setSearch({ ...search, index: older });
    } else if (event.key === "Enter") {
      event.preventDefault();
      closeSearch(true);
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeSearch(false);
    }
  };

  const { run, cancel, reissue, sequenceAction } = session;
  const rerun = useCallback(
    (command: TranscriptCommand) => {
      const startedAt = performance.now();
      const requestId = run(command.text, command.shell as Shell, { privileged: false, reason: "" });
      submittedAtRef.current.set(requestId, startedAt);
      commandInputRef.current?.focus();
    },
    [run],
  );

  const commandsRef = useRef(transcript.commands);
  commandsRef.current = transcript.commands;
  const confirmCancel = useCallback(
    async (commandId: string) => {
      const command = commandsRef.current[commandId];
      if (!command) return;
      const ok =
        command.status === "pending_approval"
          ? await confirm("Withdraw this approval request?", "The client's links stop working and the command will not run.", "Withdraw request")
          : await confirm(
              `Cancel “${command.text}”?`,
              command.status === "running" ? "It is stopped on the endpoint now; what it already changed stays changed." : "It will not run.",
              "Cancel command",
            );
      if (ok) cancel(commandId);
    },
    [confirm, cancel],
  );
  const confirmReissue = useCallback(
    async (commandId: string) => {
      if (await confirm("Send new approval links?", "Every approver gets a new link; the links already sent stop working.", "Re-issue links")) reissue(commandId);
    },
    [confirm, reissue],
  );
  const confirmSequenceAction = useCallback(
    async (sequenceId: string, action: "retry" | "skip" | "abort") => {
      if (action === "abort" && !(await confirm("Abort the rest of this sequence?", "Its remaining steps will not run.", "Abort sequence"))) return;
      sequenceAction(sequenceId, action);
    },
    [confirm, sequenceAction],
  );

  return (
    <div className="overflow-hidden rounded-lg bg-slate-900 shadow">
      <div className="flex flex-wrap items-center gap-3 border-b border-slate-700 px-4 py-2 text-xs text-slate-300">
        <span data-testid="socket-status" data-status={session.status}>
          {SOCKET_STATUS_TEXT[session.status]}
        </span>
        <span data-testid="runtime-state" data-online={session.runtime?.online ? "true" : "false"} data-transport={link?.kind ?? ""}>
          {link ? link.text : "runtime …"}
        </span>
        <span className="ml-auto" data-testid="presence">
          watching: {session.viewers.map((v) => v.name).join(", ") || "—"}
        </span>
        <ShortcutsDialog />
      </div>
      {session.errors.map((error) => (
        <div
          key={error.id}
          role="alert"
          className="flex items-center justify-between gap-3 bg-red-900/60 px-4 py-1 text-sm text-red-100"
          data-testid="session-error"
          data-code={error.code}
        >
          <span>
            {ERROR_TITLES[error.code] ? <strong className="mr-1">{ERROR_TITLES[error.code]}:</strong> : null}
            {error.message}
          </span>
          <button onClick={() => session.dismissError(error.id)} className="text-xs underline">dismiss</button>
        </div>
      ))}
      <div ref={transcriptRef} className="max-h-[60vh] min-h-48 overflow-y-auto" data-testid="transcript" role="log" aria-label="Transcript" aria-live="off" tabIndex={0}>
        {session.history.hasOlder ? <LoadOlder loading={session.history.loading} onLoad={session.loadOlder} /> : null}
        {transcript.prunedBefore ? (
          <p className="px-4 py-2 text-xs text-slate-500" data-testid="transcript-pruned">
            History before <Time at={transcript.prunedBefore} /> was removed by your organisation&apos;s retention setting.
          </p>
        ) : null}
        {transcript.order.length === 0 ? <p className="px-4 py-6 text-sm text-slate-500">No commands yet.</p> : null}
        <Notices notices={noticesAfter(transcript, null)} />
        {transcript.order.map((id) => {
          const command = transcript.commands[id]!;
          return (
            <Fragment key={id}>
              <CommandEntry
                command={command}
                browserRttMs={rttByRequest[command.requestId]}
                canCancel={canRun || (canQueue && command.sequence !== null)}
                canReissue={role === "admin"}
                onCancel={confirmCancel}
                onReissue={confirmReissue}
                queueAhead={positions.get(id)}
                onSequenceAction={confirmSequenceAction}
                onRerun={canRun ? rerun : undefined}
                serverClockOffsetMs={session.serverClockOffsetMs}
              />
              <Notices notices={noticesAfter(transcript, id)} />
            </Fragment>
          );
        })}
      </div>
      {/* Polite: a finished command is announced once, after whatever the reader is saying. */}
      <p role="status" aria-live="polite" className="sr-only" data-testid="transcript-announcement">{announcement}</p>
      {confirmDialog}
      {canRun ? (
        <form onSubmit={submit} className="flex flex-wrap gap-2 border-t border-slate-700 p-3">
          <select value={shell} onChange={(e) => setShell(e.target.value as Shell)} aria-label="Shell" className="rounded bg-slate-800 px-2 text-sm text-slate-200">
            <ShellOptions />
          </select>
          <input
            ref={commandInputRef}
            value={text}
            onChange={(e) => {
              setText(e.target.value);
              setHistoryIndex(null);
            }}
            onKeyDown={onCommandKeyDown}
            aria-label="Command"
            aria-keyshortcuts="ArrowUp ArrowDown Control+R"
            placeholder="Type a command and press Enter"
            autoComplete="off"
            spellCheck={false}
            className="min-w-0 flex-1 rounded bg-slate-800 px-3 py-1.5 font-mono text-sm text-slate-100 placeholder:text-slate-400"
            data-history-index={historyIndex ?? ""}
          />
          <button className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white">Run</button>
          {search ? (
            <div className="flex basis-full items-center gap-2 text-xs text-slate-300" data-testid="history-search">
              <label htmlFor="history-search" className="whitespace-nowrap">reverse search</label>
              <input
                id="history-search"
                ref={searchInputRef}
                value={search.query}
                onChange={(e) => setSearch({ query: e.target.value, index: searchBackwards(historyItems, e.target.value) })}
                onKeyDown={onSearchKeyDown}
                aria-describedby="history-search-match"
                autoComplete="off"
                spellCheck={false}
                className="min-w-0 flex-1 rounded bg-slate-800 px-2 py-1 font-mono text-slate-100"
              />
              <span id="history-search-match" className="min-w-0 truncate font-mono" data-testid="history-search-match" aria-live="polite">
                {search.query ? (search.index >= 0 ? historyItems[search.index]!.text : "no match") : "type to search your history (Enter takes it, Esc leaves)"}
              </span>
            </div>
          ) : null}
          <div className="flex basis-full flex-wrap items-center gap-3 text-xs text-slate-300">
            <label className="flex items-center gap-1.5">
              <input
                type="checkbox"
                checked={privileged}
                onChange={(e) => {
                  setPrivileged(e.target.checked);
                  if (!e.target.checked) setReasonProblem(null);
                }}
              />
              Needs client approval
            </label>
            <label className="flex items-center gap-1.5" title="Runs next to whatever is running instead of waiting its turn (e.g. tail -f)">
              <input type="checkbox" checked={alongside} onChange={(e) => setAlongside(e.target.checked)} />
              Run alongside
            </label>
            <input
              value={reason}
              onChange={(e) => {
                setReason(e.target.value);
                if (e.target.value.trim()) setReasonProblem(null);
              }}
              aria-label="Reason"
              aria-invalid={reasonProblem ? true : undefined}
              aria-describedby={reasonProblem ? "reason-problem" : undefined}
              placeholder="Reason shown to the client (required whenever the client must approve)"
              maxLength={500}
              className="min-w-0 flex-1 basis-64 rounded bg-slate-800 px-2 py-1 text-slate-100 placeholder:text-slate-400"
            />
            {reasonProblem ? (
              <p id="reason-problem" role="alert" className="basis-full text-red-300" data-testid="reason-problem">
                {reasonProblem}
              </p>
            ) : null}
          </div>
        </form>
      ) : null}
      {canQueue ? <SequencePanel templates={templates} onQueue={session.runSequence} /> : null}
      <LatencyPanel transcript={transcript} />
      {canRun ? null : (
        <p className="border-t border-slate-700 px-4 py-2 text-xs text-slate-400" data-testid="cannot-run">
          {session.runtime?.decommissioned
            ? "This endpoint was decommissioned: nothing new runs on it. Its transcript stays readable."
            : canQueue
              ? "Your role can queue diagnostic sequences (below) but not run live commands."
              : "Your role can watch but not run commands."}
        </p>
      )}
    </div>
  );
}

function Notices({ notices }: { notices: ReturnType<typeof noticesAfter> }) {
  if (notices.length === 0) return null;
  return (
    <div className="border-b border-slate-800 px-4 py-1">
      {notices.map((notice) => <RefusalLine key={notice.seq} refusal={notice} />)}
    </div>
  );
}

/**
 * Older commands stay on the server until asked for: scrolling to the top (or
 * the button, for keyboards) loads the previous page.
 */
function LoadOlder({ loading, onLoad }: { loading: boolean; onLoad: () => void }) {
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const button = ref.current;
    if (!button || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) onLoad();
    });
    observer.observe(button);
    return () => observer.disconnect();
  }, [onLoad]);
  return (
    <button ref={ref} type="button" onClick={onLoad} disabled={loading} className="w-full px-4 py-2 text-center text-xs text-slate-400 underline" data-testid="load-older">
      {loading ? "Loading earlier commands…" : "Load earlier commands"}
    </button>
  );
}

/**
 * The sentence the polite live region reads when a command this page watched
 * finishes. Commands already finished when the page loaded are not announced.
 */
function useFinishedAnnouncement(transcript: TranscriptState): string {
  const [announcement, setAnnouncement] = useState("");
  const seenRef = useRef(new Map<string, boolean>());
  useEffect(() => {
    const seen = seenRef.current;
    const finishedNow: TranscriptCommand[] = [];
    for (const id of transcript.order) {
      const command = transcript.commands[id]!;
      const finished = isFinished(command);
      if (finished && seen.get(id) === false) finishedNow.push(command);
      seen.set(id, finished);
    }
    const last = finishedNow[finishedNow.length - 1];
    if (last) {
      const outcome = last.status.replace("_", " ") + (last.exitCode !== null ? `, exit ${last.exitCode}` : "");
      setAnnouncement(`Finished: ${last.text} — ${outcome}${finishedNow.length > 1 ? ` (and ${finishedNow.length - 1} more)` : ""}`);
    }
  }, [transcript]);
  return announcement;
}
