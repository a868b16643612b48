// Mirrors protocol/src/schema.rs (root names, stage keys, entities, default stages) and the key
// names that protocol/src/board.rs declares (card, activity and field keys, the quick-create
// form, the limits). The board document is a contract shared with the Rust server:
// docs/board-document.md. protocol/vectors/schema.json, written by Rust, keeps the two honest
// (test/vectors.test.ts).

/** Root `Y.Map`s of a board document. */
export const ROOT = {
  BOARD: "board",
  STAGES: "stages",
  CARDS: "cards",
  ACTIVITIES: "activities",
  FIELDS: "fields",
  FORMS: "forms",
  VIEWS: "views",
} as const;

/** Keys of the `board` map. */
export const BOARD_KEY = {
  NAME: "name",
  ENTITY: "entity",
  CURRENCY: "currency",
  COUNTER_THRESHOLD_MIN: "counterThresholdMin",
  /** The reasons a card may be lost for (a plain array of strings); empty: any text. */
  LOST_REASONS: "lostReasons",
} as const;

/** Keys of a stage map. */
export const STAGE_KEY = {
  NAME: "name",
  COLOR: "color",
  KIND: "kind",
  POS: "pos",
  /** What a card must carry to enter the stage: card keys and custom field ids (plain array). */
  REQUIRED: "required",
  /** Percent chance of winning, 0 to 100; missing: 100 in the success stage, 0 elsewhere. */
  PROBABILITY: "probability",
  /** Days without activity before a card here is stale; missing or 0: never. */
  ROT_DAYS: "rotDays",
} as const;

/** The card keys a stage may require, beside custom field ids. */
export const REQUIRABLE_CARD_KEYS = ["amount", "client", "email", "responsible", "closeDate", "lostReason"] as const;

/** Keys of a card map. `avatar*` and `counter` are written only by the server. */
export const CARD_KEY = {
  TITLE: "title",
  STAGE: "stage",
  POS: "pos",
  AMOUNT: "amount",
  CURRENCY: "currency",
  RESPONSIBLE: "responsible",
  CLIENT: "client",
  /** The client's e-mail address (empty: none). */
  EMAIL: "email",
  CREATED_AT: "createdAt",
  /** When the card last changed, as its writer saw it; missing: `createdAt`. */
  UPDATED_AT: "updatedAt",
  /** When the card was archived (ms); absent: on the board. Reads leave an archived card out. */
  ARCHIVED_AT: "archivedAt",
  FIELDS: "fields",
  /** The expected close date (ms): the forecast groups cards by its month. */
  CLOSE_DATE: "closeDate",
  /** Why the card was lost (one of the board's `lostReasons` when it lists any). */
  LOST_REASON: "lostReason",
  AVATAR: "avatar",
  AVATAR_AT: "avatarAt",
  AVATAR_REASON: "avatarReason",
  COUNTER: "counter",
  /** Written by the server: when the card's timeline last got an event. */
  TIMELINE_AT: "timelineAt",
} as const;

/** Keys of an activity map. */
export const ACTIVITY_KEY = {
  CARD: "card",
  KIND: "kind",
  DIRECTION: "direction",
  SUBJECT: "subject",
  DEADLINE: "deadline",
  REMIND_MIN: "remindMin",
  RESPONSIBLE: "responsible",
  DONE: "done",
  /** When it was marked done (ms): the card's last activity, which rotting reads. */
  DONE_AT: "doneAt",
} as const;

/** Keys of a custom field definition. */
export const FIELD_KEY = {
  LABEL: "label",
  TYPE: "type",
  OPTIONS: "options",
} as const;

/** The key of the quick-create form (a `Y.Array` of field ids) in `forms`. */
export const QUICK_CREATE = "quickCreate";

/** The longest stage name, card title or field label, in characters. */
export const MAX_NAME_CHARS = 200;

/** The largest counter threshold: a week, in minutes. */
export const MAX_THRESHOLD_MIN = 7 * 24 * 60;

/** The counter threshold a new board starts with, in minutes. */
export const DEFAULT_COUNTER_THRESHOLD_MIN = 15;

/** The currency a new board starts with. */
export const DEFAULT_CURRENCY = "USD";

/** The types a custom field may have. */
export const FIELD_TYPES = ["string", "number", "money", "date", "enum", "user", "bool"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** The role of a stage in the funnel, as stored in `kind`. */
export type StageKind = "initial" | "progress" | "success" | "failure";
export const STAGE_KINDS: readonly StageKind[] = ["initial", "progress", "success", "failure"];

/** Reads a stored stage `kind`; `null` for anything else (such a stage is not shown). */
/** Whether cards of a stage of this kind are open deals (initial, progress), not won or lost. */
export function isOpenKind(kind: StageKind): boolean {
  return kind === "initial" || kind === "progress";
}

export function parseStageKind(raw: string): StageKind | null {
  return (STAGE_KINDS as readonly string[]).includes(raw) ? (raw as StageKind) : null;
}

/** What kind of CRM item a board's cards are. */
export type Entity =
  | { kind: "lead" }
  | { kind: "deal" }
  | { kind: "invoice" }
  | { kind: "quote" }
  /** A custom entity type ("smart process"), by its type id. */
  | { kind: "smart"; typeId: string };

/** Reads a stored `board.entity`; `null` when it names no entity. */
export function parseEntity(raw: string): Entity | null {
  switch (raw) {
    case "lead":
    case "deal":
    case "invoice":
    case "quote":
      return { kind: raw };
  }
  if (raw.startsWith("smart:") && raw.length > "smart:".length) {
    return { kind: "smart", typeId: raw.slice("smart:".length) };
  }
  return null;
}

/** The value stored in `board.entity`. */
export function entityAsString(entity: Entity): string {
  return entity.kind === "smart" ? `smart:${entity.typeId}` : entity.kind;
}

/** The name a new pipeline of this entity gets. */
export function defaultBoardName(entity: Entity): string {
  switch (entity.kind) {
    case "lead":
      return "Leads";
    case "deal":
      return "Deals";
    case "invoice":
      return "Invoices";
    case "quote":
      return "Quotes";
    case "smart":
      return `Smart process ${entity.typeId}`;
  }
}

/** One stage of a default stage set. */
export interface DefaultStage {
  readonly name: string;
  readonly color: string;
  readonly kind: StageKind;
}

const stage = (name: string, color: string, kind: StageKind): DefaultStage => ({ name, color, kind });

const DEAL_STAGES: readonly DefaultStage[] = [
  stage("New", "#39a8ef", "initial"),
  stage("Preparing documents", "#2fc6f6", "progress"),
  stage("Invoice sent", "#55d0e0", "progress"),
  stage("In progress", "#47e4c2", "progress"),
  stage("Won", "#7bd500", "success"),
  stage("Lost", "#ff5752", "failure"),
  stage("Failure analysis", "#ff8f8c", "failure"),
];
const LEAD_STAGES: readonly DefaultStage[] = [
  stage("Not processed", "#39a8ef", "initial"),
  stage("In progress", "#2fc6f6", "progress"),
  stage("Processed", "#47e4c2", "progress"),
  stage("Converted", "#7bd500", "success"),
  stage("Junk", "#ff5752", "failure"),
];
const INVOICE_STAGES: readonly DefaultStage[] = [
  stage("New", "#39a8ef", "initial"),
  stage("Sent", "#2fc6f6", "progress"),
  stage("Paid", "#7bd500", "success"),
  stage("Cancelled", "#ff5752", "failure"),
];
const QUOTE_STAGES: readonly DefaultStage[] = [
  stage("Draft", "#39a8ef", "initial"),
  stage("Sent", "#2fc6f6", "progress"),
  stage("Approved", "#7bd500", "success"),
  stage("Declined", "#ff5752", "failure"),
];
const SMART_STAGES: readonly DefaultStage[] = [
  stage("New", "#39a8ef", "initial"),
  stage("In progress", "#2fc6f6", "progress"),
  stage("Success", "#7bd500", "success"),
  stage("Failure", "#ff5752", "failure"),
];

/** The stages a new pipeline of this entity starts with, in order. */
export function defaultStages(entity: Entity): readonly DefaultStage[] {
  switch (entity.kind) {
    case "deal":
      return DEAL_STAGES;
    case "lead":
      return LEAD_STAGES;
    case "invoice":
      return INVOICE_STAGES;
    case "quote":
      return QUOTE_STAGES;
    case "smart":
      return SMART_STAGES;
  }
}
