// Runtime diagnostics go to stderr so stdout stays free for command output
// (`status`) and so service managers capture them as the error stream.

function pad(value: number, width = 2): string {
  return String(value).padStart(width, "0");
}

/** Local time, because whoever reads this log is sitting at (or remoted into) this machine. */
export function timestamp(date = new Date()): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  );
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const stderrLogger: Logger = {
  info: (message) => process.stderr.write(`[${timestamp()}] ${message}\n`),
  warn: (message) => process.stderr.write(`[${timestamp()}] warning: ${message}\n`),
  error: (message) => process.stderr.write(`[${timestamp()}] error: ${message}\n`),
};

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function formatDelay(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
