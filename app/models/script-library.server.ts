// The script library (docs/decisions/0025-script-library-and-api.md): named
// diagnostic sequences with typed parameters. Every save is a new immutable
// version; a run renders one exact version with validated values, each value
// quoted for its step's shell (protocol/shell-quote.ts), and records the
// script id, version and values with the queued steps.
import { and, asc, desc, eq, isNull } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { scripts, scriptVersions } from "~/db/schema";
import { newId } from "~/lib/crypto.server";
import { MAX_COMMAND_LENGTH, MAX_SEQUENCE_STEPS, shellSchema, type ScriptRef, type Shell } from "@protocol/messages";
import { quoteForShell, UnquotableValueError } from "@protocol/shell-quote";

export const MAX_SCRIPT_PARAMS = 20;
const PLACEHOLDER = /\{\{\s*([a-z][a-z0-9_]*)\s*\}\}/g;
const CONTROL = /[\u0000-\u001f\u007f]/;

const paramName = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, "a parameter name is lowercase letters, digits and _, starting with a letter");
const paramBase = { name: paramName, label: z.string().trim().max(100).default("") };

export const paramDeclSchema = z.discriminatedUnion("type", [
  z.object({
    ...paramBase,
    type: z.literal("string"),
    required: z.boolean().default(true),
    default: z.string().max(1000).optional(),
    maxLength: z.number().int().min(1).max(1000).default(200),
    /** A regular expression the whole value must match. */
    pattern: z.string().max(200).optional(),
  }),
  z.object({
    ...paramBase,
    type: z.literal("integer"),
    required: z.boolean().default(true),
    default: z.number().int().optional(),
    min: z.number().int().optional(),
    max: z.number().int().optional(),
  }),
  z.object({
    ...paramBase,
    type: z.literal("enum"),
    required: z.boolean().default(true),
    values: z.array(z.string().min(1).max(200)).min(1).max(50),
    default: z.string().optional(),
  }),
  z.object({ ...paramBase, type: z.literal("boolean"), default: z.boolean().default(false) }),
]);
export type ParamDecl = z.infer<typeof paramDeclSchema>;
export type ParamValue = string | number | boolean;

export const scriptStepSchema = z.object({
  /** Command text; {{name}} stands for a parameter, inserted as one quoted argument for the step's shell. */
  text: z.string().trim().min(1, "Step is empty").max(MAX_COMMAND_LENGTH),
  shell: shellSchema.default("default"),
  idempotent: z.boolean().default(false),
});

export const scriptBodySchema = z
  .object({
    description: z.string().trim().max(1000).default(""),
    params: z.array(paramDeclSchema).max(MAX_SCRIPT_PARAMS).default([]),
    steps: z.array(scriptStepSchema).min(1, "A script needs at least one step").max(MAX_SEQUENCE_STEPS),
    stopOnFailure: z.boolean().default(true),
  })
  .superRefine((body, ctx) => {
    const names = new Set<string>();
    for (const [index, param] of body.params.entries()) {
      if (names.has(param.name)) ctx.addIssue({ code: "custom", path: ["params", index, "name"], message: `parameter ${param.name} is declared twice` });
      names.add(param.name);
      if (param.type === "string" && param.pattern !== undefined) {
        try {
          new RegExp(param.pattern);
        } catch {
          ctx.addIssue({ code: "custom", path: ["params", index, "pattern"], message: "is not a valid regular expression" });
        }
      }
      if (param.type === "enum" && param.default !== undefined && !param.values.includes(param.default)) {
        ctx.addIssue({ code: "custom", path: ["params", index, "default"], message: "must be one of the values" });
      }
    }
    for (const [index, step] of body.steps.entries()) {
      const used = placeholdersIn(step.text);
      for (const name of used) {
        if (!names.has(name)) ctx.addIssue({ code: "custom", path: ["steps", index, "text"], message: `{{${name}}} is not a declared parameter` });
      }
      if (step.text.replace(PLACEHOLDER, "").includes("{{")) {
        ctx.addIssue({ code: "custom", path: ["steps", index, "text"], message: "has a {{ that is not a parameter placeholder such as {{name}}" });
      }
      // Quoting depends on the shell; "default" differs by endpoint OS, so a parameterised step names its shell.
      if (used.length > 0 && step.shell === "default") {
        ctx.addIssue({ code: "custom", path: ["steps", index, "shell"], message: "a step with parameters must name its shell (sh, bash, powershell or cmd)" });
      }
    }
  });
export type ScriptBody = z.infer<typeof scriptBodySchema>;
export type ScriptBodyInput = z.input<typeof scriptBodySchema>;

export const saveScriptSchema = z.object({
  name: z.string().trim().min(1, "Name the script").max(100),
  body: scriptBodySchema,
  changeNote: z.string().trim().max(500).default(""),
  /** The version the editor started from: a save on top of someone else's newer version is refused. */
  baseVersion: z.number().int().positive().nullable().default(null),
});
export type SaveScriptInput = z.input<typeof saveScriptSchema>;

function placeholdersIn(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((match) => match[1]!);
}

/** The zod schema for one script version's parameter values, built from its declarations. */
export function paramValuesSchema(params: readonly ParamDecl[]) {
  const shape: Record<string, z.ZodType<ParamValue | undefined>> = {};
  for (const param of params) {
    let field: z.ZodType<ParamValue>;
    switch (param.type) {
      case "string": {
        let text = z.string().max(param.maxLength).refine((v) => !CONTROL.test(v), "must not contain control characters (newline, tab, …)");
        if (param.pattern !== undefined) {
          const whole = new RegExp(`^(?:${param.pattern})$`);
          text = text.refine((v) => whole.test(v), `must match ${param.pattern}`);
        }
        field = param.required ? text.refine((v) => v.length > 0, "is required") : text;
        break;
      }
      case "integer": {
        let int = z.number().int();
        if (param.min !== undefined) int = int.min(param.min);
        if (param.max !== undefined) int = int.max(param.max);
        // Forms send text; JSON sends numbers. Only whole decimal numbers are read as integers.
        field = z.union([int, z.string().trim().regex(/^-?\d{1,15}$/, "must be a whole number").transform(Number).pipe(int)]);
        break;
      }
      case "enum":
        field = z.enum(param.values as [string, ...string[]]);
        break;
      case "boolean":
        field = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]);
        break;
    }
    const fallback = param.default;
    shape[param.name] =
      fallback !== undefined
        ? z.preprocess((v) => (v === undefined || v === "" ? fallback : v), field)
        : "required" in param && !param.required
          ? param.type === "string"
            ? z.preprocess((v) => (v === undefined ? "" : v), field)
            : field.optional()
          : field;
  }
  return z.strictObject(shape);
}

export class ScriptError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 403 | 404 | 409,
    readonly issues: string[] = [],
  ) {
    super(message);
  }
}

export interface RenderedScript {
  ref: ScriptRef;
  name: string;
  steps: { text: string; shell: Shell; idempotent: boolean }[];
  stopOnFailure: boolean;
}

/**
 * The exact command lines a version runs with these values. Values are quoted
 * for each step's shell and never concatenated raw; a value the shell cannot
 * quote safely is refused, naming the parameter.
 */
export function renderScript(script: { id: string; name: string; version: number; body: ScriptBody }, rawValues: unknown): RenderedScript {
  const parsed = paramValuesSchema(script.body.params).safeParse(rawValues ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message));
    throw new ScriptError(`Invalid parameters: ${issues.join("; ")}`, 400, issues);
  }
  const values = parsed.data as Record<string, ParamValue>;
  const steps = script.body.steps.map((step, index) => {
    const text = step.text.replace(PLACEHOLDER, (_whole, name: string) => {
      try {
        return quoteForShell(step.shell as Exclude<Shell, "default">, values[name] === undefined ? "" : String(values[name]));
      } catch (error) {
        if (error instanceof UnquotableValueError) throw new ScriptError(`Invalid parameters: ${name} ${error.message}`, 400, [`${name}: ${error.message}`]);
        throw error;
      }
    });
    if (text.length > MAX_COMMAND_LENGTH) throw new ScriptError(`Step ${index + 1} is longer than ${MAX_COMMAND_LENGTH} characters with these values`, 400);
    return { text, shell: step.shell, idempotent: step.idempotent };
  });
  return {
    ref: { id: script.id, name: script.name, version: script.version, params: values },
    name: `${script.name} v${script.version}`,
    steps,
    stopOnFailure: script.body.stopOnFailure,
  };
}

// ---------------------------------------------------------------------------
// Storage

export interface ScriptSummary {
  id: string;
  name: string;
  latestVersion: number;
  archivedAt: number | null;
  description: string;
  params: ParamDecl[];
  stepCount: number;
  steps: ScriptBody["steps"];
  stopOnFailure: boolean;
  changedByName: string;
  changedAt: number;
}

function parseBody(raw: string): ScriptBody {
  return scriptBodySchema.parse(JSON.parse(raw));
}

export async function listScripts(db: Database, orgId: string, options: { includeArchived?: boolean } = {}): Promise<ScriptSummary[]> {
  const rows = await db
    .select({ script: scripts, version: scriptVersions })
    .from(scripts)
    .innerJoin(scriptVersions, and(eq(scriptVersions.scriptId, scripts.id), eq(scriptVersions.version, scripts.latestVersion)))
    .where(options.includeArchived ? eq(scripts.orgId, orgId) : and(eq(scripts.orgId, orgId), isNull(scripts.archivedAt)))
    .orderBy(asc(scripts.name));
  return rows.map(({ script, version }) => {
    const body = parseBody(version.body);
    return {
      id: script.id,
      name: script.name,
      latestVersion: script.latestVersion,
      archivedAt: script.archivedAt,
      description: body.description,
      params: body.params,
      stepCount: body.steps.length,
      steps: body.steps,
      stopOnFailure: body.stopOnFailure,
      changedByName: version.changedByName,
      changedAt: version.changedAt,
    };
  });
}

export interface ScriptVersion {
  id: string;
  name: string;
  version: number;
  latestVersion: number;
  archivedAt: number | null;
  body: ScriptBody;
  changedById: string;
  changedByName: string;
  changedAt: number;
  changeNote: string;
}

/** One version (the latest when `version` is omitted) of a script of this tenant. */
export async function getScriptVersion(db: Database, orgId: string, scriptId: string, version?: number): Promise<ScriptVersion | null> {
  const [script] = await db.select().from(scripts).where(and(eq(scripts.orgId, orgId), eq(scripts.id, scriptId)));
  if (!script) return null;
  const [row] = await db
    .select()
    .from(scriptVersions)
    .where(and(eq(scriptVersions.scriptId, scriptId), eq(scriptVersions.version, version ?? script.latestVersion)));
  if (!row) return null;
  return {
    id: script.id,
    name: script.name,
    version: row.version,
    latestVersion: script.latestVersion,
    archivedAt: script.archivedAt,
    body: parseBody(row.body),
    changedById: row.changedById,
    changedByName: row.changedByName,
    changedAt: row.changedAt,
    changeNote: row.changeNote,
  };
}

/** Who changed what: every version, newest first. */
export async function listScriptHistory(db: Database, orgId: string, scriptId: string) {
  return db
    .select({ version: scriptVersions.version, changedByName: scriptVersions.changedByName, changedAt: scriptVersions.changedAt, changeNote: scriptVersions.changeNote, body: scriptVersions.body })
    .from(scriptVersions)
    .where(and(eq(scriptVersions.orgId, orgId), eq(scriptVersions.scriptId, scriptId)))
    .orderBy(desc(scriptVersions.version));
}

export interface LibraryActor {
  userId: string;
  name: string;
}

/**
 * Creates a script (scriptId null) or saves a new version of one. Versions are
 * never changed: the (script, version) key makes two concurrent saves of the
 * same base version conflict instead of one silently replacing the other.
 */
export async function saveScript(db: Database, orgId: string, scriptId: string | null, input: SaveScriptInput, actor: LibraryActor): Promise<{ id: string; version: number }> {
  const parsed = saveScriptSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message));
    throw new ScriptError(`Not saved: ${issues.join("; ")}`, 400, issues);
  }
  const { name, body, changeNote, baseVersion } = parsed.data;
  const [sameName] = await db.select({ id: scripts.id }).from(scripts).where(and(eq(scripts.orgId, orgId), eq(scripts.name, name)));
  if (sameName && sameName.id !== scriptId) throw new ScriptError(`Not saved: another script is already called "${name}"`, 409);
  const versionRow = (id: string, version: number) => ({
    scriptId: id,
    version,
    orgId,
    body: JSON.stringify(body),
    changedById: actor.userId,
    changedByName: actor.name,
    changeNote,
    changedAt: Date.now(),
  });
  if (scriptId === null) {
    const id = newId("scr");
    await db.batch([db.insert(scripts).values({ id, orgId, name, latestVersion: 1 }), db.insert(scriptVersions).values(versionRow(id, 1))]);
    return { id, version: 1 };
  }
  const [current] = await db.select().from(scripts).where(and(eq(scripts.orgId, orgId), eq(scripts.id, scriptId)));
  if (!current) throw new ScriptError("No such script in your organisation", 404);
  if (baseVersion !== null && baseVersion !== current.latestVersion) {
    throw new ScriptError(`Not saved: ${current.name} was changed (now version ${current.latestVersion}) since you opened version ${baseVersion}; reload it and apply your change again`, 409);
  }
  const version = current.latestVersion + 1;
  try {
    await db.batch([
      db.insert(scriptVersions).values(versionRow(scriptId, version)),
      db.update(scripts).set({ name, latestVersion: version }).where(and(eq(scripts.id, scriptId), eq(scripts.latestVersion, current.latestVersion))),
    ]);
  } catch (error) {
    if (String(error).includes("UNIQUE")) throw new ScriptError("Not saved: someone saved this script at the same moment; reload it and try again", 409);
    throw error;
  }
  return { id: scriptId, version };
}

/** Archived scripts leave the run menus and the API; their versions stay, and restoring brings them back. */
export async function setScriptArchived(db: Database, orgId: string, scriptId: string, archived: boolean, actor: LibraryActor): Promise<void> {
  const [current] = await db.select({ id: scripts.id }).from(scripts).where(and(eq(scripts.orgId, orgId), eq(scripts.id, scriptId)));
  if (!current) throw new ScriptError("No such script in your organisation", 404);
  await db
    .update(scripts)
    .set(archived ? { archivedAt: Date.now(), archivedBy: actor.name } : { archivedAt: null, archivedBy: null })
    .where(and(eq(scripts.orgId, orgId), eq(scripts.id, scriptId)));
}

/** Renders a script of this tenant for a run: the latest version unless one is named; archived scripts do not run. */
export async function renderScriptRun(db: Database, orgId: string, scriptId: string, values: unknown, version?: number): Promise<RenderedScript> {
  const script = await getScriptVersion(db, orgId, scriptId, version);
  if (!script) throw new ScriptError(version ? `No version ${version} of script ${scriptId} in your organisation` : `No script ${scriptId} in your organisation`, 404);
  if (script.archivedAt !== null) throw new ScriptError(`${script.name} is archived; restore it before running it`, 409);
  return renderScript(script, values);
}
