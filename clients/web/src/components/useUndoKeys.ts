// Ctrl+Z / Cmd+Z on the board undoes this tab's own last action, Ctrl+Shift+Z (or Ctrl+Y) redoes
// it (src/store/undo.ts), unless the key goes to a field being typed in, which has its own undo.
// A short notice says what was undone.

import { useEffect, useRef } from "preact/hooks";
import type * as Y from "yjs";
import { BoardUndo, typingIn, undoKey } from "../store/undo";
import { t } from "../ui/i18n";

export function useUndoKeys(
  doc: Y.Doc,
  /** Whether this user may write cards at all (a viewer has nothing to undo). */
  enabled: boolean,
  /** A card's title as the board showed it (for a card this tab just deleted). */
  titleOf: (card: string) => string | null,
  /** Shows the notice and announces it to screen readers. */
  say: (message: string) => void,
): void {
  const titleRef = useRef(titleOf);
  titleRef.current = titleOf;
  const sayRef = useRef(say);
  sayRef.current = say;
  useEffect(() => {
    if (!enabled) return;
    const undo = new BoardUndo(doc, (card) => titleRef.current(card));
    const onKey = (event: KeyboardEvent) => {
      const what = undoKey(event);
      if (what === null || event.defaultPrevented || typingIn(event.target)) return;
      event.preventDefault();
      const outcome = what === "undo" ? undo.undo() : undo.redo();
      if (outcome === null) sayRef.current(t(what === "undo" ? "undo.nothingToUndo" : "undo.nothingToRedo"));
      else sayRef.current(t(what === "undo" ? "undo.undid" : "undo.redid", { label: outcome.label }));
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      undo.destroy();
    };
  }, [doc, enabled]);
}
