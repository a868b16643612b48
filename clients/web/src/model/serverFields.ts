// The card keys that only the server writes (docs/board-document.md, "cards"): `avatar`,
// `avatarAt`, `avatarReason`. board.ts leaves them out of `Card`; the card face shows them. The
// server's `counter` map is not read: the client computes the counter with `rules.counter` at its
// own clock, which gives the same result as the server's scheduler at the same instant.
//
// Lenient like board.ts: a value of the wrong type reads as missing.

import * as Y from "yjs";
import type { Card } from "./board";
import { parseAvatarReason, type AvatarReason, type Millis } from "./rules";
import { CARD_KEY, ROOT } from "./schema";

export interface ServerFields {
  /** Whose avatar the card shows; empty when the server has not written one yet. */
  avatar: string;
  avatarAt: Millis | null;
  avatarReason: AvatarReason | null;
}

/** A card with the fields only the server writes: what the store keeps and a card face shows. */
export interface CardData extends Card, ServerFields {}

/** The server-written fields of a card map. */
export function readServerFields(map: Y.Map<unknown>): ServerFields {
  const avatar = map.get(CARD_KEY.AVATAR);
  const at = map.get(CARD_KEY.AVATAR_AT);
  const reason = map.get(CARD_KEY.AVATAR_REASON);
  return {
    avatar: typeof avatar === "string" ? avatar : "",
    avatarAt:
      typeof at === "number" && Number.isFinite(at) ? Math.trunc(at) : typeof at === "bigint" ? Number(at) : null,
    avatarReason: typeof reason === "string" ? parseAvatarReason(reason) : null,
  };
}

/** The card's map in the document, if there is one (never creates the root). */
export function cardYMap(doc: Y.Doc, id: string): Y.Map<unknown> | null {
  if (!doc.share.has(ROOT.CARDS)) return null;
  const value = doc.getMap(ROOT.CARDS).get(id);
  return value instanceof Y.Map ? (value as Y.Map<unknown>) : null;
}
