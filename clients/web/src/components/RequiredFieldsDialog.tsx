// Asks for what a stage requires before a card enters it (a won deal's amount, a lost deal's
// reason, ...): one input per missing field, then the edit and the move in one transaction. The
// server takes back a move that lacks them whatever the client, so this is where a person
// learns what is missing, not what enforces it.

import { useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import type { CardEdit } from "../model/write";
import type { CardItem } from "../store/boardStore";
import { emailError, parseEmail, parseFieldInput, type FieldInfo } from "../ui/fields";
import { formText } from "../ui/formData";
import { parseMoneyInput } from "../ui/format";
import { t } from "../ui/i18n";
import { FieldInput, FormError, useFocusFirst } from "./forms";

const needed = (field: FieldInfo) =>
  t(field.id === "amount" ? "required.amountNeeded" : "required.needed", { label: field.label });

export interface PendingMove {
  card: CardItem;
  stage: Stage;
  missing: readonly string[];
}

export function RequiredFieldsDialog({
  move,
  fields,
  lostReasons,
  onSubmit,
  onCancel,
}: {
  move: PendingMove;
  /** Every field of the board (built-in and custom). */
  fields: readonly FieldInfo[];
  lostReasons: readonly string[];
  /** Writes the edit and the move; returns an error message when the model refused. */
  onSubmit: (edit: CardEdit) => string | null;
  onCancel: () => void;
}) {
  const formRef = useRef<HTMLFormElement>(null);
  const [error, setError] = useState<string | null>(null);
  useFocusFirst(formRef);
  const { card } = move.card;
  const asked: FieldInfo[] = move.missing.map((key) => {
    const known = fields.find((f) => f.id === key);
    const field = known ?? { id: key, label: key, type: "string", options: [], builtIn: false, creatable: false };
    if (key === "lostReason" && lostReasons.length > 0) return { ...field, type: "enum", options: lostReasons };
    return field;
  });

  const submit = (event: Event) => {
    event.preventDefault();
    const data = new FormData(formRef.current!);
    const edit: CardEdit = {};
    const custom: Record<string, unknown> = {};
    for (const field of asked) {
      const text = formText(data, field.id).trim();
      const checked = data.get(field.id) === "on";
      if (field.type !== "bool" && text === "") return setError(needed(field));
      switch (field.id) {
        case "amount": {
          const minor = parseMoneyInput(text, card.currency);
          if (minor === null) return setError(t("field.badAmount", { label: field.label }));
          if (minor === 0) return setError(needed(field));
          edit.amount = minor;
          break;
        }
        case "email": {
          const email = parseEmail(text);
          if (email === null || email === "") return setError(emailError());
          edit.email = email;
          break;
        }
        case "client":
          edit.client = text;
          break;
        case "responsible":
          edit.responsible = text;
          break;
        case "lostReason":
          edit.lostReason = text;
          break;
        case "closeDate": {
          const parsed = parseFieldInput(field, text, false, card.currency);
          if ("error" in parsed) return setError(parsed.error);
          edit.closeDate = parsed.value as number;
          break;
        }
        default: {
          const parsed = parseFieldInput(field, text, checked, card.currency);
          if ("error" in parsed) return setError(parsed.error);
          custom[field.id] = parsed.value;
        }
      }
    }
    if (Object.keys(custom).length > 0) edit.fields = custom;
    const refused = onSubmit(edit);
    if (refused !== null) setError(refused);
  };

  const titleId = `required-title-${card.id}`;
  return (
    <div class="dialog-backdrop" onClick={(e) => e.target === e.currentTarget && onCancel()}>
      <div
        class="dialog required-dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        data-required-dialog={move.stage.id}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            e.stopPropagation();
            onCancel();
          }
        }}
      >
        <h2 id={titleId}>{t("required.title", { card: card.title, stage: move.stage.name })}</h2>
        <p class="muted">{t("required.intro", { stage: move.stage.name })}</p>
        <form ref={formRef} class="stack-form" data-form="required" onSubmit={submit} noValidate>
          {asked.map((field) => (
            <FieldInput key={field.id} field={field} value="" currency={card.currency} />
          ))}
          <FormError message={error} />
          <div class="form-actions">
            <button type="submit" class="button primary" data-action="confirm-move">
              {t("required.submit")}
            </button>
            <button type="button" class="button" data-action="cancel-move" onClick={onCancel}>
              {t("common.cancel")}
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
