// How the page learns that the server lost part of a board's history (src/store/history.ts):
// the recovered notice as the server encodes it (the same bytes as protocol/src/wire.rs's test),
// the clocks of what a copy received, and the verdict, on real Yjs documents.

import { setLanguage } from "../src/ui/i18n";
import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import {
  formatClocks,
  judgeRecovery,
  mergeClocks,
  noteReceived,
  parseClocks,
  readRecovered,
  recoveryMessage,
  tellsUser,
  type Clocks,
} from "../src/store/history";

/** A notice naming author 7 at clock 3 and stages taken back: the server's bytes. */
const NOTICE_FRAME = Uint8Array.from([100, 13, 1, 3, 1, 7, 3, 1, 6, ...new TextEncoder().encode("stages")]);

describe("the wire", () => {
  test("a recovered notice reads as the server wrote it", () => {
    expect(NOTICE_FRAME[0]).toBe(100);
    const notice = readRecovered(NOTICE_FRAME.subarray(2));
    expect(notice).toEqual({ held: new Map([[7, 3]]), takenBack: ["stages"] });
  });

  test("another kind is not a notice, and a truncated one throws", () => {
    expect(readRecovered(Uint8Array.from([9]))).toBeNull();
    expect(() => readRecovered(NOTICE_FRAME.subarray(2, 6))).toThrow();
  });
});

/** A server's document, and a browser's copy that receives from it. */
function setUp() {
  const server = new Y.Doc();
  const browser = new Y.Doc();
  const seen: Clocks = new Map();
  // As the connection does: the clocks a received transaction moved, from its state vectors.
  browser.on("afterTransaction", (transaction: Y.Transaction) => {
    if (transaction.origin === "server") noteReceived(seen, transaction.beforeState, transaction.afterState);
  });
  const send = () => Y.applyUpdate(browser, Y.encodeStateAsUpdate(server, Y.encodeStateVector(browser)), "server");
  return { server, browser, seen, send };
}

/** What the notice would say after `browser`'s step 2 to `server`. */
function noticeAfterStep2(server: Y.Doc, browser: Y.Doc) {
  const before = Y.decodeStateVector(Y.encodeStateVector(server));
  Y.applyUpdate(server, Y.encodeStateAsUpdate(browser, Y.encodeStateVector(server)));
  const after = Y.decodeStateVector(Y.encodeStateVector(server));
  const held: Clocks = new Map();
  for (const [client, clock] of after) if (clock > (before.get(client) ?? 0)) held.set(client, before.get(client) ?? 0);
  return { held, takenBack: [] };
}

describe("the verdict", () => {
  test("a copy that had received what a restored server lacks learns that history was lost", () => {
    const { server, browser, seen, send } = setUp();
    const writer = new Y.Doc();
    writer.getMap("cards").set("c1", "before the backup");
    Y.applyUpdate(server, Y.encodeStateAsUpdate(writer));
    send();
    const backup = Y.encodeStateAsUpdate(server);
    writer.getMap("cards").set("c2", "after the backup");
    Y.applyUpdate(server, Y.encodeStateAsUpdate(writer, Y.encodeStateVector(server)));
    send();
    expect(seen.get(writer.clientID)).toBe(2);

    const restored = new Y.Doc();
    Y.applyUpdate(restored, backup);
    const recovery = judgeRecovery(noticeAfterStep2(restored, browser), seen);
    expect(recovery).toEqual({ lostHistory: true, takenBack: [] });
    expect(tellsUser(recovery)).toBe(true);
    expect(restored.getMap("cards").get("c2")).toBe("after the backup");
  });

  test("a copy that only brings its own offline edits learns nothing", () => {
    const { server, browser, seen, send } = setUp();
    server.getMap("cards").set("c1", "on the server");
    send();
    browser.getMap("cards").set("c2", "made offline");
    const recovery = judgeRecovery(noticeAfterStep2(server, browser), seen);
    expect(recovery).toEqual({ lostHistory: false, takenBack: [] });
    expect(tellsUser(recovery)).toBe(false);
  });

  test("what the server recomputes is not worth a banner; what it took back is", () => {
    const held = new Map([[1, 0]]);
    expect(tellsUser(judgeRecovery({ held, takenBack: ["serverFields"] }, new Map()))).toBe(false);
    const stages = judgeRecovery({ held, takenBack: ["stages", "serverFields"] }, new Map());
    expect(stages).toEqual({ lostHistory: false, takenBack: ["stages"] });
    expect(recoveryMessage(stages).detail).toContain("took back the stage changes");
  });

  test("the banner says what happened and what became of the edits", () => {
    const kept = recoveryMessage({ lostHistory: true, takenBack: [] });
    expect(kept.title).toBe("This board's server had lost recent changes");
    expect(kept.detail).toContain("restored from a backup");
    expect(kept.detail).toContain("your edits are kept");
    const some = recoveryMessage({ lostHistory: true, takenBack: ["settings", "stages", "fields"] });
    // Listed the locale's way (Intl.ListFormat): en-US has the serial comma.
    expect(some.detail).toContain("took back the board settings, stage changes, and field definitions");
  });

  test("the banner in French", () => {
    setLanguage("fr", false);
    try {
      const some = recoveryMessage({ lostHistory: true, takenBack: ["settings", "stages", "fields"] });
      expect(some.title).toBe("Le serveur de ce tableau avait perdu des modifications récentes");
      expect(some.detail).toContain(
        "le serveur a donc repris les réglages du tableau, modifications d'étapes et définitions de champs",
      );
      expect(recoveryMessage({ lostHistory: false, takenBack: ["cards"] }).title).toBe(
        "Certaines de vos modifications hors ligne ont été reprises",
      );
    } finally {
      setLanguage("en", false);
    }
  });
});

describe("the received clocks", () => {
  test("a received transaction's state vectors give what parsing its update gives", () => {
    const writers = [new Y.Doc(), new Y.Doc()];
    const browser = new Y.Doc();
    const fromVectors: Clocks = new Map();
    const fromUpdates: Clocks = new Map();
    browser.on("afterTransaction", (transaction: Y.Transaction) => {
      if (transaction.origin === "server") noteReceived(fromVectors, transaction.beforeState, transaction.afterState);
    });
    browser.on("update", (update: Uint8Array, origin: unknown) => {
      if (origin !== "server") return;
      for (const [client, clock] of Y.parseUpdateMeta(update).to) {
        if (clock > (fromUpdates.get(client) ?? 0)) fromUpdates.set(client, clock);
      }
    });
    for (let round = 0; round < 5; round++) {
      for (const [i, writer] of writers.entries()) {
        const cards = writer.getMap<string>("cards");
        cards.set(`c${round}-${i}`, "x".repeat(round + 1));
        if (round > 1) cards.delete(`c${round - 2}-${i}`);
        Y.applyUpdate(browser, Y.encodeStateAsUpdate(writer, Y.encodeStateVector(browser)), "server");
        expect(fromVectors).toEqual(fromUpdates);
      }
    }
    // An update that moves no clock (deletions only, or one already held) raises nothing.
    const before = new Map(fromVectors);
    Y.applyUpdate(browser, Y.encodeStateAsUpdate(writers[0]!), "server");
    expect(fromVectors).toEqual(before);
  });
});

describe("the stored clocks", () => {
  test("round-trip, merge author by author, and a damaged entry counts as none", () => {
    const a: Clocks = new Map([
      [1, 5],
      [2, 1],
    ]);
    expect(parseClocks(formatClocks(a))).toEqual(a);
    expect(mergeClocks(a, new Map([[2, 4]]))).toEqual(
      new Map([
        [1, 5],
        [2, 4],
      ]),
    );
    expect(parseClocks("{not json")).toEqual(new Map());
    expect(parseClocks('{"x": 1, "3": "no"}')).toEqual(new Map());
    expect(parseClocks(null)).toEqual(new Map());
  });
});
