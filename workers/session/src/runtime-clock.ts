// Server time is the truth (docs/decisions/0017-server-time.md). Endpoint
// clocks drift (air-gapped industrial PCs most of all), so every time a
// runtime reports is converted to server time with an offset the session
// measures itself, NTP-style, and the offset and its uncertainty are kept with
// what they converted.
import type { ClockSample as ReportedClockSample } from "../../../protocol/messages";

/** runtime clock − server clock, in ms, ± uncertaintyMs; `at` is when (server time) it was measured. */
export interface ClockEstimate {
  offsetMs: number;
  uncertaintyMs: number;
  at: number;
}

/** A better (tighter) estimate always wins; an older one is replaced anyway after this, clocks drift. */
const ESTIMATE_MAX_AGE_MS = 10 * 60_000;

/** The server sent `serverSentAt`, the runtime answered with its clock, the answer arrived at `serverReceivedAt`. */
export function estimateFromEcho(serverSentAt: number, runtimeTime: number, serverReceivedAt: number): ClockEstimate | null {
  if (serverReceivedAt < serverSentAt) return null;
  return { offsetMs: runtimeTime - (serverSentAt + serverReceivedAt) / 2, uncertaintyMs: (serverReceivedAt - serverSentAt) / 2, at: serverReceivedAt };
}

/** The runtime's record of its previous check-in: it sent at `sentAt`, the server answered `serverTime`, it got it at `receivedAt`. */
export function estimateFromCheckinSample(sample: ReportedClockSample, now: number): ClockEstimate | null {
  if (sample.receivedAt < sample.sentAt) return null;
  return { offsetMs: (sample.sentAt + sample.receivedAt) / 2 - sample.serverTime, uncertaintyMs: (sample.receivedAt - sample.sentAt) / 2, at: now };
}

/**
 * One-way only (a check-in's own send time, before any sample exists): taken
 * as if the request arrived at once, which is usually within milliseconds of
 * true; it may have taken up to `maxTransitMs`, so that is the uncertainty kept.
 */
export function estimateFromOneWay(runtimeSentAt: number, serverReceivedAt: number, maxTransitMs: number): ClockEstimate {
  return { offsetMs: runtimeSentAt - serverReceivedAt, uncertaintyMs: maxTransitMs, at: serverReceivedAt };
}

export interface ClockStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

/** The session's current estimate of its runtime's clock, kept in the session's own storage. */
export class RuntimeClock {
  constructor(private readonly store: ClockStore) {}

  current(): ClockEstimate | null {
    const raw = this.store.get("runtime_clock");
    return raw ? (JSON.parse(raw) as ClockEstimate) : null;
  }

  /** Keeps the tighter estimate, or the newer one once the kept one is old. */
  record(estimate: ClockEstimate | null): void {
    if (!estimate || !Number.isFinite(estimate.offsetMs) || !Number.isFinite(estimate.uncertaintyMs)) return;
    const kept = this.current();
    if (kept && estimate.uncertaintyMs > kept.uncertaintyMs && estimate.at - kept.at < ESTIMATE_MAX_AGE_MS) return;
    this.store.set("runtime_clock", JSON.stringify(estimate));
  }

  /** A runtime-reported time in server time, with what was used; unconverted (offset 0, unknown) when never measured. */
  toServerTime(runtimeMs: number): { serverMs: number; clock: ClockEstimate | null } {
    const clock = this.current();
    return { serverMs: Math.round(clock ? runtimeMs - clock.offsetMs : runtimeMs), clock };
  }
}
