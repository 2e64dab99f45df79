import { json, type ActionFunctionArgs, type LoaderFunctionArgs } from "@remix-run/cloudflare";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { z } from "zod";
import { createDb } from "~/db/client.server";
import { CAN_MANAGE_ENROLLMENT, requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { getClientForOrg } from "~/models/clients.server";
import {
  createEnrollmentToken,
  createTokenSchema,
  listEnrollmentTokens,
  revokeEnrollmentToken,
} from "~/models/enrollment.server";
import { describeZodError } from "../../protocol/messages";

async function loadClient(args: LoaderFunctionArgs, roles?: Parameters<typeof requireMember>[1]) {
  const member = await requireMember(args, roles);
  const db = createDb(getEnv(args.context).DB);
  const client = await getClientForOrg(db, member.org.id, args.params.clientId ?? "");
  if (!client) throw new Response("No such client in your organisation.", { status: 404, statusText: "Not Found" });
  return { member, db, client };
}

export async function loader(args: LoaderFunctionArgs) {
  const { member, db, client } = await loadClient(args);
  const tokens = await listEnrollmentTokens(db, member.org.id, client.id);
  return json({ client, tokens, canManage: CAN_MANAGE_ENROLLMENT.includes(member.role), now: Date.now() });
}

const actionSchema = z.discriminatedUnion("intent", [
  createTokenSchema.extend({ intent: z.literal("create-token") }),
  z.object({ intent: z.literal("revoke-token"), tokenId: z.string().min(1).max(128) }),
]);

export async function action(args: ActionFunctionArgs) {
  const { member, db, client } = await loadClient(args, CAN_MANAGE_ENROLLMENT);
  const parsed = actionSchema.safeParse(Object.fromEntries(await args.request.formData()));
  if (!parsed.success) return json({ error: describeZodError(parsed.error), created: null }, { status: 400 });
  if (parsed.data.intent === "revoke-token") {
    await revokeEnrollmentToken(db, member.org.id, parsed.data.tokenId);
    return json({ error: null, created: null });
  }
  const created = await createEnrollmentToken(db, {
    ...parsed.data,
    orgId: member.org.id,
    clientId: client.id,
    createdBy: member.name,
  });
  return json({ error: null, created });
}

export default function ClientPage() {
  const { client, tokens, canManage, now } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const origin = typeof window === "undefined" ? "" : window.location.origin;
  return (
    <section className="space-y-6">
      <div>
        <Link to="/clients" className="text-sm text-indigo-700 hover:underline">← Clients</Link>
        <h1 className="mt-1 text-2xl font-semibold" data-testid="client-name">{client.name}</h1>
        <p className="text-sm text-slate-600">
          {client.contactName ?? "No contact"} {client.contactEmail ? `· ${client.contactEmail}` : ""} ·{" "}
          <Link to={`/endpoints?client=${client.id}`} className="text-indigo-700 hover:underline">View endpoints</Link>
        </p>
      </div>

      <div className="rounded-lg bg-white p-4 shadow">
        <h2 className="text-lg font-semibold">Enrollment tokens</h2>
        <p className="text-sm text-slate-600">
          A runtime enrolls with <code className="font-mono">caisey-runtime enroll --server URL --token TOKEN</code>. Tokens are stored hashed and shown once.
        </p>
        {actionData?.error ? <p className="mt-2 text-sm text-red-700" role="alert">{actionData.error}</p> : null}
        {actionData?.created ? (
          <div className="mt-3 rounded border border-emerald-300 bg-emerald-50 p-3" data-testid="new-token">
            <p className="text-sm font-medium text-emerald-900">Copy this token now; it will not be shown again.</p>
            <code className="mt-1 block break-all font-mono text-sm" data-testid="new-token-value">{actionData.created.token}</code>
            <code className="mt-2 block break-all font-mono text-xs text-slate-600">
              npx caisey-runtime enroll --server {origin || "<console URL>"} --token {actionData.created.token}
            </code>
          </div>
        ) : null}
        {canManage ? (
          <Form method="post" className="mt-4 flex flex-wrap items-end gap-3 text-sm">
            <input type="hidden" name="intent" value="create-token" />
            <label className="flex flex-col">Label<input name="label" className="rounded border px-2 py-1" placeholder="e.g. Line 3 PCs" /></label>
            <label className="flex flex-col">Valid for (hours)<input name="ttlHours" type="number" min={1} max={720} defaultValue={24} className="w-28 rounded border px-2 py-1" /></label>
            <label className="flex flex-col">Uses<input name="maxUses" type="number" min={1} max={10000} defaultValue={1} className="w-24 rounded border px-2 py-1" /></label>
            <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white disabled:opacity-50" disabled={navigation.state !== "idle"}>
              Create token
            </button>
          </Form>
        ) : null}
        <table className="mt-4 w-full text-sm">
          <thead className="text-left text-slate-500">
            <tr><th className="py-1">Label</th><th>Created</th><th>Expires</th><th>Uses</th><th>State</th><th /></tr>
          </thead>
          <tbody>
            {tokens.map((token) => {
              const state = token.revokedAt ? "revoked" : token.expiresAt <= now ? "expired" : token.uses >= token.maxUses ? "used up" : "active";
              return (
                <tr key={token.id} className="border-t border-slate-100" data-testid="token-row">
                  <td className="py-1">{token.label || "—"}</td>
                  <td>{formatTimestamp(token.createdAt)} by {token.createdBy}</td>
                  <td>{formatTimestamp(token.expiresAt)}</td>
                  <td>{token.uses}/{token.maxUses}</td>
                  <td>{state}</td>
                  <td className="text-right">
                    {canManage && state === "active" ? (
                      <Form method="post">
                        <input type="hidden" name="intent" value="revoke-token" />
                        <input type="hidden" name="tokenId" value={token.id} />
                        <button className="text-red-700 hover:underline">Revoke</button>
                      </Form>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
