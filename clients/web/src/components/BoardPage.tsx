// The board screen: header (presence, connection, user), toolbar (search and filters, whose
// state lives in the address: useBoardFilter.ts, FilterBar.tsx; workload, forecast, settings),
// the columns as the filter shows them, the side panels. Owns the board's connection and
// store; everything below it gets the same `BoardActions` object (context.ts) and plain
// snapshot pieces whose identity changes only when they change. The page renders for what it
// reads of the store itself (pageSnapshot.ts); the columns, the totals and the other sums of
// the columns follow the store on their own (BoardColumns.tsx), so a remote move renders them
// and not the page.
//
// What the user's role may not do is not offered (src/ui/auth.ts `permissionsOf`): a viewer's
// board has no drag and drop, keyboard moves, quick-create, stage editor or settings; a member's
// no stage editor and only their own card fields in the settings. A refusal of the server (close
// code 4401, 4403, ...) replaces "reconnecting" with its message, for good.

import { autoScrollForElements } from "@atlaskit/pragmatic-drag-and-drop-auto-scroll/element";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { OrderError } from "../model/order";
import { entityAsString, parseEntity } from "../model/schema";
import { missingRequired } from "../model/requirements";
import {
  addStage,
  archiveCard,
  BoardError,
  deleteCard,
  editCard,
  restoreCard,
  touchCard,
  type CardEdit,
} from "../model/write";
import { BoardStore, type BoardSnapshot } from "../store/boardStore";
import { BoardConnection, type ConnectionStatus } from "../store/connection";
import { MoveWatch, type LostMove } from "../store/moves";
import { CLOSE, freezesBoard, refusalOf, type Me, type Permissions } from "../ui/auth";
import { entityTitle } from "../ui/entities";
import { allFields, displayFieldsOf, quickCreateFieldsOf } from "../ui/fields";
import { NO_FILTER, showsCard } from "../ui/filters";
import { t, useLanguage } from "../ui/i18n";
import { avatarOf } from "../ui/people";
import {
  arrowDirection,
  keyboardFocusTarget,
  keyboardMoveTarget,
  moveCardTo,
  resolveTarget,
  type Target,
  type VisibleColumn,
} from "../ui/placement";
import { presenceFrom, samePresence, type Presence } from "../ui/presence";
import { markFirstBoardPaint } from "../ui/perf";
import { onLinkClick } from "../ui/route";
import { nameFromId, type RosterEntry, type User } from "../ui/users";
import { writeErrorText } from "../ui/writeErrors";
import { ConnectionBadge, LoadingBar, Notices, RefusalBanner, useMedia, type Notice } from "./BoardChrome";
import { BoardColumns, BoardTotals, LiveFilterDetails, LiveForecast, LiveStageSwitcher } from "./BoardColumns";
import { BoardContext, type BoardActions } from "./context";
import { sentence } from "./forms";
import { FilterTools } from "./FilterBar";
import { memo } from "./memo";
import { displayKeyOf, pageChanged, pageSnapshotOf, type PageSnapshot, type PageWatch } from "./pageSnapshot";
import { ActivitiesPanel, ArchivedPanel, CardPanel, SettingsPanel, WorkloadPanel } from "./panels";
import { RequiredFieldsDialog, type PendingMove } from "./RequiredFieldsDialog";
import { RecoveryBanner, TooLargeChangeBanner } from "./RecoveryBanner";
import { useSession } from "./session";
import { Identity } from "./UserPicker";
import { useBoardDrop } from "./useBoardDrop";
import { columnViewsOf, useBoardFilter, usePeople, useSavedViews, type ViewCache } from "./useBoardFilter";
import { useUndoKeys } from "./useUndoKeys";
import { WonLostBar } from "./WonLostBar";

// The page re-renders for a change of what it reads (a stage, the settings, a panel, a filter):
// its parts that take none of it skip that render while their props keep their identity.
const MemoConnectionBadge = memo(ConnectionBadge);
const MemoIdentity = memo(Identity);
const MemoFilterTools = memo(FilterTools);
const MemoWonLostBar = memo(WonLostBar);

/** How often counters and "time ago" are re-evaluated without any edit. */
export const TICK_MS = 30_000;

type Panel =
  | { kind: "card"; card: string }
  | { kind: "activities"; card: string }
  | { kind: "settings" }
  | { kind: "archived" }
  | null;

/** How long a notice stays, and so how long an undo is offered. */
export const NOTICE_MS = 8000;

/** Narrower than this, the board shows one column at a time with a stage switcher. */
const PHONE_QUERY = "(max-width: 720px)";

const STAGE_PALETTE = ["#39a8ef", "#2fc6f6", "#55d0e0", "#47e4c2", "#a58cf5", "#f5a623", "#f06595", "#7c8bff"];

export function BoardPage({
  boardId,
  user,
  roster,
  onUser,
  onRoster,
  account,
  permissions,
  token,
  onReconnected,
}: {
  boardId: string;
  user: User;
  roster: readonly RosterEntry[];
  onUser: (id: string) => void;
  onRoster: (roster: RosterEntry[]) => void;
  /** The signed-in user (with a token), or null in local mode. */
  account: Me | null;
  permissions: Permissions;
  token: string | null;
  /** Called each time the socket is live again after it was (the server may hold other roles now). */
  onReconnected?: () => void;
}) {
  // One connection per board: a change of user goes to the open connection (setUser below), and
  // the connection keeps the token it opened with.
  // eslint-disable-next-line react-hooks/exhaustive-deps -- keyed by the board alone, on purpose
  const connection = useMemo(() => new BoardConnection(boardId, user, token), [boardId]);
  const store = useMemo(() => new BoardStore(connection.doc), [connection]);
  useEffect(
    () => () => {
      store.destroy();
      connection.destroy();
    },
    [connection, store],
  );

  const { directory } = useSession();
  const language = useLanguage();
  // Always the store's latest; the page renders again only when `pageChanged` says so (below).
  const snapshot = store.current;
  const [, setStoreChange] = useState<BoardSnapshot | null>(null);
  // The views of the columns, shared by the parts that show them (BoardColumns.tsx).
  const [viewCache] = useState<ViewCache>(() => new WeakMap());
  const [status, setStatus] = useState<ConnectionStatus>(connection.current);
  const reconnectedRef = useRef(onReconnected);
  reconnectedRef.current = onReconnected;
  const liveBefore = useRef(false);
  useEffect(() => {
    if (status.state !== "connected") return;
    if (liveBefore.current) reconnectedRef.current?.();
    liveBefore.current = true;
  }, [status.state]);
  const [presence, setPresence] = useState<Presence>({ users: [], cards: new Map() });
  const [panel, setPanel] = useState<Panel>(null);
  const [quickCreate, setQuickCreate] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [workloadOpen, setWorkloadOpen] = useState(false);
  // What the board shows: the search and filters of the address (?q=, ?responsible=, ...).
  const { filter, compiled, setFilter } = useBoardFilter();
  const [filtersOpen, setFiltersOpen] = useState(false);
  const savedViews = useSavedViews(boardId, user.id);
  const [notices, setNotices] = useState<Notice[]>([]);
  const [announcement, setAnnouncement] = useState("");
  const phone = useMedia(PHONE_QUERY);
  const [phoneStage, setPhoneStage] = useState<string | null>(null);

  // Before the page's own subscription below: when the loading ends, the store applies the last
  // pieces first, so the "Live" state and every card reach the view in one render.
  useEffect(() => {
    const loading = (next: ConnectionStatus) => store.setLoading(next.state === "loading");
    loading(connection.current);
    return connection.subscribe(loading);
  }, [connection, store]);
  useEffect(() => {
    setStatus(connection.current);
    return connection.subscribe(setStatus);
  }, [connection]);
  useEffect(() => {
    const timer = window.setInterval(() => store.tick(), TICK_MS);
    return () => window.clearInterval(timer);
  }, [store]);

  const userRef = useRef(user);
  userRef.current = user;
  // Sent again when a field changes, not when App hands down an equal user as a new object.
  useEffect(() => connection.setUser(userRef.current), [connection, user.id, user.name, user.color]);

  useEffect(() => {
    const awareness = connection.provider.awareness;
    let current: Presence = { users: [], cards: new Map() };
    const update = () => {
      const next = presenceFrom(awareness.getStates(), userRef.current.id);
      if (!samePresence(current, next)) {
        current = next;
        setPresence(next);
      }
    };
    update();
    awareness.on("change", update);
    return () => awareness.off("change", update);
  }, [connection, user.id]);

  // Refs for the actions object, which is created once per board.
  const rosterRef = useRef(roster);
  rosterRef.current = roster;
  const presenceRef = useRef(presence);
  presenceRef.current = presence;
  const filterRef = useRef(filter);
  filterRef.current = filter;
  const compiledRef = useRef(compiled);
  compiledRef.current = compiled;
  const focusRef = useRef<string | null>(null);
  // Stable callbacks for the memoised toolbar: a remote move re-renders this page, not its toolbar.
  const toggleFilters = useMemo(() => () => setFiltersOpen((open) => !open), []);
  const saveSavedView = savedViews.save;
  const saveView = useMemo(() => (name: string) => saveSavedView(name, filterRef.current), [saveSavedView]);
  const [pendingMove, setPendingMove] = useState<{ move: PendingMove; target: Target } | null>(null);
  const [forecastOpen, setForecastOpen] = useState(false);
  const noticeId = useRef(0);

  const watchRef = useRef<MoveWatch | null>(null);

  const actions = useMemo<BoardActions>(() => {
    const show = (notice: Omit<Notice, "id">) => {
      const id = ++noticeId.current;
      setNotices((list) => [...list.slice(-2), { ...notice, id }]);
      window.setTimeout(() => setNotices((list) => list.filter((n) => n.id !== id)), NOTICE_MS);
    };
    const notify = (message: string, tone: "error" | "info" = "error") =>
      show({ message: sentence(message), tone, kind: tone });
    const announce = (message: string) => setAnnouncement(message);
    const write = (what: () => void) => {
      try {
        what();
        return true;
      } catch (error) {
        if (error instanceof BoardError || error instanceof OrderError) {
          notify(writeErrorText(error));
          return false;
        }
        throw error;
      }
    };
    return {
      boardId,
      doc: connection.doc,
      connection,
      can: permissions,
      snapshot: () => store.current,
      me: () => userRef.current,
      roster: () => rosterRef.current,
      nameOf: (id: string) =>
        rosterRef.current.find((u) => u.id === id)?.name ??
        presenceRef.current.users.find((u) => u.id === id)?.name ??
        nameFromId(id),
      openCard: (card) => setPanel({ kind: "card", card }),
      openActivities: (card) => setPanel({ kind: "activities", card }),
      closePanel: () => setPanel(null),
      openQuickCreate: (stage) => {
        setEditing(null);
        setQuickCreate(stage);
      },
      editStage: (stage) => {
        setQuickCreate(null);
        setEditing(stage);
      },
      write,
      notify,
      announce,
      moveCard: (card, target: Target, edit?: CardEdit) => {
        if (!permissions.moveCards) return false;
        const snap = store.current;
        const column = snap.columns.find((c) => c.stage.id === target.stage);
        const from = snap.columns.find((c) => c.items.some((i) => i.card.id === card));
        if (column === undefined || from === undefined) return false;
        const item = from.items.find((i) => i.card.id === card)!;
        if (edit === undefined && from.stage.id !== column.stage.id) {
          // What the stage requires is asked for first: the server would take the move back.
          const missing = missingRequired(column.stage, item.card, snap.settings.lostReasons);
          if (missing.length > 0) {
            setPendingMove({ move: { card: item, stage: column.stage, missing }, target });
            return false;
          }
        }
        const keyed = column.items.map((i) => ({ id: i.card.id, pos: i.card.pos }));
        const placement = resolveTarget(keyed, card, target);
        let moved = false;
        write(() =>
          connection.doc.transact(() => {
            if (edit !== undefined) editCard(connection.doc, card, edit);
            moved = moveCardTo(connection.doc, keyed, card, from.stage.id, placement);
            if (moved || edit !== undefined) touchCard(connection.doc, card, Date.now());
          }),
        );
        if (moved) watchRef.current?.moved(card);
        return moved;
      },
      archiveCard: (card, restore = false) => {
        if (!permissions.editCards) return;
        const snap = store.current;
        const title = (snap.items.get(card)?.card ?? snap.archived.find((c) => c.id === card))?.title ?? "";
        const set = (archived: boolean) => write(() => archiveCard(connection.doc, card, archived ? Date.now() : null));
        if (!set(!restore)) return;
        if (!restore) setPanel((open) => (open?.kind === "card" && open.card === card ? null : open));
        announce(t(restore ? "board.cardRestored" : "board.cardArchived", { title }));
        show({
          message: t(restore ? "board.cardBack" : "board.cardArchivedNotice", { title }),
          tone: "info",
          kind: restore ? "card-restored" : "card-archived",
          undo: () => {
            if (set(restore)) announce(t(restore ? "board.cardArchived" : "board.cardRestored", { title }));
          },
        });
      },
      deleteCard: (card) => {
        if (!permissions.editCards) return;
        const title = store.current.items.get(card)?.card.title ?? "";
        let kept: ReturnType<typeof deleteCard> | null = null;
        if (!write(() => (kept = deleteCard(connection.doc, card))) || kept === null) return;
        const deleted = kept;
        setPanel(null);
        announce(t("board.cardDeleted", { title }));
        show({
          message: t("board.cardDeletedNotice", { title }),
          tone: "info",
          kind: "card-deleted",
          undo: () => {
            if (write(() => restoreCard(connection.doc, deleted))) announce(t("board.cardRestored", { title }));
          },
        });
      },
      requestFocus: (card) => {
        focusRef.current = card;
      },
      takeFocus: (card) => {
        if (focusRef.current !== card) return false;
        focusRef.current = null;
        return true;
      },
      pendingFocus: () => focusRef.current,
      created: (card) => {
        store.flush();
        const item = store.current.items.get(card);
        if (item === undefined || !compiledRef.current.active) return;
        const column = store.current.columns.find((c) => c.items.includes(item));
        if (column === undefined) return;
        if (showsCard(compiledRef.current, column.stage.id, item, store.current.now)) return;
        show({
          message: `“${item.card.title}” created; the current filter hides it.`,
          tone: "info",
          kind: "card-hidden",
        });
      },
      filterByStatus: (status) => {
        const current = filterRef.current;
        const only = current.state.length === 1 && current.state[0] === status;
        setFilter({ ...current, state: only ? [] : [status] });
      },
    };
  }, [connection, store, boardId, permissions, setFilter]);

  // A move of this tab that lost to someone else's concurrent move says so.
  useEffect(() => {
    const watch = new MoveWatch(connection.doc, (lost: LostMove) => {
      // The winner's tab is known by its awareness (its Yjs client id); it may arrive just after.
      window.setTimeout(() => {
        const state = connection.provider.awareness.getStates().get(lost.by) as
          { user?: { name?: unknown } } | undefined;
        const who =
          typeof state?.user?.name === "string" && state.user.name !== "" ? state.user.name : t("board.someone");
        const snap = store.current;
        const title = snap.items.get(lost.card)?.card.title ?? t("board.theCard");
        const stage = snap.stages.find((st) => st.id === lost.theirs)?.name ?? t("board.anotherStage");
        const id = ++noticeId.current;
        setNotices((list) => [
          ...list.slice(-2),
          { id, message: t("board.moveLost", { who, title, stage }), tone: "info", kind: "move-lost" },
        ]);
        window.setTimeout(() => setNotices((list) => list.filter((n) => n.id !== id)), NOTICE_MS);
      }, 400);
    });
    watchRef.current = watch;
    return () => {
      watch.destroy();
      watchRef.current = null;
    };
  }, [connection, store]);

  // Ctrl+Z / Cmd+Z: this tab's own last action on the board, others' changes kept.
  useUndoKeys(
    connection.doc,
    permissions.editCards || permissions.moveCards,
    (card) => {
      const snap = store.current;
      return snap.items.get(card)?.card.title ?? snap.archived.find((c) => c.id === card)?.title ?? null;
    },
    (message) => {
      actions.notify(message, "info");
      actions.announce(message);
    },
  );

  // Escape closes what is open, innermost first (forms stop the key themselves). The listener
  // reads what the last render showed, not what its effect saw: a key pressed right after a
  // click that opened something, before effects run, closes it too.
  const openRef = useRef({ panel, quickCreate, editing, filtersOpen });
  openRef.current = { panel, quickCreate, editing, filtersOpen };
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      const open = openRef.current;
      if (open.panel !== null) setPanel(null);
      else if (open.quickCreate !== null) setQuickCreate(null);
      else if (open.editing !== null) setEditing(null);
      else if (open.filtersOpen) setFiltersOpen(false);
      else return;
      event.preventDefault();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  // Presence: what this tab views.
  const viewing = panel !== null && (panel.kind === "card" || panel.kind === "activities") ? panel.card : null;
  useEffect(() => connection.setViewing(viewing), [connection, viewing]);

  // What this render read of the store, and a subscription that renders the page again only
  // when some of it changes (a remote move changes none of it: BoardColumns.tsx renders it).
  const watch: PageWatch = { panelCard: viewing, workloadOpen };
  const pageWatchRef = useRef(watch);
  pageWatchRef.current = watch;
  const displayed = store.displayFieldsOf(user.id);
  const displayKey = displayKeyOf(displayed);
  const shownRef = useRef<PageSnapshot | null>(null);
  shownRef.current = pageSnapshotOf(snapshot, watch, displayKey);
  useEffect(() => {
    const onChange = (next: BoardSnapshot) => {
      const shown = shownRef.current;
      const key = displayKeyOf(store.displayFieldsOf(userRef.current.id));
      if (shown === null || pageChanged(shown, next, pageWatchRef.current, key)) setStoreChange(next);
    };
    onChange(store.current);
    return store.subscribe(onChange);
  }, [store]);

  // Drag and drop: one monitor for the board.
  useBoardDrop(actions);

  // Dragging near the board's left or right edge scrolls it sideways.
  const boardRef = useRef<HTMLElement>(null);
  const hasColumns = snapshot.stages.length > 0;
  useEffect(() => {
    const element = boardRef.current;
    return element === null ? undefined : autoScrollForElements({ element });
  }, [hasColumns]);

  // Names may change with the roster and with who is on the board.
  const namesVersion = useMemo(() => {
    let hash = 0;
    const text =
      roster.map((r) => `${r.id}=${r.name}`).join("|") + "#" + presence.users.map((u) => `${u.id}=${u.name}`).join("|");
    for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
    return hash;
  }, [roster, presence.users]);

  const fields = useMemo(() => allFields(snapshot.fieldDefs, language), [snapshot.fieldDefs, language]);
  // Keyed by the list's content: displayFieldsOf(user) reads a new array on every render.
  // eslint-disable-next-line react-hooks/exhaustive-deps -- displayKey and the null check are `displayed`
  const displayFields = useMemo(() => displayFieldsOf(displayed, fields), [displayKey, displayed === null, fields]);
  const quickFields = useMemo(() => quickCreateFieldsOf(snapshot.quickCreate, fields), [snapshot.quickCreate, fields]);

  // The columns as the filter shows them, at a key press: the store's latest, through the cache.
  const visibleRef = useRef<() => VisibleColumn[]>(() => []);
  visibleRef.current = () =>
    columnViewsOf(store.current.columns, compiled, store.current.now, viewCache).map((v) => ({
      stage: v.column.stage.id,
      cards: v.items.map((i) => i.card.id),
    }));
  const people = usePeople(snapshot.responsibles, roster, actions.nameOf, namesVersion);

  const focusCard = (card: string) => {
    const element = document.querySelector<HTMLElement>(`[data-card-id="${CSS.escape(card)}"]`);
    if (element !== null) {
      element.focus();
      return;
    }
    focusRef.current = card;
    const stage = store.current.columns.find((c) => c.items.some((i) => i.card.id === card))?.stage.id;
    const list =
      stage === undefined
        ? null
        : document.querySelector<Element & { scrollToCard?: (card: string) => void }>(
            `[data-stage-id="${CSS.escape(stage)}"] .column-cards`,
          );
    list?.scrollToCard?.(card);
  };

  const onBoardKeyDown = (event: KeyboardEvent) => {
    const element = event.target as HTMLElement;
    const card = element.getAttribute?.("data-card-id");
    if (!card) return;
    const direction = arrowDirection(event.key);
    if (direction === null) return;
    event.preventDefault();
    const columns = visibleRef.current();
    if (event.altKey) {
      if (!permissions.moveCards) {
        actions.announce(t("board.viewOnly"));
        return;
      }
      const target = keyboardMoveTarget(columns, card, direction);
      if (target === null) {
        actions.announce(t("board.cannotMove"));
        return;
      }
      actions.requestFocus(card);
      if (actions.moveCard(card, target)) {
        if (phone) setPhoneStage(target.stage);
        const name = snapshot.stages.find((s) => s.id === target.stage)?.name ?? "";
        actions.announce(
          direction === "up" || direction === "down"
            ? t(direction === "up" ? "board.movedUp" : "board.movedDown", { stage: name })
            : t("board.movedTo", { stage: name }),
        );
      } else {
        focusRef.current = null;
      }
    } else {
      const next = keyboardFocusTarget(columns, card, direction);
      if (next !== null) focusCard(next);
    }
  };

  // Stage additions: a progress stage before the final ones, a failure stage at the very end.
  const addStageOf = (kind: "progress" | "failure") => {
    if (!permissions.editStages) return;
    const stages = snapshot.stages;
    const after =
      kind === "progress"
        ? [...stages].reverse().find((s) => s.kind === "initial" || s.kind === "progress")
        : stages[stages.length - 1];
    if (after === undefined) return;
    const used = new Set(stages.map((s) => s.color.toLowerCase()));
    const color = kind === "failure" ? "#ff8f8c" : (STAGE_PALETTE.find((c) => !used.has(c)) ?? STAGE_PALETTE[0]!);
    let id = "";
    if (
      actions.write(
        () =>
          (id = addStage(
            connection.doc,
            kind === "progress" ? t("board.newStage") : t("board.newFailureReason"),
            color,
            kind,
            after.id,
          )),
      )
    ) {
      actions.announce(t("board.stageAdded"));
      actions.editStage(id);
    }
  };

  const refusal = useMemo(
    () => (status.refused === null ? null : refusalOf(status.refused.code, status.refused.reason, token !== null)),
    [status.refused, token],
  );

  const settings = snapshot.settings;
  const entity = parseEntity(settings.entity);

  // The browser benchmark's mark (ui/perf.ts): the first commit with every column counted from the
  // server's whole state (`connected`: a large board streams in pieces, and `loaded` can be true
  // before the last, when this browser's empty copy finishes opening after the first pieces).
  const boardShown = status.state === "connected" && snapshot.stages.length > 0;
  useLayoutEffect(() => {
    if (boardShown) markFirstBoardPaint();
  }, [boardShown]);

  useEffect(() => {
    document.title = settings.name ? `${settings.name} · funnel` : t("board.documentTitle");
  }, [settings.name, language]);

  // The stages the filter shows (a column each).
  const shownStages = snapshot.stages.filter((s) => compiled.showsStage(s.id));
  const shownStage = shownStages.find((s) => s.id === phoneStage)?.id ?? shownStages[0]?.id ?? null;
  const panelItem =
    panel !== null && (panel.kind === "card" || panel.kind === "activities")
      ? snapshot.items.get(panel.card)
      : undefined;
  // Stable for the memoised columns: the handlers read the page's latest through refs.
  const addStageRef = useRef(addStageOf);
  addStageRef.current = addStageOf;
  const onAddStage = useMemo(() => (kind: "progress" | "failure") => addStageRef.current(kind), []);
  const onClearFilters = useMemo(() => () => setFilter(NO_FILTER), [setFilter]);
  const live = { store, compiled, cache: viewCache };

  return (
    <BoardContext.Provider value={actions}>
      <div class="page board-page">
        <header class="topbar">
          <a href="/" class="brand" onClick={onLinkClick}>
            funnel
          </a>
          <nav class="crumbs" aria-label={t("board.breadcrumb")}>
            <a href="/" onClick={onLinkClick}>
              {entity ? entityTitle(entityAsString(entity)) : t("board.boards")}
            </a>
            <span aria-hidden="true">/</span>
            <h1>{settings.name || boardId}</h1>
          </nav>
          <div class="presence" role="group" aria-label={t("board.people")}>
            {presence.users.map((u) => (
              <span
                key={u.id}
                class={`avatar presence-user${u.id === user.id ? " is-me" : ""}`}
                data-presence-user={u.id}
                style={`--avatar:${directory.byId.get(u.id)?.color ?? u.color}`}
                title={u.id === user.id ? t("board.you", { name: u.name }) : u.name}
              >
                <span aria-hidden="true">{avatarOf(directory, u.id, u.name).initials}</span>
                <span class="visually-hidden">{u.id === user.id ? t("board.you", { name: u.name }) : u.name}</span>
              </span>
            ))}
          </div>
          <MemoConnectionBadge status={status} refusal={refusal} />
          <MemoIdentity account={account} user={user} roster={roster} onUser={onUser} onRoster={onRoster} />
        </header>

        <section class="board-tools" aria-label={t("board.tools")}>
          {!(refusal !== null && snapshot.stages.length === 0) && (
            <div class="toolbar" role="toolbar" aria-label={t("board.tools")}>
              <MemoFilterTools
                filter={filter}
                setFilter={setFilter}
                open={filtersOpen}
                onToggle={toggleFilters}
                views={savedViews.views}
                onDeleteView={savedViews.remove}
              />
              <button
                type="button"
                class="button toggle"
                data-action="filter-unprocessed"
                aria-pressed={filter.unprocessed}
                onClick={() => setFilter({ ...filterRef.current, unprocessed: !filterRef.current.unprocessed })}
              >
                {t("board.unprocessed")} <span class="badge">{snapshot.unprocessed.size}</span>
              </button>
              <button
                type="button"
                class="button toggle"
                data-action="toggle-workload"
                aria-pressed={workloadOpen}
                aria-expanded={workloadOpen}
                onClick={() => setWorkloadOpen((on) => !on)}
              >
                {t("board.workload")}
              </button>
              <button
                type="button"
                class="button toggle"
                data-action="toggle-forecast"
                aria-pressed={forecastOpen}
                aria-expanded={forecastOpen}
                onClick={() => setForecastOpen((on) => !on)}
              >
                {t("board.forecast")}
              </button>
              <button
                type="button"
                class="button"
                data-action="show-archived"
                aria-expanded={panel?.kind === "archived"}
                onClick={() => setPanel(panel?.kind === "archived" ? null : { kind: "archived" })}
              >
                {t("board.archived")} <span class="badge">{snapshot.archived.length}</span>
              </button>
              {permissions.openSettings && (
                <button
                  type="button"
                  class="button"
                  data-action="open-settings"
                  onClick={() => setPanel({ kind: "settings" })}
                >
                  {t("board.settings")}
                </button>
              )}
              {!permissions.moveCards && <span class="read-only-badge">{t("board.readOnly")}</span>}
              <BoardTotals {...live} currency={settings.currency} />
            </div>
          )}
          {!(refusal !== null && snapshot.stages.length === 0) && (
            <LiveFilterDetails
              {...live}
              filter={filter}
              setFilter={setFilter}
              open={filtersOpen}
              stages={snapshot.stages}
              people={people}
              nameOf={actions.nameOf}
              onSaveView={saveView}
            />
          )}
          {phone && <LiveStageSwitcher {...live} current={shownStage} onSwitch={setPhoneStage} />}

          {refusal !== null &&
            snapshot.stages.length > 0 &&
            (refusal.code === CLOSE.FRAME_TOO_LARGE ? (
              <TooLargeChangeBanner detail={refusal.detail} onDiscard={() => connection.discardLocalCopy()} />
            ) : (
              <RefusalBanner refusal={refusal} loaded />
            ))}
          {status.recovery !== null && (
            <RecoveryBanner recovery={status.recovery} onDismiss={() => connection.dismissRecovery()} />
          )}

          <Notices notices={notices} onDismiss={(id) => setNotices((l) => l.filter((x) => x.id !== id))} />

          {workloadOpen && <WorkloadPanel workload={snapshot.workload} currency={settings.currency} />}

          {forecastOpen && <LiveForecast {...live} currency={settings.currency} />}

          {status.state === "loading" && snapshot.stages.length > 0 && <LoadingBar cards={snapshot.items.size} />}
        </section>

        {snapshot.stages.length === 0 ? (
          <div class="board-empty">
            {refusal !== null ? (
              <RefusalBanner refusal={refusal} loaded={false} />
            ) : status.loaded ? (
              <p>{t("board.noStages")}</p>
            ) : (
              <LoadingBar cards={snapshot.items.size} />
            )}
          </div>
        ) : (
          <main
            ref={boardRef}
            class="board"
            onKeyDown={onBoardKeyDown}
            aria-label={t("board.stages")}
            // After a refusal the server will never take, nothing more can be saved: the board only shows.
            data-frozen={refusal !== null && freezesBoard(refusal.code) ? "" : undefined}
            inert={refusal !== null && freezesBoard(refusal.code)}
          >
            <BoardColumns
              {...live}
              states={filter.state}
              fields={displayFields}
              quickCreateFields={quickFields}
              presence={presence.cards}
              namesVersion={namesVersion}
              currency={settings.currency}
              quickCreate={quickCreate}
              editing={editing}
              editStages={permissions.editStages}
              onAddStage={onAddStage}
              onClearFilters={onClearFilters}
            />
          </main>
        )}

        {permissions.moveCards && snapshot.stages.length > 0 && <MemoWonLostBar stages={snapshot.stages} />}
        {pendingMove !== null && (
          <RequiredFieldsDialog
            move={pendingMove.move}
            fields={fields}
            lostReasons={settings.lostReasons}
            onCancel={() => setPendingMove(null)}
            onSubmit={(edit) => {
              const { move, target } = pendingMove;
              if (actions.moveCard(move.card.card.id, target, edit)) {
                setPendingMove(null);
                actions.announce(t("board.movedTo", { stage: move.stage.name }));
                return null;
              }
              return t("board.moveFailed");
            }}
          />
        )}

        {panel?.kind === "settings" && permissions.openSettings && (
          <SettingsPanel snapshot={snapshot} displayed={displayed} />
        )}
        {panel?.kind === "card" && panelItem !== undefined && <CardPanel item={panelItem} snapshot={snapshot} />}
        {panel?.kind === "archived" && <ArchivedPanel cards={snapshot.archived} stages={snapshot.stages} />}
        {panel?.kind === "activities" && panelItem !== undefined && (
          <ActivitiesPanel item={panelItem} now={snapshot.now} />
        )}

        {phone && shownStage !== null && (
          // One column at a time on a phone: the others stay in the DOM, hidden.
          <style>{`.board .column:not([data-stage-id="${CSS.escape(shownStage)}"]){display:none}`}</style>
        )}
        {viewing !== null && (
          // Marks the card whose panel is open without re-rendering any card.
          <style>{`.board [data-card-id="${CSS.escape(viewing)}"]{border-color:var(--accent);box-shadow:0 0 0 1px var(--accent),var(--shadow-card)}`}</style>
        )}

        <div class="visually-hidden" aria-live="polite">
          {announcement}
        </div>
      </div>
    </BoardContext.Provider>
  );
}
