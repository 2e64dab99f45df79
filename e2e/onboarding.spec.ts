// A brand-new organisation's first admin (offline mode minting the claims Clerk would): no seed data for them,
// the tenant and the member are provisioned on the first page, and they see only their own, empty, tenant.
import { expect, test } from "@playwright/test";
import { E2E_ORIGIN } from "./origin";
import { RuntimeProcess } from "./runtime";
import { runCommand, signInAsNewOrganisation, waitForHydration } from "./support";

test("the first admin of a new organisation is provisioned on first sign-in and starts from an empty tenant", async ({ page }) => {
  const orgName = `Fresh MSP ${Date.now().toString(36)}`;
  await signInAsNewOrganisation(page, orgName, "Ada Fresh", "ada@fresh-msp.test");
  // Nothing of the demo tenants is visible.
  await expect(page.getByText("Acme Manufacturing")).toHaveCount(0);
  await page.goto("/endpoints");
  await expect(page.getByText("acme-", { exact: false })).toHaveCount(0);
});

// Issue 15's "done when": a brand-new organisation's admin, with no seed data for their tenant, gets from an empty
// console to a command's output on a real runtime through the UI alone (the runtime is the real CLI process).
test("a new organisation's admin creates a client and a token, enrolls a real runtime and runs a command on it", async ({ page }) => {
  test.setTimeout(240_000);
  const suffix = Date.now().toString(36);
  const orgName = `Onboarding MSP ${suffix}`;
  await signInAsNewOrganisation(page, orgName, "Olga Onboard", `olga@onboarding-${suffix}.test`);
  await waitForHydration(page);
  await expect(page.getByTestId("client-row")).toHaveCount(0);

  // 1. A client, through the form an empty tenant opens with.
  const newClient = page.getByTestId("new-client");
  await newClient.getByLabel("Client name").fill(`Harbour Clinic ${suffix}`);
  await newClient.getByLabel("Time zone").fill("europe/lisbon");
  await newClient.getByLabel("Contact name").fill("Helena Harbour");
  await newClient.getByLabel("Contact email").fill(`helena@harbour-${suffix}.test`);
  await newClient.getByRole("button", { name: "Create client" }).click();
  await expect(page.getByTestId("client-name")).toHaveText(`Harbour Clinic ${suffix}`);
  await expect(page.getByTestId("client-time-zone")).toHaveText("Europe/Lisbon");
  await waitForHydration(page);

  // 2. The client's consent policy: the one diagnostic this test runs is allowed without asking.
  const command = `echo onboarded-${suffix}`;
  const policy = page.getByTestId("approval-policy");
  await policy.getByLabel("Allow-list (recommended)").check();
  await policy.getByLabel("Allowed commands").fill(command);
  await policy.getByRole("button", { name: "Save approval policy" }).click();
  await expect(page.getByTestId("policy-saved")).toBeVisible();

  // 3. An enrollment token on the client page, redeemed by a real runtime process.
  await page.getByLabel("Label").fill("First endpoint");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = (await page.getByTestId("new-token-value").textContent())!.trim();
  expect(token).toMatch(/^cae_/);
  const runtime = new RuntimeProcess(E2E_ORIGIN, `onboarded-${suffix}`);
  try {
    const endpointId = runtime.enroll(token);
    runtime.start();

    // 4. The endpoint appears, online, in the new tenant's list.
    await page.goto("/endpoints");
    const row = page.getByTestId("endpoint-row").filter({ hasText: `onboarded-${suffix}` });
    await expect(async () => {
      await page.reload();
      await expect(row.getByTestId("online-badge")).toHaveAttribute("data-online", "true", { timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
    await expect(page.getByTestId("endpoint-total")).toHaveText("1 endpoint");

    // 5. A command on it, and its output in the transcript.
    await row.getByRole("link", { name: `onboarded-${suffix}` }).click();
    await expect(page).toHaveURL(new RegExp(`/endpoints/${endpointId}$`));
    await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
    await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", "true", { timeout: 20_000 });
    await waitForHydration(page);
    const entry = await runCommand(page, command);
    await expect(entry.getByTestId("command-output")).toHaveText(`onboarded-${suffix}\n`, { timeout: 20_000 });
  } finally {
    await runtime.dispose();
  }
});
