import { promises as fsp } from "node:fs";
import * as z from "zod";
import { describeZodError } from "../../protocol/messages";
import { ensurePrivateDir, writeFileDurable } from "./fs-durable";
import type { StatePaths } from "./paths";

export const identitySchema = z.object({
  server: z.url(),
  endpointId: z.string().min(1),
  credential: z.string().min(1),
  enrolledAt: z.string(),
});
export type Identity = z.infer<typeof identitySchema>;

/** A problem the user can fix; the CLI prints its message without a stack trace. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export async function identityExists(paths: StatePaths): Promise<boolean> {
  try {
    await fsp.access(paths.identity);
    return true;
  } catch {
    return false;
  }
}

export async function loadIdentity(paths: StatePaths): Promise<Identity> {
  let text: string;
  try {
    text = await fsp.readFile(paths.identity, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new UserError(
        `This runtime is not enrolled (no ${paths.identity}). Run: caisey-runtime enroll --server URL --token TOKEN --state-dir ${paths.dir}`,
      );
    }
    throw error;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UserError(`${paths.identity} is not valid JSON; enroll again with --force`);
  }
  const parsed = identitySchema.safeParse(data);
  if (!parsed.success) throw new UserError(`${paths.identity} is invalid (${describeZodError(parsed.error)}); enroll again with --force`);
  return parsed.data;
}

export async function saveIdentity(paths: StatePaths, identity: Identity): Promise<void> {
  await ensurePrivateDir(paths.dir);
  await writeFileDurable(paths.identity, `${JSON.stringify(identity, null, 2)}\n`);
}

/** ws(s) URL of the runtime socket for an enrolled server base URL. */
export function connectUrl(server: string): string {
  const url = new URL(server);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/agent/connect`;
  url.search = "";
  url.hash = "";
  return url.toString();
}
