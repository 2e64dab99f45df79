import { describe, expect, it } from "vitest";
import { z } from "zod";
import { decodeCursor, encodeCursor } from "../../app/lib/keyset-cursor";

const key = z.tuple([z.string(), z.string()]);

describe("keyset cursor codec", () => {
  it("round-trips any hostname, URL-safe", () => {
    for (const hostname of ["東京-pc-01", "Acme — North", "café", "📟-plant-7", "", "plain-host"]) {
      const cursor = encodeCursor([hostname, "ep_1"]);
      expect(cursor).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(decodeCursor(cursor, key)).toEqual([hostname, "ep_1"]);
    }
  });

  it("treats garbled, truncated or wrongly shaped cursors as no cursor", () => {
    expect(decodeCursor("", key)).toBeNull();
    expect(decodeCursor("%%%", key)).toBeNull();
    expect(decodeCursor(encodeCursor({ not: "a tuple" }), key)).toBeNull();
    expect(decodeCursor(encodeCursor(["東京", "x"]).slice(0, 5), key)).toBeNull();
    expect(decodeCursor(btoa("\xff\xfe"), key)).toBeNull(); // not UTF-8
  });
});
