// Activity deadlines in the form: the default (three working days ahead, rounded up to the hour)
// and the round trip through `<input type="datetime-local">`, which speaks local wall time.

import type { Millis } from "../model/rules";

/** Working days ahead of now that a new activity's deadline defaults to. */
export const DEFAULT_DEADLINE_WORKING_DAYS = 3;

/**
 * The default deadline of a new activity: `workingDays` working days (Monday to Friday) after
 * `now`, at the same local time, rounded up to the next full hour (a whole hour stays as is).
 */
export function defaultDeadline(now: Millis, workingDays = DEFAULT_DEADLINE_WORKING_DAYS): Millis {
  const date = new Date(now);
  let left = workingDays;
  while (left > 0) {
    date.setDate(date.getDate() + 1);
    const day = date.getDay();
    if (day !== 0 && day !== 6) left -= 1;
  }
  if (date.getMinutes() !== 0 || date.getSeconds() !== 0 || date.getMilliseconds() !== 0) {
    date.setMinutes(0, 0, 0);
    date.setHours(date.getHours() + 1);
  }
  return date.getTime();
}

const pad = (n: number) => String(n).padStart(2, "0");

/** An instant as the value of a datetime-local input: "2026-03-05T14:00", local time. */
export function toDatetimeLocal(instant: Millis): string {
  const d = new Date(instant);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The value of a datetime-local input as an instant; null when empty or malformed. */
export function fromDatetimeLocal(value: string): Millis | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (match === null) return null;
  const [, y, mo, d, h, mi, s] = match;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0), 0);
  return Number.isNaN(date.getTime()) ? null : date.getTime();
}
