// Tokens, roles and refusals: the page's token taken from the address and kept, the claims read
// from it, the role → allowed actions mapping, close codes and API statuses → messages.

import { describe, expect, test } from "vitest";
import { apiHeaders } from "../src/ui/api";
import { setLanguage } from "../src/ui/i18n";
import {
  claimsOf,
  CLOSE,
  dropsLocalCopy,
  freezesBoard,
  parseAuthMethods,
  parseMe,
  permissionsOf,
  providerSignInHref,
  refusalOf,
  takeSignInError,
  takeToken,
  TOKEN_KEY,
  type TokenStore,
} from "../src/ui/auth";

function memoryStore(initial: Record<string, string> = {}): TokenStore & { data: Map<string, string> } {
  const data = new Map(Object.entries(initial));
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

const base64url = (text: string) => Buffer.from(text, "utf8").toString("base64url");
const jwt = (claims: unknown) =>
  `${base64url('{"typ":"JWT","alg":"HS256"}')}.${base64url(JSON.stringify(claims))}.c2lnbmF0dXJl`;

describe("the page's token", () => {
  test("?token= is kept in session storage and taken out of the address, other parameters stay", () => {
    const storage = memoryStore();
    expect(takeToken("?user=ann&token=abc.def.ghi&x=1", storage)).toEqual({
      token: "abc.def.ghi",
      search: "?user=ann&x=1",
    });
    expect(storage.data.get(TOKEN_KEY)).toBe("abc.def.ghi");
    expect(takeToken("?token=abc.def.ghi", memoryStore())).toEqual({ token: "abc.def.ghi", search: "" });
  });

  test("without ?token= the stored token is used and the address is left alone", () => {
    expect(takeToken("?user=ann", memoryStore({ [TOKEN_KEY]: "stored" }))).toEqual({ token: "stored", search: null });
    expect(takeToken("", memoryStore())).toEqual({ token: null, search: null });
    expect(takeToken("", memoryStore({ [TOKEN_KEY]: "  " }))).toEqual({ token: null, search: null });
  });

  test("a new ?token= replaces the stored one; an empty one forgets it", () => {
    const storage = memoryStore({ [TOKEN_KEY]: "old" });
    expect(takeToken("?token=new", storage).token).toBe("new");
    expect(storage.data.get(TOKEN_KEY)).toBe("new");
    expect(takeToken("?token=&user=bob", storage)).toEqual({ token: null, search: "?user=bob" });
    expect(storage.data.has(TOKEN_KEY)).toBe(false);
  });

  test("claims are read from the token's payload (base64url, UTF-8), without checking the signature", () => {
    const token = jwt({ sub: "ann", name: "Ann Lée ✓", role: "member", exp: 1_900_000_000, boards: ["b1", 7, "b2"] });
    expect(claimsOf(token)).toEqual({
      user: "ann",
      name: "Ann Lée ✓",
      role: "member",
      boards: ["b1", "b2"],
      local: false,
      email: null,
      signedInWith: "token",
      exp: 1_900_000_000,
    });
    expect(claimsOf(jwt({ sub: "bob", role: "viewer" }))).toEqual({
      user: "bob",
      name: "bob",
      role: "viewer",
      boards: null,
      local: false,
      email: null,
      signedInWith: "token",
      exp: null,
    });
  });

  test("anything that is not a funnel token has no claims", () => {
    expect(claimsOf("not a token")).toBeNull();
    expect(claimsOf("a.b")).toBeNull();
    expect(claimsOf("a.%%%.c")).toBeNull();
    expect(claimsOf(`x.${base64url("not json")}.y`)).toBeNull();
    expect(claimsOf(jwt({ sub: "ann", role: "owner" }))).toBeNull();
    expect(claimsOf(jwt({ role: "admin" }))).toBeNull();
    expect(claimsOf(jwt(null))).toBeNull();
  });

  test("every API call carries the bearer token when there is one", () => {
    expect(apiHeaders({}, "t0k")).toEqual({ accept: "application/json", authorization: "Bearer t0k" });
    expect(apiHeaders({ "content-type": "application/json" }, null)).toEqual({
      accept: "application/json",
      "content-type": "application/json",
    });
  });
});

describe("/api/v1/me", () => {
  test("parses the server's answer", () => {
    expect(parseMe({ user: "ann", name: "Ann", role: "admin", local: false })).toEqual({
      user: "ann",
      name: "Ann",
      role: "admin",
      boards: null,
      local: false,
      email: null,
      signedInWith: "token",
    });
    expect(parseMe({ user: "local", name: "Local admin", role: "admin", local: true })?.local).toBe(true);
    expect(parseMe({ user: "bob", name: "", role: "viewer", boards: ["x"] })).toEqual({
      user: "bob",
      name: "bob",
      role: "viewer",
      boards: ["x"],
      local: false,
      email: null,
      signedInWith: "token",
    });
    expect(
      parseMe({ user: "p1", name: "Ann", role: "member", local: false, email: "ann@x.io", signedInWith: "session" }),
    ).toMatchObject({ email: "ann@x.io", signedInWith: "session" });
  });

  test("refuses answers without a user or a known role", () => {
    expect(parseMe(null)).toBeNull();
    expect(parseMe("ann")).toBeNull();
    expect(parseMe({ user: "", role: "admin" })).toBeNull();
    expect(parseMe({ user: "ann", role: "root" })).toBeNull();
  });
});

describe("roles", () => {
  test("viewers change nothing", () => {
    const can = permissionsOf("viewer");
    expect(can).toEqual({
      role: "viewer",
      moveCards: false,
      createCards: false,
      editCards: false,
      editActivities: false,
      editStages: false,
      editBoardSettings: false,
      editOwnDisplay: false,
      openSettings: false,
      createBoards: false,
    });
  });

  test("members work cards, activities and their own display form, not stages or the board's settings", () => {
    const can = permissionsOf("member");
    expect([
      can.moveCards,
      can.createCards,
      can.editCards,
      can.editActivities,
      can.editOwnDisplay,
      can.openSettings,
    ]).toEqual([true, true, true, true, true, true]);
    expect([can.editStages, can.editBoardSettings, can.createBoards]).toEqual([false, false, false]);
  });

  test("admins do everything", () => {
    const can = permissionsOf("admin");
    expect(Object.entries(can).filter(([key, value]) => key !== "role" && value !== true)).toEqual([]);
  });

  test("one frozen object per role, so memoised parts keep their identity", () => {
    expect(permissionsOf("member")).toBe(permissionsOf("member"));
    expect(Object.isFrozen(permissionsOf("viewer"))).toBe(true);
  });
});

describe("refusals", () => {
  test("4401 and an API 401: sign in, told apart by whether the page had a token", () => {
    expect(refusalOf(4401, "a token is required", false).message).toMatch(/sign in/i);
    expect(refusalOf(4401, "the token has expired: get a new one", true)).toEqual({
      code: 4401,
      message: "Your session has expired: sign in again",
      detail: "the token has expired: get a new one",
    });
    expect(refusalOf(401, "", true)).toEqual(refusalOf(4401, "", true));
    expect(refusalOf(4401, "your account was disabled by an administrator", true).message).toMatch(
      /^Your account has been disabled/,
    );
    expect(refusalOf(4401, "you signed out", true).message).toBe("You signed out");
  });

  test("4403 says what was not allowed, with the server's reason", () => {
    const refusal = refusalOf(4403, "viewers write nothing", true);
    expect(refusal.code).toBe(CLOSE.FORBIDDEN);
    expect(refusal.message).toBe("You are not allowed to do this: viewers write nothing");
    expect(refusalOf(403, "", true).message).toBe("You are not allowed to do this");
  });

  test("4404, 4413, 4429 and other codes", () => {
    expect(refusalOf(4404, "no board x", true).message).toBe("No such board");
    expect(refusalOf(404, "", false).code).toBe(4404);
    expect(refusalOf(4413, "", true).message).toMatch(/size limit/);
    expect(refusalOf(4414, "frame over the 1024 byte limit", true).message).toBe(
      "Your last change is too large for the server to save",
    );
    expect(refusalOf(4429, "too many connections", true).message).toMatch(/^Too many/);
    expect(refusalOf(4400, "invalid board id: too long", true).message).toBe(
      "The server closed the connection: invalid board id: too long",
    );
    expect(refusalOf(4499, "  ", true).message).toBe("The server closed the connection (4499)");
  });

  test("in French", () => {
    setLanguage("fr", false);
    try {
      expect(refusalOf(4404, "no board x", true).message).toBe("Ce tableau n'existe pas");
      expect(refusalOf(4403, "viewers cannot write", true).message).toBe(
        "Vous n'avez pas le droit de faire cela : viewers cannot write",
      );
      expect(refusalOf(4401, "you signed out", true).message).toBe("Vous vous êtes déconnecté");
      expect(refusalOf(4499, "", true).message).toBe("Le serveur a fermé la connexion (4499)");
    } finally {
      setLanguage("en", false);
    }
  });

  test("the browser's copy goes when the server will never take what it holds", () => {
    expect([4401, 4403, 4404, 4413, 4414, 4429, 4400].filter(dropsLocalCopy)).toEqual([4403, 4404, 4413]);
  });

  test("after 4414 the board takes no more edits, but the copy stays until the user drops it", () => {
    expect([4401, 4403, 4404, 4413, 4414, 4429, 4400].filter(freezesBoard)).toEqual([4403, 4404, 4413, 4414]);
    expect(dropsLocalCopy(4414)).toBe(false);
  });
});

describe("signing in through the identity provider", () => {
  test("the methods the server offers; a path of this server only", () => {
    expect(parseAuthMethods({ password: true, oidc: { name: "Acme", start: "/auth/oidc/start" } })).toEqual({
      password: true,
      oidc: { name: "Acme", start: "/auth/oidc/start" },
    });
    expect(parseAuthMethods({ password: true, oidc: { name: null, start: "/auth/oidc/start" } }).oidc?.name).toBe(null);
    expect(parseAuthMethods({ password: true, oidc: null }).oidc).toBe(null);
    expect(parseAuthMethods({ oidc: { name: "Evil", start: "https://evil.test/" } }).oidc).toBe(null);
    expect(parseAuthMethods({ oidc: { name: "Evil", start: "//evil.test/" } }).oidc).toBe(null);
    expect(parseAuthMethods("nonsense")).toEqual({ password: true, oidc: null });
  });

  test("the button comes back to the page it was pressed on", () => {
    expect(providerSignInHref("/auth/oidc/start", "/boards/b1", "?view=v")).toBe(
      "/auth/oidc/start?next=%2Fboards%2Fb1%3Fview%3Dv",
    );
    expect(providerSignInHref("/auth/oidc/start?x=1", "/", "")).toBe("/auth/oidc/start?x=1&next=%2F");
  });

  test("a refusal named in the address is taken out of it", () => {
    expect(takeSignInError("?signInError=unknown")).toEqual({ code: "unknown", search: "" });
    expect(takeSignInError("?view=v&signInError=state")).toEqual({ code: "state", search: "?view=v" });
    expect(takeSignInError("?view=v")).toEqual({ code: null, search: null });
    expect(takeSignInError("?signInError=<script>")).toEqual({ code: "provider", search: "" });
  });
});
