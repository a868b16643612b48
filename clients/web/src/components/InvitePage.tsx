// The page of an invite link, `/invite#secret` (docs/accounts.md): the secret stays in the
// fragment (never sent to a server or in a Referer); the page asks what the link is for, lets
// the person set a password (twice) and the name they go by, and, accepted, signs them in: the
// app then shows the home page.

import { useEffect, useState } from "preact/hooks";
import { acceptInvite, fetchInvite, type InviteInfo } from "../ui/api";
import type { Me } from "../ui/auth";
import { formatDateTime } from "../ui/format";
import { formText } from "../ui/formData";
import { inviteErrorText, MIN_PASSWORD_CHARS, passwordProblem } from "../ui/people";
import { inviteSecret } from "../ui/route";
import { t } from "../ui/i18n";

type State =
  | { kind: "loading" }
  | { kind: "ready"; invite: InviteInfo }
  /** The link cannot be used: no secret, used, expired, or no accounts. */
  | { kind: "broken"; message: string };

export function InvitePage({ onAccepted }: { onAccepted: (me: Me) => void }) {
  const [secret] = useState(() => inviteSecret(window.location.hash));
  const [state, setState] = useState<State>(
    secret === null ? { kind: "broken", message: t("invite.incomplete") } : { kind: "loading" },
  );
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    document.title = t("invite.documentTitle");
  }, []);
  useEffect(() => {
    if (secret === null) return;
    const abort = new AbortController();
    fetchInvite(secret, abort.signal)
      .then((invite) => setState({ kind: "ready", invite }))
      .catch((failure: unknown) => {
        if (!abort.signal.aborted) setState({ kind: "broken", message: inviteErrorText(failure) });
      });
    return () => abort.abort();
  }, [secret]);

  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    if (secret === null) return;
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const password = formText(data, "password");
    const problem = passwordProblem(password, formText(data, "confirm"));
    if (problem !== null) return setError(problem);
    setBusy(true);
    setError(null);
    acceptInvite(secret, password, formText(data, "name"))
      .then(onAccepted)
      .catch((failure: unknown) => {
        setBusy(false);
        setError(inviteErrorText(failure));
      });
  };

  return (
    <div class="page invite-page" data-page="invite">
      <header class="topbar">
        <a href="/" class="brand">
          funnel
        </a>
      </header>
      <main class="sign-in">
        {state.kind === "loading" && <p class="muted">{t("invite.reading")}</p>}
        {state.kind === "broken" && (
          <div class="refusal" data-invite-error="" role="alert">
            <p class="refusal-message">{state.message}</p>
            <p class="hint">
              {t("invite.havePassword")} <a href="/">{t("invite.signIn")}</a>
            </p>
          </div>
        )}
        {state.kind === "ready" && (
          <form class="sign-in-form" data-form="invite" onSubmit={submit} aria-labelledby="invite-title" noValidate>
            <h1 id="invite-title">{t("invite.title")}</h1>
            <p>
              <Sentence
                text={t(state.invite.hasPassword ? "invite.chooseNew" : "invite.choose", {
                  until: formatDateTime(state.invite.expiresAt),
                })}
                email={state.invite.email}
              />
            </p>
            {/* The e-mail as a username, so that password managers save the pair. */}
            <input type="hidden" name="username" value={state.invite.email} autoComplete="username" />
            <label class="field">
              <span class="field-label">{t("invite.name")}</span>
              <input type="text" name="name" defaultValue={state.invite.name} autoComplete="name" maxLength={200} />
            </label>
            <label class="field">
              <span class="field-label">{t("invite.password", { min: MIN_PASSWORD_CHARS })}</span>
              <input type="password" name="password" autoComplete="new-password" required autoFocus />
            </label>
            <label class="field">
              <span class="field-label">{t("invite.confirm")}</span>
              <input type="password" name="confirm" autoComplete="new-password" required />
            </label>
            {error !== null && (
              <p class="form-error" data-invite-form-error="" role="alert">
                {error}
              </p>
            )}
            <button type="submit" class="button primary" disabled={busy}>
              {busy ? t("invite.saving") : t("invite.submit")}
            </button>
          </form>
        )}
      </main>
    </div>
  );
}

/** A sentence of the catalogue with its `{email}` placeholder (`t` leaves it, unfilled) as the address in bold. */
function Sentence({ text, email }: { text: string; email: string }) {
  const [before, after] = text.split("{email}");
  return (
    <>
      {before}
      <strong data-invite-email="">{email}</strong>
      {after ?? ""}
    </>
  );
}
