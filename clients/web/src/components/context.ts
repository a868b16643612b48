// What every part of the board screen may do, handed down once. The object is created once per
// board and reads the latest state through refs, so passing it never re-renders anything. Its
// functions are closures (no `this`), so a part may pass one on as a callback.

import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type * as Y from "yjs";
import type { BoardSnapshot } from "../store/boardStore";
import type { BoardConnection } from "../store/connection";
import type { Permissions } from "../ui/auth";
import type { RosterEntry, User } from "../ui/users";

export interface BoardActions {
  readonly boardId: string;
  readonly doc: Y.Doc;
  readonly connection: BoardConnection;
  /** What this user's role may do here: the UI hides what it may not. */
  readonly can: Permissions;
  readonly snapshot: () => BoardSnapshot;
  readonly me: () => User;
  readonly roster: () => readonly RosterEntry[];
  /** A readable name for a user id. */
  readonly nameOf: (user: string) => string;
  readonly openCard: (card: string) => void;
  readonly openActivities: (card: string) => void;
  readonly closePanel: () => void;
  readonly openQuickCreate: (stage: string | null) => void;
  readonly editStage: (stage: string | null) => void;
  /** Runs a write; shows the model's message when it refuses. Returns whether it went through. */
  readonly write: (what: () => void) => boolean;
  /** Shows a message to the person (errors of the model, of the server). */
  readonly notify: (message: string, tone?: "error" | "info") => void;
  /** Says something to screen readers. */
  readonly announce: (message: string) => void;
  /**
   * Moves a card (drag, keyboard, card panel, won/lost bar); returns whether it moved. When the
   * target stage requires fields the card lacks, it asks for them first (and returns false);
   * `edit` is written with the move, in one transaction.
   */
  readonly moveCard: (
    card: string,
    target: import("../ui/placement").Target,
    edit?: import("../model/write").CardEdit,
  ) => boolean;
  /** Deletes a card and its activities, with an Undo in a notice for a few seconds. */
  readonly deleteCard: (card: string) => void;
  /** Archives a card (or restores it: `restore`), with an Undo in a notice. */
  readonly archiveCard: (card: string, restore?: boolean) => void;
  /**
   * The activity bar's segments: shows only the cards of that activity status on the whole
   * board (the address's `state`), or takes that filter off when it is the one shown.
   */
  readonly filterByStatus: (status: import("../ui/activityStatus").ActivityStatus) => void;
  /** After a card was created here: says so when the board's filter hides it. */
  readonly created: (card: string) => void;
  /** Asks that `card` takes the focus when it is next rendered. */
  readonly requestFocus: (card: string) => void;
  /** Called by a rendered card: whether it should take the focus now (and clears the request). */
  readonly takeFocus: (card: string) => boolean;
  /** The card that should take the focus, if any. */
  readonly pendingFocus: () => string | null;
}

export const BoardContext = createContext<BoardActions | null>(null);

export function useBoard(): BoardActions {
  const actions = useContext(BoardContext);
  if (actions === null) throw new Error("useBoard outside a board");
  return actions;
}
