// workers/session/.dev.vars, which wrangler reads for the session worker (the
// second config of `wrangler pages dev`) from the directory of its wrangler.toml.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEV_APPROVAL_MAIL_FROM, ensureSessionDevVars, parseDotenv } from "../../scripts/dev-keys.mjs";

const tempFile = () => join(mkdtempSync(join(tmpdir(), "caisey-session-vars-")), ".dev.vars");
const read = (path: string) => parseDotenv(readFileSync(path, "utf8"));

describe("ensureSessionDevVars", () => {
  it("writes offline mode, the capture mailbox, the dev origin and a fresh audit key", () => {
    const path = tempFile();
    expect(ensureSessionDevVars(path, { origin: "http://127.0.0.1:8788/" })).toMatchObject({ changed: true, reason: "created" });
    const vars = read(path);
    expect(vars).toMatchObject({
      CAISEY_OFFLINE_AUTH: "1",
      APPROVAL_MAIL_PROVIDER: "capture",
      APPROVAL_MAIL_FROM: DEV_APPROVAL_MAIL_FROM,
      PUBLIC_ORIGIN: "http://127.0.0.1:8788",
    });
    expect(vars.AUDIT_MAC_KEY).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is idempotent and keeps the audit key across runs and port changes", () => {
    const path = tempFile();
    ensureSessionDevVars(path, { origin: "http://127.0.0.1:8788" });
    const before = readFileSync(path, "utf8");
    expect(ensureSessionDevVars(path, { origin: "http://127.0.0.1:8788" }).changed).toBe(false);
    expect(readFileSync(path, "utf8")).toBe(before);

    const key = read(path).AUDIT_MAC_KEY;
    expect(ensureSessionDevVars(path, { origin: "http://127.0.0.1:9123" }).changed).toBe(true);
    expect(read(path)).toMatchObject({ PUBLIC_ORIGIN: "http://127.0.0.1:9123", AUDIT_MAC_KEY: key });
  });

  it("keeps unrelated lines and a provider chosen by hand", () => {
    const path = tempFile();
    writeFileSync(path, 'MY_NOTE="kept"\nAPPROVAL_MAIL_PROVIDER=resend\nRESEND_API_KEY=re_local\n');
    ensureSessionDevVars(path, { origin: "http://127.0.0.1:8788" });
    expect(read(path)).toMatchObject({ MY_NOTE: "kept", APPROVAL_MAIL_PROVIDER: "resend", RESEND_API_KEY: "re_local", CAISEY_OFFLINE_AUTH: "1" });
    expect(readFileSync(path, "utf8").match(/APPROVAL_MAIL_PROVIDER=/g)).toHaveLength(1);
  });

  it("leaves a file that turns offline mode off alone", () => {
    const path = tempFile();
    writeFileSync(path, "CAISEY_OFFLINE_AUTH=0\n");
    expect(ensureSessionDevVars(path, { origin: "http://127.0.0.1:8788" }).changed).toBe(false);
    expect(readFileSync(path, "utf8")).toBe("CAISEY_OFFLINE_AUTH=0\n");
  });
});
