// The format of the shared vectors in protocol/vectors/, as protocol/tests/vectors.rs writes and
// reads it: a board view as JSON, activity facts and avatar events, base64 updates.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as Y from "yjs";
import type { BoardView } from "../src/model/board";
import type { AvatarEvent, Counter } from "../src/model/rules";

/** `FUNNEL_UPDATE_VECTORS=1` (re)writes the vectors this side owns, as in the Rust test. */
export const UPDATING = process.env.FUNNEL_UPDATE_VECTORS === "1";

const VECTORS = new URL("../../../protocol/vectors/", import.meta.url);

export function vectorPath(name: string): string {
  return fileURLToPath(new URL(name, VECTORS));
}

export function readVectors<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(vectorPath(name), "utf8")) as T;
}

export function writeVectors(name: string, value: unknown): void {
  writeFileSync(vectorPath(name), JSON.stringify(value, null, 2) + "\n");
}

/** One board of boards.json or from-typescript.json. */
export interface BoardVector {
  name: string;
  now: number;
  /** base64 of a v1 update holding the whole document. */
  update: string;
  expected: unknown;
}

export function encodeDoc(doc: Y.Doc): string {
  return Buffer.from(Y.encodeStateAsUpdate(doc)).toString("base64");
}

export function decodeDoc(update: string): Y.Doc {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, new Uint8Array(Buffer.from(update, "base64")));
  return doc;
}

export function counterJson(counter: Counter): unknown {
  return {
    count: counter.count,
    lit: counter.lit,
    incoming: counter.incoming,
    next: counter.next,
    state: counter.state,
  };
}

/** Rust's `view_json` in protocol/tests/vectors.rs. */
export function viewJson(view: BoardView): unknown {
  const cards: Record<string, unknown> = {};
  for (const column of view.columns) {
    for (const card of column.cards) {
      cards[card.id] = {
        title: card.title,
        stage: card.stage,
        pos: card.pos,
        amount: card.amount,
        currency: card.currency,
        responsible: card.responsible,
        client: card.client,
        email: card.email,
        createdAt: card.createdAt,
        updatedAt: card.updatedAt,
        fields: Object.fromEntries(card.fields),
      };
    }
  }
  return {
    settings: {
      name: view.settings.name,
      entity: view.settings.entity,
      currency: view.settings.currency,
      counterThresholdMin: view.settings.counterThresholdMin,
    },
    columns: view.columns.map((column) => ({
      stageId: column.stage.id,
      stageName: column.stage.name,
      stageColor: column.stage.color,
      stagePos: column.stage.pos,
      kind: column.stage.kind,
      cardIds: column.cards.map((card) => card.id),
      sums: Object.fromEntries(column.sums),
    })),
    cards,
    workload: view.workload.map((load) => ({
      responsible: load.responsible,
      cards: load.cards,
      amounts: Object.fromEntries(load.amounts),
      lit: load.lit,
    })),
    unprocessed: view.unprocessed,
    counters: Object.fromEntries([...view.counters].map(([id, c]) => [id, counterJson(c)])),
  };
}

export function eventJson(event: AvatarEvent): unknown {
  return { at: event.at, user: event.user, reason: event.reason };
}
