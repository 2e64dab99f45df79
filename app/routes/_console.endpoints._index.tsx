import { json, type LoaderFunctionArgs } from "@remix-run/cloudflare";
import { LOCATION_HINT_LABELS } from "@protocol/location-hints";
import { Form, Link, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { OnlineBadge } from "~/components/status-badge";
import { createDb } from "~/db/client.server";
import { OPERATING_SYSTEMS } from "~/db/schema";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatAge } from "~/lib/format";
import { rejectInvalidCursor } from "~/lib/keyset-cursor";
import { listClients } from "~/models/clients.server";
import { listTagNames, parseEndpointSearch, searchEndpoints, type EndpointListRow } from "~/models/endpoints.server";

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args);
  const db = createDb(getEnv(args.context).DB);
  const search = parseEndpointSearch(new URL(args.request.url).searchParams);
  const [page, clients, tagNames] = await Promise.all([
    searchEndpoints(db, member.org.id, search),
    listClients(db, member.org.id),
    listTagNames(db, member.org.id),
  ]).catch(rejectInvalidCursor);
  return json({ search, page, clients: clients.map(({ id, name }) => ({ id, name })), tagNames, now: Date.now() });
}

function groupByClient(rows: EndpointListRow[]) {
  const groups: { clientId: string; clientName: string; rows: EndpointListRow[] }[] = [];
  for (const row of rows) {
    const last = groups[groups.length - 1];
    if (last && last.clientId === row.clientId) last.rows.push(row);
    else groups.push({ clientId: row.clientId, clientName: row.clientName, rows: [row] });
  }
  return groups;
}

const selectClass = "rounded border border-slate-300 bg-white px-2 py-1.5 text-sm";

export default function EndpointsPage() {
  const { search, page, clients, tagNames, now } = useLoaderData<typeof loader>();
  const [params] = useSearchParams();
  const navigation = useNavigation();
  const grouped = search.group === "client";
  const groups = grouped ? groupByClient(page.rows) : [{ clientId: "", clientName: "", rows: page.rows }];
  const nextParams = new URLSearchParams(params);
  if (page.nextCursor) nextParams.set("after", page.nextCursor);
  const firstParams = new URLSearchParams(params);
  firstParams.delete("after");

  return (
    <section>
      <div className="flex items-baseline justify-between">
        <h1 className="text-2xl font-semibold">Endpoints</h1>
        <p className="text-sm text-slate-600" data-testid="endpoint-total">{page.total} endpoint{page.total === 1 ? "" : "s"}</p>
      </div>
      <Form method="get" className="mt-4 flex flex-wrap items-end gap-2" role="search">
        <input
          type="search"
          name="q"
          defaultValue={search.q}
          placeholder="Search hostname, client or tag"
          aria-label="Search endpoints"
          className="min-w-0 basis-64 flex-1 rounded border border-slate-300 px-3 py-1.5 text-sm"
        />
        <select name="client" defaultValue={search.client} aria-label="Client" className={selectClass}>
          <option value="">All clients</option>
          {clients.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
        </select>
        <select name="tag" defaultValue={search.tag} aria-label="Tag" className={selectClass}>
          <option value="">Any tag</option>
          {tagNames.map((t) => <option key={t} value={t}>{t}</option>)}
        </select>
        <select name="os" defaultValue={search.os} aria-label="Operating system" className={selectClass}>
          <option value="">Any OS</option>
          {OPERATING_SYSTEMS.map((os) => <option key={os} value={os}>{os}</option>)}
        </select>
        <select name="status" defaultValue={search.status} aria-label="Status" className={selectClass}>
          <option value="">All in service</option>
          <option value="online">Online</option>
          <option value="offline">Offline</option>
          <option value="revoked">Credential revoked</option>
          <option value="decommissioned">Decommissioned</option>
        </select>
        <select name="group" defaultValue={search.group} aria-label="Grouping" className={selectClass}>
          <option value="client">Group by client</option>
          <option value="none">No grouping</option>
        </select>
        <button className="rounded bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white">
          {navigation.state === "loading" ? "Searching…" : "Search"}
        </button>
      </Form>

      <div className="mt-4 overflow-hidden rounded-lg bg-white shadow">
        <div className="max-w-full overflow-x-auto"><table className="w-full text-sm">
          <thead className="bg-slate-100 text-left text-slate-600">
            <tr>
              <th className="px-4 py-2">Hostname</th>
              <th className="px-4 py-2">Status</th>
              <th className="px-4 py-2">OS</th>
              {grouped ? null : <th className="px-4 py-2">Client</th>}
              <th className="px-4 py-2">Tags</th>
              <th className="px-4 py-2">Region</th>
              <th className="px-4 py-2">Last seen</th>
            </tr>
          </thead>
          {groups.map((group) => (
            <tbody key={group.clientId || "all"} data-testid={grouped ? "client-group" : undefined}>
              {grouped ? (
                <tr className="bg-slate-50">
                  <th colSpan={6} className="px-4 py-1.5 text-left font-semibold text-slate-700">
                    <Link to={`/clients/${group.clientId}`} className="hover:underline">{group.clientName}</Link>
                  </th>
                </tr>
              ) : null}
              {group.rows.map((row) => (
                <tr key={row.id} className="border-t border-slate-100" data-testid="endpoint-row">
                  <td className="px-4 py-2 font-mono">
                    <Link to={`/endpoints/${row.id}`} className="text-indigo-700 hover:underline">{row.hostname}</Link>
                    {row.displayName ? <span className="ml-2 font-sans text-slate-600" data-testid="endpoint-row-display-name">{row.displayName}</span> : null}
                  </td>
                  <td className="px-4 py-2">
                    {row.decommissionedAt !== null ? (
                      <span className="rounded bg-amber-100 px-1.5 py-0.5 text-xs font-medium text-amber-900" data-testid="lifecycle-badge">decommissioned</span>
                    ) : (
                      <OnlineBadge online={row.online} />
                    )}
                    {row.revokedAt !== null && row.decommissionedAt === null ? (
                      <span className="ml-1 rounded bg-red-100 px-1.5 py-0.5 text-xs font-medium text-red-800" data-testid="lifecycle-badge">revoked</span>
                    ) : null}
                  </td>
                  <td className="px-4 py-2">{row.os} {row.osVersion}</td>
                  {grouped ? null : <td className="px-4 py-2">{row.clientName}</td>}
                  <td className="px-4 py-2">
                    {row.tags.map((t) => (
                      <span key={t} className="mr-1 rounded bg-slate-100 px-1.5 py-0.5 text-xs text-slate-700">{t}</span>
                    ))}
                  </td>
                  <td className="px-4 py-2" title={row.locationHint ? LOCATION_HINT_LABELS[row.locationHint] : undefined}>
                    {row.placedAt === null ? "not placed" : [row.locationHint ?? "—", row.runtimeColo, row.jurisdiction?.toUpperCase()].filter(Boolean).join(" · ")}
                  </td>
                  <td className="px-4 py-2 text-slate-600">{formatAge(row.lastSeenAt, now)}</td>
                </tr>
              ))}
            </tbody>
          ))}
        </table></div>
        {page.rows.length === 0 ? <p className="px-4 py-6 text-center text-slate-500">No endpoints match.</p> : null}
      </div>
      <nav className="mt-3 flex justify-between text-sm" aria-label="Pagination">
        {search.after ? <Link to={`?${firstParams}`} className="text-indigo-700 hover:underline">← First page</Link> : <span />}
        {page.nextCursor ? <Link to={`?${nextParams}`} className="text-indigo-700 hover:underline" data-testid="next-page">Next page →</Link> : null}
      </nav>
    </section>
  );
}
