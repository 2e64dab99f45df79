// Where an endpoint's session Durable Object lives. The edge derives a location
// hint from the runtime's own request (Cloudflare's `request.cf`) at the first
// contact, and a tenant may require a jurisdiction; both are fixed when the
// session is created (docs/decisions/0019-session-placement.md).
import * as z from "zod";

import { JURISDICTIONS, LOCATION_HINTS } from "./location-hints";

export { describePlacement, LOCATION_HINT_LABELS, LOCATION_HINTS } from "./location-hints";
export const locationHintSchema = z.enum(LOCATION_HINTS);
export type LocationHint = z.infer<typeof locationHintSchema>;

export { JURISDICTIONS } from "./location-hints";
export const jurisdictionSchema = z.enum(JURISDICTIONS);
export type Jurisdiction = z.infer<typeof jurisdictionSchema>;

/** What the edge knows about where a request came from (a subset of `request.cf`). */
export const edgeOriginSchema = z.object({
  colo: z.string().max(8).nullable(),
  country: z.string().max(4).nullable(),
  continent: z.string().max(4).nullable(),
  longitude: z.number().nullable(),
});
export type EdgeOrigin = z.infer<typeof edgeOriginSchema>;

/** Reads the fields we use from a request's `cf` object, tolerating its absence (local dev, tests). */
export function edgeOriginOf(cf: unknown): EdgeOrigin {
  const value = (cf ?? {}) as Record<string, unknown>;
  const text = (v: unknown, max: number) => (typeof v === "string" && v.length > 0 && v.length <= max ? v : null);
  const longitude = typeof value.longitude === "string" ? Number.parseFloat(value.longitude) : typeof value.longitude === "number" ? value.longitude : NaN;
  return {
    colo: text(value.colo, 8),
    country: text(value.country, 4),
    continent: text(value.continent, 4),
    longitude: Number.isFinite(longitude) ? longitude : null,
  };
}

const MIDDLE_EAST = new Set(["AE", "BH", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "PS", "QA", "SA", "SY", "TR", "YE", "EG"]);
const EASTERN_EUROPE = new Set(["BG", "BY", "CZ", "EE", "FI", "GR", "HU", "LT", "LV", "MD", "PL", "RO", "RS", "RU", "SK", "UA", "CY"]);
/** Roughly the line between Cloudflare's wnam and enam regions (Dallas, -96.8, is east of it). */
const NORTH_AMERICA_SPLIT_LONGITUDE = -100;

/**
 * The hint nearest to where the request came from, or null when the edge gave
 * nothing to go on (local dev): then Cloudflare places the object near the
 * caller, which for the runtime's own first contact is near the endpoint anyway.
 */
export function locationHintFor(origin: EdgeOrigin): LocationHint | null {
  const country = origin.country?.toUpperCase() ?? null;
  if (country && MIDDLE_EAST.has(country)) return "me";
  switch (origin.continent?.toUpperCase()) {
    case "NA":
      return origin.longitude !== null && origin.longitude < NORTH_AMERICA_SPLIT_LONGITUDE ? "wnam" : "enam";
    case "SA":
      return "sam";
    case "EU":
      return country && EASTERN_EUROPE.has(country) ? "eeur" : "weur";
    case "AS":
      return "apac";
    case "OC":
      return "oc";
    case "AF":
      return "afr";
    default:
      return null;
  }
}

/** Everything needed to address an endpoint's session without creating it in the wrong place. */
export const sessionPlacementSchema = z.object({
  jurisdiction: jurisdictionSchema.nullable(),
  locationHint: locationHintSchema.nullable(),
  /** When the runtime's first contact created the session; null = not created yet (viewers must not create it). */
  placedAt: z.number().int().nullable(),
  /** The Cloudflare data centre the runtime last came through, e.g. "SYD". */
  colo: z.string().nullable(),
});
export type SessionPlacement = z.infer<typeof sessionPlacementSchema>;

