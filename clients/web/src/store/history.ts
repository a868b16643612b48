// What this browser has received from the server, and what the server says after its step 2:
// how the page learns that the server lost part of a board's history (a restore from a backup, a
// wiped data directory, a lost tail) and that this browser's copy brought it back.
//
// Everything the server sends was stored before it was sent (docs/storage.md), so the clocks of
// what this copy received from the server (`seen`: per author, the highest clock received) are
// clocks the server held. The page's socket URL asks for funnel's notices (`?notices=1`; Rust
// clients may send the funnel message instead, type 100 kind 0); after its step 2 brought the board changes it lacked, the server answers with a
// "recovered" notice (kind 1): for each author of those changes, the clock the board held before.
// An author whose `seen` clock is above that clock had changes the server had sent, and lost:
// the server's history was older than this copy. Only offline edits (never received from the
// server) never look like that. Docs: docs/recovery.md.

import { currentLocale, t, type Key } from "../ui/i18n";
import * as decoding from "lib0/decoding";
import * as Y from "yjs";

/** funnel's own messages (protocol/src/wire.rs `MSG_FUNNEL`). */
export const MESSAGE_FUNNEL = 100;
/** Server → client: a step 2 brought the board changes it lacked. */
export const FUNNEL_RECOVERED = 1;

/** Per author (a Yjs client id), a clock. */
export type Clocks = Map<number, number>;

/** What the server took back, as the notice names it (protocol `wire::TakenBack`). */
export type TakenBack = "settings" | "stages" | "fields" | "forms" | "views" | "cards" | "serverFields";

const TAKEN_BACK: readonly TakenBack[] = ["settings", "stages", "fields", "forms", "views", "cards", "serverFields"];

export interface RecoveredNotice {
  /** The board's clocks before the step 2, for each author it brought changes of. */
  held: Clocks;
  takenBack: TakenBack[];
}

/** What the page tells its user after a recovered notice. */
export interface Recovery {
  /** The server had lost changes this copy had received from it (and brought back). */
  lostHistory: boolean;
  /** What the server took back, in the notice's words, without what the server recomputes. */
  takenBack: TakenBack[];
}

/**
 * A funnel message's payload (after its type), as a recovered notice; null for another kind
 * (a newer server's). Throws on a malformed one.
 */
export function readRecovered(payload: Uint8Array): RecoveredNotice | null {
  const decoder = decoding.createDecoder(payload);
  if (decoding.readVarUint(decoder) !== FUNNEL_RECOVERED) return null;
  const held = Y.decodeStateVector(decoding.readVarUint8Array(decoder));
  const count = decoding.readVarUint(decoder);
  const takenBack: TakenBack[] = [];
  for (let i = 0; i < count && decoding.hasContent(decoder); i++) {
    const name = decoding.readVarString(decoder);
    const known = TAKEN_BACK.find((kind) => kind === name);
    if (known !== undefined) takenBack.push(known);
  }
  return { held, takenBack };
}

/**
 * Raises `seen` to what a transaction of received updates brought: each author whose clock it
 * moved, to the document's clock after it (`Transaction.beforeState` and `afterState`, the
 * state vectors around it: what the update's own structs reach, as `Y.parseUpdateMeta(update).to`
 * says, without decoding the update again). Structs the document could not integrate yet are
 * counted when they are: `seen` may lag what the server sent, never run ahead of it.
 */
export function noteReceived(
  seen: Clocks,
  before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>,
): boolean {
  let raised = false;
  for (const [client, clock] of after) {
    if (clock === (before.get(client) ?? 0)) continue;
    if (clock > (seen.get(client) ?? 0)) {
      seen.set(client, clock);
      raised = true;
    }
  }
  return raised;
}

/** What a notice means to this copy, given what it had received from the server. */
export function judgeRecovery(notice: RecoveredNotice, seen: Clocks): Recovery {
  let lostHistory = false;
  for (const [client, clock] of notice.held) {
    if ((seen.get(client) ?? 0) > clock) lostHistory = true;
  }
  return { lostHistory, takenBack: notice.takenBack.filter((kind) => kind !== "serverFields") };
}

/** Whether a recovery is worth telling the user about. */
export function tellsUser(recovery: Recovery): boolean {
  return recovery.lostHistory || recovery.takenBack.length > 0;
}

const NAMES: Record<TakenBack, Key> = {
  settings: "recovery.settings",
  stages: "recovery.stages",
  fields: "recovery.fields",
  forms: "recovery.forms",
  views: "recovery.views",
  cards: "recovery.cards",
  serverFields: "recovery.serverFields",
};

/** The banner's sentences, in the page's language: what happened, and what became of this copy's changes. */
export function recoveryMessage(recovery: Recovery): { title: string; detail: string } {
  const list = recovery.takenBack.map((kind) => t(NAMES[kind]));
  const takenBack = list.length === 0 ? "" : t("recovery.takenBack", { list: joinWords(list) });
  if (recovery.lostHistory) {
    return {
      title: t("recovery.lostTitle"),
      detail: t("recovery.lostDetail") + (list.length === 0 ? t("recovery.nothingLost") : takenBack),
    };
  }
  return {
    title: t("recovery.offlineTitle"),
    detail: t("recovery.offlineDetail", { takenBack }),
  };
}

/** "a, b and c" ("a, b et c") in the page's locale. */
function joinWords(words: string[]): string {
  return new Intl.ListFormat(currentLocale(), { type: "conjunction" }).format(words);
}

/** Where a board's `seen` clocks are kept beside its IndexedDB copy. */
export function seenKey(boardId: string): string {
  return `funnel.seen.${boardId}`;
}

export function parseClocks(raw: string | null): Clocks {
  const clocks: Clocks = new Map();
  if (raw === null) return clocks;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== "object" || parsed === null) return clocks;
    for (const [client, clock] of Object.entries(parsed as Record<string, unknown>)) {
      const id = Number(client);
      if (Number.isSafeInteger(id) && typeof clock === "number" && Number.isSafeInteger(clock)) clocks.set(id, clock);
    }
  } catch {
    // A damaged entry is as good as none: the page then only misses a recovery, never invents one.
  }
  return clocks;
}

export function formatClocks(clocks: Clocks): string {
  return JSON.stringify(Object.fromEntries(clocks));
}

/** `a` raised to `b`, author by author. */
export function mergeClocks(a: Clocks, b: Clocks): Clocks {
  const merged = new Map(a);
  for (const [client, clock] of b) if (clock > (merged.get(client) ?? 0)) merged.set(client, clock);
  return merged;
}
