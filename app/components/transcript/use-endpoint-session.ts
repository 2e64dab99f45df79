import PartySocket from "partysocket";
import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { advanceTo, applyEvents, emptyTranscript, prependHistory, type TranscriptState } from "~/lib/transcript";
import { SESSION_CLOSE_CODES } from "@protocol/session-contract";
import {
  parseMessage,
  viewerBoundMessageSchema,
  type RuntimeState,
  type Shell,
  type ViewerBoundMessage,
  type ViewerMessage,
  type Viewer,
} from "@protocol/messages";

export type SessionErrorCode = Extract<ViewerBoundMessage, { type: "error" }>["code"];
export interface SessionError {
  id: number;
  code: SessionErrorCode;
  message: string;
}

/** "access-removed": the session closed the socket because the member lost access; the page stops reconnecting. */
export type SocketStatus = "connecting" | "live" | "reconnecting" | "access-removed";

type Events = Parameters<typeof applyEvents>[1];
type Action =
  | { type: "events"; events: Events; lastSeq: number }
  /** The first frame of a windowed replay: what the page showed is replaced by the newest commands. */
  | { type: "window"; events: Events; lastSeq: number }
  | { type: "history"; events: Events };

function reducer(state: TranscriptState, action: Action): TranscriptState {
  switch (action.type) {
    case "events":
      return advanceTo(applyEvents(state, action.events), action.lastSeq);
    case "window":
      return advanceTo(applyEvents(emptyTranscript, action.events), action.lastSeq);
    case "history":
      return prependHistory(state, action.events);
  }
}

/** Where the transcript's history stands: older commands exist on the server and can be paged in. */
export interface HistoryState {
  hasOlder: boolean;
  oldestSeq: number;
  loading: boolean;
}

/**
 * Keeps the endpoint's transcript in sync over a same-origin partysocket. On
 * every (re)connect it asks for the events after the last one applied, so a
 * dropped connection or a page refresh loses nothing.
 */
export function useEndpointSession(endpointId: string) {
  const [transcript, dispatch] = useReducer(reducer, emptyTranscript);
  const [status, setStatus] = useState<SocketStatus>("connecting");
  const [viewers, setViewers] = useState<Viewer[]>([]);
  const [runtime, setRuntime] = useState<RuntimeState | null>(null);
  const [errors, setErrors] = useState<SessionError[]>([]);
  const [history, setHistory] = useState<HistoryState>({ hasOlder: false, oldestSeq: 0, loading: false });
  /**
   * Browser clock minus server clock, estimated from live events (arrival time minus the server's `at`);
   * the smallest sample is the one with the least transit in it. Elapsed times count with it.
   */
  const [serverClockOffsetMs, setServerClockOffsetMs] = useState<number | null>(null);
  /** Frames of a history page, applied together once the page's last frame arrives. */
  const historyFramesRef = useRef<Events[number][]>([]);
  /** Distinct ids for errors that arrive within the same millisecond. */
  const errorIdRef = useRef(0);
  const socketRef = useRef<PartySocket | null>(null);
  const lastSeqRef = useRef(0);
  lastSeqRef.current = transcript.lastSeq;
  /** Messages typed while disconnected; sent in order once the socket is back. */
  const pendingRef = useRef<ViewerMessage[]>([]);

  useEffect(() => {
    const socket = new PartySocket({
      host: window.location.host,
      protocol: window.location.protocol === "https:" ? "wss" : "ws",
      party: "endpoint",
      room: endpointId,
    });
    socketRef.current = socket;
    const onOpen = () => {
      setStatus("live");
      socket.send(JSON.stringify({ type: "sync", afterSeq: lastSeqRef.current } satisfies ViewerMessage));
      for (const message of pendingRef.current.splice(0)) socket.send(JSON.stringify(message));
    };
    const onClose = (event: CloseEvent) => {
      if (event.code !== SESSION_CLOSE_CODES.accessRemoved) return setStatus("reconnecting");
      // Reconnecting would be refused at the edge anyway; keep what was shown, say why it stopped.
      socket.close();
      setStatus("access-removed");
    };
    const onMessage = (event: MessageEvent) => {
      const parsed = parseMessage(viewerBoundMessageSchema, event.data);
      if (!parsed.ok) {
        console.warn("Ignoring malformed session message:", parsed.error);
        return;
      }
      const message = parsed.value;
      if (message.type === "events") {
        if (message.window) {
          dispatch({ type: "window", events: message.events, lastSeq: message.lastSeq });
          setHistory({ hasOlder: message.window.hasOlder, oldestSeq: message.window.oldestSeq, loading: false });
        } else {
          dispatch({ type: "events", events: message.events, lastSeq: message.lastSeq });
          const newest = message.events[message.events.length - 1];
          if (newest) {
            const sample = Date.now() - newest.at;
            setServerClockOffsetMs((current) => (current === null || sample < current ? sample : current));
          }
        }
      } else if (message.type === "history") {
        historyFramesRef.current.push(...message.events);
        if (message.final) {
          dispatch({ type: "history", events: historyFramesRef.current.splice(0) });
          setHistory({ hasOlder: message.hasOlder, oldestSeq: message.oldestSeq, loading: false });
        }
      }
      else if (message.type === "presence") setViewers(message.viewers);
      else if (message.type === "runtime") setRuntime(message.runtime);
      else if (message.type === "error") {
        const error = { id: ++errorIdRef.current, code: message.code, message: message.message };
        setErrors((list) => [...list.slice(-4), error]);
      }
    };
    socket.addEventListener("open", onOpen);
    socket.addEventListener("close", onClose);
    socket.addEventListener("message", onMessage);
    return () => {
      socket.removeEventListener("open", onOpen);
      socket.removeEventListener("close", onClose);
      socket.removeEventListener("message", onMessage);
      socket.close();
      socketRef.current = null;
    };
  }, [endpointId]);

  const send = useCallback((message: ViewerMessage) => {
    const socket = socketRef.current;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    else pendingRef.current.push(message);
  }, []);

  /** Asks for the page of commands before the oldest one shown. */
  const historyRef = useRef(history);
  historyRef.current = history;
  const loadOlder = useCallback(() => {
    const current = historyRef.current;
    if (!current.hasOlder || current.loading || current.oldestSeq <= 0) return;
    send({ type: "history", beforeSeq: current.oldestSeq });
    setHistory({ ...current, loading: true });
  }, [send]);

  const run = useCallback(
    (text: string, shell: Shell, options: { privileged: boolean; reason: string; alongside?: boolean; notBefore?: number | null; maintenanceWindow?: boolean }) => {
      const requestId = crypto.randomUUID();
      send({
        type: "run",
        requestId,
        text,
        shell,
        alongside: options.alongside ?? false,
        privileged: options.privileged,
        reason: options.reason,
        notBefore: options.notBefore ?? null,
        maintenanceWindow: options.maintenanceWindow ?? false,
      });
      return requestId;
    },
    [send],
  );

  const runSequence = useCallback(
    (sequence: Omit<Extract<ViewerMessage, { type: "run_sequence" }>, "type" | "requestId">) => {
      const requestId = crypto.randomUUID();
      send({ type: "run_sequence", requestId, ...sequence });
      return requestId;
    },
    [send],
  );

  /** Cancels a command; for one waiting for the client's approval this withdraws the request. */
  const cancel = useCallback((commandId: string) => send({ type: "cancel", commandId }), [send]);
  /** Admins only (the session checks): new links for every approver, the old ones die. */
  const reissue = useCallback((commandId: string) => send({ type: "reissue_approval", commandId }), [send]);
  const dismissError = useCallback((id: number) => setErrors((list) => list.filter((e) => e.id !== id)), []);
  /** Answers a sequence paused on an interrupted step. */
  const sequenceAction = useCallback(
    (sequenceId: string, action: "retry" | "skip" | "abort") => send({ type: "sequence_action", sequenceId, action }),
    [send],
  );

  return { serverClockOffsetMs: serverClockOffsetMs ?? 0, transcript, status, viewers, runtime, errors, history, loadOlder, run, runSequence, cancel, reissue, dismissError, sequenceAction };
}
