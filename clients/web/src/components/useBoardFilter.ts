// The board's find-and-filter state (src/ui/filters.ts) kept in the address: read at start and
// on back/forward (`popstate`), written with `pushState` for each change a person makes (so Back
// undoes it) except while typing a search, whose keystrokes replace one entry. Also the columns
// as the filter shows them, memoised per column object: a change to one column re-filters that
// column alone, and a column whose cards all pass keeps the store's own arrays.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import { weighted } from "../model/requirements";
import { columnChangeOf, type CardItem, type ColumnChange, type ColumnData } from "../store/boardStore";
import { patchSorted, Sums } from "../store/sortedItems";
import { activityStatus } from "../ui/activityStatus";
import type { RosterEntry } from "../ui/users";
import type { ActivityStatus } from "../ui/activityStatus";
import {
  compileFilter,
  deleteView,
  filterColumn,
  loadViews,
  parseFilter,
  saveView,
  viewsKey,
  withFilter,
  type BoardFilter,
  type CompiledFilter,
  type SavedView,
  type ViewStorage,
} from "../ui/filters";
import type { Person } from "./FilterBar";

/** A column as the board shows it under the current filter. */
export interface ColumnView {
  readonly column: ColumnData;
  /** `column.stage`. */
  readonly stage: Stage;
  readonly items: readonly CardItem[];
  readonly sums: ReadonlyMap<string, number>;
  /** The sums of what it shows weighted by the stage's probability, card by card (ColumnStats). */
  readonly weighted: ReadonlyMap<string, number>;
  /** The activity bar's counts: per status, the cards that pass every other part of the filter. */
  readonly statuses: ReadonlyMap<ActivityStatus, number>;
  /** Whether some of the column's cards are hidden. */
  readonly filtered: boolean;
}

/** How a change is written to the history: a new entry, or in place of the current one. */
export type FilterChange = "push" | "typing";

function currentFilter(): BoardFilter {
  return parseFilter(window.location.search);
}

export function useBoardFilter(): {
  filter: BoardFilter;
  compiled: CompiledFilter;
  setFilter: (next: BoardFilter, how?: FilterChange) => void;
} {
  const [filter, setState] = useState<BoardFilter>(currentFilter);
  // Whether the current history entry is a search being typed (its next keystroke replaces it).
  const typing = useRef(false);
  useEffect(() => {
    const onPop = () => {
      typing.current = false;
      setState(currentFilter());
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const compiled = useMemo(() => compileFilter(filter), [filter]);
  const compiledRef = useRef(compiled);
  compiledRef.current = compiled;
  const [setFilter] = useState(() => (next: BoardFilter, how: FilterChange = "push") => {
    const { pathname, search, hash } = window.location;
    const url = `${pathname}${withFilter(search, next)}${hash}`;
    if (url !== `${pathname}${search}${hash}`) {
      if (how === "typing" && typing.current) window.history.replaceState(window.history.state, "", url);
      else window.history.pushState(window.history.state, "", url);
    }
    typing.current = how === "typing";
    setState(next);
  });
  return { filter, compiled, setFilter };
}

/**
 * The views made so far, by column object: shared by every part of the page that shows the
 * columns as filtered (the columns, the totals, the filter's count, the forecast), so a column
 * changed by a move is patched once, and the others find it made.
 */
export type ViewCache = WeakMap<ColumnData, { key: string; now: number; view: ColumnView }>;

/** The columns shown (the stage filter hides the others), each as the filter shows it. */
export function columnViewsOf(
  columns: readonly ColumnData[],
  compiled: CompiledFilter,
  now: number,
  cache: ViewCache,
): readonly ColumnView[] {
  return columns
    .filter((column) => compiled.showsStage(column.stage.id))
    .map((column) => {
      const hit = cache.get(column);
      if (hit !== undefined && hit.key === compiled.key && hit.now === now) return hit.view;
      // A column the store patched from one shown under the same filter: patch its view too.
      const change = columnChangeOf(column);
      const before = change !== undefined ? cache.get(change.previous) : undefined;
      const view =
        change !== undefined && before !== undefined && before.key === compiled.key && before.now === now
          ? patchColumnView(before.view, column, change, compiled, now)
          : columnView(column, compiled, now);
      cache.set(column, { key: compiled.key, now, view });
      return view;
    });
}

/** {@link columnViewsOf}, memoised on its inputs. */
export function useColumnViews(
  columns: readonly ColumnData[],
  compiled: CompiledFilter,
  now: number,
  cache: ViewCache,
): readonly ColumnView[] {
  return useMemo(() => columnViewsOf(columns, compiled, now, cache), [columns, compiled, now, cache]);
}

/** What a view keeps to be patched: the sums of what it shows, with their counts. */
const viewSums = new WeakMap<ColumnView, { sums: Sums; weighted: Sums }>();

/** A column as the filter shows it, in one pass over its cards. */
export function columnView(column: ColumnData, compiled: CompiledFilter, now: number): ColumnView {
  const result = filterColumn(column.items, compiled, now);
  const all = result.items.length === column.items.length;
  const sums = Sums.empty();
  const weightedSums = Sums.empty();
  for (const { card } of result.items) {
    sums.add(card.currency, card.amount);
    weightedSums.add(card.currency, weighted(card.amount, column.stage));
  }
  const view: ColumnView = {
    column,
    stage: column.stage,
    items: all ? column.items : result.items,
    sums: all ? column.sums : result.sums,
    weighted: weightedSums.sorted(),
    statuses: result.statuses,
    filtered: !all,
  };
  viewSums.set(view, { sums, weighted: weightedSums });
  return view;
}

/**
 * The view of `column`, patched from `before` (the view of `change.previous` under the same
 * filter and clock): only the cards that left or entered are tested, counted and placed.
 */
export function patchColumnView(
  before: ColumnView,
  column: ColumnData,
  change: ColumnChange,
  compiled: CompiledFilter,
  now: number,
): ColumnView {
  const kept = viewSums.get(before);
  if (kept === undefined) return columnView(column, compiled, now);
  const sums = kept.sums.copy();
  const weightedSums = kept.weighted.copy();
  const statuses = new Map(before.statuses);
  const byStatus = compiled.states.size > 0;
  const shown = (item: CardItem, sign: 1 | -1): boolean => {
    if (!compiled.matchesOthers(item)) return false;
    const status = activityStatus(item.activities, now);
    statuses.set(status, (statuses.get(status) ?? 0) + sign);
    if (byStatus && !compiled.states.has(status)) return false;
    const { card } = item;
    if (sign === 1) {
      sums.add(card.currency, card.amount);
      weightedSums.add(card.currency, weighted(card.amount, column.stage));
    } else {
      sums.remove(card.currency, card.amount);
      weightedSums.remove(card.currency, weighted(card.amount, column.stage));
    }
    return true;
  };
  const removed = change.removed.filter((item) => shown(item, -1));
  const added = change.added.filter((item) => shown(item, 1));
  const items = patchSorted(before.items, removed, added);
  const all = items.length === column.items.length;
  const view: ColumnView = {
    column,
    stage: column.stage,
    items: all ? column.items : items,
    sums: all ? column.sums : sums.sorted(),
    weighted: weightedSums.sorted(),
    statuses,
    filtered: !all,
  };
  viewSums.set(view, { sums, weighted: weightedSums });
  return view;
}

/** localStorage, or a memory stand-in where the browser refuses it. */
function viewStorage(): ViewStorage {
  try {
    const probe = "funnel.probe";
    window.localStorage.setItem(probe, "1");
    window.localStorage.removeItem(probe);
    return window.localStorage;
  } catch {
    const memory = new Map<string, string>();
    return { getItem: (k) => memory.get(k) ?? null, setItem: (k, v) => void memory.set(k, v) };
  }
}

/** A user's saved views of a board, kept in sync with other tabs of this browser. */
export function useSavedViews(
  boardId: string,
  user: string,
): {
  views: readonly SavedView[];
  save: (name: string, filter: BoardFilter) => string | null;
  remove: (name: string) => void;
} {
  const [storage] = useState(viewStorage);
  const [views, setViews] = useState<readonly SavedView[]>(() => loadViews(storage, boardId, user));
  useEffect(() => {
    setViews(loadViews(storage, boardId, user));
    const key = viewsKey(boardId, user);
    const onStorage = (event: StorageEvent) => {
      if (event.key === key || event.key === null) setViews(loadViews(storage, boardId, user));
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, [storage, boardId, user]);
  // The same functions while the board and user stay: the toolbar's memoised parts take them.
  const actions = useMemo(
    () => ({
      save: (name: string, filter: BoardFilter): string | null => {
        const result = saveView(storage, boardId, user, name, filter);
        if ("error" in result) return result.error;
        setViews(result.views);
        return null;
      },
      remove: (name: string) => setViews(deleteView(storage, boardId, user, name)),
    }),
    [storage, boardId, user],
  );
  return { views, ...actions };
}

/**
 * Whom the responsible filter offers: the roster, then everyone else responsible for a card,
 * by name, then "unassigned" when a card has nobody. The same array while that list is equal.
 */
export function usePeople(
  responsible: ReadonlySet<string>,
  roster: readonly RosterEntry[],
  nameOf: (user: string) => string,
  namesVersion: number,
): readonly Person[] {
  const last = useRef<readonly Person[]>([]);
  return useMemo(() => {
    const people: Person[] = roster.map((r) => ({ id: r.id, name: r.name }));
    const known = new Set(roster.map((r) => r.id));
    const others = [...responsible]
      .filter((id) => id !== "" && !known.has(id))
      .map((id) => ({ id, name: nameOf(id) }))
      .sort((a, b) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1));
    people.push(...others);
    if (responsible.has("")) people.push({ id: "", name: "" });
    const same =
      people.length === last.current.length &&
      people.every((p, i) => p.id === last.current[i]!.id && p.name === last.current[i]!.name);
    if (!same) last.current = people;
    return last.current;
    // namesVersion stands for the names nameOf gives.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [responsible, roster, namesVersion]);
}
