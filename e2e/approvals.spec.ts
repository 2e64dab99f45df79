// Client approval of privileged commands, end to end: a technician's request
// waits in the endpoint's session DO, the link goes by email only to the
// client's approver (the capture mailbox in CI), the approver decides on the
// public /approve page without an account, and the real runtime runs (or
// never runs) the command.
import { expect, test, type Browser } from "@playwright/test";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { ACME_APPROVER, confirmInDialog, requestApprovalByMail, runCommand, signIn } from "./support";

const runtime = runtimeForSpec("approvals");

/** The client contact: a separate browser context with no cookies and no account. */
async function openAsApprover(browser: Browser, url: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(url);
  return { context, page, response };
}

test("the client approves from the emailed link without an account, and the command runs on the endpoint", async ({ page, browser }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const reason = "Confirm the approval flow works";
  const entry = await runCommand(page, "echo approved-marker", { reason });
  await expect(entry).toHaveAttribute("data-status", "pending_approval");
  // The requester sees who was asked and that the email went out, never a link.
  const approver = entry.getByTestId("approval-approver");
  await expect(approver).toHaveCount(1);
  await expect(approver).toContainText("Priya Patel");
  await expect(approver).toContainText("p•••@acme.test");
  await expect(approver).toHaveAttribute("data-delivery", "sent");
  expect(await page.content()).not.toContain("/approve/");

  // The approver's inbox: open the message and follow its link, as a client would.
  const inbox = await browser.newContext();
  const mail = await inbox.newPage();
  await mail.goto(`/dev/mailbox?to=${encodeURIComponent(ACME_APPROVER.email)}`);
  await mail.getByTestId("mail-item").first().getByRole("link").first().click();
  await expect(mail.getByTestId("mail-text")).toContainText(reason);
  await expect(mail.getByTestId("mail-text")).toContainText("echo approved-marker");
  const response = await Promise.all([mail.waitForNavigation(), mail.getByTestId("mail-link").filter({ hasText: "/approve/" }).first().click()]).then(([r]) => r);
  expect(response?.status()).toBe(200);
  expect(response?.headers()["cache-control"]).toBe("no-store");
  await expect(mail.locator('meta[name="referrer"]')).toHaveAttribute("content", "no-referrer");
  expect(await mail.getByTestId("current-member").count()).toBe(0); // no console chrome, no sign-in
  await expect(mail.getByTestId("approval-reason")).toHaveText(reason);
  await expect(mail.getByTestId("approval-approver")).toContainText("Priya Patel");
  await expect(mail.getByTestId("approval-approver")).toContainText(ACME_APPROVER.email);
  await expect(mail.getByTestId("approval-hostname")).toHaveText(runtime().hostname);
  await expect(mail.getByTestId("approval-technician")).toContainText("Tom Technician");
  await expect(mail.getByLabel("Your name")).toHaveCount(0);

  const [csrfCookie] = (await inbox.cookies()).filter((c) => c.name === "caisey_approval_csrf");
  expect(csrfCookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/approve", secure: false });
  await expect(mail.locator('input[name="csrf"]')).toHaveValue(csrfCookie!.value);

  await mail.getByRole("button", { name: "Approve" }).click();
  await expect(mail.getByTestId("approval-message")).toContainText("You approved this command");
  await expect(mail.getByRole("button", { name: "Approve" })).toHaveCount(0);

  await expect(entry).toHaveAttribute("data-status", "succeeded", { timeout: 15_000 });
  await expect(entry.getByTestId("command-output")).toHaveText("approved-marker\n");
  await expect(entry.getByTestId("approval-decision")).toContainText("Approved by Priya Patel");
  await inbox.close();
});

test("the client denies, and the command never runs", async ({ page, browser }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const { entry, url } = await requestApprovalByMail(page, "echo denied-marker", "Should be refused");

  const approver = await openAsApprover(browser, url);
  await expect(approver.page.getByTestId("approval-command")).toHaveText("echo denied-marker");
  await approver.page.getByRole("button", { name: "Deny" }).click();
  await expect(approver.page.getByTestId("approval-message")).toContainText("You denied this command");

  await expect(entry).toHaveAttribute("data-status", "denied");
  await expect(entry.getByTestId("approval-decision")).toContainText("Denied by Priya Patel");
  await expect(entry.getByTestId("command-output")).toHaveCount(0);
  expect(runtime().log).not.toContain("denied-marker");

  // Reopening the denied link shows the decision, no form.
  await approver.page.goto(url);
  await expect(approver.page.getByTestId("approval-message")).toContainText("This link has already been used: denied by Priya Patel");
  await expect(approver.page.getByRole("button", { name: "Deny" })).toHaveCount(0);
  await approver.context.close();
});

test("no console user can approve: a colleague signed in to the console who opens the link is refused", async ({ page, browser }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const { entry, url } = await requestApprovalByMail(page, "echo colleague-marker", "Separation of duties");
  const colleagueContext = await browser.newContext();
  const colleague = await colleagueContext.newPage();
  await signIn(colleague, "admin");
  await colleague.goto(url);
  await expect(colleague.getByTestId("approval-staff-notice")).toContainText("signed in to the Caisey console");
  await expect(colleague.getByRole("button", { name: "Approve" })).toHaveCount(0);
  await expect(entry).toHaveAttribute("data-status", "pending_approval");

  // The requester withdraws it; the client's link then says so.
  await entry.getByTestId("approval-withdraw").click();
  await confirmInDialog(page, "Withdraw request");
  await expect(entry).toHaveAttribute("data-status", "cancelled");
  const approver = await openAsApprover(browser, url);
  await expect(approver.page.getByTestId("approval-state")).toHaveAttribute("data-state", "withdrawn");
  await expect(approver.page.getByRole("button", { name: "Approve" })).toHaveCount(0);
  await approver.context.close();
  await colleagueContext.close();
});

test("links are single use, tampered links are invalid, and forged posts are refused", async ({ page, browser }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const { entry, url } = await requestApprovalByMail(page, "echo reuse-marker", "Single-use check");
  const approver = await openAsApprover(browser, url);
  await expect(approver.page.getByRole("button", { name: "Approve" })).toBeVisible();
  const csrf = await approver.page.locator('input[name="csrf"]').inputValue();

  // Wrong CSRF value (the cookie is sent, the field does not match): refused, nothing changed.
  const wrongToken = await approver.context.request.post(url, {
    form: { csrf: "x".repeat(43), decision: "approve" },
    maxRedirects: 0,
  });
  expect(wrongToken.status()).toBe(403);
  expect(await wrongToken.text()).toContain("nothing was changed");
  // No cookie at all (a fresh context), with a made-up field: refused.
  const noCookie = await browser.newContext();
  const bare = await noCookie.request.post(url, { form: { csrf, decision: "approve" }, maxRedirects: 0 });
  expect(bare.status()).toBe(403);
  await noCookie.close();
  // Right cookie and field, but posted from another origin: refused. As a data
  // request our own Origin check answers 403; as a document POST Remix's
  // built-in check aborts it (500) before the action runs.
  const crossOriginData = await approver.context.request.post(`${url}?_data=${encodeURIComponent("routes/approve.$token")}`, {
    form: { csrf, decision: "approve" },
    headers: { origin: "https://attacker.example" },
    maxRedirects: 0,
  });
  expect(crossOriginData.status()).toBe(403);
  expect(await crossOriginData.text()).toContain("nothing was changed");
  const crossOriginDocument = await approver.context.request.post(url, {
    form: { csrf, decision: "approve" },
    headers: { origin: "https://attacker.example" },
    maxRedirects: 0,
  });
  expect(crossOriginDocument.ok()).toBe(false);

  await approver.page.reload();
  await expect(approver.page.getByRole("button", { name: "Approve" })).toBeVisible();
  await expect(entry).toHaveAttribute("data-status", "pending_approval");

  // The real decision.
  await approver.page.getByRole("button", { name: "Approve" }).click();
  await expect(approver.page.getByTestId("approval-message")).toContainText("You approved this command");
  await expect(entry).toHaveAttribute("data-status", "succeeded", { timeout: 15_000 });

  // Reopened in another browser: the used message, no form.
  const later = await openAsApprover(browser, url);
  await expect(later.page.getByTestId("approval-message")).toContainText("This link has already been used: approved by Priya Patel at");
  await expect(later.page.getByRole("button", { name: "Approve" })).toHaveCount(0);
  // Posting a decision anyway (with a valid CSRF pair) is refused by the DO as already used.
  const laterCsrf = (await later.context.cookies()).find((c) => c.name === "caisey_approval_csrf")!.value;
  const replay = await later.context.request.post(url, { form: { csrf: laterCsrf, decision: "deny" }, maxRedirects: 0 });
  expect(replay.status()).toBe(409);
  await expect(entry).toHaveAttribute("data-status", "succeeded");

  // One character of the secret changed: not valid, no details, no form.
  const secretStart = url.lastIndexOf("~") + 1;
  const flipped = url[secretStart] === "A" ? "B" : "A";
  const tampered = `${url.slice(0, secretStart)}${flipped}${url.slice(secretStart + 1)}`;
  const tamperedResponse = await later.page.goto(tampered);
  expect(tamperedResponse?.status()).toBe(404);
  await expect(later.page.getByTestId("approval-message")).toHaveText("This approval link is not valid.");
  await expect(later.page.getByTestId("approval-command")).toHaveCount(0);
  await expect(later.page.getByRole("button", { name: "Approve" })).toHaveCount(0);
  // Malformed: never reaches a session.
  await later.page.goto("/approve/not-a-link");
  await expect(later.page.getByTestId("approval-message")).toHaveText("This approval link is not valid.");

  await approver.context.close();
  await later.context.close();
});

test("admins edit a client's approval policy; bad lines are named; others cannot change it; the session applies it", async ({ page, browser }) => {
  await signIn(page, "admin", "/clients/cl_cobalt");
  const section = page.getByTestId("approval-policy");
  await expect(section.getByTestId("policy-default-badge")).toHaveText("default");
  // The default a security reviewer would choose: the allow-list, with nothing on it.
  await expect(page.getByLabel("Allow-list (recommended)")).toBeChecked();
  await expect(page.getByLabel("Patterns (one per line)")).toHaveValue(/\\bsudo\\b/);
  await expect(page.getByLabel(/^Approvers/)).toHaveValue("Mia Chen <mia@cobalt.test>");

  // Invalid regex on line 3: 400, the line is named, nothing saved.
  await page.getByLabel("Patterns (one per line)").fill("\\bformat\\b\n\n(unclosed");
  await page.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-error")).toContainText("line 3");
  await page.goto("/clients/cl_cobalt");
  await expect(section.getByTestId("policy-default-badge")).toHaveText("default");

  // A bad approver line is named too.
  await page.getByLabel(/^Approvers/).fill("Mia Chen <mia@cobalt.test>\nno email here");
  await page.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-error")).toContainText("line 2");
  // MSP staff can never approve for the client.
  await page.getByLabel(/^Approvers/).fill("Mia Chen <mia@cobalt.test>\nTom Technician <TOM@northwind.test>");
  await page.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-error")).toContainText("line 2");

  await page.getByLabel("Deny-list (advisory)").check();
  await page.getByLabel("Patterns (one per line)").fill("\\bformat\\b\nRemove-Item\\s+-Recurse");
  await page.getByLabel(/^Approvers/).fill("Mia Chen <mia@cobalt.test>\nOps Desk <ops@cobalt.test>");
  await page.getByLabel("Link lifetime (hours)").fill("4");
  await page.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-saved")).toContainText(/Saved\. \d+ endpoint sessions? updated/);
  await page.goto("/clients/cl_cobalt");
  await expect(section.getByTestId("policy-default-badge")).toHaveCount(0);
  await expect(page.getByLabel("Deny-list (advisory)")).toBeChecked();
  await expect(page.getByLabel("Patterns (one per line)")).toHaveValue("\\bformat\\b\nRemove-Item\\s+-Recurse");
  await expect(page.getByLabel(/^Approvers/)).toHaveValue("Mia Chen <mia@cobalt.test>\nOps Desk <ops@cobalt.test>");
  await expect(page.getByLabel("Link lifetime (hours)")).toHaveValue("4");

  // A technician sees the policy read-only and cannot post a change.
  const techContext = await browser.newContext();
  const tech = await techContext.newPage();
  await signIn(tech, "technician", "/clients/cl_cobalt");
  await expect(tech.getByTestId("policy-mode")).toHaveAttribute("data-mode", "denylist");
  await expect(tech.getByTestId("policy-patterns")).toContainText("Remove-Item");
  await expect(tech.getByTestId("policy-ttl")).toHaveText("4 hours");
  await expect(tech.getByRole("button", { name: "Save approval policy" })).toHaveCount(0);
  const forged = await tech.request.post("/clients/cl_cobalt?_data=routes%2F_console.clients.%24clientId", {
    form: { intent: "save-policy", patterns: "", approvers: "", linkTtlHours: "1" },
  });
  expect(forged.status()).toBe(403);
  await techContext.close();
  await page.goto("/clients/cl_cobalt");
  await expect(page.getByLabel("Link lifetime (hours)")).toHaveValue("4");

  // The runtime's client (Acme). Allow-list: only the exact listed line runs; anything else asks.
  await page.goto("/clients/cl_acme");
  await page.getByLabel("Allow-list (recommended)").check();
  await page.getByLabel(/^Allowed commands/).fill("echo allow-listed-marker");
  await page.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-saved")).toBeVisible();
  await openEndpoint(page, runtime().endpointId);
  const listed = await runCommand(page, "echo allow-listed-marker");
  await expect(listed).toHaveAttribute("data-status", "succeeded", { timeout: 15_000 });
  // Unlisted, and no reason for the client: the session refuses it and says why; nothing is queued.
  await runCommand(page, "echo allow-listed-marker; echo more");
  await expect(page.getByRole("alert").filter({ hasText: "give a reason the client can read" })).toBeVisible();
  await expect(page.getByTestId("command-entry").filter({ hasText: "echo allow-listed-marker; echo more" })).toHaveCount(0);
  const unlisted = await runCommand(page, "echo allow-listed-marker; echo more", { reason: "Check the marker twice" });
  await expect(unlisted).toHaveAttribute("data-status", "pending_approval");
  await expect(unlisted.getByTestId("approval-prompt")).toContainText("allow-list");
  await unlisted.getByTestId("approval-withdraw").click();
  await confirmInDialog(page, "Withdraw request");
  await expect(unlisted).toHaveAttribute("data-status", "cancelled");

  // Deny-list: a policy pattern holds a command without the checkbox.
  await page.goto("/clients/cl_acme");
  await page.getByLabel("Deny-list (advisory)").check();
  await page.getByLabel("Patterns (one per line)").fill("policy-gated-marker");
  await page.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-saved")).toBeVisible();
  await openEndpoint(page, runtime().endpointId);
  await page.getByLabel("Reason").fill("Pattern check"); // a reason for the client, but no checkbox
  const entry = await runCommand(page, "echo policy-gated-marker");
  await expect(entry).toHaveAttribute("data-status", "pending_approval");
  await expect(entry.getByTestId("approval-prompt")).toContainText("matches /policy-gated-marker/");
  await expect(entry.getByTestId("approval-prompt")).toContainText("Priya Patel");
  // Leave Acme on the defaults' behaviour for anything that runs later.
  await page.goto("/clients/cl_acme");
  await page.getByLabel("Patterns (one per line)").fill(
    "\\bRestart-Computer\\b\n\\bStop-Computer\\b\n\\bnet\\s+user\\b\n\\bnet\\s+localgroup\\b\n\\breg\\s+(add|delete)\\b\n\\bshutdown\\b\n\\breboot\\b\n\\bsudo\\b",
  );
  await page.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-saved")).toBeVisible();
});
