// Undo and redo of this tab's own actions on a board (Ctrl+Z / Cmd+Z, Ctrl+Shift+Z): a Yjs
// `UndoManager` over the cards and activities that tracks only local transactions. The board's
// writes (model/write.ts) run in `doc.transact` without an origin, so their origin is `null`;
// what the server, another tab or IndexedDB brings arrives with the provider or the persistence
// as its origin and is never tracked. Undoing reverts what this tab wrote and nothing else:
// another person's later change of another card (or of another field) stays as it is.
//
// Each action is its own step (`captureTimeout` 0): a move, an edit committed from a field, a
// create, an archive, a delete. Each step carries a description ("moving “Acme”") taken when it
// was made, for the toast that says what was undone.

import { t } from "../ui/i18n";
import * as Y from "yjs";
import { CARD_KEY, ROOT } from "../model/schema";

/** The description kept with each step, in `StackItem.meta`. */
const LABEL = "label";

/** What an undo step's events say: the type changed and the keys it changed. */
interface Changed {
  target: { parent: unknown; _item: { parentSub: string | null } | null };
  changes: { keys: Map<string, { action: "add" | "update" | "delete" }> };
}

/** What an undo or redo did, for the toast; null: there was nothing to undo or redo. */
export interface UndoOutcome {
  label: string;
}

export class BoardUndo {
  private readonly manager: Y.UndoManager;
  /** The label of the step being undone or redone, while it moves between the stacks. */
  private moving: string | null = null;

  /**
   * `titleOf` names a card for the descriptions; it may know cards the document no longer
   * shows (a delete), and returns null for one it does not know.
   */
  constructor(
    doc: Y.Doc,
    private readonly titleOf: (card: string) => string | null,
  ) {
    const cards = doc.getMap(ROOT.CARDS);
    const activities = doc.getMap(ROOT.ACTIVITIES);
    this.manager = new Y.UndoManager([cards, activities], {
      trackedOrigins: new Set([null]),
      captureTimeout: 0,
    });
    this.manager.on("stack-item-added", (event) => {
      // A step undone goes to the redo stack (and back) under the label it was made with.
      const label = this.moving ?? this.describe(event.changedParentTypes, cards, activities);
      event.stackItem.meta.set(LABEL, label);
    });
  }

  /** Undoes this tab's last action still on the stack. */
  undo(): UndoOutcome | null {
    return this.step(this.undoRun);
  }

  /** Redoes the last undone action. */
  redo(): UndoOutcome | null {
    return this.step(this.redoRun);
  }

  canUndo(): boolean {
    return this.manager.canUndo();
  }

  destroy(): void {
    this.manager.destroy();
  }

  undoLabel(): string | null {
    return labelOf(this.manager.undoStack.at(-1));
  }

  private step(run: () => unknown): UndoOutcome | null {
    const stack = run === this.undoRun ? this.manager.undoStack : this.manager.redoStack;
    const label = labelOf(stack.at(-1));
    if (label === null) return null;
    this.moving = label;
    try {
      run();
    } finally {
      this.moving = null;
    }
    return { label };
  }

  private readonly undoRun = () => this.manager.undo();
  private readonly redoRun = () => this.manager.redo();

  /** What a tracked transaction did, in words: the first card it touched decides. */
  private describe(
    changed: ReadonlyMap<unknown, readonly Changed[]>,
    cards: Y.Map<unknown>,
    activities: Y.Map<unknown>,
  ): string {
    for (const events of changed.values()) {
      for (const event of events) {
        const target = event.target;
        if (target === cards) {
          for (const [id, change] of event.changes.keys) {
            const title = this.quoted(id, cards);
            if (change.action === "add") return t("undo.creating", { title });
            if (change.action === "delete") return t("undo.deleting", { title });
          }
        } else if (target.parent === cards) {
          const id = target._item?.parentSub ?? null;
          const keys = event.changes.keys;
          const title = id === null ? t("undo.aCard") : this.quoted(id, cards);
          if (keys.has(CARD_KEY.STAGE)) return t("undo.moving", { title });
          if (keys.has(CARD_KEY.ARCHIVED_AT)) return t("undo.archiving", { title });
          if (keys.has(CARD_KEY.POS)) return t("undo.moving", { title });
          return t("undo.editing", { title });
        } else if (target === activities || target.parent === activities) {
          return t("undo.activity");
        }
      }
    }
    return t("undo.last");
  }

  /** A card's title from the document (a card just created), else from `titleOf` (one deleted). */
  private quoted(card: string, cards: Y.Map<unknown>): string {
    const map = cards.get(card);
    const own: unknown = map instanceof Y.Map ? (map as Y.Map<unknown>).get(CARD_KEY.TITLE) : undefined;
    const title = typeof own === "string" ? own : this.titleOf(card);
    return title === null || title === "" ? t("undo.aCard") : t("history.quoted", { value: title });
  }
}

function labelOf(item: { meta: Map<unknown, unknown> } | undefined): string | null {
  if (item === undefined) return null;
  const label = item.meta.get(LABEL);
  return typeof label === "string" ? label : t("undo.last");
}

/** Whether a key press belongs to a field being typed in (its own undo), not to the board. */
export function typingIn(target: EventTarget | null): boolean {
  const element = target as { tagName?: unknown; isContentEditable?: unknown } | null;
  if (element === null || typeof element.tagName !== "string") return false;
  const tag = element.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable === true;
}

/** Ctrl+Z / Cmd+Z is "undo", with Shift (or Ctrl+Y) "redo"; null for any other key. */
export function undoKey(
  event: Pick<KeyboardEvent, "key" | "ctrlKey" | "metaKey" | "shiftKey" | "altKey">,
): "undo" | "redo" | null {
  if (!(event.ctrlKey || event.metaKey) || event.altKey) return null;
  const key = event.key.toLowerCase();
  if (key === "z") return event.shiftKey ? "redo" : "undo";
  if (key === "y" && !event.shiftKey) return "redo";
  return null;
}
