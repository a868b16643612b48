// A stage's rules, for admins, under the stage editor (the pencil): the probability of winning
// (the weighted sum, the forecast), the days after which an idle card turns stale, and what a
// card must carry to enter the stage. Under a failure stage also the board's lost reasons, the
// list a lost reason is chosen from. One save, one transaction.

import { useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import { stageProbability } from "../model/requirements";
import { setLostReasons, setStageRules } from "../model/write";
import { allFields, builtInLabel } from "../ui/fields";
import { t } from "../ui/i18n";
import { formText } from "../ui/formData";
import { useBoard } from "./context";
import { attempt, FormError } from "./forms";

/** The built-in fields a stage may require, as the form lists them. */
const REQUIRABLE_BUILT_INS: readonly string[] = ["amount", "client", "email", "responsible", "closeDate", "lostReason"];

export function StageRulesForm({ stage }: { stage: Stage }) {
  const board = useBoard();
  const formRef = useRef<HTMLFormElement>(null);
  const [error, setError] = useState<string | null>(null);
  const snapshot = board.snapshot();
  const custom = allFields(snapshot.fieldDefs).filter((f) => !f.builtIn);
  const choices = [
    ...REQUIRABLE_BUILT_INS.map((id) => ({ id, label: builtInLabel(id) })),
    ...custom.map((f) => ({ id: f.id, label: f.label })),
  ];
  const isInitial = stage.kind === "initial";

  const save = (event: Event) => {
    event.preventDefault();
    const data = new FormData(formRef.current!);
    const probability = Number(formText(data, "probability"));
    if (!Number.isInteger(probability) || probability < 0 || probability > 100)
      return setError(t("rules.probabilityError"));
    const rotDays = Number(formText(data, "rotDays", "0") || "0");
    if (!Number.isInteger(rotDays) || rotDays < 0) return setError(t("rules.rotDaysError"));
    const required = isInitial
      ? undefined
      : choices.map((c) => c.id).filter((id) => data.get(`required-${id}`) === "on");
    const reasonsText = data.get("lostReasons");
    const reasons =
      typeof reasonsText === "string"
        ? reasonsText
            .split("\n")
            .map((r) => r.trim())
            .filter((r) => r !== "")
        : null;
    const refused = attempt(() =>
      board.doc.transact(() => {
        setStageRules(board.doc, stage.id, { probability, rotDays, ...(required ? { required } : {}) });
        if (reasons !== null) setLostReasons(board.doc, reasons);
      }),
    );
    if (refused !== null) return setError(refused);
    setError(null);
    board.announce(t("rules.saved", { stage: stage.name }));
    board.editStage(null);
  };

  return (
    <form
      ref={formRef}
      class="inline-form stage-rules-form"
      data-form="stage-rules"
      aria-label={t("rules.form", { stage: stage.name })}
      onSubmit={save}
    >
      <label class="field">
        <span class="field-label">{t("rules.probability")}</span>
        <input
          type="number"
          name="probability"
          min={0}
          max={100}
          step={1}
          defaultValue={String(stageProbability(stage))}
        />
      </label>
      <label class="field">
        <span class="field-label">{t("rules.rotDays")}</span>
        <input type="number" name="rotDays" min={0} step={1} defaultValue={String(stage.rotDays)} />
      </label>
      <fieldset class="field required-fields">
        <legend class="field-label">{t("rules.required")}</legend>
        {isInitial ? (
          <p class="muted">{t("rules.initial")}</p>
        ) : (
          choices.map((choice) => (
            <label key={choice.id} class="field field-check">
              <input
                type="checkbox"
                name={`required-${choice.id}`}
                data-required={choice.id}
                defaultChecked={stage.required.includes(choice.id)}
              />
              <span class="field-label">{choice.label}</span>
            </label>
          ))
        )}
      </fieldset>
      {stage.kind === "failure" && (
        <label class="field">
          <span class="field-label">{t("rules.lostReasons")}</span>
          <textarea name="lostReasons" rows={4} defaultValue={snapshot.settings.lostReasons.join("\n")} />
        </label>
      )}
      <FormError message={error} />
      <div class="form-actions">
        <button type="submit" class="button primary" data-action="save-stage-rules">
          {t("rules.save")}
        </button>
      </div>
    </form>
  );
}
