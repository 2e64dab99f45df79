// The D1 round-trip meter behind `X-D1-Round-Trips` and `npm run bench:pages`, over real D1.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterD1 } from "~/lib/d1-metering.server";

describe("meterD1", () => {
  it("counts each statement execution, batch and exec once, through bound statements and sessions", async () => {
    const { db, roundTrips } = meterD1(env.DB);
    const statement = db.prepare("SELECT ? AS n");
    expect(roundTrips()).toBe(0); // preparing is local
    expect(await statement.bind(1).first<{ n: number }>()).toEqual({ n: 1 });
    await db.prepare("SELECT 1").all();
    expect(roundTrips()).toBe(2);
    await db.batch([db.prepare("SELECT 1"), db.prepare("SELECT 2")]);
    expect(roundTrips()).toBe(3);
    await db.withSession("first-unconstrained").prepare("SELECT 1").raw();
    expect(roundTrips()).toBe(4);
  });
});
