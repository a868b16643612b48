// Who is using this browser. There is no sign-in page (with a token, docs/security.md, the token
// names the user): otherwise the current user is picked in the header and kept in localStorage under
// `funnel.user`; `?user=<id>` in the address sets it (the end-to-end tests use that). A small
// roster of names lives beside it (`funnel.roster`), editable in the header. Colours are derived
// from the id, so every browser draws a person in the same colour without agreeing on anything.

export interface User {
  id: string;
  name: string;
  color: string;
}

export interface RosterEntry {
  id: string;
  name: string;
}

export const USER_KEY = "funnel.user";
export const ROSTER_KEY = "funnel.roster";

export const DEFAULT_ROSTER: readonly RosterEntry[] = [
  { id: "ann", name: "Ann Lee" },
  { id: "bob", name: "Bob Stone" },
  { id: "cy", name: "Cy Park" },
];

/** A stable colour for a user id: a hue from a hash of the id, fixed saturation and lightness. */
export function colorFor(id: string): string {
  // FNV-1a over UTF-16 units: cheap, stable, well spread for short ids.
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  const hue = (hash >>> 0) % 360;
  // Dark enough for white initials at 4.5:1 whatever the hue (yellow is the lightest).
  return hslToHex(hue, 0.65, 0.28);
}

function hslToHex(h: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const channel = (n: number) => {
    const k = (n + h / 30) % 12;
    const value = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(value * 255)
      .toString(16)
      .padStart(2, "0");
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

/** A readable name for an id nobody named: "ann.lee" → "Ann Lee". */
export function nameFromId(id: string): string {
  const words = id.split(/[\s._-]+/).filter((w) => w !== "");
  if (words.length === 0) return id;
  return words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");
}

/** A user id as the app accepts it from a person: trimmed, 1 to 64 characters, no spaces. */
export function isValidUserId(id: string): boolean {
  return /^[^\s]{1,64}$/.test(id);
}

/** Minimal storage, so tests pass a Map-backed one. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export function loadRoster(storage: KeyValueStore): RosterEntry[] {
  try {
    const raw = storage.getItem(ROSTER_KEY);
    if (raw !== null) {
      const parsed: unknown = JSON.parse(raw);
      if (Array.isArray(parsed)) {
        const entries = (parsed as unknown[]).filter(isRosterEntry);
        if (entries.length > 0) return entries;
      }
    }
  } catch {
    // A broken roster reads as the default one.
  }
  return [...DEFAULT_ROSTER];
}

function isRosterEntry(value: unknown): value is RosterEntry {
  return (
    typeof value === "object" &&
    value !== null &&
    "id" in value &&
    "name" in value &&
    typeof value.id === "string" &&
    typeof value.name === "string" &&
    isValidUserId(value.id)
  );
}

export function saveRoster(storage: KeyValueStore, roster: readonly RosterEntry[]): void {
  storage.setItem(ROSTER_KEY, JSON.stringify(roster));
}

/**
 * The current user: `?user=` wins (and is remembered), then the remembered one, then the first
 * of the roster. An id not in the roster joins it, named after the id.
 */
export function resolveCurrentUser(search: string, storage: KeyValueStore): { user: User; roster: RosterEntry[] } {
  const roster = loadRoster(storage);
  const fromUrl = new URLSearchParams(search).get("user")?.trim() ?? "";
  let id = "";
  if (fromUrl !== "" && isValidUserId(fromUrl)) {
    id = fromUrl;
    storage.setItem(USER_KEY, id);
  } else {
    const stored = storage.getItem(USER_KEY) ?? "";
    id = isValidUserId(stored) ? stored : roster[0]!.id;
  }
  let entry = roster.find((e) => e.id === id);
  if (entry === undefined) {
    entry = { id, name: nameFromId(id) };
    roster.push(entry);
    saveRoster(storage, roster);
  }
  return { user: { id, name: entry.name, color: colorFor(id) }, roster };
}
