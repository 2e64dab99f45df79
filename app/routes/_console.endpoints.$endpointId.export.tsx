// Resource route: one endpoint's command transcript from the audit replica, as
// a download. /endpoints/:endpointId/export?format=txt|json|csv&from=&to=
// (from/to are datetime-local values read as UTC; the default window is the
// review page's: since 18:00 UTC yesterday). The file itself is built by
// transcriptExportResponse (CSV formula-neutralised, TXT control characters
// made visible, truncated output stated in every format).
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { transcriptExportResponse } from "~/models/transcript-export.server";

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args, ["admin", "technician", "noc"]);
  const db = createDb(getEnv(args.context).DB);
  return transcriptExportResponse(db, member.org.id, args.params.endpointId ?? "", new URL(args.request.url).searchParams);
}
