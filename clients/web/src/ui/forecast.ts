// The forecast: the board's open and won cards grouped by the month of their expected close
// date (`closeDate`), with the count, the sum and the sum weighted by each card's stage
// probability, per currency. Cards in failure stages are left out (they will not close); cards
// without a close date make a group of their own, last. Months are the browser's local ones.

import type { Stage } from "../model/board";
import { weighted } from "../model/requirements";

export interface ForecastRow {
  /** `YYYY-MM`, or null for the cards without a close date. */
  month: string | null;
  cards: number;
  sums: Map<string, number>;
  weighted: Map<string, number>;
}

interface ForecastCard {
  amount: number;
  currency: string;
  closeDate: number | null;
}

function monthOf(instant: number): string {
  const d = new Date(instant);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

function add(map: Map<string, number>, currency: string, value: number): void {
  map.set(currency, (map.get(currency) ?? 0) + value);
}

/** The rows of the forecast, months in order, the undated row last. */
export function forecast(columns: readonly { stage: Stage; cards: readonly ForecastCard[] }[]): ForecastRow[] {
  const rows = new Map<string | null, ForecastRow>();
  for (const { stage, cards } of columns) {
    if (stage.kind === "failure") continue;
    for (const card of cards) {
      const month = card.closeDate === null ? null : monthOf(card.closeDate);
      let row = rows.get(month);
      if (row === undefined) {
        row = { month, cards: 0, sums: new Map(), weighted: new Map() };
        rows.set(month, row);
      }
      row.cards += 1;
      add(row.sums, card.currency, card.amount);
      add(row.weighted, card.currency, weighted(card.amount, stage));
    }
  }
  return [...rows.values()].sort((a, b) =>
    a.month === null ? 1 : b.month === null ? -1 : a.month < b.month ? -1 : a.month > b.month ? 1 : 0,
  );
}
