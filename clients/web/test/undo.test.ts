// Undo is scoped to this tab's own actions (src/store/undo.ts): two replicas of a board, synced
// as the server would relay them; undoing on one reverts its own last action and keeps what
// the other wrote later, on both.

import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import { rebalanced } from "../src/model/order";
import { CARD_KEY, ROOT, STAGE_KEY, defaultStages } from "../src/model/schema";
import { archiveCard, createCard, deleteCard, editCard, moveCard } from "../src/model/write";
import { BoardUndo, typingIn, undoKey } from "../src/store/undo";

const NOW = 1_800_000_000_000;
const REMOTE = "remote";

function dealBoard(): Y.Doc {
  const doc = new Y.Doc();
  doc.transact(() => {
    doc.getMap(ROOT.BOARD).set("currency", "USD");
    const stages = doc.getMap(ROOT.STAGES);
    const defaults = defaultStages({ kind: "deal" });
    rebalanced(defaults.length).forEach((pos, i) => {
      stages.set(
        `st-${i}`,
        new Y.Map<unknown>([
          [STAGE_KEY.NAME, defaults[i]!.name],
          [STAGE_KEY.COLOR, defaults[i]!.color],
          [STAGE_KEY.KIND, defaults[i]!.kind],
          [STAGE_KEY.POS, pos],
        ]),
      );
    });
  });
  return doc;
}

/** Two replicas of a board with two cards, each relaying its updates to the other. */
function twoTabs() {
  const seed = dealBoard();
  const acme = createCard(seed, "st-0", { title: "Acme" }, NOW);
  const globex = createCard(seed, "st-0", { title: "Globex" }, NOW);
  const ann = new Y.Doc();
  const bob = new Y.Doc();
  for (const doc of [ann, bob]) Y.applyUpdate(doc, Y.encodeStateAsUpdate(seed), REMOTE);
  ann.on("update", (update: Uint8Array, origin: unknown) => {
    if (origin !== REMOTE) Y.applyUpdate(bob, update, REMOTE);
  });
  bob.on("update", (update: Uint8Array, origin: unknown) => {
    if (origin !== REMOTE) Y.applyUpdate(ann, update, REMOTE);
  });
  return { ann, bob, acme, globex };
}

function card(doc: Y.Doc, id: string): Y.Map<unknown> | undefined {
  return doc.getMap(ROOT.CARDS).get(id) as Y.Map<unknown> | undefined;
}

describe("undo", () => {
  test("undoes my move and keeps the other's later edits, on both replicas", () => {
    const { ann, bob, acme, globex } = twoTabs();
    const undo = new BoardUndo(ann, () => null);
    moveCard(ann, acme, "st-2", { kind: "top" });
    editCard(bob, globex, { title: "Globex renewal" });
    editCard(bob, acme, { amount: 5000 });
    expect(undo.undoLabel()).toBe("moving “Acme”");

    expect(undo.undo()).toEqual({ label: "moving “Acme”" });
    for (const doc of [ann, bob]) {
      expect(card(doc, acme)?.get(CARD_KEY.STAGE)).toBe("st-0");
      expect(card(doc, acme)?.get(CARD_KEY.AMOUNT)).toBe(5000);
      expect(card(doc, globex)?.get(CARD_KEY.TITLE)).toBe("Globex renewal");
    }
    expect(undo.undo()).toBeNull();

    expect(undo.redo()).toEqual({ label: "moving “Acme”" });
    for (const doc of [ann, bob]) expect(card(doc, acme)?.get(CARD_KEY.STAGE)).toBe("st-2");
    undo.destroy();
  });

  test("never undoes what only the other replica wrote", () => {
    const { ann, bob, globex } = twoTabs();
    const undo = new BoardUndo(ann, () => null);
    editCard(bob, globex, { title: "Bob's" });
    expect(undo.canUndo()).toBe(false);
    expect(undo.undo()).toBeNull();
    expect(card(ann, globex)?.get(CARD_KEY.TITLE)).toBe("Bob's");
    undo.destroy();
  });

  test("each action is one step, undone newest first, with what it did", () => {
    const { ann, bob, acme, globex } = twoTabs();
    const titles = new Map([[globex, "Globex"]]);
    const undo = new BoardUndo(ann, (id) => titles.get(id) ?? null);
    const created = createCard(ann, "st-1", { title: "Initech" }, NOW);
    editCard(ann, acme, { title: "Acme Corp" });
    archiveCard(ann, acme, NOW);
    deleteCard(ann, globex);

    expect(undo.undo()?.label).toBe("deleting “Globex”");
    expect(card(bob, globex)?.get(CARD_KEY.TITLE)).toBe("Globex");
    expect(undo.undo()?.label).toBe("archiving “Acme Corp”");
    expect(card(bob, acme)?.get(CARD_KEY.ARCHIVED_AT)).toBeUndefined();
    expect(undo.undo()?.label).toBe("editing “Acme Corp”");
    expect(card(bob, acme)?.get(CARD_KEY.TITLE)).toBe("Acme");
    expect(undo.undo()?.label).toBe("creating “Initech”");
    expect(card(bob, created)).toBeUndefined();
    expect(undo.undo()).toBeNull();
    undo.destroy();
  });

  test("Ctrl+Z and Cmd+Z undo, with Shift (or Ctrl+Y) they redo", () => {
    const key = (k: string, mods: Partial<Record<"ctrlKey" | "metaKey" | "shiftKey" | "altKey", boolean>> = {}) =>
      undoKey({ key: k, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...mods });
    expect(key("z", { ctrlKey: true })).toBe("undo");
    expect(key("z", { metaKey: true })).toBe("undo");
    expect(key("Z", { ctrlKey: true, shiftKey: true })).toBe("redo");
    expect(key("y", { ctrlKey: true })).toBe("redo");
    expect(key("z")).toBeNull();
    expect(key("z", { ctrlKey: true, altKey: true })).toBeNull();
    expect(key("x", { ctrlKey: true })).toBeNull();
    expect(typingIn(null)).toBe(false);
    const element = (tagName: string, isContentEditable = false) =>
      ({ tagName, isContentEditable }) as unknown as EventTarget;
    expect(typingIn(element("INPUT"))).toBe(true);
    expect(typingIn(element("TEXTAREA"))).toBe(true);
    expect(typingIn(element("DIV", true))).toBe(true);
    expect(typingIn(element("BUTTON"))).toBe(false);
  });
});
