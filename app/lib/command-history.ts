// A technician's command history on one endpoint, read from the endpoint's own
// transcript (ADR 0024): the session already stores who ran what, so the
// history follows the technician to any browser and needs no second store.
import type { TranscriptState } from "./transcript";

export interface HistoryItem {
  text: string;
  shell: string;
}

/** What `userId` ran on this endpoint, oldest first, without consecutive repeats. */
export function technicianHistory(transcript: TranscriptState, userId: string): HistoryItem[] {
  const items: HistoryItem[] = [];
  for (const id of transcript.order) {
    const command = transcript.commands[id]!;
    // Sequence steps were queued as a sequence, not typed: recalling them one by one would surprise.
    if (command.requestedBy.userId !== userId || command.sequence) continue;
    const last = items[items.length - 1];
    if (last && last.text === command.text && last.shell === command.shell) continue;
    items.push({ text: command.text, shell: command.shell });
  }
  return items;
}

/**
 * Reverse search as in a shell's Ctrl-R: the newest entry before `beforeIndex`
 * whose text contains `query` (case-insensitive), or -1.
 */
export function searchBackwards(items: readonly HistoryItem[], query: string, beforeIndex = items.length): number {
  const needle = query.toLowerCase();
  for (let index = Math.min(beforeIndex, items.length) - 1; index >= 0; index--) {
    if (items[index]!.text.toLowerCase().includes(needle)) return index;
  }
  return -1;
}
