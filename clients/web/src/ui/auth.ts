// Who the server says this page is, and what that person may do. With `funnel serve
// --auth-secret` every call carries a token (docs/security.md, "Tokens"): the page gets it once as
// `?token=` in its address, keeps it in sessionStorage (reloads and in-app navigation keep it,
// closing the tab forgets it) and takes it out of the address bar so a copied link does not carry
// it. `GET /api/v1/me` then names the user and their role; without a secret the server is in
// local mode and everyone is the local admin (the header's user picker stays).
//
// The server decides; this module only keeps the UI from offering what the server would refuse
// (a refused write closes the socket for good), and turns the server's refusals into sentences.

import type { KeyValueStore } from "./users";
import { t } from "./i18n";

export type Role = "viewer" | "member" | "admin";

export const ROLES: readonly Role[] = ["viewer", "member", "admin"];

/** sessionStorage key of the token. */
export const TOKEN_KEY = "funnel.token";

/** The query parameter that hands a page its token. */
export const TOKEN_PARAM = "token";

/** `GET /api/v1/me`. */
export interface Me {
  user: string;
  name: string;
  role: Role;
  /** The only boards the token opens; null: every board. */
  boards: readonly string[] | null;
  /** Local mode: no secret, everyone is the local admin. */
  local: boolean;
  /** A signed-in person's e-mail; null for a token or the local admin. */
  email: string | null;
  /** `session`: a person who signed in (and may sign out); `token`; `local`. */
  signedInWith: "session" | "token" | "local";
}

export interface TokenStore extends KeyValueStore {
  removeItem(key: string): void;
}

/**
 * The page's token: `?token=` in `search` wins (and is stored), else the stored one. `search`
 * is what the address should become (`?token=` taken out), or null when it needs no change.
 */
export function takeToken(search: string, storage: TokenStore): { token: string | null; search: string | null } {
  const params = new URLSearchParams(search);
  if (!params.has(TOKEN_PARAM)) {
    const stored = storage.getItem(TOKEN_KEY);
    return { token: stored !== null && stored.trim() !== "" ? stored : null, search: null };
  }
  const given = (params.get(TOKEN_PARAM) ?? "").trim();
  params.delete(TOKEN_PARAM);
  const rest = params.toString();
  if (given === "") {
    // `?token=` with nothing: forget the stored one (a way to sign out of this tab).
    storage.removeItem(TOKEN_KEY);
    return { token: null, search: rest === "" ? "" : `?${rest}` };
  }
  storage.setItem(TOKEN_KEY, given);
  return { token: given, search: rest === "" ? "" : `?${rest}` };
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** The server's `/me` answer, or null when it is not one. */
export function parseMe(raw: unknown): Me | null {
  if (typeof raw !== "object" || raw === null) return null;
  const { user, name, role, boards, local, email, signedInWith } = raw as Record<string, unknown>;
  if (typeof user !== "string" || user === "" || !isRole(role)) return null;
  return {
    user,
    name: typeof name === "string" && name !== "" ? name : user,
    role,
    boards: Array.isArray(boards) ? boards.filter((b): b is string => typeof b === "string") : null,
    local: local === true,
    email: typeof email === "string" ? email : null,
    signedInWith:
      signedInWith === "session" || signedInWith === "local" ? signedInWith : local === true ? "local" : "token",
  };
}

/**
 * What a token says about its holder, read without checking its signature (the server checks
 * it): what the page uses when `/me` cannot be asked (offline). Null for anything that is not a
 * JWT with funnel's claims.
 */
export function claimsOf(token: string): (Me & { exp: number | null }) | null {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) return null;
  let payload: unknown;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    payload = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  if (typeof payload !== "object" || payload === null) return null;
  const claims = payload as Record<string, unknown>;
  const me = parseMe({ user: claims.sub, name: claims.name, role: claims.role, boards: claims.boards, local: false });
  if (me === null) return null;
  return { ...me, exp: typeof claims.exp === "number" ? claims.exp : null };
}

/** What the UI offers a role. Everything false is hidden, not just disabled. */
export interface Permissions {
  readonly role: Role;
  /** Drag and drop and keyboard moves of cards, the card panel's stage select. */
  readonly moveCards: boolean;
  /** Quick-create. */
  readonly createCards: boolean;
  /** The card panel's fields. */
  readonly editCards: boolean;
  /** Add, complete and reopen activities. */
  readonly editActivities: boolean;
  /** The stage editor: rename, recolour, add, delete, reorder stages. */
  readonly editStages: boolean;
  /** The board's settings: quick-create form, counter threshold, custom fields. */
  readonly editBoardSettings: boolean;
  /** The person's own display form (`views/<user id>`). */
  readonly editOwnDisplay: boolean;
  /** The settings panel at all. */
  readonly openSettings: boolean;
  /** The home page's new-board form. */
  readonly createBoards: boolean;
}

/**
 * The role → allowed actions mapping (docs/security.md, "Who may write what"; the server's policy enforces it).
 * One frozen object per role, so it can sit in effect dependencies and memo props.
 */
export function permissionsOf(role: Role): Permissions {
  return PERMISSIONS[role];
}

const PERMISSIONS: Record<Role, Permissions> = {
  viewer: Object.freeze(grants("viewer")),
  member: Object.freeze(grants("member")),
  admin: Object.freeze(grants("admin")),
};

function grants(role: Role): Permissions {
  const member = role === "member" || role === "admin";
  const admin = role === "admin";
  return {
    role,
    moveCards: member,
    createCards: member,
    editCards: member,
    editActivities: member,
    editStages: admin,
    editBoardSettings: admin,
    editOwnDisplay: member,
    openSettings: member,
    createBoards: admin,
  };
}

/** Close codes the server refuses with (README.md, "Close codes"). */
export const CLOSE = {
  UNAUTHENTICATED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  TOO_LARGE: 4413,
  FRAME_TOO_LARGE: 4414,
  TOO_MANY: 4429,
} as const;

/** A refusal as shown: a sentence, and the server's own words when they add something. */
export interface Refusal {
  code: number;
  message: string;
  detail: string;
}

/**
 * The message for a refusal: a WebSocket close code 4400-4499 or an API status (401, 403, 404),
 * with the server's reason. `hadToken` tells "not signed in" from "session expired".
 */
export function refusalOf(code: number, reason: string, hadToken: boolean): Refusal {
  const detail = reason.trim();
  switch (code) {
    case CLOSE.UNAUTHENTICATED:
    case 401:
      return { code: CLOSE.UNAUTHENTICATED, message: signedOutMessage(detail, hadToken), detail };
    case CLOSE.FORBIDDEN:
    case 403:
      return {
        code: CLOSE.FORBIDDEN,
        message: detail ? t("refusal.forbiddenWith", { detail }) : t("refusal.forbidden"),
        detail,
      };
    case CLOSE.NOT_FOUND:
    case 404:
      return { code: CLOSE.NOT_FOUND, message: t("refusal.notFound"), detail };
    case CLOSE.TOO_LARGE:
      return { code, message: t("refusal.tooLarge"), detail };
    case CLOSE.FRAME_TOO_LARGE:
      return { code, message: t("refusal.frameTooLarge"), detail };
    case CLOSE.TOO_MANY:
      return { code, message: t("refusal.tooMany"), detail };
    default:
      return {
        code,
        message: detail ? t("refusal.closedWith", { detail }) : t("refusal.closed", { code: String(code) }),
        detail,
      };
  }
}

/** Why someone is signed out, in their words rather than the server's. */
function signedOutMessage(detail: string, hadSession: boolean): string {
  if (/disabled/i.test(detail)) return t("signIn.error.disabled");
  if (/signed out/i.test(detail)) return t("refusal.signedOut");
  if (/password is wrong/i.test(detail)) return t("refusal.wrongPassword");
  return hadSession ? t("refusal.expired") : t("refusal.notSignedIn");
}

/**
 * Whether the browser's copy of a board must go after a refusal: the server will never take the
 * changes it holds (a write it forbids, a board it does not have or cannot grow), and sending
 * them again on every visit would close the socket every time. After an expired session the copy
 * stays: its edits sync once the person signs in again.
 */
export function dropsLocalCopy(code: number): boolean {
  return code === CLOSE.FORBIDDEN || code === CLOSE.NOT_FOUND || code === CLOSE.TOO_LARGE;
}

/**
 * Whether the board stops taking edits after a refusal: the server will take none of them. After
 * 4414 the copy stays (it may hold edits the user wants to keep elsewhere) until the user drops it.
 */
export function freezesBoard(code: number): boolean {
  return dropsLocalCopy(code) || code === CLOSE.FRAME_TOO_LARGE;
}

/** How this server signs people in (`GET /api/v1/auth/methods`). */
export interface AuthMethods {
  /** E-mail and password. */
  password: boolean;
  /** Sign-in through the company's identity provider: its name for the button, and where it starts. */
  oidc: { name: string | null; start: string } | null;
}

/** The server's `/auth/methods` answer; a password form alone for anything else. */
export function parseAuthMethods(raw: unknown): AuthMethods {
  const fallback: AuthMethods = { password: true, oidc: null };
  if (typeof raw !== "object" || raw === null) return fallback;
  const { password, oidc } = raw as Record<string, unknown>;
  let provider: AuthMethods["oidc"] = null;
  if (typeof oidc === "object" && oidc !== null) {
    const { name, start } = oidc as Record<string, unknown>;
    // Only a path of this server: the button never sends anyone elsewhere.
    if (typeof start === "string" && start.startsWith("/") && !start.startsWith("//")) {
      provider = { name: typeof name === "string" && name.trim() !== "" ? name : null, start };
    }
  }
  return { password: password !== false, oidc: provider };
}

/** The query parameter the server's identity-provider callback names its refusal in. */
export const SIGN_IN_ERROR_PARAM = "signInError";

/** Why the identity provider's sign-in was refused (the server's codes). */
export type SignInErrorCode =
  "state" | "denied" | "provider" | "unavailable" | "unverified" | "unknown" | "taken" | "disabled" | "slow";

const SIGN_IN_ERRORS: readonly SignInErrorCode[] = [
  "state",
  "denied",
  "provider",
  "unavailable",
  "unverified",
  "unknown",
  "taken",
  "disabled",
  "slow",
];

/**
 * The refusal `?signInError=` names in `search`, and what the address should become without it
 * (null: no change). An unknown code reads as a provider problem.
 */
export function takeSignInError(search: string): { code: SignInErrorCode | null; search: string | null } {
  const params = new URLSearchParams(search);
  if (!params.has(SIGN_IN_ERROR_PARAM)) return { code: null, search: null };
  const given = params.get(SIGN_IN_ERROR_PARAM) ?? "";
  params.delete(SIGN_IN_ERROR_PARAM);
  const rest = params.toString();
  const code = (SIGN_IN_ERRORS as readonly string[]).includes(given) ? (given as SignInErrorCode) : "provider";
  return { code, search: rest === "" ? "" : `?${rest}` };
}

/** The identity provider button's address: `start` with the page to come back to. */
export function providerSignInHref(start: string, pathname: string, search: string): string {
  const next = `${pathname}${search}`;
  const joiner = start.includes("?") ? "&" : "?";
  return `${start}${joiner}next=${encodeURIComponent(next)}`;
}
