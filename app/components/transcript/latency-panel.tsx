import { useEffect, useMemo, useRef, useState } from "react";
import type uPlot from "uplot";
import { formatMs } from "~/lib/format";
import { isFinished, ranOnEndpoint, type TranscriptState } from "~/lib/transcript";

/** How many of the newest finished commands the panel charts. */
export const LATENCY_WINDOW = 30;

interface LatencyPoint {
  commandId: string;
  text: string;
  roundTripMs: number;
  queuedMs: number;
  toEndpointMs: number | null;
  onEndpointMs: number;
  backMs: number | null;
}

/** The newest finished commands that ran, oldest first, with the server's split of each round trip. */
export function latencySeries(transcript: TranscriptState, limit = LATENCY_WINDOW): LatencyPoint[] {
  const points: LatencyPoint[] = [];
  for (let index = transcript.order.length - 1; index >= 0 && points.length < limit; index--) {
    const command = transcript.commands[transcript.order[index]!]!;
    if (!isFinished(command) || !ranOnEndpoint(command) || !command.timings) continue;
    const t = command.timings;
    points.push({ commandId: command.commandId, text: command.text, roundTripMs: t.serverRoundTripMs, queuedMs: t.queuedMs, toEndpointMs: t.toEndpointMs, onEndpointMs: t.onEndpointMs, backMs: t.backMs });
  }
  return points.reverse();
}

const SERIES = [
  { label: "round trip", key: "roundTripMs", stroke: "#f8fafc", width: 2 },
  { label: "queue", key: "queuedMs", stroke: "#a5b4fc", width: 1 },
  { label: "to endpoint", key: "toEndpointMs", stroke: "#7dd3fc", width: 1 },
  { label: "on endpoint", key: "onEndpointMs", stroke: "#fcd34d", width: 1 },
  { label: "back", key: "backMs", stroke: "#6ee7b7", width: 1 },
] as const;

/**
 * Round trip and its per-hop split over the last commands, so a technician
 * sees when the path, not the command, is slow. uPlot is loaded in the
 * browser only (it needs a canvas); the same numbers are in a table for
 * screen readers and for anyone who prefers numbers.
 */
export function LatencyPanel({ transcript }: { transcript: TranscriptState }) {
  const points = useMemo(() => latencySeries(transcript), [transcript]);
  const [open, setOpen] = useState(false);
  return (
    <section className="border-t border-slate-700 text-xs text-slate-300" aria-label="Latency" data-testid="latency-panel" data-points={points.length}>
      <button type="button" onClick={() => setOpen((value) => !value)} aria-expanded={open} className="w-full px-4 py-2 text-left text-indigo-200 underline">
        Latency of the last {points.length} command{points.length === 1 ? "" : "s"}
        {points.length ? ` · newest round trip ${formatMs(points[points.length - 1]!.roundTripMs)}` : ""}
      </button>
      {open ? (
        points.length === 0 ? (
          <p className="px-4 pb-3 text-slate-400">No finished command has run on the endpoint yet.</p>
        ) : (
          <div className="px-4 pb-3">
            <LatencyChart points={points} />
            <details className="mt-2">
              <summary className="cursor-pointer">The same as a table</summary>
              <div className="overflow-x-auto">
                <table className="mt-1 w-full font-mono" data-testid="latency-table">
                  <thead>
                    <tr className="text-left">
                      <th scope="col" className="pr-2">#</th>
                      <th scope="col" className="pr-2">command</th>
                      {SERIES.map((s) => <th key={s.key} scope="col" className="pr-2">{s.label}</th>)}
                    </tr>
                  </thead>
                  <tbody>
                    {points.map((point, index) => (
                      <tr key={point.commandId}>
                        <td className="pr-2">{index + 1}</td>
                        <td className="max-w-40 truncate pr-2"><a href={`#${point.commandId}`} className="underline">{point.text}</a></td>
                        {SERIES.map((s) => <td key={s.key} className="pr-2">{formatMs(point[s.key])}</td>)}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </details>
          </div>
        )
      ) : null}
    </section>
  );
}

function LatencyChart({ points }: { points: LatencyPoint[] }) {
  const containerRef = useRef<HTMLDivElement>(null);
  const chartRef = useRef<uPlot | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const [rendered, setRendered] = useState(false);

  useEffect(() => {
    let cancelled = false;
    const container = containerRef.current;
    if (!container) return;
    const data: uPlot.AlignedData = [points.map((_, index) => index + 1), ...SERIES.map((s) => points.map((p) => p[s.key]))];
    import("uplot")
      .then(({ default: UPlot }) => {
        if (cancelled) return;
        if (chartRef.current) {
          chartRef.current.setData(data);
          return;
        }
        const axis = { stroke: "#cbd5e1", grid: { stroke: "#334155" }, ticks: { stroke: "#334155" } };
        chartRef.current = new UPlot(
          {
            width: Math.max(200, container.clientWidth),
            height: 180,
            scales: { x: { time: false } },
            axes: [
              { ...axis, label: "command", values: (_u, ticks) => ticks.map((tick) => (Number.isInteger(tick) ? String(tick) : "")) },
              { ...axis, label: "ms", size: 56 },
            ],
            series: [{ label: "#" }, ...SERIES.map((s) => ({ label: s.label, stroke: s.stroke, width: s.width, points: { show: true, size: 4 } }))],
            legend: { show: true },
          },
          data,
          container,
        );
        setRendered(true);
      })
      .catch((error: unknown) => setFailed(error instanceof Error ? error.message : String(error)));
    return () => {
      cancelled = true;
    };
  }, [points]);

  // Follows the panel's width (phones, rotated tablets) and frees the canvas on unmount.
  useEffect(() => {
    const container = containerRef.current;
    if (!container || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(() => chartRef.current?.setSize({ width: Math.max(200, container.clientWidth), height: 180 }));
    observer.observe(container);
    return () => {
      observer.disconnect();
      chartRef.current?.destroy();
      chartRef.current = null;
    };
  }, []);

  const newest = points[points.length - 1]!;
  return (
    <>
      <div
        ref={containerRef}
        className="w-full overflow-hidden"
        role="img"
        aria-label={`Round trip of the last ${points.length} commands; newest ${formatMs(newest.roundTripMs)}, of which ${formatMs(newest.onEndpointMs)} on the endpoint`}
        data-testid="latency-chart"
        data-rendered={rendered ? "true" : "false"}
      />
      {failed ? <p role="alert" className="text-red-300">The chart could not load ({failed}); the table below has the numbers.</p> : null}
    </>
  );
}
