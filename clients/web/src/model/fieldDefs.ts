// Reads the `fields` root (custom field definitions: id → { label, type, options }) the way
// board.ts reads everything else: leniently, never creating the root, in byte order of field id.
// Written by `defineField` (write.ts, mirroring Rust's `define_field`).

import * as Y from "yjs";
import { compareBytes } from "./order";
import { FIELD_KEY, FIELD_TYPES, ROOT, type FieldType } from "./schema";

export interface FieldDef {
  id: string;
  label: string;
  type: FieldType;
  /** The choices of an `enum` field. */
  options: string[];
}

/** Every custom field definition; entries with an unknown type read as `string` fields. */
export function readFieldDefs(doc: Y.Doc): FieldDef[] {
  if (!doc.share.has(ROOT.FIELDS)) return [];
  const defs: FieldDef[] = [];
  doc.getMap(ROOT.FIELDS).forEach((value, id) => {
    if (!(value instanceof Y.Map)) return;
    const label: unknown = value.get(FIELD_KEY.LABEL);
    const type: unknown = value.get(FIELD_KEY.TYPE);
    const options: unknown = value.get(FIELD_KEY.OPTIONS);
    const list = options instanceof Y.Array ? options.toArray() : Array.isArray(options) ? options : [];
    defs.push({
      id,
      label: typeof label === "string" && label !== "" ? label : id,
      type: (FIELD_TYPES as readonly unknown[]).includes(type) ? (type as FieldType) : "string",
      options: list.filter((o): o is string => typeof o === "string"),
    });
  });
  return defs.sort((a, b) => compareBytes(a.id, b.id));
}
