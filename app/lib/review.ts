// The review page's vocabulary, shared by its queries (app/models/review.server.ts)
// and its route's rendering. No zod here: this module reaches the browser.

export const REVIEW_PAGE_SIZE = 100;
export const REVIEW_STATUSES = ["failed", "timed_out", "pending_approval", "succeeded", "cancelled", "interrupted"] as const;
export type ReviewStatus = (typeof REVIEW_STATUSES)[number];

export const STATUS_LABEL: Record<ReviewStatus, string> = {
  failed: "failed",
  timed_out: "timed out",
  pending_approval: "pending approval",
  succeeded: "succeeded",
  cancelled: "cancelled",
  interrupted: "interrupted",
};
