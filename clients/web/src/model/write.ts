// Mirrors the writes of protocol/src/board.rs: one function per user action, each ONE
// `doc.transact`, so that one action is one update. Each refuses what would break a stage
// invariant, with the same messages as Rust's `BoardError`, before writing anything (the only
// exception is Rust's too: a rebalance of order keys that still finds no key, which cannot happen
// with valid keys). A move sets `stage` and `pos` of one card and nothing else: never a delete
// and re-insert (docs/board-document.md, "Rules every replica applies the same way").
//
// Called inside an outer `doc.transact`, a helper joins it: several helpers then make one update
// (the settings panel saves its three settings that way).

import * as Y from "yjs";
import { readSettings, readStages, type Stage } from "./board";
import { compareBytes, keyBetween, MAX_KEY_LEN, nKeysBetween, OrderError, rebalanced } from "./order";
import type { Direction, Millis } from "./rules";
import {
  ACTIVITY_KEY,
  BOARD_KEY,
  CARD_KEY,
  FIELD_KEY,
  FIELD_TYPES,
  MAX_NAME_CHARS,
  MAX_THRESHOLD_MIN,
  QUICK_CREATE,
  REQUIRABLE_CARD_KEYS,
  ROOT,
  STAGE_KEY,
  type StageKind,
} from "./schema";

/** The largest amount, in minor units, either way: Rust's `MAX_AMOUNT`, 2^53 - 1. */
export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER;

/** Why a write was refused: the variants of Rust's `BoardError` (order errors stay `OrderError`). */
export type BoardErrorKind =
  | "noSuchStage"
  | "noSuchCard"
  | "cardExists"
  | "noSuchActivity"
  | "initialStageIsPermanent"
  | "successStageIsUnique"
  | "initialStageIsUnique"
  | "lastFailureStage"
  | "stageOrder"
  | "cardsNeedAnotherStage"
  | "badName"
  | "badColor"
  | "badAmount"
  | "badThreshold"
  | "badFieldType"
  | "badProbability"
  | "badRotDays"
  | "unknownRequiredField"
  | "initialStageRequiresNothing"
  | "badLostReason"
  | "badLostReasons"
  | "needsRebalance";

/** The most days a stage may let a card sit before it is stale: Rust's `MAX_ROT_DAYS`. */
export const MAX_ROT_DAYS = 3650;
/** The most lost reasons a board lists: Rust's `MAX_LOST_REASONS`. */
export const MAX_LOST_REASONS = 100;

/** What a name that was refused names (`badName`). */
export type NameSubject = "stageName" | "cardTitle" | "fieldLabel";
const NAME_SUBJECTS: Record<NameSubject, string> = {
  stageName: "a stage name",
  cardTitle: "a card title",
  fieldLabel: "a field label",
};

/** Which rule of the stages' order a write broke (`stageOrder`). */
export type StageOrderRule = "initialFirst" | "progressBeforeFinal" | "finalLast" | "noKeyFits";
const STAGE_ORDER_RULES: Record<StageOrderRule, string> = {
  initialFirst: "the initial stage stays first",
  progressBeforeFinal: "a progress stage goes before the final stages",
  finalLast: "final stages stay after the others",
  noKeyFits: "no key fits",
};

/**
 * A refused write; nothing was written. The message is Rust's, word for word; `params` are its
 * parts, for the web client's catalogue to say it in the reader's language (`ui/refusals.ts`).
 */
export class BoardError extends Error {
  constructor(
    readonly kind: BoardErrorKind,
    message: string,
    readonly params: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "BoardError";
  }
}

const errors = {
  noSuchStage: (id: string) => new BoardError("noSuchStage", `no stage ${id}`, { id }),
  noSuchCard: (id: string) => new BoardError("noSuchCard", `no card ${id}`, { id }),
  cardExists: (id: string) => new BoardError("cardExists", `card ${id} exists again: it cannot be restored`, { id }),
  noSuchActivity: (id: string) => new BoardError("noSuchActivity", `no activity ${id}`, { id }),
  initialStageIsPermanent: () =>
    new BoardError("initialStageIsPermanent", "the initial stage cannot be deleted, only renamed"),
  successStageIsUnique: () =>
    new BoardError("successStageIsUnique", "a board has exactly one success stage: it cannot be added or deleted"),
  initialStageIsUnique: () =>
    new BoardError("initialStageIsUnique", "a board has exactly one initial stage: it cannot be added"),
  lastFailureStage: () => new BoardError("lastFailureStage", "the last failure stage cannot be deleted"),
  stageOrder: (rule: StageOrderRule) =>
    new BoardError("stageOrder", `stage order: ${STAGE_ORDER_RULES[rule]}`, { rule }),
  cardsNeedAnotherStage: () =>
    new BoardError("cardsNeedAnotherStage", "cards of a deleted stage must go to another stage"),
  badName: (subject: NameSubject) =>
    new BoardError("badName", `${NAME_SUBJECTS[subject]} must be 1 to ${MAX_NAME_CHARS} characters`, {
      subject,
      max: String(MAX_NAME_CHARS),
    }),
  badColor: (color: string) =>
    new BoardError("badColor", `colour must be #rrggbb, got ${JSON.stringify(color)}`, { color }),
  badAmount: () => new BoardError("badAmount", `an amount must be within ±${MAX_AMOUNT} minor units`),
  badThreshold: () =>
    new BoardError("badThreshold", `counter threshold must be 0 to ${MAX_THRESHOLD_MIN} minutes`, {
      max: String(MAX_THRESHOLD_MIN),
    }),
  badFieldType: (type: string) =>
    new BoardError(
      "badFieldType",
      `unknown field type ${JSON.stringify(type)}: use string, number, money, date, enum, user or bool`,
      { type },
    ),
  badProbability: () => new BoardError("badProbability", "a probability must be 0 to 100 (percent)"),
  badRotDays: () =>
    new BoardError("badRotDays", `days before a card rots must be 0 (never) to ${MAX_ROT_DAYS}`, {
      max: String(MAX_ROT_DAYS),
    }),
  unknownRequiredField: (key: string) =>
    new BoardError(
      "unknownRequiredField",
      `a stage can require amount, client, email, responsible, closeDate, lostReason or a custom field of the board, not ${JSON.stringify(key)}`,
      { key },
    ),
  initialStageRequiresNothing: () =>
    new BoardError(
      "initialStageRequiresNothing",
      "the initial stage requires nothing: every new card (by mail, by the API) enters it",
    ),
  badLostReason: (reason: string) =>
    new BoardError("badLostReason", `${JSON.stringify(reason)} is not one of the board's lost reasons`, { reason }),
  badLostReasons: () =>
    new BoardError(
      "badLostReasons",
      `lost reasons must be 1 to ${MAX_NAME_CHARS} characters each, at most ${MAX_LOST_REASONS}, no repeats`,
      { max: String(MAX_NAME_CHARS), count: String(MAX_LOST_REASONS) },
    ),
  needsRebalance: () =>
    new BoardError("needsRebalance", "the neighbours' order keys are too long to split; move with a rebalance"),
};

/**
 * A fresh opaque id for a stage, a card, an activity or a field: a UUIDv7, as Rust's `new_id`,
 * so ids sort by creation time.
 */
export function newId(now: Millis = Date.now()): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let ms = Math.max(0, Math.floor(now));
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Stages

/** Adds a stage of `kind` (progress or failure) right after stage `after`; returns its id. */
export function addStage(doc: Y.Doc, name: string, color: string, kind: StageKind, after: string): string {
  checkName("stageName", name);
  checkColor(color);
  if (kind === "initial") throw errors.initialStageIsUnique();
  if (kind === "success") throw errors.successStageIsUnique();
  const id = newId();
  doc.transact(() => {
    const pos = placeStage(doc, id, kind, after);
    doc.getMap(ROOT.STAGES).set(
      id,
      new Y.Map<unknown>([
        [STAGE_KEY.NAME, name.trim()],
        [STAGE_KEY.COLOR, color],
        [STAGE_KEY.KIND, kind],
        [STAGE_KEY.POS, pos],
      ]),
    );
  });
  return id;
}

export function renameStage(doc: Y.Doc, id: string, name: string): void {
  checkName("stageName", name);
  const stage = stageMap(doc, id);
  doc.transact(() => stage.set(STAGE_KEY.NAME, name.trim()));
}

export function recolorStage(doc: Y.Doc, id: string, color: string): void {
  checkColor(color);
  const stage = stageMap(doc, id);
  doc.transact(() => stage.set(STAGE_KEY.COLOR, color));
}

/** Moves stage `id` right after stage `after`. */
export function moveStage(doc: Y.Doc, id: string, after: string): void {
  const stage = stageMap(doc, id);
  const kind = readStages(doc).find((s) => s.id === id)?.kind;
  if (kind === undefined) throw errors.noSuchStage(id);
  if (kind === "initial") throw errors.stageOrder("initialFirst");
  doc.transact(() => {
    const pos = placeStage(doc, id, kind, after);
    stage.set(STAGE_KEY.POS, pos);
  });
}

/** Deletes stage `id`; its cards move, in their order, to the end of stage `cardsTo`. */
export function deleteStage(doc: Y.Doc, id: string, cardsTo: string): void {
  const all = readStages(doc);
  const stage = all.find((s) => s.id === id);
  if (stage === undefined) throw errors.noSuchStage(id);
  if (stage.kind === "initial") throw errors.initialStageIsPermanent();
  if (stage.kind === "success") throw errors.successStageIsUnique();
  if (stage.kind === "failure" && all.filter((s) => s.kind === "failure").length === 1) {
    throw errors.lastFailureStage();
  }
  if (cardsTo === id) throw errors.cardsNeedAnotherStage();
  if (!all.some((s) => s.id === cardsTo)) throw errors.noSuchStage(cardsTo);
  doc.transact(() => {
    const moving = columnKeys(doc, id, "");
    const target = columnKeys(doc, cardsTo, "");
    const last = target.length > 0 ? target[target.length - 1]![0] : null;
    let keys: string[];
    try {
      keys = nKeysBetween(last, null, moving.length);
    } catch (error) {
      if (!(error instanceof OrderError)) throw error;
      // The target's keys are unusable: rebalance it first.
      const fresh = rebalanced(target.length + moving.length);
      target.forEach(([, card], i) => cardMapOrNull(doc, card)?.set(CARD_KEY.POS, fresh[i]!));
      keys = fresh.slice(target.length);
    }
    moving.forEach(([, card], i) => {
      const map = cardMapOrNull(doc, card);
      if (map === null) return;
      map.set(CARD_KEY.STAGE, cardsTo);
      map.set(CARD_KEY.POS, keys[i]!);
    });
    doc.getMap(ROOT.STAGES).delete(id);
  });
}

/** Changes to a stage's rules: Rust's `StageRules`; a missing key leaves that rule as it is. */
export interface StageRules {
  /** Card keys (`REQUIRABLE_CARD_KEYS`) and custom field ids a card must carry to enter it. */
  required?: readonly string[];
  /** Percent chance of winning, 0 to 100. */
  probability?: number;
  /** Days without activity before a card is stale, 0 (never) to `MAX_ROT_DAYS`. */
  rotDays?: number;
}

/** Sets a stage's rules (admin): required fields, probability, days before a card rots. */
export function setStageRules(doc: Y.Doc, id: string, rules: StageRules): void {
  const { probability, rotDays } = rules;
  if (probability !== undefined && (!Number.isInteger(probability) || probability < 0 || probability > 100))
    throw errors.badProbability();
  if (rotDays !== undefined && (!Number.isInteger(rotDays) || rotDays < 0 || rotDays > MAX_ROT_DAYS))
    throw errors.badRotDays();
  const map = stageMap(doc, id);
  let required: string[] | undefined;
  if (rules.required !== undefined) {
    if (rules.required.length > 0 && map.get(STAGE_KEY.KIND) === "initial") throw errors.initialStageRequiresNothing();
    const fields = doc.share.has(ROOT.FIELDS) ? doc.getMap(ROOT.FIELDS) : null;
    required = [];
    for (const key of rules.required) {
      const known =
        (REQUIRABLE_CARD_KEYS as readonly string[]).includes(key) ||
        (fields !== null && fields.get(key) instanceof Y.Map);
      if (!known) throw errors.unknownRequiredField(key);
      if (!required.includes(key)) required.push(key);
    }
  }
  doc.transact(() => {
    if (required !== undefined) map.set(STAGE_KEY.REQUIRED, required);
    if (probability !== undefined) map.set(STAGE_KEY.PROBABILITY, probability);
    if (rotDays !== undefined) map.set(STAGE_KEY.ROT_DAYS, rotDays);
  });
}

/** The reasons a card may be lost for, in order (admin); empty: any text. */
export function setLostReasons(doc: Y.Doc, reasons: readonly string[]): void {
  const trimmed = reasons.map((r) => r.trim());
  const bad =
    trimmed.length > MAX_LOST_REASONS ||
    trimmed.some((r, i) => r === "" || Array.from(r).length > MAX_NAME_CHARS || trimmed.indexOf(r) !== i);
  if (bad) throw errors.badLostReasons();
  doc.transact(() => doc.getMap(ROOT.BOARD).set(BOARD_KEY.LOST_REASONS, trimmed));
}

// ---------------------------------------------------------------------------------------------
// Cards

/** Where a card goes in its column: Rust's `CardPlace`. */
export type CardPlace = { kind: "top" } | { kind: "bottom" } | { kind: "after"; card: string };

/** The fields of the quick-create form: Rust's `NewCard`. */
export interface NewCard {
  title: string;
  /** Minor units. */
  amount?: number;
  /** Empty or missing: the board's currency. */
  currency?: string;
  responsible?: string;
  client?: string;
  /** The client's e-mail address (empty or missing: none). */
  email?: string;
  /** Custom field values by field id. */
  fields?: Record<string, unknown>;
}

/** Creates a card at the top of `stage`; returns its id. */
export function createCard(doc: Y.Doc, stage: string, card: NewCard, now: Millis): string {
  checkName("cardTitle", card.title);
  const amount = card.amount ?? 0;
  checkAmount(amount);
  stageMap(doc, stage);
  const currency = card.currency ? card.currency : readSettings(doc).currency;
  const id = newId(now);
  doc.transact(() => {
    const pos = cardKeyIn(doc, stage, id, { kind: "top" });
    const fields = new Y.Map<unknown>(Object.entries(card.fields ?? {}));
    doc.getMap(ROOT.CARDS).set(
      id,
      new Y.Map<unknown>([
        [CARD_KEY.TITLE, card.title.trim()],
        [CARD_KEY.STAGE, stage],
        [CARD_KEY.POS, pos],
        [CARD_KEY.AMOUNT, amount],
        [CARD_KEY.CURRENCY, currency],
        [CARD_KEY.RESPONSIBLE, card.responsible ?? ""],
        [CARD_KEY.CLIENT, card.client ?? ""],
        [CARD_KEY.EMAIL, (card.email ?? "").trim()],
        [CARD_KEY.CREATED_AT, now],
        [CARD_KEY.FIELDS, fields],
      ]),
    );
  });
  return id;
}

/**
 * Moves a card between two neighbours whose keys the caller already has on screen: `prev` and
 * `next` are the `pos` of the cards that will sit just before and after it (null at an end). No
 * scan, so the cost does not grow with the board. When the keys collide or are too long to
 * split it throws (`OrderError` or `needsRebalance`): then use {@link moveCard}, which
 * rebalances the column.
 */
export function moveCardBetween(doc: Y.Doc, id: string, stage: string, prev: string | null, next: string | null): void {
  const card = cardMap(doc, id);
  stageMap(doc, stage);
  const pos = keyBetween(prev, next);
  if (pos.length > MAX_KEY_LEN) throw errors.needsRebalance();
  doc.transact(() => {
    card.set(CARD_KEY.STAGE, stage);
    card.set(CARD_KEY.POS, pos);
  });
}

/** Moves a card to `stage` at `place`, rebalancing the column's keys when they collide. */
export function moveCard(doc: Y.Doc, id: string, stage: string, place: CardPlace): void {
  const card = cardMap(doc, id);
  stageMap(doc, stage);
  if (place.kind === "after" && !columnKeys(doc, stage, id).some(([, c]) => c === place.card)) {
    throw errors.noSuchCard(place.card);
  }
  doc.transact(() => {
    const pos = cardKeyIn(doc, stage, id, place);
    card.set(CARD_KEY.STAGE, stage);
    card.set(CARD_KEY.POS, pos);
  });
}

/** Changes to a card's own fields; a missing key leaves that field as it is. */
export interface CardEdit {
  title?: string;
  amount?: number;
  currency?: string;
  responsible?: string;
  client?: string;
  /** The client's e-mail address (empty clears it). */
  email?: string;
  /** Custom field values to set (`null` clears one). */
  fields?: Record<string, unknown>;
  /** The expected close date (ms); null clears it. */
  closeDate?: Millis | null;
  /** Why it was lost (empty clears it); one of the board's lost reasons when it lists any. */
  lostReason?: string;
}

export function editCard(doc: Y.Doc, id: string, edit: CardEdit): void {
  if (edit.title !== undefined) checkName("cardTitle", edit.title);
  if (edit.amount !== undefined) checkAmount(edit.amount);
  const lostReason = edit.lostReason?.trim();
  if (lostReason !== undefined && lostReason !== "") {
    const reasons = readSettings(doc).lostReasons;
    if (reasons.length > 0 && !reasons.includes(lostReason)) throw errors.badLostReason(lostReason);
  }
  const card = cardMap(doc, id);
  doc.transact(() => {
    if (lostReason !== undefined) card.set(CARD_KEY.LOST_REASON, lostReason);
    if (edit.closeDate === null) card.delete(CARD_KEY.CLOSE_DATE);
    else if (edit.closeDate !== undefined) card.set(CARD_KEY.CLOSE_DATE, Math.trunc(edit.closeDate));
    if (edit.title !== undefined) card.set(CARD_KEY.TITLE, edit.title.trim());
    if (edit.currency !== undefined) card.set(CARD_KEY.CURRENCY, edit.currency);
    if (edit.responsible !== undefined) card.set(CARD_KEY.RESPONSIBLE, edit.responsible);
    if (edit.client !== undefined) card.set(CARD_KEY.CLIENT, edit.client);
    if (edit.email !== undefined) card.set(CARD_KEY.EMAIL, edit.email.trim());
    if (edit.amount !== undefined) card.set(CARD_KEY.AMOUNT, edit.amount);
    const entries = Object.entries(edit.fields ?? {});
    if (entries.length > 0) {
      let fields = card.get(CARD_KEY.FIELDS);
      if (!(fields instanceof Y.Map)) {
        fields = new Y.Map<unknown>();
        card.set(CARD_KEY.FIELDS, fields);
      }
      const map = fields as Y.Map<unknown>;
      for (const [key, value] of entries) map.set(key, value);
    }
  });
}

/** Archives a card at `at` (ms), or restores it (`null`): Rust's `archive_card`. */
export function archiveCard(doc: Y.Doc, id: string, at: Millis | null): void {
  const card = cardMap(doc, id);
  doc.transact(() => {
    if (at === null) card.delete(CARD_KEY.ARCHIVED_AT);
    else card.set(CARD_KEY.ARCHIVED_AT, at);
  });
}

/** What a deleted card held: enough to put it back as it was (`restoreCard`). */
export interface DeletedCard {
  id: string;
  /** The card's keys as plain JSON (custom fields as an object), without the server's keys. */
  card: Record<string, unknown>;
  /** Its activities, by id, as plain JSON. */
  activities: Record<string, Record<string, unknown>>;
}

/** The card keys only the server writes: a restore leaves them to the server to recompute. */
const SERVER_KEYS: ReadonlySet<string> = new Set([
  CARD_KEY.COUNTER,
  CARD_KEY.AVATAR,
  CARD_KEY.AVATAR_AT,
  CARD_KEY.AVATAR_REASON,
  CARD_KEY.TIMELINE_AT,
]);

/** Deletes a card and its activities (Rust's `delete_card`); returns what it held, for an undo. */
export function deleteCard(doc: Y.Doc, id: string): DeletedCard {
  const card = cardMap(doc, id);
  const kept: DeletedCard = { id, card: {}, activities: {} };
  for (const [key, value] of card.entries()) {
    if (SERVER_KEYS.has(key)) continue;
    kept.card[key] = value instanceof Y.AbstractType ? (value.toJSON() as unknown) : value;
  }
  const activities = doc.getMap(ROOT.ACTIVITIES);
  const theirs: string[] = [];
  activities.forEach((value, activity) => {
    if (value instanceof Y.Map && value.get(ACTIVITY_KEY.CARD) === id) {
      theirs.push(activity);
      kept.activities[activity] = value.toJSON();
    }
  });
  doc.transact(() => {
    for (const activity of theirs) activities.delete(activity);
    doc.getMap(ROOT.CARDS).delete(id);
  });
  return kept;
}

/**
 * Puts a deleted card back, with its id, stage, place, fields and activities (an undo). The
 * server recomputes its counter and avatar. Refused when a card of that id exists again.
 */
export function restoreCard(doc: Y.Doc, deleted: DeletedCard): void {
  const cards = doc.getMap(ROOT.CARDS);
  if (cards.get(deleted.id) instanceof Y.Map) throw errors.cardExists(deleted.id);
  doc.transact(() => {
    const card = new Y.Map<unknown>();
    for (const [key, value] of Object.entries(deleted.card)) {
      if (key === CARD_KEY.FIELDS && typeof value === "object" && value !== null && !Array.isArray(value)) {
        card.set(key, new Y.Map<unknown>(Object.entries(value as Record<string, unknown>)));
      } else {
        card.set(key, value);
      }
    }
    cards.set(deleted.id, card);
    const activities = doc.getMap(ROOT.ACTIVITIES);
    for (const [id, activity] of Object.entries(deleted.activities)) {
      activities.set(id, new Y.Map<unknown>(Object.entries(activity)));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Activities

/** A planned or incoming activity to add to a card: Rust's `NewActivity`. */
export interface NewActivity {
  card: string;
  /** `call`, `meeting`, `task`, `email`, `chat`, ... */
  kind: string;
  direction: Direction;
  subject: string;
  deadline: Millis | null;
  remindMin: number | null;
  responsible: string;
}

export function addActivity(doc: Y.Doc, activity: NewActivity): string {
  cardMap(doc, activity.card);
  const id = newId();
  doc.transact(() => {
    const map = new Y.Map<unknown>([
      [ACTIVITY_KEY.CARD, activity.card],
      [ACTIVITY_KEY.KIND, activity.kind],
      [ACTIVITY_KEY.DIRECTION, activity.direction],
      [ACTIVITY_KEY.SUBJECT, activity.subject],
      [ACTIVITY_KEY.RESPONSIBLE, activity.responsible],
      [ACTIVITY_KEY.DONE, false],
    ]);
    if (activity.deadline !== null) map.set(ACTIVITY_KEY.DEADLINE, activity.deadline);
    if (activity.remindMin !== null) map.set(ACTIVITY_KEY.REMIND_MIN, activity.remindMin);
    doc.getMap(ROOT.ACTIVITIES).set(id, map);
  });
  return id;
}

/** Changes to an activity; a missing key leaves that field as it is. */
export interface ActivityEdit {
  subject?: string;
  deadline?: Millis;
  remindMin?: number;
  responsible?: string;
}

export function editActivity(doc: Y.Doc, id: string, edit: ActivityEdit): void {
  const activity = activityMap(doc, id);
  doc.transact(() => {
    if (edit.subject !== undefined) activity.set(ACTIVITY_KEY.SUBJECT, edit.subject);
    if (edit.deadline !== undefined) activity.set(ACTIVITY_KEY.DEADLINE, edit.deadline);
    if (edit.remindMin !== undefined) activity.set(ACTIVITY_KEY.REMIND_MIN, edit.remindMin);
    if (edit.responsible !== undefined) activity.set(ACTIVITY_KEY.RESPONSIBLE, edit.responsible);
  });
}

/** Marks an activity done at `now` (its `doneAt`: the card's last activity, which rotting reads) or open again. */
export function completeActivity(doc: Y.Doc, id: string, done = true, now: Millis = Date.now()): void {
  const activity = activityMap(doc, id);
  doc.transact(() => {
    activity.set(ACTIVITY_KEY.DONE, done);
    if (done) activity.set(ACTIVITY_KEY.DONE_AT, now);
  });
}

/** Records that card `id` changed at `now` (its `updatedAt`), in the transaction of the change. */
export function touchCard(doc: Y.Doc, id: string, now: Millis): void {
  const card = cardMap(doc, id);
  doc.transact(() => card.set(CARD_KEY.UPDATED_AT, now));
}

export function removeActivity(doc: Y.Doc, id: string): void {
  activityMap(doc, id);
  doc.transact(() => doc.getMap(ROOT.ACTIVITIES).delete(id));
}

// ---------------------------------------------------------------------------------------------
// Forms, views, settings, fields

/** The fields of the quick-create form, in order. */
export function setQuickCreateFields(doc: Y.Doc, fields: readonly string[]): void {
  doc.transact(() => doc.getMap(ROOT.FORMS).set(QUICK_CREATE, stringArray(fields)));
}

/** One user's display form: the fields their cards show, in order. */
export function setDisplayFields(doc: Y.Doc, user: string, fields: readonly string[]): void {
  doc.transact(() => doc.getMap(ROOT.VIEWS).set(user, stringArray(fields)));
}

export function setCounterThreshold(doc: Y.Doc, minutes: number): void {
  if (!Number.isInteger(minutes) || minutes < 0 || minutes > MAX_THRESHOLD_MIN) throw errors.badThreshold();
  doc.transact(() => doc.getMap(ROOT.BOARD).set(BOARD_KEY.COUNTER_THRESHOLD_MIN, minutes));
}

/** Defines (or, with an id, redefines) a custom field; returns its id. */
export function defineField(
  doc: Y.Doc,
  id: string | null,
  label: string,
  fieldType: string,
  options: readonly string[] = [],
): string {
  checkName("fieldLabel", label);
  if (!(FIELD_TYPES as readonly string[]).includes(fieldType)) throw errors.badFieldType(fieldType);
  const fieldId = id ?? newId();
  doc.transact(() => {
    doc.getMap(ROOT.FIELDS).set(
      fieldId,
      new Y.Map<unknown>([
        [FIELD_KEY.LABEL, label.trim()],
        [FIELD_KEY.TYPE, fieldType],
        [FIELD_KEY.OPTIONS, [...options]],
      ]),
    );
  });
  return fieldId;
}

// ---------------------------------------------------------------------------------------------

function checkName(subject: NameSubject, name: string): void {
  const chars = Array.from(name.trim()).length;
  if (chars === 0 || chars > MAX_NAME_CHARS) throw errors.badName(subject);
}

function checkAmount(amount: number): void {
  if (!Number.isInteger(amount) || Math.abs(amount) > MAX_AMOUNT) throw errors.badAmount();
}

function checkColor(color: string): void {
  if (!/^#[0-9a-fA-F]{6}$/.test(color)) throw errors.badColor(color);
}

function childMap(parent: Y.Map<unknown>, key: string): Y.Map<unknown> | null {
  const value = parent.get(key);
  return value instanceof Y.Map ? (value as Y.Map<unknown>) : null;
}

function stageMap(doc: Y.Doc, id: string): Y.Map<unknown> {
  const map = childMap(doc.getMap(ROOT.STAGES), id);
  if (map === null) throw errors.noSuchStage(id);
  return map;
}

function cardMapOrNull(doc: Y.Doc, id: string): Y.Map<unknown> | null {
  return childMap(doc.getMap(ROOT.CARDS), id);
}

function cardMap(doc: Y.Doc, id: string): Y.Map<unknown> {
  const map = cardMapOrNull(doc, id);
  if (map === null) throw errors.noSuchCard(id);
  return map;
}

function activityMap(doc: Y.Doc, id: string): Y.Map<unknown> {
  const map = childMap(doc.getMap(ROOT.ACTIVITIES), id);
  if (map === null) throw errors.noSuchActivity(id);
  return map;
}

function stringArray(values: readonly string[]): Y.Array<string> {
  const array = new Y.Array<string>();
  array.push([...values]);
  return array;
}

/**
 * A key for an item placed right after index `afterIndex` (null: first) of `ordered` (the sorted
 * keys of the other items); null when the neighbours collide or the key would be too long.
 */
function keyAfter(ordered: readonly string[], afterIndex: number | null): string | null {
  const prev = afterIndex === null ? null : ordered[afterIndex]!;
  const next = afterIndex === null ? (ordered[0] ?? null) : (ordered[afterIndex + 1] ?? null);
  try {
    const key = keyBetween(prev, next);
    return key.length <= MAX_KEY_LEN ? key : null;
  } catch (error) {
    if (error instanceof OrderError) return null;
    throw error;
  }
}

function kindRank(kind: StageKind): number {
  return kind === "initial" ? 0 : kind === "progress" ? 1 : 2;
}

/**
 * The key for stage `id` (new or moving) of `kind` right after `after`, checking that the initial
 * stage stays first and the final stages last. Rebalances the stage keys when they collide.
 */
function placeStage(doc: Y.Doc, id: string, kind: StageKind, after: string): string {
  const others: Stage[] = readStages(doc).filter((s) => s.id !== id);
  const afterIndex = others.findIndex((s) => s.id === after);
  if (afterIndex === -1) throw errors.noSuchStage(after);
  const before = others[afterIndex]!;
  const next = others[afterIndex + 1];
  if (kindRank(before.kind) > kindRank(kind) || (next !== undefined && kindRank(next.kind) < kindRank(kind))) {
    throw errors.stageOrder(
      kind === "initial" ? "initialFirst" : kind === "progress" ? "progressBeforeFinal" : "finalLast",
    );
  }
  const key = keyAfter(
    others.map((s) => s.pos),
    afterIndex,
  );
  if (key !== null) return key;
  const fresh = rebalanced(others.length);
  others.forEach((stage, i) => childMap(doc.getMap(ROOT.STAGES), stage.id)?.set(STAGE_KEY.POS, fresh[i]!));
  const placed = keyAfter(fresh, afterIndex);
  if (placed === null) throw errors.stageOrder("noKeyFits");
  return placed;
}

/**
 * The (`pos`, id) of the cards shown in `stage`, in order, leaving out card `except`. Orphaned
 * cards (whose stage is gone) count in the initial stage, as everywhere.
 */
export function columnKeys(doc: Y.Doc, stage: string, except: string): [pos: string, id: string][] {
  const stages = readStages(doc);
  const ids = new Set(stages.map((s) => s.id));
  const isInitial = stages.some((s) => s.id === stage && s.kind === "initial");
  const keys: [string, string][] = [];
  if (!doc.share.has(ROOT.CARDS)) return keys;
  doc.getMap(ROOT.CARDS).forEach((value, id) => {
    if (!(value instanceof Y.Map) || id === except) return;
    const raw: unknown = value.get(CARD_KEY.STAGE);
    const cardStage = typeof raw === "string" ? raw : "";
    if (cardStage === stage || (isInitial && !ids.has(cardStage))) {
      const pos: unknown = value.get(CARD_KEY.POS);
      keys.push([typeof pos === "string" ? pos : "", id]);
    }
  });
  return keys.sort((a, b) => compareBytes(a[0], b[0]) || compareBytes(a[1], b[1]));
}

/** The `pos` for card `id` placed in `stage` at `place`, rebalancing the column when needed. */
function cardKeyIn(doc: Y.Doc, stage: string, id: string, place: CardPlace): string {
  const others = columnKeys(doc, stage, id);
  let afterIndex: number | null;
  switch (place.kind) {
    case "top":
      afterIndex = null;
      break;
    case "bottom":
      afterIndex = others.length > 0 ? others.length - 1 : null;
      break;
    case "after": {
      const index = others.findIndex(([, card]) => card === place.card);
      if (index === -1) throw errors.noSuchCard(place.card);
      afterIndex = index;
      break;
    }
  }
  const key = keyAfter(
    others.map(([pos]) => pos),
    afterIndex,
  );
  if (key !== null) return key;
  const fresh = rebalanced(others.length);
  others.forEach(([, card], i) => cardMapOrNull(doc, card)?.set(CARD_KEY.POS, fresh[i]!));
  const placed = keyAfter(fresh, afterIndex);
  if (placed === null) throw errors.stageOrder("noKeyFits");
  return placed;
}
