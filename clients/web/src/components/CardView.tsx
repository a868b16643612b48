// One card of a column: the fields of the current user's display form, the avatar and the
// activity counter. Draggable (pragmatic-drag-and-drop), and a drop target that tells which half
// of it the pointer is over (the hitbox package's closest edge), for the drop line. Neither for
// who may not move cards (a viewer): the card then only opens.

import { combine } from "@atlaskit/pragmatic-drag-and-drop/combine";
import { draggable, dropTargetForElements } from "@atlaskit/pragmatic-drag-and-drop/element/adapter";
import { attachClosestEdge } from "@atlaskit/pragmatic-drag-and-drop-hitbox/closest-edge/attach-closest-edge";
import { extractClosestEdge } from "@atlaskit/pragmatic-drag-and-drop-hitbox/closest-edge/extract-closest-edge";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Counter } from "../model/rules";
import type { CardItem } from "../store/boardStore";
import type { FieldInfo } from "../ui/fields";
import { fieldText } from "../ui/fields";
import { formatDeadline, timeAgo } from "../ui/format";
import { t, type Key } from "../ui/i18n";
import type { CardPresence } from "../ui/presence";
import { avatarOf } from "../ui/people";
import { useBoard } from "./context";
import { memo } from "./memo";
import { useSession } from "./session";

export interface CardViewProps {
  item: CardItem;
  stageId: string;
  fields: readonly FieldInfo[];
  presence: CardPresence | undefined;
  now: number;
  /** Changes when names may have changed (roster, people on the board). */
  namesVersion: number;
}

const COUNTER_KEYS: Record<Counter["state"], Key> = {
  due: "card.due",
  incoming: "card.incoming",
  planned: "card.planned",
  idle: "card.idle",
  none: "card.none",
};

/** What a card's activity counter says, in the page's language. */
export function counterLabel(state: Counter["state"]): string {
  return t(COUNTER_KEYS[state]);
}

function CardViewImpl({ item, stageId, fields, presence, now }: CardViewProps) {
  const board = useBoard();
  const { directory } = useSession();
  const { card, counter } = item;
  const ref = useRef<HTMLElement>(null);
  const [edge, setEdge] = useState<"top" | "bottom" | null>(null);
  const [dragging, setDragging] = useState(false);
  const stageRef = useRef(stageId);
  stageRef.current = stageId;

  useEffect(() => {
    const element = ref.current;
    if (element === null || !board.can.moveCards) return;
    return combine(
      draggable({
        element,
        getInitialData: () => ({ type: "card", cardId: card.id, stageId: stageRef.current }),
        onDragStart: () => setDragging(true),
        onDrop: () => setDragging(false),
      }),
      dropTargetForElements({
        element,
        canDrop: ({ source }) => source.data.type === "card" && source.data.cardId !== card.id,
        getData: ({ input, element: target }) =>
          attachClosestEdge(
            { type: "card", cardId: card.id, stageId: stageRef.current },
            { input, element: target, allowedEdges: ["top", "bottom"] },
          ),
        getIsSticky: () => true,
        onDrag: ({ self }) => {
          const next = extractClosestEdge(self.data);
          setEdge((current) => (current === next ? current : next === "top" || next === "bottom" ? next : null));
        },
        onDragLeave: () => setEdge(null),
        onDrop: () => setEdge(null),
      }),
    );
  }, [card.id, board.can]);

  useLayoutEffect(() => {
    if (board.takeFocus(card.id)) ref.current?.focus({ preventScroll: false });
  });

  const avatarUser = card.avatar !== "" ? card.avatar : card.responsible;
  const avatarName = avatarUser === "" ? t("card.nobody") : board.nameOf(avatarUser);
  // The directory's initials and colour when the person has an account (docs/accounts.md).
  const look = avatarOf(directory, avatarUser, avatarName);
  const since = card.avatarAt ?? (card.createdAt > 0 ? card.createdAt : null);
  const reason = card.avatarReason !== null && card.avatarReason !== "responsible" ? ` (${card.avatarReason})` : "";
  const nextDeadline = counter.next !== null ? t("card.next", { deadline: formatDeadline(counter.next, now) }) : "";

  return (
    <article
      ref={ref}
      class="card"
      data-card-id={card.id}
      data-drop-edge={edge ?? undefined}
      data-dragging={dragging ? "" : undefined}
      data-presence-by={presence?.user.id}
      style={presence ? `--presence:${presence.user.color}` : undefined}
      tabIndex={0}
      aria-label={
        board.can.moveCards ? t("card.openMove", { title: card.title }) : t("card.open", { title: card.title })
      }
      onClick={(event) => {
        if ((event.target as Element).closest("[data-counter]")) return;
        board.openCard(card.id);
      }}
      onKeyDown={(event) => {
        if (event.target !== event.currentTarget) return;
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          board.openCard(card.id);
        }
      }}
    >
      {presence && (
        <span
          class="card-presence"
          aria-label={t(presence.what === "dragging" ? "card.dragging" : "card.viewing", { name: presence.user.name })}
        >
          {presence.user.name}
        </span>
      )}
      <div class="card-fields">
        {fields.map((field) => {
          const text = fieldText(card, field, board.nameOf);
          return (
            <div
              key={field.id}
              class={`card-field card-field-${field.builtIn ? field.id : "custom"}`}
              data-card-field={field.id}
            >
              {field.id === "title" || text === "" ? null : (
                <span class="visually-hidden">{t("card.fieldLabel", { label: field.label })}</span>
              )}
              {text === "" ? <span class="muted">—</span> : text}
            </div>
          );
        })}
      </div>
      <div class="card-footer">
        <span class="avatar-group" data-avatar={avatarUser} title={`${avatarName}${reason}`}>
          <span class="avatar" style={`--avatar:${look.color}`} aria-hidden="true">
            {look.initials}
          </span>
          <span class="visually-hidden">{avatarName}</span>
          {since !== null && <span class="avatar-since">{timeAgo(since, now)}</span>}
        </span>
        <button
          type="button"
          class="counter"
          data-counter=""
          data-counter-state={counter.state}
          data-lit={counter.lit > 0 ? "" : undefined}
          data-incoming={counter.incoming > 0 ? "" : undefined}
          aria-label={t("card.showActivities", {
            label: counterLabel(counter.state),
            count: counter.count,
            next: nextDeadline,
          })}
          title={`${counterLabel(counter.state)}${nextDeadline}`}
          data-counter-count={counter.count}
          onClick={(event) => {
            event.stopPropagation();
            board.openActivities(card.id);
          }}
        >
          {counter.state === "idle" ? <IdleMark /> : counter.count}
        </button>
      </div>
    </article>
  );
}

export const CardView = memo(CardViewImpl);

/** An idle card's counter: "nothing planned", with an empty-calendar icon, not a red 0. */
function IdleMark() {
  return (
    <>
      <svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true" focusable="false">
        <rect x="2" y="3" width="12" height="11" rx="2" fill="none" stroke="currentColor" stroke-width="1.4" />
        <path d="M2 6.5h12M5.5 1.5v3M10.5 1.5v3" stroke="currentColor" stroke-width="1.4" />
      </svg>
      <span class="counter-idle-text">{t("card.nothingPlanned")}</span>
    </>
  );
}
