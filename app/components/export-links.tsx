/**
 * Download links for an endpoint's transcript export (commands from the audit
 * trail; see app/routes/_console.endpoints.$endpointId.export.tsx). Plain <a>
 * elements: the export is a resource route, not a page.
 */
export function ExportLinks({ endpointId, from, to }: { endpointId: string; from?: string; to?: string }) {
  const href = (format: "txt" | "json" | "csv") => {
    const params = new URLSearchParams({ format });
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    return `/endpoints/${encodeURIComponent(endpointId)}/export?${params}`;
  };
  return (
    <div className="flex flex-wrap items-center gap-1 text-sm" data-testid="export-links">
      <span className="text-slate-600">Export</span>
      {(["txt", "json", "csv"] as const).map((format) => (
        <a
          key={format}
          href={href(format)}
          download
          aria-label={`Export the transcript as ${format.toUpperCase()}`}
          className="rounded border border-slate-300 bg-white px-1.5 py-0.5 text-xs font-medium uppercase text-indigo-700 hover:bg-slate-50"
        >
          {format}
        </a>
      ))}
    </div>
  );
}
