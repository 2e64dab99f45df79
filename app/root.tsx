import { ClerkApp } from "@clerk/remix";
import { rootAuthLoader } from "@clerk/remix/ssr.server";
import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/cloudflare";
import {
  Links,
  Meta,
  Outlet,
  Scripts,
  ScrollRestoration,
  isRouteErrorResponse,
  useLoaderData,
  useRouteError,
} from "@remix-run/react";
import { useEffect } from "react";
import { useCspNonce } from "~/lib/csp-nonce";
import { getEnv } from "~/lib/env.server";
import { resolveAuthMode } from "~/lib/offline-auth.server";
import { TimeZoneProvider, timeZoneFromCookie } from "~/lib/time-zone";
import stylesheet from "~/tailwind.css";

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: stylesheet },
  { rel: "icon", href: "/favicon.svg", type: "image/svg+xml" },
];

export const meta: MetaFunction = () => [{ title: "Caisey" }];

export const loader = (args: LoaderFunctionArgs) => {
  const mode = resolveAuthMode(getEnv(args.context)).mode;
  const timeZone = timeZoneFromCookie(args.request.headers.get("Cookie"));
  return rootAuthLoader(args, () => ({ authMode: mode, timeZone }));
};

function Document({ children }: { children: React.ReactNode }) {
  // Remix's inline scripts run only with this response's CSP nonce (app/lib/security-headers.server.ts).
  const nonce = useCspNonce();
  return (
    <html lang="en" className="h-full bg-slate-50">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body className="h-full font-sans text-slate-900 antialiased">
        {children}
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

function App() {
  // Marks the moment JS-only controls (controlled inputs, live sockets) start working; browser tests wait for it.
  useEffect(() => {
    document.documentElement.dataset.hydrated = "true";
  }, []);
  const data = useLoaderData<{ timeZone?: string }>();
  return (
    <Document>
      <TimeZoneProvider serverZone={data?.timeZone ?? "UTC"}>
        <Outlet />
      </TimeZoneProvider>
    </Document>
  );
}

const AppWithClerk = ClerkApp(App);

/**
 * Offline auth (local dev and CI) has no Clerk Frontend API, so clerk-js would
 * only be fetched to fail: Clerk builds its URL as https:// on the console's
 * own host, which the plain-http dev server answers with nothing, and every
 * page kept retrying it. The server still verifies every request the same way.
 */
export default function Root() {
  const data = useLoaderData<{ authMode?: string }>();
  return data?.authMode === "offline" ? <App /> : <AppWithClerk />;
}

export function ErrorBoundary() {
  const error = useRouteError();
  const title = isRouteErrorResponse(error) ? `${error.status} ${error.statusText}` : "Something went wrong";
  const detail = isRouteErrorResponse(error)
    ? typeof error.data === "string"
      ? error.data
      : null
    : error instanceof Error
      ? error.message
      : null;
  return (
    <Document>
      <main className="mx-auto max-w-xl p-10">
        <h1 className="text-2xl font-semibold" data-testid="error-title">{title}</h1>
        {detail ? <p className="mt-3 text-slate-600">{detail}</p> : null}
        <a href="/" className="mt-6 inline-block text-indigo-600 underline">Back to the console</a>
      </main>
    </Document>
  );
}
