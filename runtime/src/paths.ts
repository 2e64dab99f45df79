import { readdirSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/**
 * Where an installed runtime keeps its state (identity, journal, outbox,
 * config): readable only by root / SYSTEM, created by the installers. See
 * docs/decisions/0013-runtime-install-and-service.md.
 */
export function systemStateDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform === "win32") return path.win32.join(env.ProgramData || "C:\\ProgramData", "Caisey");
  if (platform === "darwin") return "/Library/Application Support/Caisey";
  return "/var/lib/caisey-runtime";
}

/** Set by the systemd unit, the launchd plist and the Windows service definition. */
export const SERVICE_ENV = "CAISEY_RUNTIME_SERVICE";

/**
 * True when this process acts for the machine rather than for a user: the
 * service, root on Linux/macOS, or on Windows anyone who can list the system
 * state directory (its ACL admits only SYSTEM and Administrators, so that is
 * an elevated administrator or the service itself).
 */
export function actsForMachine(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env[SERVICE_ENV] === "1") return true;
  if (platform === "win32") {
    try {
      readdirSync(systemStateDir(platform, env));
      return true;
    } catch {
      return false;
    }
  }
  return process.getuid?.() === 0;
}

/**
 * $CAISEY_RUNTIME_STATE_DIR, else the system directory when acting for the
 * machine (so `sudo caisey-runtime status` / a rotation `enroll` find the
 * installed runtime), else ~/.caisey-runtime for development.
 */
export function defaultStateDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (env.CAISEY_RUNTIME_STATE_DIR) return env.CAISEY_RUNTIME_STATE_DIR;
  if (actsForMachine(platform, env)) return systemStateDir(platform, env);
  return path.join(os.homedir(), ".caisey-runtime");
}

/** Everything the runtime keeps on disk lives under one directory. */
export function statePaths(stateDir: string) {
  const dir = path.resolve(stateDir);
  return {
    dir,
    identity: path.join(dir, "identity.json"),
    /** Operator settings (proxy, transport); see config.ts. */
    config: path.join(dir, "config.json"),
    journal: path.join(dir, "journal"),
    acked: path.join(dir, "acked"),
    outbox: path.join(dir, "outbox"),
    lock: path.join(dir, "runtime.lock"),
    /** Last transport and last successful contact with the server, for `status`. */
    transport: path.join(dir, "transport.json"),
  };
}
export type StatePaths = ReturnType<typeof statePaths>;
