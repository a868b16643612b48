// A column's activity bar (as in Odoo's Kanban): the share of its cards whose earliest open
// activity is overdue (red), due today (amber), planned later (green), or that have none
// (grey). Each segment is a button: pressing it shows only those cards in the column, pressing
// it again shows all.

import type { CardItem } from "../store/boardStore";
import { ACTIVITY_STATUSES, countStatuses, type ActivityStatus } from "../ui/activityStatus";
import { plural } from "../ui/format";

const TEXT = {
  bar: (stage: string) => `Activities in ${stage}`,
  status: {
    overdue: "overdue",
    today: "due today",
    planned: "planned",
    none: "no activity",
  } satisfies Record<ActivityStatus, string>,
  segment: (count: number, status: string) => `${plural(count, "card")} ${status}`,
  showing: (status: string) =>
    `Showing only cards with ${status === "no activity" ? "no activity" : `activities ${status}`}; press again to show all`,
};

export function ActivityBar({
  stageName,
  items,
  now,
  selected,
  onSelect,
}: {
  stageName: string;
  items: readonly CardItem[];
  now: number;
  selected: ActivityStatus | null;
  onSelect: (status: ActivityStatus | null) => void;
}) {
  const counts = countStatuses(items, now);
  const total = items.length;
  return (
    <div class="activity-bar" role="group" aria-label={TEXT.bar(stageName)} data-activity-bar="">
      {total === 0 ? (
        <span class="activity-segment activity-empty" style="flex-grow:1" />
      ) : (
        ACTIVITY_STATUSES.map((status) => {
          const count = counts.get(status) ?? 0;
          if (count === 0) return null;
          const label = TEXT.segment(count, TEXT.status[status]);
          return (
            <button
              key={status}
              type="button"
              class={`activity-segment activity-${status}`}
              data-activity-status={status}
              data-count={count}
              style={`flex-grow:${count}`}
              aria-pressed={selected === status}
              aria-label={label}
              title={selected === status ? TEXT.showing(TEXT.status[status]) : label}
              onClick={() => onSelect(selected === status ? null : status)}
            />
          );
        })
      )}
    </div>
  );
}
