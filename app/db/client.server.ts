import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

export type Database = ReturnType<typeof createDb>;

/**
 * A database, or a Sessions API session of one (reads from the nearest replica).
 * drizzle's D1 driver is typed for D1Database only but issues nothing beyond
 * prepare() and batch(), which a D1DatabaseSession has too.
 */
export function createDb(d1: D1Database | D1DatabaseSession) {
  return drizzle(d1 as D1Database, { schema });
}
