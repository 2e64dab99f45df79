// The client page's install instructions: after creating a token, the Linux,
// macOS and Windows one-liners carry it and this console's address, each can be
// copied, and nothing tells anyone to run `npx`. The scripts they name are served.
import { expect, test } from "@playwright/test";
import { E2E_ORIGIN } from "./origin";
import { signIn, waitForHydration } from "./support";

test("a new token comes with copyable one-line installers for Linux, macOS and Windows", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: E2E_ORIGIN });
  await signIn(page, "admin", "/clients/cl_delta");
  await waitForHydration(page);
  await expect(page.locator("body")).not.toContainText("npx");
  await page.getByLabel("Label").fill("Install one-liners");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = (await page.getByTestId("new-token-value").textContent())!.trim();
  expect(token).toMatch(/^cae_/);

  const unix = `curl -fsSL ${E2E_ORIGIN}/install.sh | sudo sh -s -- --token ${token}`;
  await expect(page.getByTestId("install-linux").getByTestId("install-command")).toHaveText(unix);
  await expect(page.getByTestId("install-macos").getByTestId("install-command")).toHaveText(unix);
  await expect(page.getByTestId("install-windows").getByTestId("install-command")).toHaveText(
    `& ([scriptblock]::Create((irm ${E2E_ORIGIN}/install.ps1))) -Token ${token}`,
  );
  await expect(page.getByTestId("uninstall-commands")).toContainText(`${E2E_ORIGIN}/install.sh | sudo sh -s -- --uninstall`);
  await expect(page.locator("body")).not.toContainText("npx");

  await page.getByTestId("install-windows").getByRole("button", { name: "Copy" }).click();
  await expect(page.getByTestId("install-windows").getByRole("button", { name: "Copied" })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toContain(`-Token ${token}`);

  for (const path of ["/install.sh", "/install.ps1"]) {
    const response = await page.request.get(path);
    expect(response.status()).toBe(200);
    expect(await response.text()).toContain(E2E_ORIGIN);
  }
});
