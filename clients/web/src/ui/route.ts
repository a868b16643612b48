// Client-side routes. The server answers every GET that is not /api, /ws, /healthz or /readyz
// with index.html, so `/boards/{boardId}` loads the app, which reads the path.

export type Route = { page: "home" } | { page: "board"; boardId: string } | { page: "notFound"; path: string };

/** Board ids the server accepts: 1 to 64 ASCII letters, digits, `-` and `_`. */
export const BOARD_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  if (path === "/") return { page: "home" };
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

/** Goes to `path` without reloading; the app listens to `popstate`. */
export function navigate(path: string): void {
  if (path === window.location.pathname) return;
  window.history.pushState(null, "", path);
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
