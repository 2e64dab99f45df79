// The console's server queuing a sequence (library runs from the endpoint
// page, the REST API, alert webhooks) over the session's HTTP path. It goes
// through the same acceptance as a viewer's run_sequence (role matrix,
// approval policy, idempotency by request id); the refusal a viewer would get
// as a socket error comes back as an HTTP status.
import { describeZodError, type ScriptRef, type ViewerBoundMessage, type ViewerMessage } from "../../../protocol/messages";
import { queueSequenceRequestSchema, type QueueSequenceResponse, type VerifiedPeerIdentity } from "../../../protocol/session-contract";

type RunSequence = Extract<ViewerMessage, { type: "run_sequence" }>;
type ErrorCode = Extract<ViewerBoundMessage, { type: "error" }>["code"];

/** Stands in for the viewer connection acceptRun answers on: it only ever sends errors to it. */
export interface ReplySink {
  send(raw: string): void;
}

export interface QueueOverHttpHost {
  sql: SqlStorage;
  accept(sink: ReplySink, identity: VerifiedPeerIdentity, message: RunSequence & { script?: ScriptRef }): Promise<void>;
}

const STATUS_FOR: Record<ErrorCode, number> = {
  invalid_message: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  no_approvers: 409,
  rate_limited: 429,
  policy_unavailable: 503,
  internal: 500,
};

export async function queueSequenceOverHttp(host: QueueOverHttpHost, body: unknown, identity: VerifiedPeerIdentity): Promise<Response> {
  const parsed = queueSequenceRequestSchema.safeParse(body);
  if (!parsed.success) return Response.json({ error: `Invalid sequence: ${describeZodError(parsed.error)}` }, { status: 400 });
  const { sequence, script } = parsed.data;
  const before = stepsOf(host.sql, sequence.requestId);
  const errors: { code: ErrorCode; message: string }[] = [];
  const sink: ReplySink = {
    send(raw) {
      const message = JSON.parse(raw) as ViewerBoundMessage;
      if (message.type === "error") errors.push({ code: message.code, message: message.message });
    },
  };
  await host.accept(sink, identity, script ? { ...sequence, script } : sequence);
  const refusal = errors[0];
  if (refusal) return Response.json({ error: refusal.message, code: refusal.code }, { status: STATUS_FOR[refusal.code] });
  const steps = stepsOf(host.sql, sequence.requestId);
  if (steps.length === 0) return Response.json({ error: "The sequence was not queued", code: "internal" }, { status: 500 });
  const response: QueueSequenceResponse = {
    requestId: sequence.requestId,
    sequenceId: steps[0]!.sequence_id,
    duplicate: before.length > 0,
    steps: steps.map((row) => ({ commandId: row.id, step: row.step_index, text: row.text, status: row.status })),
  };
  return Response.json(response, { status: before.length > 0 ? 200 : 201 });
}

function stepsOf(sql: SqlStorage, requestId: string) {
  // Steps are stored as "<requestId>#<step>" (retries add "~retryN"; the first attempt is what was queued).
  return sql
    .exec("SELECT id, sequence_id, step_index, text, status FROM commands WHERE request_id >= ? AND request_id < ? AND request_id NOT LIKE '%~retry%' ORDER BY step_index", `${requestId}#`, `${requestId}$`)
    .toArray() as { id: string; sequence_id: string; step_index: number; text: string; status: string }[];
}
