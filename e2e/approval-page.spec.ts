// The public approval page as a client's approver meets it: on a phone (390 px),
// from the link in the captured email, without an account. The technician's
// reason leads, the approver the link was minted for is named, times are on the
// client's clock, and after deciding the page says what happens next. A console
// user holding the link can read it but never decide it.
import { expect, test, type Browser, type Locator, type Page } from "@playwright/test";
import { formatDateTimeInZone } from "../app/lib/format";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { expectNoHorizontalOverflow, requestApprovalByMail, signIn } from "./support";

const runtime = runtimeForSpec("approval-page");

const PHONE = { width: 390, height: 844 } as const;
/** Acme's approver (the seeded client contact) and its time zone. */
const APPROVER = { name: "Priya Patel", email: "priya@acme.test" } as const;
const ACME_TIME_ZONE = "America/Chicago";
const STAFF_REFUSAL = "Approvals must come from the client's own approver, not from MSP staff.";

/** A command whose unbroken tail is far wider than a phone. */
const longCommand = (marker: string) => `echo ${marker}-${"0123456789abcdef".repeat(10)}`;

async function openOnPhone(browser: Browser, url: string) {
  const context = await browser.newContext({ viewport: PHONE, hasTouch: true });
  const page = await context.newPage();
  const response = await page.goto(url);
  return { context, page, response };
}

/** Whether `first` comes before `second` in document order. */
async function precedes(first: Locator, second: Locator): Promise<boolean> {
  const handle = await second.elementHandle();
  return first.evaluate((a, b) => (a.compareDocumentPosition(b as Node) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0, handle);
}

/** "24 Nov 2026, 09:15 (America/Chicago)" → its parts. */
function parseZonedTime(text: string) {
  const match = /^(\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}) \(([A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*)\)$/.exec(text.trim());
  expect(match, `"${text}" is a time with its zone named`).not.toBeNull();
  return { wallClock: match![1]!, zone: match![2]! };
}

test("on a phone, the approver reads the reason first, sees who they approve as, and learns what happens next", async ({ page, browser }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const reason = "The label printer on line 3 stopped; this restarts its print queue.";
  const text = longCommand("approval-page-marker");
  const requestedAt = Date.now();
  const { entry, url } = await requestApprovalByMail(page, text, reason);

  const approver = await openOnPhone(browser, url);
  const phone = approver.page;
  expect(approver.response?.status()).toBe(200);
  await expect(phone.getByTestId("approval-state")).toHaveAttribute("data-state", "pending");

  // The reason leads: right after the title area, before who/where and the command.
  const title = phone.getByTestId("approval-title");
  const reasonEl = phone.getByTestId("approval-reason");
  const command = phone.getByTestId("approval-command");
  await expect(reasonEl).toHaveText(reason);
  expect(await precedes(title, reasonEl)).toBe(true);
  expect(await precedes(reasonEl, phone.getByTestId("approval-technician"))).toBe(true);
  expect(await precedes(reasonEl, command)).toBe(true);
  expect(await precedes(reasonEl, phone.getByTestId("approval-form"))).toBe(true);
  const reasonBox = await reasonEl.boundingBox();
  expect(reasonBox).not.toBeNull();
  expect(reasonBox!.y + reasonBox!.height).toBeLessThanOrEqual(PHONE.height); // readable without scrolling

  await expect(phone.getByTestId("approval-technician")).toHaveText("Tom Technician");
  await expect(phone.getByTestId("approval-hostname")).toHaveText(runtime().hostname);
  await expect(phone.getByTestId("approval-client")).toHaveText("Acme Manufacturing");

  // The exact command sits behind a plain-language disclosure and wraps.
  await expect(command).toBeHidden();
  await phone.getByText("The exact command, for those who read it").click();
  await expect(command).toBeVisible();
  await expect(command).toHaveText(text);
  await expectNoHorizontalOverflow(phone);

  // Times are on the client's clock, with the zone named.
  const requested = parseZonedTime(await phone.getByTestId("approval-requested").innerText());
  const expires = parseZonedTime(await phone.getByTestId("approval-expires").innerText());
  expect(requested.zone).toBe(ACME_TIME_ZONE);
  expect(expires.zone).toBe(ACME_TIME_ZONE);
  const aroundRequest = [-60_000, 0, 60_000, 120_000].map((skew) => formatDateTimeInZone(requestedAt + skew, ACME_TIME_ZONE));
  expect(aroundRequest).toContain(requested.wallClock);

  // The link names its approver; nobody types a name.
  await expect(phone.getByTestId("approval-approver")).toContainText(`You are approving as ${APPROVER.name} (${APPROVER.email})`);
  await expect(phone.getByLabel("Your name")).toHaveCount(0);
  expect(await precedes(phone.getByTestId("approval-approver"), phone.getByRole("button", { name: "Approve" }))).toBe(true);

  // Full-width buttons with room for a thumb.
  for (const name of ["Approve", "Deny"]) {
    const box = await phone.getByRole("button", { name }).boundingBox();
    expect(box!.height).toBeGreaterThanOrEqual(44);
    expect(box!.width).toBeGreaterThanOrEqual(PHONE.width * 0.75);
  }
  await expectNoHorizontalOverflow(phone);

  await phone.getByRole("button", { name: "Approve" }).tap();
  const message = phone.getByTestId("approval-message");
  await expect(message).toContainText("You approved this command at");
  await expect(message).toContainText(`(${ACME_TIME_ZONE})`);
  await expect(message).toContainText(
    `It will run on ${runtime().hostname} as soon as the endpoint is reachable; the technician sees the result. Nothing else is needed from you.`,
  );
  await expect(phone.getByRole("button", { name: "Approve" })).toHaveCount(0);
  await expectNoHorizontalOverflow(phone);

  await expect(entry).toHaveAttribute("data-status", "succeeded", { timeout: 15_000 });
  await approver.context.close();
});

test("after denying, the page says the command will not run", async ({ page, browser }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const { entry, url } = await requestApprovalByMail(page, "echo approval-page-deny-marker", "Checking the deny path");

  const approver = await openOnPhone(browser, url);
  await approver.page.getByRole("button", { name: "Deny" }).tap();
  await expect(approver.page.getByTestId("approval-message")).toContainText("It will not run. The technician has been told.");
  await expect(approver.page.getByTestId("approval-state")).toHaveAttribute("data-state", "denied");
  await expect(entry).toHaveAttribute("data-status", "denied");
  await approver.context.close();
});

test("a signed-in console user who opens the link is refused and is not shown the request", async ({ page }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const { entry, url } = await requestApprovalByMail(page, "echo approval-page-staff-marker", "Staff must not approve");

  // Same browser context as the console session, so its cookies go along.
  const linkPage = await page.context().newPage();
  await linkPage.setViewportSize(PHONE);
  const response = await linkPage.goto(url);
  expect(response?.headers()["cache-control"]).toBe("no-store");
  const notice = linkPage.getByTestId("approval-staff-notice");
  await expect(notice).toContainText("You are signed in to the Caisey console as Tom Technician.");
  await expect(notice).toContainText(STAFF_REFUSAL);
  // Not even read-only: a staff member's look must not count as the client's view of the request.
  await expect(linkPage.getByTestId("approval-reason")).toHaveCount(0);
  await expect(linkPage.getByTestId("approval-command")).toHaveCount(0);
  await expect(linkPage.getByRole("button", { name: "Approve" })).toHaveCount(0);
  await expect(linkPage.getByRole("button", { name: "Deny" })).toHaveCount(0);
  await expect(linkPage.getByTestId("approval-form")).toHaveCount(0);
  await expect(linkPage.getByTestId("approval-approver")).toHaveCount(0);
  await expectNoHorizontalOverflow(linkPage);

  // Posting a decision anyway, with a valid CSRF pair, is refused before it reaches the session.
  const csrf = (await page.context().cookies()).find((cookie) => cookie.name === "caisey_approval_csrf")!.value;
  const forged = await page.context().request.post(url, { form: { csrf, decision: "approve" }, maxRedirects: 0 });
  expect(forged.status()).toBe(403);
  expect(await forged.text()).toContain("not from MSP staff"); // the apostrophe may arrive HTML-escaped
  // The 403 came before any call to the session, so the request is untouched.
  await expect(entry).toHaveAttribute("data-status", "pending_approval");
  await linkPage.close();
});
