// A column's activity bar (as in Odoo's Kanban): the share of its cards whose earliest open
// activity is overdue (red), due today (amber), planned later (green), or that have none
// (grey). The counts are of the cards that pass the rest of the board's filter. Each segment is
// a button: pressing it sets the board's activity filter to that status (every column shows
// only those cards, and the address says so), pressing it again takes the filter off.

import { ACTIVITY_STATUSES, type ActivityStatus } from "../ui/activityStatus";
import { t, type Key } from "../ui/i18n";

const SEGMENT: Record<ActivityStatus, Key> = {
  overdue: "activityBar.overdue",
  today: "activityBar.today",
  planned: "activityBar.planned",
  none: "activityBar.none",
};
const SHOWING: Record<ActivityStatus, Key> = {
  overdue: "activityBar.showingOverdue",
  today: "activityBar.showingToday",
  planned: "activityBar.showingPlanned",
  none: "activityBar.showingNone",
};

export function ActivityBar({
  stageName,
  counts,
  selected,
  onSelect,
}: {
  stageName: string;
  /** Per status, the cards that pass every other part of the board's filter. */
  counts: ReadonlyMap<ActivityStatus, number>;
  /** The statuses the board's filter shows (empty: all). */
  selected: readonly ActivityStatus[];
  /** Sets the board's filter to this status alone, or takes it off when it is the one shown. */
  onSelect: (status: ActivityStatus) => void;
}) {
  let total = 0;
  for (const count of counts.values()) total += count;
  return (
    <div
      class="activity-bar"
      role="group"
      aria-label={t("activityBar.label", { stage: stageName })}
      data-activity-bar=""
    >
      {total === 0 ? (
        <span class="activity-segment activity-empty" style="flex-grow:1" />
      ) : (
        ACTIVITY_STATUSES.map((status) => {
          const count = counts.get(status) ?? 0;
          if (count === 0) return null;
          const label = t(SEGMENT[status], { count });
          const pressed = selected.includes(status);
          return (
            <button
              key={status}
              type="button"
              class={`activity-segment activity-${status}`}
              data-activity-status={status}
              data-count={count}
              style={`flex-grow:${count}`}
              aria-pressed={pressed}
              aria-label={label}
              title={pressed ? t(SHOWING[status]) : label}
              onClick={() => onSelect(status)}
            />
          );
        })
      )}
    </div>
  );
}
