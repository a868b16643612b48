// Presence from awareness (docs/board-document.md: `{ user: {id, name, color}, dragging, viewing }`): who is
// on the board, and which cards other people drag or view. Pure: takes the awareness states.

import { compareBytes } from "../model/order";
import { colorFor, type User } from "./users";

export interface PresenceState {
  user: User;
  dragging: string | null;
  viewing: string | null;
}

/** A card someone else is busy with. */
export interface CardPresence {
  user: User;
  what: "dragging" | "viewing";
}

export interface Presence {
  /** Everyone on the board, one entry per user id (the current user included), by name. */
  users: User[];
  /** Cards dragged or viewed by someone other than the current user, by card id. */
  cards: Map<string, CardPresence>;
}

/** Reads one awareness state; null when it is not ours to read. */
export function parsePresence(state: unknown): PresenceState | null {
  if (typeof state !== "object" || state === null) return null;
  const { user, dragging, viewing } = state as Record<string, unknown>;
  if (typeof user !== "object" || user === null) return null;
  const { id, name, color } = user as Record<string, unknown>;
  if (typeof id !== "string" || id === "") return null;
  return {
    user: {
      id,
      name: typeof name === "string" && name !== "" ? name : id,
      color: typeof color === "string" && /^#[0-9a-fA-F]{6}$/.test(color) ? color : colorFor(id),
    },
    dragging: typeof dragging === "string" ? dragging : null,
    viewing: typeof viewing === "string" ? viewing : null,
  };
}

/**
 * Presence from all awareness states (client id → state). `me` is the current user's id: their
 * own tabs never outline cards. A drag wins over a view; of two people, the lower client id.
 */
export function presenceFrom(states: ReadonlyMap<number, unknown>, me: string): Presence {
  const users = new Map<string, User>();
  const cards = new Map<string, CardPresence>();
  const clients = [...states.keys()].sort((a, b) => a - b);
  for (const client of clients) {
    const state = parsePresence(states.get(client));
    if (state === null) continue;
    if (!users.has(state.user.id)) users.set(state.user.id, state.user);
    if (state.user.id === me) continue;
    if (state.dragging !== null) {
      const held = cards.get(state.dragging);
      if (held === undefined || held.what !== "dragging")
        cards.set(state.dragging, { user: state.user, what: "dragging" });
    }
    if (state.viewing !== null && !cards.has(state.viewing)) {
      cards.set(state.viewing, { user: state.user, what: "viewing" });
    }
  }
  return {
    users: [...users.values()].sort((a, b) => a.name.localeCompare(b.name) || compareBytes(a.id, b.id)),
    cards,
  };
}

/** Whether two presences would draw the same. */
export function samePresence(a: Presence, b: Presence): boolean {
  if (a.users.length !== b.users.length || a.cards.size !== b.cards.size) return false;
  const sameUser = (x: User, y: User) => x.id === y.id && x.name === y.name && x.color === y.color;
  if (!a.users.every((u, i) => sameUser(u, b.users[i]!))) return false;
  for (const [card, p] of a.cards) {
    const q = b.cards.get(card);
    if (q === undefined || q.what !== p.what || !sameUser(p.user, q.user)) return false;
  }
  return true;
}
