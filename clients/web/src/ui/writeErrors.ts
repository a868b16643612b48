// A refused write in the reader's language. The model's refusals (model/write.ts `BoardError`,
// model/order.ts `OrderError`) keep Rust's words for the shared vectors, and carry their kind
// and parts, which the catalogue's `writeError.*` messages say.

import type { OrderError } from "../model/order";
import { BoardError } from "../model/write";
import { t, type Key } from "./i18n";

/** The sentence for a refused write, capitalised, in the current language. */
export function writeErrorText(error: BoardError | OrderError): string {
  if (!(error instanceof BoardError)) return t("writeError.order");
  const params: Record<string, string> = { ...error.params };
  if (error.kind === "badName") params.subject = t(`writeError.subject.${error.params.subject}` as Key);
  if (error.kind === "stageOrder") params.rule = t(`writeError.rule.${error.params.rule}` as Key);
  return t(`writeError.${error.kind}` as Key, params);
}
