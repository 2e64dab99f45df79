import type { z } from "zod";

/**
 * Opaque, URL-safe page cursors holding the last row's sort key, for every
 * keyset-paginated list (endpoints, review). The key is JSON as UTF-8 in
 * unpadded base64url: hostnames and client names are anyone's text (`東京-pc`,
 * `Acme — North`; any enrollment-token holder picks a hostname), and `btoa`
 * alone accepts only Latin-1, which made the list answer 500.
 */

/** Longer than any key we encode (three short fields); bounds the work a hostile `after` can cause. */
export const MAX_CURSOR_LENGTH = 600;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** A cursor that is not one we issued: the request is wrong, so it gets a 400, never page one or a 500. */
export class InvalidCursorError extends Error {
  constructor(reason: string) {
    super(`The page cursor ("after") is not valid: ${reason}. Start again from the first page.`);
    this.name = "InvalidCursorError";
  }
}

export function encodeCursor(key: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(key));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The sort key in `cursor`, or null when there is none (""). Anything else
 * that is not an unpadded base64url UTF-8 JSON value of `schema`'s shape
 * throws InvalidCursorError: silently restarting would send a pager round in
 * circles and hide the bug that produced the cursor.
 */
export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T | null {
  if (cursor === "") return null;
  if (cursor.length > MAX_CURSOR_LENGTH) throw new InvalidCursorError("too long");
  // atob also takes +, /, = and whitespace; a cursor we issued never has them.
  if (!BASE64URL.test(cursor) || cursor.length % 4 === 1) throw new InvalidCursorError("not base64url");
  const binary = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(binary, (char) => char.charCodeAt(0))));
  } catch {
    throw new InvalidCursorError("not UTF-8 JSON");
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InvalidCursorError("not a key of this list");
  return parsed.data;
}

/**
 * For loaders: rethrows an InvalidCursorError as a 400 Response (Remix shows it
 * in the error boundary, or answers a `?_data` request with it); anything else
 * is rethrown as is. Use as `.catch(rejectInvalidCursor)`.
 */
export function rejectInvalidCursor(error: unknown): never {
  if (error instanceof InvalidCursorError) {
    throw new Response(error.message, { status: 400, statusText: "Bad Request", headers: { "Content-Type": "text/plain; charset=utf-8" } });
  }
  throw error;
}
