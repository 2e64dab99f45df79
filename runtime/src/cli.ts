// Entry point of the headless endpoint runtime: `caisey-runtime <command>`.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { enroll } from "./enroll";
import { UserError } from "./identity";
import { errorText, stderrLogger } from "./log";
import { defaultStateDir, statePaths } from "./paths";
import { runRuntime } from "./run";
import { statusReport } from "./status";
import { RUNTIME_VERSION } from "./version";

const USAGE = `caisey-runtime ${RUNTIME_VERSION}: lets technicians run commands on this machine from the Caisey console.

Usage:
  caisey-runtime enroll --server URL --token TOKEN [--state-dir DIR] [--hostname NAME] [--force]
      Register this machine with the server and store its credential.
  caisey-runtime run [--state-dir DIR]
      Connect to the server and run dispatched commands until stopped (Ctrl-C / SIGTERM).
      Exits with status 2 if the server rejects the credential.
  caisey-runtime status [--state-dir DIR]
      Show the enrollment (without the credential) and the number of undelivered results.

The state directory defaults to $CAISEY_RUNTIME_STATE_DIR or ~/.caisey-runtime.`;

const stateDirOption = { "state-dir": { type: "string" } } as const;
const helpOption = { help: { type: "boolean", short: "h" } } as const;

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
      });
      if (values.help) return printUsage();
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
      const values = parse(rest, { ...stateDirOption, hostname: { type: "string" } });
      if (values.help) return printUsage();
      return runRuntime({ paths: statePaths(values["state-dir"] ?? defaultStateDir()), log: stderrLogger, hostname: values.hostname });
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
