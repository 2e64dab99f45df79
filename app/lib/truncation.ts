// How a command's capped or lost output is described in the review page and
// exports (shared by server and browser code).
import type { TruncationReason } from "../../protocol/messages";

export interface OutputTruncation {
  keptBytes: number;
  reason: TruncationReason;
}

export const TRUNCATION_REASON_TEXT: Record<TruncationReason, string> = {
  output_cap: "the session's output limit",
  runtime_cap: "the runtime's output limit on the endpoint",
  lost_in_transit: "output lost in transit",
};

/** "output truncated: 262144 bytes kept (the session's output limit)". */
export function describeTruncation(truncation: OutputTruncation): string {
  return `output truncated: ${truncation.keptBytes} bytes kept (${TRUNCATION_REASON_TEXT[truncation.reason]})`;
}
