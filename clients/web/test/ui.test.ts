// The UI's pure logic: formatting, default deadlines, moves (drops and keyboard), presence, users,
// fields, form data, routes, virtualisation thresholds, connection states.

import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import { readBoard } from "../src/model/board";
import { rebalanced } from "../src/model/order";
import { CARD_KEY, ROOT, STAGE_KEY } from "../src/model/schema";
import type { CardData } from "../src/model/serverFields";
import { createCard } from "../src/model/write";
import { boardSocketBase, connectionState } from "../src/store/connection";
import { defaultDeadline, fromDatetimeLocal, toDatetimeLocal } from "../src/ui/deadline";
import { entityTitle, isValidSmartType } from "../src/ui/entities";
import {
  allFields,
  displayFieldsOf,
  fieldText,
  newCardFrom,
  parseCurrency,
  parseEmail,
  parseFieldInput,
  quickCreateFieldsOf,
} from "../src/ui/fields";
import { formText } from "../src/ui/formData";
import {
  formatDeadline,
  formatMoney,
  formatSums,
  initials,
  minorDigits,
  moneyInputValue,
  parseMoneyInput,
  plural,
  timeAgo,
} from "../src/ui/format";
import {
  arrowDirection,
  isInPlace,
  keyboardFocusTarget,
  keyboardMoveTarget,
  moveCardTo,
  neighbourKeys,
  resolveTarget,
  type VisibleColumn,
} from "../src/ui/placement";
import { parsePresence, presenceFrom, samePresence } from "../src/ui/presence";
import { boardPath, parseRoute } from "../src/ui/route";
import {
  colorFor,
  DEFAULT_ROSTER,
  loadRoster,
  nameFromId,
  resolveCurrentUser,
  ROSTER_KEY,
  USER_KEY,
  type KeyValueStore,
} from "../src/ui/users";
import { estimateCardHeight, shouldVirtualize, VIRTUALIZE_ABOVE } from "../src/ui/virtual";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe("format", () => {
  test("money from minor units, per currency", () => {
    expect(formatMoney(150000, "USD", "en-US")).toBe("$1,500.00");
    expect(formatMoney(-1999, "EUR", "en-US")).toBe("-€19.99");
    expect(formatMoney(1500, "JPY", "en-US")).toBe("¥1,500");
    expect(formatMoney(1234, "BHD", "en-US")).toBe("BHD\u00a01.234");
    expect(formatMoney(1234, "", "en-US")).toBe("12.34");
    expect(formatMoney(1234, "XX1", "en-US")).toBe("12.34 XX1");
    expect(minorDigits("JPY")).toBe(0);
    expect(minorDigits("nope")).toBe(2);
  });

  test("sums: one per currency, zero in the board's currency when empty", () => {
    expect(formatSums(new Map(), "USD", "en-US")).toBe("$0.00");
    expect(
      formatSums(
        new Map([
          ["EUR", 100],
          ["USD", 250],
        ]),
        "USD",
        "en-US",
      ),
    ).toBe("€1.00 + $2.50");
  });

  test("amount inputs", () => {
    expect(parseMoneyInput("1500", "USD")).toBe(150000);
    expect(parseMoneyInput("1500.5", "USD")).toBe(150050);
    expect(parseMoneyInput("1,500.50", "USD")).toBe(150050);
    expect(parseMoneyInput("1 234,56", "EUR")).toBe(123456);
    expect(parseMoneyInput("1.234,5", "EUR")).toBe(123450);
    expect(parseMoneyInput("-12", "USD")).toBe(-1200);
    expect(parseMoneyInput("", "USD")).toBe(0);
    expect(parseMoneyInput("12abc", "USD")).toBeNull();
    expect(parseMoneyInput("1500", "JPY")).toBe(1500);
    expect(parseMoneyInput("0.1", "USD")).toBe(10);
    expect(moneyInputValue(150050, "USD")).toBe("1500.50");
    expect(moneyInputValue(1500, "JPY")).toBe("1500");
  });

  test("time ago", () => {
    const now = Date.UTC(2026, 2, 10, 12);
    expect(timeAgo(now - 10_000, now)).toBe("just now");
    expect(timeAgo(now + 10_000, now)).toBe("just now");
    expect(timeAgo(now - 5 * MINUTE, now)).toBe("5 min ago");
    expect(timeAgo(now - 3 * HOUR, now)).toBe("3 h ago");
    expect(timeAgo(now - 50 * HOUR, now)).toBe("2 d ago");
    expect(timeAgo(Date.UTC(2025, 0, 15, 12), now, "en-GB")).toBe("15 Jan 2025");
  });

  test("deadlines relative to today", () => {
    const now = new Date(2026, 2, 10, 9, 0).getTime();
    expect(formatDeadline(new Date(2026, 2, 10, 14, 0).getTime(), now, "en-GB")).toBe("Today 14:00");
    expect(formatDeadline(new Date(2026, 2, 11, 9, 30).getTime(), now, "en-GB")).toBe("Tomorrow 09:30");
    expect(formatDeadline(new Date(2026, 2, 9, 9, 30).getTime(), now, "en-GB")).toBe("Yesterday 09:30");
    expect(formatDeadline(new Date(2026, 2, 16, 10, 0).getTime(), now, "en-GB")).toBe("Mon 16 Mar 10:00");
    expect(formatDeadline(new Date(2027, 0, 4, 10, 0).getTime(), now, "en-GB")).toBe("Mon, 4 Jan 2027 10:00");
  });

  test("initials and plurals", () => {
    expect(initials("Ann Lee")).toBe("AL");
    expect(initials("ann")).toBe("AN");
    expect(initials("jean-paul sartre")).toBe("JS");
    expect(initials("  ")).toBe("?");
    expect(initials("émile zola")).toBe("ÉZ");
    expect(plural(1, "card")).toBe("1 card");
    expect(plural(2, "card")).toBe("2 cards");
  });
});

describe("default deadline", () => {
  const at = (y: number, m: number, d: number, h = 0, min = 0) => new Date(y, m - 1, d, h, min).getTime();
  test("three working days ahead, rounded up to the hour", () => {
    // Tuesday 10 March 2026, 14:20 → Friday 13 March, 15:00.
    expect(defaultDeadline(at(2026, 3, 10, 14, 20))).toBe(at(2026, 3, 13, 15));
    // A whole hour stays.
    expect(defaultDeadline(at(2026, 3, 10, 14, 0))).toBe(at(2026, 3, 13, 14));
    // Thursday → Tuesday (the weekend does not count).
    expect(defaultDeadline(at(2026, 3, 12, 9, 5))).toBe(at(2026, 3, 17, 10));
    // Friday → Wednesday; Saturday and Sunday → Wednesday too.
    expect(defaultDeadline(at(2026, 3, 13, 9, 0))).toBe(at(2026, 3, 18, 9));
    expect(defaultDeadline(at(2026, 3, 14, 9, 0))).toBe(at(2026, 3, 18, 9));
    expect(defaultDeadline(at(2026, 3, 15, 23, 30))).toBe(at(2026, 3, 19, 0));
  });

  test("datetime-local round trip", () => {
    const instant = new Date(2026, 2, 5, 14, 0).getTime();
    expect(toDatetimeLocal(instant)).toBe("2026-03-05T14:00");
    expect(fromDatetimeLocal("2026-03-05T14:00")).toBe(instant);
    expect(fromDatetimeLocal("2026-03-05T14:00:30")).toBe(instant + 30_000);
    expect(fromDatetimeLocal("")).toBeNull();
    expect(fromDatetimeLocal("tomorrow")).toBeNull();
  });
});

describe("placement", () => {
  const column = [
    { id: "a", pos: "a0" },
    { id: "b", pos: "a1" },
    { id: "c", pos: "a2" },
  ];

  test("targets resolve against the full column", () => {
    expect(resolveTarget(column, "x", { stage: "s", at: "top" })).toEqual({ stage: "s", after: null });
    expect(resolveTarget(column, "x", { stage: "s", at: "bottom" })).toEqual({ stage: "s", after: "c" });
    expect(resolveTarget(column, "c", { stage: "s", at: "bottom" })).toEqual({ stage: "s", after: "b" });
    expect(resolveTarget(column, "x", { stage: "s", card: "b", edge: "top" })).toEqual({ stage: "s", after: "a" });
    expect(resolveTarget(column, "x", { stage: "s", card: "a", edge: "top" })).toEqual({ stage: "s", after: null });
    expect(resolveTarget(column, "x", { stage: "s", card: "b", edge: "bottom" })).toEqual({ stage: "s", after: "b" });
    // Dropping a card on the upper half of its lower neighbour leaves it where it is.
    expect(resolveTarget(column, "a", { stage: "s", card: "b", edge: "top" })).toEqual({ stage: "s", after: null });
    expect(resolveTarget([], "x", { stage: "s", at: "bottom" })).toEqual({ stage: "s", after: null });
  });

  test("neighbour keys and no-op moves", () => {
    expect(neighbourKeys(column, "x", null)).toEqual({ prev: null, next: "a0" });
    expect(neighbourKeys(column, "x", "a")).toEqual({ prev: "a0", next: "a1" });
    expect(neighbourKeys(column, "x", "c")).toEqual({ prev: "a2", next: null });
    expect(neighbourKeys(column, "b", "a")).toEqual({ prev: "a0", next: "a2" });
    expect(isInPlace(column, "b", "s", { stage: "s", after: "a" })).toBe(true);
    expect(isInPlace(column, "b", "s", { stage: "s", after: null })).toBe(false);
    expect(isInPlace(column, "b", "t", { stage: "s", after: "a" })).toBe(false);
  });

  test("moveCardTo writes one update, falls back to a rebalance when keys collide", () => {
    const doc = new Y.Doc();
    doc.transact(() => {
      const stages = doc.getMap(ROOT.STAGES);
      ["initial", "progress", "success", "failure"].forEach((kind, i) =>
        stages.set(
          `s${i}`,
          new Y.Map<unknown>([
            [STAGE_KEY.NAME, kind],
            [STAGE_KEY.KIND, kind],
            [STAGE_KEY.POS, rebalanced(4)[i]!],
          ]),
        ),
      );
    });
    const ids = ["a", "b", "c"].map((t) => createCard(doc, "s1", { title: t }, 0));
    const mover = createCard(doc, "s0", { title: "m" }, 0);
    const rendered = () =>
      readBoard(doc, 0)
        .columns.find((c) => c.stage.id === "s1")!
        .cards.map((c) => ({ id: c.id, pos: c.pos }));
    let updates = 0;
    doc.on("update", () => updates++);
    expect(moveCardTo(doc, rendered(), mover, "s0", { stage: "s1", after: ids[2]! })).toBe(true);
    expect(updates).toBe(1);
    expect(readBoard(doc, 0).columns[1]!.cards.map((c) => c.title)).toEqual(["c", "m", "b", "a"]);
    expect(moveCardTo(doc, rendered(), mover, "s1", { stage: "s1", after: ids[2]! })).toBe(false);
    // Colliding keys: the rendered neighbours cannot be split; the column is rebalanced.
    doc.transact(() => {
      for (const id of ids) (doc.getMap(ROOT.CARDS).get(id) as Y.Map<unknown>).set(CARD_KEY.POS, "a5");
    });
    updates = 0;
    const column = rendered();
    const first = column.filter((c) => c.id !== mover)[0]!.id;
    expect(moveCardTo(doc, column, mover, "s1", { stage: "s1", after: first })).toBe(true);
    expect(updates).toBe(1);
    const after = rendered();
    expect(after.map((c) => c.id).slice(0, 2)).toEqual([first, mover]);
    expect(new Set(after.map((c) => c.pos)).size).toBe(4);
  });

  test("keyboard moves", () => {
    const columns: VisibleColumn[] = [
      { stage: "s0", cards: ["a", "b", "c"] },
      { stage: "s1", cards: [] },
      { stage: "s2", cards: ["x"] },
    ];
    expect(arrowDirection("ArrowUp")).toBe("up");
    expect(arrowDirection("Enter")).toBeNull();
    expect(keyboardMoveTarget(columns, "a", "up")).toBeNull();
    expect(keyboardMoveTarget(columns, "b", "up")).toEqual({ stage: "s0", card: "a", edge: "top" });
    expect(keyboardMoveTarget(columns, "b", "down")).toEqual({ stage: "s0", card: "c", edge: "bottom" });
    expect(keyboardMoveTarget(columns, "c", "down")).toBeNull();
    expect(keyboardMoveTarget(columns, "a", "left")).toBeNull();
    expect(keyboardMoveTarget(columns, "c", "right")).toEqual({ stage: "s1", at: "top" });
    expect(keyboardMoveTarget(columns, "x", "left")).toEqual({ stage: "s1", at: "top" });
    expect(keyboardMoveTarget(columns, "x", "right")).toBeNull();
    const two: VisibleColumn[] = [
      { stage: "s0", cards: ["a", "b", "c"] },
      { stage: "s1", cards: ["x", "y"] },
    ];
    expect(keyboardMoveTarget(two, "b", "right")).toEqual({ stage: "s1", card: "y", edge: "top" });
    expect(keyboardMoveTarget(two, "c", "right")).toEqual({ stage: "s1", card: "y", edge: "bottom" });
    expect(keyboardMoveTarget(two, "nope", "right")).toBeNull();
  });

  test("keyboard focus", () => {
    const columns: VisibleColumn[] = [
      { stage: "s0", cards: ["a", "b", "c"] },
      { stage: "s1", cards: [] },
      { stage: "s2", cards: ["x"] },
    ];
    expect(keyboardFocusTarget(columns, "b", "up")).toBe("a");
    expect(keyboardFocusTarget(columns, "b", "down")).toBe("c");
    expect(keyboardFocusTarget(columns, "a", "up")).toBeNull();
    expect(keyboardFocusTarget(columns, "c", "right")).toBe("x");
    expect(keyboardFocusTarget(columns, "x", "left")).toBe("a");
    expect(keyboardFocusTarget(columns, "x", "right")).toBeNull();
  });
});

describe("presence", () => {
  const state = (id: string, extra: object = {}) => ({
    user: { id, name: id.toUpperCase(), color: "#112233" },
    dragging: null,
    viewing: null,
    ...extra,
  });
  test("one entry per user; others' drags win over views; my own tabs never outline", () => {
    const states = new Map<number, unknown>([
      [5, state("bob", { viewing: "c1" })],
      [3, state("ann", { dragging: "c2" })],
      [9, state("cy", { dragging: "c1" })],
      [4, state("bob", { viewing: "c3" })],
      [7, { nothing: true }],
      [8, state("me", { dragging: "c4" })],
    ]);
    const presence = presenceFrom(states, "me");
    expect(presence.users.map((u) => u.id)).toEqual(["ann", "bob", "cy", "me"]);
    expect(presence.cards.get("c1")).toMatchObject({ user: { id: "cy" }, what: "dragging" });
    expect(presence.cards.get("c2")).toMatchObject({ user: { id: "ann" }, what: "dragging" });
    expect(presence.cards.get("c3")).toMatchObject({ user: { id: "bob" }, what: "viewing" });
    expect(presence.cards.has("c4")).toBe(false);
    expect(samePresence(presence, presenceFrom(new Map(states), "me"))).toBe(true);
    expect(samePresence(presence, presenceFrom(new Map([[1, state("ann")]]), "me"))).toBe(false);
  });

  test("lenient parsing", () => {
    expect(parsePresence(null)).toBeNull();
    expect(parsePresence({ user: { id: "" } })).toBeNull();
    expect(parsePresence({ user: { id: "z", color: "red" } })).toEqual({
      user: { id: "z", name: "z", color: colorFor("z") },
      dragging: null,
      viewing: null,
    });
  });
});

describe("users", () => {
  const memory = (entries: [string, string][] = []): KeyValueStore & { data: Map<string, string> } => {
    const data = new Map(entries);
    return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
  };

  test("a stable colour per id", () => {
    expect(colorFor("ann")).toBe(colorFor("ann"));
    expect(colorFor("ann")).toMatch(/^#[0-9a-f]{6}$/);
    expect(colorFor("ann")).not.toBe(colorFor("bob"));
  });

  test("?user= wins and is remembered; unknown ids join the roster", () => {
    const storage = memory();
    const { user, roster } = resolveCurrentUser("?user=dana.scully", storage);
    expect(user).toEqual({ id: "dana.scully", name: "Dana Scully", color: colorFor("dana.scully") });
    expect(storage.data.get(USER_KEY)).toBe("dana.scully");
    expect(roster.map((r) => r.id)).toEqual([...DEFAULT_ROSTER.map((r) => r.id), "dana.scully"]);
    expect(resolveCurrentUser("", storage).user.id).toBe("dana.scully");
  });

  test("without anything: the first of the roster; a broken roster reads as the default", () => {
    expect(resolveCurrentUser("", memory()).user.id).toBe("ann");
    expect(loadRoster(memory([[ROSTER_KEY, "{oops"]]))).toEqual(DEFAULT_ROSTER);
    expect(loadRoster(memory([[ROSTER_KEY, JSON.stringify([{ id: "z", name: "Zed" }, { id: 3 }])]]))).toEqual([
      { id: "z", name: "Zed" },
    ]);
    expect(nameFromId("bob")).toBe("Bob");
  });
});

describe("fields", () => {
  const defs = [{ id: "f-prio", label: "Priority", type: "enum" as const, options: ["low", "high"] }];
  const fields = allFields(defs);
  const card: CardData = {
    id: "c",
    title: "Deal",
    stage: "s",
    pos: "a0",
    amount: 150000,
    currency: "USD",
    responsible: "ann",
    client: "",
    email: "",
    closeDate: null,
    lostReason: "",
    timelineAt: null,
    createdAt: 0,
    updatedAt: 0,
    fields: new Map([["f-prio", "high"]]),
    archivedAt: null,
    avatar: "",
    avatarAt: null,
    avatarReason: null,
  };

  test("forms: defaults, the title always asked, unknown ids dropped", () => {
    expect(quickCreateFieldsOf(null, fields).map((f) => f.id)).toEqual(["title", "amount", "client"]);
    expect(quickCreateFieldsOf(["client", "createdAt", "ghost", "f-prio"], fields).map((f) => f.id)).toEqual([
      "title",
      "client",
      "f-prio",
    ]);
    expect(displayFieldsOf(null, fields).map((f) => f.id)).toEqual(["title", "amount", "client"]);
    expect(displayFieldsOf(["f-prio", "responsible"], fields).map((f) => f.id)).toEqual(["f-prio", "responsible"]);
    expect(displayFieldsOf([], fields).map((f) => f.id)).toEqual(["title"]);
  });

  test("card face text", () => {
    const byId = new Map(fields.map((f) => [f.id, f]));
    const name = (id: string) => `<${id}>`;
    expect(fieldText(card, byId.get("amount")!, name, "en-US")).toBe("$1,500.00");
    expect(fieldText(card, byId.get("responsible")!, name)).toBe("<ann>");
    expect(fieldText(card, byId.get("client")!, name)).toBe("");
    expect(fieldText(card, byId.get("f-prio")!, name)).toBe("high");
  });

  test("the quick-create form's values", () => {
    const form = quickCreateFieldsOf(["amount", "currency", "responsible", "f-prio"], fields);
    const values = new Map([
      ["title", " Big deal "],
      ["amount", "12.5"],
      ["currency", "eur"],
      ["responsible", ""],
      ["f-prio", "low"],
    ]);
    expect(newCardFrom(form, values, new Set(), "USD", "ann")).toEqual({
      card: {
        title: "Big deal",
        amount: 1250,
        currency: "EUR",
        responsible: "ann",
        client: "",
        fields: { "f-prio": "low" },
      },
    });
    expect(newCardFrom(form, new Map([["title", ""]]), new Set(), "USD", "ann")).toEqual({ error: "Enter a title" });
    expect(
      newCardFrom(
        form,
        new Map([
          ["title", "x"],
          ["amount", "lots"],
        ]),
        new Set(),
        "USD",
        "ann",
      ),
    ).toHaveProperty("error");
    expect(
      newCardFrom(
        form,
        new Map([
          ["title", "x"],
          ["currency", "euro"],
        ]),
        new Set(),
        "USD",
        "ann",
      ),
    ).toHaveProperty("error");
  });

  test("custom field inputs", () => {
    const info = (type: "bool" | "number" | "date" | "money") => ({
      id: "f",
      label: "F",
      type,
      options: [],
      builtIn: false,
      creatable: true,
    });
    expect(parseFieldInput(info("bool"), "", true, "USD")).toEqual({ value: true });
    expect(parseFieldInput(info("number"), "3.5", false, "USD")).toEqual({ value: 3.5 });
    expect(parseFieldInput(info("number"), "x", false, "USD")).toHaveProperty("error");
    expect(parseFieldInput(info("money"), "10", false, "USD")).toEqual({ value: 1000 });
    expect(parseFieldInput(info("date"), "2026-03-05", false, "USD")).toEqual({
      value: new Date(2026, 2, 5).getTime(),
    });
    expect(parseCurrency(" usd ")).toBe("USD");
    expect(parseCurrency("dollars")).toBeNull();
  });
});

describe("form data", () => {
  test("a field reads as its text; a missing field or a file as the fallback", () => {
    const data = new FormData();
    data.set("name", " Acme ");
    data.set("file", new Blob(["x"]), "x.txt");
    expect(formText(data, "name")).toBe(" Acme ");
    expect(formText(data, "kind", "task")).toBe("task");
    expect(formText(data, "missing")).toBe("");
    expect(formText(data, "file", "none")).toBe("none");
  });
});

describe("routes, entities, virtualisation, connection", () => {
  test("routes", () => {
    expect(parseRoute("/")).toEqual({ page: "home" });
    expect(parseRoute("/boards/abc-1_2")).toEqual({ page: "board", boardId: "abc-1_2" });
    expect(parseRoute("/boards/abc/")).toEqual({ page: "board", boardId: "abc" });
    expect(parseRoute("/boards/a%20b")).toEqual({ page: "notFound", path: "/boards/a%20b" });
    expect(parseRoute("/elsewhere")).toEqual({ page: "notFound", path: "/elsewhere" });
    expect(boardPath("abc")).toBe("/boards/abc");
  });

  test("entities", () => {
    expect(entityTitle("deal")).toBe("Deals");
    expect(entityTitle("smart:42")).toBe("Smart process 42");
    expect(isValidSmartType("contracts")).toBe(true);
    expect(isValidSmartType("a b")).toBe(false);
  });

  test("virtualisation window", () => {
    expect(shouldVirtualize(VIRTUALIZE_ABOVE)).toBe(false);
    expect(shouldVirtualize(VIRTUALIZE_ABOVE + 1)).toBe(true);
    expect(estimateCardHeight(3)).toBeGreaterThan(estimateCardHeight(1));
  });

  test("connection state and socket URL", () => {
    expect(connectionState(true, true, false, true)).toBe("connected");
    // Open but not yet synced: a large board still arriving is not "Live".
    expect(connectionState(true, true, false, false)).toBe("loading");
    expect(connectionState(true, false, false, false)).toBe("connecting");
    expect(connectionState(false, true, false, true)).toBe("offline");
    expect(connectionState(true, false, true, false)).toBe("refused");
    expect(connectionState(false, false, true, true)).toBe("refused");
    expect(boardSocketBase({ protocol: "https:", host: "crm.example:8443" })).toBe("wss://crm.example:8443/ws/boards");
    expect(boardSocketBase({ protocol: "http:", host: "127.0.0.1:8080" })).toBe("ws://127.0.0.1:8080/ws/boards");
  });
});

describe("parseEmail", () => {
  test("takes an address trimmed, or none", () => {
    expect(parseEmail("  buyer@acme.example.com ")).toBe("buyer@acme.example.com");
    expect(parseEmail("")).toBe("");
    expect(parseEmail("   ")).toBe("");
  });

  test.each([
    "ann",
    "ann@",
    "@example.com",
    "ann@localhost",
    "ann smith@example.com",
    "Ann <a@b.com>",
    "a@@b.com",
    ".a@b.com",
    "a..b@c.com",
  ])("refuses %s", (bad) => {
    expect(parseEmail(bad)).toBeNull();
  });

  test("the quick-create form refuses a bad address and keeps a good one", () => {
    const fields = allFields([]).filter((f) => f.id === "title" || f.id === "email");
    const values = (email: string) =>
      new Map([
        ["title", "Acme"],
        ["email", email],
      ]);
    expect(newCardFrom(fields, values("nope"), new Set(), "USD", "ann")).toHaveProperty("error");
    expect(newCardFrom(fields, values("b@acme.com"), new Set(), "USD", "ann")).toMatchObject({
      card: { email: "b@acme.com" },
    });
  });
});
