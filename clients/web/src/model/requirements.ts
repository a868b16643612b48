// Mirrors protocol/src/board/requirements.rs: what a card must carry to enter a stage, how likely
// a card in a stage is won (the weighted sum, the forecast), and when a card turns stale
// (rotting). The server enforces the first on every update (protocol/src/policy.rs); the board
// asks for the missing fields before it writes a move (components/RequiredFieldsDialog.tsx).

import type { Activity, Card, Stage } from "./board";
import type { Millis } from "./rules";

/** One day, in milliseconds. */
export const DAY_MS = 24 * 60 * 60 * 1000;

/** The percent chance a card in `stage` is won: as set (clamped), else 100 for success, 0 otherwise. */
export function stageProbability(stage: Stage): number {
  if (stage.probabilitySet !== null) return Math.min(100, Math.max(0, stage.probabilitySet));
  return stage.kind === "success" ? 100 : 0;
}

/** `amount` weighted by the stage's probability, rounded towards zero (as Rust). */
export function weighted(amount: number, stage: Stage): number {
  return Math.trunc((amount * stageProbability(stage)) / 100);
}

function carries(card: Card, key: string, lostReasons: readonly string[]): boolean {
  const text = (s: string) => s.trim() !== "";
  switch (key) {
    case "amount":
      return card.amount !== 0;
    case "client":
      return text(card.client);
    case "email":
      return text(card.email);
    case "responsible":
      return text(card.responsible);
    case "closeDate":
      return card.closeDate !== null;
    case "lostReason":
      return text(card.lostReason) && (lostReasons.length === 0 || lostReasons.includes(card.lostReason));
    default: {
      const value = card.fields.get(key);
      if (value === undefined || value === null) return false;
      return typeof value === "string" ? text(value) : true;
    }
  }
}

/**
 * The entries of `stage.required` that `card` lacks, in the stage's order, each once. The initial
 * stage requires nothing (every new card enters it), whatever it holds.
 */
export function missingRequired(stage: Stage, card: Card, lostReasons: readonly string[]): string[] {
  if (stage.kind === "initial") return [];
  const missing: string[] = [];
  for (const key of stage.required) {
    if (!missing.includes(key) && !carries(card, key, lostReasons)) missing.push(key);
  }
  return missing;
}

/** When something last happened to the card: created, changed, a timeline event, an activity done. */
export function lastActivityAt(card: Card, activities: readonly Activity[]): Millis {
  let last = Math.max(card.createdAt, card.updatedAt, card.timelineAt ?? 0);
  for (const a of activities) if (a.facts.done && a.doneAt !== null) last = Math.max(last, a.doneAt);
  return last;
}

/** Whether the card is stale at `now`: the stage rots, nothing is planned, and it sat idle that long. */
export function isStale(stage: Stage, card: Card, activities: readonly Activity[], now: Millis): boolean {
  if (stage.rotDays <= 0) return false;
  if (activities.some((a) => !a.facts.done && a.facts.direction === "outgoing")) return false;
  return now - lastActivityAt(card, activities) >= stage.rotDays * DAY_MS;
}
