// A fleet run's work arriving at one endpoint's session (ADR 0026). The
// console calls this once per target; the work goes through the session's one
// run path (the same checks, approval policy, queue and audit as a
// technician's page), so there is no second queue. Nothing here touches D1:
// the console learns the target's progress from the audit replica.
import { describeZodError, viewerMessageSchema, type ViewerMessage } from "../../../protocol/messages";
import { fleetQueueRequestSchema, type FleetQueueAnswer, type VerifiedPeerIdentity } from "../../../protocol/session-contract";

export type FleetRunMessage = Extract<ViewerMessage, { type: "run" | "run_sequence" }>;

/** What acceptRun would have sent the member's page: collected here as the refusal. */
export interface RefusalSink {
  send(frame: string): void;
}

export interface FleetQueueHost {
  sql: SqlStorage;
  /** The session's run path, in arrival order with viewer runs; refusals are sent to `sink` as viewer error frames. */
  queue(identity: VerifiedPeerIdentity, message: FleetRunMessage, sink: RefusalSink): Promise<void>;
}

const STATUS_BY_CODE: Record<string, number> = { forbidden: 403, policy_unavailable: 503, invalid_message: 400 };

export async function onFleetQueue(host: FleetQueueHost, body: unknown, identity: VerifiedPeerIdentity): Promise<Response> {
  const request = fleetQueueRequestSchema.safeParse(body);
  if (!request.success) return answer({ queued: false, code: "invalid_message", error: describeZodError(request.error) }, 400);
  const message = viewerMessageSchema.safeParse(request.data.run);
  if (!message.success || (message.data.type !== "run" && message.data.type !== "run_sequence")) {
    const error = message.success ? "A fleet run queues a command or a sequence" : describeZodError(message.error);
    return answer({ queued: false, code: "invalid_message", error }, 400);
  }
  const run = message.data;
  const refusals: { code: string; message: string }[] = [];
  await host.queue({ ...identity, peer: "viewer" }, run, {
    send: (frame) => {
      const parsed = JSON.parse(frame) as { type?: string; code?: string; message?: string };
      if (parsed.type === "error") refusals.push({ code: parsed.code ?? "refused", message: parsed.message ?? "refused" });
    },
  });
  const requestIds = run.type === "run_sequence" ? run.steps.map((_, step) => `${run.requestId}#${step}`) : [run.requestId];
  const commands = host.sql
    .exec<{ id: string; step_index: number; status: string; sequence_id: string | null }>(
      `SELECT id, step_index, status, sequence_id FROM commands WHERE request_id IN (${requestIds.map(() => "?").join(", ")}) ORDER BY step_index`,
      ...requestIds,
    )
    .toArray();
  // A repeat of an already-queued request is refused by nobody and changes nothing: it reports what is held.
  if (commands.length === 0) {
    const refusal = refusals[0] ?? { code: "internal", message: "The session did not queue the work" };
    return answer({ queued: false, code: refusal.code, error: refusal.message }, STATUS_BY_CODE[refusal.code] ?? 409);
  }
  return answer(
    {
      queued: true,
      sequenceId: commands[0]!.sequence_id,
      commands: commands.map((command) => ({ commandId: command.id, step: command.step_index, status: command.status })),
    },
    200,
  );
}

function answer(body: FleetQueueAnswer, status: number): Response {
  return Response.json(body, { status });
}
