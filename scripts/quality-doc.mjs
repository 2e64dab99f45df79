// The generated sections of docs/quality.md: each script owns the text between its two markers and rewrites only
// that, so the hand-written prose around it stays (scripts/mutation-report.mjs, scripts/safety-mutations.mjs).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
const docPath = `${root}docs/quality.md`;

/** Replaces everything from `begin` to `end` (both kept) with `body` lines; throws when the markers are missing. */
export function writeSection(begin, end, body) {
  const doc = readFileSync(docPath, "utf8");
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`docs/quality.md has no "${begin}" … "${end}" section`);
  writeFileSync(docPath, doc.slice(0, from) + [begin, "", ...body, "", end].join("\n") + doc.slice(to + end.length));
}

/** A stored result file (JSON), or `fallback` when there is none yet. */
export function readStore(path, fallback) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return fallback;
  }
}

export function writeStore(path, value) {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** A markdown table cell: one line, pipes escaped, cut at `max` characters. */
export const cell = (text, max = 140) => String(text ?? "").replace(/\s+/g, " ").replace(/\|/g, "\\|").slice(0, max);
