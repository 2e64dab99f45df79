/** The client's editable fields, shared by the create form here and the edit form on the client page. */
export function ClientFields({ values }: { values?: { name: string; contactName: string | null; contactEmail: string | null; timeZone: string; notes: string } }) {
  return (
    <>
      <label className="flex flex-col">
        Client name
        <input name="name" required maxLength={100} defaultValue={values?.name} className="mt-1 rounded border px-2 py-1" />
      </label>
      <label className="flex flex-col">
        Time zone (IANA, e.g. Europe/Berlin)
        <input name="timeZone" required maxLength={64} spellCheck={false} defaultValue={values?.timeZone ?? "UTC"} className="mt-1 rounded border px-2 py-1 font-mono" />
      </label>
      <label className="flex flex-col">
        Contact name
        <input name="contactName" maxLength={100} defaultValue={values?.contactName ?? ""} className="mt-1 rounded border px-2 py-1" />
      </label>
      <label className="flex flex-col">
        Contact email
        <input name="contactEmail" type="email" maxLength={200} defaultValue={values?.contactEmail ?? ""} className="mt-1 rounded border px-2 py-1" />
      </label>
      <label className="flex flex-col sm:col-span-2">
        Notes (your organisation only)
        <textarea name="notes" rows={3} maxLength={2000} defaultValue={values?.notes ?? ""} className="mt-1 rounded border px-2 py-1" />
      </label>
    </>
  );
}
