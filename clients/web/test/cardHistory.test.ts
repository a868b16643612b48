// A card's history in words (src/ui/cardHistory.ts): the change feed's events as the History
// section's lines, with people, stages and fields named.

import { describe, expect, test } from "vitest";
import type { HistoryEvent } from "../src/ui/api";
import { historyLines, type HistoryNames } from "../src/ui/cardHistory";
import { setLanguage } from "../src/ui/i18n";

const names: HistoryNames = {
  person: (id) => ({ ann: "Ann Lee", bob: "Bob Roy" })[id] ?? id,
  stage: (id) => ({ s1: "New", s2: "Won", s3: "Lost" })[id] ?? null,
  field: (id) => ({ title: "Title", amount: "Amount", f1: "Region" })[id] ?? id,
  currency: "USD",
};

function event(id: number, type: string, data: Record<string, unknown>, timestamp = 1000 + id): HistoryEvent {
  return { id: String(id), type, timestamp, data: { origin: "socket", ...data } };
}

describe("card history lines", () => {
  test("say who did what, newest first, a win in one line", () => {
    const lines = historyLines(
      [
        event(6, "card.updated", { actor: "ann", changes: [{ field: "archivedAt", before: null, after: 5 }] }),
        event(5, "card.won", { actor: "bob", from: "s1", to: "s2" }, 900),
        event(4, "card.moved", { actor: "bob", from: "s1", to: "s2" }, 900),
        event(3, "card.moved", { actor: "bob", from: "gone", to: "s1" }),
        event(2, "card.updated", {
          actor: "ann",
          origin: "api",
          changes: [
            { field: "title", before: "Acme", after: "Acme renewal" },
            { field: "amount", before: 0, after: 150000 },
            { field: "fields.f1", before: null, after: "EMEA" },
          ],
        }),
        event(1, "card.created", { actor: null, origin: "email", card: { stageId: "s1" } }),
      ],
      names,
    );
    expect(lines.map((l) => `${l.who} ${l.what}`)).toEqual([
      "Ann Lee archived it",
      "Bob Roy won it (Won)",
      "Bob Roy moved it from a deleted stage to New",
      "Ann Lee changed Title from “Acme” to “Acme renewal”; changed Amount from $0.00 to $1,500.00; changed Region from nothing to “EMEA”",
      "funnel created it in New",
    ]);
    expect(lines.at(-1)?.origin).toBe("email");
  });

  test("lost with its reason, restored, deleted, activities", () => {
    const lines = historyLines(
      [
        event(4, "card.deleted", { actor: "ann" }),
        event(3, "card.lost", { actor: "ann", to: "s3", card: { lostReason: "Price" } }),
        event(2, "card.updated", { actor: "ann", changes: [{ field: "archivedAt", before: 5, after: null }] }),
        event(1, "activity.completed", { actor: "bob", activity: { subject: "Call back" } }),
      ],
      names,
    );
    expect(lines.map((l) => l.what)).toEqual([
      "deleted it",
      "lost it (Lost: Price)",
      "restored it",
      "completed the activity “Call back”",
    ]);
  });

  test("in French", () => {
    setLanguage("fr", false);
    try {
      const lines = historyLines(
        [
          event(3, "card.lost", { actor: "ann", to: "s3", card: { lostReason: "Prix" } }),
          event(2, "card.updated", { actor: "ann", changes: [{ field: "title", before: "Acme", after: "Acme 2" }] }),
          event(1, "card.created", { actor: null, card: { stageId: "s1" } }),
        ],
        names,
      );
      expect(lines.map((l) => `${l.who} ${l.what}`)).toEqual([
        "Ann Lee l'a perdue (Lost : Prix)",
        "Ann Lee a changé Title de « Acme » à « Acme 2 »",
        "funnel l'a créée dans New",
      ]);
    } finally {
      setLanguage("en", false);
    }
  });
});
