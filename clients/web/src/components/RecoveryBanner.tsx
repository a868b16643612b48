// The two banners of a board whose history and this browser's copy parted ways
// (docs/recovery.md): the server's copy was older than this browser's (a restore from a backup, a
// wipe, a lost tail), and a change this browser holds that the server will never take (4414: one
// change larger than the server's frame limit), with the way out of it.

import { useState } from "preact/hooks";
import { type Recovery, recoveryMessage } from "../store/history";

/** "The server had lost recent changes": what happened and what became of this copy's edits. */
export function RecoveryBanner({ recovery, onDismiss }: { recovery: Recovery; onDismiss: () => void }) {
  const { title, detail } = recoveryMessage(recovery);
  return (
    <div
      class="recovery-banner"
      role="status"
      data-recovery={recovery.lostHistory ? "lost-history" : "taken-back"}
      data-taken-back={recovery.takenBack.join(" ")}
    >
      <div>
        <p class="recovery-title">{title}</p>
        <p class="recovery-detail">{detail}</p>
      </div>
      <button type="button" class="button" data-action="dismiss-recovery" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}

/**
 * 4414: the server refused a change too large to take, and the provider stopped for good. This
 * browser's copy still holds that change (it would send it again on every visit), and maybe
 * other edits the server never got: the way out drops the copy and reloads the board from the
 * server.
 */
export function TooLargeChangeBanner({ detail, onDiscard }: { detail: string; onDiscard: () => Promise<void> }) {
  const [busy, setBusy] = useState(false);
  const discard = () => {
    setBusy(true);
    void onDiscard().then(() => window.location.reload());
  };
  return (
    <div class="refusal refusal-banner" data-refusal="4414" role="alert">
      <p class="refusal-message">Your last change is too large for the server to save, so this page stopped syncing</p>
      <p>
        The board is still safe on the server; only this browser holds the change, and any edits made since it. To go
        on, reload the board as the server has it: this browser's unsaved changes to this board are dropped. Then make
        the change again in smaller steps (a shorter text, fewer cards at once).
      </p>
      {detail !== "" && <p class="refusal-detail">The server said: {detail}</p>}
      <button type="button" class="button primary" data-action="discard-local-copy" disabled={busy} onClick={discard}>
        Drop my unsaved changes and reload
      </button>
    </div>
  );
}
