import { useFetcher } from "@remix-run/react";
import type { EndpointDetailsResult } from "~/routes/_console.endpoints.$endpointId.details";

/** An admin's small form in the endpoint page's header: display name and tags (comma-separated). */
export function EndpointDetailsEditor({ endpoint }: { endpoint: { id: string; displayName: string | null; tags: string[] } }) {
  const fetcher = useFetcher<EndpointDetailsResult>();
  const result = fetcher.state === "idle" ? fetcher.data : undefined;
  return (
    <details className="mt-2 text-sm" data-testid="endpoint-details-editor" open={result?.ok === false ? true : undefined}>
      <summary className="cursor-pointer text-indigo-700 hover:underline">Edit name and tags</summary>
      <fetcher.Form method="post" action={`/endpoints/${endpoint.id}/details`} className="mt-2 flex flex-wrap items-end gap-3" key={`${endpoint.displayName}|${endpoint.tags.join(",")}`}>
        <label className="flex flex-col">
          Display name
          <input name="displayName" maxLength={100} defaultValue={endpoint.displayName ?? ""} placeholder="e.g. Reception PC" className="mt-1 w-56 rounded border px-2 py-1" />
        </label>
        <label className="flex flex-col">
          Tags (comma-separated)
          <input name="tags" maxLength={2000} defaultValue={endpoint.tags.join(", ")} placeholder="e.g. site-a, front desk" className="mt-1 w-72 max-w-full rounded border px-2 py-1" />
        </label>
        <button className="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white disabled:opacity-50" disabled={fetcher.state !== "idle"}>
          Save name and tags
        </button>
      </fetcher.Form>
      {result?.ok === false ? <p className="mt-1 text-red-700" role="alert" data-testid="endpoint-details-error">{result.error}</p> : null}
      {result?.ok ? (
        <p className="mt-1 text-emerald-700" role="status" data-testid="endpoint-details-saved">
          {result.changed.length ? "Saved." : "Nothing changed."}
        </p>
      ) : null}
    </details>
  );
}
