import { json, redirect, type ActionFunctionArgs, type LoaderFunctionArgs } from "@remix-run/cloudflare";
import { Form, Link, useActionData, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { ClientFields } from "~/components/client-fields";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { CLIENT_ADMIN_ROLES, createClient, listClients } from "~/models/clients.server";
import { directoryActorOf, directoryErrorResponse } from "~/models/directory-audit.server";

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args);
  const includeArchived = new URL(args.request.url).searchParams.get("archived") === "1";
  const clients = await listClients(createDb(getEnv(args.context).DB), member.org.id, { includeArchived });
  return json({ clients, includeArchived, canCreate: CLIENT_ADMIN_ROLES.includes(member.role) });
}

/** Creates a client (admins); the role is checked before the form is read. */
export async function action(args: ActionFunctionArgs) {
  const member = await requireMember(args, CLIENT_ADMIN_ROLES);
  const form = Object.fromEntries(await args.request.formData());
  if (form.intent !== "create-client") return json({ error: "Unknown action" }, { status: 400 });
  const text = (name: string) => (typeof form[name] === "string" ? (form[name] as string) : undefined);
  try {
    const { id } = await createClient(createDb(getEnv(args.context).DB), directoryActorOf(member, args.request), {
      name: text("name") ?? "",
      contactName: text("contactName"),
      contactEmail: text("contactEmail"),
      timeZone: text("timeZone"),
      notes: text("notes"),
    });
    return redirect(`/clients/${id}`);
  } catch (error) {
    const refused = directoryErrorResponse(error);
    return json({ error: refused.message }, { status: refused.status });
  }
}

export default function ClientsPage() {
  const { clients, includeArchived, canCreate } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const [params] = useSearchParams();
  const archivedLink = new URLSearchParams(params);
  if (includeArchived) archivedLink.delete("archived");
  else archivedLink.set("archived", "1");
  return (
    <section>
      <div className="flex flex-wrap items-center gap-3">
        <h1 className="text-2xl font-semibold">Clients</h1>
        <Link to={`/clients${archivedLink.size ? `?${archivedLink}` : ""}`} className="ml-auto text-sm text-indigo-700 hover:underline" data-testid="toggle-archived">
          {includeArchived ? "Hide archived clients" : "Show archived clients"}
        </Link>
      </div>
      {canCreate ? (
        <details className="mt-4 rounded-lg bg-white p-4 shadow" open={Boolean(actionData?.error) || clients.length === 0} data-testid="new-client">
          <summary className="cursor-pointer text-lg font-semibold">New client</summary>
          <p className="mt-1 text-sm text-slate-600">
            The contact is the client&apos;s own person: they approve commands that need consent until you name other approvers on the client page.
            Nobody in your organisation can be a client&apos;s contact or approver.
          </p>
          {actionData?.error ? <p className="mt-2 text-sm text-red-700" role="alert" data-testid="client-form-error">{actionData.error}</p> : null}
          <Form method="post" className="mt-3 grid gap-3 text-sm sm:grid-cols-2">
            <input type="hidden" name="intent" value="create-client" />
            <ClientFields />
            <div className="sm:col-span-2">
              <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white disabled:opacity-50" disabled={navigation.state !== "idle"}>
                Create client
              </button>
            </div>
          </Form>
        </details>
      ) : null}
      <div className="mt-4 overflow-x-auto">
        <table className="w-full overflow-hidden rounded-lg bg-white text-sm shadow">
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
              <tr key={client.id} className="border-t border-slate-100" data-testid="client-row" data-archived={client.archivedAt !== null}>
                <td className="px-4 py-2">
                  <Link to={`/clients/${client.id}`} className="font-medium text-indigo-700 hover:underline">{client.name}</Link>
                  {client.archivedAt !== null ? <span className="ml-2 rounded bg-slate-200 px-2 py-0.5 text-xs text-slate-700">archived</span> : null}
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
        </table>
      </div>
    </section>
  );
}
