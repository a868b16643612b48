// The card panel's inline edits: what a typed value writes for each kind of field, and what a
// refused one says, in English and in French.

import { afterEach, describe, expect, test } from "vitest";
import { cardEditOf } from "../src/ui/cardEdit";
import { allFields, type FieldInfo } from "../src/ui/fields";
import { setLanguage } from "../src/ui/i18n";

const defs = [
  { id: "f_num", label: "Seats", type: "number" as const, options: [] },
  { id: "f_money", label: "Fee", type: "money" as const, options: [] },
  { id: "f_date", label: "Kick-off", type: "date" as const, options: [] },
  { id: "f_enum", label: "Tier", type: "enum" as const, options: ["Bronze", "Gold"] },
  { id: "f_bool", label: "NDA", type: "bool" as const, options: [] },
  { id: "f_text", label: "Source", type: "string" as const, options: [] },
];

function field(id: string): FieldInfo {
  const found = allFields(defs, "en").find((f) => f.id === id);
  if (found === undefined) throw new Error(`no field ${id}`);
  return found;
}

const edit = (id: string, text: string, checked = false, currency = "USD") =>
  cardEditOf(field(id), text, checked, currency);

afterEach(() => setLanguage("en", false));

describe("built-in fields", () => {
  test("a title is trimmed and cannot be empty", () => {
    expect(edit("title", "  Acme  ")).toEqual({ edit: { title: "Acme" } });
    expect(edit("title", "   ")).toEqual({ error: "Title: a card needs a title" });
  });

  test("amounts in the card's currency's minor units, as people type them", () => {
    expect(edit("amount", "1,500.50")).toEqual({ edit: { amount: 150050 } });
    expect(edit("amount", "1500", false, "JPY")).toEqual({ edit: { amount: 1500 } });
    expect(edit("amount", "lots")).toEqual({ error: "Amount: enter an amount such as 1500 or 1500.50" });
  });

  test("a currency is a three-letter code, upper-cased", () => {
    expect(edit("currency", " eur ")).toEqual({ edit: { currency: "EUR" } });
    expect("error" in edit("currency", "E1")).toBe(true);
    expect("error" in edit("currency", "EURO")).toBe(true);
  });

  test("an e-mail address is checked, empty clears it", () => {
    expect(edit("email", " a@b.example ")).toEqual({ edit: { email: "a@b.example" } });
    expect(edit("email", "")).toEqual({ edit: { email: "" } });
    expect(edit("email", "not an address")).toEqual({
      error: "E-mail: enter an address such as name@example.com",
    });
  });

  test("the expected close date is local midnight; empty clears it", () => {
    expect(edit("closeDate", "2027-03-05")).toEqual({ edit: { closeDate: new Date(2027, 2, 5).getTime() } });
    expect(edit("closeDate", "")).toEqual({ edit: { closeDate: null } });
    expect("error" in edit("closeDate", "05/03/2027")).toBe(true);
  });

  test("client, responsible and lost reason are trimmed text", () => {
    expect(edit("client", " Acme ")).toEqual({ edit: { client: "Acme" } });
    expect(edit("responsible", " bob ")).toEqual({ edit: { responsible: "bob" } });
    expect(edit("lostReason", " Price ")).toEqual({ edit: { lostReason: "Price" } });
  });
});

describe("custom fields", () => {
  test("each type stores its own kind of value", () => {
    expect(edit("f_num", "12.5")).toEqual({ edit: { fields: { f_num: 12.5 } } });
    expect(edit("f_money", "250")).toEqual({ edit: { fields: { f_money: 25000 } } });
    expect(edit("f_date", "2027-01-02")).toEqual({ edit: { fields: { f_date: new Date(2027, 0, 2).getTime() } } });
    expect(edit("f_enum", "Gold")).toEqual({ edit: { fields: { f_enum: "Gold" } } });
    expect(edit("f_bool", "", true)).toEqual({ edit: { fields: { f_bool: true } } });
    expect(edit("f_bool", "", false)).toEqual({ edit: { fields: { f_bool: false } } });
    expect(edit("f_text", " fair ")).toEqual({ edit: { fields: { f_text: "fair" } } });
  });

  test("emptied values clear the field", () => {
    expect(edit("f_text", "  ")).toEqual({ edit: { fields: { f_text: null } } });
    expect(edit("f_num", "")).toEqual({ edit: { fields: { f_num: null } } });
    expect(edit("f_enum", "")).toEqual({ edit: { fields: { f_enum: null } } });
  });

  test("refusals name the field", () => {
    expect(edit("f_num", "twelve")).toEqual({ error: "Seats: enter a number" });
    expect(edit("f_money", "x")).toEqual({ error: "Fee: enter an amount such as 1500 or 1500.50" });
    expect(edit("f_date", "tomorrow")).toEqual({ error: "Kick-off: enter a date" });
    expect(edit("f_enum", "Platinum")).toEqual({ error: "Tier: choose one of the list" });
  });

  test("in French, the refusals are French and amounts are typed the French way", () => {
    setLanguage("fr", false);
    expect(edit("amount", "2 500,75")).toEqual({ edit: { amount: 250075 } });
    expect(edit("title", "")).toEqual({ error: "Titre : une fiche a besoin d'un titre" });
    expect(edit("f_enum", "Platinum")).toEqual({ error: "Tier : choisissez une valeur de la liste" });
  });
});
