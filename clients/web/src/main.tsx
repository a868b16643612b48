// Entry point: takes the page's token out of the address (src/ui/auth.ts), sets `<html lang>`
// (src/ui/i18n.ts), then mounts the app, which renders again on a switch of language.

import { render } from "preact";
import { App } from "./components/App";
import { applyDocumentLanguage, useLanguage } from "./ui/i18n";
import { setApiToken } from "./ui/api";
import { takeToken, type TokenStore } from "./ui/auth";
import "./styles.css";

/** sessionStorage, or a memory stand-in where the browser refuses it. */
function sessionStore(): TokenStore {
  try {
    const probe = "funnel.probe";
    window.sessionStorage.setItem(probe, "1");
    window.sessionStorage.removeItem(probe);
    return window.sessionStorage;
  } catch {
    const memory = new Map<string, string>();
    return {
      getItem: (k) => memory.get(k) ?? null,
      setItem: (k, v) => void memory.set(k, v),
      removeItem: (k) => void memory.delete(k),
    };
  }
}

const { token, search } = takeToken(window.location.search, sessionStore());
if (search !== null) {
  // The token leaves the address bar (and the history entry), so a copied link does not carry it.
  window.history.replaceState(window.history.state, "", `${window.location.pathname}${search}${window.location.hash}`);
}
setApiToken(token);

/** The app, rendered again (not reloaded) when the page's language switches. */
function Root() {
  useLanguage();
  return <App token={token} />;
}

applyDocumentLanguage();
const root = document.getElementById("app");
if (root !== null) render(<Root />, root);
