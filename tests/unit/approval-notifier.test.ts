import { afterEach, describe, expect, it, vi } from "vitest";
import { loggingNotifier, newApprovalSecret, redactedApprovalUrl } from "../../workers/session/src/approvals";

describe("approval notifier for local use", () => {
  afterEach(() => vi.restoreAllMocks());

  it("logs who would be asked and what, but never the link's secret", async () => {
    const { token } = newApprovalSecret("ep_demo_acme_01");
    const secret = token.split("~")[1]!;
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    await loggingNotifier.requestApproval({
      approvers: [{ name: "Priya Patel", email: "priya@acme.test" }],
      url: `https://console.example/approve/${token}`,
      command: "Restart-Computer",
      requestedBy: "Tess Tech",
      hostname: "acme-line1-01",
      clientName: "Acme Manufacturing",
      expiresAt: Date.UTC(2026, 10, 24),
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("Priya Patel <priya@acme.test>");
    expect(lines[0]).toContain("Restart-Computer");
    expect(lines[0]).toContain("https://console.example/approve/ep_demo_acme_01~…");
    expect(lines[0]).not.toContain(secret);
  });

  it("withholds a link it cannot recognise entirely", () => {
    expect(redactedApprovalUrl("https://console.example/approve/opaque")).toBe("(link withheld)");
  });
});
