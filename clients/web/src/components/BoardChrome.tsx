// The board screen's smaller parts: the toolbar's totals, the loading bar, the phone's stage
// switcher, the connection badge, the refusal banner and the notices, each a plain function of
// its props;
// and `useMedia`, whether a media query matches now.

import { useEffect, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import { isOpenKind } from "../model/schema";
import type { ConnectionStatus } from "../store/connection";
import type { Refusal } from "../ui/auth";
import { t } from "../ui/i18n";

export interface Total {
  count: number;
  sums: Map<string, number>;
}

/** The board's totals: open cards (initial and progress stages), won (success) and lost (failure). */
export function boardTotals(
  columns: readonly { stage: Stage; items: readonly unknown[]; sums: ReadonlyMap<string, number> }[],
): { open: Total; won: Total; lost: Total } {
  const totals = {
    open: { count: 0, sums: new Map<string, number>() },
    won: { count: 0, sums: new Map<string, number>() },
    lost: { count: 0, sums: new Map<string, number>() },
  };
  for (const column of columns) {
    const kind = column.stage.kind;
    const total = isOpenKind(kind) ? totals.open : kind === "success" ? totals.won : totals.lost;
    total.count += column.items.length;
    for (const [currency, sum] of column.sums) total.sums.set(currency, (total.sums.get(currency) ?? 0) + sum);
  }
  for (const total of Object.values(totals)) {
    total.sums = new Map([...total.sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  return totals;
}

/** While the server's state streams in: an indeterminate bar and the cards received so far. */
export function LoadingBar({ cards }: { cards: number }) {
  const text = cards === 0 ? t("chrome.loadingBoard") : t("chrome.loadingSoFar", { count: cards });
  return (
    <div class="loading" data-loading="" role="status">
      <progress aria-label={t("chrome.loadingBoard")} />
      <span class="muted">{text}</span>
    </div>
  );
}

/** On a phone: which stage's column is shown, with the previous and next stage a tap away. */
export function StageSwitcher({
  columns,
  current,
  onSwitch,
}: {
  columns: readonly { stage: Stage; items: readonly unknown[] }[];
  current: string | null;
  onSwitch: (stage: string) => void;
}) {
  const index = columns.findIndex((c) => c.stage.id === current);
  const previous = columns[index - 1];
  const next = columns[index + 1];
  return (
    <nav class="stage-switcher" aria-label={t("chrome.stage")}>
      <button
        type="button"
        class="icon-button"
        data-action="previous-stage"
        aria-label={previous ? t("chrome.previousStage", { stage: previous.stage.name }) : t("chrome.noPreviousStage")}
        disabled={previous === undefined}
        onClick={() => previous && onSwitch(previous.stage.id)}
      >
        ‹
      </button>
      <select
        name="stage-switcher"
        data-stage-switcher=""
        aria-label={t("chrome.stageShown")}
        value={current ?? ""}
        onChange={(event) => onSwitch(event.currentTarget.value)}
      >
        {columns.map((c) => (
          <option key={c.stage.id} value={c.stage.id}>
            {c.stage.name} ({c.items.length})
          </option>
        ))}
      </select>
      <button
        type="button"
        class="icon-button"
        data-action="next-stage"
        aria-label={next ? t("chrome.nextStage", { stage: next.stage.name }) : t("chrome.noNextStage")}
        disabled={next === undefined}
        onClick={() => next && onSwitch(next.stage.id)}
      >
        ›
      </button>
    </nav>
  );
}

export function ConnectionBadge({ status, refusal }: { status: ConnectionStatus; refusal: Refusal | null }) {
  const label =
    refusal !== null
      ? refusal.message
      : status.state === "connected"
        ? t("chrome.live")
        : status.state === "loading"
          ? t("common.loading")
          : status.state === "connecting"
            ? status.wasConnected
              ? t("chrome.reconnecting")
              : t("chrome.connecting")
            : t("chrome.offline");
  return (
    <span
      class="connection"
      data-connection=""
      data-connection-state={status.state}
      data-refusal-code={refusal !== null ? String(refusal.code) : undefined}
      role="status"
      title={refusal !== null && refusal.detail !== "" ? `${label} (${refusal.detail})` : label}
    >
      <span class="connection-dot" aria-hidden="true" />
      <span class="connection-label">{label}</span>
    </span>
  );
}

/** A refusal of the server, for good: what happened and what to do. */
export function RefusalBanner({ refusal, loaded }: { refusal: Refusal; loaded: boolean }) {
  const hint =
    refusal.code === 4401
      ? t("chrome.hint4401")
      : refusal.code === 4404
        ? t("chrome.hint4404")
        : refusal.code === 4403 && !loaded
          ? t("chrome.hint4403")
          : refusal.code === 4429
            ? t("chrome.hint4429")
            : t("chrome.hintReload");
  return (
    <div class="refusal refusal-banner" data-refusal={String(refusal.code)} role="alert">
      <p class="refusal-message">{refusal.message}</p>
      {refusal.detail !== "" && refusal.code !== 4403 && (
        <p class="refusal-detail">{t("chrome.serverSaid", { detail: refusal.detail })}</p>
      )}
      <p class="hint">{hint}</p>
    </div>
  );
}

/** Whether `query` matches, kept current. */
export function useMedia(query: string): boolean {
  const [matches, setMatches] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const list = window.matchMedia(query);
    const onChange = () => setMatches(list.matches);
    onChange();
    list.addEventListener("change", onChange);
    return () => list.removeEventListener("change", onChange);
  }, [query]);
  return matches;
}

export interface Notice {
  id: number;
  message: string;
  tone: "error" | "info";
  /** What the notice is about (`data-notice`), for the end-to-end tests and the styles. */
  kind: string;
  /** An undo offered with the notice: it restores exactly what the action changed. */
  undo?: () => void;
}

/** The notices (role alert): a message, maybe an Undo, and a dismiss button each. */
export function Notices({ notices, onDismiss }: { notices: readonly Notice[]; onDismiss: (id: number) => void }) {
  return (
    <div class="notices" role="alert">
      {notices.map((n) => (
        <p key={n.id} class={`notice notice-${n.tone}`} data-notice={n.kind}>
          {n.message}
          {n.undo !== undefined && (
            <button
              type="button"
              class="button small"
              data-action="undo"
              onClick={() => {
                n.undo?.();
                onDismiss(n.id);
              }}
            >
              {t("common.undo")}
            </button>
          )}
          <button type="button" class="icon-button" aria-label={t("common.dismiss")} onClick={() => onDismiss(n.id)}>
            ×
          </button>
        </p>
      ))}
    </div>
  );
}
