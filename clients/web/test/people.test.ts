// Accounts in the web client: the directory's avatars and search, what a picker's typed text
// stands for, the password rule of the invite page, the sign-in form's messages, the routes of
// the People and invite pages, and Retry-After.

import { describe, expect, test } from "vitest";
import { ApiError, parsePerson, parseRetryAfter, type Person } from "../src/ui/api";
import {
  avatarOf,
  directoryOf,
  inviteErrorText,
  passwordProblem,
  resolvePerson,
  rosterOf,
  searchPeople,
  signInErrorText,
  waitText,
} from "../src/ui/people";
import { inviteSecret, parseRoute } from "../src/ui/route";
import { colorFor } from "../src/ui/users";

function person(id: string, name: string, extra: Partial<Person> = {}): Person {
  const parsed = parsePerson({ id, name, initials: "", color: "#123456", ...extra });
  if (parsed === null) throw new Error("not a person");
  return parsed;
}

const ann = person("p-ann", "Ann Lee", { initials: "AL", email: "ann@example.com" });
const zoe = person("p-zoe", "Zoë Leeward", { initials: "ZL", color: "#654321" });
const bob = person("p-bob", "Bob Stone", { initials: "BS" });
const gone = person("p-gone", "Anna Gone", { disabled: true });
const people = [zoe, ann, bob, gone];

describe("directory", () => {
  test("avatars take the directory's initials and colour, others are computed", () => {
    const directory = directoryOf(people);
    expect(avatarOf(directory, "p-zoe")).toEqual({ name: "Zoë Leeward", initials: "ZL", color: "#654321" });
    expect(avatarOf(directory, "cy.park", "Cy Park")).toEqual({
      name: "Cy Park",
      initials: "CP",
      color: colorFor("cy.park"),
    });
    // A person without initials from the server gets them from the name.
    expect(avatarOf(directoryOf([person("x", "Max Power")]), "x").initials).toBe("MP");
  });

  test("colours are the server's (server/src/accounts.rs, color_for pins the same ones)", () => {
    expect(colorFor("ann")).toBe("#761957");
    expect(colorFor("bob")).toBe("#5d1976");
    expect(colorFor("x")).toBe("#197630");
  });

  test("the roster leaves disabled people out", () => {
    expect(rosterOf(directoryOf(people)).map((r) => r.id)).toEqual(["p-zoe", "p-ann", "p-bob"]);
  });

  test("search by the start of name words, accents folded, then by contained text", () => {
    expect(searchPeople(people, "").map((p) => p.name)).toEqual(["Ann Lee", "Bob Stone", "Zoë Leeward"]);
    expect(searchPeople(people, "lee").map((p) => p.name)).toEqual(["Ann Lee", "Zoë Leeward"]);
    expect(searchPeople(people, "zoe").map((p) => p.id)).toEqual(["p-zoe"]);
    expect(searchPeople(people, "ann l").map((p) => p.id)).toEqual(["p-ann"]);
    expect(searchPeople(people, "tone").map((p) => p.id)).toEqual(["p-bob"]);
    expect(searchPeople(people, "example.com").map((p) => p.id)).toEqual(["p-ann"]);
    // Disabled people are never offered.
    expect(searchPeople(people, "anna")).toEqual([]);
    expect(searchPeople(people, "", 2)).toHaveLength(2);
  });

  test("typed text names a person by id, name or e-mail; free text only in local mode", () => {
    expect(resolvePerson(people, "p-bob", false)).toBe("p-bob");
    expect(resolvePerson(people, "  ann lee ", false)).toBe("p-ann");
    expect(resolvePerson(people, "ANN@example.com", false)).toBe("p-ann");
    expect(resolvePerson(people, "zoe leeward", false)).toBe("p-zoe");
    expect(resolvePerson(people, "", false)).toBe("");
    expect(resolvePerson(people, "somebody", false)).toBeNull();
    expect(resolvePerson(people, "somebody", true)).toBe("somebody");
    expect(resolvePerson(people, "two words", true)).toBeNull();
  });
});

describe("forms", () => {
  test("a new password: 10 characters, at most 1024 bytes, typed twice the same", () => {
    expect(passwordProblem("short", "short")).toMatch(/at least 10 characters/);
    expect(passwordProblem("ten chars!", "ten chars!")).toBeNull();
    expect(passwordProblem("ten chars!", "ten chars?")).toMatch(/not the same/);
    // Characters, not UTF-16 units: ten emoji are ten characters.
    expect(passwordProblem("😀".repeat(10), "😀".repeat(10))).toBeNull();
    expect(passwordProblem("é".repeat(513), "é".repeat(513))).toMatch(/at most 1024 bytes/);
  });

  test("sign-in messages: wrong password, too many attempts with when, no answer", () => {
    expect(signInErrorText(new ApiError(401, "the e-mail or the password is wrong"))).toBe(
      "The e-mail address or the password is wrong",
    );
    expect(signInErrorText(new ApiError(429, "too many requests", 42))).toBe(
      "Too many attempts: try again in 42 seconds",
    );
    expect(signInErrorText(new ApiError(429, "too many requests", 90))).toBe(
      "Too many attempts: try again in 2 minutes",
    );
    expect(signInErrorText(new ApiError(429, "too many requests"))).toMatch(/wait a minute/);
    expect(signInErrorText(new TypeError("Failed to fetch"))).toMatch(/does not answer/);
    expect(waitText(1)).toBe("in 1 second");
    expect(waitText(0.2)).toBe("in 1 second");
    expect(waitText(60)).toBe("in 1 minute");
  });

  test("invite messages", () => {
    expect(inviteErrorText(new ApiError(404, "gone"))).toMatch(/used already, has expired/);
    expect(inviteErrorText(new ApiError(422, "a password needs at least 10 characters"))).toBe(
      "A password needs at least 10 characters",
    );
  });

  test("Retry-After in seconds or as a date", () => {
    expect(parseRetryAfter("7")).toBe(7);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const now = Date.parse("2026-12-03T09:00:00Z");
    expect(parseRetryAfter("Thu, 03 Dec 2026 09:00:30 GMT", now)).toBe(30);
  });
});

describe("routes of accounts", () => {
  test("/people and /invite, and the invite's secret from the fragment", () => {
    expect(parseRoute("/people")).toEqual({ page: "people" });
    expect(parseRoute("/people/")).toEqual({ page: "people" });
    expect(parseRoute("/invite")).toEqual({ page: "invite" });
    const secret = "q3Jx0_Zb-4Jc8d0w7m1Z8yqk5V2a0t9N3o6e1r4i7uA";
    expect(inviteSecret(`#${secret}`)).toBe(secret);
    expect(inviteSecret("")).toBeNull();
    expect(inviteSecret("#short")).toBeNull();
    expect(inviteSecret("#not a secret at all, really")).toBeNull();
  });
});
