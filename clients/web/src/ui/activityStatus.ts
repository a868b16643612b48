// Where a card stands with its activities, as the activity bar of a column shows it (the bar of
// Odoo's Kanban): `overdue` when its earliest open activity's day is before today, `today` when
// it is today, `planned` when it is later (or the activity has no deadline), `none` when nothing
// is open. Days are the browser's local calendar days. Pure: no store, no components.

import type { Activity } from "../model/board";
import type { Millis } from "../model/rules";

export type ActivityStatus = "overdue" | "today" | "planned" | "none";

/** The statuses in the bar's order, left to right. */
export const ACTIVITY_STATUSES: readonly ActivityStatus[] = ["overdue", "today", "planned", "none"];

function localDay(instant: Millis): number {
  const d = new Date(instant);
  return d.getFullYear() * 10_000 + d.getMonth() * 100 + d.getDate();
}

/** The status of a card with these activities (done ones included) at `now`. */
export function activityStatus(activities: readonly Activity[], now: Millis): ActivityStatus {
  const open = activities.filter((a) => !a.facts.done);
  if (open.length === 0) return "none";
  const deadlines = open.map((a) => a.facts.deadline).filter((d): d is number => d !== null);
  if (deadlines.length === 0) return "planned";
  const first = localDay(Math.min(...deadlines));
  const today = localDay(now);
  return first < today ? "overdue" : first === today ? "today" : "planned";
}

/** How many of `items` are in each status. */
export function countStatuses(
  items: readonly { activities: readonly Activity[] }[],
  now: Millis,
): Map<ActivityStatus, number> {
  const counts = new Map<ActivityStatus, number>(ACTIVITY_STATUSES.map((s) => [s, 0]));
  for (const item of items) {
    const status = activityStatus(item.activities, now);
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  return counts;
}
