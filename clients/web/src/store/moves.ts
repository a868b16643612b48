// A move that lost to a concurrent move. Two people move the same card at the same time (one of
// them offline, or both within a round trip): the document keeps one `stage` (Yjs's rule for a
// map key), and the other person's card jumps back without a word. This watch remembers, per
// card, the `stage` item this tab wrote with its last move; when a remote transaction replaces it
// with an item whose writer had not seen it (its origin is not our item: the writes were
// concurrent) and names another stage, it reports who won and where the card went. A later,
// informed move (its origin is our item) says nothing: that is just someone else's move.

import * as Y from "yjs";
import { CARD_KEY } from "../model/schema";
import { cardYMap } from "../model/serverFields";

/** What a lost move reports. */
export interface LostMove {
  card: string;
  /** The stage this tab had moved the card to. */
  mine: string;
  /** The stage the card is in now. */
  theirs: string;
  /** The Yjs client id of the winning write (the awareness key of its tab). */
  by: number;
}

/** How many recent moves are remembered. */
const REMEMBERED = 200;

export class MoveWatch {
  private readonly pending = new Map<string, { stage: string; item: Y.Item }>();
  private readonly onTransaction = (txn: Y.Transaction) => this.check(txn);

  constructor(
    private readonly doc: Y.Doc,
    private readonly onLost: (lost: LostMove) => void,
  ) {
    doc.on("afterTransaction", this.onTransaction);
  }

  /** Call right after this tab moved `card`: its new `stage` is the one to watch. */
  moved(card: string): void {
    const item = cardYMap(this.doc, card)?._map.get(CARD_KEY.STAGE);
    const stage = cardYMap(this.doc, card)?.get(CARD_KEY.STAGE);
    if (item === undefined || typeof stage !== "string") return;
    this.pending.delete(card);
    this.pending.set(card, { stage, item });
    if (this.pending.size > REMEMBERED) this.pending.delete(this.pending.keys().next().value!);
  }

  destroy(): void {
    this.doc.off("afterTransaction", this.onTransaction);
    this.pending.clear();
  }

  private check(txn: Y.Transaction): void {
    if (txn.local || this.pending.size === 0) return;
    for (const [card, mine] of [...this.pending]) {
      const map = cardYMap(this.doc, card);
      if (map === null) {
        this.pending.delete(card);
        continue;
      }
      const current = map._map.get(CARD_KEY.STAGE);
      if (current === undefined || current === mine.item) continue;
      this.pending.delete(card);
      const stage = map.get(CARD_KEY.STAGE);
      if (current.id.client === this.doc.clientID || typeof stage !== "string" || stage === mine.stage) continue;
      const informed = current.origin !== null && Y.compareIDs(current.origin, mine.item.lastId);
      if (!informed) this.onLost({ card, mine: mine.stage, theirs: stage, by: current.id.client });
    }
  }
}
