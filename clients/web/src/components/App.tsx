// The app: reads the route from the address and who the user is, and shows the home page, a
// board, the People page or an invite. Who the user is comes from the server (`GET /api/v1/me`,
// src/ui/auth.ts): a person who signed in (the session cookie, docs/accounts.md) or a token's
// user, with their role; with accounts and no session, the sign-in page in place of any page
// (so that, signed in, the person is where they were going); in local mode (no secret on the
// server) whoever the header's picker says, from localStorage (or `?user=`), with every right.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  ApiError,
  fetchBoardRole,
  fetchMe,
  listBoards,
  listPeople,
  onSocketRefused,
  onUnauthorized,
  setApiToken,
  signOut,
} from "../ui/api";
import {
  claimsOf,
  CLOSE,
  permissionsOf,
  refusalOf,
  TOKEN_KEY,
  type Me,
  type Permissions,
  type Refusal,
  type Role,
} from "../ui/auth";
import { forgetAllLocalCopies } from "../store/connection";
import { avatarOf, directoryOf, EMPTY_DIRECTORY, rosterOf, type Directory } from "../ui/people";
import { navigate, onLinkClick, parseRoute, type Route } from "../ui/route";
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
import { InvitePage } from "./InvitePage";
import { PeoplePage } from "./PeoplePage";
import { SessionContext, useSession, type SessionActions } from "./session";
import { SignInPage } from "./SignInPage";
import { t } from "../ui/i18n";

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
  /** A person who signed in (session cookie), or a token's user. */
  | { kind: "account"; me: Me }
  /** Accounts are on and this browser has no session (or lost it): the sign-in page. */
  | { kind: "signedOut"; refusal: Refusal }
  /** A signed-in person refused a board (their role was lowered): a page that says so. */
  | { kind: "refused"; me: Me; refusal: Refusal };

/** What the page knows when `/me` cannot answer (offline, server down): the token's claims. */
function fallbackSession(token: string | null): Session {
  if (token === null) return { kind: "local" };
  const claims = claimsOf(token);
  if (claims === null) return { kind: "signedOut", refusal: refusalOf(401, "the token is not valid", true) };
  if (claims.exp !== null && claims.exp * 1000 <= Date.now()) {
    return { kind: "signedOut", refusal: refusalOf(401, "the token has expired", true) };
  }
  return { kind: "account", me: claims };
}

/** Forgets a `?token=` token kept for this tab: after signing in, the session cookie speaks. */
function forgetStoredToken(): void {
  try {
    window.sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // No sessionStorage: nothing was kept.
  }
}

export function App({ token: givenToken }: { token: string | null }) {
  const [storage] = useState(browserStorage);
  const [token, setToken] = useState(givenToken);
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.pathname));
  const [identity, setIdentity] = useState(() => resolveCurrentUser(window.location.search, storage));
  const [session, setSession] = useState<Session>({ kind: "loading" });
  const [directory, setDirectory] = useState<Directory>(EMPTY_DIRECTORY);
  const [directoryAsked, setDirectoryAsked] = useState(0);
  const sessionRef = useRef(session);
  sessionRef.current = session;

  useEffect(() => {
    const onPop = () => setRoute(parseRoute(window.location.pathname));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  useEffect(() => {
    // Any 401 of the API or of a board's socket, now or later, means the session is gone.
    const hadSession = () => token !== null || sessionRef.current.kind === "account";
    const off = onUnauthorized((error) =>
      setSession({ kind: "signedOut", refusal: refusalOf(401, error.message, hadSession()) }),
    );
    const offSocket = onSocketRefused((code, reason) => {
      const current = sessionRef.current;
      if (code === CLOSE.UNAUTHENTICATED) {
        setSession({ kind: "signedOut", refusal: refusalOf(code, reason, hadSession()) });
      } else if (code === CLOSE.FORBIDDEN && current.kind === "account" && current.me.signedInWith === "session") {
        // A token's page keeps its banner (it may be limited to other boards on purpose).
        setSession({ kind: "refused", me: current.me, refusal: refusalOf(code, reason, true) });
      }
    });
    // Offline (the app opened from the service worker's cache): no request that cannot go out.
    if (!navigator.onLine) {
      setSession(fallbackSession(token));
      return () => {
        off();
        offSocket();
      };
    }
    const abort = new AbortController();
    const timer = window.setTimeout(() => abort.abort(), ME_TIMEOUT_MS);
    fetchMe(abort.signal)
      .then((me) => setSession(me.local ? { kind: "local" } : { kind: "account", me }))
      .catch((error: unknown) => {
        if (error instanceof ApiError && error.status === 401) return; // the listener has it
        // No answer (offline, server down, a server without /me): go on with what the token says,
        // or in local mode without one.
        setSession(fallbackSession(token));
      })
      .finally(() => window.clearTimeout(timer));
    return () => {
      off();
      offSocket();
      abort.abort();
      window.clearTimeout(timer);
    };
  }, [token]);

  // The directory, for names, avatars and pickers: read once signed in, again on demand and
  // when the page comes back to the front (someone may have been invited meanwhile).
  const signedIn = session.kind === "account";
  useEffect(() => {
    if (!signedIn) return;
    const abort = new AbortController();
    listPeople(abort.signal)
      .then((people) => setDirectory(directoryOf(people)))
      .catch(() => {
        // Without the directory, names fall back to the people on the board and the ids.
      });
    return () => abort.abort();
  }, [signedIn, directoryAsked]);
  useEffect(() => {
    if (!signedIn) return;
    const onVisible = () => {
      if (document.visibilityState === "visible") setDirectoryAsked((n) => n + 1);
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => document.removeEventListener("visibilitychange", onVisible);
  }, [signedIn]);

  const onSignedIn = (me: Me) => {
    forgetStoredToken();
    setApiToken(null);
    setToken(null);
    setSession({ kind: "account", me });
  };

  const actions = useMemo<SessionActions>(
    () => ({
      accounts: session.kind === "account" || session.kind === "refused" || session.kind === "signedOut",
      me: session.kind === "account" || session.kind === "refused" ? session.me : null,
      directory,
      signOut: async () => {
        await signOut();
        setDirectory(EMPTY_DIRECTORY);
        setSession({ kind: "signedOut", refusal: refusalOf(401, "signed out", true) });
        // Nothing of this person's boards stays for whoever uses the browser next.
        await forgetAllLocalCopies();
      },
      reloadDirectory: () => setDirectoryAsked((n) => n + 1),
    }),
    [session, directory],
  );

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

  // An invite link works whoever is signed in (or not): it signs its person in.
  if (route.page === "invite") {
    return (
      <InvitePage
        onAccepted={(me) => {
          onSignedIn(me);
          navigate("/", { replace: true });
        }}
      />
    );
  }
  if (session.kind === "loading") {
    return (
      <main class="page loading-page" aria-busy="true">
        <p class="muted">{t("app.loading")}</p>
      </main>
    );
  }
  if (session.kind === "signedOut") return <SignInPage refusal={session.refusal} onSignedIn={onSignedIn} />;

  const account = session.kind === "local" ? null : session.me;
  const look = account !== null ? avatarOf(directory, account.user, account.name) : null;
  const user: User =
    account !== null && look !== null ? { id: account.user, name: account.name, color: look.color } : identity.user;
  // With accounts the directory names everyone (and the person signed in, before it is read).
  const roster: readonly RosterEntry[] =
    account === null
      ? identity.roster
      : directory.byId.has(account.user)
        ? rosterOf(directory)
        : [{ id: account.user, name: account.name }, ...rosterOf(directory)];
  const permissions: Permissions = permissionsOf(account?.role ?? "admin");
  const common = { user, roster, onUser, onRoster, account, permissions };

  return (
    <SessionContext.Provider value={actions}>
      {session.kind === "refused" ? (
        <RefusedPage refusal={session.refusal} />
      ) : (
        <Page route={route} common={common} token={account !== null ? token : null} />
      )}
    </SessionContext.Provider>
  );
}

type Common = {
  user: User;
  roster: readonly RosterEntry[];
  onUser: (id: string) => void;
  onRoster: (roster: RosterEntry[]) => void;
  account: Me | null;
  permissions: Permissions;
};

function Page({ route, common, token }: { route: Route; common: Common; token: string | null }) {
  switch (route.page) {
    case "home":
      return <HomePage {...common} />;
    case "board":
      return <BoardRoute key={route.boardId} boardId={route.boardId} token={token} {...common} />;
    case "people":
      return <PeoplePage user={common.user} roster={common.roster} onUser={common.onUser} onRoster={common.onRoster} />;
    case "invite":
    case "notFound":
      return (
        <main class="page not-found">
          <h1>{t("app.nothingHere")}</h1>
          <p>
            {t("app.noPageAt", { path: window.location.pathname })}{" "}
            <a href="/" onClick={onLinkClick}>
              {t("app.seePipelines")}
            </a>
          </p>
        </main>
      );
  }
}

/**
 * A board page. With accounts or a token the page offers what the person's role on this board
 * allows (`GET /api/v1/me?boardId=`: an administrator may have given them a role of their own
 * there, over their default one); an archived board opens read-only (the server makes its
 * socket a viewer's), so the page offers a viewer's actions and says why.
 */
function BoardRoute(props: Parameters<typeof BoardPage>[0]) {
  const [archived, setArchived] = useState(false);
  const [boardRole, setBoardRole] = useState<Role | null>(null);
  // Asked again when the socket comes back: a changed role reconnects it (docs/accounts.md).
  const [asked, setAsked] = useState(0);
  // A token limited to other boards is refused this one (the socket says so): nothing to ask.
  const signedIn = props.account !== null && (props.account.boards?.includes(props.boardId) ?? true);
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
      if (signedIn)
        fetchBoardRole(props.boardId, abort.signal)
          .then((role) => !abort.signal.aborted && setBoardRole(role))
          // A server without the answer, or away: the default role stands (the server judges).
          .catch(() => undefined);
    };
    check();
    // Archived, restored or given another role while open: the server reopens the socket with
    // the new role at once; the page learns it when it is shown again.
    document.addEventListener("visibilitychange", check);
    return () => {
      abort.abort();
      document.removeEventListener("visibilitychange", check);
    };
  }, [props.boardId, signedIn, asked]);
  const account = props.account !== null && boardRole !== null ? { ...props.account, role: boardRole } : props.account;
  const permissions = archived
    ? permissionsOf("viewer")
    : boardRole !== null
      ? permissionsOf(boardRole)
      : props.permissions;
  // One tree either way, so that the page (and its connection) stays when the answer comes.
  return (
    <>
      {archived && (
        <p class="archived-banner" role="status" data-archived-banner="">
          {t("app.archivedBanner")}
        </p>
      )}
      <BoardPage {...props} account={account} permissions={permissions} onReconnected={() => setAsked((n) => n + 1)} />
    </>
  );
}

/**
 * A signed-in person whom a board refused: an administrator lowered their role there (the
 * server closes the socket for the page to open it again with the new role), or the role does
 * not allow what the page tried. What happened and what they can do, in their words.
 */
function RefusedPage({ refusal }: { refusal: Refusal }) {
  const session = useSession();
  const roleChanged = /changed your role/i.test(refusal.detail);
  useEffect(() => {
    document.title = t("app.accessChanged");
  }, []);
  return (
    <div class="page signed-out-page" data-page="refused">
      <header class="topbar">
        <a href="/" class="brand">
          funnel
        </a>
      </header>
      <main class="signed-out">
        <div class="refusal" data-refusal={String(refusal.code)} role="alert">
          <p class="refusal-message">{roleChanged ? t("app.roleChanged") : t("app.roleRefused")}</p>
          <p class="hint">{roleChanged ? t("app.roleChangedHint") : t("app.roleRefusedHint")}</p>
          <p class="refusal-actions">
            <button
              type="button"
              class="button primary"
              data-action="reopen-board"
              onClick={() => window.location.reload()}
            >
              {t("app.openAgain")}
            </button>
            <a href="/" class="button">
              {t("app.seeBoards")}
            </a>
            <button type="button" class="button" data-action="sign-out" onClick={() => void session.signOut()}>
              {t("app.someoneElse")}
            </button>
          </p>
        </div>
      </main>
    </div>
  );
}
