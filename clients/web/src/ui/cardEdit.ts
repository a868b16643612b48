// What one inline edit of the card panel writes: the text (or the box) a person typed for one
// field of a card, as the `CardEdit` of the model's `editCard`, or the sentence that says why it
// is refused. Pure: the panel (components/CardDetails.tsx) writes what this returns.

import type { CardEdit } from "../model/write";
import { emailError, parseCurrency, parseEmail, parseFieldInput, type FieldInfo } from "./fields";
import { parseMoneyInput } from "./format";
import { t } from "./i18n";

/** The edit that sets `field` from what was typed, or the error to show beside the input. */
export function cardEditOf(
  field: FieldInfo,
  text: string,
  checked: boolean,
  currency: string,
): { edit: CardEdit } | { error: string } {
  switch (field.id) {
    case "title": {
      const title = text.trim();
      return title === "" ? { error: t("detail.titleNeeded") } : { edit: { title } };
    }
    case "amount": {
      const minor = parseMoneyInput(text, currency);
      return minor === null ? { error: t("field.badAmount", { label: field.label }) } : { edit: { amount: minor } };
    }
    case "currency": {
      const code = parseCurrency(text);
      return code === null ? { error: t("panel.badCurrency") } : { edit: { currency: code } };
    }
    case "client":
      return { edit: { client: text.trim() } };
    case "email": {
      const email = parseEmail(text);
      return email === null ? { error: emailError() } : { edit: { email } };
    }
    case "responsible":
      return { edit: { responsible: text.trim() } };
    case "lostReason":
      return { edit: { lostReason: text.trim() } };
    case "closeDate": {
      const parsed = parseFieldInput(field, text, checked, currency);
      return "error" in parsed ? parsed : { edit: { closeDate: parsed.value as number | null } };
    }
    default: {
      const parsed = parseFieldInput(field, text, checked, currency);
      if ("error" in parsed) return parsed;
      if (field.type === "enum" && parsed.value !== "" && !field.options.includes(parsed.value as string))
        return { error: t("detail.badChoice", { label: field.label }) };
      // An emptied text field clears its value rather than storing "".
      const value = parsed.value === "" ? null : parsed.value;
      return { edit: { fields: { [field.id]: value } } };
    }
  }
}
