// A fleet run target's states, shared by the model (which derives them) and the page (which shows them).
export const TARGET_STATES = ["queued", "waiting_for_approval", "waiting_for_window", "running", "done", "failed", "offline", "never_connected", "not_queued"] as const;
export type TargetState = (typeof TARGET_STATES)[number];

export const TARGET_STATE_LABELS: Record<TargetState, string> = {
  queued: "queued",
  waiting_for_approval: "waiting for approval",
  waiting_for_window: "waiting for window",
  running: "running",
  done: "done",
  failed: "failed",
  offline: "offline (queued)",
  never_connected: "never connected",
  not_queued: "not queued",
};
