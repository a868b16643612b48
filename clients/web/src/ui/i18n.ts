// The languages of the page: the current one (localStorage `funnel.language`, else the browser's
// `navigator.languages`, else English), the catalogues (src/i18n/en.ts is the reference,
// src/i18n/fr.ts must have every key: the type says so), `t(key, params)` with plurals through
// `Intl.PluralRules`, and the locale numbers, money and dates are formatted in (src/ui/format.ts).

import { useEffect, useState } from "preact/hooks";
import { en, type Key, type Message } from "../i18n/en";
import { fr } from "../i18n/fr";

export type Language = "en" | "fr";
export const LANGUAGES: readonly Language[] = ["en", "fr"];
export const LANGUAGE_KEY = "funnel.language";

/** Each language's catalogue; `Record<Key, Message>` makes a missing French key a type error. */
export const CATALOGUES: Record<Language, Record<Key, Message>> = { en, fr };

/** Each language's own name, for the switch. */
export const LANGUAGE_NAMES: Record<Language, string> = { en: "English", fr: "Français" };

/** A language tag as one of ours: "fr-CA" is fr, "en-GB" en, "de" null. */
export function parseLanguage(tag: string | null | undefined): Language | null {
  if (typeof tag !== "string") return null;
  const base = tag.trim().toLowerCase().split(/[-_]/u)[0];
  return base === "en" || base === "fr" ? base : null;
}

/** The language to start in: the saved choice, else the first of the browser's we speak, else en. */
export function initialLanguage(saved: string | null, browser: readonly string[]): Language {
  const chosen = parseLanguage(saved);
  if (chosen !== null) return chosen;
  for (const tag of browser) {
    const language = parseLanguage(tag);
    if (language !== null) return language;
  }
  return "en";
}

function savedChoice(): string | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage.getItem(LANGUAGE_KEY);
  } catch {
    return null;
  }
}

function browserLanguages(): readonly string[] {
  if (typeof navigator === "undefined") return [];
  return navigator.languages?.length ? navigator.languages : navigator.language ? [navigator.language] : [];
}

let current: Language = initialLanguage(savedChoice(), browserLanguages());
const listeners = new Set<(language: Language) => void>();

/** The page's language now. */
export function currentLanguage(): Language {
  return current;
}

/**
 * The locale numbers and dates are shown in: the browser's own when it is a variant of the
 * language (en-GB stays en-GB), else the language's usual one (en-US, fr-FR).
 */
export function localeOf(language: Language, browser: readonly string[] = browserLanguages()): string {
  const own = browser.find((tag) => parseLanguage(tag) === language);
  if (own !== undefined) {
    try {
      return Intl.getCanonicalLocales(own)[0] ?? own;
    } catch {
      // A malformed tag: fall back to the language's usual locale.
    }
  }
  return language === "fr" ? "fr-FR" : "en-US";
}

const pageLocales = new Map<Language, string>();

/** The locale of `language` on this page (worked out once: a board renders it for every card). */
export function pageLocale(language: Language): string {
  let locale = pageLocales.get(language);
  if (locale === undefined) {
    locale = localeOf(language);
    pageLocales.set(language, locale);
  }
  return locale;
}

/** The locale of the page's language. */
export function currentLocale(): string {
  return pageLocale(current);
}

/** Switches the page's language: saved, `<html lang>` set, every listener told (the app re-renders). */
export function setLanguage(language: Language, store: boolean = true): void {
  if (store) {
    try {
      localStorage.setItem(LANGUAGE_KEY, language);
    } catch {
      // The browser refuses storage: the choice lasts as long as the page.
    }
  }
  if (language === current) return;
  current = language;
  applyDocumentLanguage();
  for (const listener of listeners) listener(language);
}

/** `<html lang>` follows the language. */
export function applyDocumentLanguage(): void {
  if (typeof document !== "undefined") document.documentElement.lang = current;
}

/** Calls `listener` on each switch; returns the unsubscribe. */
export function onLanguageChange(listener: (language: Language) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The current language, kept current: a component that calls it re-renders on a switch. */
export function useLanguage(): Language {
  const [language, setState] = useState(current);
  useEffect(() => {
    setState(current);
    return onLanguageChange(setState);
  }, []);
  return language;
}

export type Params = Record<string, string | number>;

const pluralRules = new Map<string, Intl.PluralRules>();
const numberFormats = new Map<string, Intl.NumberFormat>();

/** The locale's plain number format, made once (src/ui/format.ts formats numbers with it too). */
export function numberFormat(locale: string): Intl.NumberFormat {
  let format = numberFormats.get(locale);
  if (format === undefined) {
    format = new Intl.NumberFormat(locale);
    numberFormats.set(locale, format);
  }
  return format;
}

function pluralRule(locale: string): Intl.PluralRules {
  let rules = pluralRules.get(locale);
  if (rules === undefined) {
    rules = new Intl.PluralRules(locale);
    pluralRules.set(locale, rules);
  }
  return rules;
}

/**
 * The message `key` in `language`, its `{name}` placeholders filled from `params` (numbers in the
 * locale's digits); a plural message picks its form from `params.count` by `Intl.PluralRules`.
 */
export function translate(language: Language, key: Key, params: Params = {}): string {
  const message = CATALOGUES[language][key] ?? en[key];
  const locale = pageLocale(language);
  let text: string;
  if (typeof message === "string") {
    text = message;
  } else {
    const count = Number(params.count ?? 0);
    const form = pluralRule(locale).select(count);
    text = message[form] ?? message.other;
  }
  return text.replace(/\{(\w+)\}/gu, (whole, name: string) => {
    const value = params[name];
    if (value === undefined) return whole;
    return typeof value === "number" ? numberFormat(locale).format(value) : value;
  });
}

/** The message `key` in the page's language. */
export function t(key: Key, params?: Params): string {
  return translate(current, key, params);
}

export type { Key, Message };
