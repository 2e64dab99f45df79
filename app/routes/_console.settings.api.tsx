// Admins: API tokens (shown once, stored hashed, revocable) and alert webhooks, with their audit trail.
import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Form, useActionData, useLoaderData } from "@remix-run/react";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { API_SCOPE_DESCRIPTIONS, API_SCOPES, createApiToken, createTokenSchema, listApiAudit, listApiTokens, revokeApiToken } from "~/models/api-tokens.server";
import { createAlertWebhook, createWebhookSchema, disableAlertWebhook, listAlertWebhooks } from "~/models/automation.server";
import { listScripts, ScriptError } from "~/models/script-library.server";
import { describeZodError } from "@protocol/messages";
import { rolesWith } from "@protocol/permissions";

export const meta: MetaFunction = () => [{ title: "API · Caisey" }];

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args, rolesWith("tokens.manage"));
  const db = createDb(getEnv(args.context).DB);
  return json({
    tokens: await listApiTokens(db, member.org.id),
    webhooks: await listAlertWebhooks(db, member.org.id),
    scripts: (await listScripts(db, member.org.id)).map((s) => ({ id: s.id, name: s.name })),
    audit: await listApiAudit(db, member.org.id),
    scopes: API_SCOPES.map((scope) => ({ scope, description: API_SCOPE_DESCRIPTIONS[scope] })),
  });
}

type Result = { error: string | null; token?: string; webhookId?: string };

export async function action(args: ActionFunctionArgs) {
  const member = await requireMember(args, rolesWith("tokens.manage"));
  const db = createDb(getEnv(args.context).DB);
  const form = await args.request.formData();
  const actor = { name: member.name };
  switch (form.get("intent")) {
    case "create-token": {
      const parsed = createTokenSchema.safeParse({ name: form.get("name"), scopes: form.getAll("scopes") });
      if (!parsed.success) return json<Result>({ error: describeZodError(parsed.error) }, { status: 400 });
      const { token } = await createApiToken(db, member.org.id, parsed.data, actor);
      return json<Result>({ error: null, token });
    }
    case "revoke-token":
      return (await revokeApiToken(db, member.org.id, String(form.get("tokenId")), actor))
        ? json<Result>({ error: null })
        : json<Result>({ error: "No such active token" }, { status: 404 });
    case "create-webhook": {
      let params: unknown = {};
      try {
        params = JSON.parse(String(form.get("params") || "{}"));
      } catch {
        return json<Result>({ error: "Fixed parameters must be a JSON object" }, { status: 400 });
      }
      const parsed = createWebhookSchema.safeParse({ name: form.get("name"), scriptId: form.get("scriptId"), params });
      if (!parsed.success) return json<Result>({ error: describeZodError(parsed.error) }, { status: 400 });
      try {
        return json<Result>({ error: null, webhookId: await createAlertWebhook(db, member.org.id, parsed.data, actor) });
      } catch (error) {
        if (error instanceof ScriptError) return json<Result>({ error: error.message }, { status: error.status });
        throw error;
      }
    }
    case "disable-webhook":
      await disableAlertWebhook(db, member.org.id, String(form.get("webhookId")), actor);
      return json<Result>({ error: null });
    default:
      return json<Result>({ error: "Unknown action" }, { status: 400 });
  }
}

export default function ApiSettingsPage() {
  const { tokens, webhooks, scripts, audit, scopes } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  return (
    <section className="space-y-6 text-sm">
      <h1 className="text-2xl font-semibold">API tokens and alert webhooks</h1>
      <p>The REST API is described at <a className="text-indigo-700" href="/api/v1/openapi.json">/api/v1/openapi.json</a>. Tokens queue sequences only, never live commands.</p>
      {result?.error ? <p role="alert" className="rounded border border-red-300 bg-red-50 p-2 text-red-800">{result.error}</p> : null}
      {result?.token ? (
        <p className="rounded border border-amber-300 bg-amber-50 p-2" data-testid="new-token">
          Copy this token now; it is not shown again: <code className="font-mono">{result.token}</code>
        </p>
      ) : null}
      {result?.webhookId ? <p data-testid="new-webhook">Webhook created: POST <code>/api/v1/alerts/{result.webhookId}</code> with a token that has sequences:queue.</p> : null}
      <Form method="post" className="space-y-1">
        <h2 className="text-lg font-semibold">New token</h2>
        <input type="hidden" name="intent" value="create-token" />
        <input name="name" aria-label="Token name" placeholder="Name (e.g. monitoring)" className="rounded border px-2 py-1" />
        {scopes.map(({ scope, description }) => (
          <label key={scope} className="block"><input type="checkbox" name="scopes" value={scope} /> <code>{scope}</code>: {description}</label>
        ))}
        <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white">Create token</button>
      </Form>
      <table className="w-full" data-testid="token-list">
        <thead className="text-left text-slate-500"><tr><th>Name</th><th>Token</th><th>Scopes</th><th>Created</th><th>Last used</th><th /></tr></thead>
        <tbody>
          {tokens.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td className="font-mono">{t.prefix}…</td>
              <td>{t.scopes.join(", ")}</td>
              <td>{t.createdBy}, {formatTimestamp(t.createdAt)}</td>
              <td>{t.lastUsedAt ? formatTimestamp(t.lastUsedAt) : "never"}</td>
              <td>
                {t.revokedAt ? `revoked by ${t.revokedBy}` : (
                  <Form method="post"><input type="hidden" name="tokenId" value={t.id} /><button name="intent" value="revoke-token" className="text-red-700">Revoke</button></Form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Form method="post" className="space-y-1">
        <h2 className="text-lg font-semibold">New alert webhook</h2>
        <input type="hidden" name="intent" value="create-webhook" />
        <input name="name" aria-label="Webhook name" placeholder="Name" className="rounded border px-2 py-1" />
        <select name="scriptId" aria-label="Webhook script" className="rounded border px-2 py-1">
          {scripts.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
        </select>
        <input name="params" aria-label="Fixed parameters (JSON)" placeholder='{"dir": "/var/log"}' className="rounded border px-2 py-1 font-mono" />
        <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white">Create webhook</button>
      </Form>
      <ul data-testid="webhook-list">
        {webhooks.map((w) => (
          <li key={w.id}>
            {w.name} → {w.scriptName} <code>/api/v1/alerts/{w.id}</code> {w.disabledAt ? "(disabled)" : (
              <Form method="post" className="inline"><input type="hidden" name="webhookId" value={w.id} /><button name="intent" value="disable-webhook" className="text-red-700">Disable</button></Form>
            )}
          </li>
        ))}
      </ul>
      <h2 className="text-lg font-semibold">Audit</h2>
      <ul className="font-mono text-xs">
        {audit.map((a) => <li key={a.id}>{formatTimestamp(a.at)} {a.kind} by {a.actor} {a.detail}</li>)}
      </ul>
    </section>
  );
}
