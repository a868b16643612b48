// One board's document, kept in sync three ways: the server, through the stock y-websocket
// provider on `/ws/boards/{boardId}`; this browser's IndexedDB (y-indexeddb), so that edits made
// offline survive a reload and merge when the socket comes back; and awareness, which carries
// presence (`{ user, dragging, viewing }`).
//
// The BroadcastChannel between tabs is off (`disableBc`): every tab syncs through the server,
// the one place that validates and stores updates, and the connection state a tab shows is then
// the truth about its own edits (a tab that only heard another tab would look in sync while
// nothing of it was stored).
//
// With a token (src/ui/auth.ts) the socket URL carries it as `?token=` (browsers cannot set
// headers on a WebSocket). The server refuses with a close code 4400-4499 (4401 no or expired
// token, 4403 forbidden, 4404 no such board, 4413 board full, 4429 too many); the provider then
// stops for good and the state says `refused`. After a refusal the server will never accept
// (4403, 4404, 4413), the browser's copy of the board is dropped, so that a reload starts from
// what the server has instead of sending the refused change again. After 4414 (one change larger
// than the server takes in a frame) the copy stays until the user chooses to drop it
// (`discardLocalCopy`): it may hold other edits that never reached the server.
//
// Recovery (src/store/history.ts, docs/recovery.md): the connection asks the server for funnel's
// notices (`?notices=1`) and keeps, beside the IndexedDB copy, the clocks of what it received from the server;
// when the server says its copy lacked changes this browser had received from it, the status
// carries a `recovery` for the page's banner.

import * as decoding from "lib0/decoding";
import { IndexeddbPersistence, storeState } from "y-indexeddb";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { reportSocketRefused } from "../ui/api";
import { dropsLocalCopy } from "../ui/auth";
import type { User } from "../ui/users";
import {
  type Clocks,
  formatClocks,
  judgeRecovery,
  MESSAGE_FUNNEL,
  mergeClocks,
  noteReceived,
  parseClocks,
  readRecovered,
  type Recovery,
  seenKey,
  tellsUser,
} from "./history";

/**
 * `loading`: the socket is open but the server's state has not all arrived yet (a large board
 * streams in pieces); `connected` ("Live") only once it has.
 */
/** The IndexedDB database of a board's copy is this prefix and the board id. */
const BOARD_DB_PREFIX = "funnel.board.";

export type ConnectionState = "connected" | "loading" | "connecting" | "offline" | "refused";

export interface ConnectionStatus {
  state: ConnectionState;
  /** The server closed for good (a close code 4400-4499): its reason. */
  refused: { code: number; reason: string } | null;
  /** Whether the socket has connected once: "reconnecting" rather than "connecting". */
  wasConnected: boolean;
  /** The document holds the server's state (synced once) or the browser's copy of it. */
  loaded: boolean;
  /** The server's copy was older than this browser's, or took back some of its changes. */
  recovery: Recovery | null;
}

/** The WebSocket base URL for boards on this page's origin. */
export function boardSocketBase(location: { protocol: string; host: string }): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/boards`;
}

/** The state a connection shows, from what the provider and the browser say. */
export function connectionState(
  online: boolean,
  connected: boolean,
  refused: boolean,
  synced: boolean,
): ConnectionState {
  if (refused) return "refused";
  if (!online) return "offline";
  if (!connected) return "connecting";
  return synced ? "connected" : "loading";
}

/** A localStorage entry, or null when there is none or storage is off (a private window). */
function readStorage(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** How long received clocks wait before they are written (a burst of updates writes once). */
const SAVE_SEEN_MS = 1000;

/** The longest the whole copy waits for an idle time once the loading ends. */
const STORE_AFTER_LOAD_MS = 1000;

/**
 * How long received updates gather before they are written to the copy, as one entry, at the
 * next idle time after: a burst of remote moves is one write, not one each.
 */
const RECEIVED_STORE_MS = 2000;

/** Runs `task` at the first idle time after `delayMs`; returns what cancels it. */
function afterThenIdle(task: () => void, delayMs: number): () => void {
  let cancelIdle: (() => void) | null = null;
  const timer = setTimeout(() => (cancelIdle = whenIdle(task, delayMs)), delayMs);
  return () => {
    clearTimeout(timer);
    cancelIdle?.();
  };
}

/**
 * Runs `task` at the page's next idle time (at the latest after `timeoutMs`); returns what
 * cancels it. Where `requestIdleCallback` is missing (Safari), after `timeoutMs` / 10.
 */
function whenIdle(task: () => void, timeoutMs: number): () => void {
  if (typeof requestIdleCallback === "function") {
    const handle = requestIdleCallback(task, { timeout: timeoutMs });
    return () => cancelIdleCallback(handle);
  }
  const timer = setTimeout(task, timeoutMs / 10);
  return () => clearTimeout(timer);
}

export class BoardConnection {
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  private readonly persistence: IndexeddbPersistence;
  private readonly listeners = new Set<(status: ConnectionStatus) => void>();
  private status: ConnectionStatus;
  private readonly onOnline = () => this.update({});
  /** What this copy received from the server, per author (see `history.ts`). */
  private seen: Clocks;
  private saveSeenTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly saveSeenNow = () => {
    this.saveSeen();
    this.storeReceived();
    // A page left right after its board loaded: start the copy's write now (it may finish).
    this.cancelStoreLoaded?.();
    this.cancelStoreLoaded = null;
    this.storeLoadedStateNow();
  };
  /** The IndexedDB copy, when it opened, held a board (stages). */
  private localCopyHeldBoard = false;
  /** Pieces of the server's state came while loading and the copy has not been written since. */
  private unstored = false;
  private cancelStoreLoaded: (() => void) | null = null;
  /** The `update` listeners are off for the transaction being cleaned up (`beforeUpdateEvent`). */
  private updateListenersOff = false;
  private readonly beforeUpdateEvent = (transaction: Y.Transaction) => {
    const skip = transaction.origin === this.provider && this.status.state === "loading";
    if (skip) this.unstored = true;
    this.setUpdateListeners(!skip);
  };
  private readonly afterUpdateEvents = () => this.setUpdateListeners(true);
  /** Attaches or detaches the doc's `update` listeners (the provider's and `storeUpdate`). */
  private setUpdateListeners(on: boolean): void {
    if (on !== this.updateListenersOff) return;
    this.updateListenersOff = !on;
    if (on) {
      this.doc.on("update", this.provider._updateHandler);
      this.doc.on("update", this.storeUpdate);
    } else {
      this.doc.off("update", this.provider._updateHandler);
      this.doc.off("update", this.storeUpdate);
    }
  }
  /** Updates received from the server and not yet written to the copy (see `storeUpdate`). */
  private received: Uint8Array[] = [];
  private receivedFlush: (() => void) | null = null;
  /**
   * What goes to the IndexedDB copy. This browser's own edits: written at once (they may exist
   * nowhere else yet). The server's: it stored them before sending, so they wait for the page's
   * next idle time and go as one merged entry, off the path of the change's render; while the
   * board loads they are not written at all, and the whole copy is written once after.
   */
  private readonly storeUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin === this.provider) {
      if (this.status.state === "loading") {
        this.unstored = true;
        return;
      }
      this.received.push(update);
      this.receivedFlush ??= afterThenIdle(() => this.storeReceived(), RECEIVED_STORE_MS);
      return;
    }
    this.storeReceived();
    this.persistence._storeUpdate(update, origin);
  };
  private readonly storeReceived = () => {
    this.receivedFlush?.();
    this.receivedFlush = null;
    if (this.received.length === 0) return;
    const update = this.received.length === 1 ? this.received[0]! : Y.mergeUpdates(this.received);
    this.received = [];
    this.persistence._storeUpdate(update, this.provider);
  };
  private readonly onTransaction = (transaction: Y.Transaction) => {
    if (transaction.origin === this.persistence) {
      // The copy brought something (its transaction runs even when it is empty) and the
      // document has stages: a copy is a whole document, so it held them.
      const brought = [...transaction.afterState].some(
        ([client, clock]) => clock !== transaction.beforeState.get(client),
      );
      if (brought && this.doc.share.has("stages") && this.doc.getMap("stages").size > 0) this.localCopyHeldBoard = true;
      return;
    }
    // Every update the provider applies came from the server, which stored it first: what it
    // brought is read from the transaction's state vectors, not by parsing the update again.
    if (
      transaction.origin === this.provider &&
      noteReceived(this.seen, transaction.beforeState, transaction.afterState)
    )
      this.scheduleSaveSeen();
  };

  constructor(
    readonly boardId: string,
    user: User,
    token: string | null = null,
  ) {
    this.status = { state: "connecting", refused: null, wasConnected: false, loaded: false, recovery: null };
    this.seen = parseClocks(readStorage(seenKey(boardId)));
    this.persistence = new IndexeddbPersistence(`${BOARD_DB_PREFIX}${boardId}`, this.doc);
    // y-indexeddb writes every update as an entry of its own: a large board streams in hundreds
    // of pieces, each its own IndexedDB write (and, past 500 entries, a rewrite of the whole
    // copy). While the server's state loads, its pieces are not written one by one; the copy is
    // written once, whole, when the loading ends (`storeLoadedState`). This browser's own edits
    // are written at once as before.
    this.doc.off("update", this.persistence._storeUpdate);
    this.doc.on("update", this.storeUpdate);
    this.persistence.on("synced", () => {
      // The browser's copy counts as loaded only if it held a board itself: pieces of the
      // server's state may have arrived before the copy finished opening, and they are not
      // all of the board (a first visit's copy holds none).
      if (this.localCopyHeldBoard) this.update({ loaded: true });
      if (this.unstored && this.status.state !== "loading") this.storeLoadedState();
    });
    // What the copy held when it opened: its updates are applied in one transaction, its own origin.
    this.doc.on("afterTransaction", this.onTransaction);
    // Yjs encodes a transaction's update again for the doc's `update` listeners (the provider's,
    // which sends only this browser's own, and `storeUpdate`), between `afterTransactionCleanup`
    // and the next transaction's: none of them wants a piece of the loading server state.
    this.doc.on("afterTransactionCleanup", this.beforeUpdateEvent);
    this.doc.on("afterAllTransactions", this.afterUpdateEvents);
    this.provider = new WebsocketProvider(boardSocketBase(window.location), boardId, this.doc, {
      disableBc: true,
      // `notices`: send funnel's notices (history.ts); a server that does not know it ignores it.
      params: token !== null ? { token, notices: "1" } : { notices: "1" },
    });
    this.provider.on("status", ({ status }) => {
      this.update(status === "connected" ? { wasConnected: true } : {});
    });
    this.provider.messageHandlers[MESSAGE_FUNNEL] = (_encoder, decoder) => {
      this.onFunnelMessage(decoding.readVarUint8Array(decoder));
    };
    window.addEventListener("pagehide", this.saveSeenNow);
    // `sync` also says false when a socket closes: the state then leaves `connected`.
    this.provider.on("sync", (synced: boolean) => {
      this.update(synced ? { loaded: true } : {});
    });
    this.provider.on("closed", ({ code, reason }: { code: number; reason: string }) => {
      if (dropsLocalCopy(code)) void this.forgetLocalCopy();
      this.update({ refused: { code, reason } });
      // The app turns a signed-out or refused person's board into its own page (src/components/App.tsx).
      reportSocketRefused(code, reason);
    });
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOnline);
    this.provider.awareness.setLocalState({ user, dragging: null, viewing: null });
  }

  get current(): ConnectionStatus {
    return this.status;
  }

  subscribe(listener: (status: ConnectionStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The user dismissed the recovery banner. */
  dismissRecovery(): void {
    this.update({ recovery: null });
  }

  /**
   * Drops this browser's copy of the board (its IndexedDB store and what it had received), so
   * that the next load starts from what the server has: the way out of a change the server will
   * never take (4414). Edits the server does not have are lost.
   */
  async discardLocalCopy(): Promise<void> {
    this.provider.disconnect();
    await this.forgetLocalCopy();
  }

  setUser(user: User): void {
    this.provider.awareness.setLocalStateField("user", user);
  }

  setDragging(card: string | null): void {
    if (this.provider.awareness.getLocalState()?.dragging !== card)
      this.provider.awareness.setLocalStateField("dragging", card);
  }

  setViewing(card: string | null): void {
    if (this.provider.awareness.getLocalState()?.viewing !== card)
      this.provider.awareness.setLocalStateField("viewing", card);
  }

  destroy(): void {
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOnline);
    window.removeEventListener("pagehide", this.saveSeenNow);
    if (this.saveSeenTimer !== null) this.saveSeen();
    this.storeReceived();
    this.listeners.clear();
    this.cancelStoreLoaded?.();
    this.cancelStoreLoaded = null;
    this.setUpdateListeners(true);
    this.doc.off("update", this.storeUpdate);
    this.doc.off("afterTransaction", this.onTransaction);
    this.doc.off("afterTransactionCleanup", this.beforeUpdateEvent);
    this.doc.off("afterAllTransactions", this.afterUpdateEvents);
    this.provider.awareness.setLocalState(null);
    this.provider.destroy();
    void this.persistence.destroy();
    this.doc.destroy();
  }

  private onFunnelMessage(payload: Uint8Array): void {
    let notice;
    try {
      notice = readRecovered(payload);
    } catch (error) {
      console.warn("funnel: a notice from the server could not be read", error);
      return;
    }
    if (notice === null) return;
    const recovery = judgeRecovery(notice, this.seen);
    if (tellsUser(recovery)) this.update({ recovery });
  }

  private scheduleSaveSeen(): void {
    if (this.saveSeenTimer !== null) return;
    this.saveSeenTimer = setTimeout(() => this.saveSeen(), SAVE_SEEN_MS);
  }

  /** Writes `seen`, merged with what another tab on this board wrote meanwhile. */
  private saveSeen(): void {
    if (this.saveSeenTimer !== null) clearTimeout(this.saveSeenTimer);
    this.saveSeenTimer = null;
    const key = seenKey(this.boardId);
    try {
      this.seen = mergeClocks(parseClocks(readStorage(key)), this.seen);
      localStorage.setItem(key, formatClocks(this.seen));
    } catch (error) {
      // Storage full or off: the page can then miss a recovery, never invent one.
      console.warn("funnel: could not keep what this browser received", error);
    }
  }

  private async forgetLocalCopy(): Promise<void> {
    if (this.saveSeenTimer !== null) clearTimeout(this.saveSeenTimer);
    this.saveSeenTimer = null;
    this.seen = new Map();
    // Nothing more goes to the copy being dropped.
    this.receivedFlush?.();
    this.receivedFlush = null;
    this.received = [];
    this.unstored = false;
    try {
      localStorage.removeItem(seenKey(this.boardId));
    } catch {
      // Storage off: there was nothing kept to remove.
    }
    await this.persistence.clearData();
  }

  /**
   * Writes the whole document to the IndexedDB copy as one entry (y-indexeddb's `storeState`,
   * which also drops the entries it replaces), once the loading is over and the page is idle:
   * after the first paint, not before it.
   */
  private storeLoadedState(): void {
    if (this.cancelStoreLoaded !== null || this.persistence.db === null) return;
    this.cancelStoreLoaded = whenIdle(() => {
      this.cancelStoreLoaded = null;
      this.storeLoadedStateNow();
    }, STORE_AFTER_LOAD_MS);
  }

  private storeLoadedStateNow(): void {
    if (!this.unstored || this.status.state === "loading" || this.persistence.db === null) return;
    if (this.persistence._destroyed) return;
    this.unstored = false;
    void storeState(this.persistence, true).catch((error: unknown) =>
      console.warn("funnel: could not keep this board in the browser", error),
    );
  }

  private update(change: Partial<ConnectionStatus>): void {
    const next = { ...this.status, ...change };
    next.state = connectionState(
      navigator.onLine,
      this.provider?.wsconnected ?? false,
      next.refused !== null,
      this.provider?.synced ?? false,
    );
    const same =
      next.state === this.status.state &&
      next.refused === this.status.refused &&
      next.wasConnected === this.status.wasConnected &&
      next.loaded === this.status.loaded &&
      next.recovery === this.status.recovery;
    if (same) return;
    this.status = next;
    if (this.unstored && next.state !== "loading") this.storeLoadedState();
    for (const listener of this.listeners) listener(next);
  }
}

/**
 * Forgets every board this browser keeps (IndexedDB copies and the clocks of what they
 * received): after a sign-out, the next person at this browser finds nothing of the last one's
 * boards. Unsynced edits go too; a sign-out needs the server, so a connected page has none left
 * for long. Resolves once the deletions are asked for (a copy still open is deleted once closed).
 */
export async function forgetAllLocalCopies(): Promise<void> {
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const key = localStorage.key(i);
      if (key !== null && key.startsWith("funnel.seen.")) localStorage.removeItem(key);
    }
  } catch {
    // Storage off: nothing was kept.
  }
  if (typeof indexedDB === "undefined" || typeof indexedDB.databases !== "function") return;
  try {
    for (const { name } of await indexedDB.databases()) {
      if (name !== undefined && name.startsWith(BOARD_DB_PREFIX)) indexedDB.deleteDatabase(name);
    }
  } catch (error) {
    console.warn("funnel: could not forget the boards kept in this browser", error);
  }
}
