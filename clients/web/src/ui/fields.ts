// The fields a card can show or ask for: the built-in card keys and the board's custom fields
// (`fields` root). The quick-create form (`forms.quickCreate`, set by an admin) and each user's
// display form (`views[user]`) are lists of these ids. This module turns field ids into labels,
// inputs into values, and values into the text of a card face.

import type { Json } from "../model/board";
import type { FieldDef } from "../model/fieldDefs";
import type { FieldType } from "../model/schema";
import type { CardData } from "../model/serverFields";
import type { NewCard } from "../model/write";
import { formatMoney, parseMoneyInput, moneyInputValue } from "./format";
import { currentLanguage, t, translate, type Key, type Language } from "./i18n";

export interface FieldInfo {
  id: string;
  label: string;
  type: FieldType;
  options: readonly string[];
  builtIn: boolean;
  /** Whether the quick-create form may ask for it. */
  creatable: boolean;
}

export const BUILT_IN_FIELDS: readonly FieldInfo[] = [
  { id: "title", label: "Title", type: "string", options: [], builtIn: true, creatable: true },
  { id: "amount", label: "Amount", type: "money", options: [], builtIn: true, creatable: true },
  { id: "client", label: "Client", type: "string", options: [], builtIn: true, creatable: true },
  { id: "email", label: "E-mail", type: "string", options: [], builtIn: true, creatable: true },
  { id: "responsible", label: "Responsible", type: "user", options: [], builtIn: true, creatable: true },
  { id: "currency", label: "Currency", type: "string", options: [], builtIn: true, creatable: true },
  { id: "createdAt", label: "Created", type: "date", options: [], builtIn: true, creatable: false },
  { id: "closeDate", label: "Expected close", type: "date", options: [], builtIn: true, creatable: false },
  { id: "lostReason", label: "Lost reason", type: "string", options: [], builtIn: true, creatable: false },
];

/** The quick-create form of a board that never configured one. */
export const DEFAULT_QUICK_CREATE: readonly string[] = ["title", "amount", "client"];
/** The display form of a user who never configured one. */
export const DEFAULT_DISPLAY: readonly string[] = ["title", "amount", "client"];

const BUILT_IN_LABELS: Record<string, Key> = {
  title: "field.title",
  amount: "field.amount",
  client: "field.client",
  email: "field.email",
  responsible: "field.responsible",
  currency: "field.currency",
  createdAt: "field.createdAt",
  closeDate: "field.closeDate",
  lostReason: "field.lostReason",
};

/** A built-in field's label in `language` ("Amount", "Montant"). */
export function builtInLabel(id: string, language: Language = currentLanguage()): string {
  const key = BUILT_IN_LABELS[id];
  return key === undefined ? id : translate(language, key);
}

/** Every field of the board: built-ins first (labelled in `language`), then custom fields. */
export function allFields(defs: readonly FieldDef[], language: Language = currentLanguage()): FieldInfo[] {
  const builtInIds = new Set(BUILT_IN_FIELDS.map((f) => f.id));
  return [
    ...BUILT_IN_FIELDS.map((f) => ({ ...f, label: builtInLabel(f.id, language) })),
    ...defs
      .filter((d) => !builtInIds.has(d.id))
      .map((d) => ({ id: d.id, label: d.label, type: d.type, options: d.options, builtIn: false, creatable: true })),
  ];
}

/** The quick-create form's fields: the title always first, then the configured creatable fields. */
export function quickCreateFieldsOf(configured: readonly string[] | null, fields: readonly FieldInfo[]): FieldInfo[] {
  const byId = new Map(fields.map((f) => [f.id, f]));
  const ids = ["title", ...(configured ?? DEFAULT_QUICK_CREATE).filter((id) => id !== "title")];
  return unique(ids)
    .map((id) => byId.get(id))
    .filter((f): f is FieldInfo => f !== undefined && f.creatable);
}

/** The card face's fields: the user's display form, or the default; the title when it is empty. */
export function displayFieldsOf(configured: readonly string[] | null, fields: readonly FieldInfo[]): FieldInfo[] {
  const byId = new Map(fields.map((f) => [f.id, f]));
  const shown = unique(configured ?? DEFAULT_DISPLAY)
    .map((id) => byId.get(id))
    .filter((f): f is FieldInfo => f !== undefined);
  return shown.length > 0 ? shown : [byId.get("title")!];
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/** A card's value for a field, raw (built-in keys and custom values alike). */
export function rawValue(card: CardData, field: string): Json {
  switch (field) {
    case "title":
      return card.title;
    case "amount":
      return card.amount;
    case "currency":
      return card.currency;
    case "client":
      return card.client;
    case "email":
      return card.email;
    case "responsible":
      return card.responsible;
    case "createdAt":
      return card.createdAt;
    case "closeDate":
      return card.closeDate;
    case "lostReason":
      return card.lostReason;
    default:
      return card.fields.get(field) ?? null;
  }
}

/** The text a card face shows for a field; empty when the card has no value. */
export function fieldText(card: CardData, field: FieldInfo, nameOf: (user: string) => string, locale?: string): string {
  const value = rawValue(card, field.id);
  if (value === null || value === "") return "";
  if (field.id === "amount") return formatMoney(card.amount, card.currency, locale);
  switch (field.type) {
    case "money":
      return typeof value === "number" ? formatMoney(value, card.currency, locale) : jsonText(value);
    case "date":
      return typeof value === "number" && value !== 0
        ? new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric" }).format(value)
        : "";
    case "user":
      return typeof value === "string" ? nameOf(value) : jsonText(value);
    case "bool":
      return value === true
        ? t("field.yes", { label: field.label })
        : value === false
          ? t("field.no", { label: field.label })
          : "";
    case "number":
      return typeof value === "number" ? new Intl.NumberFormat(locale).format(value) : jsonText(value);
    default:
      return jsonText(value);
  }
}

/** A value as text when its field's type does not say how: strings as they are, the rest as JSON. */
function jsonText(value: Json): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A value as the text of its input (what the card panel and forms show). */
export function inputValue(card: CardData, field: FieldInfo): string {
  const value = rawValue(card, field.id);
  if (value === null) return "";
  if (field.type === "money" && typeof value === "number") return moneyInputValue(value, card.currency);
  if (field.type === "date" && typeof value === "number") return value === 0 ? "" : dateInputValue(value);
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** A date input's value ("2026-03-05") for an instant, local time. */
export function dateInputValue(instant: number): string {
  const d = new Date(instant);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** What a custom field input holds, as the value to store; an error message when it is wrong. */
export function parseFieldInput(
  field: FieldInfo,
  text: string,
  checked: boolean,
  currency: string,
): { value: unknown } | { error: string } {
  switch (field.type) {
    case "bool":
      return { value: checked };
    case "money": {
      const minor = parseMoneyInput(text, currency);
      return minor === null ? { error: t("field.badAmount", { label: field.label }) } : { value: minor };
    }
    case "number": {
      if (text.trim() === "") return { value: null };
      const n = Number(text);
      return Number.isFinite(n) ? { value: n } : { error: t("field.badNumber", { label: field.label }) };
    }
    case "date": {
      if (text.trim() === "") return { value: null };
      const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
      if (match === null) return { error: t("field.badDate", { label: field.label }) };
      return { value: new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3])).getTime() };
    }
    default:
      return { value: text.trim() };
  }
}

/** A three-letter currency code, upper case; null when it is not one. */
export function parseCurrency(text: string): string | null {
  const code = text.trim().toUpperCase();
  return /^[A-Z]{3}$/.test(code) ? code : null;
}

/**
 * The quick-create form's values as a new card. `values` holds each input's text by name,
 * `checked` the checkboxes. The responsible defaults to the current user.
 */
export function newCardFrom(
  fields: readonly FieldInfo[],
  values: ReadonlyMap<string, string>,
  checked: ReadonlySet<string>,
  boardCurrency: string,
  me: string,
): { card: NewCard } | { error: string } {
  const text = (id: string) => values.get(id) ?? "";
  let currency = boardCurrency;
  if (fields.some((f) => f.id === "currency") && text("currency").trim() !== "") {
    const parsed = parseCurrency(text("currency"));
    if (parsed === null) return { error: t("panel.badCurrency") };
    currency = parsed;
  }
  const card: NewCard = { title: text("title").trim(), currency, responsible: me, client: "" };
  if (card.title === "") return { error: t("forms.titleNeeded") };
  const custom: Record<string, unknown> = {};
  for (const field of fields) {
    switch (field.id) {
      case "title":
      case "currency":
        break;
      case "amount": {
        const minor = parseMoneyInput(text("amount"), currency);
        if (minor === null) return { error: t("field.badAmount", { label: field.label }) };
        card.amount = minor;
        break;
      }
      case "client":
        card.client = text("client").trim();
        break;
      case "email": {
        const email = parseEmail(text("email"));
        if (email === null) return { error: emailError() };
        card.email = email;
        break;
      }
      case "responsible":
        if (text("responsible").trim() !== "") card.responsible = text("responsible").trim();
        break;
      default: {
        const parsed = parseFieldInput(field, text(field.id), checked.has(field.id), currency);
        if ("error" in parsed) return parsed;
        if (parsed.value !== null && parsed.value !== "") custom[field.id] = parsed.value;
      }
    }
  }
  if (Object.keys(custom).length > 0) card.fields = custom;
  return { card };
}

/** What a malformed e-mail address is told, in the page's language. */
export const emailError = (): string => t("field.badEmail");

/**
 * A client's e-mail address as typed: trimmed, empty for none, or null when it is not of the
 * form `local@domain.tld` (no spaces, one `@`, a dot in the domain, the lengths of RFC 5321).
 * The server checks the same on the API's writes (`email_address`, stricter on the local part).
 */
export function parseEmail(text: string): string | null {
  const email = text.trim();
  if (email === "") return "";
  if (email.length > 254) return null;
  const match =
    /^([^\s@"(),:;<>[\]\\]{1,64})@([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$/.exec(
      email,
    );
  if (match === null) return null;
  const local = match[1] ?? "";
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) return null;
  return email;
}
