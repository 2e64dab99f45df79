import { describe, expect, it } from "vitest";
import { parseMessage, runtimeMessageSchema, viewerMessageSchema } from "../../protocol/messages";

describe("wire protocol validation", () => {
  it("accepts a well-formed run request and fills defaults", () => {
    const parsed = parseMessage(viewerMessageSchema, JSON.stringify({ type: "run", requestId: "r1", text: " echo hi " }));
    expect(parsed).toEqual({ ok: true, value: { type: "run", requestId: "r1", text: "echo hi", shell: "default", privileged: false, reason: "", alongside: false, notBefore: null, maintenanceWindow: false } });
  });

  it("names the offending field of a bad message", () => {
    const parsed = parseMessage(viewerMessageSchema, { type: "run", requestId: "r1", text: "x".repeat(9000) });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(/^text:/);
  });

  it("rejects non-JSON, binary and unknown message types", () => {
    expect(parseMessage(viewerMessageSchema, "{nope").ok).toBe(false);
    expect(parseMessage(viewerMessageSchema, new ArrayBuffer(4)).ok).toBe(false);
    expect(parseMessage(runtimeMessageSchema, { type: "shell", cmd: "rm -rf /" }).ok).toBe(false);
  });
});
