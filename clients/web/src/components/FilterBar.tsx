// Find and filter in the board toolbar (issue 20): the search box, the Filters button and the
// saved views (`FilterTools`, inside the toolbar), then under it the filter form when open and,
// while anything is filtered, the line that says so: how many cards are shown of how many, one
// chip per part of the filter (× takes it out), Clear, and Save as a view (`FilterDetails`).
// The state itself lives in the address (useBoardFilter.ts); these only read and change it.

import { useEffect, useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import { ACTIVITY_STATUSES, type ActivityStatus } from "../ui/activityStatus";
import {
  activeParts,
  isFiltering,
  MAX_QUERY_LENGTH,
  MAX_VIEW_NAME,
  NO_FILTER,
  parseFilter,
  toggled,
  validDay,
  viewOf,
  type BoardFilter,
  type DayRange,
  type SavedView,
} from "../ui/filters";
import { t } from "../ui/i18n";
import type { FilterChange } from "./useBoardFilter";
import { FormError } from "./forms";

// The texts, read when rendered, so a switch of language shows at once.
const TEXT = {
  get search() {
    return t("filter.search");
  },
  get searchHint() {
    return t("filter.searchHint");
  },
  get filters() {
    return t("filter.filters");
  },
  get views() {
    return t("filter.views");
  },
  get pickView() {
    return t("filter.pickView");
  },
  get form() {
    return t("filter.form");
  },
  get responsible() {
    return t("field.responsible");
  },
  get unassigned() {
    return t("filter.unassigned");
  },
  get state() {
    return t("filter.state");
  },
  get stage() {
    return t("board.stages");
  },
  get created() {
    return t("filter.created");
  },
  get lastActivity() {
    return t("filter.lastActivity");
  },
  get from() {
    return t("filter.from");
  },
  get to() {
    return t("filter.to");
  },
  get unprocessed() {
    return t("filter.unprocessed");
  },
  shown: (shown: number, total: number) => t("filter.shown", { shown, total: t("common.cards", { count: total }) }),
  get clear() {
    return t("board.clearFilters");
  },
  get save() {
    return t("filter.save");
  },
  get saveAs() {
    return t("filter.saveAs");
  },
  get confirmSave() {
    return t("common.save");
  },
  get cancel() {
    return t("common.cancel");
  },
  deleteView: (name: string) => t("filter.deleteView", { name }),
  remove: (what: string) => t("filter.remove", { what }),
  status: {
    get overdue() {
      return t("filter.overdue");
    },
    get today() {
      return t("filter.today");
    },
    get planned() {
      return t("filter.planned");
    },
    get none() {
      return t("filter.none");
    },
  } satisfies Record<ActivityStatus, string>,
  search_: (q: string) => t("filter.quoted", { q }),
};

export interface Person {
  id: string;
  name: string;
}

type SetFilter = (next: BoardFilter, how?: FilterChange) => void;

/** How long the search waits after a keystroke before it filters (a 10,000-card board). */
const SEARCH_DELAY_MS = 120;

/** Inside the toolbar: search, the Filters button (with how many parts are set), saved views. */
export function FilterTools({
  filter,
  setFilter,
  open,
  onToggle,
  views,
  onDeleteView,
}: {
  filter: BoardFilter;
  setFilter: SetFilter;
  open: boolean;
  onToggle: () => void;
  views: readonly SavedView[];
  onDeleteView: (name: string) => void;
}) {
  const [text, setText] = useState(filter.q);
  const timer = useRef<number | null>(null);
  const filterRef = useRef(filter);
  filterRef.current = filter;
  // The address changed the search (back, forward, Clear, a view): the box follows.
  useEffect(() => {
    if (timer.current === null) setText(filter.q);
  }, [filter.q]);
  useEffect(
    () => () => {
      if (timer.current !== null) window.clearTimeout(timer.current);
    },
    [],
  );
  const commit = (q: string) => {
    if (timer.current !== null) window.clearTimeout(timer.current);
    timer.current = null;
    if (q !== filterRef.current.q) setFilter({ ...filterRef.current, q }, "typing");
  };
  const parts = activeParts(filter);
  const current = viewOf(views, filter);
  return (
    <>
      <input
        type="search"
        class="filter-search"
        name="q"
        data-filter-search=""
        aria-label={TEXT.search}
        placeholder={TEXT.searchHint}
        title={TEXT.searchHint}
        maxLength={MAX_QUERY_LENGTH}
        value={text}
        onInput={(event) => {
          const q = event.currentTarget.value;
          setText(q);
          if (timer.current !== null) window.clearTimeout(timer.current);
          timer.current = window.setTimeout(() => commit(q), SEARCH_DELAY_MS);
        }}
        onKeyDown={(event) => {
          if (event.key === "Enter") commit(event.currentTarget.value);
          if (event.key === "Escape" && event.currentTarget.value !== "") {
            // Escape empties the box first; a second one closes what is open.
            event.preventDefault();
            setText("");
            commit("");
          }
        }}
      />
      <button
        type="button"
        class="button toggle"
        data-action="toggle-filters"
        aria-expanded={open}
        aria-pressed={parts > 0}
        onClick={onToggle}
      >
        {TEXT.filters}
        {parts > 0 && (
          <span class="badge" data-filter-count={parts}>
            {parts}
          </span>
        )}
      </button>
      {views.length > 0 && (
        <span class="saved-views">
          <select
            data-saved-views=""
            aria-label={TEXT.views}
            value={current?.name ?? ""}
            onChange={(event) => {
              const view = views.find((v) => v.name === event.currentTarget.value);
              if (view !== undefined) setFilter(parseFilter(view.query));
            }}
          >
            <option value="">{TEXT.pickView}</option>
            {views.map((v) => (
              <option key={v.name} value={v.name} data-saved-view={v.name}>
                {v.name}
              </option>
            ))}
          </select>
          {current !== null && (
            <button
              type="button"
              class="icon-button"
              data-action="delete-view"
              aria-label={TEXT.deleteView(current.name)}
              title={TEXT.deleteView(current.name)}
              onClick={() => onDeleteView(current.name)}
            >
              ×
            </button>
          )}
        </span>
      )}
    </>
  );
}

/** Under the toolbar: the filter form (when open) and the filtered line (when filtering). */
export function FilterDetails({
  filter,
  setFilter,
  open,
  stages,
  people,
  shown,
  total,
  nameOf,
  onSaveView,
}: {
  filter: BoardFilter;
  setFilter: SetFilter;
  open: boolean;
  stages: readonly Stage[];
  people: readonly Person[];
  shown: number;
  total: number;
  nameOf: (user: string) => string;
  /** Saves the current filter under a name; returns an error message, or null. */
  onSaveView: (name: string) => string | null;
}) {
  const filtering = isFiltering(filter);
  return (
    <>
      {open && <FilterForm filter={filter} setFilter={setFilter} stages={stages} people={people} />}
      {filtering && (
        <div class="filter-status" data-filter-status="" role="status">
          <strong data-filter-summary="" data-shown={shown} data-total={total}>
            {TEXT.shown(shown, total)}
          </strong>
          <Chips filter={filter} setFilter={setFilter} stages={stages} nameOf={nameOf} />
          <button type="button" class="button small" data-action="clear-filters" onClick={() => setFilter(NO_FILTER)}>
            {TEXT.clear}
          </button>
          <SaveView onSave={onSaveView} />
        </div>
      )}
    </>
  );
}

function FilterForm({
  filter,
  setFilter,
  stages,
  people,
}: {
  filter: BoardFilter;
  setFilter: SetFilter;
  stages: readonly Stage[];
  people: readonly Person[];
}) {
  const range = (which: "created" | "lastActivity", end: keyof DayRange, value: string) =>
    setFilter({ ...filter, [which]: { ...filter[which], [end]: validDay(value) } });
  const dates = (which: "created" | "lastActivity", label: string) => (
    <fieldset class="filter-group filter-dates">
      <legend>{label}</legend>
      <label>
        <span>{TEXT.from}</span>
        <input
          type="date"
          name={`${which}-from`}
          value={filter[which].from ?? ""}
          onChange={(e) => range(which, "from", e.currentTarget.value)}
        />
      </label>
      <label>
        <span>{TEXT.to}</span>
        <input
          type="date"
          name={`${which}-to`}
          value={filter[which].to ?? ""}
          onChange={(e) => range(which, "to", e.currentTarget.value)}
        />
      </label>
    </fieldset>
  );
  return (
    <form
      class="filter-panel"
      data-form="filters"
      aria-label={TEXT.form}
      onSubmit={(e) => e.preventDefault()}
      onKeyDown={(e) => e.key === "Enter" && e.preventDefault()}
    >
      <fieldset class="filter-group">
        <legend>{TEXT.responsible}</legend>
        {people.map((person) => (
          <label key={person.id} class="filter-check">
            <input
              type="checkbox"
              data-filter-responsible={person.id}
              checked={filter.responsible.includes(person.id)}
              onChange={() => setFilter({ ...filter, responsible: toggled(filter.responsible, person.id) })}
            />
            <span>{person.id === "" ? TEXT.unassigned : person.name}</span>
          </label>
        ))}
      </fieldset>
      <fieldset class="filter-group">
        <legend>{TEXT.state}</legend>
        {ACTIVITY_STATUSES.map((status) => (
          <label key={status} class="filter-check">
            <input
              type="checkbox"
              data-filter-state={status}
              checked={filter.state.includes(status)}
              onChange={() =>
                setFilter({
                  ...filter,
                  state: ACTIVITY_STATUSES.filter((s) => toggled(filter.state, status).includes(s)),
                })
              }
            />
            <span>{TEXT.status[status]}</span>
          </label>
        ))}
        <label class="filter-check">
          <input
            type="checkbox"
            data-filter-unprocessed=""
            checked={filter.unprocessed}
            onChange={() => setFilter({ ...filter, unprocessed: !filter.unprocessed })}
          />
          <span>{TEXT.unprocessed}</span>
        </label>
      </fieldset>
      <fieldset class="filter-group">
        <legend>{TEXT.stage}</legend>
        {stages.map((stage) => (
          <label key={stage.id} class="filter-check">
            <input
              type="checkbox"
              data-filter-stage={stage.id}
              checked={filter.stage.includes(stage.id)}
              onChange={() => setFilter({ ...filter, stage: toggled(filter.stage, stage.id) })}
            />
            <span>{stage.name}</span>
          </label>
        ))}
      </fieldset>
      {dates("created", TEXT.created)}
      {dates("lastActivity", TEXT.lastActivity)}
    </form>
  );
}

function rangeLabel(range: DayRange): string {
  if (range.from !== null && range.to !== null)
    return range.from === range.to ? range.from : `${range.from} – ${range.to}`;
  return range.from !== null ? `from ${range.from}` : `until ${range.to}`;
}

/** One chip per part of the filter; pressing it takes that part out. */
function Chips({
  filter,
  setFilter,
  stages,
  nameOf,
}: {
  filter: BoardFilter;
  setFilter: SetFilter;
  stages: readonly Stage[];
  nameOf: (user: string) => string;
}) {
  const chips: { part: string; label: string; without: BoardFilter }[] = [];
  if (filter.q.trim() !== "")
    chips.push({ part: "q", label: TEXT.search_(filter.q.trim()), without: { ...filter, q: "" } });
  if (filter.responsible.length > 0) {
    const names = filter.responsible.map((id) => (id === "" ? TEXT.unassigned : nameOf(id)));
    chips.push({
      part: "responsible",
      label: t("filter.chip", { what: TEXT.responsible, values: names.join(", ") }),
      without: { ...filter, responsible: [] },
    });
  }
  if (filter.state.length > 0) {
    const label = t("filter.chip", {
      what: TEXT.state,
      values: filter.state.map((s) => TEXT.status[s].toLowerCase()).join(", "),
    });
    chips.push({ part: "state", label, without: { ...filter, state: [] } });
  }
  if (filter.unprocessed)
    chips.push({ part: "unprocessed", label: t("board.unprocessed"), without: { ...filter, unprocessed: false } });
  if (filter.stage.length > 0) {
    const names = filter.stage.map((id) => stages.find((s) => s.id === id)?.name ?? t("history.deletedStage"));
    chips.push({
      part: "stage",
      label: t("filter.chip", { what: TEXT.stage, values: names.join(", ") }),
      without: { ...filter, stage: [] },
    });
  }
  for (const which of ["created", "lastActivity"] as const) {
    const range = filter[which];
    if (range.from === null && range.to === null) continue;
    chips.push({
      part: which,
      label: `${which === "created" ? TEXT.created : TEXT.lastActivity} ${rangeLabel(range)}`,
      without: { ...filter, [which]: { from: null, to: null } },
    });
  }
  return (
    <ul class="filter-chips" aria-label={t("filter.inUse")}>
      {chips.map((chip) => (
        <li key={chip.part}>
          <button
            type="button"
            class="filter-chip"
            data-filter-chip={chip.part}
            aria-label={TEXT.remove(chip.label)}
            title={TEXT.remove(chip.label)}
            onClick={() => setFilter(chip.without)}
          >
            {chip.label} <span aria-hidden="true">×</span>
          </button>
        </li>
      ))}
    </ul>
  );
}

/** "Save view": a name, then the current filter is kept under it. */
function SaveView({ onSave }: { onSave: (name: string) => string | null }) {
  const [naming, setNaming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (naming) inputRef.current?.focus();
  }, [naming]);
  if (!naming) {
    return (
      <button type="button" class="button small" data-action="save-view" onClick={() => setNaming(true)}>
        {TEXT.save}
      </button>
    );
  }
  return (
    <form
      class="save-view-form"
      data-form="save-view"
      onSubmit={(event) => {
        event.preventDefault();
        const refused = onSave(inputRef.current?.value ?? "");
        setError(refused);
        if (refused === null) setNaming(false);
      }}
      onKeyDown={(event) => {
        if (event.key === "Escape") {
          event.preventDefault();
          event.stopPropagation();
          setNaming(false);
          setError(null);
        }
      }}
    >
      <input ref={inputRef} type="text" name="view-name" aria-label={TEXT.saveAs} maxLength={MAX_VIEW_NAME} />
      <button type="submit" class="button small primary" data-action="confirm-save-view">
        {TEXT.confirmSave}
      </button>
      <button
        type="button"
        class="button small"
        onClick={() => {
          setNaming(false);
          setError(null);
        }}
      >
        {TEXT.cancel}
      </button>
      <FormError message={error} />
    </form>
  );
}
