// The app: reads the route from the address, the current user from localStorage (or `?user=`),
// and shows the home page or a board.

import { useEffect, useState } from "preact/hooks";
import { onLinkClick, parseRoute, type Route } from "../ui/route";
import { colorFor, resolveCurrentUser, saveRoster, USER_KEY, type KeyValueStore, type RosterEntry } from "../ui/users";
import { BoardPage } from "./BoardPage";
import { HomePage } from "./HomePage";

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

export function App() {
  const [storage] = useState(browserStorage);
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.pathname));
  const [identity, setIdentity] = useState(() => resolveCurrentUser(window.location.search, storage));

  useEffect(() => {
    const onPop = () => setRoute(parseRoute(window.location.pathname));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

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
  const common = { user: identity.user, roster: identity.roster, onUser, onRoster };

  switch (route.page) {
    case "home":
      return <HomePage {...common} />;
    case "board":
      return <BoardPage key={route.boardId} boardId={route.boardId} {...common} />;
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
