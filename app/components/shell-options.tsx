// The shells a command can run in, as <option>s for every shell picker in the console.
const SHELL_LABELS = [
  ["default", "default shell"],
  ["sh", "sh"],
  ["bash", "bash"],
  ["powershell", "PowerShell"],
  ["cmd", "cmd (Windows)"],
] as const;

export function ShellOptions() {
  return (
    <>
      {SHELL_LABELS.map(([value, label]) => (
        <option key={value} value={value}>
          {label}
        </option>
      ))}
    </>
  );
}
