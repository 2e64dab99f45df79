// Remix's default Cloudflare entry, plus the CSP nonce (server.ts makes one
// per request and sets the header): Remix's inline scripts get it through
// CspNonceContext (root.tsx), React's streaming scripts through `nonce`.
import type { AppLoadContext, EntryContext } from "@remix-run/cloudflare";
import { RemixServer } from "@remix-run/react";
import { isbot } from "isbot";
import { renderToReadableStream } from "react-dom/server";
import { CspNonceContext } from "~/lib/csp-nonce";
import { getCspNonce } from "~/lib/env.server";

export default async function handleRequest(
  request: Request,
  responseStatusCode: number,
  responseHeaders: Headers,
  remixContext: EntryContext,
  loadContext: AppLoadContext,
) {
  const nonce = getCspNonce(loadContext);
  if (!nonce) throw new Error("No CSP nonce in the load context: requests must enter through server.ts");
  const body = await renderToReadableStream(
    <CspNonceContext.Provider value={nonce}>
      <RemixServer context={remixContext} url={request.url} />
    </CspNonceContext.Provider>,
    {
      nonce,
      onError(error: unknown) {
        console.error(error);
        responseStatusCode = 500;
      },
    },
  );
  if (isbot(request.headers.get("user-agent") ?? "")) await body.allReady;
  responseHeaders.set("Content-Type", "text/html; charset=utf-8");
  return new Response(body, { headers: responseHeaders, status: responseStatusCode });
}
