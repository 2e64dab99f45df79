// The executables `npm run build` made, checked as a release consumer would:
// the manifest parses with the protocol schema, every artifact's size, SHA-256
// and Ed25519 signature match, and each executable embeds the version and the
// manifest's public key (what it will verify updates with). The linux-x64 one
// runs. No stack needed; it lives here because it needs `npm run build`.
import { createHash, createPublicKey, verify } from "node:crypto";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { runtimeManifestSchema, runtimeSignatureMessage } from "../../protocol/runtime-release";
import { updateKeyFingerprint } from "../../runtime/src/version";
import { runtimeExecutablePath } from "./stack";

const version = JSON.parse(readFileSync("package.json", "utf8")).version;
const releaseDir = dirname(dirname(runtimeExecutablePath("linux-x64")));

describe("runtime release built by npm run build", () => {
  const manifest = runtimeManifestSchema.parse(JSON.parse(readFileSync(join(releaseDir, "manifest.json"), "utf8")));
  const publicKey = createPublicKey({ key: Buffer.from(manifest.publicKey, "base64"), format: "der", type: "spki" });

  it("lists the linux-x64 and windows-x64 executables for this version, and latest.json names it", () => {
    expect(manifest.version).toBe(version);
    expect(manifest.artifacts.map((a) => a.platform)).toEqual(expect.arrayContaining(["linux-x64", "windows-x64"]));
    expect(JSON.parse(readFileSync(join(dirname(releaseDir), "latest.json"), "utf8"))).toEqual({ version });
  });

  it("every artifact matches its size, hash and signature, and embeds the version and update key", () => {
    for (const artifact of manifest.artifacts) {
      const data = readFileSync(runtimeExecutablePath(artifact.platform));
      expect(data.length).toBe(artifact.size);
      expect(createHash("sha256").update(data).digest("hex")).toBe(artifact.sha256);
      const message = Buffer.from(runtimeSignatureMessage(version, artifact.platform, artifact.sha256));
      expect(verify(null, message, publicKey, Buffer.from(artifact.signature, "base64"))).toBe(true);
      // A signature must not carry over to another platform's slot.
      const other = artifact.platform === "linux-x64" ? "windows-x64" : "linux-x64";
      expect(verify(null, Buffer.from(runtimeSignatureMessage(version, other, artifact.sha256)), publicKey, Buffer.from(artifact.signature, "base64"))).toBe(false);
      expect(data.includes(Buffer.from(JSON.stringify(manifest.publicKey).slice(1, -1)))).toBe(true);
    }
  });

  it("the linux-x64 executable runs on its own: no Node on PATH, no node_modules, no warning", () => {
    const exe = runtimeExecutablePath("linux-x64");
    expect(statSync(exe).mode & 0o111).not.toBe(0);
    const result = spawnSync(exe, ["--version"], { encoding: "utf8", cwd: "/", env: { PATH: "/nonexistent" } });
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(`${version}\n`);
    const build = spawnSync(exe, ["version"], { encoding: "utf8" });
    expect(build.stdout).toBe(`caisey-runtime ${version} (linux-x64 executable, update key ${updateKeyFingerprint(manifest.publicKey)})\n`);
  });
});
