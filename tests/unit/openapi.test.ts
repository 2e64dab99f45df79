// docs/openapi.json is the committed copy of the document /api/v1/openapi.json serves; regenerate with
// UPDATE_OPENAPI=1 npx vitest run --config vitest.unit.config.ts tests/unit/openapi.test.ts
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../../app/models/openapi.server";

const COPY = new URL("../../docs/openapi.json", import.meta.url);

describe("OpenAPI document", () => {
  it("is generated from the zod schemas and the committed copy is current", () => {
    const generated = `${JSON.stringify(openApiDocument(), null, 2)}\n`;
    if (process.env.UPDATE_OPENAPI === "1") writeFileSync(COPY, generated);
    expect(readFileSync(COPY, "utf8")).toBe(generated);
    const doc = JSON.parse(generated);
    expect(doc.components.schemas.AlertRequest.properties.alertId).toMatchObject({ type: "string", minLength: 1, maxLength: 200 });
  });
});
