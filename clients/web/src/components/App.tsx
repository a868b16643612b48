// The app: reads the route from the address and who the user is, and shows the home page or a
// board. Who the user is comes from the server (`GET /api/v1/me`, src/ui/auth.ts): with a token
// it is the token's user and role; in local mode (no secret on the server) it is whoever the
// header's picker says, from localStorage (or `?user=`), with every right.

import { useEffect, useState } from "preact/hooks";
import { ApiError, fetchMe, listBoards, onUnauthorized } from "../ui/api";
import { claimsOf, permissionsOf, refusalOf, type Me, type Permissions, type Refusal } from "../ui/auth";
import { onLinkClick, parseRoute, type Route } from "../ui/route";
import {
  colorFor,
  resolveCurrentUser,
  saveRoster,
  USER_KEY,
  type KeyValueStore,
  type RosterEntry,
  type User,
} from "../ui/users";
import { BoardPage } from "./BoardPage";
import { HomePage } from "./HomePage";

/** How long the page waits for `/api/v1/me` before it goes on with what it knows. */
const ME_TIMEOUT_MS = 5_000;

/** localStorage, or a memory stand-in where the browser refuses it (private modes, policies). */
function browserStorage(): KeyValueStore {
  try {
    const probe = "funnel.probe";
    window.localStorage.setItem(probe, "1");
    window.localStorage.removeItem(probe);
    return window.localStorage;
  } catch {
    const memory = new Map<string, string>();
    return { getItem: (k) => memory.get(k) ?? null, setItem: (k, v) => void memory.set(k, v) };
  }
}

/** Who is using the page, once the server said (or could not be asked). */
type Session =
  | { kind: "loading" }
  /** No secret on the server: the picker's user, an admin. */
  | { kind: "local" }
  /** The token's user. */
  | { kind: "token"; me: Me }
  /** No token, or one the server refuses: nothing else is shown. */
  | { kind: "signedOut"; refusal: Refusal };

/** What the page knows when `/me` cannot answer (offline, server down): the token's claims. */
function fallbackSession(token: string | null): Session {
  if (token === null) return { kind: "local" };
  const claims = claimsOf(token);
  if (claims === null) return { kind: "signedOut", refusal: refusalOf(401, "the token is not valid", true) };
  if (claims.exp !== null && claims.exp * 1000 <= Date.now()) {
    return { kind: "signedOut", refusal: refusalOf(401, "the token has expired", true) };
  }
  return { kind: "token", me: claims };
}

export function App({ token }: { token: string | null }) {
  const [storage] = useState(browserStorage);
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.pathname));
  const [identity, setIdentity] = useState(() => resolveCurrentUser(window.location.search, storage));
  const [session, setSession] = useState<Session>({ kind: "loading" });

  useEffect(() => {
    const onPop = () => setRoute(parseRoute(window.location.pathname));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  useEffect(() => {
    // Any 401 of the API, now or later, means the session is gone.
    const off = onUnauthorized((error) =>
      setSession({ kind: "signedOut", refusal: refusalOf(401, error.message, token !== null) }),
    );
    // Offline (the app opened from the service worker's cache): no request that cannot go out.
    if (!navigator.onLine) {
      setSession(fallbackSession(token));
      return off;
    }
    const abort = new AbortController();
    const timer = window.setTimeout(() => abort.abort(), ME_TIMEOUT_MS);
    fetchMe(abort.signal)
      .then((me) => setSession(me.local || token === null ? { kind: "local" } : { kind: "token", me }))
      .catch((error: unknown) => {
        if (error instanceof ApiError && error.status === 401) return; // the listener has it
        // No answer (offline, server down, a server without /me): go on with what the token says,
        // or in local mode without one.
        setSession(fallbackSession(token));
      })
      .finally(() => window.clearTimeout(timer));
    return () => {
      off();
      abort.abort();
      window.clearTimeout(timer);
    };
  }, [token]);

  const onUser = (id: string) => {
    storage.setItem(USER_KEY, id);
    const entry = identity.roster.find((r) => r.id === id);
    setIdentity({ roster: identity.roster, user: { id, name: entry?.name ?? id, color: colorFor(id) } });
  };
  const onRoster = (roster: RosterEntry[]) => {
    saveRoster(storage, roster);
    const me = roster.find((r) => r.id === identity.user.id);
    setIdentity({ roster, user: { ...identity.user, name: me?.name ?? identity.user.name } });
  };

  if (session.kind === "loading") {
    return (
      <main class="page loading-page" aria-busy="true">
        <p class="muted">Loading…</p>
      </main>
    );
  }
  if (session.kind === "signedOut") return <SignedOutPage refusal={session.refusal} />;

  const account = session.kind === "token" ? session.me : null;
  const user: User =
    account !== null ? { id: account.user, name: account.name, color: colorFor(account.user) } : identity.user;
  const permissions: Permissions = permissionsOf(account?.role ?? "admin");
  const common = { user, roster: identity.roster, onUser, onRoster, account, permissions };

  switch (route.page) {
    case "home":
      return <HomePage {...common} />;
    case "board":
      return (
        <BoardRoute key={route.boardId} boardId={route.boardId} token={account !== null ? token : null} {...common} />
      );
    case "notFound":
      return (
        <main class="page not-found">
          <h1>Nothing here</h1>
          <p>
            No page at <code>{route.path}</code>.{" "}
            <a href="/" onClick={onLinkClick}>
              See the pipelines
            </a>
            .
          </p>
        </main>
      );
  }
}

/**
 * A board page; an archived board opens read-only (the server makes its socket a viewer's), so
 * the page offers a viewer's actions and says why.
 */
function BoardRoute(props: Parameters<typeof BoardPage>[0]) {
  const [archived, setArchived] = useState(false);
  useEffect(() => {
    const abort = new AbortController();
    // The archived list, not the board itself: a board opened to be created is no 404 in the
    // console, and the list of archived boards is short.
    const check = () => {
      if (document.visibilityState === "hidden" || !navigator.onLine) return;
      listBoards(abort.signal, true)
        .then((list) => !abort.signal.aborted && setArchived(list.some((b) => b.id === props.boardId)))
        // No API (a bare relay) or the server is away: the socket says what there is to say.
        .catch(() => undefined);
    };
    check();
    // Archived or restored while open: the server reopens the socket with the new role at
    // once; the page learns it when it is shown again.
    document.addEventListener("visibilitychange", check);
    return () => {
      abort.abort();
      document.removeEventListener("visibilitychange", check);
    };
  }, [props.boardId]);
  // One tree either way, so that the page (and its connection) stays when the answer comes.
  return (
    <>
      {archived && (
        <p class="archived-banner" role="status" data-archived-banner="">
          This pipeline is archived: it is read-only until an administrator restores it from the home page.
        </p>
      )}
      <BoardPage {...props} permissions={archived ? permissionsOf("viewer") : props.permissions} />
    </>
  );
}

/** No token, or one the server refuses: the reason and what to do, and nothing of the data. */
function SignedOutPage({ refusal }: { refusal: Refusal }) {
  useEffect(() => {
    document.title = "Sign in · funnel";
  }, []);
  return (
    <div class="page signed-out-page">
      <header class="topbar">
        <a href="/" class="brand">
          funnel
        </a>
      </header>
      <main class="signed-out">
        <div class="refusal" data-refusal={String(refusal.code)} role="alert">
          <p class="refusal-message">{refusal.message}</p>
          {refusal.detail !== "" && <p class="refusal-detail">The server said: {refusal.detail}</p>}
          <p class="hint">
            Open funnel again with the sign-in link you were given, or ask an administrator for a new one.
          </p>
        </div>
      </main>
    </div>
  );
}
