// Capture mailbox (local dev and CI only): the approval emails the session
// worker stored instead of sending, newest first. 404 unless offline mode is
// on; no sign-in, because the reader plays the client contact, not a console
// user (see app/models/mailbox.server.ts).
import { type HeadersFunction, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Form, Link, useLoaderData, useOutlet } from "@remix-run/react";
import { createDb } from "~/db/client.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { MAILBOX_HEADERS, listCapturedMail, mailboxJson, requireMailbox } from "~/models/mailbox.server";

export const meta: MetaFunction = () => [
  { title: "Capture mailbox · Caisey (dev)" },
  { name: "referrer", content: "no-referrer" },
  { name: "robots", content: "noindex, nofollow" },
];

export const headers: HeadersFunction = () => MAILBOX_HEADERS;

export async function loader({ request, context }: LoaderFunctionArgs) {
  const env = getEnv(context);
  requireMailbox(env);
  const to = new URL(request.url).searchParams.get("to")?.trim() || null;
  const messages = await listCapturedMail(createDb(env.DB), { to });
  return mailboxJson({ messages, to });
}

export default function Mailbox() {
  const outlet = useOutlet();
  return (
    <main className="mx-auto w-full max-w-3xl px-4 py-8">
      <div
        role="note"
        className="mb-6 rounded-md border border-amber-300 bg-amber-100 px-4 py-3 text-sm font-medium text-amber-950"
      >
        Capture mailbox — local development and CI only
        <p className="mt-1 text-xs font-normal text-amber-900">
          Approval emails are stored here instead of being sent (APPROVAL_MAIL_PROVIDER=capture).
        </p>
      </div>
      {outlet ?? <MessageList />}
    </main>
  );
}

function MessageList() {
  const { messages, to } = useLoaderData<typeof loader>();
  return (
    <>
      <div className="mb-4 flex flex-wrap items-end justify-between gap-3">
        <h1 className="text-2xl font-semibold">Mailbox</h1>
        <Form method="get" className="flex items-end gap-2">
          <label className="text-sm">
            <span className="block text-xs text-slate-600">Recipient</span>
            <input
              type="email"
              name="to"
              defaultValue={to ?? ""}
              placeholder="anyone"
              className="rounded-md border border-slate-300 px-2 py-1 text-sm"
            />
          </label>
          <button type="submit" className="rounded-md border border-slate-300 bg-white px-3 py-1 text-sm hover:bg-slate-50">
            Filter
          </button>
          {to ? (
            <Link to="/dev/mailbox" className="text-sm text-slate-600 underline">
              Clear
            </Link>
          ) : null}
        </Form>
      </div>
      {messages.length === 0 ? (
        <p className="rounded-md border border-slate-200 bg-white px-4 py-6 text-sm text-slate-600" data-testid="mailbox-empty">
          {to ? `No messages to ${to}.` : "No messages yet."}
        </p>
      ) : (
        <ul className="divide-y divide-slate-200 rounded-md border border-slate-200 bg-white" data-testid="mail-list">
          {messages.map((message) => (
            <li key={message.id} data-testid="mail-item" data-to={message.to}>
              <Link to={`/dev/mailbox/${message.id}`} className="block px-4 py-3 hover:bg-slate-50">
                <span className="block font-medium">{message.subject}</span>
                <span className="block text-xs text-slate-500">
                  To {message.to} · {formatTimestamp(message.createdAt)}
                </span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
