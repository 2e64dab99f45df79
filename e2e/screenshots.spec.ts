// Regenerates docs/screenshots/ (linked from the README): the endpoint, review
// and client pages at desktop and phone width, from the real local stack.
import { expect, test } from "@playwright/test";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { runCommand, signIn } from "./support";

// Only when asked (npm run screenshots): an ordinary test run must not rewrite committed files.
test.skip(!process.env.CAISEY_SCREENSHOTS, "set CAISEY_SCREENSHOTS=1 (npm run screenshots) to regenerate docs/screenshots/");

const runtime = runtimeForSpec("screenshots");

const WIDTHS = [
  { name: "desktop", width: 1280, height: 900 },
  { name: "phone", width: 390, height: 844 },
];

for (const size of WIDTHS) {
  test(`screenshots at ${size.name} width`, async ({ page }) => {
    await page.setViewportSize({ width: size.width, height: size.height });
    await signIn(page, "technician");
    await openEndpoint(page, runtime().endpointId);
    for (const text of ["hostname", "uname -sr", "echo ready"]) await expect(await runCommand(page, text)).toHaveAttribute("data-status", "succeeded");
    await page.getByRole("button", { name: /Latency of the last/ }).click();
    await expect(page.getByTestId("latency-chart")).toHaveAttribute("data-rendered", "true");
    await page.screenshot({ path: `docs/screenshots/endpoint-${size.name}.png`, fullPage: true });
    await page.goto("/review");
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    await page.screenshot({ path: `docs/screenshots/review-${size.name}.png`, fullPage: true });
    await page.goto("/clients/cl_acme");
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    await page.screenshot({ path: `docs/screenshots/client-${size.name}.png`, fullPage: true });
  });
}
