// The endpoint page says how the runtime is connected (live socket, HTTPS check-in with the next expected time,
// or offline since when), and the header's badge follows the runtime live, without a reload.
import { expect, test } from "@playwright/test";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { signIn } from "./support";

const runtime = runtimeForSpec("transport");

test("the transport indicator and the header badge follow the runtime live", async ({ page }) => {
  const endpointId = runtime().endpointId;
  await signIn(page, "technician", `/endpoints/${endpointId}`);
  await openEndpoint(page, endpointId);
  const state = page.getByTestId("runtime-state");
  const badge = page.getByRole("heading", { level: 1 }).locator("..").getByTestId("online-badge");
  await expect(state).toHaveAttribute("data-transport", "websocket");
  await expect(state).toHaveText("runtime connected · live (WebSocket)");
  await expect(badge).toHaveAttribute("data-online", "true");

  // The runtime stops: the page says so, header included, without a reload.
  await runtime().stop();
  await expect(state).toHaveAttribute("data-transport", "offline", { timeout: 15_000 });
  await expect(state).toHaveText(/^runtime offline since \d\d:\d\d:\d\d UTC \(\d+s ago\)$/);
  await expect(badge).toHaveAttribute("data-online", "false");
  await expect(badge).toHaveText("offline");

  // Back on HTTPS check-in: the interval the session asked for and when the next check-in is due.
  runtime().start(["--transport", "checkin", "--checkin-interval", "1"]);
  await expect(state).toHaveAttribute("data-transport", "checkin", { timeout: 15_000 });
  await expect(state).toHaveText(/^runtime checking in over HTTPS every 30 s · next expected \d\d:\d\d:\d\d UTC$/);
  await expect(badge).toHaveAttribute("data-online", "true");
});
