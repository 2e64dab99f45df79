import { describe, expect, it } from "vitest";
import * as z from "zod";
import { decodeCursor, encodeCursor, InvalidCursorError, MAX_CURSOR_LENGTH, rejectInvalidCursor } from "../../app/lib/keyset-cursor";

const key = z.tuple([z.string(), z.string()]);

/** The codec before issue 11: `btoa` of the JSON, which throws on anything outside Latin-1. */
const latin1Only = (value: unknown) => btoa(JSON.stringify(value));

describe("keyset cursor codec", () => {
  it("round-trips any hostname as unpadded base64url", () => {
    for (const hostname of ["東京-pc", "東京-pc-01", "Acme — North", "café", "📟-plant-7", "👩🏽‍💻", "", "plain-host", "a\u0000b\"c\\"]) {
      const cursor = encodeCursor([hostname, "ep_1"]);
      expect(cursor).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(cursor.length % 4).not.toBe(1);
      expect(decodeCursor(cursor, key)).toEqual([hostname, "ep_1"]);
    }
    expect(() => latin1Only(["東京-pc", "ep_1"])).toThrow(); // why the list answered 500
  });

  it("has no cursor for an empty string", () => {
    expect(decodeCursor("", key)).toBeNull();
  });

  it("rejects anything it did not issue with InvalidCursorError, never a TypeError or page one", () => {
    const good = encodeCursor(["東京", "x"]);
    const malformed = [
      "%%%", // not base64 at all
      "a", // a length no base64 has
      `${good}==`, // padding: we never pad
      good.replace(/-/g, "+").replace(/_/g, "/") + "+/", // standard base64 alphabet
      ` ${good}`, // whitespace atob would skip
      good.slice(0, 5), // cut short
      encodeCursor({ not: "a tuple" }), // wrong shape
      encodeCursor([1, 2]), // wrong types
      btoa("\xff\xfe").replace(/=+$/, ""), // not UTF-8
      btoa("{not json").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_"),
      "A".repeat(MAX_CURSOR_LENGTH + 4), // too long to be ours
    ];
    for (const cursor of malformed) {
      expect(() => decodeCursor(cursor, key), cursor).toThrow(InvalidCursorError);
    }
  });

  it("turns an invalid cursor into a 400 for loaders and rethrows anything else", async () => {
    let thrown: unknown;
    try {
      rejectInvalidCursor(new InvalidCursorError("not base64url"));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Response);
    expect((thrown as Response).status).toBe(400);
    expect(await (thrown as Response).text()).toBe('The page cursor ("after") is not valid: not base64url. Start again from the first page.');
    const other = new Error("D1 is down");
    expect(() => rejectInvalidCursor(other)).toThrow(other);
  });
});
