// Inbound e-mail in the web client: timeline entries that came from a message carry its subject
// and sender, and an admin's settings show the board's inbound address (src/ui/api.ts).

import { describe, expect, test } from "vitest";
import { parseInboundAddress, parseTimelineEvent, senderText } from "../src/ui/api";

describe("inbound e-mail", () => {
  test("an e-mail entry keeps its subject, sender and text; others have no mail", () => {
    const entry = parseTimelineEvent(
      {
        id: 42,
        card: "c1",
        at: 1_700_000_000_000,
        kind: "email",
        direction: "incoming",
        user: "ann",
        text: "How much for 40?",
        mail: { messageId: "m1@x", subject: "Quote", from: "ada@example.com", fromName: "Ada Lovelace" },
      },
      0,
    );
    expect(entry).toMatchObject({
      id: "42",
      kind: "email",
      direction: "incoming",
      text: "How much for 40?",
      mail: { subject: "Quote", from: "ada@example.com", fromName: "Ada Lovelace", messageId: "m1@x" },
    });
    expect(senderText(entry!.mail!)).toBe("Ada Lovelace <ada@example.com>");
    expect(senderText({ messageId: "", subject: "", from: "ada@example.com", fromName: "" })).toBe("ada@example.com");
    const comment = parseTimelineEvent({ id: 7, kind: "comment", direction: "", user: "bob", text: "hi", at: 1 }, 3);
    expect(comment).toMatchObject({ id: "7", kind: "comment", mail: null });
    expect(parseTimelineEvent("nope", 0)).toBeNull();
    expect(parseTimelineEvent({ kind: "email", mail: "not an object" }, 5)).toMatchObject({ id: "5", mail: null });
  });

  test("the inbound address is read from the API, or refused when it has none", () => {
    expect(
      parseInboundAddress({
        address: "b1+0123456789abcdef0123@crm.example.com",
        localPart: "b1+0123456789abcdef0123",
        secretRequired: true,
        smtp: true,
        maxBytes: 10485760,
      }),
    ).toEqual({
      address: "b1+0123456789abcdef0123@crm.example.com",
      smtp: true,
      secretRequired: true,
      maxBytes: 10485760,
    });
    expect(parseInboundAddress({ address: "no-at-sign" })).toBeNull();
    expect(parseInboundAddress(null)).toBeNull();
    expect(parseInboundAddress({ address: "b1@localhost" })).toEqual({
      address: "b1@localhost",
      smtp: false,
      secretRequired: false,
      maxBytes: 0,
    });
  });
});
