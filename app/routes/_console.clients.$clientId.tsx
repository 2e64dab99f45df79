import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type SerializeFrom } from "@remix-run/cloudflare";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { createDb } from "~/db/client.server";
import type { Role } from "~/db/schema";
import { CAN_MANAGE_ENROLLMENT, requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import {
  ApprovalPolicyError,
  getApprovalPolicy,
  parsePolicyForm,
  saveApprovalPolicy,
} from "~/models/approval-policies.server";
import { clientActionSchema } from "~/models/client-actions.server";
import { getClientForOrg } from "~/models/clients.server";
import {
  createEnrollmentToken,
  listEnrollmentTokens,
  revokeEnrollmentToken,
} from "~/models/enrollment.server";
import { formatApprover } from "../../protocol/approvals";
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
  const [tokens, policy] = await Promise.all([
    listEnrollmentTokens(db, member.org.id, client.id),
    getApprovalPolicy(db, member.org.id, client.id),
  ]);
  if (!policy) throw new Response("No such client in your organisation.", { status: 404, statusText: "Not Found" });
  return json({
    client,
    tokens,
    policy,
    canManage: CAN_MANAGE_ENROLLMENT.includes(member.role),
    canEditPolicy: CAN_EDIT_APPROVAL_POLICY.includes(member.role),
    now: Date.now(),
  });
}

/** Only admins change which commands need the client's consent. */
const CAN_EDIT_APPROVAL_POLICY: readonly Role[] = ["admin"];


type ActionData = {
  error: string | null;
  created: Awaited<ReturnType<typeof createEnrollmentToken>> | null;
  policyError?: string | null;
  policySaved?: boolean;
};

export async function action(args: ActionFunctionArgs) {
  const form = Object.fromEntries(await args.request.formData());
  // Each intent has its own roles; the role check comes before any validation.
  const { member, db, client } = await loadClient(
    args,
    form.intent === "save-policy" ? CAN_EDIT_APPROVAL_POLICY : CAN_MANAGE_ENROLLMENT,
  );
  const parsed = clientActionSchema.safeParse(form);
  if (!parsed.success) {
    const error = describeZodError(parsed.error);
    return json<ActionData>({ error: form.intent === "save-policy" ? null : error, created: null, policyError: form.intent === "save-policy" ? error : null }, { status: 400 });
  }
  if (parsed.data.intent === "revoke-token") {
    await revokeEnrollmentToken(db, member.org.id, parsed.data.tokenId);
    return json<ActionData>({ error: null, created: null });
  }
  if (parsed.data.intent === "save-policy") {
    const policy = parsePolicyForm(parsed.data);
    if (!policy.ok) return json<ActionData>({ error: null, created: null, policyError: policy.error }, { status: 400 });
    try {
      await saveApprovalPolicy(db, member.org.id, client.id, policy.policy, member.name);
    } catch (error) {
      if (error instanceof ApprovalPolicyError) {
        return json<ActionData>({ error: null, created: null, policyError: error.message }, { status: error.status });
      }
      throw error;
    }
    return json<ActionData>({ error: null, created: null, policyError: null, policySaved: true });
  }
  const created = await createEnrollmentToken(db, {
    ...parsed.data,
    orgId: member.org.id,
    clientId: client.id,
    createdBy: member.name,
  });
  return json<ActionData>({ error: null, created });
}

export default function ClientPage() {
  const { client, tokens, policy, canManage, canEditPolicy, now } = useLoaderData<typeof loader>();
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

      <ApprovalPolicySection
        policy={policy}
        canEdit={canEditPolicy}
        error={actionData?.policyError ?? null}
        saved={actionData?.policySaved ?? false}
        busy={navigation.state !== "idle"}
      />
    </section>
  );
}

function ApprovalPolicySection({
  policy,
  canEdit,
  error,
  saved,
  busy,
}: {
  policy: SerializeFrom<typeof loader>["policy"];
  canEdit: boolean;
  error: string | null;
  saved: boolean;
  busy: boolean;
}) {
  return (
    <div className="rounded-lg bg-white p-4 shadow" data-testid="approval-policy">
      <div className="flex items-center gap-2">
        <h2 className="text-lg font-semibold">Client approval</h2>
        {policy.isDefault ? (
          <span className="rounded bg-slate-200 px-2 py-0.5 text-xs font-medium text-slate-700" data-testid="policy-default-badge">default</span>
        ) : null}
      </div>
      <p className="text-sm text-slate-600">
        Commands matching any pattern (case-insensitive regular expressions) wait for one of the client&apos;s approvers to open a single-use link and approve them.
        {policy.isDefault ? " This client uses the built-in defaults." : policy.updatedBy ? ` Last changed by ${policy.updatedBy} at ${formatTimestamp(policy.updatedAt)}.` : ""}
      </p>
      {error ? <p className="mt-2 text-sm text-red-700" role="alert" data-testid="policy-error">{error}</p> : null}
      {saved && !error ? <p className="mt-2 text-sm text-emerald-700" role="status" data-testid="policy-saved">Approval policy saved.</p> : null}

      {canEdit ? (
        <Form method="post" className="mt-4 grid gap-4 text-sm md:grid-cols-2" key={`${policy.updatedAt ?? "default"}`}>
          <input type="hidden" name="intent" value="save-policy" />
          <label className="flex flex-col">
            Patterns (one per line)
            <textarea
              name="patterns"
              rows={Math.max(4, policy.patterns.length + 1)}
              defaultValue={policy.patterns.join("\n")}
              className="mt-1 rounded border px-2 py-1 font-mono"
              spellCheck={false}
            />
          </label>
          <label className="flex flex-col">
            Approvers (one per line, as Name &lt;email&gt;)
            <textarea
              name="approvers"
              rows={Math.max(4, policy.approvers.length + 1)}
              defaultValue={policy.approvers.map(formatApprover).join("\n")}
              className="mt-1 rounded border px-2 py-1"
              spellCheck={false}
            />
          </label>
          <label className="flex flex-col">
            Link lifetime (hours)
            <input name="linkTtlHours" type="number" min={1} max={168} defaultValue={policy.linkTtlHours} className="mt-1 w-28 rounded border px-2 py-1" />
          </label>
          <div className="flex items-end">
            <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white disabled:opacity-50" disabled={busy}>
              Save approval policy
            </button>
          </div>
        </Form>
      ) : (
        <dl className="mt-4 grid gap-4 text-sm md:grid-cols-3">
          <div>
            <dt className="text-slate-500">Patterns</dt>
            <dd>
              <ul className="font-mono text-xs" data-testid="policy-patterns">
                {policy.patterns.length ? policy.patterns.map((pattern) => <li key={pattern}>{pattern}</li>) : <li>None: no command needs approval unless flagged</li>}
              </ul>
            </dd>
          </div>
          <div>
            <dt className="text-slate-500">Approvers</dt>
            <dd>
              <ul data-testid="policy-approvers">
                {policy.approvers.length ? policy.approvers.map((a) => <li key={a.email}>{formatApprover(a)}</li>) : <li>No approver contacts</li>}
              </ul>
            </dd>
          </div>
          <div>
            <dt className="text-slate-500">Link lifetime</dt>
            <dd data-testid="policy-ttl">{policy.linkTtlHours} hours</dd>
          </div>
        </dl>
      )}
    </div>
  );
}
