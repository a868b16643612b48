// The sign-in page (docs/accounts.md): shown in place of any page when the server keeps accounts
// and this browser has no session, so that after signing in the person is where they were
// going. It says why in a person's words (not signed in, signed out, session expired, account
// disabled) and never shows close codes or the server's protocol text. When the server has an
// identity provider (OpenID Connect), a "Sign in with …" button goes there; its refusals come
// back as `?signInError=<code>`, shown here as a sentence and taken out of the address.

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, fetchAuthMethods, signIn } from "../ui/api";
import {
  providerSignInHref,
  takeSignInError,
  type AuthMethods,
  type Me,
  type Refusal,
  type SignInErrorCode,
} from "../ui/auth";
import { formText } from "../ui/formData";
import { t, useLanguage } from "../ui/i18n";
import { signInErrorText } from "../ui/people";
import { LanguageSwitch } from "./LanguageSwitch";

export function SignInPage({ refusal, onSignedIn }: { refusal: Refusal | null; onSignedIn: (me: Me) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  /** Until when the server refuses attempts (a 429's Retry-After), in ms since the epoch. */
  const [waitUntil, setWaitUntil] = useState<number | null>(null);
  const emailRef = useRef<HTMLInputElement>(null);
  const language = useLanguage();
  const passwordRef = useRef<HTMLInputElement>(null);
  const [methods, setMethods] = useState<AuthMethods | null>(null);
  /** The identity provider's refusal the address named when the page opened. */
  const [providerError] = useState<SignInErrorCode | null>(() => {
    const taken = takeSignInError(window.location.search);
    if (taken.search !== null) {
      const url = `${window.location.pathname}${taken.search}${window.location.hash}`;
      window.history.replaceState(window.history.state, "", url);
    }
    return taken.code;
  });

  useEffect(() => {
    emailRef.current?.focus();
  }, []);
  useEffect(() => {
    const abort = new AbortController();
    fetchAuthMethods(abort.signal)
      .then(setMethods)
      // An older server, or none at the moment: the password form alone, as before.
      .catch(() => undefined);
    return () => abort.abort();
  }, []);
  useEffect(() => {
    document.title = t("signIn.documentTitle");
  }, [language]);
  useEffect(() => {
    if (waitUntil === null) return;
    const timer = window.setTimeout(() => setWaitUntil(null), Math.max(0, waitUntil - Date.now()));
    return () => window.clearTimeout(timer);
  }, [waitUntil]);

  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const email = formText(data, "email").trim();
    const password = formText(data, "password");
    if (email === "" || password === "") {
      setError(t("signIn.missing"));
      return;
    }
    setBusy(true);
    setError(null);
    signIn(email, password)
      .then((me) => onSignedIn(me))
      .catch((failure: unknown) => {
        setBusy(false);
        setError(signInErrorText(failure));
        if (failure instanceof ApiError && failure.status === 429 && failure.retryAfterSecs !== null) {
          setWaitUntil(Date.now() + failure.retryAfterSecs * 1000);
        }
        if (failure instanceof ApiError && failure.status === 401 && passwordRef.current !== null) {
          passwordRef.current.value = "";
          passwordRef.current.focus();
        }
      });
  };

  return (
    <div class="page sign-in-page" data-page="sign-in">
      <header class="topbar">
        <a href="/" class="brand">
          funnel
        </a>
        <span class="spacer" />
        <LanguageSwitch />
      </header>
      <main class="sign-in">
        {refusal !== null && (
          // The code stays in the DOM contract (tests, styles); the person reads the sentence.
          <div class="refusal sign-in-reason" data-refusal={String(refusal.code)} role="status">
            <p class="refusal-message">{refusal.message}</p>
          </div>
        )}
        <form class="sign-in-form" data-form="sign-in" onSubmit={submit} aria-labelledby="sign-in-title" noValidate>
          <h1 id="sign-in-title">{t("signIn.title")}</h1>
          {providerError !== null && (
            <p class="form-error" data-sign-in-provider-error={providerError} role="alert">
              {t(`signIn.error.${providerError}`)}
            </p>
          )}
          {methods?.oidc && (
            <>
              <a
                class="button primary sign-in-provider"
                data-action="sign-in-provider"
                href={providerSignInHref(methods.oidc.start, window.location.pathname, window.location.search)}
              >
                {methods.oidc.name !== null
                  ? t("signIn.withProvider", { name: methods.oidc.name })
                  : t("signIn.withSso")}
              </a>
              <p class="sign-in-or">{t("signIn.or")}</p>
            </>
          )}
          <label class="field">
            <span class="field-label">{t("signIn.email")}</span>
            <input ref={emailRef} type="email" name="email" autoComplete="username" required />
          </label>
          <label class="field">
            <span class="field-label">{t("signIn.password")}</span>
            <input ref={passwordRef} type="password" name="password" autoComplete="current-password" required />
          </label>
          {error !== null && (
            <p class="form-error" data-sign-in-error="" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="button primary" disabled={busy || waitUntil !== null}>
            {busy ? t("signIn.busy") : t("signIn.title")}
          </button>
          <p class="hint">{t("signIn.hint")}</p>
        </form>
      </main>
    </div>
  );
}
