// The parts of the board page that follow every change of the store on their own: the columns,
// and what sums them up as the filter shows them (the toolbar's totals, the filter's count, the
// forecast, the phone's stage switcher). Each subscribes to the store and reads the views through
// the page's one `ViewCache`, so a column changed by a move is filtered once; the page around
// them renders only for what it reads itself (pageSnapshot.ts). A remote move thus re-renders
// these few components and the two columns' cards, not the header and the toolbar.

import { Fragment } from "preact";
import { useLayoutEffect, useMemo, useState } from "preact/hooks";
import type { BoardSnapshot, BoardStore } from "../store/boardStore";
import type { FieldInfo } from "../ui/fields";
import type { CompiledFilter } from "../ui/filters";
import { formatSums } from "../ui/format";
import { t } from "../ui/i18n";
import type { CardPresence } from "../ui/presence";
import type { ActivityStatus } from "../ui/activityStatus";
import { boardTotals, StageSwitcher } from "./BoardChrome";
import { Column } from "./Column";
import { FilterDetails } from "./FilterBar";
import { ForecastPanel } from "./ForecastPanel";
import { memo } from "./memo";
import { useColumnViews, type ColumnView, type ViewCache } from "./useBoardFilter";

/**
 * The store's latest snapshot; the component re-renders at each change. Subscribed in the commit
 * that mounts it (a layout effect, not an effect after the paint): a flush in between would
 * leave it showing an older board than the page beside it, which may say `connected` by then.
 */
export function useStoreSnapshot(store: BoardStore): BoardSnapshot {
  const [snapshot, setSnapshot] = useState(store.current);
  useLayoutEffect(() => {
    setSnapshot(store.current);
    return store.subscribe(setSnapshot);
  }, [store]);
  return snapshot;
}

/** What every live part takes: the store, the filter and the page's cache of views. */
export interface LiveViews {
  store: BoardStore;
  compiled: CompiledFilter;
  cache: ViewCache;
}

function useLiveViews({ store, compiled, cache }: LiveViews): {
  snapshot: BoardSnapshot;
  views: readonly ColumnView[];
} {
  const snapshot = useStoreSnapshot(store);
  const views = useColumnViews(snapshot.columns, compiled, snapshot.now, cache);
  return { snapshot, views };
}

export interface BoardColumnsProps extends LiveViews {
  /** The activity statuses the board's filter shows (the bar's pressed segments). */
  states: readonly ActivityStatus[];
  fields: readonly FieldInfo[];
  quickCreateFields: readonly FieldInfo[];
  presence: ReadonlyMap<string, CardPresence>;
  namesVersion: number;
  currency: string;
  /** The stage whose quick-create form is open, and the one whose stage form is. */
  quickCreate: string | null;
  editing: string | null;
  /** Whether the add-stage buttons are offered. */
  editStages: boolean;
  onAddStage: (kind: "progress" | "failure") => void;
  onClearFilters: () => void;
}

function BoardColumnsImpl(props: BoardColumnsProps) {
  const { snapshot, views } = useLiveViews(props);
  const lastProgressIndex = views.reduce(
    (last, v, i) => (v.column.stage.kind === "initial" || v.column.stage.kind === "progress" ? i : last),
    -1,
  );
  return (
    <>
      {views.length === 0 && (
        <div class="board-filtered-empty">
          <p>{t("board.noStageShown")}</p>
          <button type="button" class="button" onClick={props.onClearFilters}>
            {t("board.clearFilters")}
          </button>
        </div>
      )}
      {views.map((view, i) => (
        <Fragment key={view.column.stage.id}>
          <Column
            column={view.column}
            view={view}
            states={props.states}
            fields={props.fields}
            quickCreateFields={props.quickCreateFields}
            presence={props.presence}
            now={snapshot.now}
            namesVersion={props.namesVersion}
            boardCurrency={props.currency}
            quickCreateOpen={props.quickCreate === view.column.stage.id}
            editing={props.editing === view.column.stage.id}
          />
          {i === lastProgressIndex && props.editStages && (
            <button
              type="button"
              class="add-stage"
              data-action="add-stage"
              onClick={() => props.onAddStage("progress")}
              title={t("board.addStage")}
            >
              <span aria-hidden="true">+</span>
              <span class="visually-hidden">{t("board.addStage")}</span>
            </button>
          )}
        </Fragment>
      ))}
      {props.editStages && (
        <button
          type="button"
          class="add-stage add-failure-stage"
          data-action="add-failure-stage"
          onClick={() => props.onAddStage("failure")}
          title={t("board.addFailureStage")}
        >
          <span aria-hidden="true">+</span>
          <span class="visually-hidden">{t("board.addFailureStage")}</span>
        </button>
      )}
    </>
  );
}

/** The board's columns as the filter shows them, with the add-stage buttons. */
export const BoardColumns = memo(BoardColumnsImpl);

function BoardTotalsImpl(props: LiveViews & { currency: string }) {
  const { views } = useLiveViews(props);
  // Open deals (initial and progress stages), won and lost apart, of what is shown: a filter
  // narrows the totals as it narrows the columns.
  const totals = useMemo(() => boardTotals(views), [views]);
  const { currency } = props;
  return (
    <span class="toolbar-totals">
      <span data-board-total="open" title={t("board.openTitle")}>
        {t("board.openCards", { count: totals.open.count })} · {formatSums(totals.open.sums, currency)}
      </span>
      {totals.won.count > 0 && (
        <span class="total-won" data-board-total="won">
          {t("board.won", { count: totals.won.count })} · {formatSums(totals.won.sums, currency)}
        </span>
      )}
      {totals.lost.count > 0 && (
        <span class="total-lost" data-board-total="lost">
          {t("board.lost", { count: totals.lost.count })} · {formatSums(totals.lost.sums, currency)}
        </span>
      )}
    </span>
  );
}

/** The toolbar's totals of open, won and lost deals. */
export const BoardTotals = memo(BoardTotalsImpl);

type FilterDetailsProps = Parameters<typeof FilterDetails>[0];

function LiveFilterDetailsImpl(props: LiveViews & Omit<FilterDetailsProps, "shown" | "total">) {
  const { snapshot, views } = useLiveViews(props);
  const shown = useMemo(() => views.reduce((n, v) => n + v.items.length, 0), [views]);
  return (
    <FilterDetails
      filter={props.filter}
      setFilter={props.setFilter}
      open={props.open}
      stages={props.stages}
      people={props.people}
      shown={shown}
      total={snapshot.items.size}
      nameOf={props.nameOf}
      onSaveView={props.onSaveView}
    />
  );
}

/** The filter's details, with how many cards it shows of the board's. */
export const LiveFilterDetails = memo(LiveFilterDetailsImpl);

function LiveStageSwitcherImpl(props: LiveViews & { current: string | null; onSwitch: (stage: string) => void }) {
  const { views } = useLiveViews(props);
  if (views.length === 0) return null;
  return <StageSwitcher columns={views} current={props.current} onSwitch={props.onSwitch} />;
}

/** A phone's stage switcher, over the stages shown. */
export const LiveStageSwitcher = memo(LiveStageSwitcherImpl);

function LiveForecastImpl(props: LiveViews & { currency: string }) {
  const { views } = useLiveViews(props);
  return <ForecastPanel columns={views} currency={props.currency} />;
}

/** The forecast panel, over the columns shown. */
export const LiveForecast = memo(LiveForecastImpl);
