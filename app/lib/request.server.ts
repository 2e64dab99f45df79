/** The caller's address as the edge saw it, for the audit trail. */
export function callerAddress(request: Request): string | null {
  return request.headers.get("cf-connecting-ip") ?? request.headers.get("x-real-ip");
}

/**
 * Refuses cross-site browser requests: a browser that says the request is
 * cross-site is refused, and an Origin header, when present, must be ours.
 * Browsers always send one on WebSocket upgrades and POSTs; tools that send
 * none are not a cross-site threat.
 */
export function isSameOriginRequest(request: Request): boolean {
  if (request.headers.get("sec-fetch-site") === "cross-site") return false;
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  return origin === new URL(request.url).origin;
}
