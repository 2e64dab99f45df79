import * as os from "node:os";
import { describeZodError, enrollRequestSchema, enrollResponseSchema, type EnrollResponse } from "../../protocol/messages";
import { identityExists, saveIdentity, UserError, type Identity } from "./identity";
import { runtimePost } from "./http";
import { errorText } from "./log";
import type { StatePaths } from "./paths";
import { osVersion, runtimeOs } from "./platform";

export interface EnrollOptions {
  server: string;
  token: string;
  paths: StatePaths;
  hostname?: string;
  force?: boolean;
}

/** Normalised server base URL, e.g. "https://caisey.example.com" (no trailing slash). */
export function normaliseServerUrl(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UserError(`--server must be a URL like https://caisey.example.com (got "${server}")`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UserError(`--server must be an http(s) URL (got "${server}")`);
  url.search = "";
  url.hash = "";
  return url.toString().replace(/\/+$/, "");
}

export async function enroll(options: EnrollOptions): Promise<{ identity: Identity; response: EnrollResponse }> {
  const server = normaliseServerUrl(options.server);
  if (!options.force && (await identityExists(options.paths))) {
    throw new UserError(`${options.paths.identity} already exists; this runtime is enrolled. Use --force to replace it.`);
  }
  const request = enrollRequestSchema.safeParse({
    token: options.token,
    hostname: options.hostname ?? os.hostname(),
    os: runtimeOs(),
    osVersion: osVersion(),
  });
  if (!request.success) throw new UserError(`invalid enrollment request: ${describeZodError(request.error)}`);

  const url = `${server}/agent/enroll`;
  let response: { status: number; text: string };
  try {
    // undici's request() rather than fetch: fetch in the Node 22 executable miscounted this body through a proxy.
    response = await runtimePost(url, {
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(request.data),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    // runtimePost's message already names the root cause and the proxy, if any.
    throw new UserError(`could not reach ${url}: ${errorText(error)}`);
  }
  const text = response.text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.status < 200 || response.status > 299) {
    const message =
      body && typeof body === "object" && typeof (body as { error?: unknown }).error === "string"
        ? (body as { error: string }).error
        : text.trim().slice(0, 200) || `HTTP ${response.status}`;
    throw new UserError(`enrollment failed (HTTP ${response.status}): ${message}`);
  }
  const parsed = enrollResponseSchema.safeParse(body);
  if (!parsed.success) {
    throw new UserError(`the server's enrollment response was not understood (${body === undefined ? "not JSON" : describeZodError(parsed.error)})`);
  }
  const identity: Identity = {
    server,
    endpointId: parsed.data.endpointId,
    credential: parsed.data.credential,
    enrolledAt: new Date().toISOString(),
  };
  await saveIdentity(options.paths, identity);
  return { identity, response: parsed.data };
}
