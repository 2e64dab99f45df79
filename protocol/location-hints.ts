// Location hints and how a placement reads on a page, without zod: the console's client bundle imports
// this (zod's schema set-up probes \`new Function\`, which the console's CSP refuses). Schemas: placement.ts.

/** Cloudflare's Durable Object location hints. */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

export const LOCATION_HINT_LABELS: Record<LocationHint, string> = {
  wnam: "Western North America",
  enam: "Eastern North America",
  sam: "South America",
  weur: "Western Europe",
  eeur: "Eastern Europe",
  apac: "Asia-Pacific",
  oc: "Oceania",
  afr: "Africa",
  me: "Middle East",
};

/** Jurisdictions a tenant may require for its endpoints' sessions ("" = none). */
export const JURISDICTIONS = ["eu", "fedramp"] as const;
export type Jurisdiction = (typeof JURISDICTIONS)[number];

export interface PlacementView {
  jurisdiction: string | null;
  locationHint: LocationHint | null;
  placedAt: number | null;
  colo: string | null;
}

/** "Oceania (oc), runtime via SYD, EU jurisdiction" for the endpoint page. */
export function describePlacement(placement: PlacementView): string {
  if (placement.placedAt === null) return "Not placed yet: the session is created near the endpoint at its runtime's first contact";
  const parts = [placement.locationHint ? `${LOCATION_HINT_LABELS[placement.locationHint]} (${placement.locationHint})` : "Near the runtime's first contact (no hint)"];
  if (placement.colo) parts.push(`runtime via ${placement.colo}`);
  if (placement.jurisdiction) parts.push(`${placement.jurisdiction.toUpperCase()} jurisdiction`);
  return parts.join(", ");
}
