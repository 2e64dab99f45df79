import { expect, type Browser, type Cookie, type Page } from "@playwright/test";

export const MEMBERS = {
  admin: "Ada Admin",
  technician: "Tom Technician",
  noc: "Nora NOC",
  otherTenantAdmin: "Carl Contoso",
} as const;

/** The session cookies each member got from the sign-in page, reused by later tests of the run. */
const sessions = new Map<keyof typeof MEMBERS, Cookie[]>();

/**
 * Signs in through the offline sign-in page, which mints a real Clerk-shaped
 * token (8 hours). A member's first sign-in of the run goes through the page;
 * later ones start from the cookies it set, as a returning browser would: one
 * page load instead of two. If the server no longer takes them (the member was
 * removed and re-invited since), the page is used again.
 */
export async function signIn(page: Page, who: keyof typeof MEMBERS, redirectTo = "/endpoints") {
  const cookies = sessions.get(who);
  if (cookies) {
    await page.context().addCookies(cookies);
    await page.goto(redirectTo);
    if ((await page.getByTestId("current-member").filter({ hasText: MEMBERS[who] }).count()) > 0) {
      await waitForHydration(page);
      return;
    }
    sessions.delete(who);
    await page.context().clearCookies();
  }
  await page.goto(`/offline/sign-in?redirect_url=${encodeURIComponent(redirectTo)}`);
  await page.getByRole("button", { name: new RegExp(MEMBERS[who]) }).click();
  await expect(page.getByTestId("current-member")).toContainText(MEMBERS[who]);
  await waitForHydration(page);
  sessions.set(who, (await page.context().cookies()).filter((cookie) => SESSION_COOKIES.includes(cookie.name)));
}

/** What the offline sign-in sets (app/lib/offline-auth.server.ts); nothing else of the context is carried over. */
const SESSION_COOKIES = ["__session", "__client_uat"];

/** Signs in offline as the first admin of a new organisation (the claims Clerk would mint for a fresh sign-up). */
export async function signInAsNewOrganisation(page: Page, orgName: string, name: string, email: string) {
  await page.goto("/offline/sign-in");
  await page.getByRole("textbox", { name: "Organisation" }).fill(orgName);
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Create and sign in as admin" }).click();
  await expect(page).toHaveURL(/\/clients$/);
  await expect(page.getByTestId("current-member")).toHaveText(`${name} · admin · ${orgName}`);
}

/**
 * Server-rendered controls are visible before React owns them; a click on a
 * controlled input before hydration is undone when React takes over.
 */
export async function waitForHydration(page: Page) {
  await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true");
}

/** The approver on Acme Manufacturing's policy (scripts/seed.mjs): the demo runtime's client. */
export const ACME_APPROVER = { name: "Priya Patel", email: "priya@acme.test" } as const;

/** Runs `text` on the open endpoint page, optionally flagged as needing approval; returns its transcript entry. */
export async function runCommand(page: Page, text: string, approval?: { reason: string }) {
  if (approval) {
    await page.getByLabel("Needs client approval").check();
    await page.getByLabel("Reason").fill(approval.reason);
  }
  await page.getByLabel("Command").fill(text);
  await page.getByLabel("Command").press("Enter");
  return page.getByTestId("command-entry").filter({ hasText: text }).last();
}

/**
 * Opens the capture mailbox (local dev and CI only) as the approver would open
 * their inbox, reads the newest message to `email`, checks it is about
 * `commandText`, and returns the approval link it carries.
 */
export async function approvalLinkFromMailbox(browser: Browser, email: string, commandText: string): Promise<string> {
  const context = await browser.newContext();
  try {
    const inbox = await context.newPage();
    await inbox.goto(`/dev/mailbox?to=${encodeURIComponent(email)}`);
    await inbox.getByTestId("mail-item").first().getByRole("link").first().click();
    await expect(inbox.getByTestId("mail-text")).toContainText(commandText);
    const href = await inbox.getByTestId("mail-link").filter({ hasText: "/approve/" }).first().getAttribute("href");
    if (!href) throw new Error(`no approval link in the newest mail to ${email}`);
    return href;
  } finally {
    await context.close();
  }
}

/**
 * A technician asks for approval on the open endpoint page; once the console
 * says the email went out, the link is read from the approver's mailbox: the
 * requester's page never has it.
 */
export async function requestApprovalByMail(page: Page, text: string, reason: string) {
  const entry = await runCommand(page, text, { reason });
  await expect(entry).toHaveAttribute("data-status", "pending_approval");
  await expect(entry.getByTestId("approval-approver").first()).toHaveAttribute("data-delivery", "sent");
  const url = await approvalLinkFromMailbox(page.context().browser()!, ACME_APPROVER.email, text);
  return { entry, url };
}

/** Answers the console's confirmation dialog (app/components/confirm-dialog.tsx) by pressing `button`. */
export async function confirmInDialog(page: Page, button: string | RegExp) {
  const dialog = page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: button }).click();
  await expect(dialog).toHaveCount(0);
}

/** The page is no wider than the viewport: nothing is cut off or needs sideways scrolling. */
export async function expectNoHorizontalOverflow(page: Page, { soft = false } = {}) {
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  (soft ? expect.soft : expect)(widths.scroll, `page ${page.url()} is ${widths.scroll}px wide in a ${widths.inner}px viewport`).toBeLessThanOrEqual(widths.inner);
}

/** axe-core finds no WCAG 2.1 A/AA violation on the page as it stands. */
export async function expectAccessible(page: Page, { soft = false } = {}) {
  const { default: AxeBuilder } = await import("@axe-core/playwright");
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const summary = results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(", ")})`);
  (soft ? expect.soft : expect)(summary, `axe violations on ${page.url()}`).toEqual([]);
}
