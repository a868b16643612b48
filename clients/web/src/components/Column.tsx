// One stage column: header (name, count, sum, +, pencil), the quick-create and stage forms when
// open, and its cards. Long columns are virtualised. The column is a drop target for cards (drop
// below its last card) and for stages (reorder: the closest edge, left or right, says on which
// side); its header is the drag handle of the stage. Who may not edit stages gets no handle and
// no pencil; who may not create cards no +.

import { autoScrollForElements } from "@atlaskit/pragmatic-drag-and-drop-auto-scroll/element";
import { combine } from "@atlaskit/pragmatic-drag-and-drop/combine";
import { draggable, dropTargetForElements } from "@atlaskit/pragmatic-drag-and-drop/element/adapter";
import { attachClosestEdge } from "@atlaskit/pragmatic-drag-and-drop-hitbox/closest-edge/attach-closest-edge";
import { extractClosestEdge } from "@atlaskit/pragmatic-drag-and-drop-hitbox/closest-edge/extract-closest-edge";
import {
  elementScroll,
  measureElement,
  observeElementOffset,
  observeElementRect,
  Virtualizer,
} from "@tanstack/virtual-core";
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import type { CardItem, ColumnData } from "../store/boardStore";
import type { FieldInfo } from "../ui/fields";
import { formatSums } from "../ui/format";
import { t } from "../ui/i18n";
import type { CardPresence } from "../ui/presence";
import { CARD_GAP, estimateCardHeight, OVERSCAN, shouldVirtualize } from "../ui/virtual";
import { isStale } from "../model/requirements";
import type { ActivityStatus } from "../ui/activityStatus";
import { ActivityBar } from "./ActivityBar";
import { CardView } from "./CardView";
import { ColumnStats } from "./ColumnStats";
import { StageRulesForm } from "./StageRulesForm";
import { useBoard } from "./context";
import { QuickCreateForm, StageForm } from "./forms";
import { memo } from "./memo";
import type { ColumnView } from "./useBoardFilter";

export interface ColumnProps {
  column: ColumnData;
  /** The column as the board's filter shows it (useBoardFilter.ts): its cards, sums, bar counts. */
  view: ColumnView;
  /** The activity statuses the board's filter shows (the bar's pressed segments). */
  states: readonly ActivityStatus[];
  fields: readonly FieldInfo[];
  quickCreateFields: readonly FieldInfo[];
  presence: ReadonlyMap<string, CardPresence>;
  now: number;
  namesVersion: number;
  boardCurrency: string;
  quickCreateOpen: boolean;
  editing: boolean;
}

function ColumnImpl(props: ColumnProps) {
  const { column, view, states, fields, presence, now, namesVersion, boardCurrency } = props;
  const board = useBoard();
  const { stage } = column;
  const sectionRef = useRef<HTMLElement>(null);
  const headerRef = useRef<HTMLElement>(null);
  const [dropEdge, setDropEdge] = useState<"left" | "right" | null>(null);
  const [cardOver, setCardOver] = useState(false);
  const shown = view.items;
  const headingId = `stage-${stage.id}`;

  useEffect(() => {
    const section = sectionRef.current;
    const header = headerRef.current;
    if (section === null || header === null) return;
    const { moveCards, editStages } = board.can;
    if (!moveCards && !editStages) return;
    const parts = [
      dropTargetForElements({
        element: section,
        canDrop: ({ source }) =>
          (source.data.type === "card" && moveCards) ||
          (editStages && source.data.type === "stage" && source.data.stageId !== stage.id),
        getData: ({ input, element, source }) =>
          source.data.type === "stage"
            ? attachClosestEdge(
                { type: "column", stageId: stage.id },
                { input, element, allowedEdges: ["left", "right"] },
              )
            : { type: "column", stageId: stage.id },
        onDrag: ({ self, source, location }) => {
          if (source.data.type === "stage") {
            const edge = extractClosestEdge(self.data);
            setDropEdge(edge === "left" || edge === "right" ? edge : null);
          } else {
            setCardOver(location.current.dropTargets[0]?.element === section);
          }
        },
        onDragLeave: () => {
          setDropEdge(null);
          setCardOver(false);
        },
        onDrop: () => {
          setDropEdge(null);
          setCardOver(false);
        },
      }),
    ];
    if (editStages)
      parts.push(draggable({ element: header, getInitialData: () => ({ type: "stage", stageId: stage.id }) }));
    return combine(...parts);
  }, [stage.id, board.can]);

  const sum = formatSums(view.sums, boardCurrency);
  const count = view.filtered
    ? t("column.shownOf", { shown: shown.length, total: t("common.cards", { count: column.items.length }) })
    : t("common.cards", { count: column.items.length });
  return (
    <section
      ref={sectionRef}
      class="column"
      data-stage-id={stage.id}
      data-stage-kind={stage.kind}
      data-drop-edge={dropEdge ?? undefined}
      data-card-over={cardOver ? "" : undefined}
      style={`--stage:${validColor(stage.color)}`}
      aria-labelledby={headingId}
    >
      <header
        ref={headerRef}
        class="column-header"
        title={board.can.editStages ? t("column.dragToReorder") : undefined}
      >
        <div class="column-title-row">
          <h2 id={headingId} class="column-name" data-stage-name="">
            {stage.name}
          </h2>
          <span
            class={view.filtered ? "column-count filtered" : "column-count"}
            data-stage-count=""
            data-stage-total={column.items.length}
            aria-label={count}
            title={count}
          >
            {shown.length}
          </span>
          {board.can.editStages && (
            <button
              type="button"
              class="icon-button"
              data-action="edit-stage"
              aria-label={t("column.edit", { stage: stage.name })}
              aria-expanded={props.editing}
              onClick={() => board.editStage(props.editing ? null : stage.id)}
            >
              <PencilIcon />
            </button>
          )}
        </div>
        <div class="column-sum-row">
          <span class={view.sums.size > 1 ? "column-sum multi" : "column-sum"} data-stage-sum="" title={sum}>
            {sum}
          </span>
          {view.filtered && (
            <span class="column-filtered" data-stage-filtered="">
              {t("column.of", { shown: shown.length, total: t("common.cards", { count: column.items.length }) })}
            </span>
          )}
        </div>
        <ColumnStats stage={stage} weighted={view.weighted} currency={boardCurrency} />
        <ActivityBar stageName={stage.name} counts={view.statuses} selected={states} onSelect={board.filterByStatus} />
        {board.can.createCards && (
          <button
            type="button"
            class="add-card"
            data-action="add-card"
            aria-label={t("column.addCard", { stage: stage.name })}
            aria-expanded={props.quickCreateOpen}
            onClick={() => board.openQuickCreate(props.quickCreateOpen ? null : stage.id)}
          >
            +
          </button>
        )}
      </header>
      {props.editing && board.can.editStages && <StageForm stage={stage} />}
      {props.editing && board.can.editStages && <StageRulesForm stage={stage} />}
      {props.quickCreateOpen && board.can.createCards && (
        <QuickCreateForm stageId={stage.id} fields={props.quickCreateFields} />
      )}
      <Cards items={shown} stage={stage} fields={fields} presence={presence} now={now} namesVersion={namesVersion} />
    </section>
  );
}

export const Column = memo(ColumnImpl);

interface CardsProps {
  items: readonly CardItem[];
  /** The column's stage: a card that sat idle past its `rotDays` is shown as stale. */
  stage: Stage;
  fields: readonly FieldInfo[];
  presence: ReadonlyMap<string, CardPresence>;
  now: number;
  namesVersion: number;
}

function useAutoScroll(ref: { current: HTMLElement | null }) {
  useEffect(() => {
    const element = ref.current;
    if (element === null) return;
    return autoScrollForElements({ element });
  }, [ref]);
}

/** A column's cards: all of them in the DOM, or only the visible window of a long column. */
function Cards(props: CardsProps) {
  return shouldVirtualize(props.items.length) ? <VirtualCards {...props} /> : <CardList {...props} />;
}

function CardList({ items, stage, fields, presence, now, namesVersion }: CardsProps) {
  const ref = useRef<HTMLDivElement>(null);
  useAutoScroll(ref);
  return (
    // An empty list is no list (axe: a list needs its items), just the "No cards" line.
    <div ref={ref} class="column-cards" role={items.length > 0 ? "list" : undefined}>
      {items.map((item) => (
        <div
          key={item.card.id}
          role="listitem"
          class="card-slot"
          data-stale={staleness(stage, item, now)}
          title={staleness(stage, item, now) === "" ? t("column.stale") : undefined}
        >
          <CardView
            item={item}
            stageId={stage.id}
            fields={fields}
            presence={presence.get(item.card.id)}
            now={now}
            namesVersion={namesVersion}
          />
        </div>
      ))}
      {items.length === 0 && <p class="column-empty">{t("column.noCards")}</p>}
    </div>
  );
}

/** A long column: only the cards in view (and an overscan) are in the DOM. */
function VirtualCards({ items, stage, fields, presence, now, namesVersion }: CardsProps) {
  const board = useBoard();
  const ref = useRef<HTMLDivElement>(null);
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  useAutoScroll(ref);
  const itemsRef = useRef(items);
  itemsRef.current = items;
  const estimate = estimateCardHeight(fields.length);
  // A new function only with new items: the virtualizer re-reads every key when it changes (a
  // pass over the column), which a re-render for a scroll or a measure does not need.
  const getItemKey = useMemo(() => (index: number) => items[index]?.card.id ?? index, [items]);
  // The height last measured in this column, kept by measureSlot (null: none yet), under the
  // plain estimate of the fields shown (a change of fields starts over).
  const kept = useRef<KeptHeight>({ estimate, measured: null });
  if (kept.current.estimate !== estimate) kept.current = { estimate, measured: null };
  const height = kept.current;
  const options = {
    count: items.length,
    getScrollElement: () => ref.current,
    // A card never measured (one a move or a scroll brings into view) is guessed at the height
    // last measured in this column: most cards have it, and a right guess is no re-measure, no
    // pass over the column's positions and no second render. Called for every unmeasured card
    // of the column at each change of its count: a field read, no lookup.
    estimateSize: () => height.measured ?? height.estimate,
    getItemKey,
    overscan: OVERSCAN,
    gap: CARD_GAP,
    paddingStart: 2,
    paddingEnd: 8,
    scrollToFn: elementScroll,
    observeElementRect,
    observeElementOffset,
    measureElement: measureSlot,
    initialRect: { width: 272, height: 600 },
    onChange: () => rerender(0),
  };
  const [virtualizer] = useState(() => new Virtualizer<HTMLDivElement, HTMLDivElement>(options));
  heights.set(virtualizer, height);
  virtualizer.setOptions(options);
  useLayoutEffect(() => virtualizer._didMount(), [virtualizer]);
  useLayoutEffect(() => {
    virtualizer._willUpdate();
    // A card that must take the focus (a keyboard move) but is out of view: scroll to it.
    const pending = board.pendingFocus();
    if (pending !== null) {
      const index = items.findIndex((item) => item.card.id === pending);
      if (index !== -1 && !virtualizer.getVirtualItems().some((v) => v.index === index)) {
        virtualizer.scrollToIndex(index, { align: "auto" });
      }
    }
  });
  const scroller = useMemo(
    () => (card: string) => {
      const index = itemsRef.current.findIndex((item) => item.card.id === card);
      if (index !== -1) virtualizer.scrollToIndex(index, { align: "auto" });
    },
    [virtualizer],
  );
  useEffect(() => {
    const element = ref.current;
    if (element === null) return;
    (element as HTMLElement & { scrollToCard?: (card: string) => void }).scrollToCard = scroller;
  }, [scroller]);

  const virtualItems = virtualizer.getVirtualItems();
  return (
    <div ref={ref} class="column-cards" role="list" data-virtual="">
      <div class="virtual-space" style={`height:${virtualizer.getTotalSize()}px`}>
        {virtualItems.map((v) => {
          const item = items[v.index];
          if (item === undefined) return null;
          return (
            <div
              key={item.card.id}
              ref={virtualizer.measureElement}
              data-index={v.index}
              role="listitem"
              class="card-slot virtual-slot"
              data-stale={staleness(stage, item, now)}
              title={staleness(stage, item, now) === "" ? t("column.stale") : undefined}
              // An object, not a string: a shifted slot then sets its transform alone, where a
              // string would make the browser parse the slot's whole inline style again.
              style={{ transform: `translateY(${v.start}px)` }}
            >
              <CardView
                item={item}
                stageId={stage.id}
                fields={fields}
                presence={presence.get(item.card.id)}
                now={now}
                namesVersion={namesVersion}
              />
            </div>
          );
        })}
      </div>
    </div>
  );
}

/**
 * A card slot's height for the virtualizer. From its ResizeObserver entry (read after the
 * frame's layout) as the stock `measureElement` does; when a slot is mounted (no entry), the
 * height kept for its card's key, or the estimate, instead of reading `offsetHeight`, which
 * would force a layout of the page in the middle of a render (a remote move mounts a card or
 * two). The observer's first entry for the slot, in the same frame, gives its real height.
 */
function measureSlot(
  element: HTMLDivElement,
  entry: ResizeObserverEntry | undefined,
  instance: Virtualizer<HTMLDivElement, HTMLDivElement>,
): number {
  if (entry !== undefined) {
    const size = measureElement(element, entry, instance);
    const kept = heights.get(instance);
    if (kept !== undefined) kept.measured = size;
    return size;
  }
  const index = instance.indexFromElement(element);
  return instance.itemSizeCache.get(instance.options.getItemKey(index)) ?? instance.options.estimateSize(index);
}

/** The last card height measured in a column (null: none yet) under the fields' plain estimate. */
interface KeptHeight {
  estimate: number;
  measured: number | null;
}

/** Per column's virtualizer: its {@link KeptHeight}, which measureSlot updates. */
const heights = new WeakMap<Virtualizer<HTMLDivElement, HTMLDivElement>, KeptHeight>();

/** A card slot's `data-stale`: "" for a card idle past the stage's `rotDays`, else none (only the cards rendered are tested). */
function staleness(stage: Stage, item: CardItem, now: number): "" | undefined {
  return isStale(stage, item.card, item.activities, now) ? "" : undefined;
}

function validColor(color: string): string {
  return /^#[0-9a-fA-F]{6}$/.test(color) ? color : "#8a94a6";
}

function PencilIcon() {
  return (
    <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">
      <path
        d="M11.7 1.3a1 1 0 0 1 1.4 0l1.6 1.6a1 1 0 0 1 0 1.4L5.5 13.5 2 14l.5-3.5 9.2-9.2z"
        fill="none"
        stroke="currentColor"
        stroke-width="1.4"
        stroke-linejoin="round"
      />
    </svg>
  );
}
