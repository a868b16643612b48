// The board's small forms: quick-create (the + of a column), the stage editor (the pencil), and
// "+ Activity". Each submit is one write through the model's helpers; a refusal shows the model's
// own message under the form.

import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import { OrderError } from "../model/order";
import { isOpenKind } from "../model/schema";
import { addActivity, BoardError, createCard, deleteStage, recolorStage, renameStage } from "../model/write";
import { defaultDeadline, fromDatetimeLocal, toDatetimeLocal } from "../ui/deadline";
import { newCardFrom, type FieldInfo } from "../ui/fields";
import { formText } from "../ui/formData";
import { formatMoney } from "../ui/format";
import { t, type Key } from "../ui/i18n";
import { writeErrorText } from "../ui/writeErrors";
import { useBoard } from "./context";
import { PersonPicker } from "./PersonPicker";

/** Runs a write; returns the refusal's sentence when the model refuses (other errors propagate). */
export function attempt(write: () => void): string | null {
  try {
    write();
    return null;
  } catch (error) {
    if (error instanceof BoardError || error instanceof OrderError) return writeErrorText(error);
    throw error;
  }
}

/** Capitalised, for display: the model's messages are lowercase sentences. */
export function sentence(message: string): string {
  return message.charAt(0).toUpperCase() + message.slice(1);
}

export function FormError({ message }: { message: string | null }) {
  return message === null ? null : (
    <p class="form-error" role="alert">
      {sentence(message)}
    </p>
  );
}

/** Focuses the first field of a form when it opens. */
export function useFocusFirst(ref: { current: HTMLFormElement | null }): void {
  // Before the form is painted: a key pressed as soon as it shows goes to it.
  useLayoutEffect(() => {
    ref.current?.querySelector<HTMLElement>("input:not([type=hidden]), select, textarea")?.focus();
  }, [ref]);
}

function onEscape(close: () => void) {
  return (event: KeyboardEvent) => {
    if (event.key === "Escape" && !event.defaultPrevented) {
      event.preventDefault();
      close();
    }
  };
}

function Field({ label, children, inline }: { label: string; children: ComponentChildren; inline?: boolean }) {
  return (
    <label class={inline ? "field field-inline" : "field"}>
      <span class="field-label">{label}</span>
      {children}
    </label>
  );
}

/**
 * The control of a field that is neither a person nor a yes/no (those have their own): a select
 * of its options, or an input of its type, holding `value` at first; `props` go on it (its name,
 * handlers, labels). Shared by the quick-create form and the card panel's inline editors.
 */
export function fieldControl(
  field: FieldInfo,
  value: string,
  currency: string,
  props: Record<string, unknown>,
  { required, emailKeyboard }: { required: boolean; emailKeyboard: boolean },
) {
  if (field.type === "enum") {
    return (
      // `selected` on the option: Preact sets a select's defaultValue as a bare property, which
      // selects nothing.
      <select {...props}>
        <option value="" selected={value === ""}>
          —
        </option>
        {field.options.map((option) => (
          <option key={option} value={option} selected={option === value}>
            {option}
          </option>
        ))}
      </select>
    );
  }
  if (field.type === "money") {
    return (
      <input
        type="text"
        inputMode="decimal"
        autoComplete="off"
        placeholder={`${formatMoney(0, "")} ${currency}`}
        defaultValue={value}
        {...props}
      />
    );
  }
  if (field.type === "number") return <input type="number" step="any" defaultValue={value} {...props} />;
  if (field.type === "date") return <input type="date" defaultValue={value} {...props} />;
  if (field.id === "currency") {
    return (
      <input
        type="text"
        maxLength={3}
        autoComplete="off"
        spellcheck={false}
        class="input-currency"
        defaultValue={value}
        {...props}
      />
    );
  }
  return (
    <input
      type="text"
      inputMode={emailKeyboard && field.id === "email" ? "email" : undefined}
      autoComplete="off"
      required={required}
      maxLength={field.id === "title" ? 200 : undefined}
      defaultValue={value}
      {...props}
    />
  );
}

/** One input of a field, named by the field id. */
export function FieldInput({
  field,
  value,
  checked,
  currency,
  onCommit,
}: {
  field: FieldInfo;
  value: string;
  checked?: boolean;
  currency: string;
  onCommit?: (value: string, checked: boolean) => void;
}) {
  if (field.type === "user") {
    // A people picker: the directory with accounts, the roster (or any typed id) in local mode.
    return (
      <PersonPicker
        name={field.id}
        label={field.label}
        value={value}
        {...(onCommit ? { onCommit: (id: string) => onCommit(id, false) } : {})}
      />
    );
  }
  const commit = onCommit
    ? {
        onChange: (event: Event) => {
          const input = event.currentTarget as HTMLInputElement | HTMLSelectElement;
          onCommit(input.value, input instanceof HTMLInputElement ? input.checked : false);
        },
      }
    : {};
  const common = { name: field.id, ...commit };
  if (field.type === "bool") {
    return (
      <label class="field field-check">
        <input type="checkbox" {...common} defaultChecked={checked ?? false} />
        <span class="field-label">{field.label}</span>
      </label>
    );
  }
  const input = fieldControl(field, value, currency, common, { required: field.id === "title", emailKeyboard: false });
  return <Field label={field.label}>{input}</Field>;
}

// ---------------------------------------------------------------------------------------------

export function QuickCreateForm({ stageId, fields }: { stageId: string; fields: readonly FieldInfo[] }) {
  const board = useBoard();
  const [error, setError] = useState<string | null>(null);
  const currency = board.snapshot().settings.currency;
  const close = () => board.openQuickCreate(null);
  const formRef = useRef<HTMLFormElement>(null);
  useFocusFirst(formRef);

  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const values = new Map<string, string>();
    const checked = new Set<string>();
    for (const [name, value] of data) {
      if (typeof value === "string") values.set(name, value);
    }
    for (const box of form.querySelectorAll<HTMLInputElement>("input[type=checkbox]"))
      if (box.checked) checked.add(box.name);
    const parsed = newCardFrom(fields, values, checked, currency, board.me().id);
    if ("error" in parsed) {
      setError(parsed.error);
      return;
    }
    let id = "";
    const refused = attempt(() => (id = createCard(board.doc, stageId, parsed.card, Date.now())));
    if (refused !== null) {
      setError(refused);
      return;
    }
    board.announce(t("forms.cardCreated", { title: parsed.card.title }));
    board.created(id);
    close();
  };

  return (
    <form
      ref={formRef}
      class="inline-form"
      data-form="quick-create"
      onSubmit={submit}
      onKeyDown={onEscape(close)}
      aria-label={t("forms.newCard")}
    >
      {fields.map((field) => (
        <FieldInput
          key={field.id}
          field={field}
          value={field.id === "responsible" ? board.me().id : field.id === "currency" ? currency : ""}
          currency={currency}
        />
      ))}
      <FormError message={error} />
      <div class="form-actions">
        <button type="submit" class="button primary">
          {t("common.save")}
        </button>
        <button type="button" class="button" onClick={close}>
          {t("common.cancel")}
        </button>
      </div>
    </form>
  );
}

// ---------------------------------------------------------------------------------------------

export function StageForm({ stage }: { stage: Stage }) {
  const board = useBoard();
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState(false);
  const close = () => board.editStage(null);
  const formRef = useRef<HTMLFormElement>(null);
  useFocusFirst(formRef);
  const stages = board.snapshot().stages;
  // Where the cards of a deleted stage may go: the open stages, and for a failure stage the other
  // failure stages too (its lost deals stay lost). The success stage and the last failure stage
  // cannot be deleted at all (the model refuses), so they offer no Delete.
  const others = stages.filter(
    (s) => s.id !== stage.id && (isOpenKind(s.kind) || (stage.kind === "failure" && s.kind === "failure")),
  );
  const deletable =
    stage.kind === "progress" ||
    (stage.kind === "failure" && stages.some((s) => s.id !== stage.id && s.kind === "failure"));
  const defaultTarget = others.find((s) => s.kind === "initial")?.id ?? others[0]?.id ?? "";
  const color = /^#[0-9a-fA-F]{6}$/.test(stage.color) ? stage.color.toLowerCase() : "#8a94a6";

  const save = (event: SubmitEvent) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const name = formText(data, "name");
    const newColor = formText(data, "color", color);
    const refused = attempt(() =>
      board.doc.transact(() => {
        if (name.trim() !== stage.name) renameStage(board.doc, stage.id, name);
        if (newColor.toLowerCase() !== stage.color.toLowerCase()) recolorStage(board.doc, stage.id, newColor);
      }),
    );
    if (refused !== null) return setError(refused);
    board.announce(t("forms.stageSaved", { stage: name.trim() }));
    close();
  };

  const confirmDelete = () => {
    const select = document.querySelector<HTMLSelectElement>(`form[data-form="stage"] select[name="cards-to"]`);
    const target = select?.value ?? defaultTarget;
    const refused = attempt(() => deleteStage(board.doc, stage.id, target));
    if (refused !== null) return setError(refused);
    board.announce(t("forms.stageDeleted", { stage: stage.name }));
    close();
  };

  return (
    <form
      ref={formRef}
      class="inline-form stage-form"
      data-form="stage"
      onSubmit={save}
      onKeyDown={onEscape(close)}
      aria-label={t("column.edit", { stage: stage.name })}
    >
      <Field label={t("home.name")}>
        <input type="text" name="name" required maxLength={200} defaultValue={stage.name} autoComplete="off" />
      </Field>
      <Field label={t("forms.colour")} inline>
        <input type="color" name="color" defaultValue={color} />
      </Field>
      <FormError message={error} />
      {deleting ? (
        <div class="confirm-delete">
          <Field label={t("forms.moveCardsTo")}>
            <select name="cards-to">
              {others.map((s) => (
                <option key={s.id} value={s.id} selected={s.id === defaultTarget}>
                  {s.name}
                </option>
              ))}
            </select>
          </Field>
          <div class="form-actions">
            <button type="button" class="button danger" data-action="confirm-delete-stage" onClick={confirmDelete}>
              {t("forms.deleteStage")}
            </button>
            <button type="button" class="button" onClick={() => setDeleting(false)}>
              {t("forms.keepIt")}
            </button>
          </div>
        </div>
      ) : (
        <div class="form-actions">
          <button type="submit" class="button primary">
            {t("common.save")}
          </button>
          <button type="button" class="button" onClick={close}>
            {t("common.cancel")}
          </button>
          {deletable && (
            <button
              type="button"
              class="button danger-quiet"
              data-action="delete-stage"
              onClick={() => setDeleting(true)}
            >
              {t("forms.deleteEllipsis")}
            </button>
          )}
        </div>
      )}
    </form>
  );
}

// ---------------------------------------------------------------------------------------------

export const ACTIVITY_KINDS: readonly { kind: string; label: Key }[] = [
  { kind: "call", label: "activity.call" },
  { kind: "meeting", label: "activity.meeting" },
  { kind: "task", label: "activity.task" },
  { kind: "email", label: "activity.email" },
  { kind: "chat", label: "activity.chat" },
];

export function activityKindLabel(kind: string): string {
  const known = ACTIVITY_KINDS.find((k) => k.kind === kind);
  return known !== undefined ? t(known.label) : kind === "" ? t("activity.activity") : kind;
}

export function ActivityForm({ card, onDone }: { card: string; onDone: () => void }) {
  const board = useBoard();
  const [error, setError] = useState<string | null>(null);
  const deadline = useMemo(() => toDatetimeLocal(defaultDeadline(Date.now())), []);
  const subjectRef = useRef<HTMLInputElement>(null);
  useEffect(() => subjectRef.current?.focus(), []);

  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const kind = formText(data, "kind", "task");
    const subject = formText(data, "subject").trim() || activityKindLabel(kind);
    const rawDeadline = formText(data, "deadline");
    const when = rawDeadline === "" ? null : fromDatetimeLocal(rawDeadline);
    if (rawDeadline !== "" && when === null) return setError(t("forms.badDeadline"));
    const responsible = formText(data, "responsible").trim() || board.me().id;
    const refused = attempt(() => {
      addActivity(board.doc, {
        card,
        kind,
        direction: "outgoing",
        subject,
        deadline: when,
        remindMin: null,
        responsible,
      });
    });
    if (refused !== null) return setError(refused);
    board.announce(t("forms.activityPlanned", { kind: activityKindLabel(kind) }));
    onDone();
  };

  return (
    <form
      class="inline-form activity-form"
      data-form="activity"
      onSubmit={submit}
      onKeyDown={onEscape(onDone)}
      aria-label={t("forms.newActivity")}
    >
      <div class="form-row">
        <Field label={t("home.kind")}>
          <select name="kind">
            {ACTIVITY_KINDS.map((k) => (
              <option key={k.kind} value={k.kind} selected={k.kind === "call"}>
                {t(k.label)}
              </option>
            ))}
          </select>
        </Field>
        <Field label={t("forms.deadline")}>
          <input type="datetime-local" name="deadline" defaultValue={deadline} />
        </Field>
      </div>
      <Field label={t("forms.subject")}>
        <input
          ref={subjectRef}
          type="text"
          name="subject"
          autoComplete="off"
          placeholder={t("forms.subjectPlaceholder")}
        />
      </Field>
      <PersonPicker name="responsible" label={t("field.responsible")} value={board.me().id} />
      <FormError message={error} />
      <div class="form-actions">
        <button type="submit" class="button primary">
          {t("common.save")}
        </button>
        <button type="button" class="button" onClick={onDone}>
          {t("common.cancel")}
        </button>
      </div>
    </form>
  );
}
