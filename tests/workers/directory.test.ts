import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { getClientForOrg, listClients } from "~/models/clients.server";
import {
  endpointPageQuery,
  endpointSearchSchema,
  getEndpointForOrg,
  parseEndpointSearch,
  searchEndpoints,
} from "~/models/endpoints.server";
import { encodeCursor, InvalidCursorError, rejectInvalidCursor } from "~/lib/keyset-cursor";
import { DEMO_ORG, FOREIGN_ENDPOINT_ID, OTHER_ORG } from "../../scripts/seed.mjs";
import { seedDemo, seedLargeTenant } from "./helpers";

const search = (overrides: Record<string, string> = {}) => endpointSearchSchema.parse(overrides);

describe("endpoint directory (D1)", () => {
  it("lists only the signed-in tenant's endpoints and clients", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    const page = await searchEndpoints(db, DEMO_ORG.id, search({ group: "none" }), 1000);
    expect(page.total).toBe(48);
    expect(page.rows.every((row) => !row.id.startsWith("ep_other"))).toBe(true);
    expect(await getEndpointForOrg(db, DEMO_ORG.id, FOREIGN_ENDPOINT_ID)).toBeNull();
    expect(await getEndpointForOrg(db, OTHER_ORG.id, FOREIGN_ENDPOINT_ID)).not.toBeNull();
    expect(await getClientForOrg(db, DEMO_ORG.id, "cl_other_fabrikam")).toBeNull();
    const clients = await listClients(db, DEMO_ORG.id);
    expect(clients.map((c) => c.name)).toEqual(["Acme Manufacturing", "Bayside Dental", "Cobalt Logistics", "Delta Legal"]);
    expect(clients.every((c) => c.endpointCount === 12)).toBe(true);
  });

  it("pages through endpoints whose hostnames and client names are not Latin-1 (any enrolled runtime picks its hostname)", async () => {
    // Fails with the old codec: the first page ends on 東京-pc-049 and btoa threw (the list answered 500).
    const org = "org_unicode";
    const ids = Array.from({ length: 120 }, (_, i) => `${org}_ep_${String(i).padStart(3, "0")}`);
    await env.DB.batch([
      env.DB.prepare("INSERT INTO organisations (id, name, slug) VALUES (?, ?, ?)").bind(org, "Unicode MSP", org),
      env.DB.prepare("INSERT INTO clients (id, org_id, name) VALUES (?, ?, ?)").bind(`${org}_client`, org, "Acme — North 東京"),
      ...ids.map((id, i) =>
        env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os) VALUES (?, ?, ?, ?, 'windows')").bind(
          id,
          org,
          `${org}_client`,
          `東京-pc-${String(i).padStart(3, "0")}`,
        ),
      ),
    ]);
    const db = createDb(env.DB);
    for (const group of ["none", "client"] as const) {
      const seen: string[] = [];
      const pageSizes: number[] = [];
      let after = "";
      for (let pages = 0; pages < 10; pages++) {
        // Through the loader's own parse, as a "Next" link's ?after= arrives.
        const page = await searchEndpoints(db, org, parseEndpointSearch(new URLSearchParams({ group, after })));
        pageSizes.push(page.rows.length);
        seen.push(...page.rows.map((row) => row.id));
        if (!page.nextCursor) break;
        expect(page.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
        after = page.nextCursor;
      }
      expect(pageSizes).toEqual([50, 50, 20]);
      expect(seen).toEqual(ids); // every endpoint exactly once, in hostname order
    }
  });

  it("answers a malformed page cursor with a 400 naming the cursor, not a 500 and not page one", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    const wrongList = encodeCursor([1, "ep", 2]); // a review-list cursor
    for (const after of ["%%%", "not-a-cursor!", "A", `${encodeCursor(["", "h", "id"])}==`, wrongList, "A".repeat(2000)]) {
      const search = parseEndpointSearch(new URLSearchParams({ group: "none", after }));
      expect(search.after, "the lenient parse keeps it for the codec to judge").toBe(after);
      const error = await searchEndpoints(db, DEMO_ORG.id, search).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, after).toBeInstanceOf(InvalidCursorError);
      // What the loader's .catch(rejectInvalidCursor) makes of it.
      const response = (() => {
        try {
          rejectInvalidCursor(error);
        } catch (thrown) {
          return thrown as Response;
        }
      })()!;
      expect(response.status).toBe(400);
      expect(await response.text()).toMatch(/^The page cursor \("after"\) is not valid: /);
    }
  });

  it("searches by hostname, client name and tag, and filters by client, tag, OS and status", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    const byHost = await searchEndpoints(db, DEMO_ORG.id, search({ q: "ACME-PC" }));
    expect(byHost.rows.length).toBeGreaterThan(0);
    expect(byHost.rows.every((r) => r.hostname.startsWith("acme-pc"))).toBe(true);

    const byClientName = await searchEndpoints(db, DEMO_ORG.id, search({ q: "bayside" }));
    expect(byClientName.total).toBe(12);

    const byTag = await searchEndpoints(db, DEMO_ORG.id, search({ tag: "kiosk" }), 100);
    expect(byTag.total).toBeGreaterThan(0);
    expect(byTag.rows.every((r) => r.tags.includes("kiosk"))).toBe(true);

    const filtered = await searchEndpoints(db, DEMO_ORG.id, search({ client: "cl_cobalt", os: "linux", status: "offline" }), 100);
    expect(filtered.rows.length).toBeGreaterThan(0);
    expect(filtered.rows.every((r) => r.clientId === "cl_cobalt" && r.os === "linux" && !r.online)).toBe(true);

    // Wildcards typed by a user are literal characters, not patterns.
    expect((await searchEndpoints(db, DEMO_ORG.id, search({ q: "%" }))).total).toBe(0);
    expect((await searchEndpoints(db, DEMO_ORG.id, search({ q: "_" }))).total).toBe(0);
    // Another tenant's client id as a filter finds nothing.
    expect((await searchEndpoints(db, DEMO_ORG.id, search({ client: "cl_other_fabrikam" }))).total).toBe(0);
  });

  it("drops invalid search params instead of failing the page", () => {
    const parsed = parseEndpointSearch(new URLSearchParams("q=pc&os=beos&status=maybe&group=client"));
    expect(parsed).toMatchObject({ q: "pc", os: "", status: "", group: "client" });
  });

  it.each(["none", "client"] as const)("walks 10,000 endpoints with keyset pages (group=%s): each once, in order", async (group) => {
    const org = `org_big_${group}`;
    await seedLargeTenant(org, 10_000);
    await seedLargeTenant(`org_noise_${group}`, 500);
    const db = createDb(env.DB);
    const seen: string[] = [];
    const keys: string[] = [];
    let after = "";
    let pages = 0;
    for (; pages < 250; pages++) {
      const page = await searchEndpoints(db, org, search({ group, after }));
      expect(page.total).toBe(10_000);
      for (const row of page.rows) {
        seen.push(row.id);
        keys.push(group === "client" ? `${row.clientName}\u0000${row.hostname}\u0000${row.id}` : `${row.hostname}\u0000${row.id}`);
      }
      if (!page.nextCursor) break;
      after = page.nextCursor;
    }
    expect(pages).toBe(199);
    expect(new Set(seen).size).toBe(10_000);
    expect(seen.every((id) => id.startsWith(`${org}_ep_`))).toBe(true);
    expect(keys).toEqual([...keys].sort());
  });

  it("serves ungrouped pages from the hostname index without sorting the tenant", async () => {
    await seedLargeTenant("org_plan", 2_000);
    const db = createDb(env.DB);
    const first = await searchEndpoints(db, "org_plan", search({ group: "none" }));
    const query = endpointPageQuery(db, "org_plan", search({ group: "none", after: first.nextCursor! }), 51).toSQL();
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).bind(...query.params).all<{ detail: string }>();
    const details = plan.results.map((r: { detail: string }) => r.detail).join("\n");
    expect(details).toMatch(/endpoints_org_hostname_idx/);
    expect(details).not.toMatch(/TEMP B-TREE/);
  });
});
