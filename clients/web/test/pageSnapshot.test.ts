// What the board page renders again for (src/components/pageSnapshot.ts): nothing it reads
// changes on a move between open columns, so the page stays; everything it shows (stages,
// settings, the card count, the unprocessed badge, archived cards, the open panel's card, the
// open workload, the user's display form, the clock) makes it render.

import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import { rebalanced } from "../src/model/order";
import { ROOT, STAGE_KEY, defaultStages } from "../src/model/schema";
import {
  addActivity,
  archiveCard,
  createCard,
  editCard,
  moveCard,
  renameStage,
  setDisplayFields,
} from "../src/model/write";
import { BoardStore } from "../src/store/boardStore";
import {
  displayKeyOf,
  pageChanged,
  pageSnapshotOf,
  type PageSnapshot,
  type PageWatch,
} from "../src/components/pageSnapshot";

const NOW = 1_800_000_000_000;
const CLOSED: PageWatch = { panelCard: null, workloadOpen: false };

function board(): { doc: Y.Doc; store: BoardStore; cards: string[] } {
  const doc = new Y.Doc();
  doc.transact(() => {
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
  const cards: string[] = [];
  for (let i = 0; i < 6; i++) {
    const id = createCard(doc, `st-${i % 2}`, { title: `deal ${i}`, amount: 100 * i, responsible: "ann" }, NOW);
    addActivity(doc, {
      card: id,
      kind: "call",
      direction: "outgoing",
      subject: "call",
      deadline: NOW + 3_600_000,
      remindMin: null,
      responsible: "ann",
    });
    cards.push(id);
  }
  const store = new BoardStore(doc, () => NOW);
  return { doc, store, cards };
}

/** The page as it rendered the store's current snapshot, then whether `change` makes it render. */
function rendersFor(
  { doc, store }: { doc: Y.Doc; store: BoardStore },
  change: () => void,
  watch: PageWatch = CLOSED,
): boolean {
  const key = () => displayKeyOf(store.displayFieldsOf("ann"));
  const shown: PageSnapshot = pageSnapshotOf(store.current, watch, key());
  const before = store.current;
  doc.transact(change);
  store.flush();
  expect(store.current).not.toBe(before);
  return pageChanged(shown, store.current, watch, key());
}

describe("the board page renders for what it reads, not for a move", () => {
  test("a move between open columns, or a card edited in place, leaves the page", () => {
    const b = board();
    expect(rendersFor(b, () => moveCard(b.doc, b.cards[0]!, "st-1", { kind: "top" }))).toBe(false);
    expect(rendersFor(b, () => moveCard(b.doc, b.cards[1]!, "st-2", { kind: "bottom" }))).toBe(false);
    expect(rendersFor(b, () => editCard(b.doc, b.cards[2]!, { title: "renamed" }))).toBe(false);
  });

  test("what the page shows makes it render", () => {
    const b = board();
    expect(rendersFor(b, () => renameStage(b.doc, "st-0", "First"))).toBe(true);
    expect(rendersFor(b, () => void createCard(b.doc, "st-0", { title: "new" }, NOW))).toBe(true);
    expect(rendersFor(b, () => archiveCard(b.doc, b.cards[3]!, NOW))).toBe(true);
    expect(rendersFor(b, () => setDisplayFields(b.doc, "ann", ["title", "amount"]))).toBe(true);
    // A card whose only activity is done turns unprocessed: the toolbar's badge counts it.
    const activities = b.doc.getMap<Y.Map<unknown>>(ROOT.ACTIVITIES);
    const onCard4 = [...activities.entries()].find(([, a]) => a.get("card") === b.cards[4])![0];
    expect(rendersFor(b, () => activities.delete(onCard4))).toBe(true);
  });

  test("the open panel's card and the open workload make it render; closed, they do not", () => {
    const b = board();
    const card = b.cards[5]!;
    const move = (stage: string) => () => moveCard(b.doc, card, stage, { kind: "top" });
    expect(rendersFor(b, move("st-2"), { panelCard: card, workloadOpen: false })).toBe(true);
    expect(rendersFor(b, move("st-3"), { panelCard: b.cards[0]!, workloadOpen: false })).toBe(false);
    // Won: the card leaves the open deals, so the workload changes.
    expect(rendersFor(b, move("st-4"), { panelCard: null, workloadOpen: true })).toBe(true);
    expect(rendersFor(b, move("st-0"), CLOSED)).toBe(false);
  });

  test("a tick makes it render (time ago, counters)", () => {
    let now = NOW;
    const b = board();
    const store = new BoardStore(b.doc, () => now);
    const shown = pageSnapshotOf(store.current, CLOSED, "");
    now += 30_000;
    store.tick();
    expect(pageChanged(shown, store.current, CLOSED, "")).toBe(true);
  });
});
