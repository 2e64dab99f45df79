// The HTTP answer to a check-in. An idle check-in repeats all day on metered
// links (issue 12, item 7): for a runtime that takes compact answers, "nothing
// to do" is a 204 without a body (no content-type, no content-length, and a
// single TCP segment where a head plus a body is often two), and anything else
// leaves out empty lists and defaults (docs/decisions/0027-round-trip-and-idle-bytes.md).
import { compactCheckinAnswer, type CheckinRequest, type FullCheckinResponse } from "../../../protocol/messages";

/** Runtime-state key: the runtime's last self-description said it takes compact answers. */
export const COMPACT_CHECKIN_KEY = "checkin_compact";

/**
 * What to remember from a check-in about its answers: a runtime describes itself
 * on the first check-in of each process, so a rolled-back (older) runtime resets
 * this to full answers at once. Undefined: nothing to change.
 */
export function compactAnswersSetting(checkin: CheckinRequest): string | undefined {
  if (checkin.runtimeVersion === undefined) return undefined;
  return checkin.compactAnswers ? "1" : "";
}

export function checkinHttpAnswer(answer: FullCheckinResponse, checkin: CheckinRequest, compactSetting: string | null | undefined): Response {
  if (compactSetting !== "1") return Response.json(answer);
  const compact = compactCheckinAnswer(answer, checkin.wantTime === true);
  return compact === null ? new Response(null, { status: 204 }) : Response.json(compact);
}
