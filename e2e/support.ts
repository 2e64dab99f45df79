import { expect, type Page } from "@playwright/test";

export const MEMBERS = {
  admin: "Ada Admin",
  technician: "Tom Technician",
  noc: "Nora NOC",
  otherTenantAdmin: "Carl Contoso",
} as const;

/** Signs in through the offline sign-in page, which mints a real Clerk-shaped token. */
export async function signIn(page: Page, who: keyof typeof MEMBERS, redirectTo = "/endpoints") {
  await page.goto(`/offline/sign-in?redirect_url=${encodeURIComponent(redirectTo)}`);
  await page.getByRole("button", { name: new RegExp(MEMBERS[who]) }).click();
  await expect(page.getByTestId("current-member")).toContainText(MEMBERS[who]);
  await waitForHydration(page);
}

/**
 * Server-rendered controls are visible before React owns them; a click on a
 * controlled input before hydration is undone when React takes over.
 */
export async function waitForHydration(page: Page) {
  await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true");
}
