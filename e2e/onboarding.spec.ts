// A brand-new organisation's first admin (offline mode minting the claims Clerk would): no seed data for them,
// the tenant and the member are provisioned on the first page, and they see only their own, empty, tenant.
import { expect, test } from "@playwright/test";

test("the first admin of a new organisation is provisioned on first sign-in and starts from an empty tenant", async ({ page }) => {
  const orgName = `Fresh MSP ${Date.now().toString(36)}`;
  await page.goto("/offline/sign-in");
  await page.getByRole("textbox", { name: "Organisation" }).fill(orgName);
  await page.getByLabel("Your name").fill("Ada Fresh");
  await page.getByLabel("Email").fill("ada@fresh-msp.test");
  await page.getByRole("button", { name: "Create and sign in as admin" }).click();
  await expect(page).toHaveURL(/\/clients$/);
  await expect(page.getByTestId("current-member")).toHaveText(`Ada Fresh · admin · ${orgName}`);
  // Nothing of the demo tenants is visible.
  await expect(page.getByText("Acme Manufacturing")).toHaveCount(0);
  await page.goto("/endpoints");
  await expect(page.getByText("acme-", { exact: false })).toHaveCount(0);
});
