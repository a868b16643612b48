// The header's language switch: a small select of the languages (src/ui/i18n.ts); a choice is
// saved and the page renders again in it, with no reload.

import { LANGUAGE_NAMES, LANGUAGES, parseLanguage, setLanguage, t, useLanguage } from "../ui/i18n";

export function LanguageSwitch() {
  const language = useLanguage();
  return (
    <select
      class="language-switch"
      name="language"
      data-action="language"
      aria-label={t("language.label")}
      title={t("language.label")}
      onChange={(event) => {
        const chosen = parseLanguage(event.currentTarget.value);
        if (chosen !== null) setLanguage(chosen);
      }}
    >
      {LANGUAGES.map((l) => (
        <option key={l} value={l} lang={l} selected={l === language}>
          {LANGUAGE_NAMES[l]}
        </option>
      ))}
    </select>
  );
}
