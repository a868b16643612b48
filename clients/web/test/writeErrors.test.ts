// The model's refusals said in the reader's language (src/ui/writeErrors.ts): every kind has a
// message in each catalogue, and the parts of a real refusal fill it.

import { describe, expect, test } from "vitest";
import * as Y from "yjs";
import { en } from "../src/i18n/en";
import { fr } from "../src/i18n/fr";
import { OrderError } from "../src/model/order";
import {
  BoardError,
  type BoardErrorKind,
  editCard,
  recolorStage,
  renameStage,
  setLostReasons,
} from "../src/model/write";
import { setLanguage } from "../src/ui/i18n";
import { writeErrorText } from "../src/ui/writeErrors";

/** Every kind, checked complete by the type. */
const KINDS = {
  noSuchStage: true,
  noSuchCard: true,
  cardExists: true,
  noSuchActivity: true,
  initialStageIsPermanent: true,
  successStageIsUnique: true,
  initialStageIsUnique: true,
  lastFailureStage: true,
  stageOrder: true,
  cardsNeedAnotherStage: true,
  badName: true,
  badColor: true,
  badAmount: true,
  badThreshold: true,
  badFieldType: true,
  badProbability: true,
  badRotDays: true,
  unknownRequiredField: true,
  initialStageRequiresNothing: true,
  badLostReason: true,
  badLostReasons: true,
  needsRebalance: true,
} satisfies Record<BoardErrorKind, true>;

function refusal(action: () => void): BoardError {
  try {
    action();
  } catch (error) {
    if (error instanceof BoardError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

function inFrench<T>(run: () => T): T {
  setLanguage("fr", false);
  try {
    return run();
  } finally {
    setLanguage("en", false);
  }
}

describe("refused writes", () => {
  test("every kind has a message in English and in French", () => {
    for (const kind of Object.keys(KINDS)) {
      expect(en).toHaveProperty([`writeError.${kind}`]);
      expect(fr).toHaveProperty([`writeError.${kind}`]);
    }
  });

  test("a real refusal's parts fill the sentence, in each language", () => {
    const doc = new Y.Doc();
    const noStage = refusal(() => renameStage(doc, "st-x", "Fresh"));
    expect(writeErrorText(noStage)).toBe("This stage no longer exists");
    const emptyTitle = refusal(() => editCard(doc, "c-1", { title: " " }));
    expect(emptyTitle.message).toBe("a card title must be 1 to 200 characters");
    expect(writeErrorText(emptyTitle)).toBe("A card title must be 1 to 200 characters");
    expect(inFrench(() => writeErrorText(emptyTitle))).toBe("Le titre d'une fiche doit faire de 1 à 200 caractères");
    const colour = refusal(() => recolorStage(doc, "st-x", "red"));
    expect(inFrench(() => writeErrorText(colour))).toBe("Une couleur s'écrit #rrggbb, pas red");
    const reasons = refusal(() => setLostReasons(doc, ["Price", "Price"]));
    expect(inFrench(() => writeErrorText(reasons))).toBe(
      "Les motifs de perte font de 1 à 200 caractères chacun, 100 au plus, sans doublon",
    );
    expect(inFrench(() => writeErrorText(new OrderError("empty", "an order key cannot be empty")))).toBe(
      "L'ordre des fiches n'a pas pu être gardé ici : réessayez",
    );
  });
});
