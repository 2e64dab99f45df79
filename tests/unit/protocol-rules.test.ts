// The protocol's rules that both the console and the session apply: which
// commands need the client's consent, approval links, who may do what, where a
// session is placed, and how runtime versions compare and are signed. The
// workers and e2e layers use them through real requests; here each rule is
// pinned down on its own, so a change to one is noticed where it is made.
import { describe, expect, it } from "vitest";
import {
  approvalPolicySchema,
  approvalRule,
  DEFAULT_APPROVAL_MODE,
  formatApprover,
  isValidPattern,
  maskEmail,
  matchingPattern,
  parseApprovalToken,
  sessionPolicySchema,
} from "../../protocol/approvals";
import { describePlacement, LOCATION_HINT_LABELS, LOCATION_HINTS } from "../../protocol/location-hints";
import { PERMISSIONS, roleMay, rolesWith, type Permission } from "../../protocol/permissions";
import { edgeOriginOf, locationHintFor } from "../../protocol/placement";
import { compareRuntimeVersions, runtimeManifestSchema, runtimeObjectKeys, runtimeSignatureMessage, runtimeVersionSchema } from "../../protocol/runtime-release";

describe("which commands need the client's consent", () => {
  it("allow-list: only the exact listed lines (surrounding spaces aside) run without consent", () => {
    const policy = { mode: "allowlist" as const, allowedCommands: ["hostname", "ipconfig /all"], patterns: ["\\breboot\\b"] };
    expect(approvalRule(policy, "hostname")).toBeNull();
    expect(approvalRule(policy, "  ipconfig /all  ")).toBeNull();
    expect(approvalRule(policy, "hostname; reboot")).toBe("not on the client's allow-list");
    expect(approvalRule(policy, "HOSTNAME")).toBe("not on the client's allow-list");
    expect(approvalRule(policy, "ipconfig  /all")).toBe("not on the client's allow-list"); // no rewriting of the line
  });

  it("deny-list: only a command matching a pattern (case-insensitive) asks, and says which", () => {
    const policy = { mode: "denylist" as const, allowedCommands: [], patterns: ["\\bshutdown\\b", "\\bnet\\s+user\\b"] };
    expect(approvalRule(policy, "uptime")).toBeNull();
    expect(approvalRule(policy, "SHUTDOWN /r")).toBe("matches /\\bshutdown\\b/");
    expect(approvalRule(policy, "net   user bob /add")).toBe("matches /\\bnet\\s+user\\b/");
    expect(matchingPattern("reboot", [])).toBeNull();
    // An invalid stored pattern is skipped, not thrown; the next one still applies.
    expect(matchingPattern("reboot now", ["(", "reboot"])).toBe("reboot");
    expect(isValidPattern("(")).toBe(false);
    expect(isValidPattern("\\bsudo\\b")).toBe(true);
  });

  it("validates a policy: defaults to the allow-list, refuses invalid patterns and out-of-range link lifetimes", () => {
    const base = { patterns: [], approvers: [{ name: " Priya ", email: "priya@client.test" }], linkTtlHours: 24 };
    const parsed = approvalPolicySchema.parse(base);
    expect(parsed).toMatchObject({ mode: DEFAULT_APPROVAL_MODE, allowedCommands: [], approvers: [{ name: "Priya", email: "priya@client.test" }] });
    expect(DEFAULT_APPROVAL_MODE).toBe("allowlist");
    expect(approvalPolicySchema.safeParse({ ...base, patterns: ["("] }).success).toBe(false);
    expect(approvalPolicySchema.safeParse({ ...base, linkTtlHours: 0 }).success).toBe(false);
    expect(approvalPolicySchema.safeParse({ ...base, linkTtlHours: 24 * 7 + 1 }).success).toBe(false);
    expect(approvalPolicySchema.safeParse({ ...base, approvers: [{ name: "", email: "x@y.test" }] }).success).toBe(false);
    expect(approvalPolicySchema.safeParse({ ...base, allowedCommands: ["x".repeat(501)] }).success).toBe(false);
    const copy = sessionPolicySchema.parse({ ...base, version: 0, clientName: "Acme", hostname: "h", timeZone: "UTC" });
    expect(copy).toMatchObject({ maintenanceWindows: [], retentionDays: 90 });
  });

  it("addresses and masks approvers", () => {
    expect(formatApprover({ name: "Priya Patel", email: "priya@client.test" })).toBe("Priya Patel <priya@client.test>");
    expect(maskEmail("priya@client.test")).toBe("p•••@client.test");
    expect(maskEmail("a.b@c@acme.test")).toBe("a•••@acme.test");
    expect(maskEmail("@acme.test")).toBe("•••");
    expect(maskEmail("no-at-sign")).toBe("•••");
  });
});

describe("approval links", () => {
  const secret = "s".repeat(32);

  it("reads <endpointId>~<secret>, splitting at the last separator", () => {
    expect(parseApprovalToken(`ep_acme-01~${secret}`)).toEqual({ endpointId: "ep_acme-01", secret });
    expect(parseApprovalToken(`ep~${"A9_-".repeat(32)}`)).toEqual({ endpointId: "ep", secret: "A9_-".repeat(32) });
  });

  it("refuses anything else: no endpoint, a short or long or foreign-charactered secret, a bad endpoint id", () => {
    for (const token of ["", secret, `~${secret}`, `ep~${"s".repeat(31)}`, `ep~${"s".repeat(129)}`, `ep~${"s".repeat(31)}!`, `ep/1~${secret}`, `${"e".repeat(129)}~${secret}`, `ep~${secret}~`]) {
      expect(parseApprovalToken(token), token).toBeNull();
    }
  });
});

describe("who may do what", () => {
  it("gives admins everything, technicians no policy, lifecycle, tokens or re-issue, and the NOC no live commands", () => {
    const all = Object.keys(PERMISSIONS) as Permission[];
    expect(all.filter((p) => roleMay("admin", p))).toEqual(all);
    expect(all.filter((p) => !roleMay("technician", p))).toEqual(["approval.reissue", "endpoint.lifecycle", "policy.edit", "tokens.manage"]);
    expect(all.filter((p) => roleMay("noc", p))).toEqual(["transcript.watch", "sequence.queue", "sequence.cancel", "library.edit", "review.read"]);
  });

  it("grants nothing without a role, and lists the roles holding a permission", () => {
    expect(roleMay(null, "transcript.watch")).toBe(false);
    expect(roleMay(undefined, "review.read")).toBe(false);
    expect(rolesWith("command.run")).toEqual(["admin", "technician"]);
    expect(rolesWith("sequence.queue")).toEqual(["admin", "technician", "noc"]);
    expect(rolesWith("policy.edit")).toEqual(["admin"]);
  });
});

describe("session placement", () => {
  it("reads what it needs from request.cf and tolerates its absence or odd values", () => {
    expect(edgeOriginOf({ colo: "SYD", country: "AU", continent: "OC", longitude: "151.2" })).toEqual({ colo: "SYD", country: "AU", continent: "OC", longitude: 151.2 });
    expect(edgeOriginOf({ colo: "DFW", country: "US", continent: "NA", longitude: -96.8 })).toMatchObject({ longitude: -96.8 });
    expect(edgeOriginOf(undefined)).toEqual({ colo: null, country: null, continent: null, longitude: null });
    expect(edgeOriginOf({ colo: "", country: "TOOLONG", continent: 5, longitude: "east" })).toEqual({ colo: null, country: null, continent: null, longitude: null });
    expect(edgeOriginOf({ colo: "ABCDEFGH", country: "ABCD", continent: "ABCD" })).toMatchObject({ colo: "ABCDEFGH", country: "ABCD", continent: "ABCD" });
    expect(edgeOriginOf({ colo: "ABCDEFGHI", country: "ABCDE", continent: "ABCDE" })).toMatchObject({ colo: null, country: null, continent: null });
  });

  it("picks the hint nearest the runtime's first contact", () => {
    const at = (continent: string | null, country: string | null = null, longitude: number | null = null) => locationHintFor({ colo: null, continent, country, longitude });
    expect(at("NA", "US", -122.4)).toBe("wnam"); // San Francisco
    expect(at("NA", "US", -96.8)).toBe("enam"); // Dallas
    expect(at("NA", "US", -100)).toBe("enam"); // on the line: east
    expect(at("NA", "US", null)).toBe("enam");
    expect(at("SA", "BR")).toBe("sam");
    expect(at("EU", "DE")).toBe("weur");
    expect(at("EU", "PL")).toBe("eeur");
    expect(at("eu", "pl")).toBe("eeur");
    expect(at("EU", null)).toBe("weur");
    expect(at("AS", "JP")).toBe("apac");
    expect(at("AS", "AE")).toBe("me"); // the country decides before the continent
    expect(at("AF", "EG")).toBe("me");
    expect(at("AF", "ZA")).toBe("afr");
    expect(at("OC", "AU")).toBe("oc");
    expect(at("AN")).toBeNull();
    expect(at(null)).toBeNull();
  });

  it("describes a placement for the endpoint page, and names every hint", () => {
    expect(describePlacement({ placedAt: null, locationHint: "oc", colo: "SYD", jurisdiction: null })).toBe(
      "Not placed yet: the session is created near the endpoint at its runtime's first contact",
    );
    expect(describePlacement({ placedAt: 1, locationHint: "oc", colo: "SYD", jurisdiction: "eu" })).toBe("Oceania (oc), runtime via SYD, EU jurisdiction");
    expect(describePlacement({ placedAt: 1, locationHint: null, colo: null, jurisdiction: null })).toBe("Near the runtime's first contact (no hint)");
    expect(LOCATION_HINTS.map((hint) => LOCATION_HINT_LABELS[hint])).toEqual([
      "Western North America",
      "Eastern North America",
      "South America",
      "Western Europe",
      "Eastern Europe",
      "Asia-Pacific",
      "Oceania",
      "Africa",
      "Middle East",
    ]);
  });
});

describe("runtime releases", () => {
  it("orders versions numerically, a pre-release before its release", () => {
    expect(compareRuntimeVersions("1.2.3", "1.2.3")).toBe(0);
    expect(compareRuntimeVersions("1.10.0", "1.9.9")).toBe(1);
    expect(compareRuntimeVersions("1.9.9", "1.10.0")).toBe(-1);
    expect(compareRuntimeVersions("2.0.0", "1.99.99")).toBe(1);
    expect(compareRuntimeVersions("1.2.10", "1.2.9")).toBe(1);
    expect(compareRuntimeVersions("1.2.3-rc.1", "1.2.3")).toBe(-1);
    expect(compareRuntimeVersions("1.2.3", "1.2.3-rc.1")).toBe(1);
    expect(compareRuntimeVersions("1.2.3-rc.1", "1.2.3-rc.2")).toBe(-1);
    expect(compareRuntimeVersions("1.2.3-rc.2", "1.2.3-rc.1")).toBe(1);
    expect(compareRuntimeVersions("1.2.3-rc.1", "1.2.3-rc.1")).toBe(0);
    expect(compareRuntimeVersions("1.2", "1.2.0")).toBe(0);
  });

  it("signs version, platform and digest together, and names the objects in R2", () => {
    expect(runtimeSignatureMessage("1.2.3", "linux-x64", "ab")).toBe("caisey-runtime\n1.2.3\nlinux-x64\nab\n");
    expect(runtimeObjectKeys.manifest("1.2.3")).toBe("runtime/1.2.3/manifest.json");
    expect(runtimeObjectKeys.artifact("1.2.3", "windows-x64", "caisey-runtime.exe")).toBe("runtime/1.2.3/windows-x64/caisey-runtime.exe");
    expect(runtimeObjectKeys.latest).toBe("runtime/latest.json");
  });

  it("accepts only versions like 1.2.3 and manifests with at least one well-formed artifact", () => {
    for (const good of ["1.2.3", "10.0.0-rc.1", "0.0.1-beta-2"]) expect(runtimeVersionSchema.safeParse(good).success, good).toBe(true);
    for (const bad of ["1.2", "v1.2.3", "1.2.3-", "1.2.3 ", "1.2.3-rc/1"]) expect(runtimeVersionSchema.safeParse(bad).success, bad).toBe(false);
    const artifact = { platform: "linux-x64", file: "caisey-runtime", size: 10, sha256: "a".repeat(64), signature: "sig" };
    const manifest = { version: "1.2.3", builtAt: "2026-12-05T00:00:00Z", publicKey: "key", artifacts: [artifact] };
    expect(runtimeManifestSchema.safeParse(manifest).success).toBe(true);
    expect(runtimeManifestSchema.safeParse({ ...manifest, artifacts: [] }).success).toBe(false);
    expect(runtimeManifestSchema.safeParse({ ...manifest, artifacts: [{ ...artifact, sha256: "A".repeat(64) }] }).success).toBe(false);
    expect(runtimeManifestSchema.safeParse({ ...manifest, artifacts: [{ ...artifact, platform: "windows-arm64" }] }).success).toBe(false);
    expect(runtimeManifestSchema.safeParse({ ...manifest, artifacts: [{ ...artifact, size: 0 }] }).success).toBe(false);
  });
});
