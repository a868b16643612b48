// The card panel's History section: who changed what and when, newest first, from the server's
// change feed (`GET .../cards/{cardId}/history`, docs/api.md). Refetched when the card changes:
// at once for a change from elsewhere (the server stores a change before it relays it), shortly
// after one of this tab's own (the server stores it in its own time); the server's own upkeep of
// counters and avatars makes no history and no refetch.

import { useEffect, useMemo, useState } from "preact/hooks";
import type * as Y from "yjs";
import { CARD_KEY } from "../model/schema";
import { cardYMap } from "../model/serverFields";
import type { BoardSnapshot } from "../store/boardStore";
import { fetchCardHistory, type HistoryEvent } from "../ui/api";
import { historyLines } from "../ui/cardHistory";
import { allFields } from "../ui/fields";
import { timeAgo } from "../ui/format";
import { currentLanguage, t, type Key } from "../ui/i18n";
import { useBoard } from "./context";

/** Keys of a card that change no history: what the server maintains, and the edit time. */
const QUIET_KEYS: ReadonlySet<string> = new Set([
  CARD_KEY.AVATAR,
  CARD_KEY.AVATAR_AT,
  CARD_KEY.AVATAR_REASON,
  CARD_KEY.COUNTER,
  CARD_KEY.TIMELINE_AT,
  CARD_KEY.UPDATED_AT,
]);

/** How long after this tab's own change the history is asked again (the server stores it first). */
const OWN_CHANGE_DELAY_MS = 700;
/** Changes from elsewhere come in bursts (a sync): one refetch for a burst. */
const REMOTE_CHANGE_DELAY_MS = 150;

const ORIGIN_NOTES: Record<string, Key> = { email: "history.byEmail", scheduler: "history.byServer" };

export function CardHistory({ cardId, snapshot }: { cardId: string; snapshot: BoardSnapshot }) {
  const board = useBoard();
  const [events, setEvents] = useState<HistoryEvent[] | null | "loading">("loading");
  const [next, setNext] = useState<string | null>(null);
  const [older, setOlder] = useState<"idle" | "loading" | "failed">("idle");
  const [revision, setRevision] = useState(0);

  useEffect(() => {
    const map = cardYMap(board.doc, cardId);
    if (map === null) return;
    let timer: number | undefined;
    const onChange = (changes: Y.YEvent<Y.AbstractType<unknown>>[], transaction: Y.Transaction) => {
      const meaningful = changes.some(
        (event) => event.target !== map || [...event.changes.keys.keys()].some((key) => !QUIET_KEYS.has(key)),
      );
      if (!meaningful) return;
      window.clearTimeout(timer);
      timer = window.setTimeout(
        () => setRevision((r) => r + 1),
        transaction.local ? OWN_CHANGE_DELAY_MS : REMOTE_CHANGE_DELAY_MS,
      );
    };
    map.observeDeep(onChange);
    return () => {
      window.clearTimeout(timer);
      map.unobserveDeep(onChange);
    };
  }, [board.doc, cardId]);

  useEffect(() => {
    const abort = new AbortController();
    fetchCardHistory(board.boardId, cardId, null, abort.signal)
      .then((page) => {
        if (abort.signal.aborted) return;
        setEvents(page?.events ?? null);
        setNext(page?.next ?? null);
        setOlder("idle");
      })
      .catch(() => !abort.signal.aborted && setEvents(null));
    return () => abort.abort();
  }, [board.boardId, cardId, revision]);

  const card = snapshot.items.get(cardId)?.card;
  const language = currentLanguage();
  const names = useMemo(() => {
    const fields = allFields(snapshot.fieldDefs, language);
    return {
      person: board.nameOf,
      stage: (id: string) => snapshot.stages.find((s) => s.id === id)?.name ?? null,
      field: (id: string) => fields.find((f) => f.id === id)?.label ?? id,
      currency: card?.currency ?? snapshot.settings.currency,
    };
  }, [board.nameOf, snapshot.stages, snapshot.fieldDefs, snapshot.settings.currency, card?.currency, language]);
  const lines = Array.isArray(events) ? historyLines(events, names) : [];

  const loadOlder = () => {
    if (next === null || !Array.isArray(events)) return;
    setOlder("loading");
    fetchCardHistory(board.boardId, cardId, next)
      .then((page) => {
        setEvents([...events, ...(page?.events ?? [])]);
        setNext(page?.next ?? null);
        setOlder("idle");
      })
      .catch(() => setOlder("failed"));
  };

  return (
    <section class="panel-section" aria-label={t("history.title")} data-history="">
      <h3>{t("history.title")}</h3>
      {events === "loading" ? (
        <p class="muted">{t("common.loading")}</p>
      ) : events === null ? (
        <p class="muted">{t("history.unavailable")}</p>
      ) : lines.length === 0 ? (
        <p class="muted">{t("history.empty")}</p>
      ) : (
        <ul class="rows history">
          {lines.map((line) => (
            <li key={line.id} class="history-row" data-history-type={events.find((e) => e.id === line.id)?.type}>
              <span class="activity-main">
                <span data-history-text="">
                  <strong>{line.who}</strong> {line.what}
                </span>
                <span class="activity-meta">
                  {line.at > 0 ? timeAgo(line.at, snapshot.now) : ""}
                  {line.origin in ORIGIN_NOTES ? t(ORIGIN_NOTES[line.origin]!) : ""}
                </span>
              </span>
            </li>
          ))}
        </ul>
      )}
      {next !== null && (
        <button
          type="button"
          class="button"
          data-action="older-history"
          disabled={older === "loading"}
          onClick={loadOlder}
        >
          {older === "loading"
            ? t("common.loading")
            : older === "failed"
              ? t("history.retryOlder")
              : t("history.showOlder")}
        </button>
      )}
    </section>
  );
}
