// The client page's form actions. Server-only: the schemas it builds on live
// in .server modules, which the browser bundle does not have, so building it
// at a route module's top level would throw in the browser and stop hydration.
import * as z from "zod";
import type { Role } from "~/db/schema";
import { CAN_MANAGE_ENROLLMENT } from "~/lib/auth.server";
import { policyFormSchema } from "~/models/approval-policies.server";
import { createTokenSchema } from "~/models/enrollment.server";

export const clientActionSchema = z.discriminatedUnion("intent", [
  createTokenSchema.extend({ intent: z.literal("create-token") }),
  z.object({ intent: z.literal("revoke-token"), tokenId: z.string().min(1).max(128) }),
  policyFormSchema.extend({ intent: z.literal("save-policy") }),
  z.object({ intent: z.literal("save-time-zone"), timeZone: z.string().max(100).default("") }),
]);
export type ClientAction = z.infer<typeof clientActionSchema>;

/** Only admins change which commands need the client's consent, or the client's time zone. */
export const CAN_EDIT_APPROVAL_POLICY: readonly Role[] = ["admin"];

/** The roles an intent needs; checked before the form is validated, so a forbidden post learns nothing. */
export function rolesForIntent(intent: unknown): readonly Role[] {
  return intent === "save-policy" || intent === "save-time-zone" ? CAN_EDIT_APPROVAL_POLICY : CAN_MANAGE_ENROLLMENT;
}
