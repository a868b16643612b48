// What the board page itself reads of the store's snapshot, apart from the columns. The columns
// and whatever sums them up (the toolbar's totals, the filter's count, the forecast, the phone's
// stage switcher) follow the store on their own (BoardColumns.tsx); the page re-renders only
// when one of the parts below changes, so a remote move re-renders two columns and their cards,
// not the header, the toolbar and the page around them.

import type { BoardSnapshot, CardItem } from "../store/boardStore";

/** A snapshot as the page last rendered it, with the sizes of the store's read-through parts. */
export interface PageSnapshot {
  readonly snapshot: BoardSnapshot;
  /** `snapshot.items.size` then (the map is the store's own: read through, not a copy). */
  readonly cards: number;
  /** `snapshot.unprocessed.size` then (the toolbar's badge). */
  readonly unprocessed: number;
  /** The item of the card whose panel is open, as it was then (undefined: none, or no such card). */
  readonly panelItem: CardItem | undefined;
  /** The user's display form then (`views` in the document, which no snapshot part carries). */
  readonly displayKey: string;
}

/** What the page shows besides the snapshot: which card's panel is open, whether the workload is. */
export interface PageWatch {
  readonly panelCard: string | null;
  readonly workloadOpen: boolean;
}

export function pageSnapshotOf(snapshot: BoardSnapshot, watch: PageWatch, displayKey: string): PageSnapshot {
  return {
    snapshot,
    cards: snapshot.items.size,
    unprocessed: snapshot.unprocessed.size,
    panelItem: watch.panelCard === null ? undefined : snapshot.items.get(watch.panelCard),
    displayKey,
  };
}

/** A display form as one string, to compare (null: the user never set one). */
export function displayKeyOf(displayed: readonly string[] | null): string {
  return displayed === null ? "" : `=${displayed.join("\u0000")}`;
}

/**
 * Whether the page must render `next` (with the user's display form `displayKey`) because
 * something it reads differs from `shown`.
 */
export function pageChanged(shown: PageSnapshot, next: BoardSnapshot, watch: PageWatch, displayKey: string): boolean {
  const before = shown.snapshot;
  return (
    displayKey !== shown.displayKey ||
    next.settings !== before.settings ||
    next.stages !== before.stages ||
    next.fieldDefs !== before.fieldDefs ||
    next.quickCreate !== before.quickCreate ||
    next.archived !== before.archived ||
    next.responsibles !== before.responsibles ||
    next.now !== before.now ||
    next.items.size !== shown.cards ||
    next.unprocessed.size !== shown.unprocessed ||
    (watch.workloadOpen && next.workload !== before.workload) ||
    (watch.panelCard !== null && next.items.get(watch.panelCard) !== shown.panelItem)
  );
}
