// Entry point of the headless endpoint runtime: `caisey-runtime <command>`.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { DEFAULT_CHECKIN_INTERVAL_MS } from "../../protocol/messages";
import type { TransportChoice } from "./agent";
import { MAX_CHECKIN_INTERVAL_MS, MIN_CHECKIN_INTERVAL_MS } from "./checkin";
import { enroll } from "./enroll";
import { configureNetwork } from "./http";
import { UserError } from "./identity";
import { errorText, stderrLogger } from "./log";
import { defaultStateDir, statePaths } from "./paths";
import { runRuntime } from "./run";
import { statusReport } from "./status";
import { RUNTIME_VERSION } from "./version";

const USAGE = `caisey-runtime ${RUNTIME_VERSION}: lets technicians run commands on this machine from the Caisey console.

Usage:
  caisey-runtime enroll --server URL --token TOKEN [--state-dir DIR] [--hostname NAME] [--force] [--proxy URL] [--no-proxy HOSTS]
      Register this machine with the server and store its credential.
  caisey-runtime run [--state-dir DIR] [--transport auto|websocket|checkin] [--checkin-interval SECONDS] [--proxy URL] [--no-proxy HOSTS]
      Connect to the server and run dispatched commands until stopped (Ctrl-C / SIGTERM).
      Exits with status 2 if the server rejects the credential.
      --transport auto (default) uses the WebSocket and falls back to HTTPS check-in when
      WebSockets cannot connect (e.g. a proxy blocks them), retrying the WebSocket every 5 minutes.
      --checkin-interval is the check-in period until the server suggests one
      (default 30, or $CAISEY_CHECKIN_INTERVAL; 1 to 600).
  caisey-runtime status [--state-dir DIR]
      Show the enrollment (without the credential), the number of undelivered results,
      and the last transport used and last contact with the server.

The state directory defaults to $CAISEY_RUNTIME_STATE_DIR or ~/.caisey-runtime.

Proxies: the runtime honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY (any case). --proxy
http://[user:password@]host:port overrides them (WebSocket, check-in and enroll all use it);
--no-proxy takes a comma-separated host list (".example.com" for subdomains, "*" for all).`;

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
  if (command === "--version" || command === "version") {
    process.stdout.write(`${RUNTIME_VERSION}\n`);
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
      configureNetwork({ proxy: values.proxy, noProxy: values["no-proxy"] });
      if (!values.server || !values.token) throw new UserError(`enroll needs --server and --token\n\n${USAGE}`);
      const paths = statePaths(values["state-dir"] ?? defaultStateDir());
      const { identity, response } = await enroll({
        server: values.server,
        token: values.token,
        paths,
        hostname: values.hostname,
        force: values.force,
      });
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
        ...proxyOptions,
      });
      if (values.help) return printUsage();
      configureNetwork({ proxy: values.proxy, noProxy: values["no-proxy"] });
      return runRuntime({
        paths: statePaths(values["state-dir"] ?? defaultStateDir()),
        log: stderrLogger,
        hostname: values.hostname,
        transport: parseTransport(values.transport ?? "auto"),
        checkinIntervalMs: parseCheckinInterval(values["checkin-interval"] ?? process.env.CAISEY_CHECKIN_INTERVAL),
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
