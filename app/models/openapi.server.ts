// The OpenAPI 3.1 document for /api/v1, generated from the same zod schemas
// the handlers validate with (zod v4's z.toJSONSchema emits JSON Schema 2020-12,
// which OpenAPI 3.1 uses as is). A small generator instead of a library: five
// operations, and the libraries that wrap zod for OpenAPI lag zod v4.
// docs/openapi.json is a committed copy (tests/unit/openapi.test.ts keeps it current).
import * as z from "zod";
import { alertRequestSchema, alertResponseSchema, apiErrorSchema, queueScriptRequestSchema, queueScriptResponseSchema, transcriptQuerySchema } from "./api-schemas.server";

const json = (schema: z.ZodType, io: "input" | "output" = "output") => z.toJSONSchema(schema, { io, unrepresentable: "any" });

const errorResponses = {
  "400": { description: "The body or query is invalid; nothing changed", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
  "401": { description: "No token, an unknown token or a revoked token", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
  "403": { description: "The token lacks the scope, or the session refused (role)", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
  "404": { description: "No such endpoint, script or webhook in the token's organisation", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
};

const queryParameters = (schema: z.ZodObject) =>
  Object.entries(schema.shape).map(([name, field]) => ({ name, in: "query", required: false, schema: json(field as z.ZodType, "input") }));

const endpointIdParameter = { name: "endpointId", in: "path", required: true, schema: { type: "string" } };

export function openApiDocument(serverUrl = "https://console.example") {
  return {
    openapi: "3.1.0",
    info: {
      title: "Caisey API",
      version: "1",
      description:
        "Automation for Caisey tenants. Authenticate with an API token created by an admin (Settings → API tokens): `Authorization: Bearer cat_…`. Each operation needs the scope it names.",
    },
    servers: [{ url: `${serverUrl}/api/v1` }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "A tenant API token (cat_…)" } },
      schemas: {
        Error: json(apiErrorSchema),
        QueueScriptRequest: json(queueScriptRequestSchema, "input"),
        QueueScriptResponse: json(queueScriptResponseSchema),
        AlertRequest: json(alertRequestSchema, "input"),
        AlertResponse: json(alertResponseSchema),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      "/endpoints/{endpointId}/sequences": {
        post: {
          operationId: "queueLibraryScript",
          summary: "Queue a library script on an endpoint (scope sequences:queue)",
          description:
            "Renders the script's version with the parameter values (validated against the script's declarations, each value quoted for its step's shell) and queues the steps. The client's approval policy applies to each rendered step. The same requestId on the same endpoint queues once (200, duplicate: true).",
          parameters: [endpointIdParameter],
          requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/QueueScriptRequest" } } } },
          responses: {
            "201": { description: "Queued", content: { "application/json": { schema: { $ref: "#/components/schemas/QueueScriptResponse" } } } },
            "200": { description: "Already queued under this requestId", content: { "application/json": { schema: { $ref: "#/components/schemas/QueueScriptResponse" } } } },
            ...errorResponses,
            "409": { description: "The script is archived, the endpoint decommissioned, or approval is needed and no one can approve", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
            "503": { description: "The endpoint's session or the client's approval policy was unavailable; nothing was queued", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          },
        },
      },
      "/endpoints/{endpointId}/transcript": {
        get: {
          operationId: "readTranscript",
          summary: "An endpoint's commands in a time window, from the audit replica (scope transcripts:read)",
          parameters: [endpointIdParameter, ...queryParameters(transcriptQuerySchema)],
          responses: { "200": { description: "The commands, oldest first (default window: the last 24 hours)" }, ...errorResponses },
        },
      },
      "/review": {
        get: {
          operationId: "readReview",
          summary: "The review list: finished commands and pending approvals (scope review:read)",
          parameters: [
            { name: "status", in: "query", required: false, schema: { type: "string" } },
            { name: "client", in: "query", required: false, schema: { type: "string" } },
            { name: "endpoint", in: "query", required: false, schema: { type: "string" } },
            { name: "from", in: "query", required: false, schema: { type: "string", description: "YYYY-MM-DDTHH:MM, UTC" } },
            { name: "to", in: "query", required: false, schema: { type: "string", description: "YYYY-MM-DDTHH:MM, UTC" } },
            { name: "after", in: "query", required: false, schema: { type: "string", description: "nextCursor of the previous page" } },
          ],
          responses: { "200": { description: "One page, newest first" }, ...errorResponses },
        },
      },
      "/alerts/{webhookId}": {
        post: {
          operationId: "receiveAlert",
          summary: "Inbound alert: queue the webhook's library script on the endpoint the alert names (scope sequences:queue)",
          description: "Idempotent per alertId: a repeated alert gets the first answer again with duplicate: true and queues nothing.",
          parameters: [{ name: "webhookId", in: "path", required: true, schema: { type: "string" } }],
          requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/AlertRequest" } } } },
          responses: {
            "201": { description: "Queued", content: { "application/json": { schema: { $ref: "#/components/schemas/AlertResponse" } } } },
            "200": { description: "This alert was already handled", content: { "application/json": { schema: { $ref: "#/components/schemas/AlertResponse" } } } },
            ...errorResponses,
          },
        },
      },
    },
  };
}
