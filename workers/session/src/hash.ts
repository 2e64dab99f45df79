import { createHash } from "node:crypto";

/** Synchronous, so the audit chain and approval checks never yield mid-message. */
export function sha256Hex(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}
