// One captured approval email (local dev and CI only; see dev.mailbox.tsx).
// The text body is shown as sent, and each http(s) URL in it is a link, so a
// test (or a developer) can follow the approval link as the client would.
import { type HeadersFunction, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/cloudflare";
import { Link, useLoaderData } from "@remix-run/react";
import { createDb } from "~/db/client.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { MAILBOX_HEADERS, extractLinks, getCapturedMail, mailboxJson, requireMailbox } from "~/models/mailbox.server";

export const meta: MetaFunction<typeof loader> = ({ data }) => [
  { title: `${data?.message.subject ?? "Message"} · Capture mailbox` },
  { name: "referrer", content: "no-referrer" },
  { name: "robots", content: "noindex, nofollow" },
];

export const headers: HeadersFunction = () => MAILBOX_HEADERS;

export async function loader({ params, context }: LoaderFunctionArgs) {
  const env = getEnv(context);
  requireMailbox(env);
  const message = await getCapturedMail(createDb(env.DB), params.messageId ?? "");
  if (!message) throw new Response("Not Found", { status: 404, statusText: "Not Found", headers: MAILBOX_HEADERS });
  return mailboxJson({ message, links: extractLinks(message.text) });
}

export default function MailboxMessage() {
  const { message, links } = useLoaderData<typeof loader>();
  return (
    <article>
      <p className="mb-4 text-sm">
        <Link to={`/dev/mailbox?to=${encodeURIComponent(message.to)}`} className="text-slate-600 underline">
          ← Mail to {message.to}
        </Link>
      </p>
      <h1 className="mb-2 text-xl font-semibold" data-testid="mail-subject">
        {message.subject}
      </h1>
      <dl className="mb-4 grid grid-cols-[auto_1fr] gap-x-3 text-sm">
        <dt className="text-slate-500">To</dt>
        <dd data-testid="mail-to">{message.to}</dd>
        <dt className="text-slate-500">Stored</dt>
        <dd>{formatTimestamp(message.createdAt)}</dd>
      </dl>
      {links.length ? (
        <ul className="mb-4 space-y-1 text-sm">
          {links.map((url) => (
            <li key={url}>
              <a data-testid="mail-link" href={url} rel="noreferrer" className="break-all text-blue-700 underline">
                {url}
              </a>
            </li>
          ))}
        </ul>
      ) : null}
      <pre
        data-testid="mail-text"
        className="overflow-x-auto whitespace-pre-wrap break-words rounded-md border border-slate-200 bg-white p-4 text-sm"
      >
        {message.text}
      </pre>
      <details className="mt-4">
        <summary className="cursor-pointer text-sm text-slate-600">HTML version</summary>
        {/* Empty sandbox: no scripts, no navigation, a unique origin. */}
        <iframe
          title="HTML version of the message"
          sandbox=""
          srcDoc={message.html}
          className="mt-2 h-[36rem] w-full rounded-md border border-slate-200 bg-white"
        />
      </details>
    </article>
  );
}
