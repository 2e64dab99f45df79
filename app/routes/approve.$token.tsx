// Public approval page: one of the client's approvers, holding the single-use
// link minted for them by the endpoint's session DO, approves or denies one
// command. No account; the link is the credential and names the approver, so
// nobody types a name here. The page never leaks the link (no-referrer,
// no-store) and guards its one POST with a double-submit CSRF token and an
// Origin check. Readers are a client's staff on a phone, often not technical:
// the technician's reason leads, the exact command follows for those who read
// it, times are on the client's clock, and every outcome says what happens next.
import {
  json,
  type ActionFunctionArgs,
  type HeadersFunction,
  type LoaderFunctionArgs,
  type MetaFunction,
} from "@remix-run/cloudflare";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { authenticateMember } from "~/lib/auth.server";
import { randomToken } from "~/lib/crypto.server";
import { getEnv, type Env } from "~/lib/env.server";
import { formatTimestampInZone } from "~/lib/format";
import { callerAddress, isSameOriginRequest } from "~/lib/request.server";
import {
  decideApproval,
  viewApproval,
  type DecideApprovalResult,
  type ViewApprovalResult,
} from "~/models/approvals.server";
import { approvalDecisionSchema, type ApprovalView } from "@protocol/approvals";
import { describeZodError } from "@protocol/messages";

const CSRF_COOKIE = "caisey_approval_csrf";
const CSRF_FIELD = "csrf";
const CSRF_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const PRIVATE_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } as const;

export const meta: MetaFunction = () => [
  { title: "Approve a command · Caisey" },
  { name: "referrer", content: "no-referrer" },
  { name: "robots", content: "noindex, nofollow" },
];

export const headers: HeadersFunction = ({ parentHeaders, loaderHeaders, actionHeaders }) => {
  const headers = new Headers(parentHeaders);
  for (const [name, value] of Object.entries(PRIVATE_HEADERS)) headers.set(name, value);
  // A rate-limited document (429) says when to come back.
  const retryAfter = actionHeaders.get("Retry-After") ?? loaderHeaders.get("Retry-After");
  if (retryAfter) headers.set("Retry-After", retryAfter);
  return headers;
};

/** Retry-After on a rate-limited answer (rate_limited results only). */
function retryHeaders(result: { ok: boolean; reason?: string; retryAfterSeconds?: number }): Record<string, string> {
  return result.reason === "rate_limited" && result.retryAfterSeconds ? { "Retry-After": String(result.retryAfterSeconds) } : {};
}

export async function loader({ request, params, context }: LoaderFunctionArgs) {
  const env = getEnv(context);
  const token = params.token ?? "";
  // Separation of duties: a console user never sees the request as the approver,
  // and their look is not recorded as the client's view of it.
  const consoleUser = await consoleSession(env, request);
  const staffNotice = consoleUser.kind === "console_user" ? staffRefusal(consoleUser.name) : null;
  const result: ViewApprovalResult = staffNotice
    ? { ok: false, reason: "invalid", error: "This request is shown only to the client's approver." }
    : await viewApproval(env, token, callerAddress(request));
  // Reuse the browser's value so two open tabs do not invalidate each other.
  const csrf = readCsrfCookie(request) ?? randomToken(32);
  const status = staffNotice ? 403 : result.ok ? 200 : { invalid: 404, rate_limited: 429, unavailable: 503 }[result.reason];
  return json(
    { result, csrf, staffNotice },
    { status, headers: { ...PRIVATE_HEADERS, ...retryHeaders(result), "Set-Cookie": csrfCookie(csrf, request) } },
  );
}

type ActionResult =
  | { kind: "refused"; error: string }
  | { kind: "invalid_input"; error: string }
  | { kind: "decided"; result: DecideApprovalResult };

export async function action({ request, params, context }: ActionFunctionArgs) {
  const respond = (body: ActionResult, status: number) => json(body, { status, headers: PRIVATE_HEADERS });
  if (!isSameOriginRequest(request, getEnv(context))) {
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
  const env = getEnv(context);
  // Separation of duties: MSP staff never decide for the client, whatever link they hold.
  const consoleUser = await consoleSession(env, request);
  if (consoleUser.kind === "console_user") return respond({ kind: "refused", error: staffRefusal(consoleUser.name) }, 403);
  if (consoleUser.kind === "unknown") {
    return respond(
      { kind: "refused", error: "We could not check who is signed in on this browser, so nothing was changed. Try again in a minute." },
      503,
    );
  }
  const parsed = approvalDecisionSchema.safeParse({ token: params.token ?? "", decision: form.get("decision") });
  if (!parsed.success) {
    const decisionIssue = parsed.error.issues.some((issue) => issue.path[0] === "decision");
    return respond({ kind: "invalid_input", error: decisionIssue ? "Choose Approve or Deny." : describeZodError(parsed.error) }, 400);
  }
  const { token, decision } = parsed.data;
  const result = await decideApproval(env, token, decision, callerAddress(request));
  const status = result.ok
    ? 200
    : { used: 409, withdrawn: 409, expired: 410, invalid: 404, bad_request: 400, rate_limited: 429, unavailable: 503 }[result.reason];
  return json({ kind: "decided", result } satisfies ActionResult, { status, headers: { ...PRIVATE_HEADERS, ...retryHeaders(result) } });
}

type ConsoleSession = { kind: "none" } | { kind: "console_user"; name: string | null } | { kind: "unknown" };

/**
 * Whether this browser is signed in to the console. Any Clerk session counts,
 * even one without a usable membership: console accounts belong to MSP staff,
 * never to a client's approvers.
 */
async function consoleSession(env: Env, request: Request): Promise<ConsoleSession> {
  try {
    const member = await authenticateMember({ request, context: { cloudflare: { env } } });
    if (!("kind" in member)) return { kind: "console_user", name: member.name };
    return member.kind === "signed_out" ? { kind: "none" } : { kind: "console_user", name: null };
  } catch (error) {
    // Clerk's handshake redirect is a thrown Response: let Remix follow it.
    if (error instanceof Response) throw error;
    console.error("approval page: could not check for a console session", error);
    return { kind: "unknown" };
  }
}

function staffRefusal(name: string | null): string {
  const who = name ? `You are signed in to the Caisey console as ${name}.` : "You are signed in to the Caisey console.";
  return `${who} Approvals must come from the client's own approver, not from MSP staff.`;
}

// ---------------------------------------------------------------------------
// Page

export default function ApprovePage() {
  const { result, csrf, staffNotice } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>() as ActionResult | undefined;
  const navigation = useNavigation();
  const busy = navigation.state !== "idle";

  const decided = actionData?.kind === "decided" ? actionData.result : null;
  // What the page shows: the freshest view we have.
  const view: ApprovalView | null = decided && "view" in decided ? decided.view : result.ok ? result.view : null;
  const mspName = result.ok ? result.mspName : "";
  const justDecided = decided?.ok ? decided.view : null;
  const refusal = actionData && actionData.kind !== "decided" ? actionData.error : null;
  const canDecide = view?.state === "pending" && !justDecided && !staffNotice;

  return (
    <main className="mx-auto w-full max-w-2xl px-4 py-6 sm:p-10 [overflow-wrap:anywhere]">
      <header>
        <p className="text-sm font-semibold tracking-wide text-indigo-700 uppercase">Caisey · approval request</p>
        <h1 className="mt-1 text-base font-medium text-slate-600" data-testid="approval-title">
          {view ? `${view.requestedBy} ${view.state === "pending" ? "asks for your approval" : "asked for approval"}` : "Approval request"}
        </h1>
      </header>

      {view ? <Request view={view} mspName={mspName} /> : null}

      {staffNotice ? (
        <p className="mt-6 rounded-lg border border-amber-300 bg-amber-50 p-4 text-base text-amber-900" role="alert" data-testid="approval-staff-notice">
          {staffNotice}
        </p>
      ) : null}

      {refusal && refusal !== staffNotice ? (
        <p className="mt-6 rounded-lg border border-red-300 bg-red-50 p-4 text-base text-red-800" role="alert" data-testid="approval-error">
          {refusal}
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

      {canDecide && view ? (
        <Form method="post" className="mt-6 space-y-4 rounded-lg bg-white p-4 shadow sm:p-5" data-testid="approval-form">
          <input type="hidden" name={CSRF_FIELD} value={csrf} />
          <p className="text-base" data-testid="approval-approver">
            You are approving as <strong className="font-semibold">{view.approver.name}</strong> ({view.approver.email})
          </p>
          <p className="text-sm text-slate-600">
            Your decision is recorded under this name with the time and your network address. If this is not you, close this page.
          </p>
          <div className="flex flex-col gap-3 sm:flex-row">
            <button
              name="decision"
              value="approve"
              disabled={busy}
              className="min-h-12 w-full rounded-lg bg-emerald-600 px-6 py-3 text-lg font-semibold text-white disabled:opacity-50 sm:w-auto"
            >
              Approve
            </button>
            <button
              name="decision"
              value="deny"
              disabled={busy}
              className="min-h-12 w-full rounded-lg bg-red-600 px-6 py-3 text-lg font-semibold text-white disabled:opacity-50 sm:w-auto"
            >
              Deny
            </button>
          </div>
        </Form>
      ) : null}
    </main>
  );
}

/** The request, in reading order: why, who and where, which step, when, then the exact command. */
function Request({ view, mspName }: { view: ApprovalView; mspName: string }) {
  return (
    <section className="mt-4">
      <p className="text-2xl leading-snug font-semibold whitespace-pre-wrap sm:text-3xl" data-testid="approval-reason">
        {view.reason}
      </p>
      <p className="mt-4 text-base text-slate-700" data-testid="approval-summary">
        <span data-testid="approval-technician">{view.requestedBy}</span>
        {mspName ? <> from <span data-testid="approval-msp">{mspName}</span></> : null} asks to run this on{" "}
        <strong className="font-semibold" data-testid="approval-hostname">{view.hostname}</strong>
        {view.clientName ? <> (<span data-testid="approval-client">{view.clientName}</span>)</> : null}.
      </p>
      {view.sequence ? (
        <p className="mt-2 text-base text-slate-700" data-testid="approval-sequence">
          {/* The DO counts steps from 0; people count from 1. */}
          Step {view.sequence.step + 1} of {view.sequence.steps} of ‘{view.sequence.name}’
        </p>
      ) : null}
      <dl className="mt-4 space-y-1 text-sm text-slate-600">
        <div>
          <dt className="inline">Asked: </dt>
          <dd className="inline" data-testid="approval-requested">{formatTimestampInZone(view.requestedAt, view.timeZone)}</dd>
        </div>
        <div>
          <dt className="inline">This link works until: </dt>
          <dd className="inline" data-testid="approval-expires">{formatTimestampInZone(view.expiresAt, view.timeZone)}</dd>
        </div>
      </dl>
      <details className="mt-4 rounded-lg border border-slate-200 bg-white" data-testid="approval-command-details">
        <summary className="min-h-12 cursor-pointer px-4 py-3 text-base font-medium text-slate-800">
          The exact command, for those who read it
        </summary>
        <div className="px-4 pb-4">
          <p className="mb-2 text-sm text-slate-600" data-testid="approval-shell">Runs in {shellName(view.shell)}.</p>
          <pre
            className="rounded bg-slate-900 p-3 font-mono text-sm whitespace-pre-wrap text-slate-100 [overflow-wrap:anywhere]"
            data-testid="approval-command"
          >{view.text}</pre>
        </div>
      </details>
    </section>
  );
}

function shellName(shell: string): string {
  switch (shell) {
    case "powershell":
      return "Windows PowerShell";
    case "cmd":
      return "the Windows Command Prompt";
    case "sh":
    case "bash":
      return "the shell";
    default:
      return "the endpoint's default shell";
  }
}

function Outcome({ view }: { view: ApprovalView }) {
  const at = formatTimestampInZone(view.decidedAt, view.timeZone);
  return view.state === "approved" ? (
    <Message tone="ok">
      You approved this command at {at}. It will run on {view.hostname} as soon as the endpoint is reachable; the technician sees the
      result. Nothing else is needed from you.
    </Message>
  ) : (
    <Message tone="ok">You denied this command at {at}. It will not run. The technician has been told.</Message>
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
          This link has already been used: {view.state} by {view.decidedBy ?? "another approver"} at{" "}
          {formatTimestampInZone(view.decidedAt, view.timeZone)}. Nothing else is needed from you.
        </Message>
      );
    case "withdrawn":
      return <Message tone="info">The technician withdrew this request, so it will not run and nothing is needed from you.</Message>;
    case "expired":
      return (
        <Message tone="info">
          This request expired at {formatTimestampInZone(view.expiresAt, view.timeZone)} without a decision, so it will not run; the
          technician can send a new one if it is still needed.
        </Message>
      );
  }
}

function Message({ tone, children }: { tone: "ok" | "info" | "error"; children: React.ReactNode }) {
  const styles = {
    ok: "border-emerald-300 bg-emerald-50 text-emerald-900",
    info: "border-slate-300 bg-white text-slate-800",
    error: "border-red-300 bg-red-50 text-red-800",
  }[tone];
  return (
    <p className={`rounded-lg border p-4 text-base ${styles}`} role="status" data-testid="approval-message">
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
