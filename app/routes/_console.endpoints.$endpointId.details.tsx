// Resource route (action only): an admin renames or retags an endpoint from the
// endpoint page's header (components/endpoint-details-editor.tsx). The role is
// checked before the form is read (403), the tenant before anything changes
// (404, as for any other tenant's id); the model checks both again and audits.
import { json, type ActionFunctionArgs } from "@remix-run/cloudflare";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { directoryActorOf, directoryErrorResponse } from "~/models/directory-audit.server";
import { ENDPOINT_DETAILS_ROLES, updateEndpointDetails } from "~/models/endpoint-details.server";

export type EndpointDetailsResult = { ok: true; changed: string[] } | { ok: false; error: string };

export async function action(args: ActionFunctionArgs) {
  const member = await requireMember(args, ENDPOINT_DETAILS_ROLES);
  const form = await args.request.formData();
  const text = (name: string) => {
    const value = form.get(name);
    return typeof value === "string" ? value : undefined;
  };
  try {
    const update = await updateEndpointDetails(createDb(getEnv(args.context).DB), directoryActorOf(member, args.request), args.params.endpointId ?? "", {
      displayName: text("displayName"),
      tags: text("tags"),
    });
    return json<EndpointDetailsResult>({ ok: true, changed: update.changed });
  } catch (error) {
    const refused = directoryErrorResponse(error);
    return json<EndpointDetailsResult>({ ok: false, error: refused.message }, { status: refused.status });
  }
}
