import { expect, test } from "@playwright/test";
import { E2E_ORIGIN } from "./origin";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { signIn } from "./support";

const runtime = runtimeForSpec("library");

async function createScript(page: import("@playwright/test").Page, name: string, body: unknown) {
  await page.goto("/library");
  await page.getByLabel("Script name").fill(name);
  await page.getByLabel("Script body (JSON)").fill(JSON.stringify(body));
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("library-saved")).toHaveText("Saved version 1");
}

test("a NOC user drafts a parameterised library script and queues it; a real runtime runs it with the value as one literal argument", async ({ page }) => {
  await signIn(page, "noc", "/library");
  const name = `Echo word ${Date.now()}`;
  await createScript(page, name, { params: [{ name: "word", type: "string", label: "Word" }], steps: [{ text: "printf '%s|' {{word}}", shell: "sh" }] });

  await openEndpoint(page, runtime().endpointId);
  await expect(page.getByLabel("Command")).toHaveCount(0); // no live commands for NOC
  await expect(page.getByTestId("cannot-run")).toContainText("can queue diagnostic sequences");
  await page.getByLabel("Library script").selectOption({ label: `${name} (v1)` });
  await page.getByLabel("Word").fill("$(echo pwned) `id` two words");
  await page.getByRole("button", { name: "Queue script" }).click();
  await expect(page.getByTestId("library-run-queued")).toHaveText(`Queued ${name} v1`);

  const entry = page.getByTestId("command-entry").last();
  await expect(entry.getByTestId("sequence-step")).toHaveText(`${name} v1 · step 1/1`);
  await expect(entry).toHaveAttribute("data-status", "succeeded", { timeout: 20_000 });
  await expect(entry.getByTestId("command-output")).toHaveText("$(echo pwned) `id` two words|");
});

test("an alert webhook queues a library script that the real runtime runs, once per alert id", async ({ page }) => {
  await signIn(page, "admin", "/library");
  const name = `Alert probe ${Date.now()}`;
  await createScript(page, name, { params: [{ name: "tag", type: "string" }], steps: [{ text: "echo alert {{tag}}", shell: "sh" }] });

  await page.goto("/settings/api");
  await page.getByLabel("Token name").fill("monitoring");
  await page.getByRole("checkbox").first().check(); // sequences:queue
  await page.getByRole("button", { name: "Create token" }).click();
  const token = (await page.getByTestId("new-token").locator("code").textContent())!;
  expect(token).toMatch(/^cat_/);
  await page.getByLabel("Webhook name").fill("Disk alerts");
  await page.getByLabel("Webhook script").selectOption({ label: name });
  await page.getByRole("button", { name: "Create webhook" }).click();
  const webhookPath = (await page.getByTestId("new-webhook").locator("code").textContent())!;

  const alert = { alertId: `alert-${Date.now()}`, endpointId: runtime().endpointId, params: { tag: "disk-full" } };
  const post = () => fetch(`${E2E_ORIGIN}${webhookPath}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(alert) });
  const first = await post();
  expect(first.status).toBe(201);
  const second = await post();
  expect(second.status).toBe(200);
  expect(((await second.json()) as { duplicate: boolean }).duplicate).toBe(true);

  await openEndpoint(page, runtime().endpointId);
  const entries = page.getByTestId("command-entry").filter({ hasText: "echo alert 'disk-full'" });
  await expect(entries).toHaveCount(1);
  await expect(entries.first()).toHaveAttribute("data-status", "succeeded", { timeout: 20_000 });
  await expect(entries.first().getByTestId("command-output")).toHaveText("alert disk-full\n");
});
