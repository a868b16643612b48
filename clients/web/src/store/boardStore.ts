// The board as the screen shows it, kept up to date incrementally. The store observes the root
// types of the document and, after each batch of transactions, re-reads only what changed (the
// cards named by the events, through the mirror's `readCard`; stages and settings through
// `readStages` / `readSettings`; activities through `activitiesByCard` when one changed), then
// patches only the columns those cards left or entered: their old items out and new ones in by
// binary search (sortedItems.ts), their sums and summaries from the column before, so a move
// costs its cards, not its columns' (a change of stages or settings, or a tick, rebuilds them
// all). Every object that did not change keeps its identity from one snapshot to the next, so
// the view re-renders a remote move as two columns and one card, not the whole board
// (components compare by identity); `items` and `unprocessed` are the store's own, read through.
//
// The reading rules are the mirror's (src/model/board.ts): cards by (`pos`, id) in byte order, a
// card whose stage is gone shown in the initial column, sums per currency, counters from
// `rules.counter` at the store's clock. test/store.test.ts checks the store against `readBoard`
// after random edits.

import * as Y from "yjs";
import {
  activitiesByCard,
  displayFields,
  quickCreateFields,
  readCard,
  readSettings,
  readStages,
  type Activity,
  type Settings,
  type Stage,
  type Workload,
} from "../model/board";
import { readFieldDefs, type FieldDef } from "../model/fieldDefs";
import { compareBytes } from "../model/order";
import { counter as computeCounter, type Counter, type Millis } from "../model/rules";
import { isOpenKind, QUICK_CREATE, ROOT, type StageKind } from "../model/schema";
import { cardYMap, readServerFields, type CardData } from "../model/serverFields";
import { patchSorted, Sums } from "./sortedItems";

/** One card as a column shows it. Same object as long as nothing about it changed. */
export interface CardItem {
  card: CardData;
  counter: Counter;
  /** The card's activities, in byte order of id (done ones included). */
  activities: readonly Activity[];
}

export interface ColumnData {
  stage: Stage;
  /** Every card shown in this stage, in order (filters apply in the view). */
  items: readonly CardItem[];
  /** Sum of `amount` per currency, currencies in byte order. */
  sums: ReadonlyMap<string, number>;
}

export interface BoardSnapshot {
  settings: Settings;
  /** Board order. */
  stages: readonly Stage[];
  columns: readonly ColumnData[];
  /**
   * Every card shown in a column, by id: the store's own map, read through (no copy per
   * snapshot), so it holds the latest state, not a copy at this snapshot's version.
   */
  items: ReadonlyMap<string, CardItem>;
  /**
   * Everyone responsible for a card in a column (`""` for a card with nobody); the same set
   * while that list is equal.
   */
  responsibles: ReadonlySet<string>;
  fieldDefs: readonly FieldDef[];
  /** `forms.quickCreate`, or null when the board never set it (the view uses the defaults). */
  quickCreate: readonly string[] | null;
  /** Per responsible, in byte order of the responsible id. */
  workload: readonly Workload[];
  /** Cards whose counter is `idle`: the store's own set, read through like `items`. */
  unprocessed: CardIdSet;
  /** Archived cards (in no column), most recently archived first. */
  archived: readonly CardData[];
  /**
   * The instant of the last tick (every 30 s): what "time ago" is measured against. It moves only
   * at ticks, so that an edit re-renders only the cards it touched.
   */
  now: Millis;
  /** Bumped on every change. */
  version: number;
}

const EMPTY_ACTIVITIES: readonly Activity[] = Object.freeze([]);

/** What a snapshot sums up of one column (BoardStore.summaryOf). */
interface ColumnSummary {
  /** This column's part of the workload: empty for a final stage. */
  workload: Map<string, Workload>;
  /** How many of its cards each responsible has. */
  responsibles: Map<string, number>;
  /** How many of its cards each (responsible, currency) has, keyed `responsible\0currency`. */
  workloadCurrencies: Map<string, number>;
}

/**
 * How a column object came from the one before it: the items that left it (as they were) and
 * the items that entered it (as they are now; a card that changed in place is in both). Only
 * for a column that kept its stage and was patched, not rebuilt.
 */
export interface ColumnChange {
  readonly previous: ColumnData;
  readonly removed: readonly CardItem[];
  readonly added: readonly CardItem[];
}

const columnChanges = new WeakMap<ColumnData, ColumnChange>();

/** How `column` differs from the column object it replaced, when the store patched it. */
export function columnChangeOf(column: ColumnData): ColumnChange | undefined {
  return columnChanges.get(column);
}

/** The per-currency sums of each column object, with their counts, to patch the next one. */
const columnSums = new WeakMap<ColumnData, Sums>();

/** A read-only set of card ids: what `has`, `size` and iteration need of a `Set`. */
export interface CardIdSet extends Iterable<string> {
  readonly size: number;
  has(id: string): boolean;
}

/** How often what streamed in is applied while the server's state loads (see `setLoading`). */
export const LOADING_FLUSH_MS = 100;
/**
 * The wait doubles after each such flush up to this: each one re-renders the columns, and a
 * long load needs a moving count more than hundreds of renders of a board still filling.
 */
export const LOADING_FLUSH_MAX_MS = 800;

export class BoardStore {
  private readonly listeners = new Set<(snapshot: BoardSnapshot) => void>();
  private readonly cards = new Map<string, CardData>();
  /** Card ids by the raw `stage` they name (maybe a deleted stage). */
  private readonly members = new Map<string, Set<string>>();
  /** Archived cards, by id: in no column. */
  private readonly archived = new Map<string, CardData>();
  private archivedChanged = false;
  private archivedList: readonly CardData[] = [];
  private readonly items = new Map<string, CardItem>();
  /** The shown cards whose counter is `idle`, kept with `items`. */
  private readonly idle = new Set<string>();
  private activities = new Map<string, Activity[]>();
  private stages: Stage[] = [];
  private settings: Settings;
  private columns = new Map<string, ColumnData>();
  private fieldDefs: FieldDef[] = [];
  private quickCreate: string[] | null = null;
  private snapshot: BoardSnapshot;
  /** The clock at the last flush: counters of the cards read then are computed at it. */
  private now: Millis;
  /** The clock at the last tick. */
  private tickedAt: Millis;
  private version = 0;

  /** Each column's summary, made when the column object is first summed up. */
  private readonly summaries = new WeakMap<ColumnData, ColumnSummary>();
  /** The columns of the last snapshot, and what was summed up over them. */
  private snapshotColumns: readonly ColumnData[] = [];
  private views: {
    responsibles: ReadonlySet<string>;
    workload: readonly Workload[];
  } | null = null;

  private readonly dirtyCards = new Set<string>();
  private dirtyActivities = false;
  private dirtyStages = false;
  private dirtyFields = false;
  private dirtyForms = false;
  private dirtyViews = false;
  private recountAll = false;
  private scheduled = false;
  /** While the server's state streams in: remote changes are applied on a timer (`setLoading`). */
  private loading = false;
  private loadingTimer: ReturnType<typeof setTimeout> | null = null;
  /** The wait before the next flush while loading (LOADING_FLUSH_MS, doubling). */
  private loadingDelay = LOADING_FLUSH_MS;
  private readonly unobserve: (() => void)[] = [];

  constructor(
    private readonly doc: Y.Doc,
    private readonly clock: () => Millis = Date.now,
  ) {
    this.now = clock();
    this.tickedAt = this.now;
    this.settings = readSettings(doc);
    this.observe();
    this.readAll();
    this.snapshot = this.build(true);
  }

  get current(): BoardSnapshot {
    return this.snapshot;
  }

  subscribe(listener: (snapshot: BoardSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-evaluates every counter at the clock's time (the view calls it every 30 s). */
  tick(): void {
    this.recountAll = true;
    this.tickedAt = this.clock();
    this.flush();
  }

  /** The display form of `user`: their `views` entry, or null when they never set one. */
  displayFieldsOf(user: string): string[] | null {
    if (!this.doc.share.has(ROOT.VIEWS) || !this.doc.getMap(ROOT.VIEWS).has(user)) return null;
    return displayFields(this.doc, user);
  }

  /**
   * Says whether the server's state is still streaming in (the connection is `loading`). A large
   * board arrives in hundreds of pieces, one message each: applied one by one, each would re-read
   * and re-sort every column it touches. While loading, the store applies what came after
   * {@link LOADING_FLUSH_MS}, then after twice as long each time up to {@link LOADING_FLUSH_MAX_MS}
   * (the progress bar still moves), and at once when this
   * browser's own edit comes or the loading ends, so the last piece and the "Live" state reach
   * the view together.
   */
  setLoading(loading: boolean): void {
    if (this.loading === loading) return;
    this.loading = loading;
    this.loadingDelay = LOADING_FLUSH_MS;
    if (!loading && this.loadingTimer !== null) this.flush();
  }

  /** Applies pending changes now instead of at the end of the current task (tests use it). */
  flush(): void {
    this.scheduled = false;
    if (this.loadingTimer !== null) {
      clearTimeout(this.loadingTimer);
      this.loadingTimer = null;
    }
    const changed = this.apply();
    if (!changed) return;
    this.snapshot = this.build(false);
    for (const listener of this.listeners) listener(this.snapshot);
  }

  destroy(): void {
    if (this.loadingTimer !== null) clearTimeout(this.loadingTimer);
    this.loadingTimer = null;
    for (const stop of this.unobserve) stop();
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------------------------

  private observe(): void {
    const watch = (
      name: string,
      onEvents: (events: Y.YEvent<Y.AbstractType<unknown>>[], root: Y.Map<unknown>) => void,
    ) => {
      const root = this.doc.getMap<unknown>(name);
      const handler = (events: Y.YEvent<Y.AbstractType<unknown>>[], transaction: Y.Transaction) => {
        onEvents(events, root);
        this.schedule(!transaction.local);
      };
      root.observeDeep(handler);
      this.unobserve.push(() => root.unobserveDeep(handler));
    };
    watch(ROOT.CARDS, (events, root) => {
      for (const event of events) {
        if (event.target === root) {
          // The keys of a map are strings; Yjs types the set as `Set<any>`.
          for (const key of (event as Y.YMapEvent<unknown>).keysChanged as Set<string>) this.dirtyCards.add(key);
        } else {
          const id = event.path[0];
          if (typeof id === "string") this.dirtyCards.add(id);
        }
      }
    });
    watch(ROOT.ACTIVITIES, () => (this.dirtyActivities = true));
    watch(ROOT.STAGES, () => (this.dirtyStages = true));
    watch(ROOT.BOARD, () => (this.dirtyStages = true));
    watch(ROOT.FIELDS, () => (this.dirtyFields = true));
    watch(ROOT.FORMS, () => (this.dirtyForms = true));
    watch(ROOT.VIEWS, () => (this.dirtyViews = true));
  }

  private schedule(remote: boolean): void {
    if (this.loading && remote && !this.scheduled) {
      if (this.loadingTimer === null) {
        this.loadingTimer = setTimeout(() => this.flush(), this.loadingDelay);
        this.loadingDelay = Math.min(this.loadingDelay * 2, LOADING_FLUSH_MAX_MS);
      }
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    // One flush per batch of transactions (a sync step brings many at once).
    queueMicrotask(() => {
      if (this.scheduled) this.flush();
    });
  }

  private readAll(): void {
    this.stages = readStages(this.doc);
    this.activities = activitiesByCard(this.doc);
    this.fieldDefs = readFieldDefs(this.doc);
    this.quickCreate = this.readQuickCreate();
    if (this.doc.share.has(ROOT.CARDS)) {
      this.doc.getMap(ROOT.CARDS).forEach((_, id) => this.dirtyCards.add(id));
    }
    this.updateCards();
    this.recountAll = true;
  }

  private readQuickCreate(): string[] | null {
    if (!this.doc.share.has(ROOT.FORMS) || !this.doc.getMap(ROOT.FORMS).has(QUICK_CREATE)) return null;
    return quickCreateFields(this.doc);
  }

  /** Reads what the events named; returns whether the snapshot must change. */
  private apply(): boolean {
    let changed = this.recountAll || this.dirtyViews;
    this.dirtyViews = false;
    this.now = this.clock();
    if (this.dirtyStages) {
      this.dirtyStages = false;
      const settings = readSettings(this.doc);
      if (!sameSettings(settings, this.settings)) this.settings = settings;
      const stages = readStages(this.doc).map((stage) => {
        const old = this.stages.find((s) => s.id === stage.id);
        return old !== undefined && sameStage(old, stage) ? old : stage;
      });
      this.stages = stages;
      this.recountAll = true;
      changed = true;
    }
    if (this.dirtyFields) {
      this.dirtyFields = false;
      this.fieldDefs = readFieldDefs(this.doc);
      changed = true;
    }
    if (this.dirtyForms) {
      this.dirtyForms = false;
      this.quickCreate = this.readQuickCreate();
      changed = true;
    }
    const touched = this.updateCards();
    if (this.dirtyActivities) {
      this.dirtyActivities = false;
      const next = activitiesByCard(this.doc);
      for (const card of new Set([...this.activities.keys(), ...next.keys()])) {
        const before = this.activities.get(card);
        const after = next.get(card);
        if (before !== undefined && after !== undefined && sameActivities(before, after)) {
          next.set(card, before);
        } else {
          touched.add(card);
        }
      }
      this.activities = next;
    }
    if (touched.size > 0) changed = true;
    this.touched = touched;
    return changed;
  }

  private touched = new Set<string>();

  /** Re-reads the dirty cards; returns the ids of those that changed (or went away). */
  private updateCards(): Set<string> {
    const touched = new Set<string>();
    for (const id of this.dirtyCards) {
      const old = this.cards.get(id);
      // The item as the columns show it now: the patch takes it out of its column.
      if (!this.previousItems.has(id)) this.previousItems.set(id, this.items.get(id));
      const read = readCard(this.doc, id);
      const map = cardYMap(this.doc, id);
      const card: CardData | null = read === null || map === null ? null : { ...read, ...readServerFields(map) };
      // An archived card leaves the board as a deleted one does; the store keeps it apart.
      if (card !== null && card.archivedAt !== null) this.archived.set(id, card);
      else if (this.archived.delete(id)) this.archivedChanged = true;
      if (card !== null && card.archivedAt !== null) this.archivedChanged = true;
      if (card === null || card.archivedAt !== null) {
        if (old === undefined) continue;
        this.cards.delete(id);
        this.members.get(old.stage)?.delete(id);
        this.items.delete(id);
        this.idle.delete(id);
        touched.add(id);
        this.removedFrom.add(old.stage);
        continue;
      }
      if (old !== undefined && sameCard(old, card)) continue;
      if (old !== undefined && old.stage !== card.stage) {
        this.members.get(old.stage)?.delete(id);
        this.removedFrom.add(old.stage);
      }
      let set = this.members.get(card.stage);
      if (set === undefined) this.members.set(card.stage, (set = new Set()));
      set.add(id);
      this.cards.set(id, card);
      touched.add(id);
    }
    this.dirtyCards.clear();
    return touched;
  }

  /** Raw stages that lost a card since the last build. */
  private readonly removedFrom = new Set<string>();
  /** Of the cards read since the last build, the item each had then (undefined: none). */
  private readonly previousItems = new Map<string, CardItem | undefined>();

  private build(initial: boolean): BoardSnapshot {
    const stageIds = new Set(this.stages.map((s) => s.id));
    const initialStage = this.stages.find((s) => s.kind === "initial") ?? this.stages[0];
    const shownIn = (raw: string) => (stageIds.has(raw) ? raw : initialStage?.id);
    const all = initial || this.recountAll;
    // Per shown stage, the items that left it and the cards that entered it (or changed in it).
    const leaving = new Map<string, CardItem[]>();
    const entering = new Map<string, CardData[]>();
    if (!all) {
      for (const id of this.touched) {
        const before = this.previousItems.has(id) ? this.previousItems.get(id) : this.items.get(id);
        if (before !== undefined) {
          const shown = shownIn(before.card.stage);
          if (shown !== undefined) push(leaving, shown, before);
        }
        const card = this.cards.get(id);
        const shown = card !== undefined ? shownIn(card.stage) : undefined;
        if (card !== undefined && shown !== undefined) push(entering, shown, card);
      }
      // A card that left without an item (never shown) still changes its old column's build.
      for (const raw of this.removedFrom) {
        const shown = shownIn(raw);
        if (shown !== undefined && !leaving.has(shown)) leaving.set(shown, []);
      }
    }
    this.removedFrom.clear();
    this.previousItems.clear();
    this.touched.clear();
    this.recountAll = false;

    const columns = this.stages.map((stage) => {
      const old = this.columns.get(stage.id);
      if (all || old === undefined || old.stage !== stage) {
        return this.buildColumn(stage, stage === initialStage ? stageIds : null, old);
      }
      const out = leaving.get(stage.id);
      const into = entering.get(stage.id);
      if (out === undefined && into === undefined) return old;
      return this.patchColumn(old, out ?? [], into ?? []);
    });
    this.columns = new Map(columns.map((c) => [c.stage.id, c]));
    if (columns.length === 0) {
      this.items.clear();
      this.idle.clear();
    }

    // What the board sums up over its columns, from each column's summary (made once per column
    // object, from the one before it when the column was patched): a move re-reads the two
    // columns' changed cards, not all the board's cards.
    const summaries = columns.map((column) => this.summaryOf(column));
    const sameColumns =
      columns.length === this.snapshotColumns.length && columns.every((c, i) => c === this.snapshotColumns[i]);
    this.snapshotColumns = columns;
    if (!sameColumns || this.views === null) {
      const workload = new Map<string, Workload>();
      const responsibles = new Set<string>();
      for (const summary of summaries) {
        for (const id of summary.responsibles.keys()) responsibles.add(id);
        for (const part of summary.workload.values()) {
          let load = workload.get(part.responsible);
          if (load === undefined) {
            load = { responsible: part.responsible, cards: 0, amounts: new Map(), lit: 0 };
            workload.set(part.responsible, load);
          }
          load.cards += part.cards;
          load.lit += part.lit;
          for (const [currency, amount] of part.amounts) {
            load.amounts.set(currency, (load.amounts.get(currency) ?? 0) + amount);
          }
        }
      }
      const previous = this.views;
      const workloadList = [...workload.values()]
        .filter((load) => load.cards > 0)
        .sort((a, b) => compareBytes(a.responsible, b.responsible))
        .map((load) => ({ ...load, amounts: sortedByKey(load.amounts) }));
      this.views = {
        responsibles:
          previous !== null && sameSet(previous.responsibles, responsibles) ? previous.responsibles : responsibles,
        workload: previous !== null && sameWorkload(previous.workload, workloadList) ? previous.workload : workloadList,
      };
    }
    const views = this.views;
    return {
      settings: this.settings,
      stages: this.stages,
      columns,
      items: this.items,
      responsibles: views.responsibles,
      fieldDefs: this.fieldDefs,
      quickCreate: this.quickCreate,
      workload: views.workload,
      unprocessed: this.idle,
      archived: this.archivedOrder(),
      now: this.tickedAt,
      version: ++this.version,
    };
  }

  /**
   * A column's part of the workload and its responsibles:
   * from the summary of the column it was patched from when there is one (what changed only).
   */
  private summaryOf(column: ColumnData): ColumnSummary {
    let summary = this.summaries.get(column);
    if (summary !== undefined) return summary;
    const open = isOpenKind(column.stage.kind);
    const change = columnChanges.get(column);
    const before = change !== undefined ? this.summaries.get(change.previous) : undefined;
    const add = (into: ColumnSummary, item: CardItem, sign: 1 | -1) => {
      const { card, counter } = item;
      const held = (into.responsibles.get(card.responsible) ?? 0) + sign;
      if (held > 0) into.responsibles.set(card.responsible, held);
      else into.responsibles.delete(card.responsible);
      if (!open) return;
      let load = into.workload.get(card.responsible);
      if (load === undefined) {
        load = { responsible: card.responsible, cards: 0, amounts: new Map(), lit: 0 };
        into.workload.set(card.responsible, load);
      }
      load.cards += sign;
      const key = `${card.responsible}\u0000${card.currency}`;
      const count = (into.workloadCurrencies.get(key) ?? 0) + sign;
      if (count > 0) {
        into.workloadCurrencies.set(key, count);
        load.amounts.set(card.currency, (load.amounts.get(card.currency) ?? 0) + sign * card.amount);
      } else {
        // The responsible's last card in this currency left: the currency goes, as a pass would have it.
        into.workloadCurrencies.delete(key);
        load.amounts.delete(card.currency);
      }
      if (counter.state === "due") load.lit += sign;
    };
    if (change !== undefined && before !== undefined) {
      const workload = new Map<string, Workload>();
      for (const [id, load] of before.workload) workload.set(id, { ...load, amounts: new Map(load.amounts) });
      summary = {
        workload,
        responsibles: new Map(before.responsibles),
        workloadCurrencies: new Map(before.workloadCurrencies),
      };
      for (const item of change.removed) add(summary, item, -1);
      for (const item of change.added) add(summary, item, 1);
      for (const [id, load] of workload) if (load.cards <= 0) workload.delete(id);
    } else {
      summary = {
        workload: new Map(),
        responsibles: new Map(),
        workloadCurrencies: new Map(),
      };
      for (const item of column.items) add(summary, item, 1);
    }
    this.summaries.set(column, summary);
    return summary;
  }

  /** The archived cards, most recently archived first; the same array while none changed. */
  private archivedOrder(): readonly CardData[] {
    if (this.archivedChanged) {
      this.archivedChanged = false;
      this.archivedList = [...this.archived.values()].sort(
        (a, b) => (b.archivedAt ?? 0) - (a.archivedAt ?? 0) || compareBytes(a.id, b.id),
      );
    }
    return this.archivedList;
  }

  /** The item of a card as this column shows it; the previous item when nothing about it changed. */
  private itemOf(card: CardData, stage: Stage): CardItem {
    const activities = this.activities.get(card.id) ?? EMPTY_ACTIVITIES;
    // Most cards have no activity: their counter depends on the stage's kind alone.
    const fresh =
      activities.length === 0
        ? emptyCounter(stage.kind)
        : computeCounter(
            activities.map((a) => a.facts),
            stage.kind,
            this.settings.counterThresholdMin,
            this.now,
          );
    const prev = this.items.get(card.id);
    const counter = prev !== undefined && sameCounter(prev.counter, fresh) ? prev.counter : fresh;
    if (prev !== undefined && prev.card === card && prev.counter === counter && prev.activities === activities) {
      return prev;
    }
    const item: CardItem = { card, counter, activities };
    this.items.set(card.id, item);
    if (counter.state === "idle") this.idle.add(card.id);
    else this.idle.delete(card.id);
    return item;
  }

  /** One column; `stageIds` is set for the initial column, which also shows orphaned cards. */
  private buildColumn(stage: Stage, stageIds: Set<string> | null, old: ColumnData | undefined): ColumnData {
    const cards: CardData[] = [];
    const add = (ids: Set<string> | undefined) => ids?.forEach((id) => cards.push(this.cards.get(id)!));
    add(this.members.get(stage.id));
    if (stageIds !== null) {
      for (const [raw, ids] of this.members) if (!stageIds.has(raw)) add(ids);
    }
    cards.sort((a, b) => compareBytes(a.pos, b.pos) || compareBytes(a.id, b.id));
    const items = cards.map((card) => this.itemOf(card, stage));
    if (old !== undefined && old.stage === stage && sameItems(old.items, items)) return old;
    const sums = Sums.empty();
    for (const { card } of items) sums.add(card.currency, card.amount);
    const column: ColumnData = { stage, items, sums: sums.sorted() };
    columnSums.set(column, sums);
    return column;
  }

  /**
   * `old` with the items that left it taken out and the cards that entered it (or changed in
   * it) put in, by binary search: what a move costs is its two cards, not the column's.
   */
  private patchColumn(old: ColumnData, leaving: readonly CardItem[], entering: readonly CardData[]): ColumnData {
    const added = entering.map((card) => this.itemOf(card, old.stage));
    // A card touched but shown the same (an unrelated field of its Y.Map): nothing to patch.
    const kept = new Set(added);
    const left = new Set(leaving);
    const removed = leaving.filter((item) => !kept.has(item));
    const fresh = added.filter((item) => !left.has(item));
    if (removed.length === 0 && fresh.length === 0) return old;
    const items = patchSorted(old.items, removed, fresh);
    const sums = (columnSums.get(old) ?? sumsOf(old.items)).copy();
    for (const { card } of removed) sums.remove(card.currency, card.amount);
    for (const { card } of fresh) sums.add(card.currency, card.amount);
    const column: ColumnData = { stage: old.stage, items, sums: sums.sorted() };
    columnSums.set(column, sums);
    columnChanges.set(column, { previous: old, removed, added: fresh });
    return column;
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function sumsOf(items: readonly CardItem[]): Sums {
  const sums = Sums.empty();
  for (const { card } of items) sums.add(card.currency, card.amount);
  return sums;
}

function sameWorkload(a: readonly Workload[], b: readonly Workload[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i]!;
      if (x.responsible !== y.responsible || x.cards !== y.cards || x.lit !== y.lit) return false;
      if (x.amounts.size !== y.amounts.size) return false;
      for (const [currency, amount] of x.amounts) if (y.amounts.get(currency) !== amount) return false;
      return true;
    })
  );
}

// ---------------------------------------------------------------------------------------------

function sameSettings(a: Settings, b: Settings): boolean {
  return (
    a.name === b.name &&
    a.entity === b.entity &&
    a.currency === b.currency &&
    a.counterThresholdMin === b.counterThresholdMin &&
    a.lostReasons.length === b.lostReasons.length &&
    a.lostReasons.every((reason, i) => reason === b.lostReasons[i])
  );
}

function sameStage(a: Stage, b: Stage): boolean {
  return (
    a.name === b.name &&
    a.color === b.color &&
    a.kind === b.kind &&
    a.pos === b.pos &&
    a.probabilitySet === b.probabilitySet &&
    a.rotDays === b.rotDays &&
    a.required.length === b.required.length &&
    a.required.every((key, i) => key === b.required[i])
  );
}

function sameCard(a: CardData, b: CardData): boolean {
  if (
    a.title !== b.title ||
    a.stage !== b.stage ||
    a.pos !== b.pos ||
    a.amount !== b.amount ||
    a.currency !== b.currency ||
    a.responsible !== b.responsible ||
    a.client !== b.client ||
    a.email !== b.email ||
    a.createdAt !== b.createdAt ||
    a.updatedAt !== b.updatedAt ||
    a.archivedAt !== b.archivedAt ||
    a.closeDate !== b.closeDate ||
    a.lostReason !== b.lostReason ||
    a.timelineAt !== b.timelineAt ||
    a.avatar !== b.avatar ||
    a.avatarAt !== b.avatarAt ||
    a.avatarReason !== b.avatarReason ||
    a.fields.size !== b.fields.size
  ) {
    return false;
  }
  for (const [key, value] of a.fields) {
    if (!b.fields.has(key) || JSON.stringify(value) !== JSON.stringify(b.fields.get(key))) return false;
  }
  return true;
}

function sameActivities(a: readonly Activity[], b: readonly Activity[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return (
      x.id === y.id &&
      x.card === y.card &&
      x.kind === y.kind &&
      x.subject === y.subject &&
      x.facts.deadline === y.facts.deadline &&
      x.facts.remindMin === y.facts.remindMin &&
      x.facts.direction === y.facts.direction &&
      x.facts.done === y.facts.done &&
      x.facts.responsible === y.facts.responsible
    );
  });
}

function sameCounter(a: Counter, b: Counter): boolean {
  return (
    a.count === b.count && a.lit === b.lit && a.incoming === b.incoming && a.next === b.next && a.state === b.state
  );
}

function sameItems(a: readonly CardItem[], b: readonly CardItem[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

const EMPTY_COUNTERS = new Map<StageKind, Counter>();

/** The counter of a card with no activity in a stage of `kind` (the same object every time). */
function emptyCounter(kind: StageKind): Counter {
  let counter = EMPTY_COUNTERS.get(kind);
  if (counter === undefined) {
    counter = Object.freeze(computeCounter([], kind, 0, 0));
    EMPTY_COUNTERS.set(kind, counter);
  }
  return counter;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function sortedByKey<V>(map: Map<string, V>): Map<string, V> {
  return new Map([...map.entries()].sort(([a], [b]) => compareBytes(a, b)));
}
