// The kinds of pipeline (docs/board-document.md: `board.entity`), as the home page lists them.

import { parseEntity } from "../model/schema";

export const ENTITY_SECTIONS: readonly { entity: string; title: string; singular: string }[] = [
  { entity: "lead", title: "Leads", singular: "lead" },
  { entity: "deal", title: "Deals", singular: "deal" },
  { entity: "invoice", title: "Invoices", singular: "invoice" },
  { entity: "quote", title: "Quotes", singular: "quote" },
];

/** A heading for an entity: "Deals", "Smart process 42". */
export function entityTitle(entity: string): string {
  const known = ENTITY_SECTIONS.find((s) => s.entity === entity);
  if (known !== undefined) return known.title;
  const parsed = parseEntity(entity);
  if (parsed?.kind === "smart") return `Smart process ${parsed.typeId}`;
  return entity === "" ? "Other" : entity;
}

/** A smart process type id as typed: letters, digits, `-` and `_`, 1 to 32 characters. */
export function isValidSmartType(typeId: string): boolean {
  return /^[A-Za-z0-9_-]{1,32}$/.test(typeId);
}
