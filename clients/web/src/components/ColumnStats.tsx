// A column's forecast line under its header: the stage's probability and the sum of its cards
// weighted by it (per currency). The count and the plain sum stay in the header (Column.tsx).

import type { Stage } from "../model/board";
import { stageProbability } from "../model/requirements";
import { formatSums } from "../ui/format";
import { t } from "../ui/i18n";

export function ColumnStats({
  stage,
  weighted,
  currency,
}: {
  stage: Stage;
  /** The shown cards' amounts weighted by the stage's probability, per currency (useColumnViews). */
  weighted: ReadonlyMap<string, number>;
  currency: string;
}) {
  const probability = stageProbability(stage);
  return (
    <div class="column-stats" data-column-stats="">
      <span class="column-weighted" data-stage-weighted="" title={t("column.probability", { probability })}>
        {t("column.weighted")} {formatSums(weighted, currency)}
      </span>
      <span class="column-probability" data-stage-probability="">
        {probability}%
      </span>
    </div>
  );
}
