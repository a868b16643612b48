// Client-side routes. The server answers every GET that is not /api, /ws, /healthz or /readyz
// with index.html, so `/boards/{boardId}` loads the app, which reads the path. `/people` is the
// admins' directory, `/invite#secret` the page of an invite link (the secret stays in the
// fragment, which browsers never send to a server).

export type Route =
  | { page: "home" }
  | { page: "board"; boardId: string }
  | { page: "people" }
  | { page: "invite" }
  | { page: "notFound"; path: string };

/** Board ids the server accepts: 1 to 64 ASCII letters, digits, `-` and `_`. */
export const BOARD_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  if (path === "/") return { page: "home" };
  if (path === "/people") return { page: "people" };
  if (path === "/invite") return { page: "invite" };
  const match = /^\/boards\/([^/]+)$/.exec(path);
  if (match !== null) {
    let id = match[1]!;
    try {
      id = decodeURIComponent(id);
    } catch {
      return { page: "notFound", path: pathname };
    }
    if (BOARD_ID.test(id)) return { page: "board", boardId: id };
  }
  return { page: "notFound", path: pathname };
}

export function boardPath(boardId: string): string {
  return `/boards/${encodeURIComponent(boardId)}`;
}

/** The secret of an invite link: what follows `#` in `/invite#secret`, or null. */
export function inviteSecret(hash: string): string | null {
  const secret = hash.replace(/^#/, "").trim();
  return /^[A-Za-z0-9_-]{16,200}$/.test(secret) ? secret : null;
}

/**
 * Goes to `path` without reloading; the app listens to `popstate`. `replace`: the current history
 * entry becomes `path` (a used invite link should not come back with Back).
 */
export function navigate(path: string, { replace = false }: { replace?: boolean } = {}): void {
  if (path === window.location.pathname && !replace) return;
  if (replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** Turns a plain left click on an internal link into a client-side navigation. */
export function onLinkClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
    return;
  const anchor = (event.currentTarget as HTMLAnchorElement | null) ?? null;
  if (anchor === null || anchor.origin !== window.location.origin || anchor.target === "_blank") return;
  event.preventDefault();
  navigate(anchor.pathname);
}
