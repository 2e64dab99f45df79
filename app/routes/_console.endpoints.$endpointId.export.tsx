// Resource route: one endpoint's command transcript from the audit replica, as
// a download. /endpoints/:endpointId/export?format=txt|json|csv&from=&to=
// (from/to are datetime-local values read as UTC; the default window is the
// review page's: since 18:00 UTC yesterday).
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { getEndpointForOrg } from "~/models/endpoints.server";
import {
  commandsToCsv,
  commandsToJson,
  commandsToText,
  exportFilename,
  exportQuerySchema,
  listEndpointCommands,
  resolveWindow,
} from "~/models/review.server";

const CONTENT_TYPES = {
  txt: "text/plain; charset=utf-8",
  json: "application/json; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
} as const;

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args, ["admin", "technician", "noc"]);
  const db = createDb(getEnv(args.context).DB);
  const endpoint = await getEndpointForOrg(db, member.org.id, args.params.endpointId ?? "");
  if (!endpoint) throw new Response("No such endpoint in your organisation.", { status: 404, statusText: "Not Found" });

  const parsed = exportQuerySchema.safeParse(Object.fromEntries(new URL(args.request.url).searchParams));
  if (!parsed.success) return new Response("format must be txt, json or csv; from/to must be YYYY-MM-DDTHH:mm (UTC).", { status: 400 });
  const { format } = parsed.data;
  const now = Date.now();
  const window = resolveWindow(parsed.data, now);
  const { commands, truncated } = await listEndpointCommands(db, member.org.id, endpoint.id, window);

  const body =
    format === "csv"
      ? commandsToCsv(commands)
      : format === "json"
        ? JSON.stringify(commandsToJson(commands), null, 2)
        : commandsToText(commands, { hostname: endpoint.hostname, clientName: endpoint.clientName, window, generatedAt: now, truncated });
  const filename = exportFilename(endpoint.hostname, window, now, format);
  return new Response(body, {
    headers: {
      "Content-Type": CONTENT_TYPES[format],
      "Content-Disposition": `attachment; filename="${filename}"`,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...(truncated ? { "X-Caisey-Truncated": "true" } : {}),
    },
  });
}
