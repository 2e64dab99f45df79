// The REST API's request and response schemas (/api/v1): the handlers validate
// with them and the OpenAPI document (app/models/openapi.server.ts) is generated
// from them, so the two cannot drift apart.
import * as z from "zod";
import { queueSequenceResponseSchema } from "@protocol/session-contract";

const epochMs = z.number().int().nonnegative();
export const paramValues = z.record(z.string(), z.union([z.string().max(1000), z.number(), z.boolean()])).default({});

export const queueScriptRequestSchema = z
  .object({
    scriptId: z.string().min(1).max(128),
    /** A past version to run; the latest when omitted. */
    version: z.number().int().positive().optional(),
    params: paramValues,
    /** Idempotency key: the same key on the same endpoint queues once. */
    requestId: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, "letters, digits and . _ : - only, at most 100").optional(),
    notBefore: epochMs.nullable().default(null),
    expiresAt: epochMs.nullable().default(null),
    /** Shown to the client's approver when a step needs approval. */
    reason: z.string().trim().max(500).default(""),
  })
  .strict();
export type QueueScriptRequest = z.input<typeof queueScriptRequestSchema>;

export const alertRequestSchema = z
  .object({
    /** The alerting system's id for this alert: a repeat with the same id queues nothing new. */
    alertId: z.string().min(1).max(200),
    endpointId: z.string().min(1).max(128).optional(),
    hostname: z.string().trim().min(1).max(255).optional(),
    params: paramValues,
    reason: z.string().trim().max(500).default(""),
  })
  .strict()
  .refine((alert) => Boolean(alert.endpointId) !== Boolean(alert.hostname), { message: "name the endpoint by endpointId or by hostname (one of them)", path: ["endpointId"] });

export const transcriptQuerySchema = z
  .object({
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export const apiErrorSchema = z.object({ error: z.string(), issues: z.array(z.string()).optional() });
export const queueScriptResponseSchema = queueSequenceResponseSchema.extend({
  script: z.object({ id: z.string(), name: z.string(), version: z.number().int() }),
});

export const alertResponseSchema = queueScriptResponseSchema.extend({ alertId: z.string(), endpointId: z.string() });

