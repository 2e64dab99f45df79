// The one-line installers: the scripts the console serves (with its own
// origin in them) and the commands the client page shows. See
// docs/decisions/0013-runtime-install-and-service.md.
import { INSTALL_PS1 } from "../installers/install-ps1.server";
import { INSTALL_SH } from "../installers/install-sh.server";
import type { Env } from "../lib/env.server";
import { ConfigurationError, publicOrigin } from "../lib/public-origin.server";

const SERVER_PLACEHOLDER = "@@CAISEY_SERVER@@";

export type InstallerKind = "sh" | "ps1";

export function installerScript(kind: InstallerKind, origin: string): string {
  return (kind === "sh" ? INSTALL_SH : INSTALL_PS1).replaceAll(SERVER_PLACEHOLDER, origin);
}

/** The script as plain text (never HTML: it is piped into a shell), or a 500 naming the misconfiguration. */
export function installerResponse(env: Env, kind: InstallerKind): Response {
  let origin: string;
  try {
    origin = publicOrigin(env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    const script =
      kind === "sh"
        ? `#!/bin/sh\necho 'caisey: error: this console cannot serve its installer: ${error.message}' >&2\nexit 1\n`
        : `throw 'caisey: error: this console cannot serve its installer: ${error.message}'\n`;
    return new Response(script, { status: 500, headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" } });
  }
  // Windows PowerShell 5.1 reads a body without a charset as ISO-8859-1; the scripts are ASCII anyway.
  return new Response(installerScript(kind, origin), {
    headers: {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Disposition": `inline; filename="install.${kind}"`,
      "Cache-Control": "public, max-age=300",
    },
  });
}

export interface InstallCommands {
  /** Linux and macOS, as root. */
  unix: string;
  /** Windows, in PowerShell run as Administrator. */
  windows: string;
  uninstallUnix: string;
  uninstallWindows: string;
}

/** What the client page shows next to a fresh enrollment token. */
export function installCommands(origin: string, token: string): InstallCommands {
  return {
    unix: `curl -fsSL ${origin}/install.sh | sudo sh -s -- --token ${token}`,
    windows: `& ([scriptblock]::Create((irm ${origin}/install.ps1))) -Token ${token}`,
    uninstallUnix: `curl -fsSL ${origin}/install.sh | sudo sh -s -- --uninstall`,
    uninstallWindows: `& ([scriptblock]::Create((irm ${origin}/install.ps1))) -Uninstall`,
  };
}
