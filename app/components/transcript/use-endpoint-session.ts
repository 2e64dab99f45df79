import PartySocket from "partysocket";
import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { applyEvents, emptyTranscript, type TranscriptState } from "~/lib/transcript";
import {
  parseMessage,
  viewerBoundMessageSchema,
  type RuntimeState,
  type Shell,
  type ViewerBoundMessage,
  type ViewerMessage,
  type Viewer,
} from "../../../protocol/messages";

export type SessionErrorCode = Extract<ViewerBoundMessage, { type: "error" }>["code"];
export interface SessionError {
  id: number;
  code: SessionErrorCode;
  message: string;
}

export type SocketStatus = "connecting" | "live" | "reconnecting";

type Action = { type: "events"; events: Parameters<typeof applyEvents>[1] };

function reducer(state: TranscriptState, action: Action): TranscriptState {
  return applyEvents(state, action.events);
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
    const onClose = () => setStatus("reconnecting");
    const onMessage = (event: MessageEvent) => {
      const parsed = parseMessage(viewerBoundMessageSchema, event.data);
      if (!parsed.ok) {
        console.warn("Ignoring malformed session message:", parsed.error);
        return;
      }
      const message = parsed.value;
      if (message.type === "events") dispatch({ type: "events", events: message.events });
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

  const run = useCallback(
    (text: string, shell: Shell, approval: { privileged: boolean; reason: string }) => {
      const requestId = crypto.randomUUID();
      send({ type: "run", requestId, text, shell, alongside: false, ...approval });
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

  return { transcript, status, viewers, runtime, errors, run, runSequence, cancel, reissue, dismissError };
}
