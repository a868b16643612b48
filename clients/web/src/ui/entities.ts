// The kinds of pipeline (docs/board-document.md: `board.entity`), as the home page lists them.

import { parseEntity } from "../model/schema";
import { t, type Key } from "./i18n";

export const ENTITY_SECTIONS: readonly { entity: string; title: Key }[] = [
  { entity: "lead", title: "entity.lead" },
  { entity: "deal", title: "entity.deal" },
  { entity: "invoice", title: "entity.invoice" },
  { entity: "quote", title: "entity.quote" },
];

/** A heading for an entity in the page's language: "Deals", "Smart process 42". */
export function entityTitle(entity: string): string {
  const known = ENTITY_SECTIONS.find((s) => s.entity === entity);
  if (known !== undefined) return t(known.title);
  const parsed = parseEntity(entity);
  if (parsed?.kind === "smart") return t("entity.smart", { type: parsed.typeId });
  return entity === "" ? t("entity.other") : entity;
}

/** A smart process type id as typed: letters, digits, `-` and `_`, 1 to 32 characters. */
export function isValidSmartType(typeId: string): boolean {
  return /^[A-Za-z0-9_-]{1,32}$/.test(typeId);
}
