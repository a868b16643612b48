// Where a moved card goes, for drops and for keyboard moves, and the one write that moves it.
// Pure except `moveCardTo`, which writes through the model's helpers.
//
// A target is said relative to what the person sees ("above card X", "at the bottom of this
// column"); it is resolved against the full column (filters may hide cards) into a placement,
// "right after card Y, or at the top". The move is then `moveCardBetween` with the neighbours'
// keys from the rendered column: one transaction that sets `stage` and `pos`. When those keys
// collide or are too long, `moveCard` rebalances the column in the same transaction.

import type * as Y from "yjs";
import { OrderError } from "../model/order";
import { BoardError, moveCard, moveCardBetween } from "../model/write";

export type Edge = "top" | "bottom";

/** What the person aimed at. */
export type Target = { stage: string; at: "top" | "bottom" } | { stage: string; card: string; edge: Edge };

/** Where the card goes: right after card `after` of `stage`, or at its top when null. */
export interface Placement {
  stage: string;
  after: string | null;
}

/** A card as placement needs it. */
export interface Keyed {
  id: string;
  pos: string;
}

/** Resolves a target against the full column it names (in order, the moving card maybe in it). */
export function resolveTarget(column: readonly Keyed[], moving: string, target: Target): Placement {
  const others = column.filter((c) => c.id !== moving);
  if ("at" in target) {
    return { stage: target.stage, after: target.at === "top" ? null : (others[others.length - 1]?.id ?? null) };
  }
  if (target.edge === "bottom") return { stage: target.stage, after: target.card };
  const index = others.findIndex((c) => c.id === target.card);
  return { stage: target.stage, after: index > 0 ? others[index - 1]!.id : null };
}

/** The keys of the cards that will sit just before and after the moved card. */
export function neighbourKeys(
  column: readonly Keyed[],
  moving: string,
  after: string | null,
): { prev: string | null; next: string | null } {
  const others = column.filter((c) => c.id !== moving);
  const index = after === null ? -1 : others.findIndex((c) => c.id === after);
  return {
    prev: index >= 0 ? others[index]!.pos : null,
    next: others[index + 1]?.pos ?? null,
  };
}

/** Whether the card already sits at `placement` (its stage `currentStage`, in `column`). */
export function isInPlace(
  column: readonly Keyed[],
  moving: string,
  currentStage: string,
  placement: Placement,
): boolean {
  if (currentStage !== placement.stage) return false;
  const index = column.findIndex((c) => c.id === moving);
  if (index === -1) return false;
  return (index > 0 ? column[index - 1]!.id : null) === placement.after;
}

/**
 * Moves `card` to `placement` in one transaction. `column` is the target column as rendered,
 * in full. Returns false when nothing had to change.
 */
export function moveCardTo(
  doc: Y.Doc,
  column: readonly Keyed[],
  card: string,
  currentStage: string,
  placement: Placement,
): boolean {
  if (isInPlace(column, card, currentStage, placement)) return false;
  const { prev, next } = neighbourKeys(column, card, placement.after);
  try {
    moveCardBetween(doc, card, placement.stage, prev, next);
  } catch (error) {
    const collided = error instanceof OrderError || (error instanceof BoardError && error.kind === "needsRebalance");
    if (!collided) throw error;
    moveCard(
      doc,
      card,
      placement.stage,
      placement.after === null ? { kind: "top" } : { kind: "after", card: placement.after },
    );
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Keyboard

export type Direction = "up" | "down" | "left" | "right";

/** Maps an arrow key to a direction. */
export function arrowDirection(key: string): Direction | null {
  switch (key) {
    case "ArrowUp":
      return "up";
    case "ArrowDown":
      return "down";
    case "ArrowLeft":
      return "left";
    case "ArrowRight":
      return "right";
    default:
      return null;
  }
}

/** The columns as shown: stage ids in board order, each with the ids of its visible cards. */
export interface VisibleColumn {
  stage: string;
  cards: readonly string[];
}

function locate(columns: readonly VisibleColumn[], card: string): { column: number; index: number } | null {
  for (let column = 0; column < columns.length; column++) {
    const index = columns[column]!.cards.indexOf(card);
    if (index !== -1) return { column, index };
  }
  return null;
}

/**
 * Where Alt+arrow moves a card: up and down swap it with its visible neighbour; left and right
 * take it to the same position (clamped) in the next column. Null at an edge.
 */
export function keyboardMoveTarget(
  columns: readonly VisibleColumn[],
  card: string,
  direction: Direction,
): Target | null {
  const here = locate(columns, card);
  if (here === null) return null;
  const column = columns[here.column]!;
  switch (direction) {
    case "up": {
      const above = column.cards[here.index - 1];
      return above === undefined ? null : { stage: column.stage, card: above, edge: "top" };
    }
    case "down": {
      const below = column.cards[here.index + 1];
      return below === undefined ? null : { stage: column.stage, card: below, edge: "bottom" };
    }
    case "left":
    case "right": {
      const next = columns[here.column + (direction === "left" ? -1 : 1)];
      if (next === undefined) return null;
      if (next.cards.length === 0) return { stage: next.stage, at: "top" };
      const at = next.cards[here.index];
      return at !== undefined
        ? { stage: next.stage, card: at, edge: "top" }
        : { stage: next.stage, card: next.cards[next.cards.length - 1]!, edge: "bottom" };
    }
  }
}

/**
 * Which card a plain arrow key focuses: the visible neighbour above or below, or the card at the
 * same position (clamped) in the nearest column that has cards. Null when there is none.
 */
export function keyboardFocusTarget(
  columns: readonly VisibleColumn[],
  card: string,
  direction: Direction,
): string | null {
  const here = locate(columns, card);
  if (here === null) return null;
  const column = columns[here.column]!;
  if (direction === "up") return column.cards[here.index - 1] ?? null;
  if (direction === "down") return column.cards[here.index + 1] ?? null;
  const step = direction === "left" ? -1 : 1;
  for (let i = here.column + step; i >= 0 && i < columns.length; i += step) {
    const cards = columns[i]!.cards;
    if (cards.length > 0) return cards[Math.min(here.index, cards.length - 1)]!;
  }
  return null;
}
