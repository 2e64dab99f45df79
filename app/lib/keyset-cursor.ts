import type { z } from "zod";

/**
 * An opaque, URL-safe page cursor holding the last row's sort key. The key is
 * JSON as UTF-8 in base64url: hostnames and client names are anyone's text
 * (`東京-pc`, `Acme — North`), and `btoa` alone accepts only Latin-1.
 */
export function encodeCursor(key: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(key));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The sort key in `cursor`, or null when it is empty, garbled or the wrong shape (the list starts over). */
export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T | null {
  if (!cursor) return null;
  try {
    const binary = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const parsed = schema.safeParse(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
