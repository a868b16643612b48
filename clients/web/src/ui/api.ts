// The JSON API (server/src/api.rs, /api/v1/openapi.json): boards under /api/v1/boards, the caller under
// /api/v1/me, errors as `application/problem+json` (RFC 9457: `detail` says what went wrong,
// `errors` lists bad fields) with a 4xx status. Same origin as the page, so no URL
// configuration. With a token (src/ui/auth.ts) every call sends `Authorization: Bearer`, and a
// 401 is also told to whoever listens (the app shows "sign in again" instead of the page).

import { parseMe, type Me } from "./auth";

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

/** The headers of an API call: `accept`, the bearer token if any, and `extra`. */
export function apiHeaders(extra: Record<string, string> = {}, bearer: string | null = token): Record<string, string> {
  return { accept: "application/json", ...extra, ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}) };
}

export interface BoardSummary {
  id: string;
  name: string;
  entity: string;
  createdAt: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

async function errorOf(response: Response): Promise<ApiError> {
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
  const error = new ApiError(response.status, message);
  if (response.status === 401) for (const listener of unauthorized) listener(error);
  return error;
}

function parseBoard(raw: unknown): BoardSummary | null {
  if (typeof raw !== "object" || raw === null) return null;
  const { id, name, entity, createdAt } = raw as Record<string, unknown>;
  if (typeof id !== "string" || id === "") return null;
  return {
    id,
    name: typeof name === "string" ? name : id,
    entity: typeof entity === "string" ? entity : "deal",
    createdAt: typeof createdAt === "number" ? createdAt : 0,
  };
}

/** `GET /api/v1/me`: who the server says the caller is. Throws an `ApiError` (401 without a valid token). */
export async function fetchMe(signal?: AbortSignal): Promise<Me> {
  const response = await fetch("/api/v1/me", { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (!response.ok) throw await errorOf(response);
  const me = parseMe(await response.json());
  if (me === null) throw new ApiError(response.status, "the server answered /api/v1/me without a user and a role");
  return me;
}

/** `GET /api/v1/boards`. */
export async function listBoards(signal?: AbortSignal): Promise<BoardSummary[]> {
  const response = await fetch("/api/v1/boards", { headers: apiHeaders(), ...(signal ? { signal } : {}) });
  if (!response.ok) throw await errorOf(response);
  const body = (await response.json()) as { boards?: unknown };
  return (Array.isArray(body.boards) ? body.boards : []).map(parseBoard).filter((b): b is BoardSummary => b !== null);
}

/** `POST /api/v1/boards`. */
export async function createBoard(entity: string, name: string): Promise<BoardSummary> {
  const response = await fetch("/api/v1/boards", {
    method: "POST",
    headers: apiHeaders({ "content-type": "application/json" }),
    body: JSON.stringify({ entity, name }),
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
