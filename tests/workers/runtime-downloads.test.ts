// The console's runtime download routes (/runtime/download/:platform,
// /runtime/manifest, /runtime/service-wrapper/windows-x64, /install.sh,
// /install.ps1) against a real R2 bucket in workerd.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { Env } from "~/lib/env.server";
import { loader as installPs1 } from "~/routes/install[.]ps1";
import { loader as installSh } from "~/routes/install[.]sh";
import { loader as download } from "~/routes/runtime.download.$platform";
import { loader as manifestRoute } from "~/routes/runtime.manifest";
import { loader as serviceWrapper } from "~/routes/runtime.service-wrapper.windows-x64";
import { runtimeObjectKeys, type RuntimeManifest } from "../../protocol/runtime-release";

const ORIGIN = "https://console.caisey.test";
const bucket = env.RUNTIME_RELEASES!;

async function hex(data: Uint8Array<ArrayBuffer>) {
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", data))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** withEnv may lack RUNTIME_RELEASES: a deployment whose Pages project lost the binding wrangler.toml declares. */
function call(loader: (args: any) => unknown, path: string, params: Record<string, string> = {}, withEnv: Omit<Env, "RUNTIME_RELEASES"> & { RUNTIME_RELEASES?: R2Bucket } = env) {
  return loader({ request: new Request(`${ORIGIN}${path}`), params, context: { cloudflare: { env: withEnv } } }) as Promise<Response> | Response;
}

const linuxBytes = new TextEncoder().encode("#!/bin/sh\necho pretend runtime 1.2.0\n");

async function publish(version: string, bytes = linuxBytes): Promise<RuntimeManifest> {
  const manifest: RuntimeManifest = {
    version,
    builtAt: "2026-11-23T00:00:00.000Z",
    publicKey: "MCowBQYDK2VwAyEA",
    artifacts: [{ platform: "linux-x64", file: "caisey-runtime", size: bytes.length, sha256: await hex(bytes), signature: "c2ln" }],
  };
  await bucket.put(runtimeObjectKeys.artifact(version, "linux-x64", "caisey-runtime"), bytes);
  await bucket.put(runtimeObjectKeys.manifest(version), JSON.stringify(manifest));
  await bucket.put(runtimeObjectKeys.latest, JSON.stringify({ version }));
  return manifest;
}

beforeEach(async () => {
  const listed = await bucket.list();
  if (listed.objects.length) await bucket.delete(listed.objects.map((o) => o.key));
});

describe("runtime downloads", () => {
  it("answers 503 naming what to do while nothing is published", async () => {
    for (const response of [await call(download, "/runtime/download/linux-x64", { platform: "linux-x64" }), await call(manifestRoute, "/runtime/manifest")]) {
      expect(response.status).toBe(503);
      expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(await response.text()).toContain("publish-runtime.mjs");
    }
    const wrapper = await call(serviceWrapper, "/runtime/service-wrapper/windows-x64");
    expect(wrapper.status).toBe(503);
    const unbound = await call(download, "/runtime/download/linux-x64", { platform: "linux-x64" }, { ...env, RUNTIME_RELEASES: undefined });
    expect(unbound.status).toBe(503);
    expect(await unbound.text()).toContain("RUNTIME_RELEASES");
  });

  it("streams the latest executable with its hash, signature, version and length; a pinned version is immutable", async () => {
    const manifest = await publish("1.2.0");
    const response = await call(download, "/runtime/download/linux-x64", { platform: "linux-x64" });
    expect(response.status).toBe(200);
    const body = new Uint8Array(await response.arrayBuffer());
    expect(await hex(body)).toBe(manifest.artifacts[0]!.sha256);
    expect(Object.fromEntries(response.headers)).toMatchObject({
      "content-type": "application/octet-stream",
      "content-length": String(linuxBytes.length),
      "x-caisey-sha256": manifest.artifacts[0]!.sha256,
      "x-caisey-signature": "c2ln",
      "x-caisey-version": "1.2.0",
      "cache-control": "public, max-age=60",
    });
    const pinned = await call(download, "/runtime/download/linux-x64?version=1.2.0", { platform: "linux-x64" });
    expect(pinned.headers.get("cache-control")).toContain("immutable");
    await pinned.arrayBuffer();

    const listed = await call(manifestRoute, "/runtime/manifest");
    expect(await listed.json()).toEqual(manifest);
  });

  it("takes the hash from the manifest, not the object: a swapped object is served with the published hash", async () => {
    const manifest = await publish("1.2.0");
    await bucket.put(runtimeObjectKeys.artifact("1.2.0", "linux-x64", "caisey-runtime"), new TextEncoder().encode("#!/bin/sh\necho evil\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"));
    const response = await call(download, "/runtime/download/linux-x64", { platform: "linux-x64" });
    expect(response.headers.get("x-caisey-sha256")).toBe(manifest.artifacts[0]!.sha256);
    expect(await hex(new Uint8Array(await response.arrayBuffer()))).not.toBe(manifest.artifacts[0]!.sha256);
  });

  it("refuses unknown platforms (404), unpublished versions (404), bad versions and unknown parameters (400)", async () => {
    await publish("1.2.0");
    const unknown = await call(download, "/runtime/download/solaris-sparc", { platform: "solaris-sparc" });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain("linux-x64, linux-arm64, windows-x64, darwin-arm64, darwin-x64");
    const notBuilt = await call(download, "/runtime/download/windows-x64", { platform: "windows-x64" });
    expect(notBuilt.status).toBe(404);
    expect(await notBuilt.text()).toContain("no build for windows-x64");
    const missing = await call(download, "/runtime/download/linux-x64?version=9.9.9", { platform: "linux-x64" });
    expect(missing.status).toBe(404);
    expect((await call(manifestRoute, "/runtime/manifest?version=9.9.9")).status).toBe(404);
    const bad = await call(download, "/runtime/download/linux-x64?version=../../etc", { platform: "linux-x64" });
    expect(bad.status).toBe(400);
    expect((await call(manifestRoute, "/runtime/manifest?platform=x")).status).toBe(400);
  });

  it("answers 503 when a published manifest is corrupt", async () => {
    await bucket.put(runtimeObjectKeys.latest, JSON.stringify({ version: "1.2.0" }));
    await bucket.put(runtimeObjectKeys.manifest("1.2.0"), "{not json");
    const response = await call(manifestRoute, "/runtime/manifest");
    expect(response.status).toBe(503);
    expect(await response.text()).toContain("invalid");
  });
});

describe("installers", () => {
  it("serve plain text with PUBLIC_ORIGIN baked in", async () => {
    for (const [loader, path] of [[installSh, "/install.sh"], [installPs1, "/install.ps1"]] as const) {
      const response = await call(loader, path);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      const text = await response.text();
      expect(text).toContain(ORIGIN);
      expect(text).not.toContain("@@CAISEY_SERVER@@");
    }
  });

  it("fail closed without PUBLIC_ORIGIN in production, with a script that says why", async () => {
    const response = await call(installSh, "/install.sh", {}, { ...env, PUBLIC_ORIGIN: undefined, CAISEY_ENV: "production" });
    expect(response.status).toBe(500);
    expect(await response.text()).toContain("PUBLIC_ORIGIN is not configured");
  });
});
