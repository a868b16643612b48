// The JSON API (server/src/api.rs, /api/v1/openapi.json): boards under /api/v1/boards, the caller under
// /api/v1/me, errors as `application/problem+json` (RFC 9457: `detail` says what went wrong,
// `errors` lists bad fields) with a 4xx status. Same origin as the page, so no URL
// configuration. With a token (src/ui/auth.ts) every call sends `Authorization: Bearer`, and a
// 401 is also told to whoever listens (the app shows "sign in again" instead of the page).

import type { Language } from "./i18n";
import { isRole, parseAuthMethods, parseMe, type AuthMethods, type Me, type Role } from "./auth";

let token: string | null = null;
const unauthorized = new Set<(error: ApiError) => void>();

/** The token every call sends from now on (null: none, local mode). */
export function setApiToken(value: string | null): void {
  token = value;
}

/** Calls `listener` with every 401 the API answers; returns the unsubscribe. */
export function onUnauthorized(listener: (error: ApiError) => void): () => void {
  unauthorized.add(listener);
  return () => unauthorized.delete(listener);
}

/** Tells every listener of [`onUnauthorized`] that the session is gone (a socket closed 4401). */
export function reportUnauthorized(message: string): void {
  const error = new ApiError(401, message);
  for (const listener of unauthorized) listener(error);
}

const socketRefusals = new Set<(code: number, reason: string) => void>();

/** Calls `listener` with the close code and reason of every board socket the server refuses. */
export function onSocketRefused(listener: (code: number, reason: string) => void): () => void {
  socketRefusals.add(listener);
  return () => socketRefusals.delete(listener);
}

/** Tells every listener of [`onSocketRefused`] that a board's socket was refused for good. */
export function reportSocketRefused(code: number, reason: string): void {
  for (const listener of socketRefusals) listener(code, reason);
}

/** The headers of an API call: `accept`, the bearer token if any, and `extra`. */
export function apiHeaders(extra: Record<string, string> = {}, bearer: string | null = token): Record<string, string> {
  return { accept: "application/json", ...extra, ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}) };
}

export interface BoardSummary {
  id: string;
  name: string;
  entity: string;
  createdAt: number;
  /** When an admin archived it (ms); null: it is not archived. */
  archivedAt: number | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** For a 429: how many seconds the server asks to wait (its `Retry-After`), else null. */
    readonly retryAfterSecs: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** A `Retry-After` header in seconds (a number of seconds or an HTTP date), or null. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | null {
  if (header === null || header.trim() === "") return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

async function errorOf(response: Response, tellUnauthorized = true): Promise<ApiError> {
  let message = `the server answered ${response.status} ${response.statusText}`.trim();
  try {
    const body: unknown = await response.json();
    if (typeof body === "object" && body !== null) {
      const { detail, title } = body as { detail?: unknown; title?: unknown };
      if (typeof detail === "string" && detail !== "") message = detail;
      else if (typeof title === "string" && title !== "") message = title;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  const error = new ApiError(response.status, message, parseRetryAfter(response.headers.get("retry-after")));
  if (response.status === 401 && tellUnauthorized) for (const listener of unauthorized) listener(error);
  return error;
}

function parseBoard(raw: unknown): BoardSummary | null {
  if (typeof raw !== "object" || raw === null) return null;
  const { id, name, entity, createdAt, archivedAt } = raw as Record<string, unknown>;
  if (typeof id !== "string" || id === "") return null;
  return {
    id,
    name: typeof name === "string" ? name : id,
    entity: typeof entity === "string" ? entity : "deal",
    createdAt: typeof createdAt === "number" ? createdAt : 0,
    archivedAt: typeof archivedAt === "number" ? archivedAt : null,
  };
}

/** `GET /api/v1/auth/methods`: how this server signs people in (asked before anyone is signed in). */
export async function fetchAuthMethods(signal?: AbortSignal): Promise<AuthMethods> {
  const response = await fetch("/api/v1/auth/methods", {
    headers: { accept: "application/json" },
    ...(signal ? { signal } : {}),
  });
  if (!response.ok) throw await errorOf(response, false);
  return parseAuthMethods(await response.json());
}

/** `GET /api/v1/me`: who the server says the caller is. Throws an `ApiError` (401 without a valid token). */
export async function fetchMe(signal?: AbortSignal): Promise<Me> {
  const response = await fetch("/api/v1/me", { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (!response.ok) throw await errorOf(response);
  const me = parseMe(await response.json());
  if (me === null) throw new ApiError(response.status, "the server answered /api/v1/me without a user and a role");
  return me;
}

/**
 * `GET /api/v1/me?boardId=`: the caller's role on that board (their own role there, set by an
 * administrator, over their default role). Throws an `ApiError` (400 for a bad id, 403 for a
 * board the token does not open).
 */
export async function fetchBoardRole(boardId: string, signal?: AbortSignal): Promise<Role> {
  const url = `/api/v1/me?boardId=${encodeURIComponent(boardId)}`;
  const response = await fetch(url, { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { boardRole?: { role?: unknown } };
  const role = body.boardRole?.role;
  if (!isRole(role)) throw new ApiError(response.status, "the server answered /api/v1/me without the board's role");
  return role;
}

/** `GET /api/v1/boards`. */
export async function listBoards(signal?: AbortSignal, archived = false): Promise<BoardSummary[]> {
  const url = archived ? "/api/v1/boards?archived=true" : "/api/v1/boards";
  const response = await fetch(url, { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { boards?: unknown };
  return (Array.isArray(body.boards) ? body.boards : []).map(parseBoard).filter((b): b is BoardSummary => b !== null);
}

/** `PATCH /api/v1/boards/{id} {"archived"}` (admins): archives the board or restores it. */
export async function setBoardArchived(id: string, archived: boolean): Promise<void> {
  const response = await fetch(`/api/v1/boards/${encodeURIComponent(id)}`, {
    method: "PATCH",
    headers: apiHeaders({ "content-type": "application/json" }),
    body: JSON.stringify({ archived }),
  });
  if (!response.ok) throw await errorOf(response);
}

/** `POST /api/v1/boards`. */
export async function createBoard(entity: string, name: string | null, language: Language): Promise<BoardSummary> {
  const response = await fetch("/api/v1/boards", {
    method: "POST",
    headers: apiHeaders({ "content-type": "application/json" }),
    // Without a name, the server names the board in `language`, as it names the default stages.
    body: JSON.stringify(name === null ? { entity, language } : { entity, name, language }),
  });
  if (!response.ok) throw await errorOf(response);
  const board = parseBoard(await response.json());
  if (board === null) throw new ApiError(response.status, "the server answered without a board id");
  return board;
}

/** The message an inbound e-mail entry came from (POST .../inbound-email or the SMTP listener). */
export interface TimelineMail {
  messageId: string;
  subject: string;
  /** The sender's address. */
  from: string;
  /** The sender's display name; empty when none. */
  fromName: string;
}

export interface TimelineEvent {
  id: string;
  kind: string;
  /** `incoming`, `outgoing`, `missed` or "" (comments). */
  direction: string;
  at: number;
  user: string;
  text: string;
  /** For an e-mail that came in: its subject and sender; null otherwise. */
  mail: TimelineMail | null;
}

/** One entry of a timeline page as the server sends it (`index`: its place, a fallback id). */
export function parseTimelineEvent(raw: unknown, index: number): TimelineEvent | null {
  if (typeof raw !== "object" || raw === null) return null;
  const e = raw as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : "");
  const id = typeof e.id === "number" ? String(e.id) : str(e.id);
  let mail: TimelineMail | null = null;
  if (typeof e.mail === "object" && e.mail !== null) {
    const m = e.mail as Record<string, unknown>;
    mail = { messageId: str(m.messageId), subject: str(m.subject), from: str(m.from), fromName: str(m.fromName) };
  }
  return {
    id: id || String(index),
    kind: str(e.kind) || str(e.type) || "event",
    direction: str(e.direction),
    at: typeof e.at === "number" ? e.at : typeof e.createdAt === "number" ? e.createdAt : 0,
    user: str(e.user) || str(e.author),
    text: str(e.text) || str(e.body) || str(e.subject),
    mail,
  };
}

/** How a sender shows: `Name <address>`, or the address alone. */
export function senderText(mail: TimelineMail): string {
  if (mail.fromName === "") return mail.from;
  return mail.from === "" ? mail.fromName : `${mail.fromName} <${mail.from}>`;
}

/** Where a board's mail goes (`GET /api/v1/boards/{boardId}/inbound-email`, admins only). */
export interface InboundAddress {
  /** `{boardId}@domain`, or with tokens `{boardId}+{secret}@domain`. */
  address: string;
  /** Whether the server listens for SMTP; if not, mail is posted to the API. */
  smtp: boolean;
  secretRequired: boolean;
  maxBytes: number;
}

export function parseInboundAddress(raw: unknown): InboundAddress | null {
  if (typeof raw !== "object" || raw === null) return null;
  const { address, smtp, secretRequired, maxBytes } = raw as Record<string, unknown>;
  if (typeof address !== "string" || !address.includes("@")) return null;
  return {
    address,
    smtp: smtp === true,
    secretRequired: secretRequired === true,
    maxBytes: typeof maxBytes === "number" ? maxBytes : 0,
  };
}

/** The board's inbound e-mail address, or null when the server has none for this caller. */
export async function fetchInboundAddress(boardId: string, signal?: AbortSignal): Promise<InboundAddress | null> {
  const url = `/api/v1/boards/${encodeURIComponent(boardId)}/inbound-email`;
  const response = await fetch(url, { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (response.status === 404 || response.status === 403) return null;
  if (!response.ok) throw await errorOf(response);
  return parseInboundAddress(await response.json());
}

const TIMELINE_PATH = /^\/api\/v1\/boards\/\{[^}]+\}\/cards\/\{[^}]+\}\/timeline$/;
let timelineAvailable: Promise<boolean> | null = null;

/**
 * Whether the server has the timeline endpoint, from its OpenAPI document (asked once per page).
 * Asking the endpoint itself would make the browser log a failed request on every card while the
 * server has none; the OpenAPI document is part of the API contract.
 */
function hasTimeline(): Promise<boolean> {
  timelineAvailable ??= fetch("/api/v1/openapi.json", { headers: apiHeaders() })
    .then(async (response) => {
      if (!response.ok) return false;
      const doc = (await response.json()) as { paths?: Record<string, unknown> };
      return Object.keys(doc.paths ?? {}).some((path) => TIMELINE_PATH.test(path));
    })
    .catch(() => false);
  return timelineAvailable;
}

/**
 * `GET /api/v1/boards/{boardId}/cards/{cardId}/timeline`: the card's timeline, newest first, or
 * null when the server has none (no endpoint yet, or a 404).
 */
export async function fetchTimeline(
  boardId: string,
  cardId: string,
  signal?: AbortSignal,
): Promise<TimelineEvent[] | null> {
  if (!(await hasTimeline())) return null;
  const url = `/api/v1/boards/${encodeURIComponent(boardId)}/cards/${encodeURIComponent(cardId)}/timeline`;
  const response = await fetch(url, { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (response.status === 404) return null;
  if (!response.ok) throw await errorOf(response);
  const body: unknown = await response.json();
  const list = Array.isArray(body) ? body : ((body as { events?: unknown })?.events ?? []);
  if (!Array.isArray(list)) return [];
  return list.map(parseTimelineEvent).filter((e): e is TimelineEvent => e !== null);
}

/** The longest comment the server takes, in UTF-8 bytes (`MAX_EVENT_TEXT_BYTES`). */
export const MAX_COMMENT_BYTES = 4 * 1024;

/**
 * `POST /api/v1/boards/{boardId}/cards/{cardId}/timeline {"kind": "comment", "text"}`: a
 * comment by the caller, now; the server moves the card's avatar to its author. `localUser`
 * names the author in local mode (the `X-Funnel-User` header; a server with tokens ignores it
 * and takes the token's user). Throws an `ApiError` when refused.
 */
export async function postComment(
  boardId: string,
  cardId: string,
  text: string,
  localUser: string | null,
): Promise<TimelineEvent> {
  const url = `/api/v1/boards/${encodeURIComponent(boardId)}/cards/${encodeURIComponent(cardId)}/timeline`;
  const response = await fetch(url, {
    method: "POST",
    headers: apiHeaders({
      "content-type": "application/json",
      ...(localUser !== null ? { "x-funnel-user": localUser } : {}),
    }),
    body: JSON.stringify({ kind: "comment", text }),
  });
  if (!response.ok) throw await errorOf(response);
  const event = parseTimelineEvent(await response.json(), 0);
  if (event === null) throw new ApiError(response.status, "the server answered without the comment");
  return event;
}

/** One change of a card's history: the change feed's event (docs/events.md) as the server sent it. */
export interface HistoryEvent {
  id: string;
  type: string;
  timestamp: number;
  data: Record<string, unknown>;
}

/** A page of a card's history, newest first; `next` is the cursor of the older page (null: none). */
export interface HistoryPage {
  events: HistoryEvent[];
  next: string | null;
}

const HISTORY_PATH = /^\/api\/v1\/boards\/\{[^}]+\}\/cards\/\{[^}]+\}\/history$/;
let historyAvailable: Promise<boolean> | null = null;

/** Whether the server has the history endpoint, from its OpenAPI document (asked once per page). */
function hasHistory(): Promise<boolean> {
  historyAvailable ??= fetch("/api/v1/openapi.json", { headers: apiHeaders() })
    .then(async (response) => {
      if (!response.ok) return false;
      const doc = (await response.json()) as { paths?: Record<string, unknown> };
      return Object.keys(doc.paths ?? {}).some((path) => HISTORY_PATH.test(path));
    })
    .catch(() => false);
  return historyAvailable;
}

function parseHistoryEvent(raw: unknown): HistoryEvent | null {
  if (typeof raw !== "object" || raw === null) return null;
  const { id, type, timestamp, data } = raw as Record<string, unknown>;
  if (typeof id !== "string" || typeof type !== "string") return null;
  return {
    id,
    type,
    timestamp: typeof timestamp === "number" ? timestamp : 0,
    data: typeof data === "object" && data !== null ? (data as Record<string, unknown>) : {},
  };
}

/**
 * `GET /api/v1/boards/{boardId}/cards/{cardId}/history`: a page of the card's history, newest
 * first, older than `before`; null when the server has no such endpoint or card (404).
 */
export async function fetchCardHistory(
  boardId: string,
  cardId: string,
  before: string | null,
  signal?: AbortSignal,
): Promise<HistoryPage | null> {
  if (!(await hasHistory())) return null;
  const query = before === null ? "" : `?before=${encodeURIComponent(before)}`;
  const url = `/api/v1/boards/${encodeURIComponent(boardId)}/cards/${encodeURIComponent(cardId)}/history${query}`;
  const response = await fetch(url, { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (response.status === 404) return null;
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { events?: unknown; next?: unknown };
  const events = (Array.isArray(body.events) ? body.events : [])
    .map(parseHistoryEvent)
    .filter((e): e is HistoryEvent => e !== null);
  return { events, next: typeof body.next === "string" ? body.next : null };
}

// --- Accounts (docs/accounts.md): sign-in, sign-out, invites and the people directory. The
// session is an HttpOnly cookie the browser sends by itself (same origin); the page never sees it.

/** `POST /api/v1/session`: signs in; the answer is who the server now says the caller is. */
export async function signIn(email: string, password: string): Promise<Me> {
  const response = await fetch("/api/v1/session", {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  // A wrong password is the form's to show, not a "session ended" for the whole app.
  if (!response.ok) throw await errorOf(response, false);
  const me = parseMe(await response.json());
  if (me === null) throw new ApiError(response.status, "the server signed you in without saying who you are");
  return me;
}

/** `DELETE /api/v1/session`: ends this browser's session (its sockets close at once). */
export async function signOut(): Promise<void> {
  const response = await fetch("/api/v1/session", { method: "DELETE", headers: { accept: "application/json" } });
  if (!response.ok && response.status !== 401) throw await errorOf(response, false);
}

/** What an invite link is for (`GET /api/v1/invites/{secret}`). */
export interface InviteInfo {
  email: string;
  name: string;
  hasPassword: boolean;
  expiresAt: number;
}

export async function fetchInvite(secret: string, signal?: AbortSignal): Promise<InviteInfo> {
  const response = await fetch(`/api/v1/invites/${encodeURIComponent(secret)}`, {
    headers: { accept: "application/json" },
    ...(signal ? { signal } : {}),
  });
  if (!response.ok) throw await errorOf(response, false);
  const raw = (await response.json()) as Record<string, unknown>;
  return {
    email: typeof raw.email === "string" ? raw.email : "",
    name: typeof raw.name === "string" ? raw.name : "",
    hasPassword: raw.hasPassword === true,
    expiresAt: typeof raw.expiresAt === "number" ? raw.expiresAt : 0,
  };
}

/** `POST /api/v1/invites/{secret}/accept`: sets the password and signs in. */
export async function acceptInvite(secret: string, password: string, name: string): Promise<Me> {
  const response = await fetch(`/api/v1/invites/${encodeURIComponent(secret)}/accept`, {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json" },
    body: JSON.stringify(name.trim() === "" ? { password } : { password, name: name.trim() }),
  });
  if (!response.ok) throw await errorOf(response, false);
  const me = parseMe(await response.json());
  if (me === null) throw new ApiError(response.status, "the server signed you in without saying who you are");
  return me;
}

/** A person of the directory; `email`, `role`, `boardRoles`, `disabled`, `active` for admins. */
export interface Person {
  id: string;
  name: string;
  initials: string;
  color: string;
  email: string | null;
  role: Role | null;
  boardRoles: Record<string, Role>;
  disabled: boolean;
  /** They have set a password. */
  active: boolean;
}

export function parsePerson(raw: unknown): Person | null {
  if (typeof raw !== "object" || raw === null) return null;
  const p = raw as Record<string, unknown>;
  if (typeof p.id !== "string" || p.id === "") return null;
  const boardRoles: Record<string, Role> = {};
  if (typeof p.boardRoles === "object" && p.boardRoles !== null) {
    for (const [board, role] of Object.entries(p.boardRoles as Record<string, unknown>)) {
      if (isRole(role)) boardRoles[board] = role;
    }
  }
  const name = typeof p.name === "string" && p.name !== "" ? p.name : p.id;
  return {
    id: p.id,
    name,
    initials: typeof p.initials === "string" ? p.initials : "",
    color: typeof p.color === "string" && /^#[0-9a-f]{6}$/i.test(p.color) ? p.color : "#777777",
    email: typeof p.email === "string" ? p.email : null,
    role: isRole(p.role) ? p.role : null,
    boardRoles,
    disabled: p.disabled === true,
    active: p.active !== false,
  };
}

/** `GET /api/v1/people`: the directory. */
export async function listPeople(signal?: AbortSignal): Promise<Person[]> {
  const response = await fetch("/api/v1/people", { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { people?: unknown };
  return (Array.isArray(body.people) ? body.people : []).map(parsePerson).filter((p): p is Person => p !== null);
}

/** `POST /api/v1/invites` (admins): the person and the one-time link to give them. */
export async function invitePerson(
  email: string,
  name: string,
  role: Role,
): Promise<{ person: Person; link: string; expiresAt: number }> {
  const response = await fetch("/api/v1/invites", {
    method: "POST",
    headers: apiHeaders({ "content-type": "application/json" }),
    body: JSON.stringify(name.trim() === "" ? { email, role } : { email, name: name.trim(), role }),
  });
  if (!response.ok) throw await errorOf(response);
  const raw = (await response.json()) as Record<string, unknown>;
  const person = parsePerson(raw.person);
  if (person === null || typeof raw.link !== "string") {
    throw new ApiError(response.status, "the server answered the invite without a link");
  }
  return { person, link: raw.link, expiresAt: typeof raw.expiresAt === "number" ? raw.expiresAt : 0 };
}

/** A change to a person (admins); absent fields stay. `boardRoles`: null removes a board's role. */
export interface PersonPatch {
  name?: string;
  role?: Role;
  boardRoles?: Record<string, Role | null>;
  disabled?: boolean;
}

/** `PATCH /api/v1/people/{id}`. */
export async function patchPerson(id: string, patch: PersonPatch): Promise<Person> {
  const response = await fetch(`/api/v1/people/${encodeURIComponent(id)}`, {
    method: "PATCH",
    headers: apiHeaders({ "content-type": "application/json" }),
    body: JSON.stringify(patch),
  });
  if (!response.ok) throw await errorOf(response);
  const person = parsePerson(await response.json());
  if (person === null) throw new ApiError(response.status, "the server answered without the person");
  return person;
}
