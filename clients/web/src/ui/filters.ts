// Find and filter (issue 20): what the board shows when a person searches or narrows it down, as
// a value that lives in the address (shareable, kept by a reload, walked by back and forward).
// Pure: the board's cards come in as plain items, the clock and the browser's calendar are
// parameters or the local time zone, and nothing here touches the DOM or the store.
//
// Applying a filter is one pass over each column's items (the store's board index): every card
// is tested once against the compiled filter, and the same pass counts the activity statuses of
// the cards that pass every other part of it (the column's activity bar shows those counts, so
// a pressed segment still shows its neighbours).

import { t } from "./i18n";
import type { Activity, Card } from "../model/board";
import { lastActivityAt } from "../model/requirements";
import type { Counter, Millis } from "../model/rules";
import { activityStatus, ACTIVITY_STATUSES, type ActivityStatus } from "./activityStatus";
import { minorDigits } from "./format";

/** A range of local calendar days, both ends included; `YYYY-MM-DD` or null for open. */
export interface DayRange {
  readonly from: string | null;
  readonly to: string | null;
}

export interface BoardFilter {
  /** The search text: every term must match the title, client, e-mail or amount. */
  readonly q: string;
  /** Responsible user ids ("" is unassigned); empty: anyone. */
  readonly responsible: readonly string[];
  /** Activity statuses (the activity bar's): empty: any. */
  readonly state: readonly ActivityStatus[];
  /** Stage ids whose columns are shown; empty: every stage. */
  readonly stage: readonly string[];
  readonly created: DayRange;
  /** When something last happened to the card (`lastActivityAt`). */
  readonly lastActivity: DayRange;
  /** Only cards whose counter is `idle` (nothing planned in an open stage). */
  readonly unprocessed: boolean;
}

const OPEN_RANGE: DayRange = Object.freeze({ from: null, to: null });

export const NO_FILTER: BoardFilter = Object.freeze({
  q: "",
  responsible: Object.freeze([]),
  state: Object.freeze([]),
  stage: Object.freeze([]),
  created: OPEN_RANGE,
  lastActivity: OPEN_RANGE,
  unprocessed: false,
});

/** The query parameters a filter uses; every other parameter of the address is left alone. */
export const FILTER_PARAMS = ["q", "responsible", "state", "stage", "created", "lastActivity", "unprocessed"] as const;

/** The longest search text kept (a pasted novel would only slow the board down). */
export const MAX_QUERY_LENGTH = 200;

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A `YYYY-MM-DD` that names a real day, else null. */
export function validDay(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const match = DAY.exec(text.trim());
  if (match === null) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(year, month - 1, day);
  if (date.getFullYear() !== year || date.getMonth() !== month - 1 || date.getDate() !== day) return null;
  return match[0];
}

/** Local midnight at the start of a `YYYY-MM-DD` day. */
export function dayStart(day: string): Millis {
  const [year, month, date] = day.split("-").map(Number);
  return new Date(year!, month! - 1, date).getTime();
}

/** Local midnight at the end of a `YYYY-MM-DD` day (the start of the next one). */
export function dayEnd(day: string): Millis {
  const [year, month, date] = day.split("-").map(Number);
  return new Date(year!, month! - 1, date! + 1).getTime();
}

function parseRange(text: string | null): DayRange {
  if (text === null) return OPEN_RANGE;
  const [fromText, toText] = text.includes("..") ? text.split("..", 2) : [text, text];
  let from = validDay(fromText);
  let to = validDay(toText);
  if (from !== null && to !== null && from > to) [from, to] = [to, from];
  return from === null && to === null ? OPEN_RANGE : { from, to };
}

function rangeText(range: DayRange): string | null {
  if (range.from === null && range.to === null) return null;
  return `${range.from ?? ""}..${range.to ?? ""}`;
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

/** A repeated parameter's values, each once; "" is kept only where it means something. */
function listOf(params: URLSearchParams, name: string, keepEmpty = false): string[] {
  return unique(params.getAll(name)).filter((v) => keepEmpty || v !== "");
}

/** The filter an address's query string holds; what does not parse is left out. */
export function parseFilter(search: string): BoardFilter {
  const params = new URLSearchParams(search);
  const states = listOf(params, "state")
    .flatMap((v) => v.split(","))
    .filter((s): s is ActivityStatus => (ACTIVITY_STATUSES as readonly string[]).includes(s));
  const filter: BoardFilter = {
    q: (params.get("q") ?? "").slice(0, MAX_QUERY_LENGTH),
    responsible: listOf(params, "responsible", true),
    state: ACTIVITY_STATUSES.filter((s) => states.includes(s)),
    stage: listOf(params, "stage"),
    created: parseRange(params.get("created")),
    lastActivity: parseRange(params.get("lastActivity")),
    unprocessed: params.get("unprocessed") === "1",
  };
  return isFiltering(filter) ? filter : NO_FILTER;
}

/**
 * `search` (an address's query string) with the filter's parameters replaced by `filter`'s,
 * every other parameter kept in place: "?user=ann&q=acme". Empty parts leave no parameter.
 */
export function withFilter(search: string, filter: BoardFilter): string {
  const params = new URLSearchParams(search);
  for (const name of FILTER_PARAMS) params.delete(name);
  for (const [name, value] of filterEntries(filter)) params.append(name, value);
  // Commas may stay as they are in a query (RFC 3986 sub-delimiters): "state=overdue,today".
  const text = params.toString().replace(/%2C/gi, ",");
  return text === "" ? "" : `?${text}`;
}

function filterEntries(filter: BoardFilter): [string, string][] {
  const entries: [string, string][] = [];
  if (filter.q.trim() !== "") entries.push(["q", filter.q]);
  // Repeated rather than joined: a user id may hold a comma, and "" (unassigned) must survive.
  for (const id of filter.responsible) entries.push(["responsible", id]);
  if (filter.state.length > 0) entries.push(["state", filter.state.join(",")]);
  for (const id of filter.stage) entries.push(["stage", id]);
  const created = rangeText(filter.created);
  if (created !== null) entries.push(["created", created]);
  const last = rangeText(filter.lastActivity);
  if (last !== null) entries.push(["lastActivity", last]);
  if (filter.unprocessed) entries.push(["unprocessed", "1"]);
  return entries;
}

/** A canonical text of a filter: equal filters, equal keys (order of lists ignored). */
export function filterKey(filter: BoardFilter): string {
  const sorted: BoardFilter = {
    ...filter,
    q: filter.q.trim(),
    responsible: [...filter.responsible].sort(),
    stage: [...filter.stage].sort(),
  };
  return new URLSearchParams(filterEntries(sorted)).toString();
}

/** Whether the filter narrows anything down. */
export function isFiltering(filter: BoardFilter): boolean {
  return filterKey(filter) !== "";
}

/** How many parts of the filter are set (the toolbar's badge). */
export function activeParts(filter: BoardFilter): number {
  return (
    (filter.q.trim() !== "" ? 1 : 0) +
    (filter.responsible.length > 0 ? 1 : 0) +
    (filter.state.length > 0 ? 1 : 0) +
    (filter.stage.length > 0 ? 1 : 0) +
    (rangeText(filter.created) !== null ? 1 : 0) +
    (rangeText(filter.lastActivity) !== null ? 1 : 0) +
    (filter.unprocessed ? 1 : 0)
  );
}

/** `values` with `value` added, or taken out when it is there. */
export function toggled<T>(values: readonly T[], value: T): T[] {
  return values.includes(value) ? values.filter((v) => v !== value) : [...values, value];
}

// ---------------------------------------------------------------------------------------------
// Search

/** Lower case without diacritics: "Société" and "societe" match. */
export function fold(text: string): string {
  return text
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();
}

type Term =
  | { kind: "text"; text: string }
  /** A number: the amount equals it (major units), or the text holds it. */
  | { kind: "number"; text: string; value: number }
  /** `>1000`, `<=50`: the amount compared with it (major units). */
  | { kind: "compare"; op: ">" | ">=" | "<" | "<="; value: number };

/**
 * A number as people type one in a search: "1500", "1,500", "1 500", "1.500,50", "1500.5".
 * A lone comma followed by three digits separates thousands; otherwise it is the decimal mark.
 */
export function searchNumber(text: string): number | null {
  let cleaned = text.replace(/[\s\u00a0_']/g, "");
  if (!/^[-+]?[\d.,]*\d[\d.,]*$/.test(cleaned)) return null;
  const lastComma = cleaned.lastIndexOf(",");
  const lastDot = cleaned.lastIndexOf(".");
  if (lastComma !== -1 && lastDot !== -1) {
    cleaned = lastComma > lastDot ? cleaned.replace(/\./g, "").replace(",", ".") : cleaned.replace(/,/g, "");
  } else if (lastComma !== -1) {
    const thousands = /^[-+]?\d{1,3}(,\d{3})+$/.test(cleaned);
    cleaned = thousands ? cleaned.replace(/,/g, "") : cleaned.replace(",", ".");
  } else if (/^[-+]?\d{1,3}(\.\d{3}){2,}$/.test(cleaned)) {
    cleaned = cleaned.replace(/\./g, "");
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(cleaned)) return null;
  const value = Number(cleaned);
  return Number.isFinite(value) ? value : null;
}

/** The terms of a search: words, "quoted phrases", numbers and amount comparisons. */
export function parseQuery(q: string): Term[] {
  const terms: Term[] = [];
  const pattern = /"([^"]*)"?|(\S+)/g;
  for (const match of q.slice(0, MAX_QUERY_LENGTH).matchAll(pattern)) {
    const phrase = match[1];
    if (phrase !== undefined) {
      const text = fold(phrase.trim());
      // "1 250.00": a number written with spaces is one term only between quotes.
      const value = searchNumber(phrase);
      if (text !== "") terms.push(value !== null ? { kind: "number", text, value } : { kind: "text", text });
      continue;
    }
    const word = match[2]!;
    const compare = /^(>=|<=|>|<)(.+)$/.exec(word);
    if (compare !== null) {
      const value = searchNumber(compare[2]!);
      if (value !== null) {
        terms.push({ kind: "compare", op: compare[1] as ">" | ">=" | "<" | "<=", value });
        continue;
      }
    }
    const value = searchNumber(word);
    const text = fold(word);
    terms.push(value !== null ? { kind: "number", text, value } : { kind: "text", text });
  }
  return terms;
}

/** What a search looks into, folded once per card object (cards keep their identity unchanged). */
const haystacks = new WeakMap<Card, string>();

function haystackOf(card: Card): string {
  let text = haystacks.get(card);
  if (text === undefined) {
    text = fold(`${card.title}\n${card.client}\n${card.email}`);
    haystacks.set(card, text);
  }
  return text;
}

function majorAmount(card: Card): number {
  return card.amount / 10 ** minorDigits(card.currency);
}

function termMatches(term: Term, card: Card): boolean {
  switch (term.kind) {
    case "text":
      return haystackOf(card).includes(term.text);
    case "number":
      return Math.abs(majorAmount(card) - term.value) < 1e-9 || haystackOf(card).includes(term.text);
    case "compare": {
      const amount = majorAmount(card);
      switch (term.op) {
        case ">":
          return amount > term.value;
        case ">=":
          return amount >= term.value;
        case "<":
          return amount < term.value;
        case "<=":
          return amount <= term.value;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Applying a filter

/** What a filter reads of a card (the store's `CardItem` is one). */
export interface FilterItem {
  readonly card: Card;
  readonly activities: readonly Activity[];
  readonly counter: Counter;
}

/** A filter made ready for many cards: terms parsed, days turned into instants. */
export interface CompiledFilter {
  readonly filter: BoardFilter;
  readonly key: string;
  /** Whether anything is filtered at all. */
  readonly active: boolean;
  /** Whether a stage's column is shown. */
  readonly showsStage: (stage: string) => boolean;
  /** Every part but the activity status. */
  readonly matchesOthers: (item: FilterItem) => boolean;
  readonly states: ReadonlySet<ActivityStatus>;
}

function instantRange(range: DayRange): { from: Millis; to: Millis } | null {
  if (range.from === null && range.to === null) return null;
  return {
    from: range.from === null ? -Infinity : dayStart(range.from),
    to: range.to === null ? Infinity : dayEnd(range.to),
  };
}

export function compileFilter(filter: BoardFilter): CompiledFilter {
  const terms = parseQuery(filter.q);
  const responsible = filter.responsible.length > 0 ? new Set(filter.responsible) : null;
  const stages = filter.stage.length > 0 ? new Set(filter.stage) : null;
  const created = instantRange(filter.created);
  const last = instantRange(filter.lastActivity);
  const { unprocessed } = filter;
  const key = filterKey(filter);
  return {
    filter,
    key,
    active: key !== "",
    showsStage: (stage) => stages === null || stages.has(stage),
    states: new Set(filter.state),
    matchesOthers: ({ card, activities, counter }) => {
      if (unprocessed && counter.state !== "idle") return false;
      if (responsible !== null && !responsible.has(card.responsible)) return false;
      if (created !== null && !(card.createdAt >= created.from && card.createdAt < created.to)) return false;
      if (last !== null) {
        const at = lastActivityAt(card, activities);
        if (!(at >= last.from && at < last.to)) return false;
      }
      for (const term of terms) if (!termMatches(term, card)) return false;
      return true;
    },
  };
}

/** Whether the filter shows a card that is in the column of `stage`. */
export function showsCard(compiled: CompiledFilter, stage: string, item: FilterItem, now: Millis): boolean {
  if (!compiled.showsStage(stage) || !compiled.matchesOthers(item)) return false;
  return compiled.states.size === 0 || compiled.states.has(activityStatus(item.activities, now));
}

/** A column as a filter shows it. */
export interface FilteredColumn<T extends FilterItem> {
  /** The cards that pass, in the column's order. */
  readonly items: readonly T[];
  /** Their sums per currency, currencies in the order they are given (sorted by the caller). */
  readonly sums: ReadonlyMap<string, number>;
  /** Per activity status, the cards that pass every part of the filter but the status. */
  readonly statuses: ReadonlyMap<ActivityStatus, number>;
}

/** One pass over a column's items: the cards that pass, their sums, the activity bar's counts. */
export function filterColumn<T extends FilterItem>(
  items: readonly T[],
  compiled: CompiledFilter,
  now: Millis,
): FilteredColumn<T> {
  const shown: T[] = [];
  const sums = new Map<string, number>();
  const statuses = new Map<ActivityStatus, number>(ACTIVITY_STATUSES.map((s) => [s, 0]));
  const byStatus = compiled.states.size > 0;
  for (const item of items) {
    if (!compiled.matchesOthers(item)) continue;
    const status = activityStatus(item.activities, now);
    statuses.set(status, statuses.get(status)! + 1);
    if (byStatus && !compiled.states.has(status)) continue;
    shown.push(item);
    sums.set(item.card.currency, (sums.get(item.card.currency) ?? 0) + item.card.amount);
  }
  return { items: shown, sums: new Map([...sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), statuses };
}

// ---------------------------------------------------------------------------------------------
// Saved views: a user's named filters, per board, in this browser's storage

/** A named filter; `query` is the filter's canonical query string (as in the address). */
export interface SavedView {
  readonly name: string;
  readonly query: string;
}

export interface ViewStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** The most views a user keeps on one board, and the longest name. */
export const MAX_VIEWS = 50;
export const MAX_VIEW_NAME = 60;

/**
 * Where a user's views of a board are kept. The board document has no place for them
 * (`views/<user>` is that user's display form, an array of field ids), so they live in the
 * browser's localStorage, one entry per board and user.
 */
export function viewsKey(boardId: string, user: string): string {
  return `funnel.savedViews.${boardId}.${user}`;
}

export function loadViews(storage: ViewStorage, boardId: string, user: string): SavedView[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(storage.getItem(viewsKey(boardId, user)) ?? "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const views: SavedView[] = [];
  for (const entry of parsed as unknown[]) {
    if (typeof entry !== "object" || entry === null) continue;
    const { name, query } = entry as { name?: unknown; query?: unknown };
    if (typeof name !== "string" || typeof query !== "string" || name.trim() === "") continue;
    if (views.some((v) => v.name === name)) continue;
    views.push({ name: name.slice(0, MAX_VIEW_NAME), query: filterKey(parseFilter(query)) });
  }
  return views.slice(0, MAX_VIEWS);
}

export type SaveViewResult = { views: SavedView[] } | { error: string };

/** Saves `filter` under `name` (replacing a view of that name); the views in name order. */
export function saveView(
  storage: ViewStorage,
  boardId: string,
  user: string,
  name: string,
  filter: BoardFilter,
): SaveViewResult {
  const trimmed = name.trim();
  if (trimmed === "") return { error: t("views.noName") };
  if (trimmed.length > MAX_VIEW_NAME) return { error: `A view's name has at most ${MAX_VIEW_NAME} characters` };
  if (!isFiltering(filter)) return { error: t("views.nothing") };
  const others = loadViews(storage, boardId, user).filter((v) => v.name !== trimmed);
  if (others.length >= MAX_VIEWS) return { error: t("views.tooMany", { max: MAX_VIEWS }) };
  const views = [...others, { name: trimmed, query: filterKey(filter) }].sort((a, b) => a.name.localeCompare(b.name));
  try {
    storage.setItem(viewsKey(boardId, user), JSON.stringify(views));
  } catch {
    return { error: t("views.refused") };
  }
  return { views };
}

export function deleteView(storage: ViewStorage, boardId: string, user: string, name: string): SavedView[] {
  const views = loadViews(storage, boardId, user).filter((v) => v.name !== name);
  try {
    storage.setItem(viewsKey(boardId, user), JSON.stringify(views));
  } catch {
    // Nothing stored changes: the list shown is what the storage holds.
    return loadViews(storage, boardId, user);
  }
  return views;
}

/** The saved view whose filter is `filter`, if any. */
export function viewOf(views: readonly SavedView[], filter: BoardFilter): SavedView | null {
  const key = filterKey(filter);
  return key === "" ? null : (views.find((v) => v.query === key) ?? null);
}
