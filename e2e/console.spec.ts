import { expect, test } from "@playwright/test";
import { WebSocket } from "ws";
import { E2E_ORIGIN } from "./origin";
import { signIn, waitForHydration } from "./support";

test("an unauthenticated visitor is sent to sign in, then back to the page they asked for", async ({ page }) => {
  await page.goto("/clients");
  await expect(page).toHaveURL(/\/offline\/sign-in\?redirect_url=%2Fclients/);
  await page.getByRole("button", { name: /Tom Technician/ }).click();
  await expect(page).toHaveURL(/\/clients$/);
  await expect(page.getByTestId("client-row")).toHaveCount(4);
});

test("offline auth fetches no clerk-js: there is no Frontend API for it, and Clerk's https URL on the dev server never answers", async ({ page }) => {
  const clerkScripts: string[] = [];
  page.on("request", (request) => {
    if (/clerk-js|clerk\.browser/.test(request.url())) clerkScripts.push(request.url());
  });
  await signIn(page, "technician", "/clients");
  await page.goto("/endpoints");
  await waitForHydration(page);
  await page.waitForLoadState("networkidle");
  expect(clerkScripts).toEqual([]);
});

test("a technician lists, searches, filters and opens endpoints", async ({ page }) => {
  await signIn(page, "technician");
  // 48 seeded endpoints, plus any runtime another spec enrolled (they join Acme Manufacturing).
  const total = Number((await page.getByTestId("endpoint-total").textContent())!.split(" ")[0]);
  expect(total).toBeGreaterThanOrEqual(48);
  await expect(page.getByTestId("client-group")).toHaveCount(4);
  await expect(page.getByTestId("endpoint-row")).toHaveCount(Math.min(total, 50));

  await page.getByRole("searchbox", { name: "Search endpoints" }).fill("bayside");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByTestId("endpoint-total")).toHaveText("12 endpoints");
  await expect(page.getByTestId("client-group")).toHaveCount(1);

  await page.getByRole("searchbox", { name: "Search endpoints" }).fill("");
  await page.getByLabel("Operating system").selectOption("macos");
  await page.getByLabel("Grouping").selectOption("none");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/os=macos/);
  const rows = page.getByTestId("endpoint-row");
  await expect(rows.first()).toBeVisible();
  for (const text of await rows.allTextContents()) expect(text).toContain("macos");

  await rows.first().getByRole("link").click();
  await expect(page).toHaveURL(/\/endpoints\/ep_/);
  await expect(page.getByTestId("endpoint-hostname")).toHaveText(/-mac-/);
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
});

test("another tenant's endpoint and client are not found, and its socket is refused", async ({ page, request }) => {
  await signIn(page, "technician");
  const endpoint = await page.goto("/endpoints/ep_other_fab_01");
  expect(endpoint?.status()).toBe(404);
  await expect(page.getByTestId("error-title")).toHaveText("404 Not Found");
  const client = await page.goto("/clients/cl_other_fabrikam");
  expect(client?.status()).toBe(404);

  const cookies = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const socket = await request.get("/parties/endpoint/ep_other_fab_01", { headers: { cookie: cookies, upgrade: "websocket" } });
  expect(socket.status()).toBe(404);
  const anonymous = await request.get("/parties/endpoint/ep_acme_01", { headers: { upgrade: "websocket" } });
  expect(anonymous.status()).toBe(401);
});

test("the other tenant sees only its own data", async ({ page }) => {
  await signIn(page, "otherTenantAdmin");
  await expect(page.getByTestId("endpoint-total")).toHaveText("1 endpoint");
  expect((await page.goto("/endpoints/ep_acme_01"))?.status()).toBe(404);
});

test("enrollment tokens are shown once, and NOC staff cannot create them", async ({ page, browser }) => {
  await signIn(page, "admin", "/clients/cl_delta");
  await page.getByLabel("Label").fill("Front office");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = await page.getByTestId("new-token-value").textContent();
  expect(token).toMatch(/^cae_/);
  // A fresh visit (GET), not reload(): reloading a page produced by a form POST re-submits it.
  await page.goto("/clients/cl_delta");
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  await expect(page.getByText(token!)).toHaveCount(0);
  await expect(page.getByTestId("token-row").first()).toContainText("Front office");

  const noc = await browser.newPage();
  await signIn(noc, "noc", "/clients/cl_delta");
  await expect(noc.getByRole("button", { name: "Create token" })).toHaveCount(0);
  const forged = await noc.request.post("/clients/cl_delta?_data=routes%2F_console.clients.%24clientId", {
    form: { intent: "create-token", label: "forged", ttlHours: "1", maxUses: "1" },
  });
  expect(forged.status()).toBe(403);
  await noc.close();
});

test("the socket proxy forwards the verified identity, not one the client claims", async ({ page }) => {
  await signIn(page, "noc");
  const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const spoofed = JSON.stringify({ peer: "viewer", endpointId: "ep_acme_02", orgId: "org_demo_northwind", userId: "user_demo_admin", userName: "Ada Admin", canRun: true });
  const socket = new WebSocket(`${E2E_ORIGIN.replace("http", "ws")}/parties/endpoint/ep_acme_02`, {
    headers: { cookie, "x-caisey-identity": spoofed },
  });
  const messages: any[] = [];
  socket.on("message", (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  await expect.poll(() => messages.find((m) => m.type === "presence")?.viewers).toEqual([{ userId: "user_demo_noc", name: "Nora NOC", connections: 1 }]);
  socket.send(JSON.stringify({ type: "run", requestId: "spoof-run", text: "whoami", shell: "default" }));
  await expect.poll(() => messages.find((m) => m.type === "error")).toMatchObject({ code: "forbidden", requestId: "spoof-run" });
  socket.close();
});
