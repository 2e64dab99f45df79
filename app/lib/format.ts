/** "3 min ago"-style age for last-seen columns; absolute time in the title attribute. */
export function formatAge(timestamp: number | null, now = Date.now()): string {
  if (timestamp === null) return "never";
  const seconds = Math.max(0, Math.round((now - timestamp) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

export function formatTimestamp(timestamp: number | null): string {
  return timestamp === null ? "" : new Date(timestamp).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}
