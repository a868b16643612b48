// Boards built with plain Yjs, as a browser writes them, for protocol/vectors/from-typescript.json:
// Rust must read them as the TypeScript mirror does. Fixed client id and fixed ids, so the same
// code makes the same update bytes every time.
//
// Yjs encodes numbers its own way, and each way appears here: small integers as varints, 2^40 as
// a float32, timestamps and fractions as float64, a BigInt as int64.

import * as Y from "yjs";
import { ACTIVITY_KEY, BOARD_KEY, CARD_KEY, ROOT, STAGE_KEY } from "../src/model/schema";
import { MINUTE_MS } from "../src/model/rules";

export const NOW = 1_800_000_000_000;
const HOUR = 60 * MINUTE_MS;
const DAY = 24 * HOUR;

export interface TypeScriptBoard {
  name: string;
  now: number;
  doc: Y.Doc;
}

function newDoc(): Y.Doc {
  const doc = new Y.Doc();
  doc.clientID = 4242;
  return doc;
}

function setBoard(doc: Y.Doc, threshold: number | bigint, currency: string): void {
  const board = doc.getMap(ROOT.BOARD);
  board.set(BOARD_KEY.NAME, "Browser deals");
  board.set(BOARD_KEY.ENTITY, "deal");
  board.set(BOARD_KEY.CURRENCY, currency);
  board.set(BOARD_KEY.COUNTER_THRESHOLD_MIN, threshold);
}

function addStages(doc: Y.Doc, stages: [id: string, name: string, kind: string, pos: string][]): void {
  const root = doc.getMap(ROOT.STAGES);
  for (const [id, name, kind, pos] of stages) {
    root.set(
      id,
      new Y.Map<unknown>([
        [STAGE_KEY.NAME, name],
        [STAGE_KEY.COLOR, "#39a8ef"],
        [STAGE_KEY.KIND, kind],
        [STAGE_KEY.POS, pos],
      ]),
    );
  }
}

interface CardInit {
  title: string;
  stage: string;
  pos: string;
  amount?: number | bigint;
  currency?: string;
  responsible?: string;
  fields?: Y.Map<unknown>;
}

function addCard(doc: Y.Doc, id: string, init: CardInit): void {
  const entries: [string, unknown][] = [
    [CARD_KEY.TITLE, init.title],
    [CARD_KEY.STAGE, init.stage],
    [CARD_KEY.POS, init.pos],
    [CARD_KEY.AMOUNT, init.amount ?? 0],
    [CARD_KEY.CURRENCY, init.currency ?? "USD"],
    [CARD_KEY.RESPONSIBLE, init.responsible ?? "u-ann"],
    [CARD_KEY.CLIENT, `client of ${init.title}`],
    [CARD_KEY.CREATED_AT, NOW - DAY],
    [CARD_KEY.FIELDS, init.fields ?? new Y.Map()],
  ];
  doc.getMap(ROOT.CARDS).set(id, new Y.Map<unknown>(entries));
}

interface ActivityInit {
  card: string;
  direction?: string;
  deadline?: number;
  remindMin?: number;
  done?: boolean;
  responsible?: string;
}

function addActivity(doc: Y.Doc, id: string, init: ActivityInit): void {
  const entries: [string, unknown][] = [
    [ACTIVITY_KEY.CARD, init.card],
    [ACTIVITY_KEY.KIND, init.direction === "incoming" ? "email" : "call"],
    [ACTIVITY_KEY.DIRECTION, init.direction ?? "outgoing"],
    [ACTIVITY_KEY.SUBJECT, `about ${init.card}`],
    [ACTIVITY_KEY.RESPONSIBLE, init.responsible ?? "u-bob"],
    [ACTIVITY_KEY.DONE, init.done ?? false],
  ];
  if (init.deadline !== undefined) entries.push([ACTIVITY_KEY.DEADLINE, init.deadline]);
  if (init.remindMin !== undefined) entries.push([ACTIVITY_KEY.REMIND_MIN, init.remindMin]);
  doc.getMap(ROOT.ACTIVITIES).set(id, new Y.Map<unknown>(entries));
}

/** A move, as docs/board-document.md wants it: one transaction that sets `stage` and `pos` of one card. */
function moveCard(doc: Y.Doc, id: string, stage: string, pos: string): void {
  const card = doc.getMap(ROOT.CARDS).get(id);
  if (!(card instanceof Y.Map)) throw new Error(`no card ${id}`);
  doc.transact(() => {
    card.set(CARD_KEY.STAGE, stage);
    card.set(CARD_KEY.POS, pos);
  });
}

const DEAL_STAGES: [string, string, string, string][] = [
  ["st-new", "New", "initial", "a0"],
  ["st-work", "Working", "progress", "a1"],
  ["st-deal", "Negotiation", "progress", "a2"],
  ["st-won", "Won", "success", "a3"],
  ["st-lost", "Lost", "failure", "a4"],
  ["st-why", "Why we lost", "failure", "a5"],
];

/** Every counter state, two currencies, equal keys, an orphan, a move, and Yjs' number types. */
function browserDeals(): TypeScriptBoard {
  const doc = newDoc();
  doc.transact(() => {
    setBoard(doc, 15, "EUR");
    addStages(doc, DEAL_STAGES);
  });
  const fields = new Y.Map<unknown>([
    ["f-status", "hot"],
    ["f-score", 3.25],
    ["f-vip", true],
    ["f-tags", ["a", "b"]],
    ["f-none", null],
    ["f-big", 5n],
  ]);
  const list = new Y.Array<unknown>();
  list.push(["x", 1]);
  fields.set("f-list", list);
  doc.transact(() => {
    addCard(doc, "c-01", { title: "idle", stage: "st-new", pos: "a0", amount: 1999, currency: "EUR", fields });
    addCard(doc, "c-02", { title: "float32 amount", stage: "st-new", pos: "a1", amount: 2 ** 40 });
    addCard(doc, "c-03", { title: "fraction amount", stage: "st-work", pos: "a0V", amount: 12.5 });
    addCard(doc, "c-04", { title: "bigint amount", stage: "st-work", pos: "a0V", amount: 5n, currency: "EUR" });
    addCard(doc, "c-05", { title: "orphan", stage: "st-gone", pos: "Zz", amount: 7, responsible: "u-cy" });
    addCard(doc, "c-06", { title: "won", stage: "st-won", pos: "a0", amount: 100_000 });
    addCard(doc, "c-07", { title: "moved", stage: "st-new", pos: "a2", amount: -300, responsible: "" });
    addCard(doc, "c-08", { title: "lost late", stage: "st-lost", pos: "a0", responsible: "u-cy" });
  });
  moveCard(doc, "c-07", "st-deal", "a0");
  doc.transact(() => {
    // Due: lights 15 minutes before, 10 minutes away.
    addActivity(doc, "a-01", { card: "c-02", deadline: NOW + 10 * MINUTE_MS });
    // Incoming, overdue: never lit.
    addActivity(doc, "a-02", { card: "c-03", direction: "incoming", deadline: NOW - DAY });
    // Planned: a day away; and one done long ago.
    addActivity(doc, "a-03", { card: "c-04", deadline: NOW + DAY });
    addActivity(doc, "a-04", { card: "c-04", deadline: NOW - DAY, done: true });
    // Due in a final stage: overdue, with its own reminder of 0.
    addActivity(doc, "a-05", { card: "c-08", deadline: NOW - HOUR, remindMin: 0 });
    // A fractional deadline truncates: exactly 15 minutes away, so lit now.
    addActivity(doc, "a-06", { card: "c-07", deadline: NOW + 15 * MINUTE_MS + 0.7 });
    // A fractional reminder truncates: 14.9 reads as 14, so not lit 14.5 minutes ahead.
    addActivity(doc, "a-07", { card: "c-05", deadline: NOW + 14.5 * MINUTE_MS, remindMin: 14.9 });
    // An unknown direction is planned, a done incoming no longer counts.
    addActivity(doc, "a-08", { card: "c-06", direction: "sideways", done: true });
    addActivity(doc, "a-09", { card: "c-06", direction: "incoming", done: true });
  });
  return { name: "deals written by a browser", now: NOW, doc };
}

/** Threshold 0, written as a BigInt; the threshold boundary to the millisecond. */
function thresholdZero(): TypeScriptBoard {
  const doc = newDoc();
  doc.transact(() => {
    setBoard(doc, 0n, "USD");
    addStages(doc, DEAL_STAGES);
    addCard(doc, "c-10", { title: "deadline now", stage: "st-new", pos: "a0", amount: 1 });
    addCard(doc, "c-11", { title: "deadline in 1 ms", stage: "st-new", pos: "a1", amount: 2 });
    addCard(doc, "c-12", { title: "nothing", stage: "st-work", pos: "a0", amount: 3 });
    addCard(doc, "c-13", { title: "own reminder", stage: "st-work", pos: "a1", amount: 4 });
    addCard(doc, "c-14", { title: "closed", stage: "st-won", pos: "a0", amount: 5 });
    addActivity(doc, "a-10", { card: "c-10", deadline: NOW });
    addActivity(doc, "a-11", { card: "c-11", deadline: NOW + 1 });
    addActivity(doc, "a-13", { card: "c-13", deadline: NOW + 30 * MINUTE_MS, remindMin: 30 });
  });
  return { name: "threshold 0 written as a bigint", now: NOW + 0, doc };
}

export function typeScriptBoards(): TypeScriptBoard[] {
  return [browserDeals(), thresholdZero()];
}
