// Mirrors protocol/src/order.rs: base-62 order keys (`pos`) for stages and cards. The keys come
// from the npm package `fractional-indexing` (4.x, default alphabet: never pass the digits
// argument, which switches to a different key form), which order.rs ports byte for byte. This
// module adds what the Rust side checks and the package does not: every character is one of
// `0-9A-Za-z`, the lower neighbour is strictly below the upper one (the package swaps them), and
// the neighbours are checked even when no key is asked for. protocol/vectors/order-keys.json
// (written by the package) and protocol/vectors/order-validation.json (written by Rust) keep
// the two honest (test/vectors.test.ts).

import { generateKeyBetween, generateNKeysBetween } from "fractional-indexing";

/** The 62 digits, in value order (which is also their byte order). */
export const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * The longest key we are content to keep: a column holding a longer one asks for a rebalance
 * ({@link needsRebalance}). Longer keys are still valid; they only cost bytes in every update.
 */
export const MAX_KEY_LEN = 32;

/** Why an order key, or a pair of neighbours, was refused: the variants of Rust's `OrderError`. */
export type OrderErrorKind =
  | "empty"
  | "invalidHead"
  | "invalidCharacter"
  | "truncatedInteger"
  | "trailingZero"
  | "smallestInteger"
  | "notIncreasing";

export class OrderError extends Error {
  constructor(
    readonly kind: OrderErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "OrderError";
  }
}

/**
 * Checks that `key` is an order key Rust's `validate_key` accepts: a head letter, the integer
 * digits it announces, a fraction without trailing `0`, only characters of {@link DIGITS}, and
 * not the reserved smallest integer. Throws an {@link OrderError} otherwise. Long keys are valid.
 */
export function validateKey(key: string): void {
  if (key.length === 0) {
    throw new OrderError("empty", 'order key is empty; a key has at least two characters, such as "a0"');
  }
  const head = String.fromCodePoint(key.codePointAt(0) ?? 0);
  const integerLen = integerLength(head);
  if (integerLen === null) {
    throw new OrderError(
      "invalidHead",
      `order key ${shown(key)} starts with '${head}'; a key starts with a letter A-Z or a-z ` +
        "that gives the length of its integer part",
    );
  }
  for (let i = 1; i < key.length; i++) {
    if (!isDigit(key.charCodeAt(i))) {
      const character = String.fromCodePoint(key.codePointAt(i) ?? 0);
      throw new OrderError(
        "invalidCharacter",
        `order key ${shown(key)} has '${character}' at byte ${utf8Length(key.slice(0, i))}; ` +
          "keys use only the digits 0-9, A-Z and a-z",
      );
    }
  }
  if (key.length < integerLen) {
    throw new OrderError(
      "truncatedInteger",
      `order key ${shown(key)} is shorter than the ${integerLen} characters its head ` +
        "announces; complete its integer part",
    );
  }
  const fraction = key.slice(integerLen);
  if (fraction.endsWith("0")) {
    throw new OrderError(
      "trailingZero",
      `order key ${shown(key)} ends in '0'; drop the trailing zeros of its fraction`,
    );
  }
  if (fraction.length === 0 && key === SMALLEST_INTEGER) {
    throw new OrderError(
      "smallestInteger",
      `order key ${shown(key)} is the smallest integer, which is reserved so that a key below ` +
        "every key exists; use a key above it",
    );
  }
}

/** Whether {@link validateKey} accepts `key`. */
export function isValidKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch (error) {
    if (error instanceof OrderError) return false;
    throw error;
  }
}

/**
 * The key for an item placed between `a` and `b`, where `a < b`; `null` is an open end (the
 * start for `a`, the end for `b`). `keyBetween(null, null)` is `"a0"`. Throws an
 * {@link OrderError} for an invalid key or for `a >= b` (equal neighbours need a rebalance).
 */
export function keyBetween(a: string | null, b: string | null): string {
  checkNeighbours(a, b);
  return generateKeyBetween(a, b);
}

/**
 * `n` keys in increasing order between `a` and `b` (as in {@link keyBetween}), the package's
 * `generateNKeysBetween`. The neighbours are checked even when `n` is 0.
 */
export function nKeysBetween(a: string | null, b: string | null, n: number): string[] {
  checkNeighbours(a, b);
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`the number of keys must be a whole number >= 0, got ${n}`);
  }
  return generateNKeysBetween(a, b, n);
}

/**
 * Whether a column with these keys should be given fresh ones ({@link rebalanced}): some key is
 * longer than {@link MAX_KEY_LEN} or is not a valid key at all.
 */
export function needsRebalance(keys: Iterable<string>): boolean {
  for (const key of keys) {
    // A valid key is ASCII, so its length in UTF-16 units is its length in bytes.
    if (!isValidKey(key) || key.length > MAX_KEY_LEN) return true;
  }
  return false;
}

/**
 * Fresh keys for `n` items, in order: `"a0"`, `"a1"`, … `"az"`, `"b00"`, …. They depend on `n`
 * alone, so replicas that rebalance the same column order write the same keys.
 */
export function rebalanced(n: number): string[] {
  return nKeysBetween(null, null, n);
}

/**
 * Compares two strings by their UTF-8 bytes, as Rust compares `str` (and `String` keys of a
 * `BTreeMap`): this is code point order. JavaScript's `<` compares UTF-16 units, which differs
 * for characters above U+FFFF against U+E000..U+FFFF. Every ordering rule of the board (stage
 * and card order, workload by responsible, sums by currency) uses this.
 */
export function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      // Surrogates (U+D800..U+DFFF) encode code points above U+FFFF: move them above U+FFFF.
      if (x >= 0xd800 && y >= 0xd800) {
        x += x >= 0xe000 ? -0x800 : 0x2000;
        y += y >= 0xe000 ? -0x800 : 0x2000;
      }
      return x < y ? -1 : 1;
    }
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

// ---------------------------------------------------------------------------------------------

/** `A` and 26 zeros: no integer is below it, so no key may be it. */
const SMALLEST_INTEGER = "A" + "0".repeat(26);

/** Errors show at most this many characters of a key: a key comes from a peer and may be huge. */
const SHOWN_KEY_CHARS = 2 * MAX_KEY_LEN;

function shown(key: string): string {
  const chars = Array.from(key);
  const cut = chars.length > SHOWN_KEY_CHARS ? chars.slice(0, SHOWN_KEY_CHARS).join("") + "…" : key;
  return JSON.stringify(cut);
}

function checkNeighbours(a: string | null, b: string | null): void {
  if (a !== null) validateKey(a);
  if (b !== null) validateKey(b);
  // Both are ASCII now, so `>=` on UTF-16 units is byte order.
  if (a !== null && b !== null && a >= b) {
    throw new OrderError(
      "notIncreasing",
      `order key ${shown(a)} is not below ${shown(b)}; pass the lower neighbour first, and ` +
        "rebalance the column when two neighbours share a key",
    );
  }
}

/** `0-9`, `A-Z`, `a-z`. */
function isDigit(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** The length of the integer part announced by `head`, the head included. */
function integerLength(head: string): number | null {
  const code = head.charCodeAt(0);
  if (head.length !== 1) return null;
  if (code >= 97 && code <= 122) return code - 97 + 2; // a..z
  if (code >= 65 && code <= 90) return 90 - code + 2; // Z..A
  return null;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}
