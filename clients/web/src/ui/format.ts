// How numbers, money, times and names are shown. Pure: the locale and the clock are parameters
// (by default the page's language's locale, src/ui/i18n.ts, and the app's clock), so tests pin them.

import type { Millis } from "../model/rules";
import { currentLanguage, currentLocale, numberFormat, parseLanguage, translate, type Key, type Params } from "./i18n";

/** The locale the app formats with: the page's language's (en-US, fr-FR, or the browser's variant). */
export function defaultLocale(): string {
  return currentLocale();
}

/**
 * The formatter made once for `key` (its locale and style): making one costs tens of
 * microseconds, formatting with it about one, and a board formats for every card it shows.
 */
const formatters = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat | null>();

function kept<T extends Intl.NumberFormat | Intl.DateTimeFormat | null>(key: string, make: () => T): T {
  let format = formatters.get(key) as T | undefined;
  if (format === undefined) {
    format = make();
    formatters.set(key, format);
  }
  return format;
}

function dateTimeFormat(locale: string, style: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  return kept(`${style}|${locale}`, () => new Intl.DateTimeFormat(locale, options));
}

/** A message in the language of `locale` (the page's when the locale names none of ours). */
function say(locale: string, key: Key, params?: Params): string {
  return translate(parseLanguage(locale) ?? currentLanguage(), key, params);
}

/** A plain number in the locale: "1,250.5" in en-US, "1 250,5" in fr-FR. */
export function formatNumber(value: number, locale: string = defaultLocale()): string {
  return numberFormat(locale).format(value);
}

/** A calendar day in the locale: "3 Dec 2026" (en-GB), "Dec 3, 2026" (en-US), "3 déc. 2026" (fr-FR). */
export function formatDate(at: Millis, locale: string = defaultLocale()): string {
  return dateTimeFormat(locale, "date", { day: "numeric", month: "short", year: "numeric" }).format(at);
}

const fractionDigitsCache = new Map<string, number>();

/** How many minor units a currency has (USD 2, JPY 0, BHD 3); 2 for an unknown code. */
export function minorDigits(currency: string): number {
  const cached = fractionDigitsCache.get(currency);
  if (cached !== undefined) return cached;
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    // Not an ISO 4217 code: show it with two decimals.
  }
  fractionDigitsCache.set(currency, digits);
  return digits;
}

/** The locale's format of `currency`; `null` for a code Intl does not know. */
function moneyFormat(currency: string, locale: string): Intl.NumberFormat | null {
  return kept(`money ${currency}|${locale}`, () => {
    try {
      return new Intl.NumberFormat(locale, { style: "currency", currency });
    } catch {
      return null;
    }
  });
}

/** An amount in minor units, with its currency: `formatMoney(150000, "USD", "en-US")` is "$1,500.00". */
export function formatMoney(minor: number, currency: string, locale: string = defaultLocale()): string {
  const digits = minorDigits(currency);
  const value = minor / 10 ** digits;
  const format = moneyFormat(currency, locale);
  if (format !== null) return format.format(value);
  const number = kept(
    `fixed${digits}|${locale}`,
    () => new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits }),
  ).format(value);
  return currency === "" ? number : `${number} ${currency}`;
}

/**
 * A column's or a manager's sums, one per currency, in the given order; an empty map shows
 * zero in `fallbackCurrency`.
 */
export function formatSums(
  sums: ReadonlyMap<string, number>,
  fallbackCurrency: string,
  locale: string = defaultLocale(),
): string {
  if (sums.size === 0) return formatMoney(0, fallbackCurrency, locale);
  return [...sums].map(([currency, minor]) => formatMoney(minor, currency, locale)).join(" + ");
}

/**
 * What a person typed in an amount field, as minor units: "1500" is 150000 cents, "12.5" 1250,
 * "1 234,56" 123456. Empty is 0. `null` when it is not a number.
 */
export function parseMoneyInput(text: string, currency: string): number | null {
  let cleaned = text.replace(/[\s\u00a0_']/g, "");
  if (cleaned === "") return 0;
  const lastComma = cleaned.lastIndexOf(",");
  const lastDot = cleaned.lastIndexOf(".");
  if (lastComma > lastDot) {
    // "1.234,56" or "12,5": the comma is the decimal mark.
    cleaned = cleaned.replace(/\./g, "").replace(",", ".");
  } else {
    cleaned = cleaned.replace(/,/g, "");
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(cleaned)) return null;
  const value = Number(cleaned);
  if (!Number.isFinite(value)) return null;
  const minor = Math.round(value * 10 ** minorDigits(currency));
  return Number.isSafeInteger(minor) ? minor : null;
}

/** Minor units as the text of an amount input ("1500.00"). */
export function moneyInputValue(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  return (minor / 10 ** digits).toFixed(digits);
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "just now", "5 min ago", "3 h ago", "2 d ago", then the date. Future instants read "just now". */
export function timeAgo(then: Millis, now: Millis, locale: string = defaultLocale()): string {
  const elapsed = now - then;
  if (elapsed < MINUTE) return say(locale, "time.justNow");
  if (elapsed < HOUR) return say(locale, "time.minutesAgo", { count: Math.floor(elapsed / MINUTE) });
  if (elapsed < DAY) return say(locale, "time.hoursAgo", { count: Math.floor(elapsed / HOUR) });
  if (elapsed < 30 * DAY) return say(locale, "time.daysAgo", { count: Math.floor(elapsed / DAY) });
  return formatDate(then, locale);
}

/** A deadline relative to today: "Today 14:00", "Tomorrow 09:30", "Mon 12 May 10:00". */
export function formatDeadline(deadline: Millis, now: Millis, locale: string = defaultLocale()): string {
  const time = dateTimeFormat(locale, "time", { hour: "2-digit", minute: "2-digit" }).format(deadline);
  const days = dayNumber(deadline) - dayNumber(now);
  if (days === 0) return say(locale, "time.today", { time });
  if (days === 1) return say(locale, "time.tomorrow", { time });
  if (days === -1) return say(locale, "time.yesterday", { time });
  const sameYear = new Date(deadline).getFullYear() === new Date(now).getFullYear();
  const date = dateTimeFormat(locale, sameYear ? "weekday" : "weekday-year", {
    weekday: "short",
    day: "numeric",
    month: "short",
    ...(sameYear ? {} : { year: "numeric" }),
  }).format(deadline);
  return `${date} ${time}`;
}

/** A local calendar day number, for "today" and "tomorrow". */
function dayNumber(instant: Millis): number {
  const date = new Date(instant);
  return Math.round(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()) / DAY);
}

/** Up to two initials: "Ann Lee" → "AL", "bob" → "BO", "" → "?". */
export function initials(name: string): string {
  const words = name
    .trim()
    .split(/[\s._-]+/u)
    .filter((w) => w !== "");
  if (words.length === 0) return "?";
  const first = Array.from(words[0]!);
  if (words.length === 1) return first.slice(0, 2).join("").toUpperCase();
  const last = Array.from(words[words.length - 1]!);
  return `${first[0]}${last[0]}`.toUpperCase();
}

/** A count with its noun: "1 card", "3 cards". */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

/** A moment as a date and a time of day, in the page's locale: "3 Dec 2026, 09:35". */
export function formatDateTime(at: Millis, locale: string = defaultLocale()): string {
  return dateTimeFormat(locale, "date-time", { dateStyle: "medium", timeStyle: "short" }).format(at);
}
