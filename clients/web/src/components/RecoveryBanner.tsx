// The two banners of a board whose history and this browser's copy parted ways
// (docs/recovery.md): the server's copy was older than this browser's (a restore from a backup, a
// wipe, a lost tail), and a change this browser holds that the server will never take (4414: one
// change larger than the server's frame limit), with the way out of it.

import { useState } from "preact/hooks";
import { type Recovery, recoveryMessage } from "../store/history";
import { t } from "../ui/i18n";

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
        {t("common.dismiss")}
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
      <p class="refusal-message">{t("recovery.tooLarge")}</p>
      <p>{t("recovery.tooLargeDetail")}</p>
      {detail !== "" && <p class="refusal-detail">{t("chrome.serverSaid", { detail })}</p>}
      <button type="button" class="button primary" data-action="discard-local-copy" disabled={busy} onClick={discard}>
        {t("recovery.discard")}
      </button>
    </div>
  );
}
