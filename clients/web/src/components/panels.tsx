// The side panels of the board (one open at a time): a card's details, a card's activities (from
// its counter), the settings; and the workload panel under the toolbar. What the user's role may
// not change is shown, not offered: a viewer reads a card's fields and activities; a member's
// settings hold only their own card fields.

import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Activity, Stage, Workload } from "../model/board";
import { CARD_KEY, MAX_THRESHOLD_MIN } from "../model/schema";
import { cardYMap, type CardData } from "../model/serverFields";
import type * as Y from "yjs";
import {
  completeActivity,
  defineField,
  setCounterThreshold,
  setDisplayFields,
  setQuickCreateFields,
} from "../model/write";
import type { BoardSnapshot, CardItem } from "../store/boardStore";
import { fetchInboundAddress, fetchTimeline, senderText, type InboundAddress, type TimelineEvent } from "../ui/api";
import { allFields, displayFieldsOf, fieldText, quickCreateFieldsOf } from "../ui/fields";
import { formatDeadline, formatMoney, formatSums, timeAgo } from "../ui/format";
import { formText } from "../ui/formData";
import { avatarOf } from "../ui/people";
import { CardDetails, CommentBox } from "./CardDetails";
import { CardHistory } from "./CardHistory";
import { currentLanguage, t } from "../ui/i18n";
import { counterLabel } from "./CardView";
import { useBoard } from "./context";
import { ActivityForm, activityKindLabel, attempt, FormError } from "./forms";
import { useSession } from "./session";

export function Drawer({
  panel,
  title,
  children,
  onClose,
}: {
  panel: string;
  title: string;
  children: ComponentChildren;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const titleId = `panel-title-${panel}`;
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    ref.current?.focus();
    return () => {
      if (previous?.isConnected && document.activeElement === document.body) previous.focus();
    };
  }, [panel]);
  return (
    <div
      ref={ref}
      class="drawer"
      data-panel={panel}
      role="dialog"
      aria-labelledby={titleId}
      tabIndex={-1}
      onKeyDown={(event) => {
        if (event.key === "Escape" && !event.defaultPrevented) {
          event.preventDefault();
          onClose();
        }
      }}
    >
      <header class="drawer-header">
        <h2 id={titleId}>{title}</h2>
        <button
          type="button"
          class="icon-button"
          data-action="close-panel"
          aria-label={t("common.close")}
          onClick={onClose}
        >
          ×
        </button>
      </header>
      <div class="drawer-body">{children}</div>
    </div>
  );
}

function Avatar({ user, size }: { user: string; size?: "small" }) {
  const board = useBoard();
  const { directory } = useSession();
  const name = user === "" ? t("card.nobody") : board.nameOf(user);
  const look = avatarOf(directory, user, name);
  return (
    <span
      class={`avatar${size === "small" ? " avatar-small" : ""}`}
      style={`--avatar:${look.color}`}
      title={name}
      aria-hidden="true"
    >
      {look.initials}
    </span>
  );
}

// ---------------------------------------------------------------------------------------------
// Activities

export function ActivityList({ activities, now }: { activities: readonly Activity[]; now: number }) {
  const board = useBoard();
  const open = activities
    .filter((a) => !a.facts.done)
    .sort((a, b) => (a.facts.deadline ?? Infinity) - (b.facts.deadline ?? Infinity));
  const done = activities.filter((a) => a.facts.done);
  const threshold = board.snapshot().settings.counterThresholdMin;
  return (
    <div class="activity-list">
      {open.length === 0 && <p class="muted">{t("panel.noOpenActivities")}</p>}
      <ul class="rows">
        {open.map((activity) => {
          const { deadline, remindMin, direction } = activity.facts;
          const lit =
            deadline !== null && direction !== "incoming" && deadline - (remindMin ?? threshold) * 60_000 <= now;
          return (
            <li key={activity.id} class="activity-row" data-activity-id={activity.id} data-lit={lit ? "" : undefined}>
              <span class={`activity-kind kind-${activity.kind}`}>{activityKindLabel(activity.kind)}</span>
              <span class="activity-main">
                <span class="activity-subject">{activity.subject || activityKindLabel(activity.kind)}</span>
                <span class="activity-meta">
                  {direction === "incoming"
                    ? deadline !== null
                      ? t("panel.cameInAgo", { ago: timeAgo(deadline, now) })
                      : t("panel.cameIn")
                    : deadline !== null
                      ? formatDeadline(deadline, now)
                      : t("panel.noDeadline")}
                  {" · "}
                  {activity.facts.responsible === "" ? t("card.nobody") : board.nameOf(activity.facts.responsible)}
                </span>
              </span>
              {board.can.editActivities && (
                <button
                  type="button"
                  class="button small"
                  data-action="complete-activity"
                  onClick={() => board.write(() => completeActivity(board.doc, activity.id, true))}
                >
                  {t("panel.complete")}
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {done.length > 0 && (
        <details class="done-activities">
          <summary>{t("panel.done", { count: done.length })}</summary>
          <ul class="rows">
            {done.map((activity) => (
              <li key={activity.id} class="activity-row done" data-activity-id={activity.id} data-done="">
                <span class={`activity-kind kind-${activity.kind}`}>{activityKindLabel(activity.kind)}</span>
                <span class="activity-main">
                  <span class="activity-subject">{activity.subject || activityKindLabel(activity.kind)}</span>
                </span>
                {board.can.editActivities && (
                  <button
                    type="button"
                    class="button small"
                    data-action="reopen-activity"
                    onClick={() => board.write(() => completeActivity(board.doc, activity.id, false))}
                  >
                    {t("panel.reopen")}
                  </button>
                )}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

function ActivitiesSection({ item, now }: { item: CardItem; now: number }) {
  const board = useBoard();
  const [adding, setAdding] = useState(false);
  return (
    <section class="panel-section" aria-label={t("filter.state")}>
      <div class="section-title">
        <h3>{t("filter.state")}</h3>
        {!adding && board.can.editActivities && (
          <button type="button" class="button small primary" data-action="add-activity" onClick={() => setAdding(true)}>
            {t("panel.addActivity")}
          </button>
        )}
      </div>
      {adding && board.can.editActivities && <ActivityForm card={item.card.id} onDone={() => setAdding(false)} />}
      <ActivityList activities={item.activities} now={now} />
    </section>
  );
}

export function ActivitiesPanel({ item, now }: { item: CardItem; now: number }) {
  const board = useBoard();
  const { counter } = item;
  return (
    <Drawer panel="activities" title={t("panel.activitiesOf", { title: item.card.title })} onClose={board.closePanel}>
      <p class="counter-summary">
        <span class="counter" data-counter-state={counter.state} aria-hidden="true">
          {counter.count}
        </span>{" "}
        {counterLabel(counter.state)}
        {counter.next !== null && <> · {t("panel.nextDeadline", { deadline: formatDeadline(counter.next, now) })}</>}
      </p>
      <ActivitiesSection item={item} now={now} />
      <button type="button" class="button link" onClick={() => board.openCard(item.card.id)}>
        {t("panel.openCard")}
      </button>
    </Drawer>
  );
}

// ---------------------------------------------------------------------------------------------
// Card

/** A field's place in the card panel: the built-in order, but the currency right after the amount. */
function detailRank(id: string): number {
  const order = ["title", "amount", "currency", "client", "email", "responsible", "closeDate", "lostReason"];
  const at = order.indexOf(id);
  return at === -1 ? order.length : at;
}

export function CardPanel({ item, snapshot }: { item: CardItem; snapshot: BoardSnapshot }) {
  const board = useBoard();
  const { card } = item;
  const lostReasons = snapshot.settings.lostReasons;
  const language = currentLanguage();
  const fields = useMemo(
    () =>
      allFields(snapshot.fieldDefs, language)
        .filter((f) => f.id !== "createdAt")
        // The currency right under the amount it is the currency of.
        .sort((a, b) => detailRank(a.id) - detailRank(b.id))
        // A lost reason is chosen from the board's list when it has one.
        .map((f) =>
          f.id === "lostReason" && lostReasons.length > 0 ? { ...f, type: "enum" as const, options: lostReasons } : f,
        ),
    [snapshot.fieldDefs, lostReasons, language],
  );
  const stage = snapshot.columns.find((c) => c.items.some((i) => i.card.id === card.id))?.stage;

  return (
    <Drawer panel="card" title={card.title} onClose={board.closePanel}>
      <div class="card-panel-meta">
        {stage && !board.can.moveCards && (
          <span class="field field-inline" data-card-stage={stage.id}>
            <span class="field-label">{t("panel.stage")}</span> {stage.name}
          </span>
        )}
        {stage && board.can.moveCards && (
          <label class="field field-inline">
            <span class="field-label">{t("panel.stage")}</span>
            <select
              value={stage.id}
              onChange={(event) => {
                const target = event.currentTarget.value;
                board.moveCard(card.id, { stage: target, at: "top" });
              }}
            >
              {snapshot.stages.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <span class="muted">
          {t("panel.amountCreated", {
            amount: formatMoney(card.amount, card.currency),
            ago: card.createdAt > 0 ? timeAgo(card.createdAt, snapshot.now) : "—",
          })}
        </span>
      </div>
      <section class="panel-section" aria-label={t("detail.details")}>
        <h3>{t("detail.details")}</h3>
        {!board.can.editCards ? (
          <dl class="card-fields-read" data-card-fields-read="">
            {fields.map((field) => {
              const text = fieldText(card, field, board.nameOf);
              return (
                <div key={field.id} class="read-field" data-read-field={field.id}>
                  <dt>{field.label}</dt>
                  <dd>{text === "" ? <span class="muted">—</span> : text}</dd>
                </div>
              );
            })}
          </dl>
        ) : (
          <CardDetails card={card} fields={fields} stage={stage} />
        )}
      </section>
      <ActivitiesSection item={item} now={snapshot.now} />
      <Timeline boardId={board.boardId} cardId={card.id} now={snapshot.now} />
      <CardHistory cardId={card.id} snapshot={snapshot} />
      {board.can.editCards && (
        <section class="panel-section card-danger" aria-label={t("panel.archiveOrDelete")}>
          <div class="form-actions">
            <button type="button" class="button" data-action="archive-card" onClick={() => board.archiveCard(card.id)}>
              {t("home.archive")}
            </button>
            <button
              type="button"
              class="button danger-quiet"
              data-action="delete-card"
              onClick={() => board.deleteCard(card.id)}
            >
              {t("panel.deleteCard")}
            </button>
          </div>
          <p class="hint">{t("panel.archiveHint")}</p>
        </section>
      )}
    </Drawer>
  );
}

function Timeline({ boardId, cardId, now }: { boardId: string; cardId: string; now: number }) {
  const board = useBoard();
  const [events, setEvents] = useState<TimelineEvent[] | null | "loading">("loading");
  // The server writes the card's `timelineAt` with each new event: refetch when it changes.
  const [revision, setRevision] = useState(0);
  useEffect(() => {
    const map = cardYMap(board.doc, cardId);
    if (map === null) return;
    const onChange = (event: Y.YMapEvent<unknown>) => {
      if (event.keysChanged.has(CARD_KEY.TIMELINE_AT)) setRevision((r) => r + 1);
    };
    map.observe(onChange);
    return () => map.unobserve(onChange);
  }, [board.doc, cardId]);
  useEffect(() => {
    const abort = new AbortController();
    setEvents("loading");
    fetchTimeline(boardId, cardId, abort.signal)
      .then((list) => !abort.signal.aborted && setEvents(list))
      .catch(() => !abort.signal.aborted && setEvents(null));
    return () => abort.abort();
  }, [boardId, cardId, revision]);
  return (
    <section class="panel-section" aria-label={t("panel.timeline")} data-timeline="">
      <h3>{t("panel.timeline")}</h3>
      {board.can.editCards && events !== null && (
        <CommentBox cardId={cardId} onPosted={() => setRevision((r) => r + 1)} />
      )}
      {events === "loading" ? (
        <p class="muted">{t("common.loading")}</p>
      ) : events === null ? (
        <p class="muted">{t("panel.noTimelineServer")}</p>
      ) : events.length === 0 ? (
        <p class="muted" data-timeline-empty="">
          {t("panel.noTimeline")}
        </p>
      ) : (
        <ul class="rows timeline">
          {events.map((event) => (
            <li
              key={event.id}
              class="timeline-row"
              data-timeline-kind={event.kind}
              data-timeline-direction={event.direction}
            >
              <Avatar user={event.user} size="small" />
              <span class="activity-main">
                <span class={`timeline-label timeline-${event.direction || "none"}`} data-timeline-label="">
                  {timelineLabel(event.kind, event.direction)}
                </span>
                {event.mail !== null ? (
                  <span class="timeline-mail" data-timeline-mail="">
                    <span class="timeline-mail-subject">{event.mail.subject || t("panel.noSubject")}</span>
                    <span class="timeline-mail-from">{t("panel.mailFrom", { sender: senderText(event.mail) })}</span>
                    {event.text !== "" && <span class="timeline-mail-text">{event.text}</span>}
                  </span>
                ) : (
                  <span>{event.text || event.kind}</span>
                )}
                <span class="activity-meta">
                  {event.user === "" ? "" : `${board.nameOf(event.user)} · `}
                  {event.at > 0 ? timeAgo(event.at, now) : event.kind}
                </span>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** The archived cards, most recently archived first, each restorable to where it was. */
export function ArchivedPanel({ cards, stages }: { cards: readonly CardData[]; stages: readonly Stage[] }) {
  const board = useBoard();
  return (
    <Drawer panel="archived" title={t("panel.archivedCards")} onClose={board.closePanel}>
      {cards.length === 0 ? (
        <p class="muted">{t("panel.nothingArchived")}</p>
      ) : (
        <ul class="rows">
          {cards.map((card) => (
            <li key={card.id} class="archived-row" data-archived-card={card.id}>
              <span class="activity-main">
                <span class="activity-subject">{card.title || t("panel.noTitle")}</span>
                <span class="activity-meta">
                  {stages.find((s) => s.id === card.stage)?.name ?? t("panel.deletedStage")} ·{" "}
                  {formatMoney(card.amount, card.currency)}
                  {card.archivedAt !== null &&
                    ` · ${t("panel.archivedAgo", { ago: timeAgo(card.archivedAt, Date.now()) })}`}
                </span>
              </span>
              {board.can.editCards && (
                <button
                  type="button"
                  class="button small"
                  data-action="restore-card"
                  onClick={() => board.archiveCard(card.id, true)}
                >
                  {t("home.restore")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </Drawer>
  );
}

/** What a timeline entry is, in words: "Comment", "Missed call", "E-mail received", ... */
export function timelineLabel(kind: string, direction: string): string {
  switch (kind) {
    case "comment":
      return t("timeline.comment");
    case "call":
      return t(
        direction === "missed"
          ? "timeline.missedCall"
          : direction === "outgoing"
            ? "timeline.outgoingCall"
            : "timeline.incomingCall",
      );
    case "email":
      return t(direction === "outgoing" ? "timeline.emailSent" : "timeline.emailReceived");
    case "chat":
      return t(direction === "outgoing" ? "timeline.chatSent" : "timeline.chatReceived");
    default:
      return kind === "" ? t("timeline.event") : kind;
  }
}

// ---------------------------------------------------------------------------------------------
// Settings

export function SettingsPanel({
  snapshot,
  displayed,
}: {
  snapshot: BoardSnapshot;
  displayed: readonly string[] | null;
}) {
  const board = useBoard();
  const [error, setError] = useState<string | null>(null);
  const language = currentLanguage();
  const fields = useMemo(() => allFields(snapshot.fieldDefs, language), [snapshot.fieldDefs, language]);
  const quick = new Set(quickCreateFieldsOf(snapshot.quickCreate, fields).map((f) => f.id));
  const display = new Set(displayFieldsOf(displayed, fields).map((f) => f.id));

  const save = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const checkedOf = (attribute: string) =>
      fields
        .filter((f) => form.querySelector<HTMLInputElement>(`input[${attribute}="${CSS.escape(f.id)}"]`)?.checked)
        .map((f) => f.id);
    const quickCreate = checkedOf("data-quick-create-field");
    const displayFields = checkedOf("data-display-field");
    const thresholdText = (form.elements.namedItem("threshold") as HTMLInputElement | null)?.value ?? "";
    const threshold = Number(thresholdText);
    const me = board.me().id;
    const { editBoardSettings, editOwnDisplay } = board.can;
    const refused = attempt(() =>
      board.doc.transact(() => {
        // Only what this role may write: a member's save touches their own display form alone.
        if (editBoardSettings && !sameList(quickCreate, [...quick])) setQuickCreateFields(board.doc, quickCreate);
        if (editOwnDisplay && (displayed === null || !sameList(displayFields, displayed)))
          setDisplayFields(board.doc, me, displayFields);
        if (editBoardSettings && threshold !== snapshot.settings.counterThresholdMin)
          setCounterThreshold(board.doc, threshold);
      }),
    );
    if (refused !== null) return setError(refused);
    board.announce(t("panel.settingsSaved"));
    board.closePanel();
  };

  return (
    <Drawer panel="settings" title={t("panel.settings")} onClose={board.closePanel}>
      <form class="settings-form" data-form="settings" onSubmit={save}>
        {board.can.editBoardSettings && (
          <fieldset>
            <legend>{t("panel.quickCreate")}</legend>
            <p class="hint">{t("settings.quickCreateHint")}</p>
            {fields
              .filter((f) => f.creatable)
              .map((f) => (
                <label key={f.id} class="field field-check">
                  <input
                    type="checkbox"
                    data-quick-create-field={f.id}
                    defaultChecked={quick.has(f.id)}
                    disabled={f.id === "title"}
                  />
                  <span>{f.label}</span>
                </label>
              ))}
          </fieldset>
        )}
        <fieldset>
          <legend>{t("panel.myFields")}</legend>
          <p class="hint">{t("settings.myFieldsHint")}</p>
          {fields.map((f) => (
            <label key={f.id} class="field field-check">
              <input type="checkbox" data-display-field={f.id} defaultChecked={display.has(f.id)} />
              <span>{f.label}</span>
            </label>
          ))}
        </fieldset>
        {board.can.editBoardSettings && (
          <fieldset>
            <legend>{t("panel.counter")}</legend>
            <label class="field">
              <span class="field-label">{t("settings.threshold")}</span>
              <input
                type="number"
                name="threshold"
                min={0}
                max={MAX_THRESHOLD_MIN}
                step={1}
                required
                defaultValue={String(snapshot.settings.counterThresholdMin)}
              />
            </label>
          </fieldset>
        )}
        {board.can.editBoardSettings && <InboundMailSettings boardId={board.boardId} />}
        <FormError message={error} />
        <div class="form-actions">
          <button type="submit" class="button primary" data-action="save-settings">
            {t("common.save")}
          </button>
          <button type="button" class="button" onClick={board.closePanel}>
            {t("common.cancel")}
          </button>
        </div>
      </form>
      {board.can.editBoardSettings && <NewFieldForm />}
    </Drawer>
  );
}

/** The board's inbound e-mail address (admins): mail to it becomes deals or timeline entries. */
function InboundMailSettings({ boardId }: { boardId: string }) {
  const [inbound, setInbound] = useState<InboundAddress | null | "loading">("loading");
  useEffect(() => {
    const abort = new AbortController();
    fetchInboundAddress(boardId, abort.signal)
      .then((found) => !abort.signal.aborted && setInbound(found))
      .catch(() => !abort.signal.aborted && setInbound(null));
    return () => abort.abort();
  }, [boardId]);
  if (inbound === null) return null;
  return (
    <fieldset>
      <legend>{t("settings.inbound")}</legend>
      {inbound === "loading" ? (
        <p class="muted">{t("common.loading")}</p>
      ) : (
        <>
          <p class="hint">
            {t("settings.inboundHint")}
            {inbound.secretRequired ? ` ${t("settings.inboundSecret")}` : ""}
          </p>
          <input
            class="inbound-address"
            type="text"
            readOnly
            aria-label={t("settings.inboundAddress")}
            data-inbound-address=""
            value={inbound.address}
            onFocus={(event) => event.currentTarget.select()}
          />
          {!inbound.smtp && (
            <p class="hint">{t("settings.noSmtp", { path: `/api/v1/boards/${boardId}/inbound-email` })}</p>
          )}
        </>
      )}
    </fieldset>
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const FIELD_TYPES = ["string", "number", "money", "date", "enum", "user", "bool"] as const;

function NewFieldForm() {
  const board = useBoard();
  const [error, setError] = useState<string | null>(null);
  const [type, setType] = useState("string");
  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const options = formText(data, "options")
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== "");
    const refused = attempt(() => defineField(board.doc, null, formText(data, "label"), type, options));
    setError(refused);
    if (refused === null) {
      form.reset();
      setType("string");
      board.announce(t("settings.fieldAdded"));
    }
  };
  return (
    <form class="settings-form new-field" data-form="new-field" onSubmit={submit}>
      <fieldset>
        <legend>{t("settings.newField")}</legend>
        <div class="form-row">
          <label class="field">
            <span class="field-label">{t("settings.label")}</span>
            <input type="text" name="label" required maxLength={200} autoComplete="off" />
          </label>
          <label class="field">
            <span class="field-label">{t("settings.type")}</span>
            <select name="type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
              {FIELD_TYPES.map((kind) => (
                <option key={kind} value={kind}>
                  {t(`fieldType.${kind}`)}
                </option>
              ))}
            </select>
          </label>
        </div>
        {type === "enum" && (
          <label class="field">
            <span class="field-label">{t("settings.choices")}</span>
            <input type="text" name="options" autoComplete="off" />
          </label>
        )}
        <FormError message={error} />
        <button type="submit" class="button">
          {t("settings.addField")}
        </button>
      </fieldset>
    </form>
  );
}

// ---------------------------------------------------------------------------------------------
// Workload

export function WorkloadPanel({ workload, currency }: { workload: readonly Workload[]; currency: string }) {
  const board = useBoard();
  return (
    <section class="workload" data-panel="workload" aria-label={t("workload.label")}>
      <table>
        <thead>
          <tr>
            <th scope="col">{t("workload.manager")}</th>
            <th scope="col" class="num">
              {t("workload.cards")}
            </th>
            <th scope="col" class="num">
              {t("workload.amount")}
            </th>
            <th scope="col" class="num">
              {t("workload.due")}
            </th>
          </tr>
        </thead>
        <tbody>
          {workload.length === 0 && (
            <tr>
              <td colSpan={4} class="muted">
                {t("workload.empty")}
              </td>
            </tr>
          )}
          {workload.map((load) => (
            <tr key={load.responsible} data-workload-user={load.responsible}>
              <th scope="row">
                <Avatar user={load.responsible} size="small" />{" "}
                {load.responsible === "" ? t("workload.unassigned") : board.nameOf(load.responsible)}
              </th>
              <td class="num" data-workload-cards="">
                {load.cards}
              </td>
              <td class="num" data-workload-amount="">
                {formatSums(load.amounts, currency)}
              </td>
              <td class="num" data-workload-lit="">
                {load.lit > 0 ? <span class="lit-count">{load.lit}</span> : 0}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="hint">{t("workload.total", { count: workload.reduce((n, l) => n + l.cards, 0) })}</p>
    </section>
  );
}
