// Public approval page: a client contact, holding the single-use link the
// endpoint's session DO issued, approves or denies one command. No account; the
// link is the credential, so this page never leaks it (no-referrer, no-store)
// and guards its one POST with a double-submit CSRF token and an Origin check.
import {
  json,
  type ActionFunctionArgs,
  type HeadersFunction,
  type LoaderFunctionArgs,
  type MetaFunction,
} from "@remix-run/cloudflare";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { randomToken } from "~/lib/crypto.server";
import { callerAddress, isSameOriginRequest } from "~/lib/request.server";
import {
  decideApproval,
  viewApproval,
  type DecideApprovalResult,
  type ViewApprovalResult,
} from "~/models/approvals.server";
import { approvalDecisionSchema, type ApprovalView } from "../../protocol/approvals";
import { describeZodError } from "../../protocol/messages";

const CSRF_COOKIE = "caisey_approval_csrf";
const CSRF_FIELD = "csrf";
const CSRF_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const PRIVATE_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } as const;

export const meta: MetaFunction = () => [
  { title: "Approve a command · Caisey" },
  { name: "referrer", content: "no-referrer" },
  { name: "robots", content: "noindex, nofollow" },
];

export const headers: HeadersFunction = ({ parentHeaders }) => {
  const headers = new Headers(parentHeaders);
  for (const [name, value] of Object.entries(PRIVATE_HEADERS)) headers.set(name, value);
  return headers;
};

export async function loader({ request, params, context }: LoaderFunctionArgs) {
  const env = getEnv(context);
  const token = params.token ?? "";
  const result: ViewApprovalResult = await viewApproval(env, token, callerAddress(request));
  // Reuse the browser's value so two open tabs do not invalidate each other.
  const csrf = readCsrfCookie(request) ?? randomToken(32);
  const status = result.ok ? 200 : result.reason === "invalid" ? 404 : 503;
  return json(
    { result, csrf },
    { status, headers: { ...PRIVATE_HEADERS, "Set-Cookie": csrfCookie(csrf, request) } },
  );
}

type ActionResult =
  | { kind: "refused"; error: string }
  | { kind: "invalid_input"; error: string }
  | { kind: "decided"; result: DecideApprovalResult };

export async function action({ request, params, context }: ActionFunctionArgs) {
  const respond = (body: ActionResult, status: number) => json(body, { status, headers: PRIVATE_HEADERS });
  if (!isSameOriginRequest(request)) {
    return respond({ kind: "refused", error: "This request did not come from the approval page, so nothing was changed." }, 403);
  }
  const form = await request.formData();
  const cookie = readCsrfCookie(request);
  const field = form.get(CSRF_FIELD);
  if (!cookie || typeof field !== "string" || !constantTimeEqual(cookie, field)) {
    return respond(
      { kind: "refused", error: "Your session for this page has expired or the form was not sent from this page, so nothing was changed. Reload the page and try again." },
      403,
    );
  }
  const parsed = approvalDecisionSchema.safeParse({
    token: params.token ?? "",
    decision: form.get("decision"),
    approverName: form.get("approverName") ?? "",
  });
  if (!parsed.success) {
    const nameIssue = parsed.error.issues.find((issue) => issue.path[0] === "approverName");
    const decisionIssue = parsed.error.issues.find((issue) => issue.path[0] === "decision");
    const error = nameIssue ? "Enter your name (up to 100 characters)." : decisionIssue ? "Choose Approve or Deny." : describeZodError(parsed.error);
    return respond({ kind: "invalid_input", error }, 400);
  }
  const { token, decision, approverName } = parsed.data;
  const result = await decideApproval(getEnv(context), token, decision, approverName, callerAddress(request));
  const status = result.ok
    ? 200
    : { used: 409, expired: 410, invalid: 404, bad_request: 400, unavailable: 503 }[result.reason];
  return respond({ kind: "decided", result }, status);
}

export default function ApprovePage() {
  const { result, csrf } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>() as ActionResult | undefined;
  const navigation = useNavigation();
  const busy = navigation.state !== "idle";

  const decided = actionData?.kind === "decided" ? actionData.result : null;
  // What the page shows: the freshest view we have.
  const view: ApprovalView | null = decided && "view" in decided ? decided.view : result.ok ? result.view : null;
  const justDecided = decided?.ok ? decided.view : null;

  return (
    <main className="mx-auto max-w-2xl p-6 sm:p-10">
      <p className="text-sm font-semibold tracking-wide text-indigo-700 uppercase">Caisey · command approval</p>
      {view ? (
        <>
          <h1 className="mt-2 text-2xl font-semibold" data-testid="approval-title">
            {view.requestedBy} asks to run a command on {view.hostname}
          </h1>
          <dl className="mt-6 grid grid-cols-[max-content_1fr] gap-x-6 gap-y-2 rounded-lg bg-white p-5 text-sm shadow" data-testid="approval-details">
            <dt className="text-slate-500">Client</dt>
            <dd data-testid="approval-client">{view.clientName || "—"}</dd>
            <dt className="text-slate-500">Endpoint</dt>
            <dd data-testid="approval-hostname">{view.hostname}</dd>
            <dt className="text-slate-500">Technician</dt>
            <dd data-testid="approval-technician">{view.requestedBy}</dd>
            <dt className="text-slate-500">Command</dt>
            <dd>
              <pre className="overflow-x-auto rounded bg-slate-900 p-3 font-mono text-sm whitespace-pre-wrap break-all text-slate-100" data-testid="approval-command">{view.text}</pre>
              <span className="text-xs text-slate-500">runs in {view.shell}</span>
            </dd>
            <dt className="text-slate-500">Reason</dt>
            <dd className="whitespace-pre-wrap" data-testid="approval-reason">{view.reason || "—"}</dd>
            <dt className="text-slate-500">Requested</dt>
            <dd>{formatTimestamp(view.requestedAt)}</dd>
            <dt className="text-slate-500">Link expires</dt>
            <dd>{formatTimestamp(view.expiresAt)}</dd>
          </dl>
        </>
      ) : (
        <h1 className="mt-2 text-2xl font-semibold" data-testid="approval-title">Command approval</h1>
      )}

      {actionData && actionData.kind !== "decided" ? (
        <p className="mt-6 rounded border border-red-300 bg-red-50 p-3 text-sm text-red-800" role="alert" data-testid="approval-error">
          {actionData.error}
        </p>
      ) : null}

      <div className="mt-6" data-testid="approval-state" data-state={view?.state ?? "invalid"}>
        {justDecided ? (
          <Outcome view={justDecided} />
        ) : decided && !decided.ok && !("view" in decided) ? (
          <Message tone="error">{decided.error}</Message>
        ) : view ? (
          <StateMessage view={view} notice={decided && !decided.ok ? decided.error : null} />
        ) : result.ok ? null : (
          <Message tone="error">{result.error}</Message>
        )}
      </div>

      {view?.state === "pending" && !justDecided ? (
        <Form method="post" className="mt-6 space-y-4 rounded-lg bg-white p-5 shadow" data-testid="approval-form">
          <input type="hidden" name={CSRF_FIELD} value={csrf} />
          <label className="flex flex-col text-sm font-medium">
            Your name
            <input
              name="approverName"
              required
              maxLength={100}
              autoComplete="name"
              className="mt-1 rounded border px-2 py-1.5 font-normal"
            />
          </label>
          <p className="text-xs text-slate-500">Your name, the time and your network address are recorded in the audit trail.</p>
          <div className="flex gap-3">
            <button
              name="decision"
              value="approve"
              disabled={busy}
              className="rounded bg-emerald-600 px-4 py-2 font-medium text-white disabled:opacity-50"
            >
              Approve
            </button>
            <button
              name="decision"
              value="deny"
              disabled={busy}
              className="rounded bg-red-600 px-4 py-2 font-medium text-white disabled:opacity-50"
            >
              Deny
            </button>
          </div>
        </Form>
      ) : null}
    </main>
  );
}

function Outcome({ view }: { view: ApprovalView }) {
  return view.state === "approved" ? (
    <Message tone="ok">
      You approved this command at {formatTimestamp(view.decidedAt)}. It will now run on {view.hostname}. You can close this page.
    </Message>
  ) : (
    <Message tone="ok">
      You denied this command at {formatTimestamp(view.decidedAt)}. It will not run. You can close this page.
    </Message>
  );
}

function StateMessage({ view, notice }: { view: ApprovalView; notice: string | null }) {
  switch (view.state) {
    case "pending":
      return notice ? <Message tone="error">{notice}</Message> : null;
    case "approved":
    case "denied":
      return (
        <Message tone="info">
          This link has already been used: {view.state} by {view.decidedBy ?? "someone"} at {formatTimestamp(view.decidedAt)}.
        </Message>
      );
    case "expired":
      return <Message tone="info">This link expired at {formatTimestamp(view.expiresAt)}. Ask the technician for a new one if the command is still needed.</Message>;
  }
}

function Message({ tone, children }: { tone: "ok" | "info" | "error"; children: React.ReactNode }) {
  const styles = {
    ok: "border-emerald-300 bg-emerald-50 text-emerald-900",
    info: "border-slate-300 bg-white text-slate-800",
    error: "border-red-300 bg-red-50 text-red-800",
  }[tone];
  return (
    <p className={`rounded border p-3 text-sm ${styles}`} role="status" data-testid="approval-message">
      {children}
    </p>
  );
}

// ---------------------------------------------------------------------------
// CSRF: a random value in a Strict cookie scoped to /approve, echoed in the form.

function readCsrfCookie(request: Request): string | null {
  const header = request.headers.get("cookie") ?? "";
  for (const part of header.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) {
      const value = rest.join("=");
      return CSRF_PATTERN.test(value) ? value : null;
    }
  }
  return null;
}

function csrfCookie(value: string, request: Request): string {
  const secure = new URL(request.url).protocol === "https:" ? "; Secure" : "";
  return `${CSRF_COOKIE}=${value}; Path=/approve; HttpOnly; SameSite=Strict${secure}`;
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
