import { useState, type FormEvent } from "react";
import { Form } from "@remix-run/react";
import { formatTimestamp } from "~/lib/format";

export type LifecycleIntentName = "revoke-credential" | "rotate-credential" | "decommission";

/** What the endpoint page's action answers for a lifecycle intent. */
export interface LifecycleActionResult {
  intent: LifecycleIntentName;
  error: string | null;
  /** D1 changed but the endpoint's session did not hear of it: what that means for the live connection. */
  sessionWarning: string | null;
  /** Rotation only: the token and command, shown this once. */
  rotation: { token: string; command: string; expiresAt: number } | null;
}

interface LifecycleEndpoint {
  id: string;
  hostname: string;
  revokedAt: number | null;
  decommissionedAt: number | null;
}

export function lifecycleState(endpoint: LifecycleEndpoint): "active" | "revoked" | "decommissioned" {
  return endpoint.decommissionedAt !== null ? "decommissioned" : endpoint.revokedAt !== null ? "revoked" : "active";
}

/** The endpoint's lifecycle state, for everyone who can open the page. */
export function LifecycleBanner({ endpoint }: { endpoint: LifecycleEndpoint }) {
  const state = lifecycleState(endpoint);
  if (state === "active") return <span hidden data-testid="lifecycle-state" data-state="active" />;
  if (state === "decommissioned") {
    return (
      <div role="status" data-testid="lifecycle-state" data-state="decommissioned" className="rounded-lg border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900">
        <p className="font-semibold">Decommissioned {formatTimestamp(endpoint.decommissionedAt)}</p>
        <p>
          No runtime can connect and nothing new runs on this endpoint. Its transcript, exports and audit trail stay readable here.
        </p>
      </div>
    );
  }
  return (
    <div role="status" data-testid="lifecycle-state" data-state="revoked" className="rounded-lg border border-red-300 bg-red-50 p-3 text-sm text-red-900">
      <p className="font-semibold">Runtime credential revoked {formatTimestamp(endpoint.revokedAt)}</p>
      <p>The runtime is refused until it enrolls again with a re-enrollment token (Rotate credential).</p>
    </div>
  );
}

function confirmFirst(message: string) {
  return (event: FormEvent<HTMLFormElement>) => {
    if (!window.confirm(message)) event.preventDefault();
  };
}

const buttonClass = "rounded border px-3 py-1.5 text-sm font-medium disabled:opacity-50";

/** Admin-only actions; the action refuses every other role whatever this renders. */
export function LifecycleActions({
  endpoint,
  result,
  busy,
}: {
  endpoint: LifecycleEndpoint;
  result: LifecycleActionResult | null;
  busy: boolean;
}) {
  const [confirming, setConfirming] = useState(false);
  const state = lifecycleState(endpoint);
  return (
    <div className="rounded-lg bg-white p-4 shadow" data-testid="lifecycle-actions">
      <h2 className="text-lg font-semibold">Runtime credential</h2>
      {result?.error ? <p role="alert" className="mt-2 text-sm text-red-700" data-testid="lifecycle-error">{result.error}</p> : null}
      {result?.sessionWarning ? (
        <div role="alert" className="mt-2 rounded border border-amber-300 bg-amber-50 p-2 text-sm text-amber-900" data-testid="lifecycle-warning">
          {result.sessionWarning}
        </div>
      ) : null}
      {result?.rotation ? (
        <div className="mt-3 rounded border border-emerald-300 bg-emerald-50 p-3" data-testid="rotation">
          <p className="text-sm font-medium text-emerald-900">
            Run this on {endpoint.hostname} now; the token works once, until {formatTimestamp(result.rotation.expiresAt)}, and is not shown again.
          </p>
          <code className="mt-1 block break-all font-mono text-sm" data-testid="rotation-command">{result.rotation.command}</code>
          <p className="mt-1 text-xs text-slate-600">
            It keeps the endpoint (and its transcript) and replaces the revoked credential; then restart the runtime. It is refused on a machine with another hostname or OS.
          </p>
        </div>
      ) : null}
      {state === "decommissioned" ? (
        result?.sessionWarning && result.intent === "decommission" ? (
          <Form method="post" className="mt-3">
            <input type="hidden" name="intent" value="decommission" />
            <input type="hidden" name="confirmHostname" value={endpoint.hostname} />
            <button className={`${buttonClass} border-slate-300`} disabled={busy}>Decommission again</button>
          </Form>
        ) : null
      ) : (
        <>
          <p className="mt-1 text-sm text-slate-600">
            Revoking disconnects the runtime now and refuses it after. Rotating revokes too and gives you a one-time command that re-enrolls this
            endpoint with a new credential. Decommissioning is permanent; the transcript is kept.
          </p>
          <div className="mt-3 flex flex-wrap gap-2">
            <Form method="post" onSubmit={confirmFirst(`Revoke the runtime credential of ${endpoint.hostname}? The runtime is disconnected now.`)}>
              <input type="hidden" name="intent" value="revoke-credential" />
              <button className={`${buttonClass} border-red-300 text-red-800`} disabled={busy}>
                {state === "revoked" ? "Revoke again" : "Revoke credential"}
              </button>
            </Form>
            <Form
              method="post"
              onSubmit={confirmFirst(`Rotate the credential of ${endpoint.hostname}? The current one is revoked now and the runtime disconnected.`)}
            >
              <input type="hidden" name="intent" value="rotate-credential" />
              <button className={`${buttonClass} border-indigo-300 text-indigo-800`} disabled={busy}>Rotate credential</button>
            </Form>
            {confirming ? null : (
              <button type="button" className={`${buttonClass} border-slate-300 text-slate-800`} onClick={() => setConfirming(true)}>
                Decommission…
              </button>
            )}
          </div>
          {confirming ? (
            <Form method="post" className="mt-3 flex flex-wrap items-end gap-2 rounded border border-red-200 bg-red-50 p-3 text-sm">
              <input type="hidden" name="intent" value="decommission" />
              <label className="flex flex-col">
                Type <span className="font-mono">{endpoint.hostname}</span> to decommission it for good
                <input name="confirmHostname" autoComplete="off" className="mt-1 rounded border px-2 py-1 font-mono" />
              </label>
              <button className={`${buttonClass} border-red-600 bg-red-600 text-white`} disabled={busy}>Decommission endpoint</button>
              <button type="button" className="text-slate-600 hover:underline" onClick={() => setConfirming(false)}>Cancel</button>
            </Form>
          ) : null}
        </>
      )}
    </div>
  );
}
