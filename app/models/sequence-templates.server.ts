import { asc, eq } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { sequenceTemplates } from "~/db/schema";
import { newId } from "~/lib/crypto.server";
import { MAX_COMMAND_LENGTH, MAX_SEQUENCE_STEPS, shellSchema } from "@protocol/messages";

export const sequenceStepsSchema = z
  .array(z.object({ text: z.string().trim().min(1).max(MAX_COMMAND_LENGTH), shell: shellSchema, idempotent: z.boolean().default(false) }))
  .min(1, "A sequence needs at least one step")
  .max(MAX_SEQUENCE_STEPS);

export const saveTemplateSchema = z.object({
  name: z.string().trim().min(1, "Name the template").max(100),
  steps: sequenceStepsSchema,
  stopOnFailure: z.boolean(),
});
export type SaveTemplateInput = z.infer<typeof saveTemplateSchema>;

export interface SequenceTemplate {
  id: string;
  name: string;
  steps: z.infer<typeof sequenceStepsSchema>;
  stopOnFailure: boolean;
  createdBy: string;
}

export async function listSequenceTemplates(db: Database, orgId: string): Promise<SequenceTemplate[]> {
  const rows = await db.select().from(sequenceTemplates).where(eq(sequenceTemplates.orgId, orgId)).orderBy(asc(sequenceTemplates.name));
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    steps: sequenceStepsSchema.catch([]).parse(JSON.parse(row.steps)),
    stopOnFailure: row.stopOnFailure,
    createdBy: row.createdBy,
  }));
}

/** Saves (or replaces, by name) a template of this tenant. */
export async function saveSequenceTemplate(db: Database, orgId: string, input: SaveTemplateInput, createdBy: string): Promise<void> {
  await db
    .insert(sequenceTemplates)
    .values({ id: newId("tpl"), orgId, name: input.name, steps: JSON.stringify(input.steps), stopOnFailure: input.stopOnFailure, createdBy })
    .onConflictDoUpdate({
      target: [sequenceTemplates.orgId, sequenceTemplates.name],
      set: { steps: JSON.stringify(input.steps), stopOnFailure: input.stopOnFailure, createdBy },
    });
}
