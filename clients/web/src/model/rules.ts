// Mirrors protocol/src/rules.rs: a card's activity counter, when it next changes by itself, the
// reminders that have fired, and the card's avatar. Pure: no clock of its own, `now` is a
// parameter (milliseconds since the Unix epoch). The server writes these results into the board
// document; the browser computes the same to show a board between two server writes and to test
// itself. Every "Decision:" of rules.rs holds here too. protocol/vectors/rules.json (inputs and
// Rust's outputs) and the board vectors keep the two honest (test/vectors.test.ts).
//
// Numbers: Rust uses i64 with saturating arithmetic; here they are JavaScript numbers, exact up
// to 2^53 (about 285,000 years of milliseconds), and the saturation is mirrored by clamping to
// the i64 range. The counts saturate at u32::MAX in Rust, which no browser board reaches.

import { compareBytes } from "./order";
import type { StageKind } from "./schema";

/** Milliseconds since the Unix epoch. */
export type Millis = number;

/** One minute, in {@link Millis}: `remindMin` and `counterThresholdMin` count minutes. */
export const MINUTE_MS = 60_000;

/** Which way an activity goes: `activities.<id>.direction`. */
export type Direction = "incoming" | "outgoing";

/** Reads a stored `direction`; `null` when unknown (callers treat that as `outgoing`). */
export function parseDirection(raw: string): Direction | null {
  return raw === "incoming" || raw === "outgoing" ? raw : null;
}

/** What the rules need of one activity of a card. */
export interface ActivityFacts {
  /** `deadline`; an activity without one never lights. */
  deadline: Millis | null;
  /** `remindMin`: `null` means the board's `counterThresholdMin`; negative counts as 0. */
  remindMin: number | null;
  direction: Direction;
  /** A done activity no longer counts at all. */
  done: boolean;
  /** Whose avatar the card shows when this activity's reminder fires. */
  responsible: string;
}

/** `counter.state`: how the client draws a card's counter. */
export type CounterState = "due" | "incoming" | "planned" | "idle" | "none";
export const COUNTER_STATES: readonly CounterState[] = ["due", "incoming", "planned", "idle", "none"];

export function parseCounterState(raw: string): CounterState | null {
  return (COUNTER_STATES as readonly string[]).includes(raw) ? (raw as CounterState) : null;
}

/** A card's `counter` map. */
export interface Counter {
  /** Open incoming + open planned activities: the number on the card. */
  count: number;
  /** Lit planned activities (overdue included). */
  lit: number;
  /** Open incoming activities. */
  incoming: number;
  /** The earliest deadline among open activities that have one, incoming included. */
  next: Millis | null;
  state: CounterState;
}

/**
 * When an open planned activity lights (and its reminder fires): `deadline − remindMin`
 * minutes, `remindMin` defaulting to `thresholdMin`, a negative one counting as 0. `null` for an
 * incoming, done or deadline-less activity.
 */
export function lightsAt(activity: ActivityFacts, thresholdMin: number): Millis | null {
  if (!isPlanned(activity) || activity.deadline === null) return null;
  const remindMin = Math.max(activity.remindMin ?? thresholdMin, 0);
  return saturate(activity.deadline - saturate(remindMin * MINUTE_MS));
}

/**
 * The card's counter at `now`, given all of the card's activities and the kind of its stage. A
 * planned activity is lit from its {@link lightsAt} on (`now === lightsAt` is lit) until done.
 */
export function counter(
  activities: readonly ActivityFacts[],
  stage: StageKind,
  thresholdMin: number,
  now: Millis,
): Counter {
  let incoming = 0;
  let planned = 0;
  let lit = 0;
  let next: Millis | null = null;
  for (const activity of activities) {
    if (!isOpen(activity)) continue;
    if (isIncoming(activity)) {
      incoming += 1;
    } else {
      planned += 1;
      const lights = lightsAt(activity, thresholdMin);
      if (lights !== null && lights <= now) lit += 1;
    }
    if (activity.deadline !== null) {
      next = next === null ? activity.deadline : Math.min(next, activity.deadline);
    }
  }
  let state: CounterState;
  if (lit > 0) state = "due";
  else if (incoming > 0) state = "incoming";
  else if (planned > 0) state = "planned";
  // Final stages are never "unprocessed": the work on the card is over.
  else state = stage === "initial" || stage === "progress" ? "idle" : "none";
  return { count: incoming + planned, lit, incoming, next, state };
}

/**
 * The first instant strictly after `now` at which {@link counter} would change without any
 * edit, or `null` if it never will: the earliest {@link lightsAt} after `now`.
 */
export function nextCounterChange(
  activities: readonly ActivityFacts[],
  thresholdMin: number,
  now: Millis,
): Millis | null {
  let earliest: Millis | null = null;
  for (const activity of activities) {
    const lights = lightsAt(activity, thresholdMin);
    if (lights !== null && lights > now && (earliest === null || lights < earliest)) {
      earliest = lights;
    }
  }
  return earliest;
}

/** Why a card shows the avatar it shows: `avatarReason`. */
export type AvatarReason = "responsible" | "comment" | "call" | "email" | "chat" | "reminder";
export const AVATAR_REASONS: readonly AvatarReason[] = ["responsible", "comment", "call", "email", "chat", "reminder"];

export function parseAvatarReason(raw: string): AvatarReason | null {
  return (AVATAR_REASONS as readonly string[]).includes(raw) ? (raw as AvatarReason) : null;
}

/** Something that moves a card's avatar to `user` at `at`. */
export interface AvatarEvent {
  at: Millis;
  user: string;
  reason: AvatarReason;
}

/** A card's `avatar`, `avatarAt` and `avatarReason`. */
export interface Avatar {
  user: string;
  at: Millis;
  reason: AvatarReason;
}

/**
 * The reminders that have fired by `now`: one event per open planned activity whose
 * {@link lightsAt} is at or before `now`, at that instant, for its responsible; sorted by
 * (`at`, `user` bytes), equal ones in slice order.
 */
export function firedReminders(activities: readonly ActivityFacts[], thresholdMin: number, now: Millis): AvatarEvent[] {
  const events: AvatarEvent[] = [];
  for (const activity of activities) {
    const at = lightsAt(activity, thresholdMin);
    if (at !== null && at <= now) {
      events.push({ at, user: activity.responsible, reason: "reminder" });
    }
  }
  // Array.prototype.sort is stable, like Rust's sort_by.
  return events.sort((a, b) => (a.at !== b.at ? (a.at < b.at ? -1 : 1) : compareBytes(a.user, b.user)));
}

/**
 * The card's avatar: it starts as, and follows, the responsible (responsible since
 * `responsibleSince`); the latest event wins, and of equal instants the later candidate (the
 * responsible change first, then `events` in slice order).
 */
export function avatar(responsible: string, responsibleSince: Millis, events: readonly AvatarEvent[]): Avatar {
  let winner: Avatar = { user: responsible, at: responsibleSince, reason: "responsible" };
  for (const event of events) {
    // `>=` rather than `>`: of equal instants, the later candidate wins.
    if (event.at >= winner.at) winner = { user: event.user, at: event.at, reason: event.reason };
  }
  return winner;
}

// ---------------------------------------------------------------------------------------------

/** Rust's `i64::MIN` (-2^63, exact as a double). */
export const I64_MIN = -(2 ** 63);
/** Rust's `i64::MAX` as far as a double can tell: 2^63 - 1 has no double, the nearest is 2^63. */
export const I64_MAX = 2 ** 63;

/** Rust's saturating i64 arithmetic, as far as a double can tell. */
function saturate(value: number): number {
  return Math.min(Math.max(value, I64_MIN), I64_MAX);
}

function isOpen(activity: ActivityFacts): boolean {
  return !activity.done;
}

function isIncoming(activity: ActivityFacts): boolean {
  return isOpen(activity) && activity.direction === "incoming";
}

function isPlanned(activity: ActivityFacts): boolean {
  return isOpen(activity) && activity.direction !== "incoming";
}
