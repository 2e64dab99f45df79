// The role matrix (protocol/permissions.ts, docs/roles.md), row by row, against the session that enforces it.
import { describe, expect, it } from "vitest";
import { ROLE_PERMISSIONS, type MemberRole } from "../../protocol/permissions";
import { connectViewer, freshEndpoint, sessionAudit, type TestSocket, viewerIdentity } from "./socket";

const CAN_RUN: Record<MemberRole, boolean> = { admin: true, technician: true, noc: false };
const ROLES: MemberRole[] = ["admin", "technician", "noc"];

async function member(endpointId: string, role: MemberRole): Promise<TestSocket> {
  return connectViewer(endpointId, viewerIdentity(endpointId, { userId: `user_${role}`, userName: `A ${role}`, role, canRun: CAN_RUN[role] }));
}

async function answer(viewer: TestSocket, requestId: string): Promise<any> {
  return viewer.waitFor((m) => (m.type === "error" && m.requestId === requestId) || (m.type === "events" && m.events.some((e: any) => e.kind === "command.queued" && e.requestId.startsWith(requestId))));
}

describe("the role matrix, enforced by the session", () => {
  it("the matrix states what each role may do", () => {
    expect(ROLE_PERMISSIONS.noc).toEqual(["transcript.watch", "sequence.queue", "sequence.cancel", "library.edit", "review.read"]);
    expect(ROLE_PERMISSIONS.technician).not.toContain("tokens.manage");
    expect(ROLE_PERMISSIONS.admin).toContain("tokens.manage");
  });

  for (const role of ROLES) {
    it(`${role}: command.run ${ROLE_PERMISSIONS[role].includes("command.run") ? "allowed" : "refused and audited"}`, async () => {
      const endpointId = freshEndpoint("ep_roles");
      const viewer = await member(endpointId, role);
      const requestId = crypto.randomUUID();
      viewer.send({ type: "run", requestId, text: "whoami", shell: "sh" });
      const reply = await answer(viewer, requestId);
      if (ROLE_PERMISSIONS[role].includes("command.run")) {
        expect(reply.type).toBe("events");
      } else {
        expect(reply).toMatchObject({ type: "error", code: "forbidden", requestId });
        expect(viewer.events().filter((e) => e.kind === "command.queued")).toEqual([]);
        const refused = (await sessionAudit(endpointId)).filter((e) => e.kind === "permission.refused");
        expect(refused).toHaveLength(1);
        expect(JSON.parse(refused[0].detail)).toMatchObject({ permission: "command.run", role, requestId });
        expect(refused[0].actorId).toBe(`user_${role}`);
      }
    });

    it(`${role}: sequence.queue and sequence.cancel allowed; command.cancel of a live command ${ROLE_PERMISSIONS[role].includes("command.cancel") ? "allowed" : "refused"}`, async () => {
      const endpointId = freshEndpoint("ep_roles");
      const viewer = await member(endpointId, role);
      const requestId = crypto.randomUUID();
      viewer.send({ type: "run_sequence", requestId, name: "Disk check", steps: [{ text: "df -h" }, { text: "uptime" }] });
      const queued = await answer(viewer, requestId);
      expect(queued.type).toBe("events");
      await viewer.waitFor(() => viewer.events().filter((e) => e.kind === "command.queued").length === 2);
      const [first] = viewer.events().filter((e) => e.kind === "command.queued");
      viewer.send({ type: "cancel", commandId: first.commandId });
      const cancelled = await viewer.waitFor(() => viewer.events().some((e) => e.kind === "command.finished" && e.commandId === first.commandId));
      expect(cancelled).toBeTruthy();
      expect(viewer.events().find((e) => e.kind === "command.finished" && e.commandId === first.commandId).status).toBe("cancelled");

      // A live single command queued by a technician on the same endpoint.
      const tech = await member(endpointId, "technician");
      const liveId = crypto.randomUUID();
      tech.send({ type: "run", requestId: liveId, text: "sleep 600", shell: "sh" });
      await answer(tech, liveId);
      const live = tech.events().find((e) => e.kind === "command.queued" && e.requestId === liveId);
      const before = viewer.messages.length;
      viewer.send({ type: "cancel", commandId: live.commandId });
      if (ROLE_PERMISSIONS[role].includes("command.cancel")) {
        await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.commandId === live.commandId), 5_000, before);
      } else {
        await viewer.waitFor((m) => m.type === "error" && m.code === "forbidden", 5_000, before);
        expect(tech.events().some((e) => e.kind === "command.finished" && e.commandId === live.commandId)).toBe(false);
        const refused = (await sessionAudit(endpointId)).filter((e) => e.kind === "permission.refused");
        expect(refused.map((e) => [JSON.parse(e.detail).permission, e.commandId])).toEqual([["command.cancel", live.commandId]]);
      }
    });

    it(`${role}: sequence.resume ${ROLE_PERMISSIONS[role].includes("sequence.resume") ? "allowed" : "refused"}; approval.reissue ${ROLE_PERMISSIONS[role].includes("approval.reissue") ? "allowed" : "refused"}`, async () => {
      const endpointId = freshEndpoint("ep_roles");
      const viewer = await member(endpointId, role);
      viewer.send({ type: "sequence_action", sequenceId: "seq_unknown", action: "skip" });
      const resumed = await viewer.waitFor((m) => m.type === "error");
      // Allowed roles get past the permission check to "no such sequence".
      expect(resumed.code).toBe(ROLE_PERMISSIONS[role].includes("sequence.resume") ? "not_found" : "forbidden");
      const before = viewer.messages.length;
      viewer.send({ type: "reissue_approval", commandId: "cmd_unknown" });
      const reissued = await viewer.waitFor((m) => m.type === "error", 5_000, before);
      expect(reissued.code).toBe(ROLE_PERMISSIONS[role].includes("approval.reissue") ? "conflict" : "forbidden");
    });
  }
});
