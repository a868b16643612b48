// A column patched by binary search (src/store/sortedItems.ts) must hold what a plain sort of
// its cards gives, and its sums what a plain sum gives, after any run of removals and additions.

import { describe, expect, test } from "vitest";
import { compareBytes } from "../src/model/order";
import { compareOrdered, lowerBound, patchSorted, Sums } from "../src/store/sortedItems";

interface Item {
  card: { id: string; pos: string; currency: string; amount: number };
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Keys from a small alphabet, so that equal `pos` (ties broken by id) come up often. */
const POS_CHARS = ["a0", "a1", "a2", "b00", "Zz", "a0V", "\u{1F600}", "\uE000"];
const CURRENCIES = ["USD", "EUR", "JPY"];

function plainSort(items: readonly Item[]): Item[] {
  return [...items].sort((a, b) => compareBytes(a.card.pos, b.card.pos) || compareBytes(a.card.id, b.card.id));
}

function plainSums(items: readonly Item[]): [string, number][] {
  const sums = new Map<string, number>();
  for (const { card } of items) sums.set(card.currency, (sums.get(card.currency) ?? 0) + card.amount);
  return [...sums].sort(([a], [b]) => compareBytes(a, b));
}

describe("patchSorted", () => {
  test("matches a plain sort after random removals and additions, one at a time and in bulk", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = seeded(seed);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
      let next = 0;
      const make = (): Item => ({
        card: {
          id: `c${Math.floor(random() * 1000)}-${next++}`,
          pos: pick(POS_CHARS) + (random() < 0.5 ? pick(POS_CHARS) : ""),
          currency: pick(CURRENCIES),
          amount: Math.floor(random() * 2000) - 500,
        },
      });
      let items: Item[] = [];
      let sums = Sums.empty();
      for (let step = 0; step < 60; step++) {
        // Sometimes a bulk change, past the splice limit, to cover the merge.
        const bulk = random() < 0.15;
        const removeCount = Math.min(items.length, Math.floor(random() * (bulk ? 50 : 3)));
        const removed = new Set<Item>();
        while (removed.size < removeCount) removed.add(pick(items));
        const added = Array.from({ length: Math.floor(random() * (bulk ? 60 : 3)) }, make);
        const before = items.slice();
        const patched = patchSorted(items, [...removed], added);
        expect(items, "the input is left as it was").toEqual(before);
        const expected = plainSort([...items.filter((item) => !removed.has(item)), ...added]);
        expect(
          patched.map((i) => i.card.id),
          `seed ${seed}, step ${step}`,
        ).toEqual(expected.map((i) => i.card.id));
        sums = sums.copy();
        for (const { card } of removed) sums.remove(card.currency, card.amount);
        for (const { card } of added) sums.add(card.currency, card.amount);
        expect([...sums.sorted()], `seed ${seed}, step ${step}`).toEqual(plainSums(patched));
        items = patched;
      }
    }
  });

  test("an item to remove that is not there is skipped", () => {
    const a = { card: { id: "a", pos: "a0" } };
    const b = { card: { id: "b", pos: "a1" } };
    const stranger = { card: { id: "x", pos: "a0" } };
    expect(patchSorted([a, b], [stranger], [])).toEqual([a, b]);
  });

  test("an item whose pos changed since it was placed is still found by its id", () => {
    const a = { card: { id: "a", pos: "a0" } };
    const b = { card: { id: "b", pos: "a1" } };
    const c = { card: { id: "c", pos: "a2" } };
    // The list holds b at "a1"; the caller's copy of b says "a3" (not where the list has it).
    expect(patchSorted([a, b, c], [{ card: { id: "b", pos: "a3" } }], [])).toEqual([a, c]);
  });

  test("lowerBound is the first place not below, ties broken by id", () => {
    const items = [
      { card: { id: "a", pos: "a0" } },
      { card: { id: "b", pos: "a0" } },
      { card: { id: "a", pos: "a1" } },
    ];
    expect(lowerBound(items, { card: { id: "b", pos: "a0" } })).toBe(1);
    expect(lowerBound(items, { card: { id: "c", pos: "a0" } })).toBe(2);
    expect(lowerBound(items, { card: { id: "", pos: "" } })).toBe(0);
    expect(lowerBound(items, { card: { id: "z", pos: "z" } })).toBe(3);
    expect(compareOrdered(items[0]!, items[1]!)).toBeLessThan(0);
  });
});

describe("Sums", () => {
  test("a currency stays while it has cards, even at 0, and goes with its last card", () => {
    const sums = Sums.empty();
    sums.add("USD", 500);
    sums.add("USD", -500);
    sums.add("EUR", 7);
    expect([...sums.sorted()]).toEqual([
      ["EUR", 7],
      ["USD", 0],
    ]);
    sums.remove("USD", 500);
    sums.remove("USD", -500);
    expect([...sums.sorted()]).toEqual([["EUR", 7]]);
  });

  test("a copy does not change the original", () => {
    const sums = Sums.empty();
    sums.add("USD", 1);
    const copy = sums.copy();
    copy.add("USD", 2);
    expect([...sums.sorted()]).toEqual([["USD", 1]]);
    expect([...copy.sorted()]).toEqual([["USD", 3]]);
  });
});
