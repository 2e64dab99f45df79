// The runtime's update checks (runtime/src/updater.ts): the hash and the
// Ed25519 signature over version, platform and hash, against the key the build
// embedded; and the update protocol messages.
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseMessage, runtimeBoundMessageSchema, runtimeMessageSchema, type RuntimeUpdateOffer } from "../../protocol/messages";
import { runtimeSignatureMessage } from "../../protocol/runtime-release";
import { DEFAULT_TRIAL_MS, trialWindowMs, UpdateRefused, verifyArtifact } from "../../runtime/src/updater";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const trusted = publicKey.export({ format: "der", type: "spki" }).toString("base64");
const SHA = "ab".repeat(32);

function offer(overrides: Partial<RuntimeUpdateOffer> = {}, signer = privateKey): RuntimeUpdateOffer {
  const base = { version: "1.2.3", platform: "linux-x64" as const, size: 10, sha256: SHA, url: "/runtime/download/linux-x64?version=1.2.3", ...overrides };
  const signature = sign(null, Buffer.from(runtimeSignatureMessage(base.version, base.platform, base.sha256)), signer).toString("base64");
  return { ...base, signature, ...(overrides.signature ? { signature: overrides.signature } : {}) };
}

describe("verifyArtifact", () => {
  it("accepts the release's hash and signature", () => {
    expect(() => verifyArtifact(offer(), SHA, trusted, "linux-x64")).not.toThrow();
  });

  it("refuses a download whose hash differs from the release's", () => {
    expect(() => verifyArtifact(offer(), "cd".repeat(32), trusted, "linux-x64")).toThrow(/SHA-256 mismatch/);
  });

  it("refuses a signature by another key", () => {
    const other = generateKeyPairSync("ed25519").privateKey;
    expect(() => verifyArtifact(offer({}, other), SHA, trusted, "linux-x64")).toThrow(UpdateRefused);
  });

  it("refuses a valid signature replayed for another version (the signature binds version and platform)", () => {
    const good = offer();
    expect(() => verifyArtifact({ ...good, version: "9.9.9" }, SHA, trusted, "linux-x64")).toThrow(/signature does not match/);
  });

  it("refuses an artifact for another platform", () => {
    expect(() => verifyArtifact(offer(), SHA, trusted, "windows-x64")).toThrow(/for linux-x64, this runtime is windows-x64/);
  });

  it("refuses a malformed signature or key without crashing", () => {
    expect(() => verifyArtifact(offer({ signature: "not base64 at all!" }), SHA, trusted, "linux-x64")).toThrow(UpdateRefused);
    expect(() => verifyArtifact(offer(), SHA, "AAAA", "linux-x64")).toThrow(/could not be checked/);
  });
});

describe("trial window", () => {
  it("is 60 s unless CAISEY_UPDATE_TRIAL_SECONDS sets 1 to 600 s", () => {
    expect(trialWindowMs({})).toBe(DEFAULT_TRIAL_MS);
    expect(DEFAULT_TRIAL_MS).toBe(60_000);
    expect(trialWindowMs({ CAISEY_UPDATE_TRIAL_SECONDS: "5" })).toBe(5_000);
    expect(trialWindowMs({ CAISEY_UPDATE_TRIAL_SECONDS: "0" })).toBe(DEFAULT_TRIAL_MS);
    expect(trialWindowMs({ CAISEY_UPDATE_TRIAL_SECONDS: "nope" })).toBe(DEFAULT_TRIAL_MS);
  });
});

describe("update messages", () => {
  it("validate offers and progress reports", () => {
    expect(parseMessage(runtimeBoundMessageSchema, { type: "update", offer: offer() }).ok).toBe(true);
    expect(parseMessage(runtimeBoundMessageSchema, { type: "update", offer: { ...offer(), sha256: "xyz" } }).ok).toBe(false);
    expect(parseMessage(runtimeBoundMessageSchema, { type: "update", offer: { ...offer(), size: 2 ** 40 } }).ok).toBe(false);
    expect(parseMessage(runtimeMessageSchema, { type: "update_status", status: { version: "1.2.3", phase: "trial" } })).toMatchObject({ ok: true, value: { status: { detail: "" } } });
    expect(parseMessage(runtimeMessageSchema, { type: "update_status", status: { version: "1.2.3", phase: "installed" } }).ok).toBe(false);
    expect(parseMessage(runtimeMessageSchema, { type: "hello", protocol: 1, runtimeVersion: "1", hostname: "h", os: "linux", clock: 1, platform: "solaris-sparc" }).ok).toBe(false);
  });
});
