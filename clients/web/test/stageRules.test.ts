// Stage rules in the client: what a stage requires (src/model/requirements.ts), a stage's
// probability and the weighted sum, stale cards, the forecast by close month (src/ui/forecast.ts)
// and the activity bar's statuses (src/ui/activityStatus.ts), which are local calendar days:
// the time-zone cases run under fixed zones.

import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { Activity, Card, Stage } from "../src/model/board";
import {
  DAY_MS,
  isStale,
  lastActivityAt,
  missingRequired,
  stageProbability,
  weighted,
} from "../src/model/requirements";
import { activityStatus, countStatuses } from "../src/ui/activityStatus";
import { forecast } from "../src/ui/forecast";

const NOW = Date.UTC(2030, 5, 15, 12, 0); // 2030-06-15 12:00 UTC

function stage(over: Partial<Stage> = {}): Stage {
  return {
    id: "st",
    name: "Stage",
    color: "#39a8ef",
    kind: "progress",
    pos: "a0",
    required: [],
    probabilitySet: null,
    rotDays: 0,
    ...over,
  };
}

function card(over: Partial<Card> = {}): Card {
  return {
    id: "c1",
    title: "Deal",
    stage: "st",
    pos: "a0",
    amount: 0,
    currency: "USD",
    responsible: "",
    client: "",
    email: "",
    createdAt: NOW - 10 * DAY_MS,
    updatedAt: NOW - 10 * DAY_MS,
    archivedAt: null,
    fields: new Map(),
    closeDate: null,
    lostReason: "",
    timelineAt: null,
    ...over,
  };
}

let activityId = 0;
function activity(over: Partial<Activity["facts"]> & { doneAt?: number | null } = {}): Activity {
  const { doneAt = null, ...facts } = over;
  return {
    id: `a${++activityId}`,
    card: "c1",
    kind: "call",
    subject: "",
    facts: { deadline: null, remindMin: null, direction: "outgoing", done: false, responsible: "", ...facts },
    doneAt,
  };
}

describe("missingRequired", () => {
  const won = stage({ kind: "success", required: ["amount", "closeDate"] });

  test("lists what the card lacks, in the stage's order", () => {
    expect(missingRequired(won, card(), [])).toEqual(["amount", "closeDate"]);
    expect(missingRequired(won, card({ amount: 1250_00 }), [])).toEqual(["closeDate"]);
    expect(missingRequired(won, card({ amount: 1, closeDate: NOW }), [])).toEqual([]);
  });

  test("an amount of 0 is missing; a negative one is carried", () => {
    const needsAmount = stage({ required: ["amount"] });
    expect(missingRequired(needsAmount, card({ amount: 0 }), [])).toEqual(["amount"]);
    expect(missingRequired(needsAmount, card({ amount: -500 }), [])).toEqual([]);
  });

  test("text that is only spaces is missing", () => {
    const needs = stage({ required: ["client", "email", "responsible"] });
    expect(missingRequired(needs, card({ client: "  ", email: "\t", responsible: " " }), [])).toEqual([
      "client",
      "email",
      "responsible",
    ]);
    expect(missingRequired(needs, card({ client: "Acme", email: "a@b.c", responsible: "ann" }), [])).toEqual([]);
  });

  test("a lost reason must be one of the board's reasons when it lists any", () => {
    const lost = stage({ kind: "failure", required: ["lostReason"] });
    const reasons = ["Too expensive", "Went silent"];
    expect(missingRequired(lost, card(), reasons)).toEqual(["lostReason"]);
    expect(missingRequired(lost, card({ lostReason: "Other" }), reasons)).toEqual(["lostReason"]);
    expect(missingRequired(lost, card({ lostReason: "Went silent" }), reasons)).toEqual([]);
    // No list: any text will do.
    expect(missingRequired(lost, card({ lostReason: "Other" }), [])).toEqual([]);
  });

  test("custom fields: missing, empty or null is lacking; false and 0 are values", () => {
    const needs = stage({ required: ["budget", "signed", "note"] });
    expect(missingRequired(needs, card(), [])).toEqual(["budget", "signed", "note"]);
    const fields = new Map<string, null | boolean | number | string>([
      ["budget", 0],
      ["signed", false],
      ["note", " "],
    ]);
    expect(missingRequired(needs, card({ fields }), [])).toEqual(["note"]);
    fields.set("note", null);
    expect(missingRequired(needs, card({ fields }), [])).toEqual(["note"]);
  });

  test("each requirement once, and the initial stage requires nothing", () => {
    expect(missingRequired(stage({ required: ["amount", "amount", "client"] }), card(), [])).toEqual([
      "amount",
      "client",
    ]);
    expect(missingRequired(stage({ kind: "initial", required: ["amount"] }), card(), [])).toEqual([]);
  });
});

describe("probability and the weighted sum", () => {
  test("unset: 100 for the success stage, 0 otherwise", () => {
    expect(stageProbability(stage({ kind: "success" }))).toBe(100);
    expect(stageProbability(stage({ kind: "progress" }))).toBe(0);
    expect(stageProbability(stage({ kind: "failure" }))).toBe(0);
    expect(stageProbability(stage({ kind: "initial" }))).toBe(0);
  });

  test("as set, clamped to 0..100, even on a success stage", () => {
    expect(stageProbability(stage({ probabilitySet: 60 }))).toBe(60);
    expect(stageProbability(stage({ probabilitySet: 0, kind: "success" }))).toBe(0);
    expect(stageProbability(stage({ probabilitySet: 100 }))).toBe(100);
    expect(stageProbability(stage({ probabilitySet: 250 }))).toBe(100);
    expect(stageProbability(stage({ probabilitySet: -5 }))).toBe(0);
  });

  test("weighted rounds towards zero, as Rust's integer division", () => {
    const third = stage({ probabilitySet: 33 });
    expect(weighted(1000_00, stage({ probabilitySet: 60 }))).toBe(600_00);
    expect(weighted(150, third)).toBe(49); // 49.5
    expect(weighted(-150, third)).toBe(-49); // -49.5
    expect(weighted(0, third)).toBe(0);
    expect(weighted(999, stage({ probabilitySet: 0 }))).toBe(0);
    expect(weighted(999, stage({ probabilitySet: 100 }))).toBe(999);
  });
});

describe("stale cards", () => {
  const rotting = stage({ rotDays: 3 });

  test("the last activity: created, changed, a timeline event, an activity done", () => {
    const base = card({ createdAt: NOW - 9 * DAY_MS, updatedAt: NOW - 8 * DAY_MS });
    expect(lastActivityAt(base, [])).toBe(NOW - 8 * DAY_MS);
    expect(lastActivityAt({ ...base, timelineAt: NOW - 2 * DAY_MS }, [])).toBe(NOW - 2 * DAY_MS);
    const done = activity({ done: true, doneAt: NOW - DAY_MS });
    expect(lastActivityAt(base, [done])).toBe(NOW - DAY_MS);
    // An open activity, or a done one that does not say when, is no activity yet.
    expect(lastActivityAt(base, [activity({ deadline: NOW }), activity({ done: true })])).toBe(NOW - 8 * DAY_MS);
  });

  test("idle for the stage's days with nothing planned: stale, from the exact instant", () => {
    const idle = card({ createdAt: NOW - 3 * DAY_MS, updatedAt: NOW - 3 * DAY_MS });
    expect(isStale(rotting, idle, [], NOW)).toBe(true);
    expect(isStale(rotting, idle, [], NOW - 1)).toBe(false);
    expect(isStale(stage({ rotDays: 0 }), card({ createdAt: 0, updatedAt: 0 }), [], NOW)).toBe(false);
  });

  test("an open planned activity keeps a card fresh; an open incoming one does not", () => {
    const idle = card();
    expect(isStale(rotting, idle, [activity({ deadline: NOW - 5 * DAY_MS })], NOW)).toBe(false);
    expect(isStale(rotting, idle, [activity({ direction: "incoming" })], NOW)).toBe(true);
    expect(isStale(rotting, idle, [activity({ done: true, doneAt: NOW - DAY_MS })], NOW)).toBe(false);
  });
});

describe("forecast", () => {
  const original = process.env.TZ;
  beforeEach(() => {
    process.env.TZ = "UTC";
  });
  afterEach(() => {
    process.env.TZ = original;
  });

  const progress = stage({ id: "p", probabilitySet: 60 });
  const won = stage({ id: "w", kind: "success" });
  const lost = stage({ id: "l", kind: "failure", probabilitySet: 50 });
  const march = Date.UTC(2031, 2, 10);
  const april = Date.UTC(2031, 3, 20);

  test("months in order, the undated row last; failure stages left out", () => {
    const rows = forecast([
      {
        stage: progress,
        cards: [
          { amount: 1000_00, currency: "USD", closeDate: april },
          { amount: 500_00, currency: "USD", closeDate: null },
          { amount: 300_00, currency: "USD", closeDate: march },
        ],
      },
      { stage: won, cards: [{ amount: 200_00, currency: "USD", closeDate: march }] },
      { stage: lost, cards: [{ amount: 9000_00, currency: "USD", closeDate: march }] },
    ]);
    expect(rows.map((r) => r.month)).toEqual(["2031-03", "2031-04", null]);
    expect(rows[0]).toEqual({
      month: "2031-03",
      cards: 2,
      sums: new Map([["USD", 500_00]]),
      weighted: new Map([["USD", 180_00 + 200_00]]),
    });
    expect(rows[2]!.weighted).toEqual(new Map([["USD", 300_00]]));
  });

  test("mixed currencies are summed apart, never added together", () => {
    const rows = forecast([
      {
        stage: progress,
        cards: [
          { amount: 100_00, currency: "USD", closeDate: march },
          { amount: 100_00, currency: "EUR", closeDate: march },
          { amount: 1000, currency: "JPY", closeDate: march },
        ],
      },
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.sums).toEqual(
      new Map([
        ["USD", 100_00],
        ["EUR", 100_00],
        ["JPY", 1000],
      ]),
    );
    expect(rows[0]!.weighted.get("JPY")).toBe(600);
  });

  test("cards without an amount count, with zero sums; probability 0 weighs nothing", () => {
    const rows = forecast([
      { stage: stage({ probabilitySet: 0 }), cards: [{ amount: 0, currency: "USD", closeDate: null }] },
      { stage: stage({ probabilitySet: 0 }), cards: [{ amount: 700, currency: "USD", closeDate: null }] },
    ]);
    expect(rows).toEqual([{ month: null, cards: 2, sums: new Map([["USD", 700]]), weighted: new Map([["USD", 0]]) }]);
    expect(forecast([])).toEqual([]);
  });

  test("the month is the browser's local one", () => {
    const lastOfMarchUtc = Date.UTC(2031, 2, 31, 23, 30);
    const rows = (tz: string) => {
      process.env.TZ = tz;
      return forecast([{ stage: won, cards: [{ amount: 1, currency: "USD", closeDate: lastOfMarchUtc }] }]);
    };
    expect(rows("UTC")[0]!.month).toBe("2031-03");
    expect(rows("Europe/Paris")[0]!.month).toBe("2031-04");
    expect(rows("America/New_York")[0]!.month).toBe("2031-03");
  });
});

describe("activity status", () => {
  const original = process.env.TZ;
  afterEach(() => {
    process.env.TZ = original;
  });

  test("none when nothing is open; planned when an open activity has no deadline", () => {
    process.env.TZ = "UTC";
    expect(activityStatus([], NOW)).toBe("none");
    expect(activityStatus([activity({ done: true, deadline: NOW - DAY_MS })], NOW)).toBe("none");
    expect(activityStatus([activity()], NOW)).toBe("planned");
  });

  test("the earliest open deadline decides: overdue, today (even past its hour), planned", () => {
    process.env.TZ = "UTC";
    const earlierToday = Date.UTC(2030, 5, 15, 8, 0);
    const laterToday = Date.UTC(2030, 5, 15, 23, 59);
    expect(activityStatus([activity({ deadline: NOW - DAY_MS })], NOW)).toBe("overdue");
    expect(activityStatus([activity({ deadline: earlierToday })], NOW)).toBe("today");
    expect(activityStatus([activity({ deadline: laterToday })], NOW)).toBe("today");
    expect(activityStatus([activity({ deadline: NOW + DAY_MS })], NOW)).toBe("planned");
    // A done overdue one does not count; the open one tomorrow does.
    const mixed = [activity({ deadline: NOW - DAY_MS, done: true }), activity({ deadline: NOW + DAY_MS })];
    expect(activityStatus(mixed, NOW)).toBe("planned");
    // One without a deadline beside an overdue one: overdue.
    expect(activityStatus([activity(), activity({ deadline: NOW - DAY_MS })], NOW)).toBe("overdue");
  });

  test("overdue or today depends on the browser's time zone", () => {
    // 2030-06-15 02:00 UTC is still the 14th in New York (22:00) and already the 15th in Tokyo.
    const now = Date.UTC(2030, 5, 15, 2, 0);
    const deadline = Date.UTC(2030, 5, 14, 23, 0); // 19:00 on the 14th in New York, 08:00 on the 15th in Tokyo
    const status = (tz: string) => {
      process.env.TZ = tz;
      return activityStatus([activity({ deadline })], now);
    };
    expect(status("UTC")).toBe("overdue");
    expect(status("America/New_York")).toBe("today");
    expect(status("Asia/Tokyo")).toBe("today");
    const nextDay = Date.UTC(2030, 5, 15, 16, 0); // the 16th in Tokyo (01:00), the 15th in UTC
    process.env.TZ = "Asia/Tokyo";
    expect(activityStatus([activity({ deadline: nextDay })], now)).toBe("planned");
    process.env.TZ = "UTC";
    expect(activityStatus([activity({ deadline: nextDay })], now)).toBe("today");
  });

  test("countStatuses counts every status, zeros included", () => {
    process.env.TZ = "UTC";
    const counts = countStatuses(
      [
        { activities: [activity({ deadline: NOW - DAY_MS })] },
        { activities: [] },
        { activities: [] },
        { activities: [activity({ deadline: NOW + DAY_MS })] },
      ],
      NOW,
    );
    expect([...counts]).toEqual([
      ["overdue", 1],
      ["today", 0],
      ["planned", 1],
      ["none", 2],
    ]);
  });
});
