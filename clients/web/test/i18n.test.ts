// The catalogues and the locale formatting (src/ui/i18n.ts, src/ui/format.ts).

import { describe, expect, test } from "vitest";
import { en } from "../src/i18n/en";
import { fr } from "../src/i18n/fr";
import {
  formatDate,
  formatDateTime,
  formatDeadline,
  formatMoney,
  formatNumber,
  formatSums,
  timeAgo,
} from "../src/ui/format";
import { CATALOGUES, initialLanguage, LANGUAGES, localeOf, parseLanguage, translate } from "../src/ui/i18n";

/** Intl's narrow no-break spaces as plain spaces, so the expectations read as typed. */
const spaces = (text: string) => text.replace(/[\u00a0\u202f]/gu, " ");

const placeholders = (message: unknown): string[] =>
  [...JSON.stringify(message).matchAll(/\{(\w+)\}/gu)].map((m) => m[1]!).sort();

describe("catalogues", () => {
  test("every language has every English key, and no other, each non-empty", () => {
    for (const language of LANGUAGES) {
      const catalogue = CATALOGUES[language];
      expect(Object.keys(catalogue).sort()).toEqual(Object.keys(en).sort());
      for (const [key, message] of Object.entries(catalogue)) {
        const forms = typeof message === "string" ? [message] : Object.values(message);
        for (const form of forms) expect(form.trim(), `${language} ${key}`).not.toBe("");
      }
    }
  });

  test("a French message has the same placeholders as the English one", () => {
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect([...new Set(placeholders(fr[key]))], key).toEqual([...new Set(placeholders(en[key]))]);
    }
  });

  test("plurals by Intl.PluralRules: French 0 and 1 are singular, English only 1", () => {
    expect(translate("en", "common.cards", { count: 0 })).toBe("0 cards");
    expect(translate("en", "common.cards", { count: 1 })).toBe("1 card");
    expect(translate("en", "common.cards", { count: 2 })).toBe("2 cards");
    expect(translate("fr", "common.cards", { count: 0 })).toBe("0 fiche");
    expect(translate("fr", "common.cards", { count: 1 })).toBe("1 fiche");
    expect(translate("fr", "common.cards", { count: 2 })).toBe("2 fiches");
    expect(spaces(translate("fr", "common.cards", { count: 1250 }))).toBe("1 250 fiches");
  });

  test("placeholders are filled, a missing one is left as written", () => {
    expect(translate("fr", "board.movedTo", { stage: "Gagnée" })).toBe("Fiche déplacée vers Gagnée");
    expect(translate("en", "board.movedTo")).toBe("Card moved to {stage}");
  });
});

describe("the language", () => {
  test("the saved choice, else the browser's first language we speak, else English", () => {
    expect(initialLanguage("fr", ["en-US"])).toBe("fr");
    expect(initialLanguage(null, ["de-DE", "fr-CA", "en"])).toBe("fr");
    expect(initialLanguage("xx", ["en-GB"])).toBe("en");
    expect(initialLanguage(null, ["de", "es"])).toBe("en");
    expect(initialLanguage(null, [])).toBe("en");
  });

  test("language tags", () => {
    expect(parseLanguage("fr-FR")).toBe("fr");
    expect(parseLanguage("EN_us")).toBe("en");
    expect(parseLanguage("de")).toBeNull();
    expect(parseLanguage(null)).toBeNull();
  });

  test("the locale: the browser's variant of the language, else the usual one", () => {
    expect(localeOf("en", ["en-GB", "fr"])).toBe("en-GB");
    expect(localeOf("fr", ["en-GB", "fr-CA"])).toBe("fr-CA");
    expect(localeOf("fr", ["en-US"])).toBe("fr-FR");
    expect(localeOf("en", ["fr-FR"])).toBe("en-US");
  });
});

describe("formatting by locale", () => {
  test("money in fr-FR and en-US", () => {
    expect(spaces(formatMoney(125000, "EUR", "fr-FR"))).toBe("1 250,00 €");
    expect(formatMoney(125000, "EUR", "en-US")).toBe("€1,250.00");
    expect(formatMoney(125000, "USD", "en-US")).toBe("$1,250.00");
    expect(spaces(formatMoney(125000, "USD", "fr-FR"))).toBe("1 250,00 $US");
    expect(
      spaces(
        formatSums(
          new Map([
            ["EUR", 100],
            ["USD", 250],
          ]),
          "EUR",
          "fr-FR",
        ),
      ),
    ).toBe("1,00 € + 2,50 $US");
  });

  test("numbers and dates in fr-FR and en-US", () => {
    expect(spaces(formatNumber(1250.5, "fr-FR"))).toBe("1 250,5");
    expect(formatNumber(1250.5, "en-US")).toBe("1,250.5");
    const day = new Date(2026, 11, 3, 12).getTime();
    expect(formatDate(day, "fr-FR")).toBe("3 déc. 2026");
    expect(formatDate(day, "en-US")).toBe("Dec 3, 2026");
  });

  test("a kept formatter is the locale's and the style's: each locale, each style in turn, and again", () => {
    const at = new Date(2026, 11, 3, 9, 35).getTime();
    const now = new Date(2026, 11, 1, 8, 0).getTime();
    const nextYear = new Date(2027, 0, 5, 10, 0).getTime();
    for (let round = 0; round < 2; round++) {
      for (const locale of ["fr-FR", "en-US"]) {
        expect(formatDateTime(at, locale)).toBe(
          new Date(at).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }),
        );
        expect(formatDate(at, locale)).toBe(locale === "fr-FR" ? "3 déc. 2026" : "Dec 3, 2026");
        // The same year's deadline has no year, the next year's has one: two styles, not one.
        expect(formatDeadline(at, now, locale)).not.toMatch(/2026/);
        expect(formatDeadline(nextYear, now, locale)).toMatch(/2027/);
      }
    }
  });

  test("time ago and deadlines speak the locale's language", () => {
    const now = new Date(2026, 2, 10, 12).getTime();
    expect(timeAgo(now - 10_000, now, "fr-FR")).toBe("à l'instant");
    expect(timeAgo(now - 5 * 60_000, now, "fr-FR")).toBe("il y a 5 min");
    expect(timeAgo(now - 50 * 3_600_000, now, "fr-FR")).toBe("il y a 2 j");
    expect(timeAgo(now - 5 * 60_000, now, "en-US")).toBe("5 min ago");
    expect(formatDeadline(new Date(2026, 2, 10, 14, 0).getTime(), now, "fr-FR")).toBe("Aujourd'hui 14:00");
    expect(formatDeadline(new Date(2026, 2, 11, 9, 30).getTime(), now, "fr-FR")).toBe("Demain 09:30");
    expect(formatDeadline(new Date(2026, 2, 16, 10, 0).getTime(), now, "fr-FR")).toBe("lun. 16 mars 10:00");
  });
});
