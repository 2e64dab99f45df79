// How a command's capped or lost output is described in the review page and
// exports (shared by server and browser code).
import * as z from "zod";
import { TRUNCATION_REASONS, type TruncationReason } from "@protocol/messages";

export interface OutputTruncation {
  /** Bytes of output the session kept; null when the record does not say. */
  keptBytes: number | null;
  /** One of TRUNCATION_REASONS, or whatever a newer session recorded. */
  reason: TruncationReason | (string & {});
}

export const TRUNCATION_REASON_TEXT: Record<TruncationReason, string> = {
  output_cap: "the session's output limit",
  runtime_cap: "the runtime's output limit on the endpoint",
  lost_in_transit: "output lost in transit",
};

const recorded = z.object({
  keptBytes: z.number().int().nonnegative().nullish(),
  reason: z.string().max(64).nullish(),
});

/**
 * The `truncated` fact the session records on the audit `command.finished`
 * detail, or null when output was complete. Read leniently on purpose: a
 * reason this console does not know, or a missing byte count, must still show
 * as truncated rather than make the output look complete.
 */
export function truncationFromDetail(detail: Record<string, unknown>): OutputTruncation | null {
  const value = detail.truncated;
  if (value === undefined || value === null || value === false) return null;
  const parsed = recorded.safeParse(value);
  return {
    keptBytes: parsed.success ? (parsed.data.keptBytes ?? null) : null,
    reason: (parsed.success && parsed.data.reason) || "unknown",
  };
}

function reasonText(reason: string): string {
  if ((TRUNCATION_REASONS as readonly string[]).includes(reason)) return TRUNCATION_REASON_TEXT[reason as TruncationReason];
  return reason === "unknown" ? "reason not recorded" : `reason "${reason.replace(/[^\w .:-]/g, "?")}"`;
}

/** "output truncated: 262144 bytes kept (the session's output limit)". */
export function describeTruncation(truncation: OutputTruncation): string {
  const kept = truncation.keptBytes === null ? "bytes kept not recorded" : `${truncation.keptBytes} bytes kept`;
  return `output truncated: ${kept} (${reasonText(truncation.reason)})`;
}
