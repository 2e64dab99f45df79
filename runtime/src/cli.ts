// Entry point of the headless endpoint runtime: `caisey-runtime <command>`.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { DEFAULT_CHECKIN_INTERVAL_MS, describeZodError } from "../../protocol/messages";
import type { TransportChoice } from "./agent";
import { MAX_CHECKIN_INTERVAL_MS, MIN_CHECKIN_INTERVAL_MS } from "./checkin";
import { readRuntimeConfig, runtimeConfigSchema, updateRuntimeConfig, type RuntimeConfig } from "./config";
import { enroll } from "./enroll";
import { configureNetwork } from "./http";
import { UserError } from "./identity";
import { errorText, stderrLogger } from "./log";
import { defaultStateDir, statePaths } from "./paths";
import { runRuntime } from "./run";
import { statusReport } from "./status";
import { describeBuild, RUNTIME_VERSION } from "./version";

const USAGE = `caisey-runtime ${RUNTIME_VERSION}: lets technicians run commands on this machine from the Caisey console.

Usage:
  caisey-runtime enroll --server URL --token TOKEN [--state-dir DIR] [--hostname NAME] [--force]
                        [--proxy URL] [--no-proxy HOSTS]
      Register this machine with the server and store its credential; --proxy / --no-proxy
      are saved in <state dir>/config.json for "run".
  caisey-runtime run [--state-dir DIR] [--transport auto|websocket|checkin] [--checkin-interval SECONDS] [--proxy URL] [--no-proxy HOSTS]
      Connect to the server and run dispatched commands until stopped (Ctrl-C / SIGTERM).
      Exits with status 2 if the server rejects the credential.
      --transport auto (default) uses the WebSocket and falls back to HTTPS check-in when
      WebSockets cannot connect (e.g. a proxy blocks them), retrying the WebSocket 5-10 s later, then
      with backoff up to once a minute, and at once when a check-in gets through after an outage.
      --checkin-interval is the check-in period until the server suggests one
      (default 30, or $CAISEY_CHECKIN_INTERVAL; 1 to 600).
      Settings not given as flags come from <state dir>/config.json.
      Updates: when the console's target version differs, the runtime downloads it, checks its
      SHA-256 and Ed25519 signature, runs it on trial (--update-trial, internal) and keeps it only if
      it reaches the server within 60 s ($CAISEY_UPDATE_TRIAL_SECONDS); then it exits with status 75
      so the service manager starts the new version. Otherwise the old version carries on.
  caisey-runtime version
      Show the version, platform and update-key fingerprint of this build (--version: the version alone).
  caisey-runtime status [--state-dir DIR]
      Show the enrollment (without the credential), the number of undelivered results,
      and the last transport used and last contact with the server.

The state directory defaults to $CAISEY_RUNTIME_STATE_DIR; else, for root / an elevated administrator /
the service, the installed runtime's (/var/lib/caisey-runtime, /Library/Application Support/Caisey,
%ProgramData%\\Caisey); else ~/.caisey-runtime.

Proxies: the runtime honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY (any case). --proxy
http://[user:password@]host:port overrides them (WebSocket, check-in and enroll all use it);
--no-proxy takes a comma-separated host list (".example.com" for subdomains, "*" for all);
a proxy saved in config.json applies when no flag is given.`;

const stateDirOption = { "state-dir": { type: "string" } } as const;
const helpOption = { help: { type: "boolean", short: "h" } } as const;
const proxyOptions = { proxy: { type: "string" }, "no-proxy": { type: "string" } } as const;

function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...options, ...helpOption }, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UserError(`${errorText(error)}\n\n${USAGE}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 1;
  }
  if (command === "--version") {
    process.stdout.write(`${RUNTIME_VERSION}\n`);
    return 0;
  }
  if (command === "version") {
    process.stdout.write(`${describeBuild()}\n`);
    return 0;
  }
  switch (command) {
    case "enroll": {
      const values = parse(rest, {
        ...stateDirOption,
        server: { type: "string" },
        token: { type: "string" },
        hostname: { type: "string" },
        force: { type: "boolean" },
        ...proxyOptions,
      });
      if (values.help) return printUsage();
      if (!values.server || !values.token) throw new UserError(`enroll needs --server and --token\n\n${USAGE}`);
      const paths = statePaths(values["state-dir"] ?? defaultStateDir());
      const network: RuntimeConfig = {
        ...(values.proxy !== undefined ? { proxy: values.proxy } : {}),
        ...(values["no-proxy"] !== undefined ? { noProxy: values["no-proxy"] } : {}),
      };
      // Validate the settings before the token is spent on an enrollment.
      const current = await readRuntimeConfig(paths);
      validateConfig({ ...current, ...network });
      configureNetwork({ proxy: values.proxy ?? current.proxy, noProxy: values["no-proxy"] ?? current.noProxy });
      const { identity, response } = await enroll({
        server: values.server,
        token: values.token,
        paths,
        hostname: values.hostname,
        force: values.force,
      });
      if (Object.keys(network).length > 0) await updateRuntimeConfig(paths, network);
      process.stdout.write(
        `Enrolled as endpoint ${identity.endpointId} for ${response.clientName}.\nIdentity saved to ${paths.identity}.\nStart the runtime with: caisey-runtime run --state-dir ${paths.dir}\n`,
      );
      return 0;
    }
    case "run": {
      const values = parse(rest, {
        ...stateDirOption,
        hostname: { type: "string" },
        transport: { type: "string" },
        "checkin-interval": { type: "string" },
        "update-trial": { type: "string" },
        ...proxyOptions,
      });
      if (values.help) return printUsage();
      const paths = statePaths(values["state-dir"] ?? defaultStateDir());
      const config = await readRuntimeConfig(paths);
      // Flags first, then the config file (a service does not see the user's proxy variables), then the environment.
      configureNetwork({ proxy: values.proxy ?? config.proxy, noProxy: values["no-proxy"] ?? config.noProxy });
      return runRuntime({
        paths,
        log: stderrLogger,
        hostname: values.hostname,
        transport: parseTransport(values.transport ?? config.transport ?? "auto"),
        checkinIntervalMs: parseCheckinInterval(
          values["checkin-interval"] ?? process.env.CAISEY_CHECKIN_INTERVAL ?? config.checkinIntervalSeconds?.toString(),
        ),
        updateTrial: values["update-trial"],
      });
    }
    case "status": {
      const values = parse(rest, stateDirOption);
      if (values.help) return printUsage();
      process.stdout.write(`${await statusReport(statePaths(values["state-dir"] ?? defaultStateDir()))}\n`);
      return 0;
    }
    default:
      throw new UserError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

function parseTransport(value: string): TransportChoice {
  if (value === "auto" || value === "websocket" || value === "checkin") return value;
  throw new UserError(`--transport must be auto, websocket or checkin (got "${value}")`);
}

/** Seconds (from the flag or the environment) to milliseconds; the default is the protocol's. */
function parseCheckinInterval(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return DEFAULT_CHECKIN_INTERVAL_MS;
  const secs = Number(value);
  if (!Number.isFinite(secs) || secs < MIN_CHECKIN_INTERVAL_MS / 1000 || secs > MAX_CHECKIN_INTERVAL_MS / 1000) {
    throw new UserError(
      `--checkin-interval (or CAISEY_CHECKIN_INTERVAL) must be a number of seconds from ${MIN_CHECKIN_INTERVAL_MS / 1000} to ${MAX_CHECKIN_INTERVAL_MS / 1000} (got "${value}")`,
    );
  }
  return Math.round(secs * 1000);
}

function validateConfig(config: RuntimeConfig): void {
  const parsed = runtimeConfigSchema.safeParse(config);
  if (!parsed.success) throw new UserError(`invalid --proxy / --no-proxy: ${describeZodError(parsed.error)}`);
}

function printUsage(): number {
  process.stdout.write(`${USAGE}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; this only guards against a stray handle keeping a stopped runtime alive.
    setTimeout(() => process.exit(code), 1000).unref();
  },
  (error: unknown) => {
    if (error instanceof UserError) {
      process.stderr.write(`caisey-runtime: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`caisey-runtime: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
