import { env } from "cloudflare:test";
import { seedSql } from "../../scripts/seed.mjs";

/** Loads the same demo data `npm run dev` seeds, into this test's D1. */
export async function seedDemo(): Promise<void> {
  const statements = seedSql(Date.now())
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => env.DB.prepare(line));
  await env.DB.batch(statements);
}

/** A tenant with `count` endpoints spread over 20 clients, generated inside SQLite. */
export async function seedLargeTenant(orgId: string, count: number): Promise<void> {
  await env.DB.batch([
    env.DB.prepare("INSERT INTO organisations (id, name, slug) VALUES (?, ?, ?)").bind(orgId, `Big ${orgId}`, orgId),
    env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19)
       INSERT INTO clients (id, org_id, name) SELECT ?1 || '_client_' || i, ?1, printf('Client %02d', i) FROM n`,
    ).bind(orgId),
    env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
       INSERT INTO endpoints (id, org_id, client_id, hostname, os, online)
       SELECT printf('%s_ep_%05d', ?1, i), ?1, ?1 || '_client_' || (i % 20),
              printf('host-%05d', (i * 7919) % ?2),
              CASE i % 3 WHEN 0 THEN 'windows' WHEN 1 THEN 'linux' ELSE 'macos' END,
              i % 2
       FROM n`,
    ).bind(orgId, count),
  ]);
}

/** One /api/v1 request through the real edge (origin guard, token check, handlers), as an automation client sends it. */
export async function apiCall(
  path: string,
  options: { method?: string; token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const { handleEdgeRequest } = await import("~/edge/router.server");
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] ??= "application/json";
  const request = new Request(`http://127.0.0.1:8788/api/v1${path}`, {
    method: options.method ?? (options.body === undefined ? "GET" : "POST"),
    headers,
    body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
  });
  const response = (await handleEdgeRequest(request, env as never))!;
  const text = await response.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the test sees the text
  }
  return { status: response.status, body, headers: response.headers };
}
