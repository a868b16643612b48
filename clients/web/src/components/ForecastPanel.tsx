// The forecast view: the board's open and won cards by the month of their expected close date,
// with count, sum and sum weighted by each stage's probability. Lost cards are left out. It
// counts the cards the board shows: under a search or a filter, those that pass it.

import type { Stage } from "../model/board";
import type { CardItem } from "../store/boardStore";
import { forecast } from "../ui/forecast";
import { defaultLocale, formatSums } from "../ui/format";
import { t } from "../ui/i18n";

// The texts, read when rendered, so a switch of language shows at once.
const TEXT = {
  get title() {
    return t("forecast.title");
  },
  get month() {
    return t("forecast.month");
  },
  get cards() {
    return t("forecast.cards");
  },
  get sum() {
    return t("forecast.sum");
  },
  get weighted() {
    return t("forecast.weighted");
  },
  get undated() {
    return t("forecast.undated");
  },
  get empty() {
    return t("forecast.empty");
  },
  get hint() {
    return t("forecast.hint");
  },
};

function monthName(month: string): string {
  const [year, m] = month.split("-").map(Number);
  return new Intl.DateTimeFormat(defaultLocale(), { month: "long", year: "numeric" }).format(
    new Date(year!, m! - 1, 1),
  );
}

export function ForecastPanel({
  columns,
  currency,
}: {
  columns: readonly { column: { stage: Stage }; items: readonly CardItem[] }[];
  currency: string;
}) {
  const rows = forecast(columns.map((c) => ({ stage: c.column.stage, cards: c.items.map((i) => i.card) })));
  return (
    <section class="forecast-panel" aria-label={TEXT.title} data-forecast="">
      <h2>{TEXT.title}</h2>
      {rows.length === 0 ? (
        <p class="muted">{TEXT.empty}</p>
      ) : (
        <table class="forecast-table">
          <thead>
            <tr>
              <th scope="col">{TEXT.month}</th>
              <th scope="col">{TEXT.cards}</th>
              <th scope="col">{TEXT.sum}</th>
              <th scope="col">{TEXT.weighted}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.month ?? "none"} data-forecast-month={row.month ?? "none"}>
                <th scope="row">{row.month === null ? TEXT.undated : monthName(row.month)}</th>
                <td data-forecast-cards="" aria-label={t("common.cards", { count: row.cards })}>
                  {row.cards}
                </td>
                <td data-forecast-sum="">{formatSums(row.sums, currency)}</td>
                <td data-forecast-weighted="">{formatSums(row.weighted, currency)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="muted hint">{TEXT.hint}</p>
    </section>
  );
}
