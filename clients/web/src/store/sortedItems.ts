// A column's cards kept in board order, (`pos`, id) by bytes, without sorting them again: a
// change takes the cards it touched out by binary search and puts their new versions in the
// same way, so a remote move costs two searches and a copy of the array, not a sort of the
// column. Many changes at once (a board streaming in) are merged in one pass instead.
// Also the per-currency sums that go with a list of cards, kept the same way (`Sums`).
// test/sortedItems.test.ts checks both against a plain sort and a plain sum.

import { compareBytes } from "../model/order";

/** What the order reads of an item: its card's `pos` and id. */
export interface Ordered {
  readonly card: { readonly id: string; readonly pos: string };
}

/** Board order: `pos`, then id, both by bytes. */
export function compareOrdered(a: Ordered, b: Ordered): number {
  return compareBytes(a.card.pos, b.card.pos) || compareBytes(a.card.id, b.card.id);
}

/** The first index whose item is not below `item` in board order. */
export function lowerBound<T extends Ordered>(items: readonly T[], item: Ordered): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareOrdered(items[middle]!, item) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Above this many changes, a patch merges in one pass rather than splicing each change. */
const SPLICE_LIMIT = 32;

/**
 * `items` (in board order) without `removed` (items of `items`, matched by card id at the place
 * their own `pos` gives) and with `added` (any order), as a new array in board order. `items` is
 * left as it is. An item of `removed` that is not in `items` is skipped.
 */
export function patchSorted<T extends Ordered>(items: readonly T[], removed: readonly T[], added: readonly T[]): T[] {
  if (removed.length + added.length > SPLICE_LIMIT) return mergeSorted(items, removed, added);
  const next = items.slice();
  for (const item of removed) {
    let index = lowerBound(next, item);
    if (next[index]?.card.id !== item.card.id) {
      // Not where its key says (should not happen: `removed` holds the items as they were).
      index = next.findIndex((other) => other.card.id === item.card.id);
      if (index === -1) continue;
    }
    next.splice(index, 1);
  }
  for (const item of added) next.splice(lowerBound(next, item), 0, item);
  return next;
}

function mergeSorted<T extends Ordered>(items: readonly T[], removed: readonly T[], added: readonly T[]): T[] {
  const gone = new Set(removed.map((item) => item.card.id));
  const fresh = [...added].sort(compareOrdered);
  const next: T[] = [];
  let j = 0;
  for (const item of items) {
    if (gone.has(item.card.id)) continue;
    while (j < fresh.length && compareOrdered(fresh[j]!, item) < 0) next.push(fresh[j++]!);
    next.push(item);
  }
  while (j < fresh.length) next.push(fresh[j++]!);
  return next;
}

/**
 * Sums of amounts per currency, with how many cards each currency has (a currency whose last
 * card leaves goes; one whose cards sum to 0 stays). Amounts are whole minor units, so adding
 * and taking away is exact. Copy before changing one that a view already shows.
 */
export class Sums {
  private constructor(
    private readonly totals: Map<string, number>,
    private readonly counts: Map<string, number>,
  ) {}

  static empty(): Sums {
    return new Sums(new Map(), new Map());
  }

  copy(): Sums {
    return new Sums(new Map(this.totals), new Map(this.counts));
  }

  add(currency: string, amount: number): void {
    this.totals.set(currency, (this.totals.get(currency) ?? 0) + amount);
    this.counts.set(currency, (this.counts.get(currency) ?? 0) + 1);
  }

  remove(currency: string, amount: number): void {
    const count = (this.counts.get(currency) ?? 0) - 1;
    if (count <= 0) {
      this.totals.delete(currency);
      this.counts.delete(currency);
      return;
    }
    this.counts.set(currency, count);
    this.totals.set(currency, (this.totals.get(currency) ?? 0) - amount);
  }

  /** The sums, currencies in byte order. */
  sorted(): Map<string, number> {
    return new Map([...this.totals.entries()].sort(([a], [b]) => compareBytes(a, b)));
  }
}
