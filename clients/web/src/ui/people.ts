// People with accounts (docs/accounts.md): the directory as the pages use it (names, initials
// and colours of avatars, the search of the people pickers), and the sentences of the sign-in
// and invite forms. Pure: the pages fetch, this module decides what to show.

import { t } from "./i18n";
import { ApiError, type Person } from "./api";
import { initials } from "./format";
import { colorFor, type RosterEntry } from "./users";

/** The directory, by id (`GET /api/v1/people`), in the server's order (oldest first). */
export interface Directory {
  readonly people: readonly Person[];
  readonly byId: ReadonlyMap<string, Person>;
}

export const EMPTY_DIRECTORY: Directory = { people: [], byId: new Map() };

export function directoryOf(people: readonly Person[]): Directory {
  return { people, byId: new Map(people.map((p) => [p.id, p])) };
}

/** The directory as the board's roster (what `nameOf` and the pickers read). */
export function rosterOf(directory: Directory): RosterEntry[] {
  return directory.people.filter((p) => !p.disabled).map((p) => ({ id: p.id, name: p.name }));
}

/** How a person's avatar shows. */
export interface AvatarLook {
  name: string;
  initials: string;
  color: string;
}

/**
 * The avatar of `id`: the directory's name, initials and colour when the person is in it, else
 * `name` (or the id) with initials and a colour computed here.
 */
export function avatarOf(directory: Directory, id: string, name: string = id): AvatarLook {
  const person = directory.byId.get(id);
  if (person !== undefined) {
    return { name: person.name, initials: person.initials || initials(person.name), color: person.color };
  }
  return { name, initials: initials(name), color: colorFor(id) };
}

/** Lowercase, accents off: "Zoë" matches "zoe". */
function fold(text: string): string {
  return text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

/**
 * The people a picker offers for `query`, best first: names whose words start with every word
 * of the query, then names, e-mails or ids that contain it. Disabled people are left out. An
 * empty query lists everyone by name.
 */
export function searchPeople(people: readonly Person[], query: string, limit = 8): Person[] {
  const wanted = fold(query)
    .split(/\s+/)
    .filter((w) => w !== "");
  const byName = (a: Person, b: Person) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1);
  const active = people.filter((p) => !p.disabled);
  if (wanted.length === 0) return [...active].sort(byName).slice(0, limit);
  const ranked: { person: Person; rank: number }[] = [];
  for (const person of active) {
    const words = fold(person.name).split(/[\s._-]+/);
    const prefix = wanted.every((w) => words.some((word) => word.startsWith(w)));
    const phrase = wanted.join(" ");
    const contains =
      fold(person.name).includes(phrase) ||
      (person.email !== null && fold(person.email).includes(phrase)) ||
      fold(person.id).includes(phrase);
    if (prefix) ranked.push({ person, rank: 0 });
    else if (contains) ranked.push({ person, rank: 1 });
  }
  return ranked
    .sort((a, b) => a.rank - b.rank || byName(a.person, b.person))
    .slice(0, limit)
    .map((r) => r.person);
}

/**
 * What a picker's typed text stands for: a person whose name, e-mail or id it is (any case),
 * else the text itself as an id when `free` (local mode: anyone may be named by id), else null
 * (with accounts, only people of the directory). Empty text is "nobody" ("").
 */
export function resolvePerson(people: readonly Person[], text: string, free: boolean): string | null {
  const typed = text.trim();
  if (typed === "") return "";
  const folded = fold(typed);
  const match =
    people.find((p) => p.id === typed) ??
    people.find((p) => fold(p.name) === folded) ??
    people.find((p) => p.email !== null && fold(p.email) === folded);
  if (match !== undefined) return match.id;
  if (free) return /^\S{1,64}$/.test(typed) ? typed : null;
  return null;
}

/** The shortest and longest password the server takes (server/src/accounts.rs). */
export const MIN_PASSWORD_CHARS = 10;
export const MAX_PASSWORD_BYTES = 1024;

/** What is wrong with a new password and its confirmation, or null when nothing is. */
export function passwordProblem(password: string, confirmation: string): string | null {
  if (Array.from(password).length < MIN_PASSWORD_CHARS) {
    return t("people.passwordShort", { min: MIN_PASSWORD_CHARS });
  }
  if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) {
    // As digits, not "1,024": the server's message says it so too.
    return t("people.passwordLong", { max: String(MAX_PASSWORD_BYTES) });
  }
  if (password !== confirmation) return t("people.passwordsDiffer");
  return null;
}

/** "in 42 seconds", "in 3 minutes": how long until the server takes another attempt. */
export function waitText(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return t("people.inSeconds", { count: s });
  return t("people.inMinutes", { count: Math.ceil(s / 60) });
}

/** The sign-in form's message for a failed attempt. */
export function signInErrorText(error: unknown): string {
  if (error instanceof ApiError) {
    switch (error.status) {
      case 401:
        return t("people.wrongPassword");
      case 429:
        return error.retryAfterSecs !== null
          ? t("people.tooManyWait", { wait: waitText(error.retryAfterSecs) })
          : t("people.tooMany");
      case 409:
        return t("people.noAccounts");
      case 403:
        return t("people.badOrigin");
      case 400:
      case 422:
        return t("people.enterBoth");
      default:
        return t("people.signInFailed", { error: error.message });
    }
  }
  return t("people.noAnswer");
}

/** The invite page's message when the link cannot be used. */
export function inviteErrorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 404) return t("people.inviteGone");
    if (error.status === 409) return t("people.inviteNoAccounts");
    if (error.status === 400 || error.status === 422) return sentenceCase(error.message);
    return t("people.inviteFailed", { error: error.message });
  }
  return t("people.noAnswer");
}

function sentenceCase(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
