// Mirrors the reads of protocol/src/board.rs: the board document turned into plain values, with
// the rules every replica applies the same way (docs/board-document.md, "Rules every replica applies the same
// way"): stages in (kind rank, `pos`, id) order, whatever their keys say; cards by (`pos`, id);
// a card whose stage is gone shows in the initial column; sums per currency; workload per
// responsible; unprocessed cards; counters. Strings compare by bytes, as in Rust. The writes of
// board.rs are not mirrored yet. protocol/vectors/boards.json (written by Rust) and
// protocol/vectors/from-typescript.json (written here, checked by Rust) keep the two honest
// (test/vectors.test.ts, protocol/tests/vectors.rs).
//
// Reading is lenient like Rust's: a value of the wrong type reads as its default, an entry that
// is not a map is skipped, and reading never creates a root type in the document.

import * as Y from "yjs";
import { compareBytes } from "./order";
import { counter as computeCounter, I64_MAX, I64_MIN, type ActivityFacts, type Counter, type Millis } from "./rules";
import {
  ACTIVITY_KEY,
  BOARD_KEY,
  CARD_KEY,
  DEFAULT_COUNTER_THRESHOLD_MIN,
  DEFAULT_CURRENCY,
  QUICK_CREATE,
  ROOT,
  STAGE_KEY,
  isOpenKind,
  parseStageKind,
  type StageKind,
} from "./schema";

/** A stage as read. */
export interface Stage {
  id: string;
  name: string;
  color: string;
  kind: StageKind;
  pos: string;
  /** What a card must carry to enter it: card keys and custom field ids, in stored order. */
  required: string[];
  /** Percent chance as stored (0 to 100), null when unset: see `stageProbability`. */
  probabilitySet: number | null;
  /** Days without activity after which a card here is stale; 0: never. */
  rotDays: number;
}

/** A custom field value, as JSON (what `Y.Map.toJSON` gives, bigints as numbers). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A card as read. */
export interface Card {
  id: string;
  title: string;
  /** The stage the card names (maybe a deleted one: see {@link Column}). */
  stage: string;
  pos: string;
  amount: number;
  currency: string;
  responsible: string;
  client: string;
  /** The client's e-mail address; empty when none. */
  email: string;
  createdAt: Millis;
  /** When the card last changed (`updatedAt`; missing: `createdAt`). */
  updatedAt: Millis;
  /** When it was archived (`archivedAt`); null: it is on the board. */
  archivedAt: Millis | null;
  /** Custom field values by field id. */
  fields: Map<string, Json>;
  /** The expected close date (ms), null when none. */
  closeDate: Millis | null;
  /** Why it was lost; empty when none. */
  lostReason: string;
  /** When the server last recorded a timeline event on it (`timelineAt`), null if never. */
  timelineAt: Millis | null;
}

/** One column of the board: a stage and its cards in order, with the sums. */
export interface Column {
  stage: Stage;
  cards: Card[];
  /** Sum of `amount` per currency, currencies in byte order. */
  sums: Map<string, number>;
}

/** One manager's load: their cards in open stages (initial, progress), won and lost apart. */
export interface Workload {
  responsible: string;
  cards: number;
  /** Amounts per currency, currencies in byte order. */
  amounts: Map<string, number>;
  /** Cards whose counter is lit (state `due`). */
  lit: number;
}

/** The board's settings. */
export interface Settings {
  name: string;
  entity: string;
  currency: string;
  counterThresholdMin: number;
  /** The reasons a card may be lost for, in order; empty: any text. */
  lostReasons: string[];
}

/** An activity as read. */
export interface Activity {
  id: string;
  card: string;
  kind: string;
  subject: string;
  facts: ActivityFacts;
  /** When it was marked done (`doneAt`), null when its writer did not say. */
  doneAt: Millis | null;
}

/** Everything a board screen shows, read in one pass: Rust's `BoardView`. */
export interface BoardView {
  settings: Settings;
  columns: Column[];
  /** Per responsible, in byte order of the responsible id. */
  workload: Workload[];
  /** Ids of the cards whose counter is `idle`, in board order. */
  unprocessed: string[];
  /** Each card's counter at the time of reading, by card id. */
  counters: Map<string, Counter>;
}

/** The stages in board order: (kind rank, `pos`, id); entries without a valid kind are skipped. */
export function readStages(doc: Y.Doc): Stage[] {
  const map = rootMap(doc, ROOT.STAGES);
  if (map === undefined) return [];
  const stages: Stage[] = [];
  map.forEach((value, id) => {
    if (!(value instanceof Y.Map)) return;
    const stage = readStage(id, value);
    if (stage !== null) stages.push(stage);
  });
  return stages.sort(
    (a, b) => kindRank(a.kind) - kindRank(b.kind) || compareBytes(a.pos, b.pos) || compareBytes(a.id, b.id),
  );
}

/** The board's settings, with defaults for what is missing. */
export function readSettings(doc: Y.Doc): Settings {
  const board = rootMap(doc, ROOT.BOARD);
  return {
    name: (board && outStr(board, BOARD_KEY.NAME)) ?? "",
    entity: (board && outStr(board, BOARD_KEY.ENTITY)) ?? "",
    currency: (board && outStr(board, BOARD_KEY.CURRENCY)) ?? DEFAULT_CURRENCY,
    counterThresholdMin: (board && outI64(board, BOARD_KEY.COUNTER_THRESHOLD_MIN)) ?? DEFAULT_COUNTER_THRESHOLD_MIN,
    lostReasons: board ? readStrings(board.get(BOARD_KEY.LOST_REASONS)) : [],
  };
}

/** One card, if it exists. */
export function readCard(doc: Y.Doc, id: string): Card | null {
  const value = rootMap(doc, ROOT.CARDS)?.get(id);
  return value instanceof Y.Map ? cardFrom(id, value) : null;
}

/** Every activity of the board, grouped by card id, each list in byte order of activity id. */
export function activitiesByCard(doc: Y.Doc): Map<string, Activity[]> {
  const byCard = new Map<string, Activity[]>();
  const map = rootMap(doc, ROOT.ACTIVITIES);
  if (map === undefined) return byCard;
  map.forEach((value, id) => {
    if (!(value instanceof Y.Map)) return;
    const card = outStr(value, ACTIVITY_KEY.CARD);
    if (card === undefined) return;
    const activity: Activity = {
      id,
      card,
      kind: outStr(value, ACTIVITY_KEY.KIND) ?? "",
      subject: outStr(value, ACTIVITY_KEY.SUBJECT) ?? "",
      doneAt: outI64(value, ACTIVITY_KEY.DONE_AT) ?? null,
      facts: {
        deadline: outI64(value, ACTIVITY_KEY.DEADLINE) ?? null,
        remindMin: outI64(value, ACTIVITY_KEY.REMIND_MIN) ?? null,
        // The rules single out `incoming`; anything else is planned.
        direction: outStr(value, ACTIVITY_KEY.DIRECTION) === "incoming" ? "incoming" : "outgoing",
        done: outBool(value, ACTIVITY_KEY.DONE) ?? false,
        responsible: outStr(value, ACTIVITY_KEY.RESPONSIBLE) ?? "",
      },
    };
    const list = byCard.get(card);
    if (list === undefined) byCard.set(card, [activity]);
    else list.push(activity);
  });
  for (const list of byCard.values()) list.sort((a, b) => compareBytes(a.id, b.id));
  return byCard;
}

/** Reads the whole board as it stands at `now` (counters depend on the time). */
export function readBoard(doc: Y.Doc, now: Millis): BoardView {
  const settings = readSettings(doc);
  const stages = readStages(doc);
  const initialIndex = stages.findIndex((s) => s.kind === "initial");
  const initial = initialIndex === -1 ? 0 : initialIndex;
  const index = new Map(stages.map((stage, i) => [stage.id, i]));
  const columns: Column[] = stages.map((stage) => ({ stage, cards: [], sums: new Map() }));
  const activities = activitiesByCard(doc);
  const counters = new Map<string, Counter>();
  rootMap(doc, ROOT.CARDS)?.forEach((value, id) => {
    if (!(value instanceof Y.Map)) return;
    const card = cardFrom(id, value);
    // An archived card is kept in the document and shown nowhere.
    if (card.archivedAt !== null) return;
    // A card whose stage is gone (deleted concurrently) counts in the initial stage.
    const column = index.get(card.stage) ?? (columns.length > 0 ? initial : undefined);
    if (column === undefined) return;
    const facts = (activities.get(id) ?? []).map((a) => a.facts);
    const columnOf = columns[column]!;
    counters.set(card.id, computeCounter(facts, columnOf.stage.kind, settings.counterThresholdMin, now));
    columnOf.cards.push(card);
  });
  const workload = new Map<string, Workload>();
  const unprocessed: string[] = [];
  for (const column of columns) {
    column.cards.sort((a, b) => compareBytes(a.pos, b.pos) || compareBytes(a.id, b.id));
    const sums = new Map<string, number>();
    for (const card of column.cards) {
      sums.set(card.currency, (sums.get(card.currency) ?? 0) + card.amount);
      const state = counters.get(card.id)?.state;
      if (state === "idle") unprocessed.push(card.id);
      // A manager's load is their open deals: won and lost cards are done.
      if (!isOpenKind(column.stage.kind)) continue;
      let load = workload.get(card.responsible);
      if (load === undefined) {
        load = { responsible: card.responsible, cards: 0, amounts: new Map(), lit: 0 };
        workload.set(card.responsible, load);
      }
      load.cards += 1;
      load.amounts.set(card.currency, (load.amounts.get(card.currency) ?? 0) + card.amount);
      if (state === "due") load.lit += 1;
    }
    column.sums = sortedByKey(sums);
  }
  return {
    settings,
    columns,
    workload: [...workload.values()]
      .sort((a, b) => compareBytes(a.responsible, b.responsible))
      .map((load) => ({ ...load, amounts: sortedByKey(load.amounts) })),
    unprocessed,
    counters,
  };
}

/** The column a card is shown in. */
export function columnOf(view: BoardView, card: string): Column | undefined {
  return view.columns.find((column) => column.cards.some((c) => c.id === card));
}

/** Whether the stages keep their invariants: one initial, one success, at least one failure. */
export function checkInvariants(doc: Y.Doc): string | null {
  const stages = readStages(doc);
  const count = (kind: StageKind) => stages.filter((s) => s.kind === kind).length;
  if (count("initial") !== 1) return "a board has exactly one initial stage";
  if (count("success") !== 1) return "a board has exactly one success stage";
  if (count("failure") === 0) return "a board has at least one failure stage";
  return null;
}

/** The fields of the quick-create form, in order. */
export function quickCreateFields(doc: Y.Doc): string[] {
  return readStringArray(rootMap(doc, ROOT.FORMS)?.get(QUICK_CREATE));
}

/** One user's display form: the fields their cards show, in order. */
export function displayFields(doc: Y.Doc, user: string): string[] {
  return readStringArray(rootMap(doc, ROOT.VIEWS)?.get(user));
}

// ---------------------------------------------------------------------------------------------
// Reading values the way board.rs does

/**
 * A root map, or `undefined` when the document has no such root (Rust's `txn.get_map`): reading
 * must not define one. A root that is already another type reads as missing too.
 */
function rootMap(doc: Y.Doc, name: string): Y.Map<unknown> | undefined {
  if (!doc.share.has(name)) return undefined;
  try {
    return doc.getMap(name);
  } catch {
    return undefined;
  }
}

function outStr(map: Y.Map<unknown>, key: string): string | undefined {
  const value = map.get(key);
  return typeof value === "string" ? value : undefined;
}

/**
 * A number as Rust's `out_i64` reads it: integers as they are, other numbers truncated towards
 * zero and clamped to the i64 range (NaN is 0); a bigint (lib0 writes one for `BigInt` values)
 * as a number. Anything else is missing.
 */
function outI64(map: Y.Map<unknown>, key: string): number | undefined {
  const value = map.get(key);
  if (typeof value === "bigint") return Number(value);
  if (typeof value !== "number") return undefined;
  return toI64(value);
}

function toI64(value: number): number {
  // `|| 0` turns NaN into 0 (Rust's `NaN as i64`) and -0 into 0.
  return Math.min(Math.max(Math.trunc(value) || 0, I64_MIN), I64_MAX);
}

function outBool(map: Y.Map<unknown>, key: string): boolean | undefined {
  const value = map.get(key);
  return typeof value === "boolean" ? value : undefined;
}

/** Where a stage kind sorts: the initial stage first, final stages last, whatever their keys. */
function kindRank(kind: StageKind): number {
  switch (kind) {
    case "initial":
      return 0;
    case "progress":
      return 1;
    case "success":
    case "failure":
      return 2;
  }
}

function readStage(id: string, map: Y.Map<unknown>): Stage | null {
  const kind = parseStageKind(outStr(map, STAGE_KEY.KIND) ?? "");
  if (kind === null) return null;
  return {
    id,
    name: outStr(map, STAGE_KEY.NAME) ?? "",
    color: outStr(map, STAGE_KEY.COLOR) ?? "",
    kind,
    pos: outStr(map, STAGE_KEY.POS) ?? "",
    required: readStrings(map.get(STAGE_KEY.REQUIRED)),
    probabilitySet: outI64(map, STAGE_KEY.PROBABILITY) ?? null,
    rotDays: Math.max(0, outI64(map, STAGE_KEY.ROT_DAYS) ?? 0),
  };
}

function cardFrom(id: string, map: Y.Map<unknown>): Card {
  const fields = new Map<string, Json>();
  const fieldMap = map.get(CARD_KEY.FIELDS);
  if (fieldMap instanceof Y.Map) {
    fieldMap.forEach((value, key) => fields.set(key, toJson(value)));
  }
  const createdAt = outI64(map, CARD_KEY.CREATED_AT) ?? 0;
  return {
    id,
    title: outStr(map, CARD_KEY.TITLE) ?? "",
    stage: outStr(map, CARD_KEY.STAGE) ?? "",
    pos: outStr(map, CARD_KEY.POS) ?? "",
    amount: outI64(map, CARD_KEY.AMOUNT) ?? 0,
    currency: outStr(map, CARD_KEY.CURRENCY) ?? "",
    responsible: outStr(map, CARD_KEY.RESPONSIBLE) ?? "",
    client: outStr(map, CARD_KEY.CLIENT) ?? "",
    email: outStr(map, CARD_KEY.EMAIL) ?? "",
    createdAt,
    updatedAt: outI64(map, CARD_KEY.UPDATED_AT) ?? createdAt,
    archivedAt: outI64(map, CARD_KEY.ARCHIVED_AT) ?? null,
    fields,
    closeDate: outI64(map, CARD_KEY.CLOSE_DATE) ?? null,
    lostReason: outStr(map, CARD_KEY.LOST_REASON) ?? "",
    timelineAt: outI64(map, CARD_KEY.TIMELINE_AT) ?? null,
  };
}

/**
 * A stored value as JSON, like yrs' `to_json` then serde: shared types by their content, bigints
 * as numbers, buffers as arrays of bytes, `undefined` as null.
 */
function toJson(value: unknown): Json {
  if (value instanceof Y.AbstractType) return toJson(value.toJSON());
  if (typeof value === "bigint") return Number(value);
  if (value === undefined) return null;
  // yrs serializes a buffer as an array of bytes.
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const [key, inner] of Object.entries(value)) out[key] = toJson(inner);
    return out;
  }
  return value as Json;
}

/** A plain array of strings or a `Y.Array` of them (Rust's `out_strings`); other items skipped. */
function readStrings(value: unknown): string[] {
  const list: unknown[] = value instanceof Y.Array ? value.toArray() : Array.isArray(value) ? value : [];
  return list.filter((item): item is string => typeof item === "string");
}

function readStringArray(value: unknown): string[] {
  if (!(value instanceof Y.Array)) return [];
  return value.toArray().filter((item): item is string => typeof item === "string");
}

function sortedByKey<V>(map: Map<string, V>): Map<string, V> {
  return new Map([...map.entries()].sort(([a], [b]) => compareBytes(a, b)));
}
