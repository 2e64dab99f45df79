// The client page's form actions. Server-only: the schemas it builds on live
// in .server modules, which the browser bundle does not have, so building it
// at a route module's top level would throw in the browser and stop hydration.
import { z } from "zod";
import { policyFormSchema } from "~/models/approval-policies.server";
import { createTokenSchema } from "~/models/enrollment.server";

export const clientActionSchema = z.discriminatedUnion("intent", [
  createTokenSchema.extend({ intent: z.literal("create-token") }),
  z.object({ intent: z.literal("revoke-token"), tokenId: z.string().min(1).max(128) }),
  policyFormSchema.extend({ intent: z.literal("save-policy") }),
]);
