// The mirror's own edge cases, each written as Rust's reading rules state it (protocol/src).

import { generateKeyBetween } from "fractional-indexing";
import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import { activitiesByCard, columnOf, readBoard, readCard, readSettings, readStages } from "../src/model/board";
import {
  OrderError,
  compareBytes,
  isValidKey,
  keyBetween,
  MAX_KEY_LEN,
  nKeysBetween,
  needsRebalance,
  rebalanced,
} from "../src/model/order";
import {
  avatar,
  counter,
  firedReminders,
  lightsAt,
  MINUTE_MS,
  nextCounterChange,
  type ActivityFacts,
} from "../src/model/rules";
import { CARD_KEY, ROOT, STAGE_KEY, defaultStages } from "../src/model/schema";

const NOW = 1_800_000_000_000;

function boardDoc(threshold: number | null = 15): Y.Doc {
  const doc = new Y.Doc();
  doc.transact(() => {
    if (threshold !== null) doc.getMap(ROOT.BOARD).set("counterThresholdMin", threshold);
    const stages = doc.getMap(ROOT.STAGES);
    rebalanced(7).forEach((pos, i) => {
      const stage = defaultStages({ kind: "deal" })[i]!;
      stages.set(
        `s${i}`,
        new Y.Map<unknown>([
          [STAGE_KEY.NAME, stage.name],
          [STAGE_KEY.KIND, stage.kind],
          [STAGE_KEY.POS, pos],
        ]),
      );
    });
  });
  return doc;
}

function card(doc: Y.Doc, id: string, values: Record<string, unknown>): void {
  doc.getMap(ROOT.CARDS).set(id, new Y.Map<unknown>(Object.entries({ pos: "a0", ...values })));
}

function activity(doc: Y.Doc, id: string, values: Record<string, unknown>): void {
  doc.getMap(ROOT.ACTIVITIES).set(id, new Y.Map<unknown>(Object.entries(values)));
}

function ids(doc: Y.Doc, stage: string, now = NOW): string[] {
  const column = readBoard(doc, now).columns.find((c) => c.stage.name === stage);
  return column?.cards.map((c) => c.id) ?? [];
}

const planned = (deadline: number | null, remindMin: number | null = null): ActivityFacts => ({
  deadline,
  remindMin,
  direction: "outgoing",
  done: false,
  responsible: "ann",
});

describe("board", () => {
  test("an empty board: every column empty, nothing summed, nothing unprocessed", () => {
    const view = readBoard(boardDoc(), NOW);
    expect(view.columns.map((c) => c.stage.name)).toEqual(defaultStages({ kind: "deal" }).map((s) => s.name));
    expect(view.columns.every((c) => c.cards.length === 0 && c.sums.size === 0)).toBe(true);
    expect(view.workload).toEqual([]);
    expect(view.unprocessed).toEqual([]);
    expect(view.counters.size).toBe(0);
  });

  test("an empty document reads as defaults and reading creates no root", () => {
    const doc = new Y.Doc();
    let updates = 0;
    doc.on("update", () => (updates += 1));
    const view = readBoard(doc, NOW);
    expect(view.settings).toEqual({ name: "", entity: "", currency: "USD", counterThresholdMin: 15, lostReasons: [] });
    expect(view.columns).toEqual([]);
    expect(doc.share.size).toBe(0);
    expect(updates).toBe(0);
  });

  test("cards without any stage are not shown", () => {
    const doc = new Y.Doc();
    card(doc, "c", { stage: "nowhere", amount: 5 });
    const view = readBoard(doc, NOW);
    expect(view.columns).toEqual([]);
    expect(view.counters.size).toBe(0);
  });

  test("equal keys sort by id, compared as bytes", () => {
    const doc = boardDoc();
    for (const id of ["b", "a", "ｚ", "😀", "c"]) card(doc, id, { stage: "s0", pos: "a0" });
    card(doc, "first", { stage: "s0", pos: "Zz" });
    // UTF-16 would put "😀" (D83D …) before "ｚ" (FF5A); bytes put it after.
    expect(ids(doc, "New")).toEqual(["first", "a", "b", "c", "ｚ", "😀"]);
  });

  test("stages sort by kind first, then key, then id", () => {
    const doc = boardDoc();
    doc.transact(() => {
      const stages = doc.getMap(ROOT.STAGES);
      (stages.get("s4") as Y.Map<unknown>).set(STAGE_KEY.POS, "A00000000000000000000000001"); // Won
      (stages.get("s0") as Y.Map<unknown>).set(STAGE_KEY.POS, "zzz"); // New
      (stages.get("s2") as Y.Map<unknown>).set(STAGE_KEY.POS, "a1"); // Invoice sent, tie with s1
      stages.set(
        "s9",
        new Y.Map<unknown>([
          [STAGE_KEY.KIND, "archived"],
          [STAGE_KEY.POS, "a0"],
        ]),
      );
      stages.set("s8", "not a map");
    });
    expect(readStages(doc).map((s) => s.id)).toEqual(["s0", "s1", "s2", "s3", "s4", "s5", "s6"]);
  });

  test("an orphaned card shows and counts in the initial column, wherever that column is", () => {
    const doc = boardDoc();
    (doc.getMap(ROOT.STAGES).get("s0") as Y.Map<unknown>).set(STAGE_KEY.POS, "zzz");
    doc.getMap(ROOT.STAGES).set("s9", new Y.Map<unknown>([[STAGE_KEY.KIND, "archived"]]));
    card(doc, "gone", { stage: "deleted-elsewhere", amount: 10, currency: "USD", responsible: "ann" });
    card(doc, "unknown-kind", { stage: "s9", amount: 1, currency: "USD", pos: "a1" });
    card(doc, "home", { stage: "s0", amount: 5, currency: "USD", pos: "Zz" });
    const view = readBoard(doc, NOW);
    expect(ids(doc, "New")).toEqual(["home", "gone", "unknown-kind"]);
    expect(view.columns[0]!.sums).toEqual(new Map([["USD", 16]]));
    expect(columnOf(view, "gone")?.stage.id).toBe("s0");
    expect(readCard(doc, "gone")?.stage).toBe("deleted-elsewhere");
    // Idle: counted as unprocessed in the initial column.
    expect(view.unprocessed).toEqual(["home", "gone", "unknown-kind"]);
  });

  test("two currencies in one column: sums and workload per currency, in byte order", () => {
    const doc = boardDoc();
    card(doc, "a", { stage: "s3", amount: 1000, currency: "USD", responsible: "bob" });
    card(doc, "b", { stage: "s3", amount: 250, currency: "EUR", responsible: "bob" });
    card(doc, "c", { stage: "s3", amount: 500, currency: "USD", responsible: "ann" });
    card(doc, "d", { stage: "s3", amount: 1.9, currency: "USD", responsible: "ann" }); // reads as 1
    const view = readBoard(doc, NOW);
    const column = view.columns.find((c) => c.stage.id === "s3")!;
    expect([...column.sums]).toEqual([
      ["EUR", 250],
      ["USD", 1501],
    ]);
    expect(view.workload.map((w) => [w.responsible, w.cards, [...w.amounts]])).toEqual([
      ["ann", 2, [["USD", 501]]],
      [
        "bob",
        2,
        [
          ["EUR", 250],
          ["USD", 1000],
        ],
      ],
    ]);
  });

  test("threshold 0: lit at the deadline, not a millisecond before", () => {
    const doc = boardDoc(0);
    card(doc, "c", { stage: "s1" });
    activity(doc, "x", { card: "c", deadline: NOW, direction: "outgoing", done: false });
    expect(readBoard(doc, NOW - 1).counters.get("c")?.state).toBe("planned");
    expect(readBoard(doc, NOW).counters.get("c")?.state).toBe("due");
  });

  test("past deadlines: an overdue planned is lit, an overdue incoming is not", () => {
    const doc = boardDoc();
    card(doc, "p", { stage: "s1", responsible: "ann" });
    card(doc, "i", { stage: "s1", responsible: "ann" });
    activity(doc, "x", { card: "p", deadline: NOW - 86_400_000 });
    activity(doc, "y", { card: "i", deadline: NOW - 86_400_000, direction: "incoming" });
    const view = readBoard(doc, NOW);
    expect(view.counters.get("p")).toEqual({ count: 1, lit: 1, incoming: 0, next: NOW - 86_400_000, state: "due" });
    expect(view.counters.get("i")).toEqual({
      count: 1,
      lit: 0,
      incoming: 1,
      next: NOW - 86_400_000,
      state: "incoming",
    });
    expect(view.workload[0]).toMatchObject({ responsible: "ann", cards: 2, lit: 1 });
  });

  test("values of the wrong type read as defaults", () => {
    const doc = boardDoc(15.9);
    card(doc, "c", { stage: "s1", title: 12, amount: "12", fields: "not a map", createdAt: -1.5 });
    activity(doc, "x", { card: "c", done: "yes", deadline: 5n });
    activity(doc, "y", { direction: "incoming" });
    expect(readSettings(doc).counterThresholdMin).toBe(15);
    expect(readCard(doc, "c")).toMatchObject({ title: "", amount: 0, createdAt: -1, fields: new Map() });
    const facts = activitiesByCard(doc)
      .get("c")!
      .map((a) => a.facts);
    expect(facts).toEqual([{ deadline: 5, remindMin: null, direction: "outgoing", done: false, responsible: "" }]);
  });

  test("a move is one transaction that sets stage and pos", () => {
    const doc = boardDoc();
    card(doc, "c", { stage: "s0", pos: "a0" });
    let updates = 0;
    doc.on("update", () => (updates += 1));
    const map = doc.getMap(ROOT.CARDS).get("c") as Y.Map<unknown>;
    doc.transact(() => {
      map.set(CARD_KEY.STAGE, "s4");
      map.set(CARD_KEY.POS, keyBetween(null, null));
    });
    expect(updates).toBe(1);
    expect(ids(doc, "Won")).toEqual(["c"]);
  });
});

describe("order", () => {
  test("refuses keys the npm package accepts", () => {
    // The package reads "!" as digit 0 and carries on; Rust refuses the key.
    expect(generateKeyBetween("a0!", null)).toBe("a1");
    expect(() => keyBetween("a0!", null)).toThrow(OrderError);
    // The package swaps neighbours given the wrong way round; here that is a caller's bug.
    expect(generateKeyBetween("a1", "a0")).toBe("a0V");
    expect(() => keyBetween("a1", "a0")).toThrow(/not below/);
    // Equal neighbours: rebalance first.
    expect(() => keyBetween("a0", "a0")).toThrow(OrderError);
    // The neighbours are checked even when no key is asked for.
    expect(() => nKeysBetween("a1", "a0", 0)).toThrow(OrderError);
    for (const key of ["", "a", "a00", "é0", "a0é", "A" + "0".repeat(26)]) expect(isValidKey(key), key).toBe(false);
  });

  test("needs a rebalance past MAX_KEY_LEN or on an invalid key", () => {
    const longest = "a0" + "V".repeat(MAX_KEY_LEN - 2);
    expect(needsRebalance([])).toBe(false);
    expect(needsRebalance(["a0", longest])).toBe(false);
    expect(needsRebalance([longest + "V"])).toBe(true);
    expect(needsRebalance(["a0", "a00"])).toBe(true);
    expect(rebalanced(63).slice(-2)).toEqual(["az", "b00"]);
  });

  test("compares strings as UTF-8 bytes", () => {
    expect(compareBytes("a", "b")).toBe(-1);
    expect(compareBytes("a", "a")).toBe(0);
    expect(compareBytes("ab", "a")).toBe(1);
    expect("😀" < "ｚ").toBe(true);
    expect(compareBytes("😀", "ｚ")).toBe(1);
    expect(compareBytes("\uE000", "😀")).toBe(-1);
  });
});

describe("rules", () => {
  test("threshold 0 and negative reminders light at the deadline", () => {
    expect(lightsAt(planned(NOW), 0)).toBe(NOW);
    expect(lightsAt(planned(NOW, -5), 15)).toBe(NOW);
    expect(lightsAt(planned(NOW), -30)).toBe(NOW);
    expect(lightsAt(planned(NOW, 30), 0)).toBe(NOW - 30 * MINUTE_MS);
    expect(lightsAt(planned(null), 15)).toBeNull();
    expect(lightsAt({ ...planned(NOW), direction: "incoming" }, 15)).toBeNull();
    expect(nextCounterChange([planned(NOW + 1)], 0, NOW)).toBe(NOW + 1);
    expect(nextCounterChange([planned(NOW)], 0, NOW)).toBeNull();
  });

  test("a planned activity in a final stage still counts; nothing open there is none", () => {
    expect(counter([planned(NOW - 1)], "success", 15, NOW).state).toBe("due");
    expect(counter([], "failure", 15, NOW).state).toBe("none");
    expect(counter([{ ...planned(NOW), done: true }], "initial", 15, NOW).state).toBe("idle");
  });

  test("fired reminders sort by instant then user bytes; the avatar's ties go to the later", () => {
    const events = firedReminders(
      [
        { ...planned(NOW), responsible: "😀" },
        { ...planned(NOW), responsible: "ｚ" },
        { ...planned(NOW - MINUTE_MS, 0), responsible: "zed" },
      ],
      15,
      NOW,
    );
    // "ｚ" (U+FF5A) sorts before "😀" (U+1F600) in bytes, after it in UTF-16.
    expect(events.map((e) => e.user)).toEqual(["ｚ", "😀", "zed"]);
    expect(avatar("ann", NOW - 15 * MINUTE_MS, events)).toEqual({
      user: "zed",
      at: NOW - MINUTE_MS,
      reason: "reminder",
    });
    // Equal instants: the later candidate wins, and an event beats a responsible change.
    expect(avatar("ann", NOW - 15 * MINUTE_MS, events.slice(0, 2))).toEqual({
      user: "😀",
      at: NOW - 15 * MINUTE_MS,
      reason: "reminder",
    });
    // Every event before the responsible change loses to it.
    expect(avatar("ann", NOW, events)).toEqual({ user: "ann", at: NOW, reason: "responsible" });
  });
});
