// A column's forecast line under its header: the stage's probability and the sum of its cards
// weighted by it (per currency). The count and the plain sum stay in the header (Column.tsx).

import type { Stage } from "../model/board";
import { stageProbability, weighted } from "../model/requirements";
import type { CardItem } from "../store/boardStore";
import { formatSums } from "../ui/format";
import { t } from "../ui/i18n";

export function ColumnStats({
  stage,
  items,
  currency,
}: {
  stage: Stage;
  items: readonly CardItem[];
  currency: string;
}) {
  const sums = new Map<string, number>();
  for (const { card } of items) sums.set(card.currency, (sums.get(card.currency) ?? 0) + weighted(card.amount, stage));
  const sorted = new Map([...sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const probability = stageProbability(stage);
  return (
    <div class="column-stats" data-column-stats="">
      <span class="column-weighted" data-stage-weighted="" title={t("column.probability", { probability })}>
        {t("column.weighted")} {formatSums(sorted, currency)}
      </span>
      <span class="column-probability" data-stage-probability="">
        {probability}%
      </span>
    </div>
  );
}
