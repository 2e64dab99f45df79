import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type SerializeFrom } from "@remix-run/cloudflare";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useState } from "react";
import { createDb } from "~/db/client.server";
import { CAN_MANAGE_ENROLLMENT, requireMember, type SignedInMember } from "~/lib/auth.server";
import { getEnv, type Env } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { publicOrigin } from "~/lib/public-origin.server";
import {
  ApprovalPolicyError,
  getApprovalPolicy,
  parsePolicyForm,
  saveApprovalPolicy,
} from "~/models/approval-policies.server";
import { CAN_EDIT_APPROVAL_POLICY, clientActionSchema, rolesForIntent } from "~/models/client-actions.server";
import { archiveClient, CLIENT_ADMIN_ROLES, getClientForOrg, restoreClient, updateClient } from "~/models/clients.server";
import { directoryActorOf, directoryErrorResponse, listDirectoryAudit } from "~/models/directory-audit.server";
import { ClientFields } from "~/components/client-fields";
import { installCommands, type InstallCommands } from "~/models/installers.server";
import {
  createEnrollmentToken,
  EnrollmentError,
  listEnrollmentTokens,
  revokeEnrollmentToken,
} from "~/models/enrollment.server";
import { refreshSessionPolicies, type SessionPolicyRefresh } from "~/models/session-policy.server";
import { formatApprover } from "@protocol/approvals";
import { describeZodError } from "@protocol/messages";

async function loadClient(args: LoaderFunctionArgs, roles?: Parameters<typeof requireMember>[1]) {
  const member = await requireMember(args, roles);
  const db = createDb(getEnv(args.context).DB);
  const client = await getClientForOrg(db, member.org.id, args.params.clientId ?? "");
  if (!client) throw new Response("No such client in your organisation.", { status: 404, statusText: "Not Found" });
  return { member, db, client };
}

export async function loader(args: LoaderFunctionArgs) {
  const { member, db, client } = await loadClient(args);
  const isAdmin = CLIENT_ADMIN_ROLES.includes(member.role);
  const [tokens, policy, history] = await Promise.all([
    listEnrollmentTokens(db, member.org.id, client.id),
    getApprovalPolicy(db, member.org.id, client.id),
    isAdmin ? listDirectoryAudit(db, member.org.id, { type: "client", id: client.id }, 10) : Promise.resolve([]),
  ]);
  if (!policy) throw new Response("No such client in your organisation.", { status: 404, statusText: "Not Found" });
  return json({
    client,
    tokens,
    policy,
    // An archived client takes no new endpoints (docs/decisions/0022-admin-screens.md).
    canManage: CAN_MANAGE_ENROLLMENT.includes(member.role) && client.archivedAt === null,
    canEditPolicy: CAN_EDIT_APPROVAL_POLICY.includes(member.role),
    canEditClient: isAdmin,
    history,
    now: Date.now(),
  });
}

/** What the sessions were told after a save; null when the endpoint list itself could not be read. */
type RefreshOutcome = SessionPolicyRefresh | null;

type ActionData = {
  error: string | null;
  created: Awaited<ReturnType<typeof createEnrollmentToken>> | null;
  /** The one-line installers carrying the token just created. */
  install?: InstallCommands;
  policyError?: string | null;
  policySaved?: boolean;
  timeZoneError?: string | null;
  timeZoneSaved?: boolean;
  clientError?: string | null;
  /** After an edit: which fields changed (empty: nothing to save). */
  clientSaved?: string[];
  archived?: { revokedTokens: number };
  restored?: boolean;
  refresh?: RefreshOutcome;
};

const CLIENT_INTENTS: readonly unknown[] = ["save-client", "archive-client", "restore-client", "save-time-zone"];

export async function action(args: ActionFunctionArgs) {
  const form = Object.fromEntries(await args.request.formData());
  if (CLIENT_INTENTS.includes(form.intent)) return clientDetailsAction(args, form);
  // Each intent has its own roles; the role check comes before any validation.
  const { member, db, client } = await loadClient(args, rolesForIntent(form.intent));
  const env = getEnv(args.context);
  const parsed = clientActionSchema.safeParse(form);
  if (!parsed.success) {
    const error = describeZodError(parsed.error);
    if (form.intent === "save-policy") return json<ActionData>({ error: null, created: null, policyError: error }, { status: 400 });
    if (form.intent === "save-time-zone") return json<ActionData>({ error: null, created: null, timeZoneError: error }, { status: 400 });
    return json<ActionData>({ error, created: null }, { status: 400 });
  }
  const intent = parsed.data;
  if (intent.intent === "revoke-token") {
    await revokeEnrollmentToken(db, member.org.id, intent.tokenId);
    return json<ActionData>({ error: null, created: null });
  }
  if (intent.intent === "save-policy") {
    const policy = parsePolicyForm(intent);
    if (!policy.ok) return json<ActionData>({ error: null, created: null, policyError: policy.error }, { status: 400 });
    try {
      await saveApprovalPolicy(db, member.org.id, client.id, policy.policy, member.name, { approverLines: policy.approverLines });
    } catch (error) {
      if (error instanceof ApprovalPolicyError) {
        return json<ActionData>({ error: null, created: null, policyError: error.message }, { status: error.status });
      }
      throw error;
    }
    const refresh = await tellSessions(env, member, client.id);
    return json<ActionData>({ error: null, created: null, policyError: null, policySaved: true, refresh });
  }
  if (intent.intent !== "create-token") return json<ActionData>({ error: "Unknown action", created: null }, { status: 400 });
  let created;
  try {
    created = await createEnrollmentToken(db, { ...intent, orgId: member.org.id, clientId: client.id, createdBy: member.name });
  } catch (error) {
    if (error instanceof EnrollmentError) return json<ActionData>({ error: error.message, created: null }, { status: error.status });
    throw error;
  }
  // The console's configured address, never the Host this request named.
  return json<ActionData>({ error: null, created, install: installCommands(publicOrigin(env), created.token) });
}

/**
 * Edit, archive or restore the client (admins). The role is checked before the
 * form is read (403), the tenant before anything changes (404); the model
 * checks both again. A change to the time zone or the contact (the default
 * approver) is pushed to the client's sessions as a policy save is.
 */
async function clientDetailsAction(args: ActionFunctionArgs, form: Record<string, FormDataEntryValue>) {
  const member = await requireMember(args, CLIENT_ADMIN_ROLES);
  const env = getEnv(args.context);
  const db = createDb(env.DB);
  const actor = directoryActorOf(member, args.request);
  const clientId = args.params.clientId ?? "";
  const text = (name: string) => (typeof form[name] === "string" ? (form[name] as string) : undefined);
  const timeZoneOnly = form.intent === "save-time-zone";
  try {
    if (form.intent === "archive-client") {
      const archived = await archiveClient(db, actor, clientId);
      return json<ActionData>({ error: null, created: null, archived });
    }
    if (form.intent === "restore-client") {
      await restoreClient(db, actor, clientId);
      return json<ActionData>({ error: null, created: null, restored: true });
    }
    const patch = timeZoneOnly
      ? { timeZone: text("timeZone") ?? "" }
      : { name: text("name") ?? "", contactName: text("contactName"), contactEmail: text("contactEmail"), timeZone: text("timeZone"), notes: text("notes") };
    const update = await updateClient(db, actor, clientId, patch);
    const refresh = update.sessionsNeedRefresh ? await tellSessions(env, member, clientId) : undefined;
    if (timeZoneOnly) return json<ActionData>({ error: null, created: null, timeZoneError: null, timeZoneSaved: true, refresh });
    return json<ActionData>({ error: null, created: null, clientError: null, clientSaved: update.changed, refresh });
  } catch (error) {
    const refused = directoryErrorResponse(error);
    if (timeZoneOnly) return json<ActionData>({ error: null, created: null, timeZoneError: refused.message }, { status: refused.status });
    return json<ActionData>({ error: null, created: null, clientError: refused.message }, { status: refused.status });
  }
}

/** The change is saved either way; sessions that miss it re-read the policy when their runtime next connects. */
async function tellSessions(env: Env, member: SignedInMember, clientId: string): Promise<RefreshOutcome> {
  try {
    return await refreshSessionPolicies(env, member.org.id, clientId, { userId: member.userId, name: member.name });
  } catch (error) {
    console.error(`policy refresh for client ${clientId} failed`, error);
    return null;
  }
}

export default function ClientPage() {
  const { client, tokens, policy, canManage, canEditPolicy, canEditClient, history, now } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  return (
    <section className="space-y-6">
      <div>
        <Link to="/clients" className="text-sm text-indigo-700 hover:underline">← Clients</Link>
        <div className="mt-1 flex flex-wrap items-center gap-2">
          <h1 className="text-2xl font-semibold" data-testid="client-name">{client.name}</h1>
          {client.archivedAt !== null ? (
            <span className="rounded bg-slate-200 px-2 py-0.5 text-xs font-medium text-slate-700" data-testid="client-archived-badge">archived</span>
          ) : null}
        </div>
        <p className="text-sm text-slate-600">
          {client.contactName ?? "No contact"} {client.contactEmail ? `· ${client.contactEmail}` : ""} ·{" "}
          <span data-testid="client-time-zone">{client.timeZone}</span> ·{" "}
          <Link to={`/endpoints?client=${client.id}`} className="text-indigo-700 underline">View endpoints</Link>
        </p>
        {client.notes ? <p className="mt-1 whitespace-pre-line text-sm text-slate-700" data-testid="client-notes">{client.notes}</p> : null}
      </div>

      {client.archivedAt !== null ? (
        <p className="rounded border border-slate-300 bg-slate-50 p-3 text-sm text-slate-800" role="status" data-testid="client-archived">
          Archived {formatTimestamp(client.archivedAt)}{client.archivedBy ? ` by ${client.archivedBy}` : ""}. It is hidden from the client list and
          takes no new endpoints (its enrollment tokens were revoked). Its endpoints stay readable and keep running; decommission an endpoint to end its service.
        </p>
      ) : null}

      <div className="rounded-lg bg-white p-4 shadow">
        <h2 className="text-lg font-semibold">Install the runtime on an endpoint</h2>
        <p className="text-sm text-slate-600">
          Create an enrollment token, then run its one-line installer on the endpoint as root (Linux, macOS) or in
          PowerShell started as Administrator (Windows). It downloads the runtime from this console, checks its SHA-256,
          enrolls the machine and installs a service that starts at boot and restarts if it stops. Tokens are stored
          hashed and shown once.
        </p>
        {actionData?.error ? <p className="mt-2 text-sm text-red-700" role="alert">{actionData.error}</p> : null}
        {actionData?.created && actionData.install ? (
          <div className="mt-3 space-y-2 rounded border border-emerald-300 bg-emerald-50 p-3" data-testid="new-token">
            <p className="text-sm font-medium text-emerald-900">Copy these now; the token will not be shown again.</p>
            <p className="text-sm">
              Token: <code className="break-all font-mono" data-testid="new-token-value">{actionData.created.token}</code>
            </p>
            <CopyableCommand label="Linux (as root)" testId="install-linux" command={actionData.install.unix} />
            <CopyableCommand label="macOS (as root)" testId="install-macos" command={actionData.install.unix} />
            <CopyableCommand label="Windows (PowerShell as Administrator)" testId="install-windows" command={actionData.install.windows} />
            <p className="text-xs text-slate-600" data-testid="uninstall-commands">
              Uninstall: <code className="font-mono">{actionData.install.uninstallUnix}</code> or{" "}
              <code className="font-mono">{actionData.install.uninstallWindows}</code> (add <code className="font-mono">--purge</code> /{" "}
              <code className="font-mono">-Purge</code> to delete the endpoint&apos;s identity and journal too).
            </p>
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
        <div className="max-w-full overflow-x-auto"><table className="mt-4 w-full text-sm">
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
        </table></div>
      </div>

      <ApprovalPolicySection
        policy={policy}
        canEdit={canEditPolicy}
        error={actionData?.policyError ?? null}
        saved={actionData?.policySaved ? actionData.refresh ?? null : undefined}
        busy={navigation.state !== "idle"}
      />

      {canEditClient ? (
        <ClientDetailsSection
          client={client}
          history={history}
          result={actionData ?? null}
          busy={navigation.state !== "idle"}
        />
      ) : null}
    </section>
  );
}

/** A command line with a button that copies it (the text stays selectable where the clipboard is unavailable). */
function CopyableCommand({ label, command, testId }: { label: string; command: string; testId: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div data-testid={testId}>
      <div className="flex items-center justify-between text-xs font-medium text-slate-700">
        <span>{label}</span>
        <button
          type="button"
          className="rounded border border-slate-300 bg-white px-2 py-0.5 hover:bg-slate-100"
          onClick={() => {
            void navigator.clipboard?.writeText(command).then(
              () => setCopied(true),
              () => setCopied(false),
            );
          }}
        >
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
      <code className="mt-1 block break-all rounded bg-slate-900 p-2 font-mono text-xs text-slate-100" data-testid="install-command">
        {command}
      </code>
    </div>
  );
}

/** "Saved. 12 endpoint sessions updated." plus the ones that were not, by hostname. */
function SavedNotice({ refresh, testId }: { refresh: RefreshOutcome; testId: string }) {
  if (!refresh) {
    return (
      <p className="mt-2 text-sm text-amber-800" role="status" data-testid={testId}>
        Saved. The endpoint sessions could not be told right now; they pick it up when their runtime next connects.
      </p>
    );
  }
  const { refreshed, failed } = refresh;
  return (
    <div className="mt-2 text-sm" role="status" data-testid={testId} data-refreshed={refreshed} data-failed={failed.length}>
      <p className="text-emerald-700">
        Saved. {refreshed} endpoint {refreshed === 1 ? "session" : "sessions"} updated.
      </p>
      {failed.length ? (
        <p className="text-amber-800" data-testid="refresh-failed">
          Not updated: {failed.map((endpoint) => endpoint.hostname).join(", ")}. They pick it up when their runtime next connects.
        </p>
      ) : null}
    </div>
  );
}

const MODE_TEXT = {
  allowlist: {
    label: "Allow-list (recommended)",
    help: "Only the exact commands listed run without the client's approval; everything else asks.",
  },
  denylist: {
    label: "Deny-list (advisory)",
    help: "Advisory: commands matching a pattern ask. Patterns can be evaded by spelling a command differently (su''do, $(printf sud)o), so this is not a security control.",
  },
} as const;

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
  /** Set after a save: what the sessions were told (null: they could not be told). */
  saved: RefreshOutcome | undefined;
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
        Commands that need the client&apos;s consent wait until one of the client&apos;s approvers opens the link emailed to them and approves.
        Approvers must be the client&apos;s own people: nobody in your organisation can approve.
        {policy.isDefault ? " This client uses the built-in defaults: every command asks." : policy.updatedBy ? ` Last changed by ${policy.updatedBy} at ${formatTimestamp(policy.updatedAt)}.` : ""}
      </p>
      {error ? <p className="mt-2 text-sm text-red-700" role="alert" data-testid="policy-error">{error}</p> : null}
      {saved !== undefined && !error ? <SavedNotice refresh={saved} testId="policy-saved" /> : null}

      {canEdit ? (
        <Form method="post" className="mt-4 grid gap-4 text-sm md:grid-cols-2" key={`${policy.updatedAt ?? "default"}`}>
          <input type="hidden" name="intent" value="save-policy" />
          <fieldset className="md:col-span-2" data-testid="policy-mode-field">
            <legend className="font-medium">Which commands need approval</legend>
            {(["allowlist", "denylist"] as const).map((mode) => (
              <label key={mode} className="mt-2 flex items-start gap-2">
                <input type="radio" name="mode" value={mode} defaultChecked={policy.mode === mode} className="mt-1" />
                <span>
                  <span className="font-medium">{MODE_TEXT[mode].label}</span>
                  <span className="block text-slate-600">{MODE_TEXT[mode].help}</span>
                </span>
              </label>
            ))}
          </fieldset>
          <label className="flex flex-col">
            Allowed commands (one exact command line per line)
            <textarea
              name="allowedCommands"
              rows={Math.max(4, policy.allowedCommands.length + 1)}
              defaultValue={policy.allowedCommands.join("\n")}
              className="mt-1 rounded border px-2 py-1 font-mono"
              spellCheck={false}
              placeholder={"hostname\nipconfig /all"}
            />
            <span className="mt-1 text-xs text-slate-500">Allow-list mode: a command runs without asking only if it is exactly one of these lines.</span>
          </label>
          <label className="flex flex-col">
            Patterns (one per line)
            <textarea
              name="patterns"
              rows={Math.max(4, policy.patterns.length + 1)}
              defaultValue={policy.patterns.join("\n")}
              className="mt-1 rounded border px-2 py-1 font-mono"
              spellCheck={false}
            />
            <span className="mt-1 text-xs text-slate-500">Deny-list mode: case-insensitive regular expressions; a match asks.</span>
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
          <div className="flex flex-col gap-4">
            <label className="flex flex-col">
              Link lifetime (hours)
              <input name="linkTtlHours" type="number" min={1} max={168} defaultValue={policy.linkTtlHours} className="mt-1 w-28 rounded border px-2 py-1" />
            </label>
            <div>
              <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white disabled:opacity-50" disabled={busy}>
                Save approval policy
              </button>
            </div>
          </div>
        </Form>
      ) : (
        <dl className="mt-4 grid gap-4 text-sm md:grid-cols-2">
          <div className="md:col-span-2">
            <dt className="text-slate-500">Mode</dt>
            <dd data-testid="policy-mode" data-mode={policy.mode}>
              <span className="font-medium">{MODE_TEXT[policy.mode].label}</span>
              <span className="block text-slate-600">{MODE_TEXT[policy.mode].help}</span>
            </dd>
          </div>
          {policy.mode === "allowlist" ? (
            <div>
              <dt className="text-slate-500">Allowed commands</dt>
              <dd>
                <ul className="font-mono text-xs" data-testid="policy-allowed-commands">
                  {policy.allowedCommands.length ? policy.allowedCommands.map((command) => <li key={command}>{command}</li>) : <li>None: every command asks</li>}
                </ul>
              </dd>
            </div>
          ) : (
            <div>
              <dt className="text-slate-500">Patterns</dt>
              <dd>
                <ul className="font-mono text-xs" data-testid="policy-patterns">
                  {policy.patterns.length ? policy.patterns.map((pattern) => <li key={pattern}>{pattern}</li>) : <li>None: no command needs approval unless flagged</li>}
                </ul>
              </dd>
            </div>
          )}
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

const HISTORY_TEXT: Record<string, string> = {
  "client.created": "created the client",
  "client.updated": "changed",
  "client.archived": "archived the client",
  "client.restored": "restored the client",
};

/** Edit the client's name, contact, time zone and notes; archive or restore it; see who changed what (admins). */
function ClientDetailsSection({
  client,
  history,
  result,
  busy,
}: {
  client: SerializeFrom<typeof loader>["client"];
  history: SerializeFrom<typeof loader>["history"];
  result: SerializeFrom<typeof action> | null;
  busy: boolean;
}) {
  const error = result?.clientError ?? result?.timeZoneError ?? null;
  const saved = result?.clientSaved ?? (result?.timeZoneSaved ? ["timeZone"] : undefined);
  return (
    <div className="rounded-lg bg-white p-4 shadow" data-testid="client-details">
      <h2 className="text-lg font-semibold">Client details</h2>
      <p className="text-sm text-slate-600">
        Approval pages and emails show times in the client&apos;s time zone. The contact approves commands when the approval policy names no
        other approvers, so a change to either is sent to the client&apos;s endpoint sessions.
      </p>
      {error ? <p className="mt-2 text-sm text-red-700" role="alert" data-testid="client-error">{error}</p> : null}
      {saved && !error ? (
        saved.length === 0 ? (
          <p className="mt-2 text-sm text-slate-600" role="status" data-testid="client-saved">Nothing changed.</p>
        ) : result?.refresh !== undefined ? (
          <SavedNotice refresh={result.refresh ?? null} testId="client-saved" />
        ) : (
          <p className="mt-2 text-sm text-emerald-700" role="status" data-testid="client-saved">Saved.</p>
        )
      ) : null}
      {result?.archived ? (
        <p className="mt-2 text-sm text-emerald-700" role="status" data-testid="client-archive-result">
          Archived. {result.archived.revokedTokens} outstanding enrollment {result.archived.revokedTokens === 1 ? "token was" : "tokens were"} revoked.
        </p>
      ) : null}
      <Form method="post" className="mt-3 grid gap-3 text-sm sm:grid-cols-2" key={`${client.name}|${client.timeZone}|${client.contactEmail}|${client.notes}`}>
        <input type="hidden" name="intent" value="save-client" />
        <ClientFields values={client} />
        <div className="sm:col-span-2">
          <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white disabled:opacity-50" disabled={busy}>
            Save client details
          </button>
        </div>
      </Form>
      <Form method="post" className="mt-4 flex flex-wrap items-center gap-3 border-t border-slate-100 pt-3 text-sm">
        {client.archivedAt === null ? (
          <>
            <input type="hidden" name="intent" value="archive-client" />
            <button className="rounded border border-red-300 px-3 py-1.5 font-medium text-red-700 hover:bg-red-50 disabled:opacity-50" disabled={busy}>
              Archive client
            </button>
            <span className="text-slate-600">Hides it from the client list and revokes its enrollment tokens; its endpoints keep running.</span>
          </>
        ) : (
          <>
            <input type="hidden" name="intent" value="restore-client" />
            <button className="rounded border border-slate-300 px-3 py-1.5 font-medium hover:bg-slate-50 disabled:opacity-50" disabled={busy}>
              Restore client
            </button>
          </>
        )}
      </Form>
      {history.length ? (
        <div className="mt-4 border-t border-slate-100 pt-3">
          <h3 className="text-sm font-medium text-slate-700">Changes (audited)</h3>
          <ul className="mt-1 space-y-0.5 text-xs text-slate-600" data-testid="client-history">
            {history.map((event) => (
              <li key={event.seq} data-kind={event.kind}>
                {formatTimestamp(event.at)} · {event.actorName} {HISTORY_TEXT[event.kind] ?? event.kind}
                {event.kind === "client.updated" ? ` ${Object.keys(event.detail).join(", ")}` : ""}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </div>
  );
}
