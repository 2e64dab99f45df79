import { useCallback, useEffect, useRef, useState } from "react";

interface PendingConfirmation {
  title: string;
  detail: string;
  confirmLabel: string;
  resolve: (confirmed: boolean) => void;
}

/**
 * Asks before a destructive action in a modal <dialog>: the browser traps
 * focus in it, Escape cancels, and focus returns to the control that asked.
 * Returns the dialog element to render and `confirm(...)`, which resolves true
 * only when the confirm button was pressed.
 */
export function useConfirmDialog() {
  const [pending, setPending] = useState<PendingConfirmation | null>(null);
  const dialogRef = useRef<HTMLDialogElement>(null);
  const returnFocusRef = useRef<HTMLElement | null>(null);

  const confirm = useCallback((title: string, detail: string, confirmLabel: string) => {
    returnFocusRef.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    return new Promise<boolean>((resolve) => setPending({ title, detail, confirmLabel, resolve }));
  }, []);

  useEffect(() => {
    const dialog = dialogRef.current;
    if (pending && dialog && !dialog.open) dialog.showModal();
  }, [pending]);

  const close = (confirmed: boolean) => {
    pending?.resolve(confirmed);
    setPending(null);
    dialogRef.current?.close();
    returnFocusRef.current?.focus();
  };

  const element = pending ? (
    <dialog
      ref={dialogRef}
      aria-labelledby="confirm-title"
      aria-describedby="confirm-detail"
      onCancel={(event) => {
        event.preventDefault();
        close(false);
      }}
      className="max-w-md rounded-lg p-0 text-slate-900 shadow-xl backdrop:bg-slate-900/50"
      data-testid="confirm-dialog"
    >
      <div className="space-y-3 p-5">
        <h2 id="confirm-title" className="text-lg font-semibold">{pending.title}</h2>
        <p id="confirm-detail" className="text-sm text-slate-700">{pending.detail}</p>
        <div className="flex justify-end gap-2">
          <button type="button" autoFocus onClick={() => close(false)} className="rounded border border-slate-400 px-3 py-1.5 text-sm">
            Keep it
          </button>
          <button type="button" onClick={() => close(true)} className="rounded bg-red-700 px-3 py-1.5 text-sm font-medium text-white">
            {pending.confirmLabel}
          </button>
        </div>
      </div>
    </dialog>
  ) : null;

  return { confirm, element };
}
