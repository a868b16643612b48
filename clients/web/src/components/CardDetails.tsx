// The card panel's details and comment box. Every field of the card (the built-in ones and the
// board's custom fields) is a row that reads as text and edits in place: a click on the value, or
// Enter on it, turns it into an input; Enter or leaving the field saves (one `editCard`), Escape
// cancels, and a value the field refuses says why under the input (role alert) and keeps it open.
// After a save the focus goes back to the value, so the panel can be worked from the keyboard. A
// yes/no field is a checkbox that saves when ticked. The comment box posts a comment to the card's
// timeline (`POST .../timeline`), which makes its author the card's avatar (the server's rule).

import { useEffect, useId, useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import { stageProbability, weighted } from "../model/requirements";
import { isOpenKind } from "../model/schema";
import type { CardData } from "../model/serverFields";
import { editCard } from "../model/write";
import { ApiError, MAX_COMMENT_BYTES, postComment } from "../ui/api";
import { cardEditOf } from "../ui/cardEdit";
import { fieldText, inputValue, type FieldInfo } from "../ui/fields";
import { formatMoney } from "../ui/format";
import { t } from "../ui/i18n";
import { useBoard } from "./context";
import { attempt, fieldControl, sentence } from "./forms";
import { PersonPicker } from "./PersonPicker";
import { useSession } from "./session";

/** The editable rows of a card's fields (members and admins; viewers get a read-only list). */
export function CardDetails({
  card,
  fields,
  stage,
}: {
  card: CardData;
  fields: readonly FieldInfo[];
  stage: Stage | undefined;
}) {
  const board = useBoard();
  const [editing, setEditing] = useState<string | null>(null);
  const [errors, setErrors] = useState<ReadonlyMap<string, string>>(new Map());
  const formRef = useRef<HTMLFormElement>(null);
  // The row whose value gets the focus back once it reads as text again.
  const [refocus, setRefocus] = useState<{ id: string } | null>(null);

  useEffect(() => {
    if (refocus === null) return;
    formRef.current
      ?.querySelector<HTMLElement>(`[data-card-detail="${CSS.escape(refocus.id)}"] [data-action="edit-field"]`)
      ?.focus();
  }, [refocus, editing]);

  const setError = (id: string, message: string | null) =>
    setErrors((previous) => {
      const next = new Map(previous);
      if (message === null) next.delete(id);
      else next.set(id, sentence(message));
      return next;
    });

  const close = (id: string, focus: boolean) => {
    setEditing((current) => (current === id ? null : current));
    setError(id, null);
    if (focus) setRefocus({ id });
  };

  /** Saves what was typed for `field`; returns whether the row may close. */
  const save = (field: FieldInfo, text: string, checked: boolean): boolean => {
    const parsed = cardEditOf(field, text, checked, card.currency);
    if ("error" in parsed) {
      setError(field.id, parsed.error);
      return false;
    }
    const refused = attempt(() => editCard(board.doc, card.id, parsed.edit));
    if (refused !== null) {
      setError(field.id, refused);
      return false;
    }
    setError(field.id, null);
    board.announce(t("detail.saved", { label: field.label }));
    return true;
  };

  const probabilityRow =
    stage !== undefined && isOpenKind(stage.kind) && stage.probabilitySet !== null ? (
      <div class="detail-row" data-card-detail="probability">
        <span class="field-label">{t("detail.probability")}</span>
        <span class="detail-text">
          {t("detail.probabilityValue", {
            probability: stageProbability(stage),
            weighted: formatMoney(weighted(card.amount, stage), card.currency),
          })}
        </span>
      </div>
    ) : null;

  return (
    <form ref={formRef} class="card-details" data-form="card" onSubmit={(event) => event.preventDefault()} noValidate>
      <p class="hint" id={`detail-hint-${card.id}`}>
        {t("detail.hint")}
      </p>
      {fields.map((field) => (
        <DetailRow
          key={field.id}
          card={card}
          field={field}
          editing={editing === field.id}
          error={errors.get(field.id) ?? null}
          onEdit={() => {
            setRefocus(null);
            setEditing(field.id);
          }}
          onSave={(text, checked, focus) => {
            if (save(field, text, checked)) close(field.id, focus);
          }}
          onToggle={(checked) => {
            save(field, "", checked);
          }}
          onCancel={(focus) => close(field.id, focus)}
          onRefuse={(message) => setError(field.id, message)}
        />
      ))}
      {probabilityRow}
    </form>
  );
}

function DetailRow({
  card,
  field,
  editing,
  error,
  onEdit,
  onSave,
  onToggle,
  onCancel,
  onRefuse,
}: {
  card: CardData;
  field: FieldInfo;
  editing: boolean;
  error: string | null;
  onEdit: () => void;
  onSave: (text: string, checked: boolean, focus: boolean) => void;
  onToggle: (checked: boolean) => void;
  onCancel: (focus: boolean) => void;
  /** Shows why what the input holds cannot be saved. */
  onRefuse: (message: string) => void;
}) {
  const board = useBoard();
  const id = useId();
  const labelId = `${id}-label`;
  const errorId = `${id}-error`;
  const rowRef = useRef<HTMLDivElement>(null);
  // Enter or Escape in the row closed it: a focus-out after that has nothing left to save.
  const closedByKey = useRef(false);
  const value = inputValue(card, field);
  const text = fieldText(card, field, board.nameOf);

  if (field.type === "bool") {
    // A checkbox is its own inline editor: ticking it saves.
    return (
      <div class="detail-row detail-check" data-card-detail={field.id}>
        <label class="field field-check">
          <input
            type="checkbox"
            name={field.id}
            checked={card.fields.get(field.id) === true}
            aria-describedby={error !== null ? errorId : undefined}
            onChange={(event) => onToggle(event.currentTarget.checked)}
          />
          <span class="field-label">{field.label}</span>
        </label>
        {error !== null && (
          <p class="form-error" id={errorId} role="alert">
            {error}
          </p>
        )}
      </div>
    );
  }

  if (!editing) {
    closedByKey.current = false;
    return (
      <div class="detail-row" data-card-detail={field.id}>
        <span class="field-label" id={labelId}>
          {field.label}
        </span>
        <button
          type="button"
          class="detail-value"
          data-action="edit-field"
          aria-label={t("detail.edit", { label: field.label, value: text === "" ? t("detail.empty") : text })}
          onClick={onEdit}
        >
          {text === "" ? <span class="muted">—</span> : text}
        </button>
      </div>
    );
  }

  const described = error !== null ? errorId : undefined;
  // A number or date input the browser cannot read ("12a", half a date) has the value "": saving
  // it would clear the field, so it is refused instead.
  const submit = (input: HTMLInputElement | HTMLSelectElement, focus: boolean) => {
    if (input instanceof HTMLInputElement && input.validity.badInput) {
      onRefuse(t(field.type === "date" ? "field.badDate" : "field.badNumber", { label: field.label }));
      return;
    }
    onSave(input.value, false, focus);
  };
  // Leaving the row (not moving inside it, as between a picker's input and its list) saves. Asked
  // a moment later: the focus may be on its way into the row (the value's button just gave way
  // to the input), and a save by Enter or a cancel by Escape has closed the row already. What the
  // input holds is read now: a key pressed right after (Escape closing the panel after a Tab)
  // reaches the page before that moment, and the value must be saved all the same.
  const onFocusOut = () => {
    const row = rowRef.current;
    if (row === null) return;
    const input =
      field.type === "user"
        ? null
        : row.querySelector<HTMLInputElement | HTMLSelectElement>(`[name="${CSS.escape(field.id)}"]`);
    const held =
      input === null ? null : { value: input.value, bad: input instanceof HTMLInputElement && input.validity.badInput };
    window.setTimeout(() => {
      if (row.isConnected) {
        if (row.contains(document.activeElement) || !row.hasAttribute("data-editing")) return;
      } else if (closedByKey.current) {
        return;
      }
      if (field.type === "user") {
        // The picker settles its text on blur (and saves through onCommit): only close the row,
        // unless it refused a name (its message stays in view until Escape or another pick).
        if (row.isConnected && row.querySelector('[aria-invalid="true"]') === null) onCancel(false);
        return;
      }
      if (held === null) return;
      if (held.bad) onRefuse(t(field.type === "date" ? "field.badDate" : "field.badNumber", { label: field.label }));
      else onSave(held.value, false, false);
    }, 0);
  };
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.defaultPrevented) return;
    if (event.key === "Escape") {
      event.preventDefault();
      closedByKey.current = true;
      onCancel(true);
    } else if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      closedByKey.current = true;
      if (field.type === "user") {
        // The picker took a changed name already (it prevents the Enter); unchanged: done.
        onCancel(true);
        return;
      }
      submit(event.target as HTMLInputElement | HTMLSelectElement, true);
    }
  };

  let editor;
  if (field.type === "user") {
    editor = (
      <PersonPicker
        name={field.id}
        label={field.label}
        value={value}
        autoFocus
        describedBy={described}
        // A pick by Enter or a click keeps the focus in the row (then back on the value); the
        // picker's own settling on blur does not pull the focus back from where it went.
        onCommit={(person) => onSave(person, false, rowRef.current?.contains(document.activeElement) ?? false)}
      />
    );
  } else {
    const common = {
      name: field.id,
      "aria-labelledby": labelId,
      "aria-describedby": described,
      "aria-invalid": error !== null,
      ref: (element: HTMLElement | null) => {
        if (element !== null && !element.dataset.focused) {
          element.dataset.focused = "1";
          element.focus();
          if (element instanceof HTMLInputElement && element.type === "text") element.select();
        }
      },
    };
    editor = fieldControl(field, value, card.currency, common, { required: false, emailKeyboard: true });
  }

  return (
    <div
      ref={rowRef}
      class="detail-row is-editing"
      data-card-detail={field.id}
      data-editing=""
      onKeyDown={onKeyDown}
      onFocusOut={onFocusOut}
    >
      {field.type !== "user" && (
        <span class="field-label" id={labelId}>
          {field.label}
        </span>
      )}
      {editor}
      {error !== null && (
        <p class="form-error" id={errorId} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** The timeline's comment box: posts a comment as the person, and keeps the focus for the next. */
export function CommentBox({ cardId, onPosted }: { cardId: string; onPosted: () => void }) {
  const board = useBoard();
  const session = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const areaRef = useRef<HTMLTextAreaElement>(null);
  const id = useId();

  const post = async () => {
    const area = areaRef.current;
    if (area === null || busy) return;
    const text = area.value.trim();
    if (text === "") return setError(t("comment.empty"));
    if (new TextEncoder().encode(text).length > MAX_COMMENT_BYTES) return setError(t("comment.tooLong"));
    setBusy(true);
    setError(null);
    try {
      // Local mode (no accounts): the header's person is the author.
      await postComment(board.boardId, cardId, text, session.me === null ? board.me().id : null);
      area.value = "";
      board.announce(t("comment.posted"));
      onPosted();
    } catch (failure) {
      const said = failure instanceof ApiError ? failure.message : String(failure);
      setError(t("comment.failed", { error: said }));
    } finally {
      setBusy(false);
      area.focus();
    }
  };

  return (
    <form
      class="comment-form"
      data-form="comment"
      onSubmit={(event) => {
        event.preventDefault();
        void post();
      }}
    >
      <label class="field-label" for={`${id}-text`}>
        {t("comment.label")}
      </label>
      <textarea
        ref={areaRef}
        id={`${id}-text`}
        name="comment"
        rows={2}
        placeholder={t("comment.placeholder")}
        aria-describedby={`${id}-hint${error !== null ? ` ${id}-error` : ""}`}
        aria-invalid={error !== null}
        onInput={() => error !== null && setError(null)}
        onKeyDown={(event) => {
          if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
            event.preventDefault();
            void post();
          }
        }}
      />
      <p class="hint" id={`${id}-hint`}>
        {t("comment.hint")}
      </p>
      {error !== null && (
        <p class="form-error" id={`${id}-error`} role="alert">
          {sentence(error)}
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="button primary small" data-action="post-comment" disabled={busy}>
          {busy ? t("comment.posting") : t("comment.post")}
        </button>
      </div>
    </form>
  );
}
