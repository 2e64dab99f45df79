export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 30_000;

/**
 * Delay before reconnect attempt `attempt` (0-based): doubling from 0.5 s up
 * to 30 s, with "equal jitter" (half fixed, half random) so a fleet of
 * endpoints that lost the server together does not come back in lockstep.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt, 16));
  return Math.max(BACKOFF_MIN_MS / 2, ceiling / 2 + random() * (ceiling / 2));
}
