// The one wire protocol shared by the console (browser), the session Durable
// Object and the endpoint runtime. Every socket message and HTTP body is parsed
// with these schemas; anything that does not parse is answered with an error
// and changes nothing.
import * as z from "zod";
import { runtimePlatformSchema, runtimeVersionSchema } from "./runtime-release";

export const PROTOCOL_VERSION = 1;

/** Largest command text a technician may submit. */
export const MAX_COMMAND_LENGTH = 8192;
/** Output kept per command before the transcript shows a truncation marker. */
export const DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024;
export const DEFAULT_COMMAND_TIMEOUT_MS = 5 * 60 * 1000;
export const MAX_COMMAND_TIMEOUT_MS = 60 * 60 * 1000;
/** Largest single output chunk a runtime may send, in UTF-16 code units. */
export const MAX_CHUNK_BYTES = 64 * 1024;
/** Most steps in one diagnostic sequence. */
export const MAX_SEQUENCE_STEPS = 20;
/** Largest total tail a result may carry (UTF-8 bytes); a Workers WebSocket frame is at most 1 MiB. */
export const MAX_TAIL_BYTES = 256 * 1024;
/** Most chunks a result's tail may carry. */
export const MAX_TAIL_CHUNKS = 64;

const id = z.string().min(1).max(128);
const epochMs = z.number().int().nonnegative();

export const shellSchema = z.enum(["default", "sh", "bash", "powershell", "cmd"]);
export type Shell = z.infer<typeof shellSchema>;

export const commandStatusSchema = z.enum([
  "pending_approval",
  "queued",
  "dispatched",
  "running",
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "denied",
  "expired",
  "skipped",
  "interrupted",
]);
export type CommandStatus = z.infer<typeof commandStatusSchema>;
/**
 * How a runtime can end a command. `interrupted`: the runtime itself stopped or
 * crashed while the command ran (or before it started); it is never run again
 * under the same id (ADR 0018).
 */
export const FINAL_STATUSES = ["succeeded", "failed", "timed_out", "cancelled", "interrupted"] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];
export const finalStatusSchema = z.enum(FINAL_STATUSES);
/**
 * How a command can end, including outcomes decided without the runtime: the
 * client denied it, its expiry passed while queued, or an earlier step of its
 * stop-on-failure sequence failed.
 */
export const COMMAND_OUTCOMES = [...FINAL_STATUSES, "denied", "expired", "skipped"] as const;
export type CommandOutcome = (typeof COMMAND_OUTCOMES)[number];
export const commandOutcomeSchema = z.enum(COMMAND_OUTCOMES);

export const TRUNCATION_REASONS = ["output_cap", "runtime_cap", "lost_in_transit"] as const;
export type TruncationReason = (typeof TRUNCATION_REASONS)[number];

export const streamSchema = z.enum(["stdout", "stderr"]);
export type OutputStream = z.infer<typeof streamSchema>;

export const outputChunkSchema = z.object({
  stream: streamSchema,
  data: z.string().max(MAX_CHUNK_BYTES),
});
export type OutputChunk = z.infer<typeof outputChunkSchema>;

export const actorSchema = z.object({ userId: id, name: z.string().max(200) });
export type Actor = z.infer<typeof actorSchema>;

/** An approver as the console may see them: name and masked address. */
export const approverLabelSchema = z.object({ name: z.string(), address: z.string() });
export type ApproverLabel = z.infer<typeof approverLabelSchema>;

/** The server's split of a command's round trip, from its own and the runtime's clocks. */
export const timingsSchema = z.object({
  queuedMs: z.number().nonnegative(),
  toEndpointMs: z.number().nonnegative().nullable(),
  onEndpointMs: z.number().nonnegative(),
  backMs: z.number().nonnegative().nullable(),
  serverRoundTripMs: z.number().nonnegative(),
});
export type Timings = z.infer<typeof timingsSchema>;

/**
 * The library script (and exact version and parameter values) a sequence was rendered from. Only the
 * console's server sets it (the session's HTTP queue path); a viewer socket's run_sequence cannot carry it.
 */
export const scriptRefSchema = z.object({
  id,
  name: z.string().max(100),
  version: z.number().int().positive(),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
});
export type ScriptRef = z.infer<typeof scriptRefSchema>;

// ---------------------------------------------------------------------------
// Transcript events: an append-only log per endpoint, numbered by `seq`.
// A viewer that reconnects asks for everything after the last seq it rendered.

const eventBase = { seq: z.number().int().positive(), at: epochMs };

export const transcriptEventSchema = z.discriminatedUnion("kind", [
  z.object({
    ...eventBase,
    kind: z.literal("command.queued"),
    commandId: id,
    requestId: id,
    text: z.string(),
    shell: shellSchema,
    requestedBy: actorSchema,
    sequence: z
      .object({ id, name: z.string(), step: z.number().int().nonnegative(), steps: z.number().int().positive(), stopOnFailure: z.boolean() })
      .nullable()
      .default(null),
    notBefore: epochMs.nullable().default(null),
    expiresAt: epochMs.nullable().default(null),
    /** Runs next to whatever is running instead of waiting its turn (not counted in the queue). */
    alongside: z.boolean().optional(),
    /** A sequence step the session may retry on its own, once, after an interruption. */
    idempotent: z.boolean().optional(),
    /** A new attempt of an interrupted step: the interrupted command's id. */
    retryOf: id.optional(),
    /** The library script version and parameter values this step was rendered from. */
    script: scriptRefSchema.optional(),
    /** Starts only inside one of the endpoint's recurring maintenance windows (ADR 0026). */
    maintenanceWindow: z.boolean().optional(),
  }),
  z.object({ ...eventBase, kind: z.literal("command.dispatched"), commandId: id }),
  z.object({ ...eventBase, kind: z.literal("command.started"), commandId: id, startedAt: epochMs }),
  z.object({
    ...eventBase,
    kind: z.literal("command.output"),
    commandId: id,
    stream: streamSchema,
    data: z.string(),
  }),
  z.object({
    ...eventBase,
    kind: z.literal("command.truncated"),
    commandId: id,
    keptBytes: z.number().int().nonnegative(),
    /**
     * output_cap: the session's stored-output limit was reached; runtime_cap: the runtime's own limit was
     * reached on the endpoint; lost_in_transit: streamed chunks never arrived.
     */
    reason: z.enum(TRUNCATION_REASONS).default("output_cap"),
  }),
  z.object({
    ...eventBase,
    kind: z.literal("command.finished"),
    commandId: id,
    status: commandOutcomeSchema,
    exitCode: z.number().int().nullable(),
    timings: timingsSchema.nullable(),
    error: z.string().nullable(),
    /** Who ended it, for outcomes a person decided (a cancel, an aborted sequence). */
    by: actorSchema.optional(),
    /**
     * The endpoint's clock as the session measured it when converting the runtime's times to server time
     * (ADR 0017), and the start time the runtime reported on its own clock. Absent when nothing ran.
     */
    endpointClock: z.object({ offsetMs: z.number(), uncertaintyMs: z.number().nonnegative(), reportedStartedAt: epochMs.nullable() }).nullable().optional(),
  }),
  z.object({ ...eventBase, kind: z.literal("command.cancel_requested"), commandId: id, by: actorSchema }),
  /** A step was interrupted: the sequence waits for a technician to retry it, skip it or abort the rest. */
  z.object({
    ...eventBase,
    kind: z.literal("sequence.paused"),
    sequenceId: id,
    name: z.string(),
    commandId: id,
    step: z.number().int().nonnegative(),
  }),
  /** How a paused (or auto-retried) sequence went on; `retryCommandId` is the step's new attempt. */
  z.object({
    ...eventBase,
    kind: z.literal("sequence.resumed"),
    sequenceId: id,
    commandId: id,
    step: z.number().int().nonnegative(),
    action: z.enum(["retry", "skip", "abort", "auto_retry"]),
    by: actorSchema.nullable(),
    retryCommandId: id.nullable(),
  }),
  z.object({
    ...eventBase,
    kind: z.literal("command.approval_requested"),
    commandId: id,
    reason: z.string(),
    /** The policy pattern that matched (deny-list mode), or null. */
    pattern: z.string().nullable(),
    /** Why it needs consent: "flagged by the technician", "not on the client's allow-list", "matches /…/". */
    rule: z.string().nullable().default(null),
    /** Who was asked, with masked addresses (older events carry bare names). */
    approvers: z.array(z.union([z.string(), approverLabelSchema])),
    expiresAt: epochMs,
  }),
  /** One approver's email: sent, being retried, or given up on. Never carries the link. */
  z.object({
    ...eventBase,
    kind: z.literal("command.approval_delivery"),
    commandId: id,
    approver: approverLabelSchema,
    state: z.enum(["sent", "retrying", "failed"]),
    attempt: z.number().int().positive(),
    error: z.string().nullable(),
    nextAttemptAt: epochMs.nullable(),
  }),
  /** An admin issued new links (the old ones no longer work) and extended the expiry. */
  z.object({ ...eventBase, kind: z.literal("command.approval_reissued"), commandId: id, by: actorSchema, expiresAt: epochMs }),
  z.object({
    ...eventBase,
    kind: z.literal("command.approval_decided"),
    commandId: id,
    decision: z.enum(["approve", "deny"]),
    by: z.string(),
    /** The deciding approver's masked address. */
    byAddress: z.string().nullable().default(null),
  }),
  /** A runtime message the session refused (illegal for the command's state); nothing changed. */
  z.object({ ...eventBase, kind: z.literal("runtime.refused"), commandId: id.nullable(), message: z.string(), reason: z.string() }),
  /** Retention removed finished commands and their output older than `before` (docs/decisions/0029-retention.md). */
  z.object({ ...eventBase, kind: z.literal("transcript.pruned"), before: epochMs, retentionDays: z.number().int().positive(), commands: z.number().int().nonnegative() }),
]);
export type TranscriptEvent = z.infer<typeof transcriptEventSchema>;
export type TranscriptEventKind = TranscriptEvent["kind"];

export const viewerSchema = z.object({ userId: id, name: z.string(), connections: z.number().int().positive() });
export type Viewer = z.infer<typeof viewerSchema>;

export const runtimeStateSchema = z.object({
  online: z.boolean(),
  lastSeenAt: epochMs.nullable(),
  transport: z.enum(["websocket", "checkin"]).nullable(),
  /** The runtime's credential was revoked: it is refused until it enrolls again. */
  revoked: z.boolean().default(false),
  /** Nothing new runs on this endpoint; its transcript stays readable. */
  decommissioned: z.boolean().default(false),
  /** On HTTPS check-in: the interval the session asked for, and when the next check-in is due (server time). */
  checkinIntervalMs: z.number().int().positive().nullable().default(null),
  nextCheckinAt: epochMs.nullable().default(null),
});
export type RuntimeState = z.infer<typeof runtimeStateSchema>;

// ---------------------------------------------------------------------------
// Browser (technician console) <-> session Durable Object


export const runSequenceMessageSchema = z
  .object({
    type: z.literal("run_sequence"),
    requestId: id,
    name: z.string().trim().min(1).max(100),
    steps: z
      .array(
        z.object({
          text: z.string().trim().min(1, "Step is empty").max(MAX_COMMAND_LENGTH),
          shell: shellSchema.default("default"),
          /** Safe to run twice: after an interruption the session retries it once without asking. */
          idempotent: z.boolean().default(false),
        }),
      )
      .min(1)
      .max(MAX_SEQUENCE_STEPS),
    stopOnFailure: z.boolean().default(true),
    /** Maintenance window start: nothing runs before this. */
    notBefore: epochMs.nullable().default(null),
    /** Steps not started by then end as expired. */
    expiresAt: epochMs.nullable().default(null),
    /** Each step starts only inside one of the endpoint's recurring maintenance windows (ADR 0026). */
    maintenanceWindow: z.boolean().default(false),
    timeoutMs: z.number().int().positive().max(MAX_COMMAND_TIMEOUT_MS).optional(),
    privileged: z.boolean().default(false),
    reason: z.string().trim().max(500).default(""),
  })
  .refine((m) => m.expiresAt === null || m.notBefore === null || m.expiresAt > m.notBefore, {
    message: "expiry must be after the maintenance window start",
    path: ["expiresAt"],
  });


export const viewerMessageSchema = z.discriminatedUnion("type", [
  /** First message on every (re)connect: replay everything after `afterSeq`. */
  z.object({ type: z.literal("sync"), afterSeq: z.number().int().nonnegative() }),
  z.object({
    type: z.literal("run"),
    requestId: id,
    text: z.string().trim().min(1, "Command is empty").max(MAX_COMMAND_LENGTH),
    shell: shellSchema.default("default"),
    timeoutMs: z.number().int().positive().max(MAX_COMMAND_TIMEOUT_MS).optional(),
    /** Ask the client's approval even if no policy pattern matches. */
    privileged: z.boolean().default(false),
    reason: z.string().trim().max(500).default(""),
    /** Runs next to whatever is running (e.g. a long `tail -f`) instead of waiting its turn. */
    alongside: z.boolean().default(false),
    /** A scheduled command: nothing runs before this. */
    notBefore: epochMs.nullable().default(null),
    /** Starts only inside one of the endpoint's recurring maintenance windows (ADR 0026). */
    maintenanceWindow: z.boolean().default(false),
  }),
  /** Older transcript history than the viewer has: the commands before `beforeSeq`, one page at a time. */
  z.object({ type: z.literal("history"), beforeSeq: z.number().int().positive() }),
  /** Cancels a command; for one waiting for approval this withdraws the request. */
  z.object({ type: z.literal("cancel"), commandId: id }),
  /** Admins only: new links for every approver of a pending request (the old ones die), new expiry. */
  z.object({ type: z.literal("reissue_approval"), commandId: id }),
  /** Ordered diagnostic steps, run one after another whenever the runtime is next reachable. */
  runSequenceMessageSchema,
  /** Answers a paused sequence: run the interrupted step again (as a new command), skip it, or end the rest. */
  z.object({ type: z.literal("sequence_action"), sequenceId: id, action: z.enum(["retry", "skip", "abort"]) }),
]);
export type ViewerMessage = z.infer<typeof viewerMessageSchema>;

export const viewerBoundMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("events"),
    events: z.array(transcriptEventSchema),
    /** True when these events replay history rather than happen now. */
    replay: z.boolean(),
    lastSeq: z.number().int().nonnegative(),
    /**
     * On the first frame of a windowed replay: the viewer gets only the newest commands (its state so far,
     * if any, is replaced); older ones come with `history` requests.
     */
    window: z.object({ oldestSeq: z.number().int().nonnegative(), hasOlder: z.boolean() }).optional(),
  }),
  /** A page of older commands' events, in seq order; `final` on the last frame of the page. */
  z.object({
    type: z.literal("history"),
    events: z.array(transcriptEventSchema),
    final: z.boolean(),
    oldestSeq: z.number().int().nonnegative(),
    hasOlder: z.boolean(),
  }),
  z.object({ type: z.literal("presence"), viewers: z.array(viewerSchema) }),
  z.object({ type: z.literal("runtime"), runtime: runtimeStateSchema }),
  z.object({
    type: z.literal("error"),
    code: z.enum(["invalid_message", "forbidden", "not_found", "conflict", "internal", "policy_unavailable", "no_approvers", "rate_limited"]),
    message: z.string(),
    requestId: id.optional(),
  }),
]);
export type ViewerBoundMessage = z.infer<typeof viewerBoundMessageSchema>;

// ---------------------------------------------------------------------------
// Runtime self-update (docs/decisions/0016-runtime-updates.md). The session
// offers the tenant's target version; the runtime downloads it, checks the
// SHA-256 and the build's Ed25519 signature, runs it on trial and keeps it only
// if it connects within the trial window.

/** Largest runtime executable a runtime will download (the Node-based builds are ~120 MiB). */
export const MAX_RUNTIME_ARTIFACT_BYTES = 256 * 1024 * 1024;

export const runtimeUpdateOfferSchema = z.object({
  version: runtimeVersionSchema,
  platform: runtimePlatformSchema,
  size: z.number().int().positive().max(MAX_RUNTIME_ARTIFACT_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Base64 Ed25519 signature over runtimeSignatureMessage(version, platform, sha256). */
  signature: z.string().min(1).max(200),
  /** Absolute, or relative to the runtime's server (the console's /runtime/download route). */
  url: z.string().min(1).max(2000),
});
export type RuntimeUpdateOffer = z.infer<typeof runtimeUpdateOfferSchema>;

/**
 * downloading → verified → trial → committed (the new version runs), or
 * rolled_back (the trial did not connect in time; the old version runs again), or
 * failed (refused before the trial: download, size, hash, signature, no update key).
 */
export const UPDATE_PHASES = ["downloading", "verified", "trial", "committed", "rolled_back", "failed"] as const;
export type UpdatePhase = (typeof UPDATE_PHASES)[number];

export const runtimeUpdateStatusSchema = z.object({
  version: runtimeVersionSchema,
  phase: z.enum(UPDATE_PHASES),
  detail: z.string().max(2000).default(""),
});
export type RuntimeUpdateStatus = z.infer<typeof runtimeUpdateStatusSchema>;

// ---------------------------------------------------------------------------
// Endpoint runtime <-> session Durable Object

export const dispatchedCommandSchema = z.object({
  commandId: id,
  text: z.string().min(1).max(MAX_COMMAND_LENGTH),
  shell: shellSchema,
  timeoutMs: z.number().int().positive().max(MAX_COMMAND_TIMEOUT_MS),
  maxOutputBytes: z.number().int().positive(),
});
export type DispatchedCommand = z.infer<typeof dispatchedCommandSchema>;

/** A command's complete result; final output travels with the exit status in one message. */
export const commandResultSchema = z.object({
  commandId: id,
  status: finalStatusSchema,
  exitCode: z.number().int().nullable(),
  startedAt: epochMs,
  finishedAt: epochMs,
  /** Measured with the runtime's monotonic clock. */
  durationMs: z.number().nonnegative(),
  /** Output not yet streamed when the command ended. */
  tail: z
    .array(outputChunkSchema)
    .max(MAX_TAIL_CHUNKS)
    .refine((chunks) => utf8Length(chunks) <= MAX_TAIL_BYTES, `tail is larger than ${MAX_TAIL_BYTES} bytes`),
  /** The output index of the tail's first chunk (after every streamed chunk), so streamed chunks lost in transit leave a visible gap. */
  tailStartIndex: z.number().int().nonnegative().optional(),
  truncated: z.boolean(),
  error: z.string().max(2000).nullable(),
});
export type CommandResult = z.infer<typeof commandResultSchema>;

export const runtimeMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("hello"),
    protocol: z.literal(PROTOCOL_VERSION),
    runtimeVersion: z.string().max(64),
    hostname: z.string().max(255),
    os: z.enum(["windows", "linux", "macos"]),
    /** The runtime's wall clock, so the server can split network time from run time. */
    clock: epochMs,
    /** Which release artifact this runtime is; absent from runtimes run from source on an unsupported host (never updated). */
    platform: runtimePlatformSchema.optional(),
  }),
  z.object({ type: z.literal("started"), commandId: id, startedAt: epochMs }),
  z.object({ type: z.literal("output"), commandId: id, index: z.number().int().nonnegative(), chunk: outputChunkSchema }),
  z.object({ type: z.literal("result"), result: commandResultSchema }),
  z.object({ type: z.literal("clock"), serverTime: epochMs, runtimeTime: epochMs }),
  /** Progress of an offered update (docs/decisions/0016-runtime-updates.md). */
  z.object({ type: z.literal("update_status"), status: runtimeUpdateStatusSchema }),
]);
export type RuntimeMessage = z.infer<typeof runtimeMessageSchema>;

export const runtimeBoundMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("dispatch"), command: dispatchedCommandSchema }),
  z.object({ type: z.literal("cancel"), commandId: id }),
  /** The result is stored; the runtime may drop it from its outbox. */
  z.object({ type: z.literal("ack"), commandId: id }),
  z.object({ type: z.literal("clock"), serverTime: epochMs }),
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }),
  /** Install this version: the runtime verifies hash and signature against the key it was built with. */
  z.object({ type: z.literal("update"), offer: runtimeUpdateOfferSchema }),
]);
export type RuntimeBoundMessage = z.infer<typeof runtimeBoundMessageSchema>;

// ---------------------------------------------------------------------------
// HTTPS check-in: the same delivery semantics as the socket, for networks that
// block WebSockets. The runtime posts what it has finished (and started) and
// gets what is due; results are acknowledged and accepted idempotently.

export const DEFAULT_CHECKIN_INTERVAL_MS = 30_000;

/** The runtime's record of one check-in exchange, sent with a later check-in so the session can measure its clock. */
export const clockSampleSchema = z.object({ sentAt: epochMs, serverTime: epochMs, receivedAt: epochMs });
export type ClockSample = z.infer<typeof clockSampleSchema>;

export const checkinRequestSchema = z.object({
  protocol: z.literal(PROTOCOL_VERSION),
  /**
   * Who is checking in: sent on the first check-in of each runtime process (they
   * can only change with a restart) and left out after, to save bytes on metered
   * links (docs/decisions/0015-runtime-network.md).
   */
  runtimeVersion: z.string().max(64).optional(),
  hostname: z.string().max(255).optional(),
  os: z.enum(["windows", "linux", "macos"]).optional(),
  clock: epochMs,
  /** Commands started since the last check-in, so the transcript shows when they ran. */
  started: z.array(z.object({ commandId: id, startedAt: epochMs })).max(100).default([]),
  results: z.array(commandResultSchema).max(20).default([]),
  platform: runtimePlatformSchema.optional(),
  /** Update progress not yet delivered (the socket sends it as `update_status`). */
  updateStatus: z.array(runtimeUpdateStatusSchema).max(10).default([]),
  /** A previous check-in's timestamps (sent now and then, not every time: bytes on metered links). */
  clockSample: clockSampleSchema.optional(),
  /**
   * Sent with the self-description: this runtime takes compact answers (no body
   * when there is nothing to say, empty lists and defaults left out;
   * docs/decisions/0027-round-trip-and-idle-bytes.md). The session remembers
   * it until the next self-description, so older runtimes keep full answers.
   */
  compactAnswers: z.literal(true).optional(),
  /** Answer with `serverTime` even when there is nothing else to say: the runtime takes a clock sample from it. */
  wantTime: z.literal(true).optional(),
});
export type CheckinRequest = z.infer<typeof checkinRequestSchema>;

/**
 * The check-in answer. A compact answer (for runtimes that said `compactAnswers`)
 * leaves out empty lists, the default interval and, unless asked for, the
 * server time; with none of them left it is an HTTP 204 without a body
 * (`compactCheckinAnswer`). The defaults here make both forms parse the same.
 */
export const checkinResponseSchema = z.object({
  /** Results now stored; the runtime may drop them from its outbox. */
  acks: z.array(id).default([]),
  /** Due commands, in the order they must run. */
  dispatch: z.array(dispatchedCommandSchema).default([]),
  cancel: z.array(id).default([]),
  nextCheckinMs: z.number().int().positive().default(DEFAULT_CHECKIN_INTERVAL_MS),
  /** Always in a full answer; in a compact one when asked for (`wantTime`) or when the answer has a body anyway. */
  serverTime: epochMs.optional(),
  update: runtimeUpdateOfferSchema.optional(),
});
export type CheckinResponse = z.infer<typeof checkinResponseSchema>;
/** What the session computes for every check-in, before it is encoded full or compact. */
export type FullCheckinResponse = CheckinResponse & { serverTime: number };

/**
 * The compact wire form of an answer: null when there is nothing to say (the
 * session answers 204 No Content), else only what differs from the schema's defaults.
 */
export function compactCheckinAnswer(answer: FullCheckinResponse, wantTime: boolean): Partial<CheckinResponse> | null {
  const { acks, dispatch, cancel, nextCheckinMs, serverTime, update } = answer;
  const compact: Partial<CheckinResponse> = {
    ...(acks.length ? { acks } : {}),
    ...(dispatch.length ? { dispatch } : {}),
    ...(cancel.length ? { cancel } : {}),
    ...(nextCheckinMs !== DEFAULT_CHECKIN_INTERVAL_MS ? { nextCheckinMs } : {}),
    ...(update ? { update } : {}),
  };
  if (Object.keys(compact).length === 0 && !wantTime) return null;
  // A body is going out anyway: the time costs a few bytes and keeps the runtime's clock sample fresh.
  return { ...compact, serverTime };
}

// ---------------------------------------------------------------------------
// HTTP bodies

export const enrollRequestSchema = z.object({
  token: z.string().min(16).max(256),
  hostname: z.string().trim().min(1).max(255),
  os: z.enum(["windows", "linux", "macos"]),
  osVersion: z.string().max(255).default(""),
});
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export const enrollResponseSchema = z.object({
  endpointId: id,
  credential: z.string().min(32),
  clientName: z.string(),
});
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;

export const errorBodySchema = z.object({ error: z.string(), issues: z.array(z.string()).optional() });

// ---------------------------------------------------------------------------

function utf8Length(chunks: readonly OutputChunk[]): number {
  const encoder = new TextEncoder();
  return chunks.reduce((total, chunk) => total + encoder.encode(chunk.data).byteLength, 0);
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses a raw socket frame or body; the error names the offending fields. */
export function parseMessage<T>(schema: z.ZodType<T>, raw: unknown): ParseResult<T> {
  let data: unknown = raw;
  if (typeof raw === "string") {
    try {
      data = JSON.parse(raw);
    } catch {
      return { ok: false, error: "Message is not valid JSON" };
    }
  } else if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
    return { ok: false, error: "Binary messages are not accepted" };
  }
  const parsed = schema.safeParse(data);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, error: describeZodError(parsed.error) };
}

export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}
