import { json, type ActionFunctionArgs, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Form, Link, useActionData, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { useEffect, useRef, useState } from "react";
import { createDb } from "~/db/client.server";
import type { Role } from "~/db/schema";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { rejectInvalidCursor } from "~/lib/keyset-cursor";
import { describeTruncation } from "~/lib/truncation";
import { countUnreviewedFailures, listReviewActivity, listReviewFilterOptions, markReviewed, parseReviewFilters, parseReviewItems } from "~/models/review.server";
import { verifyTenantAuditChains, type EndpointChainVerdict } from "~/models/audit-chains.server";
import { REVIEW_STATUSES, STATUS_LABEL } from "~/lib/review";
import { Time, timeZoneFromCookie, useTimeZone } from "~/lib/time-zone";

const REVIEWERS: readonly Role[] = ["admin", "technician", "noc"];

export const meta: MetaFunction = () => [{ title: "Review · Caisey" }];

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args, REVIEWERS);
  const db = createDb(getEnv(args.context).DB);
  const filters = parseReviewFilters(new URL(args.request.url).searchParams);
  const now = Date.now();
  // The window's from/to were typed on the viewer's wall clock (the zone cookie; UTC until the browser has set it).
  const zone = timeZoneFromCookie(args.request.headers.get("Cookie"));
  const page = await listReviewActivity(db, member.org.id, member.userId, filters, { now, zone }).catch(rejectInvalidCursor);
  const [unreviewedFailures, options] = await Promise.all([
    countUnreviewedFailures(db, member.org.id, member.userId, page.window),
    listReviewFilterOptions(db, member.org.id, filters.client),
  ]);
  return json({ filters, page, unreviewedFailures, options, now }, { headers: { "Cache-Control": "no-store" } });
}

type ActionData =
  | { intent: "mark-reviewed"; marked: number; requested: number }
  | { intent: "verify-chains"; verdicts: EndpointChainVerdict[] }
  | { intent: "error"; error: string };

export async function action(args: ActionFunctionArgs) {
  const member = await requireMember(args, REVIEWERS);
  const db = createDb(getEnv(args.context).DB);
  const form = await args.request.formData();
  const intent = form.get("intent");
  if (intent === "mark-reviewed") {
    const items = parseReviewItems(form.getAll("item"));
    const marked = await markReviewed(db, member.org.id, member.userId, items);
    return json<ActionData>({ intent: "mark-reviewed", marked, requested: items.length });
  }
  if (intent === "verify-chains") {
    return json<ActionData>({ intent: "verify-chains", verdicts: await verifyTenantAuditChains(db, member.org.id) });
  }
  return json<ActionData>({ intent: "error", error: "Unknown action" }, { status: 400 });
}


const STATUS_STYLE: Record<string, string> = {
  failed: "bg-red-100 text-red-800",
  timed_out: "bg-orange-100 text-orange-800",
  pending_approval: "bg-violet-100 text-violet-800",
  succeeded: "bg-emerald-100 text-emerald-800",
  cancelled: "bg-slate-200 text-slate-700",
  interrupted: "bg-fuchsia-100 text-fuchsia-900",
};

const inputClass = "rounded border border-slate-300 bg-white px-2 py-1.5 text-sm";

export default function ReviewPage() {
  const zone = useTimeZone();
  const { filters, page, unreviewedFailures, options } = useLoaderData<typeof loader>();
  const actionData = useActionData<ActionData>();
  const navigation = useNavigation();
  const [params] = useSearchParams();
  // Row checkboxes are uncontrolled (they work before hydration and without JS); this only mirrors the count.
  const formRef = useRef<HTMLFormElement>(null);
  const [selectedCount, setSelectedCount] = useState(0);
  const countSelected = () => setSelectedCount(formRef.current?.querySelectorAll('input[name="item"]:checked').length ?? 0);
  const busy = navigation.state !== "idle";
  const submittingIntent = navigation.formData?.get("intent");
  useEffect(countSelected, [page, actionData]);

  const nextParams = new URLSearchParams(params);
  if (page.nextCursor) nextParams.set("after", page.nextCursor);
  const firstParams = new URLSearchParams(params);
  firstParams.delete("after");

  const selectableCount = page.rows.filter((row) => !row.reviewed).length;
  const selectAll = (on: boolean) => {
    formRef.current?.querySelectorAll<HTMLInputElement>('input[name="item"]').forEach((input) => (input.checked = on));
    countSelected();
  };

  return (
    <section className="space-y-4">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h1 className="text-2xl font-semibold">Review</h1>
        <p className={`text-sm font-medium ${unreviewedFailures ? "text-red-700" : "text-slate-600"}`} data-testid="unreviewed-failures">
          {unreviewedFailures} unreviewed failure{unreviewedFailures === 1 ? "" : "s"}
        </p>
      </div>
      <p className="text-sm text-slate-600">
        Finished commands and approvals still waiting, from the audit trail, <Time at={page.window.fromMs} /> to{" "}
        {page.window.toMs === null ? "now" : <Time at={page.window.toMs} />}. Times are in your zone; hover one for UTC.
      </p>

      <Form method="get" className="flex flex-wrap items-end gap-2" role="search" aria-label="Review filters">
        <label className="flex flex-col text-xs text-slate-600">
          Client
          <select name="client" defaultValue={filters.client} className={inputClass}>
            <option value="">All clients</option>
            {options.clients.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
          </select>
        </label>
        <label className="flex flex-col text-xs text-slate-600">
          Endpoint
          {options.tooManyEndpoints ? (
            <input name="host" defaultValue={filters.host} placeholder="hostname" className={inputClass} />
          ) : (
            <select name="endpoint" defaultValue={filters.endpoint} className={inputClass}>
              <option value="">All endpoints</option>
              {options.endpoints.map((e) => <option key={e.id} value={e.id}>{e.hostname}</option>)}
            </select>
          )}
        </label>
        <label className="flex flex-col text-xs text-slate-600">
          Status
          <select name="status" defaultValue={filters.status} className={inputClass}>
            <option value="">Any status</option>
            {REVIEW_STATUSES.map((s) => <option key={s} value={s}>{STATUS_LABEL[s]}</option>)}
          </select>
        </label>
        <label className="flex flex-col text-xs text-slate-600">
          Technician
          <select name="technician" defaultValue={filters.technician} className={inputClass}>
            <option value="">Anyone</option>
            {options.technicians.map((t) => <option key={t.userId} value={t.userId}>{t.name}</option>)}
          </select>
        </label>
        <label className="flex flex-col text-xs text-slate-600">
          From ({zone})
          <input type="datetime-local" name="from" defaultValue={filters.from || page.window.from} className={inputClass} />
        </label>
        <label className="flex flex-col text-xs text-slate-600">
          To ({zone})
          <input type="datetime-local" name="to" defaultValue={filters.to} className={inputClass} />
        </label>
        <button className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white">
          {navigation.state === "loading" ? "Filtering…" : "Filter"}
        </button>
        <Link to="/review" className="px-2 py-1.5 text-sm text-indigo-700 hover:underline">Reset</Link>
      </Form>

      <div className="flex flex-wrap items-center gap-3">
        <Form method="post">
          <input type="hidden" name="intent" value="verify-chains" />
          <button className="rounded border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium hover:bg-slate-50" disabled={busy}>
            {submittingIntent === "verify-chains" ? "Verifying…" : "Verify audit chains"}
          </button>
        </Form>
        {actionData?.intent === "verify-chains" ? <ChainVerdict verdicts={actionData.verdicts} /> : null}
        {actionData?.intent === "mark-reviewed" ? (
          <p className="text-sm text-slate-600" data-testid="mark-result" role="status">
            Marked {actionData.marked} row{actionData.marked === 1 ? "" : "s"} reviewed.
          </p>
        ) : null}
        {actionData?.intent === "error" ? <p className="text-sm text-red-700" role="alert">{actionData.error}</p> : null}
      </div>

      <Form method="post" id="review-form" ref={formRef} onChange={countSelected}>
        <input type="hidden" name="intent" value="mark-reviewed" />
        <div className="mb-2 flex items-center gap-3">
          <button className="rounded bg-slate-800 px-3 py-1.5 text-sm font-medium text-white disabled:opacity-50" disabled={busy}>
            {submittingIntent === "mark-reviewed" ? "Marking…" : "Mark reviewed"}
          </button>
          <span className="text-sm text-slate-600" data-testid="selected-count">{selectedCount} selected</span>
        </div>
        <div className="overflow-x-auto rounded-lg bg-white shadow">
          <table className="w-full text-sm">
            <thead className="bg-slate-100 text-left text-slate-600">
              <tr>
                <th className="px-3 py-2">
                  <input
                    type="checkbox"
                    aria-label="Select all unreviewed rows"
                    checked={selectableCount > 0 && selectedCount === selectableCount}
                    disabled={selectableCount === 0}
                    onChange={(event) => selectAll(event.target.checked)}
                  />
                </th>
                <th className="px-3 py-2">Status</th>
                <th className="px-3 py-2">Time</th>
                <th className="px-3 py-2">Client</th>
                <th className="px-3 py-2">Endpoint</th>
                <th className="px-3 py-2">Technician</th>
                <th className="px-3 py-2">Command</th>
                <th className="px-3 py-2">Exit</th>
                <th className="whitespace-nowrap px-3 py-2">Sent · executed · returned</th>
                <th className="px-3 py-2">Reviewed</th>
              </tr>
            </thead>
            <tbody>
              {page.rows.map((row) => {
                const id = `${row.endpointId}:${row.seq}`;
                return (
                  <tr key={id} className="border-t border-slate-100 align-top" data-testid="review-row" data-status={row.status} data-reviewed={row.reviewed ? "true" : "false"}>
                    <td className="px-3 py-2">
                      {row.reviewed ? null : (
                        <input
                          type="checkbox"
                          name="item"
                          value={id}
                          aria-label={`Select ${row.hostname} ${row.text}`}
                        />
                      )}
                    </td>
                    <td className="px-3 py-2">
                      <span className={`whitespace-nowrap rounded px-1.5 py-0.5 text-xs font-medium ${STATUS_STYLE[row.status] ?? "bg-slate-100 text-slate-700"}`} data-testid="review-status">
                        {STATUS_LABEL[row.status as keyof typeof STATUS_LABEL] ?? row.status}
                      </span>
                    </td>
                    <td className="whitespace-nowrap px-3 py-2 text-slate-600"><Time at={row.at} /></td>
                    <td className="px-3 py-2">{row.clientName ?? "—"}</td>
                    <td className="whitespace-nowrap px-3 py-2 font-mono">{row.hostname}</td>
                    <td className="px-3 py-2">{row.technicianName ?? row.technicianId ?? "—"}</td>
                    <td className="min-w-64 max-w-md px-3 py-2">
                      {row.commandId ? (
                        <Link
                          to={`/endpoints/${encodeURIComponent(row.endpointId)}#${encodeURIComponent(row.commandId)}`}
                          className="break-words font-mono text-indigo-700 hover:underline"
                          data-testid="transcript-link"
                        >
                          {row.text || row.commandId}
                        </Link>
                      ) : (
                        <span className="break-words font-mono">{row.text}</span>
                      )}
                      {row.outputTruncated ? (
                        <p className="mt-1 text-xs text-orange-800" data-testid="output-truncated">
                          {describeTruncation(row.outputTruncated)}
                        </p>
                      ) : null}
                    </td>
                    <td className="px-3 py-2 font-mono">{row.exitCode ?? "–"}</td>
                    <td className="whitespace-nowrap px-3 py-2 font-mono text-xs text-slate-600">
                      <Time at={row.sentAt} timeOnly /> · <Time at={row.executedAt} timeOnly /> · <Time at={row.returnedAt} timeOnly />
                    </td>
                    <td className="px-3 py-2">
                      {row.reviewed ? (
                        <span className="rounded bg-emerald-50 px-1.5 py-0.5 text-xs font-medium text-emerald-800" data-testid="reviewed-indicator">Reviewed</span>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {page.rows.length === 0 ? <p className="px-4 py-6 text-center text-slate-500">Nothing to review in this window.</p> : null}
        </div>
      </Form>
      <nav className="flex justify-between text-sm" aria-label="Pagination">
        {filters.after ? <Link to={`?${firstParams}`} className="text-indigo-700 hover:underline">← Newest</Link> : <span />}
        {page.nextCursor ? <Link to={`?${nextParams}`} className="text-indigo-700 hover:underline" data-testid="next-page">Older →</Link> : null}
      </nav>
    </section>
  );
}

function ChainVerdict({ verdicts }: { verdicts: EndpointChainVerdict[] }) {
  const broken = verdicts.find((v) => !v.ok);
  if (broken && !broken.ok) {
    const others = verdicts.filter((v) => !v.ok).length - 1;
    return (
      <p className="rounded bg-red-50 px-2 py-1 text-sm font-medium text-red-800" data-testid="chain-verdict" data-ok="false" role="alert">
        Audit chain broken on <span className="font-mono">{broken.hostname}</span> at seq {broken.brokenAtSeq}: {broken.reason}
        {others > 0 ? ` (and ${others} more endpoint${others === 1 ? "" : "s"})` : ""}
      </p>
    );
  }
  return (
    <p className="rounded bg-emerald-50 px-2 py-1 text-sm font-medium text-emerald-800" data-testid="chain-verdict" data-ok="true" role="status">
      Audit chain intact for {verdicts.length} endpoint{verdicts.length === 1 ? "" : "s"} ({verdicts.reduce((n, v) => n + v.checked, 0)} events)
    </p>
  );
}
