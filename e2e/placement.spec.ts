// Session placement seen from the console (docs/decisions/0019-session-placement.md): an enrolled runtime's
// endpoint shows where its session was created; an endpoint whose runtime never made contact has no session,
// and neither its page nor its socket creates one.
import { expect, test } from "@playwright/test";
import { d1Query } from "./d1";
import { DEMO_ORG } from "../scripts/seed.mjs";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { signIn } from "./support";

const runtime = runtimeForSpec("placement");
const UNPLACED = `ep_unplaced_${Date.now().toString(36)}`;

test.beforeAll(() => {
  const sql = `INSERT INTO endpoints (id, org_id, client_id, hostname, os) VALUES ('${UNPLACED}', '${DEMO_ORG.id}', 'cl_acme', 'never-connected-${UNPLACED}', 'linux');`;
  d1Query(sql);
});

test("an enrolled runtime's endpoint shows where its session was placed", async ({ page }) => {
  await signIn(page, "technician", `/endpoints/${runtime().endpointId}`);
  await openEndpoint(page, runtime().endpointId);
  // Locally the edge's request.cf is miniflare's stand-in, so the hint itself varies; the record must be there.
  await expect(page.getByTestId("endpoint-placement")).not.toHaveText(/Not placed yet/);
  await expect(page.getByTestId("endpoint-placement")).toHaveText(/\((wnam|enam|sam|weur|eeur|apac|oc|afr|me)\)|no hint/);
});

test("an endpoint whose runtime never connected has no session, and watching it does not create one", async ({ page }) => {
  await signIn(page, "technician", `/endpoints/${UNPLACED}`);
  await expect(page.getByTestId("endpoint-placement")).toHaveText(/Not placed yet/);
  await expect(page.getByTestId("session-not-placed")).toBeVisible();
  await expect(page.getByTestId("socket-status")).toHaveCount(0);
  // A hand-made upgrade with this member's cookies is refused at the edge with the reason.
  const response = await page.request.get(`/parties/endpoint/${UNPLACED}`, {
    headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
  });
  expect(response.status()).toBe(409);
  expect(await response.text()).toContain("created near the endpoint when its runtime first connects");
});
