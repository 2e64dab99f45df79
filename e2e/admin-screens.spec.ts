// The admin screens in a real browser: clients created, edited, archived and
// restored; an endpoint renamed and retagged; the members mirror. Each is
// refused (and changes nothing) for the technician and NOC roles and for
// another tenant's admin. The model's own guarantees are in
// tests/workers/admin-directory.test.ts.
import { expect, test, type Page } from "@playwright/test";
import { signIn } from "./support";

// Each test walks several screens and roles; on the shared CI machine that can take over a minute.
test.describe.configure({ timeout: 180_000 });

const CLIENT_ROUTE = "routes%2F_console.clients.%24clientId";
const CLIENTS_ROUTE = "routes%2F_console.clients._index";

async function clientNames(page: Page) {
  return page.getByTestId("client-row").allTextContents();
}

test("an admin creates, edits, archives and restores a client, and each change is in its history", async ({ page }) => {
  const name = `Globex ${Date.now().toString(36)}`;
  await signIn(page, "admin", "/clients");
  const form = page.getByTestId("new-client");
  await form.locator("summary").click();
  await form.getByLabel("Client name").fill(name);
  await form.getByLabel("Time zone").fill("Mars/Olympus");
  await form.getByRole("button", { name: "Create client" }).click();
  await expect(page.getByTestId("client-form-error")).toContainText("is not a time zone");
  await form.getByLabel("Time zone").fill("Asia/Tokyo");
  await form.getByLabel("Contact name").fill("Tom Technician");
  await form.getByLabel("Contact email").fill("tom@northwind.test");
  await form.getByRole("button", { name: "Create client" }).click();
  await expect(page.getByTestId("client-form-error")).toContainText("member of your organisation");
  await form.getByLabel("Contact name").fill("Hank Scorpio");
  await form.getByLabel("Contact email").fill("hank@globex.test");
  await form.getByLabel("Notes").fill("Alarm code in the vault");
  await form.getByRole("button", { name: "Create client" }).click();
  await expect(page.getByTestId("client-name")).toHaveText(name);
  await expect(page.getByTestId("client-notes")).toHaveText("Alarm code in the vault");
  // The contact is the default approver.
  await expect(page.getByLabel(/^Approvers/)).toHaveValue("Hank Scorpio <hank@globex.test>");

  const details = page.getByTestId("client-details");
  await details.getByLabel("Time zone").fill("America/Denver");
  await details.getByRole("button", { name: "Save client details" }).click();
  await expect(page.getByTestId("client-saved")).toContainText("Saved");
  await expect(page.getByTestId("client-time-zone")).toHaveText("America/Denver");

  await details.getByRole("button", { name: "Archive client" }).click();
  await expect(page.getByTestId("client-archive-result")).toContainText("Archived");
  await expect(page.getByTestId("client-archived")).toBeVisible();
  await expect(page.getByRole("button", { name: "Create token" })).toHaveCount(0);
  await expect(page.getByTestId("client-history").locator("li")).toHaveCount(3);

  await page.goto("/clients");
  expect((await clientNames(page)).join("\n")).not.toContain(name);
  await page.getByTestId("toggle-archived").click();
  await expect(page.getByTestId("client-row").filter({ hasText: name })).toHaveAttribute("data-archived", "true");
  await page.getByRole("link", { name }).click();
  await page.getByTestId("client-details").getByRole("button", { name: "Restore client" }).click();
  await expect(page.getByRole("button", { name: "Create token" })).toBeVisible();
  await expect(page.getByTestId("client-history").locator("li").first()).toHaveAttribute("data-kind", "client.restored");
  // Archived again, so specs that count the demo tenant's clients still see its four.
  await page.getByTestId("client-details").getByRole("button", { name: "Archive client" }).click();
  await expect(page.getByTestId("client-archived")).toBeVisible();
});

test("technicians and NOC cannot create, edit or archive clients, and nothing changes", async ({ browser }) => {
  for (const role of ["technician", "noc"] as const) {
    const page = await browser.newPage();
    await signIn(page, role, "/clients/cl_delta");
    await expect(page.getByTestId("client-details")).toHaveCount(0);
    await page.goto("/clients");
    await expect(page.getByTestId("new-client")).toHaveCount(0);
    const created = await page.request.post(`/clients?_data=${CLIENTS_ROUTE}`, { form: { intent: "create-client", name: `Forged by ${role}`, timeZone: "UTC" } });
    expect(created.status()).toBe(403);
    const forms: Record<string, string>[] = [
      { intent: "save-client", name: "Renamed", timeZone: "UTC" },
      { intent: "archive-client" },
      { intent: "save-time-zone", timeZone: "Asia/Tokyo" },
    ];
    for (const form of forms) {
      const response = await page.request.post(`/clients/cl_delta?_data=${CLIENT_ROUTE}`, { form });
      expect(response.status(), `${role} ${form.intent}`).toBe(403);
    }
    await page.goto("/clients/cl_delta");
    await expect(page.getByTestId("client-name")).toHaveText("Delta Legal");
    await expect(page.getByTestId("client-time-zone")).toHaveText("America/New_York");
    await expect(page.getByTestId("client-archived")).toHaveCount(0);
    await page.goto("/clients");
    expect((await clientNames(page)).join("\n")).not.toContain("Forged by");
    await page.close();
  }
});

test("another tenant's admin gets 404 for this tenant's client and endpoint, and nothing changes", async ({ page }) => {
  await signIn(page, "otherTenantAdmin", "/clients");
  const forms: Record<string, string>[] = [{ intent: "save-client", name: "Stolen", timeZone: "UTC" }, { intent: "archive-client" }];
  for (const form of forms) {
    const response = await page.request.post(`/clients/cl_delta?_data=${CLIENT_ROUTE}`, { form });
    expect(response.status()).toBe(404);
  }
  const retag = await page.request.post("/endpoints/ep_acme_01/details", { form: { displayName: "Stolen", tags: "stolen" } });
  expect(retag.status()).toBe(404);
  await signIn(page, "admin", "/clients/cl_delta");
  await expect(page.getByTestId("client-name")).toHaveText("Delta Legal");
  await page.goto("/endpoints/ep_acme_01");
  await expect(page.getByTestId("endpoint-display-name")).toHaveCount(0);
  await expect(page.getByTestId("endpoint-tags")).not.toContainText("stolen");
});

test("an admin renames and retags an endpoint from its header; technicians and NOC cannot", async ({ page, browser }) => {
  const tag = `floor-${Date.now().toString(36)}`;
  await signIn(page, "admin", "/endpoints/ep_dlt_01");
  const editor = page.getByTestId("endpoint-details-editor");
  await editor.locator("summary").click();
  await editor.getByLabel("Tags").fill("front desk, <bad>");
  await editor.getByRole("button", { name: "Save name and tags" }).click();
  await expect(page.getByTestId("endpoint-details-error")).toContainText("Tags are letters");
  await editor.getByLabel("Display name").fill("Reception PC");
  await editor.getByLabel("Tags").fill(`front desk, ${tag}`);
  await editor.getByRole("button", { name: "Save name and tags" }).click();
  await expect(page.getByTestId("endpoint-details-saved")).toHaveText("Saved.");
  await expect(page.getByTestId("endpoint-display-name")).toHaveText("Reception PC");
  await expect(page.getByTestId("endpoint-tags")).toHaveText(`${tag}, front desk`);

  await page.goto(`/endpoints?tag=${tag}`);
  await expect(page.getByTestId("endpoint-row")).toHaveCount(1);
  await expect(page.getByTestId("endpoint-row-display-name")).toHaveText("Reception PC");

  for (const role of ["technician", "noc"] as const) {
    const other = await browser.newPage();
    await signIn(other, role, "/endpoints/ep_dlt_01");
    await expect(other.getByTestId("endpoint-details-editor")).toHaveCount(0);
    const forged = await other.request.post("/endpoints/ep_dlt_01/details", { form: { displayName: "Hijacked", tags: "" } });
    expect(forged.status()).toBe(403);
    await other.close();
  }
  await page.goto("/endpoints/ep_dlt_01");
  await expect(page.getByTestId("endpoint-display-name")).toHaveText("Reception PC");
});

test("the members page mirrors the organisation's members and roles for admins only", async ({ page, browser }) => {
  await signIn(page, "admin", "/members");
  await expect(page.getByRole("link", { name: "Members" })).toBeVisible();
  await expect(page.getByTestId("members-mirror-note")).toContainText("read-only mirror");
  const rows = page.getByTestId("member-row");
  await expect(rows.filter({ hasText: "Ada Admin" })).toHaveAttribute("data-role", "admin");
  await expect(rows.filter({ hasText: "Tom Technician" })).toHaveAttribute("data-role", "technician");
  await expect(rows.filter({ hasText: "Nora NOC" })).toHaveAttribute("data-role", "noc");
  await expect(rows.filter({ hasText: "Carl Contoso" })).toHaveCount(0);

  for (const role of ["technician", "noc"] as const) {
    const other = await browser.newPage();
    await signIn(other, role, "/endpoints");
    await expect(other.getByRole("link", { name: "Members" })).toHaveCount(0);
    expect((await other.goto("/members"))?.status()).toBe(403);
    await other.close();
  }
});
