// The shared vectors of protocol/vectors/: the TypeScript mirror must give exactly Rust's results
// (boards.json, rules.json, order-validation.json, schema.json, all written by
// protocol/tests/vectors.rs), the npm package's keys (order-keys.json), and the boards it writes
// with plain Yjs (from-typescript.json, written here, checked by Rust too).

import { describe, expect, test } from "vitest";
import { readBoard } from "../src/model/board";
import {
  OrderError,
  isValidKey,
  keyBetween,
  nKeysBetween,
  needsRebalance,
  rebalanced,
  validateKey,
  MAX_KEY_LEN,
} from "../src/model/order";
import {
  AVATAR_REASONS,
  COUNTER_STATES,
  MINUTE_MS,
  avatar,
  counter,
  firedReminders,
  lightsAt,
  nextCounterChange,
  type ActivityFacts,
  type AvatarEvent,
} from "../src/model/rules";
import * as schema from "../src/model/schema";
import { typeScriptBoards } from "./typescriptBoards";
import {
  UPDATING,
  counterJson,
  decodeDoc,
  encodeDoc,
  eventJson,
  readVectors,
  viewJson,
  writeVectors,
  type BoardVector,
} from "./vectorFormat";

describe("boards.json (written by Rust)", () => {
  const boards = readVectors<BoardVector[]>("boards.json");

  test("has the scenarios", () => {
    expect(boards.length).toBeGreaterThanOrEqual(9);
  });

  test.each(boards.map((b) => [b.name, b] as const))("%s", (_name, board) => {
    const view = readBoard(decodeDoc(board.update), board.now);
    expect(viewJson(view)).toEqual(board.expected);
  });
});

describe("from-typescript.json (written here, read by Rust)", () => {
  const fresh = typeScriptBoards().map((board) => ({
    name: board.name,
    now: board.now,
    update: encodeDoc(board.doc),
    expected: viewJson(readBoard(board.doc, board.now)),
  }));
  if (UPDATING) writeVectors("from-typescript.json", fresh);
  const stored = readVectors<BoardVector[]>("from-typescript.json");

  test("the file is what the scenarios make today (else: FUNNEL_UPDATE_VECTORS=1 npm test)", () => {
    expect(stored).toEqual(fresh);
  });

  test.each(stored.map((b) => [b.name, b] as const))("%s reads back from its update", (_name, board) => {
    expect(viewJson(readBoard(decodeDoc(board.update), board.now))).toEqual(board.expected);
  });
});

interface ActivityCase {
  name: string;
  activities: ActivityFacts[];
  stage: schema.StageKind;
  thresholdMin: number;
  now: number;
  expected: unknown;
}

interface AvatarCase {
  name: string;
  responsible: string;
  responsibleSince: number;
  events: AvatarEvent[];
  expected: unknown;
}

describe("rules.json (written by Rust)", () => {
  const rules = readVectors<{ minuteMs: number; activityCases: ActivityCase[]; avatarCases: AvatarCase[] }>(
    "rules.json",
  );

  test("one minute is the same", () => {
    expect(rules.minuteMs).toBe(MINUTE_MS);
    expect(rules.activityCases.length).toBeGreaterThanOrEqual(300);
    expect(rules.avatarCases.length).toBeGreaterThanOrEqual(100);
  });

  test.each(rules.activityCases.map((c) => [c.name, c] as const))("activities: %s", (_name, c) => {
    const { activities, stage, thresholdMin, now } = c;
    expect({
      lightsAt: activities.map((a) => lightsAt(a, thresholdMin)),
      counter: counterJson(counter(activities, stage, thresholdMin, now)),
      nextCounterChange: nextCounterChange(activities, thresholdMin, now),
      firedReminders: firedReminders(activities, thresholdMin, now).map(eventJson),
    }).toEqual(c.expected);
  });

  test.each(rules.avatarCases.map((c) => [c.name, c] as const))("avatar: %s", (_name, c) => {
    expect(avatar(c.responsible, c.responsibleSince, c.events)).toEqual(c.expected);
  });
});

interface Outcome {
  ok?: string | string[];
  error?: string;
}

function outcome(make: () => string | string[]): Outcome {
  try {
    return { ok: make() };
  } catch (error) {
    if (error instanceof OrderError) return { error: error.kind };
    throw error;
  }
}

describe("order-keys.json (written by the npm package)", () => {
  const vectors = readVectors<{
    generator: string;
    between: { a: string | null; b: string | null; key: string }[];
    n_between: { a: string | null; b: string | null; n: number; keys: string[] }[];
  }>("order-keys.json");

  test("comes from fractional-indexing", () => {
    expect(vectors.generator).toMatch(/^fractional-indexing@4\./);
  });

  test("every key between two neighbours is the same", () => {
    expect(vectors.between.length).toBeGreaterThanOrEqual(300);
    for (const { a, b, key } of vectors.between) {
      expect(keyBetween(a, b), `${a} ${b}`).toBe(key);
    }
  });

  test("every run of n keys is the same, and rebalanced(n) too", () => {
    for (const { a, b, n, keys } of vectors.n_between) {
      expect(nKeysBetween(a, b, n), `${a} ${b} ${n}`).toEqual(keys);
      if (a === null && b === null) expect(rebalanced(n)).toEqual(keys);
    }
  });
});

describe("order-validation.json (written by Rust)", () => {
  const vectors = readVectors<{
    maxKeyLen: number;
    validate: { key: string; error: string | null }[];
    between: { a: string | null; b: string | null; key: Outcome; keys0: Outcome; keys3: Outcome }[];
    needsRebalance: { keys: string[]; expected: boolean }[];
  }>("order-validation.json");

  test("the longest key is the same", () => {
    expect(MAX_KEY_LEN).toBe(vectors.maxKeyLen);
  });

  test.each(vectors.validate.map((c) => [JSON.stringify(c.key), c] as const))(
    "validateKey(%s)",
    (_name, { key, error }) => {
      const got = outcome(() => {
        validateKey(key);
        return key;
      });
      expect(got.error ?? null).toBe(error);
      expect(isValidKey(key)).toBe(error === null);
    },
  );

  test.each(vectors.between.map((c) => [`${c.a} ${c.b}`, c] as const))("neighbours %s", (_name, c) => {
    expect(outcome(() => keyBetween(c.a, c.b))).toEqual(c.key);
    expect(outcome(() => nKeysBetween(c.a, c.b, 0))).toEqual(c.keys0);
    expect(outcome(() => nKeysBetween(c.a, c.b, 3))).toEqual(c.keys3);
  });

  test("needsRebalance", () => {
    for (const { keys, expected } of vectors.needsRebalance) {
      expect(needsRebalance(keys), JSON.stringify(keys)).toBe(expected);
    }
  });
});

describe("schema.json (written by Rust)", () => {
  const rust = readVectors<Record<string, unknown> & { entities: Record<string, unknown>[] }>("schema.json");

  test("names and limits", () => {
    expect(schema.ROOT).toEqual(rust.root);
    expect(schema.BOARD_KEY).toEqual(rust.boardKey);
    expect(schema.STAGE_KEY).toEqual(rust.stageKey);
    expect(schema.CARD_KEY).toEqual(rust.cardKey);
    expect(schema.ACTIVITY_KEY).toEqual(rust.activityKey);
    expect(schema.FIELD_KEY).toEqual(rust.fieldKey);
    expect(schema.QUICK_CREATE).toBe(rust.quickCreate);
    expect(schema.MAX_NAME_CHARS).toBe(rust.maxNameChars);
    expect(schema.MAX_THRESHOLD_MIN).toBe(rust.maxThresholdMin);
    expect(schema.DEFAULT_COUNTER_THRESHOLD_MIN).toBe(rust.defaultCounterThresholdMin);
    expect(schema.DEFAULT_CURRENCY).toBe(rust.defaultCurrency);
    expect(schema.FIELD_TYPES).toEqual(rust.fieldTypes);
    expect(schema.STAGE_KINDS).toEqual(rust.stageKinds);
    expect(COUNTER_STATES).toEqual(rust.counterStates);
    expect(["incoming", "outgoing"]).toEqual(rust.directions);
    expect(AVATAR_REASONS).toEqual(rust.avatarReasons);
    expect(MINUTE_MS).toBe(rust.minuteMs);
  });

  test("entities and their default stages", () => {
    for (const expected of rust.entities) {
      const entity = schema.parseEntity(expected.raw as string);
      if (expected.asString === null) {
        expect(entity, String(expected.raw)).toBeNull();
        continue;
      }
      expect(entity).not.toBeNull();
      if (entity === null) continue;
      expect({
        raw: expected.raw,
        asString: schema.entityAsString(entity),
        defaultBoardName: schema.defaultBoardName(entity),
        defaultStages: schema.defaultStages(entity).map((s) => ({ ...s })),
      }).toEqual(expected);
    }
  });
});
