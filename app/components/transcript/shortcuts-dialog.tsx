import { useEffect, useRef, useState } from "react";

export const SHORTCUTS: readonly { keys: string; what: string }[] = [
  { keys: "Enter", what: "Run the command in the input" },
  { keys: "↑ / ↓", what: "Your earlier commands on this endpoint (in the command input)" },
  { keys: "Ctrl + R", what: "Search your earlier commands; Ctrl + R again for an older match, Enter takes it, Esc leaves" },
  { keys: "?", what: "This list (outside text fields)" },
  { keys: "Esc", what: "Close a dialog" },
];

function typingInto(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

/** The page's keyboard shortcuts, in a modal dialog opened with "?" or its button. */
export function ShortcutsDialog() {
  const [open, setOpen] = useState(false);
  const dialogRef = useRef<HTMLDialogElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "?" && !event.ctrlKey && !event.metaKey && !event.altKey && !typingInto(event.target)) {
        event.preventDefault();
        setOpen(true);
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  useEffect(() => {
    const dialog = dialogRef.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);

  return (
    <>
      <button ref={buttonRef} type="button" onClick={() => setOpen(true)} className="rounded border border-slate-600 px-1.5 text-slate-300 hover:text-white" aria-keyshortcuts="?">
        Keyboard shortcuts <kbd aria-hidden="true">?</kbd>
      </button>
      <dialog
        ref={dialogRef}
        aria-labelledby="shortcuts-title"
        onClose={() => {
          setOpen(false);
          buttonRef.current?.focus();
        }}
        className="max-w-lg rounded-lg p-0 text-slate-900 shadow-xl backdrop:bg-slate-900/50"
        data-testid="shortcuts-dialog"
      >
        <div className="p-5">
          <h2 id="shortcuts-title" className="text-lg font-semibold">Keyboard shortcuts</h2>
          <dl className="mt-3 space-y-2 text-sm">
            {SHORTCUTS.map((shortcut) => (
              <div key={shortcut.keys} className="flex gap-3">
                <dt className="w-24 shrink-0"><kbd className="rounded border border-slate-300 bg-slate-100 px-1.5 font-mono">{shortcut.keys}</kbd></dt>
                <dd>{shortcut.what}</dd>
              </div>
            ))}
          </dl>
          <form method="dialog" className="mt-4 text-right">
            <button className="rounded bg-slate-800 px-3 py-1.5 text-sm text-white">Close</button>
          </form>
        </div>
      </dialog>
    </>
  );
}
