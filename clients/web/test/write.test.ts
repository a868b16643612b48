// The write helpers (src/model/write.ts) against what protocol/src/board.rs does: one update per
// action, the same refusals with the same messages, order keys placed and rebalanced the same way.

import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import {
  activitiesByCard,
  checkInvariants,
  displayFields,
  quickCreateFields,
  readBoard,
  readCard,
  readSettings,
  readStages,
} from "../src/model/board";
import { readFieldDefs } from "../src/model/fieldDefs";
import { OrderError, rebalanced } from "../src/model/order";
import { CARD_KEY, ROOT, STAGE_KEY, defaultStages } from "../src/model/schema";
import {
  addActivity,
  addStage,
  BoardError,
  columnKeys,
  completeActivity,
  createCard,
  defineField,
  deleteStage,
  editActivity,
  editCard,
  MAX_AMOUNT,
  moveCard,
  moveCardBetween,
  moveStage,
  newId,
  recolorStage,
  removeActivity,
  renameStage,
  setCounterThreshold,
  setDisplayFields,
  setQuickCreateFields,
} from "../src/model/write";

const NOW = 1_800_000_000_000;

/** A deal board as the server makes it: the default stages with fresh keys. */
function dealBoard(): { doc: Y.Doc; stage: (name: string) => string } {
  const doc = new Y.Doc();
  doc.transact(() => {
    doc.getMap(ROOT.BOARD).set("name", "Deals");
    doc.getMap(ROOT.BOARD).set("entity", "deal");
    doc.getMap(ROOT.BOARD).set("currency", "EUR");
    doc.getMap(ROOT.BOARD).set("counterThresholdMin", 15);
    const stages = doc.getMap(ROOT.STAGES);
    const defaults = defaultStages({ kind: "deal" });
    rebalanced(defaults.length).forEach((pos, i) => {
      const d = defaults[i]!;
      stages.set(
        `st-${i}`,
        new Y.Map<unknown>([
          [STAGE_KEY.NAME, d.name],
          [STAGE_KEY.COLOR, d.color],
          [STAGE_KEY.KIND, d.kind],
          [STAGE_KEY.POS, pos],
        ]),
      );
    });
  });
  const stage = (name: string) => readStages(doc).find((s) => s.name === name)!.id;
  return { doc, stage };
}

/** Counts the updates a call makes. */
function updates(doc: Y.Doc, action: () => void): number {
  let count = 0;
  const onUpdate = () => count++;
  doc.on("update", onUpdate);
  try {
    action();
  } finally {
    doc.off("update", onUpdate);
  }
  return count;
}

function refusal(action: () => void): string {
  try {
    action();
  } catch (error) {
    if (error instanceof BoardError || error instanceof OrderError) return error.message;
    throw error;
  }
  throw new Error("expected a refusal");
}

function titles(doc: Y.Doc, stage: string): string[] {
  return readBoard(doc, NOW)
    .columns.find((c) => c.stage.id === stage)!
    .cards.map((c) => c.title);
}

describe("ids", () => {
  test("newId is a UUIDv7 that sorts by time", () => {
    const a = newId(1_000);
    const b = newId(2_000);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
    expect(newId(NOW)).not.toBe(newId(NOW));
  });
});

describe("cards", () => {
  test("createCard: one update, at the top of its column, the board's currency by default", () => {
    const { doc, stage } = dealBoard();
    const first = createCard(doc, stage("New"), { title: "  First  ", amount: 1500 }, NOW);
    let second = "";
    expect(
      updates(
        doc,
        () =>
          (second = createCard(
            doc,
            stage("New"),
            { title: "Second", currency: "USD", client: "Acme", responsible: "ann" },
            NOW,
          )),
      ),
    ).toBe(1);
    expect(titles(doc, stage("New"))).toEqual(["Second", "First"]);
    const card = readCard(doc, first)!;
    expect(card).toMatchObject({
      title: "First",
      amount: 1500,
      currency: "EUR",
      createdAt: NOW,
      responsible: "",
      client: "",
    });
    expect(readCard(doc, second)).toMatchObject({ currency: "USD", client: "Acme", responsible: "ann" });
  });

  test("createCard refuses what Rust refuses, writing nothing", () => {
    const { doc, stage } = dealBoard();
    expect(refusal(() => createCard(doc, stage("New"), { title: "   " }, NOW))).toBe(
      "a card title must be 1 to 200 characters",
    );
    expect(refusal(() => createCard(doc, stage("New"), { title: "x".repeat(201) }, NOW))).toBe(
      "a card title must be 1 to 200 characters",
    );
    expect(refusal(() => createCard(doc, stage("New"), { title: "x", amount: MAX_AMOUNT + 2 }, NOW))).toBe(
      "an amount must be within ±9007199254740991 minor units",
    );
    expect(refusal(() => createCard(doc, "nope", { title: "x" }, NOW))).toBe("no stage nope");
    expect(readBoard(doc, NOW).columns.every((c) => c.cards.length === 0)).toBe(true);
  });

  test("custom field values go in the card's fields map", () => {
    const { doc, stage } = dealBoard();
    const id = createCard(doc, stage("New"), { title: "x", fields: { "f-vip": true, "f-size": 3 } }, NOW);
    expect(Object.fromEntries(readCard(doc, id)!.fields)).toEqual({ "f-vip": true, "f-size": 3 });
  });

  test("moveCardBetween sets stage and pos in one update and nothing else", () => {
    const { doc, stage } = dealBoard();
    const a = createCard(doc, stage("New"), { title: "a" }, NOW);
    const b = createCard(doc, stage("Won"), { title: "b" }, NOW);
    const c = createCard(doc, stage("Won"), { title: "c" }, NOW);
    const [cPos, bPos] = columnKeys(doc, stage("Won"), "").map(([pos]) => pos);
    const before = readCard(doc, a)!;
    expect(updates(doc, () => moveCardBetween(doc, a, stage("Won"), cPos!, bPos!))).toBe(1);
    expect(titles(doc, stage("Won"))).toEqual(["c", "a", "b"]);
    const after = readCard(doc, a)!;
    expect({ ...after, stage: before.stage, pos: before.pos }).toEqual(before);
    expect([b, c].every((id) => readCard(doc, id) !== null)).toBe(true);
  });

  test("moveCardBetween refuses colliding neighbours with the order error; moveCard rebalances", () => {
    const { doc, stage } = dealBoard();
    const ids = ["x", "y", "z"].map((t) => createCard(doc, stage("New"), { title: t }, NOW));
    // Two cards share a key, as concurrent inserts can leave them.
    const cards = doc.getMap(ROOT.CARDS);
    doc.transact(() => {
      (cards.get(ids[0]!) as Y.Map<unknown>).set(CARD_KEY.POS, "a5");
      (cards.get(ids[1]!) as Y.Map<unknown>).set(CARD_KEY.POS, "a5");
      (cards.get(ids[2]!) as Y.Map<unknown>).set(CARD_KEY.POS, "a6");
    });
    const mover = createCard(doc, stage("Won"), { title: "m" }, NOW);
    expect(refusal(() => moveCardBetween(doc, mover, stage("New"), "a5", "a5"))).toMatch(/is not below/);
    const [first] = columnKeys(doc, stage("New"), "");
    expect(updates(doc, () => moveCard(doc, mover, stage("New"), { kind: "after", card: first![1] }))).toBe(1);
    const keys = columnKeys(doc, stage("New"), "");
    expect(new Set(keys.map(([pos]) => pos)).size).toBe(4);
    expect(keys[1]![1]).toBe(mover);
  });

  test("moveCardBetween refuses keys that grew too long", () => {
    const { doc, stage } = dealBoard();
    const id = createCard(doc, stage("New"), { title: "a" }, NOW);
    const long = "a0" + "V".repeat(40);
    expect(refusal(() => moveCardBetween(doc, id, stage("New"), long, long + "V"))).toBe(
      "the neighbours' order keys are too long to split; move with a rebalance",
    );
  });

  test("moveCard: top, bottom, after, and an unknown neighbour", () => {
    const { doc, stage } = dealBoard();
    const [a, b, c] = ["a", "b", "c"].map((t) => createCard(doc, stage("New"), { title: t }, NOW));
    moveCard(doc, c!, stage("New"), { kind: "bottom" });
    expect(titles(doc, stage("New"))).toEqual(["b", "a", "c"]);
    moveCard(doc, c!, stage("New"), { kind: "top" });
    expect(titles(doc, stage("New"))).toEqual(["c", "b", "a"]);
    moveCard(doc, c!, stage("New"), { kind: "after", card: b! });
    expect(titles(doc, stage("New"))).toEqual(["b", "c", "a"]);
    expect(refusal(() => moveCard(doc, a!, stage("New"), { kind: "after", card: "ghost" }))).toBe("no card ghost");
    expect(refusal(() => moveCard(doc, "ghost", stage("New"), { kind: "top" }))).toBe("no card ghost");
  });

  test("editCard changes only what it names, custom fields included, in one update", () => {
    const { doc, stage } = dealBoard();
    const id = createCard(doc, stage("New"), { title: "a", amount: 5, client: "c" }, NOW);
    expect(updates(doc, () => editCard(doc, id, { amount: 7, fields: { f: "v" } }))).toBe(1);
    expect(readCard(doc, id)).toMatchObject({ title: "a", amount: 7, client: "c" });
    expect(readCard(doc, id)!.fields.get("f")).toBe("v");
    expect(refusal(() => editCard(doc, id, { title: "" }))).toBe("a card title must be 1 to 200 characters");
    expect(refusal(() => editCard(doc, id, { amount: 0.5 }))).toMatch(/an amount must be within/);
  });
});

describe("stages", () => {
  test("rename and recolour, with Rust's refusals", () => {
    const { doc, stage } = dealBoard();
    expect(updates(doc, () => renameStage(doc, stage("New"), "  Fresh "))).toBe(1);
    expect(readStages(doc)[0]!.name).toBe("Fresh");
    recolorStage(doc, stage("Fresh"), "#00AAff");
    expect(readStages(doc)[0]!.color).toBe("#00AAff");
    expect(refusal(() => renameStage(doc, stage("Won"), " "))).toBe("a stage name must be 1 to 200 characters");
    expect(refusal(() => recolorStage(doc, stage("Won"), "red"))).toBe('colour must be #rrggbb, got "red"');
    expect(refusal(() => renameStage(doc, "nope", "x"))).toBe("no stage nope");
  });

  test("addStage places progress stages before the finals and failures after", () => {
    const { doc, stage } = dealBoard();
    const id = addStage(doc, "Negotiation", "#123456", "progress", stage("In progress"));
    expect(readStages(doc).map((s) => s.name)).toEqual([
      "New",
      "Preparing documents",
      "Invoice sent",
      "In progress",
      "Negotiation",
      "Won",
      "Lost",
      "Failure analysis",
    ]);
    expect(readStages(doc).find((s) => s.id === id)!.kind).toBe("progress");
    addStage(doc, "Too expensive", "#ff0000", "failure", stage("Failure analysis"));
    expect(readStages(doc).at(-1)!.name).toBe("Too expensive");
    expect(refusal(() => addStage(doc, "x", "#000000", "progress", stage("Won")))).toBe(
      "stage order: a progress stage goes before the final stages",
    );
    expect(refusal(() => addStage(doc, "x", "#000000", "failure", stage("New")))).toBe(
      "stage order: final stages stay after the others",
    );
    expect(refusal(() => addStage(doc, "x", "#000000", "initial", stage("New")))).toBe(
      "a board has exactly one initial stage: it cannot be added",
    );
    expect(refusal(() => addStage(doc, "x", "#000000", "success", stage("New")))).toBe(
      "a board has exactly one success stage: it cannot be added or deleted",
    );
    expect(checkInvariants(doc)).toBeNull();
  });

  test("addStage rebalances colliding stage keys in its one update", () => {
    const { doc, stage } = dealBoard();
    doc.transact(() => {
      for (const s of readStages(doc)) {
        if (s.kind === "progress") (doc.getMap(ROOT.STAGES).get(s.id) as Y.Map<unknown>).set(STAGE_KEY.POS, "a3");
      }
    });
    // The three progress stages now share "a3": nothing fits right after the first of them.
    expect(updates(doc, () => addStage(doc, "Extra", "#123456", "progress", stage("Preparing documents")))).toBe(1);
    const stages = readStages(doc);
    expect(stages[2]!.name).toBe("Extra");
    expect(new Set(stages.map((s) => s.pos)).size).toBe(stages.length);
  });

  test("moveStage keeps the initial stage first and the finals last", () => {
    const { doc, stage } = dealBoard();
    moveStage(doc, stage("In progress"), stage("New"));
    expect(
      readStages(doc)
        .map((s) => s.name)
        .slice(0, 3),
    ).toEqual(["New", "In progress", "Preparing documents"]);
    expect(refusal(() => moveStage(doc, stage("New"), stage("Invoice sent")))).toBe(
      "stage order: the initial stage stays first",
    );
    expect(refusal(() => moveStage(doc, stage("Won"), stage("New")))).toBe(
      "stage order: final stages stay after the others",
    );
    expect(refusal(() => moveStage(doc, stage("Invoice sent"), stage("Lost")))).toBe(
      "stage order: a progress stage goes before the final stages",
    );
    moveStage(doc, stage("Won"), stage("Failure analysis"));
    expect(readStages(doc).at(-1)!.name).toBe("Won");
  });

  test("deleteStage moves the cards, in order, to the end of the target, in one update", () => {
    const { doc, stage } = dealBoard();
    createCard(doc, stage("Won"), { title: "w1" }, NOW);
    const from = stage("Invoice sent");
    ["c", "b", "a"].forEach((t) => createCard(doc, from, { title: t }, NOW));
    expect(updates(doc, () => deleteStage(doc, from, stage("Won")))).toBe(1);
    expect(readStages(doc).some((s) => s.id === from)).toBe(false);
    expect(titles(doc, stage("Won"))).toEqual(["w1", "a", "b", "c"]);
  });

  test("deleteStage refusals", () => {
    const { doc, stage } = dealBoard();
    expect(refusal(() => deleteStage(doc, stage("New"), stage("Won")))).toBe(
      "the initial stage cannot be deleted, only renamed",
    );
    expect(refusal(() => deleteStage(doc, stage("Won"), stage("New")))).toBe(
      "a board has exactly one success stage: it cannot be added or deleted",
    );
    expect(refusal(() => deleteStage(doc, stage("In progress"), stage("In progress")))).toBe(
      "cards of a deleted stage must go to another stage",
    );
    expect(refusal(() => deleteStage(doc, stage("In progress"), "nope"))).toBe("no stage nope");
    deleteStage(doc, stage("Lost"), stage("New"));
    expect(refusal(() => deleteStage(doc, stage("Failure analysis"), stage("New")))).toBe(
      "the last failure stage cannot be deleted",
    );
    expect(checkInvariants(doc)).toBeNull();
  });
});

describe("activities, forms, settings, fields", () => {
  test("activities: add, edit, complete, remove", () => {
    const { doc, stage } = dealBoard();
    const card = createCard(doc, stage("New"), { title: "a" }, NOW);
    let id = "";
    expect(
      updates(doc, () => {
        id = addActivity(doc, {
          card,
          kind: "call",
          direction: "outgoing",
          subject: "Call back",
          deadline: NOW + 60_000,
          remindMin: null,
          responsible: "ann",
        });
      }),
    ).toBe(1);
    expect(readBoard(doc, NOW).counters.get(card)).toMatchObject({ count: 1, lit: 1, state: "due" });
    editActivity(doc, id, { subject: "Call again", deadline: NOW + 3_600_000 });
    expect(readBoard(doc, NOW).counters.get(card)).toMatchObject({ count: 1, lit: 0, state: "planned" });
    expect(activitiesByCard(doc).get(card)![0]!.subject).toBe("Call again");
    completeActivity(doc, id);
    expect(readBoard(doc, NOW).counters.get(card)!.state).toBe("idle");
    completeActivity(doc, id, false);
    expect(readBoard(doc, NOW).counters.get(card)!.count).toBe(1);
    removeActivity(doc, id);
    expect(activitiesByCard(doc).size).toBe(0);
    expect(refusal(() => completeActivity(doc, id))).toBe(`no activity ${id}`);
    expect(
      refusal(() =>
        addActivity(doc, {
          card: "ghost",
          kind: "task",
          direction: "outgoing",
          subject: "",
          deadline: null,
          remindMin: null,
          responsible: "",
        }),
      ),
    ).toBe("no card ghost");
  });

  test("quick-create and display forms, threshold, field definitions", () => {
    const { doc } = dealBoard();
    setQuickCreateFields(doc, ["title", "amount"]);
    setDisplayFields(doc, "ann", ["title", "client"]);
    setDisplayFields(doc, "ann", ["client"]);
    expect(quickCreateFields(doc)).toEqual(["title", "amount"]);
    expect(displayFields(doc, "ann")).toEqual(["client"]);
    expect(displayFields(doc, "bob")).toEqual([]);
    expect(updates(doc, () => setCounterThreshold(doc, 30))).toBe(1);
    expect(readSettings(doc).counterThresholdMin).toBe(30);
    expect(refusal(() => setCounterThreshold(doc, -1))).toBe("counter threshold must be 0 to 10080 minutes");
    expect(refusal(() => setCounterThreshold(doc, 10081))).toBe("counter threshold must be 0 to 10080 minutes");
    const id = defineField(doc, null, " Priority ", "enum", ["low", "high"]);
    expect(readFieldDefs(doc)).toEqual([{ id, label: "Priority", type: "enum", options: ["low", "high"] }]);
    defineField(doc, id, "Priority", "string");
    expect(readFieldDefs(doc)[0]!.type).toBe("string");
    expect(refusal(() => defineField(doc, null, "x", "colour"))).toBe(
      'unknown field type "colour": use string, number, money, date, enum, user or bool',
    );
    expect(refusal(() => defineField(doc, null, "", "string"))).toBe("a field label must be 1 to 200 characters");
  });

  test("helpers inside one outer transaction make one update", () => {
    const { doc } = dealBoard();
    expect(
      updates(doc, () =>
        doc.transact(() => {
          setQuickCreateFields(doc, ["title"]);
          setDisplayFields(doc, "ann", ["title"]);
          setCounterThreshold(doc, 5);
        }),
      ),
    ).toBe(1);
  });
});
