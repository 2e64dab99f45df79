// HTTPS check-in: for networks that block WebSockets. Every interval (or at
// once when there is news) the runtime POSTs what it has started and finished
// to /agent/checkin and gets back acks, due commands and cancels. It knows
// nothing about commands: the agent builds the request and applies the answer,
// exactly as it does for socket messages.
import {
  checkinResponseSchema,
  describeZodError,
  type CheckinRequest,
  type CheckinResponse,
} from "../../protocol/messages";
import { backoffDelay } from "./backoff";
import { runtimePost } from "./http";
import { errorText, formatDelay, type Logger } from "./log";

export const CHECKIN_TIMEOUT_MS = 15_000;
export const MIN_CHECKIN_INTERVAL_MS = 1000;
export const MAX_CHECKIN_INTERVAL_MS = 10 * 60 * 1000;
/** The protocol's caps per request; what does not fit goes in the next one. */
export const MAX_RESULTS_PER_CHECKIN = 20;
export const MAX_STARTED_PER_CHECKIN = 100;

const CREDENTIAL_REJECTED_HTTP_STATUSES = new Set([401, 403]);

export function clampCheckinInterval(ms: number): number {
  if (!Number.isFinite(ms)) return MIN_CHECKIN_INTERVAL_MS;
  return Math.min(MAX_CHECKIN_INTERVAL_MS, Math.max(MIN_CHECKIN_INTERVAL_MS, Math.round(ms)));
}

/** https URL of the check-in endpoint for an enrolled server base URL. */
export function checkinUrl(server: string): string {
  const url = new URL(server);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/agent/checkin`;
  url.search = "";
  url.hash = "";
  return url.toString();
}

export interface CheckinHandlers {
  /** The body of the next check-in. */
  checkinRequest(): CheckinRequest;
  /**
   * Applies the server's answer (acks, dispatch, cancel); resolves with true
   * when the runtime has something to send right away (a result that was not
   * in `request`), so the next check-in should not wait for the interval.
   */
  onCheckinResponse(request: CheckinRequest, response: CheckinResponse): Promise<boolean>;
  /** A check-in failed (network, timeout, 5xx, unparsable answer); it is retried with backoff. */
  onCheckinFailed?(reason: string, consecutiveFailures: number): void;
  /** The server refused our credential (HTTP 401/403); the loop has stopped. */
  onRejected(reason: string): void;
}

export type CheckinOutcome =
  | { kind: "ok"; response: CheckinResponse; sendNow: boolean }
  | { kind: "failed"; reason: string }
  | { kind: "rejected"; reason: string };

/** Checks in forever: at the server's suggested interval, at once when there is news, with backoff on failure. */
export class CheckinLoop {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<CheckinOutcome> | undefined;
  private abort: AbortController | undefined;
  private running = false;
  private wakeRequested = false;
  private failures = 0;
  private intervalMs: number;
  /** Until a check-in of this process succeeded, each one says who we are. */
  private describedSelf = false;

  constructor(
    private readonly url: string,
    private readonly credential: string,
    private readonly handlers: CheckinHandlers,
    private readonly log: Logger,
    defaultIntervalMs: number,
    private readonly timeoutMs = CHECKIN_TIMEOUT_MS,
  ) {
    this.intervalMs = clampCheckinInterval(defaultIntervalMs);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** The interval currently in use (the server's suggestion once it made one). */
  get interval(): number {
    return this.intervalMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    this.schedule(0);
  }

  /** Stops checking in; an in-flight check-in is allowed to finish (its answer is still applied). */
  stop(): void {
    this.running = false;
    this.wakeRequested = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Check in as soon as possible (right after the one in flight, if any). */
  wake(): void {
    if (!this.running) return;
    if (this.current) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  /** Resolves once no check-in is in flight. */
  async idle(): Promise<void> {
    while (this.current) await this.current;
  }

  /**
   * One last check-in while stopping (delivers results of commands killed by
   * the shutdown). Runs even when the loop is stopped; gives up after `timeoutMs`.
   */
  async final(timeoutMs: number): Promise<CheckinOutcome> {
    this.stop();
    await this.idle();
    return this.checkinOnce(timeoutMs);
  }

  /** Aborts an in-flight check-in (a hard stop). */
  abortInFlight(): void {
    this.abort?.abort(new Error("runtime stopping"));
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.cycle();
    }, delay);
  }

  private async cycle(): Promise<void> {
    if (!this.running || this.current) return;
    this.wakeRequested = false;
    const outcome = await this.checkinOnce(this.timeoutMs);
    if (outcome.kind === "rejected") {
      this.stop();
      this.handlers.onRejected(outcome.reason);
      return;
    }
    if (!this.running) return;
    if (outcome.kind === "ok") {
      this.failures = 0;
      this.intervalMs = clampCheckinInterval(outcome.response.nextCheckinMs);
      this.schedule(outcome.sendNow || this.wakeRequested ? 0 : this.intervalMs);
      return;
    }
    this.failures += 1;
    // Back off like the socket does, but never wait longer than the interval.
    const delay = Math.min(this.intervalMs, backoffDelay(this.failures - 1));
    this.log.warn(`check-in failed (${outcome.reason}); retrying in ${formatDelay(delay)}`);
    this.schedule(delay);
    this.handlers.onCheckinFailed?.(outcome.reason, this.failures);
  }

  private checkinOnce(timeoutMs: number): Promise<CheckinOutcome> {
    const work = this.post(timeoutMs);
    this.current = work;
    return work.finally(() => {
      if (this.current === work) this.current = undefined;
    });
  }

  private async post(timeoutMs: number): Promise<CheckinOutcome> {
    let request: CheckinRequest;
    try {
      request = this.handlers.checkinRequest();
    } catch (error) {
      return { kind: "failed", reason: `could not build the check-in: ${errorText(error)}` };
    }
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${formatDelay(timeoutMs)}`)), timeoutMs);
    let status: number;
    let text: string;
    try {
      ({ status, text } = await runtimePost(this.url, {
        // No content-type: the session parses the body as JSON whatever it says, and the header cost
        // 32 bytes on every check-in of a metered link (ADR 0027).
        headers: { authorization: `Bearer ${this.credential}` },
        body: checkinBody(request, !this.describedSelf),
        signal: abort.signal,
      }));
    } catch (error) {
      return { kind: "failed", reason: abort.signal.aborted ? errorText(abort.signal.reason) : errorText(error) };
    } finally {
      clearTimeout(timer);
      if (this.abort === abort) this.abort = undefined;
    }
    const detail = serverErrorText(text);
    if (CREDENTIAL_REJECTED_HTTP_STATUSES.has(status)) return { kind: "rejected", reason: `HTTP ${status}${detail ? `: ${detail}` : ""}` };
    if (status === 400) {
      // Our body did not parse: a bug on one side, not something a retry fixes; say so loudly and keep trying.
      this.log.error(`the server refused the check-in body (${detail ?? "HTTP 400"})`);
      return { kind: "failed", reason: `HTTP 400${detail ? `: ${detail}` : ""}` };
    }
    if (status !== 200 && status !== 204) return { kind: "failed", reason: `server answered HTTP ${status}${detail ? `: ${detail}` : ""}` };
    let data: unknown;
    try {
      // 204: the compact "nothing to do" (we said we take compact answers); every field has its default.
      data = status === 204 ? {} : JSON.parse(text);
    } catch {
      return { kind: "failed", reason: "the check-in answer is not JSON" };
    }
    const parsed = checkinResponseSchema.safeParse(data);
    if (!parsed.success) return { kind: "failed", reason: `invalid check-in answer: ${describeZodError(parsed.error)}` };
    this.describedSelf = true;
    let sendNow: boolean;
    try {
      sendNow = await this.handlers.onCheckinResponse(request, parsed.data);
    } catch (error) {
      // The server has our results; applying its answer failed locally (e.g. disk). Still a contact.
      this.log.error(`could not apply the check-in answer: ${errorText(error)}`);
      sendNow = false;
    }
    return { kind: "ok", response: parsed.data, sendNow };
  }
}

/**
 * The request as JSON for a metered link, where an idle check-in repeats all
 * day: without the empty `started` and `results` lists (the schema defaults
 * them to []; likewise update progress), and without hostname, os, version, platform and the compact-answers
 * flag once the server has had them from this process (`describeSelf` false).
 */
export function checkinBody(request: CheckinRequest, describeSelf: boolean): string {
  const { started, results, runtimeVersion, hostname, os, platform, updateStatus, compactAnswers, ...rest } = request;
  return JSON.stringify({
    ...rest,
    ...(describeSelf ? { runtimeVersion, hostname, os, platform, compactAnswers } : {}),
    ...(started.length ? { started } : {}),
    ...(results.length ? { results } : {}),
    ...(updateStatus.length ? { updateStatus } : {}),
  });
}

export function serverErrorText(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 200) || undefined;
}
