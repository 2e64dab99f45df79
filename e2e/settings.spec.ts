// /settings (the tenant's retention, admins only) and /settings/api (API tokens
// and alert webhooks) in a real browser: the retention an admin saves is what
// the page shows after a reload; a technician gets no form and a forged save is
// refused; the API page is its own page, not the retention form (its route was
// once nested under the retention layout). The model's guarantees are in
// tests/workers/retention.test.ts.
import { expect, test } from "@playwright/test";
import { signIn } from "./support";

test.describe.configure({ timeout: 120_000 });

const SETTINGS_ROUTE = "routes%2F_console.settings._index";

test("an admin changes the retention and sees it saved after a reload; a technician gets no form and cannot save", async ({ page, browser }) => {
  await signIn(page, "admin", "/settings");
  await expect(page.getByRole("heading", { name: "Settings", level: 1 })).toBeVisible();
  const days = page.getByLabel("Keep history for (days)");
  const original = await days.inputValue();
  // Another value than the current one, within the 7..3650 the model accepts.
  const changed = String(Number(original) === 400 ? 401 : 400);
  try {
    await days.fill(changed);
    await page.getByRole("button", { name: "Save retention" }).click();
    await expect(page.getByTestId("retention-saved")).toContainText(`Retention set to ${changed} days`);
    await page.reload();
    await expect(page.getByLabel("Keep history for (days)")).toHaveValue(changed);
    await expect(page.getByText(/Last changed by Ada Admin/)).toBeVisible();

    const technician = await browser.newPage();
    await signIn(technician, "technician", "/endpoints");
    expect((await technician.goto("/settings"))?.status()).toBe(403);
    await expect(technician.getByLabel("Keep history for (days)")).toHaveCount(0);
    await expect(technician.getByRole("button", { name: "Save retention" })).toHaveCount(0);
    const forged = await technician.request.post(`/settings?_data=${SETTINGS_ROUTE}`, { form: { retentionDays: "7" } });
    expect(forged.status()).toBe(403);
    await technician.close();

    await page.reload();
    await expect(page.getByLabel("Keep history for (days)")).toHaveValue(changed);
  } finally {
    // The demo tenant is shared with the other specs: put its retention back.
    await page.goto("/settings");
    await page.getByLabel("Keep history for (days)").fill(original);
    await page.getByRole("button", { name: "Save retention" }).click();
    await expect(page.getByTestId("retention-saved")).toContainText(`Retention set to ${original} days`);
  }
});

test("/settings/api renders the API tokens page, not the retention form", async ({ page }) => {
  await signIn(page, "admin", "/settings/api");
  await expect(page.getByRole("heading", { name: "API tokens and alert webhooks", level: 1 })).toBeVisible();
  await expect(page.getByRole("heading", { name: "New token" })).toBeVisible();
  await expect(page.getByTestId("token-list")).toBeVisible();
  await expect(page.getByLabel("Keep history for (days)")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Save retention" })).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Settings", level: 1 })).toHaveCount(0);
});
