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

/** In auto mode, the first WebSocket retry after falling back to check-in comes within this long. */
export const WEBSOCKET_FIRST_RETRY_MS = 10_000;
/** ...and later retries, while check-ins carry the work, at most this far apart. */
export const WEBSOCKET_RETRY_MAX_MS = 60_000;

/**
 * Delay before WebSocket retry `attempt` (0-based) while on HTTPS check-in:
 * 10 s, 20 s, 40 s, then 60 s ceilings, with equal jitter, so the first retry
 * lands 5-10 s after the fallback and a fleet does not retry in lockstep.
 */
export function websocketRetryDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(WEBSOCKET_RETRY_MAX_MS, WEBSOCKET_FIRST_RETRY_MS * 2 ** Math.min(attempt, 8));
  return ceiling / 2 + random() * (ceiling / 2);
}
