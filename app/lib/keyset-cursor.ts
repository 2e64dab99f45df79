import type { z } from "zod";

/** An opaque, URL-safe page cursor holding the last row's sort key. */
export function encodeCursor(key: unknown): string {
  return btoa(JSON.stringify(key)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The sort key in `cursor`, or null when it is empty, garbled or the wrong shape (the list starts over). */
export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T | null {
  if (!cursor) return null;
  try {
    const parsed = schema.safeParse(JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
