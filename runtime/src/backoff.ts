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

/** For about the first two minutes after a fallback the retries stay this close, so a short cut heals in seconds. */
export const WEBSOCKET_EARLY_RETRY_MAX_MS = 15_000;
const EARLY_ATTEMPTS = 8;

/**
 * Delay before WebSocket retry `attempt` (0-based) while on HTTPS check-in,
 * with equal jitter (half fixed, half random) so a fleet does not retry in
 * lockstep: 5-10 s first, then at most 15 s apart for about two minutes (a
 * network cut of a few seconds to a minute is the common case), then 30 s and
 * 60 s ceilings for a network that blocks WebSockets for good.
 */
export function websocketRetryDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling =
    attempt === 0
      ? WEBSOCKET_FIRST_RETRY_MS
      : attempt < EARLY_ATTEMPTS
        ? WEBSOCKET_EARLY_RETRY_MAX_MS
        : Math.min(WEBSOCKET_RETRY_MAX_MS, WEBSOCKET_EARLY_RETRY_MAX_MS * 2 ** (attempt - EARLY_ATTEMPTS + 1));
  return ceiling / 2 + random() * (ceiling / 2);
}
