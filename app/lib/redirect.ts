/**
 * A same-origin path to redirect to, from an untrusted `redirect_url`, or
 * `fallback`. Accepts an absolute path ("/clients?q=1#x") or an absolute URL
 * whose origin is one of `trustedOrigins` (Clerk's handshake sends full URLs),
 * and returns only its path, search and hash. Refuses everything a browser
 * could read as another host: "//host", "/\host", "/.//host" (which
 * normalises to "//host"), other origins, javascript: and other schemes,
 * relative paths, and control characters (which URL parsers silently drop).
 */
export function safeRedirectPath(
  raw: string | null | undefined,
  fallback: string,
  trustedOrigins: readonly string[] = [],
): string {
  if (typeof raw !== "string") return fallback;
  const value = raw.trim();
  if (!value || value.includes("\\") || /[\u0000-\u001f\u007f]/.test(value)) return fallback;

  // Resolve against a host that cannot exist, so relative input can never pick up a real origin.
  const base = "https://redirect.invalid";
  const hasScheme = /^[a-z][a-z0-9+.-]*:/i.test(value);
  if (!hasScheme && (!value.startsWith("/") || value.startsWith("//"))) return fallback;
  let target: URL;
  try {
    target = new URL(value, base);
  } catch {
    return fallback;
  }
  if (hasScheme) {
    if (!/^https?:$/.test(target.protocol) || !trustedOrigins.includes(target.origin)) return fallback;
  } else if (target.origin !== base) {
    return fallback;
  }

  const path = `${target.pathname}${target.search}${target.hash}`;
  // Dot segments and empty segments can normalise into a protocol-relative path.
  if (!path.startsWith("/") || path.startsWith("//") || path.startsWith("/\\")) return fallback;
  return path;
}
