import { json, type LoaderFunctionArgs } from "@remix-run/cloudflare";
import { Link, useLoaderData } from "@remix-run/react";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { listClients } from "~/models/clients.server";

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args);
  const clients = await listClients(createDb(getEnv(args.context).DB), member.org.id);
  return json({ clients });
}

export default function ClientsPage() {
  const { clients } = useLoaderData<typeof loader>();
  return (
    <section>
      <h1 className="text-2xl font-semibold">Clients</h1>
      <div className="max-w-full overflow-x-auto"><table className="mt-4 w-full overflow-hidden rounded-lg bg-white text-sm shadow">
        <thead className="bg-slate-100 text-left text-slate-600">
          <tr>
            <th className="px-4 py-2">Client</th>
            <th className="px-4 py-2">Contact</th>
            <th className="px-4 py-2 text-right">Endpoints</th>
            <th className="px-4 py-2 text-right">Online</th>
          </tr>
        </thead>
        <tbody>
          {clients.map((client) => (
            <tr key={client.id} className="border-t border-slate-100" data-testid="client-row">
              <td className="px-4 py-2">
                <Link to={`/clients/${client.id}`} className="font-medium text-indigo-700 hover:underline">{client.name}</Link>
              </td>
              <td className="px-4 py-2 text-slate-600">{client.contactName ?? "—"}</td>
              <td className="px-4 py-2 text-right">
                <Link to={`/endpoints?client=${client.id}`} className="hover:underline">{client.endpointCount}</Link>
              </td>
              <td className="px-4 py-2 text-right">{client.onlineCount}</td>
            </tr>
          ))}
          {clients.length === 0 ? (
            <tr><td colSpan={4} className="px-4 py-6 text-center text-slate-500">No clients yet.</td></tr>
          ) : null}
        </tbody>
      </table></div>
    </section>
  );
}
