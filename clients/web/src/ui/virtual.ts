// When a column is virtualised, and how big a card is guessed to be before it is measured.
// Short columns render every card (simple DOM, every card reachable by Tab); long ones render
// only the cards in view plus an overscan, through @tanstack/virtual-core.

/** Columns with more cards than this are virtualised. */
export const VIRTUALIZE_ABOVE = 40;

/** Cards rendered beyond each end of the visible window of a virtualised column. */
export const OVERSCAN = 6;

/** The gap between two cards, in pixels (matches `--card-gap` in styles.css). */
export const CARD_GAP = 8;

export function shouldVirtualize(count: number): boolean {
  return count > VIRTUALIZE_ABOVE;
}

/**
 * A card's height before it is measured: a header line, one line per other displayed field and
 * the footer (avatar and counter), with the card's padding.
 */
export function estimateCardHeight(displayedFields: number): number {
  const padding = 20;
  const titleLine = 20;
  const otherLine = 18;
  const footer = 28;
  return padding + titleLine + Math.max(0, displayedFields - 1) * otherLine + footer;
}
