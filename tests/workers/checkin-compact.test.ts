// Issue 12 item 7 / ADR 0027: an idle check-in repeats all day on metered links,
// so a runtime that says it takes compact answers gets a 204 without a body
// when there is nothing to do, and otherwise only what is not a default. Every
// check-in guarantee stays: acks, dispatch, the re-offer of unreported work and
// the server time the runtime's clock samples need.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { handleEdgeRequest } from "~/edge/router.server";
import { sha256Hex } from "~/lib/crypto.server";
import { checkinResponseSchema, DEFAULT_CHECKIN_INTERVAL_MS } from "../../protocol/messages";
import { DEMO_ORG } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { checkin, connectViewer, freshEndpoint, result, sessionSql, viewerIdentity } from "./socket";

beforeAll(seedDemo);

async function queueOne(endpointId: string, text: string): Promise<void> {
  const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
  viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "sh", timeoutMs: 5_000 });
  await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued" && e.text === text));
  viewer.close();
}

/** A check-in after the first of its process: no self-description, so the session's remembered setting decides. */
const later = { runtimeVersion: undefined, hostname: undefined, os: undefined };

describe("compact check-in answers", () => {
  it("answers an idle check-in with 204 and no body, and gives the server time only when asked", async () => {
    const endpointId = freshEndpoint("ep_compact_idle");
    const first = await checkin(endpointId, { compactAnswers: true });
    expect(first.status).toBe(204);
    expect(first.body).toBe("");
    const idle = await checkin(endpointId, later);
    expect(idle.status).toBe(204);

    const timed = await checkin(endpointId, { ...later, wantTime: true });
    expect(timed.status).toBe(200);
    expect(Object.keys(timed.body)).toEqual(["serverTime"]);
    expect(Math.abs(timed.body.serverTime - Date.now())).toBeLessThan(60_000);
    // Both forms parse to the same full answer on the runtime.
    expect(checkinResponseSchema.parse({})).toEqual({ acks: [], dispatch: [], cancel: [], nextCheckinMs: DEFAULT_CHECKIN_INTERVAL_MS });
  });

  it("carries dispatch, the re-offer and acks with nothing else but the time", async () => {
    const endpointId = freshEndpoint("ep_compact_work");
    await checkin(endpointId, { compactAnswers: true });
    await queueOne(endpointId, "echo compact");

    const offered = await checkin(endpointId, later);
    expect(offered.status).toBe(200);
    expect(Object.keys(offered.body).sort()).toEqual(["dispatch", "serverTime"]);
    const commandId: string = offered.body.dispatch[0].commandId;
    expect(checkinResponseSchema.parse(offered.body).dispatch.map((d) => d.text)).toEqual(["echo compact"]);

    // Within the interval the runtime may still be working on it: nothing to say.
    expect((await checkin(endpointId, later)).status).toBe(204);
    // The answer was lost: an interval later it is offered again, under the same id.
    await sessionSql(endpointId, "UPDATE commands SET dispatched_at = ? WHERE id = ?", Date.now() - DEFAULT_CHECKIN_INTERVAL_MS - 1_000, commandId);
    const again = await checkin(endpointId, later);
    expect(again.body.dispatch.map((d: any) => d.commandId)).toEqual([commandId]);

    const reported = await checkin(endpointId, { ...later, results: [result(commandId, "succeeded", "compact\n")] });
    expect(Object.keys(reported.body).sort()).toEqual(["acks", "serverTime"]);
    expect(reported.body.acks).toEqual([commandId]);
    expect((await checkin(endpointId, later)).status).toBe(204);
  });

  it("gives full answers to a runtime that did not ask for compact ones, and again after a rollback to one", async () => {
    const endpointId = freshEndpoint("ep_compact_rollback");
    const legacy = await checkin(endpointId, {});
    expect(legacy.status).toBe(200);
    expect(Object.keys(legacy.body).sort()).toEqual(["acks", "cancel", "dispatch", "nextCheckinMs", "serverTime"]);

    await checkin(endpointId, { compactAnswers: true });
    expect((await checkin(endpointId, later)).status).toBe(204);
    // An older runtime started (an update rolled back): it describes itself without the flag.
    const rolledBack = await checkin(endpointId, {});
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body).toMatchObject({ acks: [], dispatch: [], cancel: [], nextCheckinMs: DEFAULT_CHECKIN_INTERVAL_MS });
    expect((await checkin(endpointId, later)).body).toMatchObject({ acks: [], dispatch: [], cancel: [] });
  });

  it("passes through the edge as a bare 204, for a request without a content-type", async () => {
    const endpointId = freshEndpoint("ep_compact_edge");
    const credential = "c".repeat(40) + Date.now();
    await env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os, credential_hash) VALUES (?, ?, 'cl_acme', ?, 'linux', ?)")
      .bind(endpointId, DEMO_ORG.id, `host-${endpointId}`, await sha256Hex(credential))
      .run();
    const post = (body: Record<string, unknown>) =>
      handleEdgeRequest(
        new Request("http://127.0.0.1:8788/agent/checkin", { method: "POST", headers: { authorization: `Bearer ${credential}` }, body: JSON.stringify({ protocol: 1, clock: Date.now(), ...body }) }),
        env,
      );
    const first = (await post({ runtimeVersion: "test", hostname: "h", os: "linux", compactAnswers: true }))!;
    expect(first.status).toBe(204);
    expect(first.headers.get("content-type")).toBeNull();
    expect(await first.text()).toBe("");
    expect((await post({}))!.status).toBe(204);
  });
});
