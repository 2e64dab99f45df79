// Issue 15: "removed members lose access at once". A NOC member watching an endpoint is removed in Clerk; the
// verified webhook (signed with the stack's own CLERK_WEBHOOK_SIGNING_SECRET, as Clerk signs it) closes their open
// socket, the page says why and stops reconnecting, and a reload with the token they still hold is refused.
// The member is re-invited at the end (a newer "created" event), so later specs find the seed unchanged.
import { expect, test } from "@playwright/test";
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";
import { parseDotenv } from "../scripts/dev-keys.mjs";
import { E2E_ORIGIN } from "./origin";
import { signIn } from "./support";

const NORTHWIND = { id: "org_demo_northwind", name: "Northwind MSP", slug: "northwind" };
const NORA = { user_id: "user_demo_noc", first_name: "Nora", last_name: "NOC", identifier: "nora@northwind.test" };
const ENDPOINT = "ep_bay_03";

async function sendClerkEvent(type: "organizationMembership.deleted" | "organizationMembership.created", at: number) {
  const secret = parseDotenv(readFileSync(".dev.vars", "utf8")).CLERK_WEBHOOK_SIGNING_SECRET;
  if (!secret) throw new Error("the stack's .dev.vars has no CLERK_WEBHOOK_SIGNING_SECRET (scripts/dev-keys.mjs writes one)");
  const body = JSON.stringify({
    type,
    object: "event",
    timestamp: at,
    data: { id: `orgmem_${at}`, role: "org:noc", created_at: at, updated_at: at, organization: NORTHWIND, public_user_data: NORA },
  });
  const id = `msg_e2e_${at}`;
  const response = await fetch(`${E2E_ORIGIN}/webhooks/clerk`, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "svix-id": id,
      "svix-timestamp": String(Math.floor(at / 1000)),
      "svix-signature": new Webhook(secret).sign(id, new Date(at), body),
    },
  });
  expect(response.status, await response.clone().text()).toBe(200);
}

test("a member removed in Clerk loses the page they are watching at once, and cannot reload it", async ({ page }) => {
  await signIn(page, "noc", `/endpoints/${ENDPOINT}`);
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
  try {
    await sendClerkEvent("organizationMembership.deleted", Date.now());
    await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "access-removed");
    await expect(page.getByTestId("socket-status")).toContainText("your access to this organisation was removed");

    const reload = await page.reload();
    expect(reload?.status()).toBe(403);
    await expect(page.getByText("Your access to this organisation was removed")).toBeVisible();
  } finally {
    await sendClerkEvent("organizationMembership.created", Date.now() + 1);
  }
  await signIn(page, "noc", `/endpoints/${ENDPOINT}`);
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
});
