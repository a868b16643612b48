// A card's history in words: each change-feed event of the card (docs/events.md) as a line of
// the card panel's History section. Pure: names of people, stages and fields come from the caller.

import type { HistoryEvent } from "./api";
import { formatDate, formatMoney } from "./format";
import { currentLocale, t } from "./i18n";

/** What the describer needs from the board. */
export interface HistoryNames {
  /** A person's display name by user id. */
  person: (id: string) => string;
  /** A stage's name by id; null for a stage that is gone. */
  stage: (id: string) => string | null;
  /** A field's label by field id (`title`, or a custom field's id). */
  field: (id: string) => string;
  /** The card's currency, for amounts. */
  currency: string;
}

/** One line of the history. */
export interface HistoryLine {
  id: string;
  /** Who made the change: a person's name, or "funnel" for the server itself. */
  who: string;
  /** What they did, after their name ("moved it from New to Won"). */
  what: string;
  at: number;
  /** `socket`, `api`, `email` or `scheduler`: where the change came from. */
  origin: string;
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");

function stageName(names: HistoryNames, id: unknown): string {
  return (typeof id === "string" ? names.stage(id) : null) ?? t("history.deletedStage");
}

/** A field's value as the panel shows it: money formatted, people named, nothing as "nothing". */
function valueText(field: string, value: unknown, names: HistoryNames): string {
  if (value === null || value === undefined || value === "") return t("history.nothing");
  if (field === "amount" && typeof value === "number") return formatMoney(value, names.currency);
  if (field === "responsible" && typeof value === "string") return names.person(value);
  if (field === "closeDate" && typeof value === "number") {
    return formatDate(value, currentLocale());
  }
  if (typeof value === "boolean") return value ? t("history.yes") : t("history.no");
  if (typeof value === "string") return t("history.quoted", { value });
  return JSON.stringify(value);
}

/** What one changed field says. */
function fieldChange(change: unknown, names: HistoryNames): string | null {
  if (typeof change !== "object" || change === null) return null;
  const { field, before, after } = change as { field?: unknown; before?: unknown; after?: unknown };
  if (typeof field !== "string") return null;
  if (field === "pos") return t("history.reordered");
  if (field === "archivedAt")
    return after === null || after === undefined ? t("history.restored") : t("history.archived");
  const id = field.startsWith("fields.") ? field.slice("fields.".length) : field;
  const label = names.field(id);
  return t("history.changed", {
    field: label,
    before: valueText(id, before, names),
    after: valueText(id, after, names),
  });
}

function subjectOf(data: Record<string, unknown>): string {
  return text((data.activity as { subject?: unknown } | undefined)?.subject) || t("history.untitled");
}

function describe(event: HistoryEvent, names: HistoryNames): string {
  const data = event.data;
  switch (event.type) {
    case "card.created": {
      const card = data.card as { stageId?: unknown } | undefined;
      return t("history.created", { stage: stageName(names, card?.stageId) });
    }
    case "card.moved":
      return t("history.moved", { from: stageName(names, data.from), to: stageName(names, data.to) });
    case "card.won":
      return t("history.won", { stage: stageName(names, data.to) });
    case "card.lost": {
      const reason = text((data.card as { lostReason?: unknown } | undefined)?.lostReason);
      const stage = stageName(names, data.to);
      return reason === "" ? t("history.lost", { stage }) : t("history.lostBecause", { stage, reason });
    }
    case "card.updated": {
      const changes = Array.isArray(data.changes) ? data.changes : [];
      const said = changes.map((c) => fieldChange(c, names)).filter((s): s is string => s !== null);
      return said.length === 0 ? t("history.edited") : said.join(t("history.and"));
    }
    case "card.deleted":
      return t("history.deleted");
    case "activity.created":
      return t("history.activityAdded", { subject: subjectOf(data) });
    case "activity.completed":
      return t("history.activityCompleted", { subject: subjectOf(data) });
    default:
      return event.type;
  }
}

/**
 * The lines of a page of history, newest first. A move into a final stage is one line (the
 * `card.won` or `card.lost` that follows its `card.moved` says it), not two.
 */
export function historyLines(events: readonly HistoryEvent[], names: HistoryNames): HistoryLine[] {
  const lines: HistoryLine[] = [];
  events.forEach((event, i) => {
    const newer = events[i - 1];
    if (
      event.type === "card.moved" &&
      newer !== undefined &&
      (newer.type === "card.won" || newer.type === "card.lost") &&
      newer.timestamp === event.timestamp
    ) {
      return;
    }
    const actor = event.data.actor;
    lines.push({
      id: event.id,
      who: typeof actor === "string" && actor !== "" ? names.person(actor) : t("history.server"),
      what: describe(event, names),
      at: event.timestamp,
      origin: text(event.data.origin),
    });
  });
  return lines;
}
