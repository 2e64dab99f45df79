// The runtime's operator settings, <stateDir>/config.json: written by
// `enroll` (and so by the installers), read by `run`. Command-line flags win
// over the file. A file that does not parse stops the runtime with a message
// naming it: guessing settings for a machine-wide service fails open.
import { promises as fsp } from "node:fs";
import * as z from "zod";
import { describeZodError } from "../../protocol/messages";
import { MAX_CHECKIN_INTERVAL_MS, MIN_CHECKIN_INTERVAL_MS } from "./checkin";
import { ensurePrivateDir, writeFileDurable } from "./fs-durable";
import { UserError } from "./identity";
import type { StatePaths } from "./paths";

const proxyUrlSchema = z
  .string()
  .trim()
  .refine((value) => {
    try {
      return ["http:", "https:"].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, "an http(s) proxy URL like http://proxy.example:3128");

export const runtimeConfigSchema = z
  .object({
    /** HTTP(S) proxy for every connection to the console; the environment's HTTPS_PROXY otherwise. */
    proxy: proxyUrlSchema.optional(),
    /** Hosts that bypass the proxy, NO_PROXY syntax ("localhost,.corp.example"). */
    noProxy: z.string().trim().optional(),
    transport: z.enum(["auto", "websocket", "checkin"]).optional(),
    checkinIntervalSeconds: z
      .number()
      .min(MIN_CHECKIN_INTERVAL_MS / 1000)
      .max(MAX_CHECKIN_INTERVAL_MS / 1000)
      .optional(),
  })
  .strict();
export type RuntimeConfig = z.infer<typeof runtimeConfigSchema>;

/** The config file, or {} when there is none. Throws UserError when it is unreadable or invalid. */
export async function readRuntimeConfig(paths: StatePaths): Promise<RuntimeConfig> {
  let text: string;
  try {
    text = await fsp.readFile(paths.config, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new UserError(`cannot read ${paths.config}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UserError(`${paths.config} is not valid JSON; fix or delete it`);
  }
  const parsed = runtimeConfigSchema.safeParse(data);
  if (!parsed.success) throw new UserError(`${paths.config} is invalid (${describeZodError(parsed.error)}); fix or delete it`);
  return parsed.data;
}

/** Merges settings into the config file (validated first; nothing is written when they are invalid). */
export async function updateRuntimeConfig(paths: StatePaths, changes: RuntimeConfig): Promise<RuntimeConfig> {
  const next = runtimeConfigSchema.safeParse({ ...(await readRuntimeConfig(paths)), ...changes });
  if (!next.success) throw new UserError(`invalid setting: ${describeZodError(next.error)}`);
  await ensurePrivateDir(paths.dir);
  await writeFileDurable(paths.config, `${JSON.stringify(next.data, null, 2)}\n`);
  return next.data;
}
