// ESLint for the web client: typescript-eslint's recommended type-checked rules, the two rules of
// hooks (Preact's hooks follow React's rules), and the layers of src/ (see README.md, "Layout").
//
// The type-aware rules run on the TypeScript 6 API (the `typescript` devDependency), because
// typescript-eslint does not support TypeScript 7 yet; `npm run typecheck` uses TypeScript 7.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

/** `no-restricted-imports` for a layer that must not reach the layers above it. */
function layer(files, forbidden, why) {
  return {
    files,
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: forbidden, message: why }] }],
    },
  };
}

export default defineConfig(
  { ignores: ["dist/"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
  // This file and any other plain script are outside tsconfig.json: no type information.
  { files: ["**/*.js"], extends: [tseslint.configs.disableTypeChecked] },
  {
    files: ["**/*.ts", "**/*.tsx"],
    plugins: { "react-hooks": reactHooks },
    // Only the two rules of hooks: the plugin's other recommended rules describe the React
    // Compiler's model, which Preact does not use.
    rules: {
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
    },
  },
  // components → store → model, components → ui → model; store may use ui's pure helpers.
  layer(
    ["src/model/**"],
    ["../ui/*", "../store/*", "../components/*"],
    "the board model mirror imports only the model and libraries",
  ),
  layer(["src/ui/**"], ["../store/*", "../components/*"], "ui/ is pure logic over the model: no store, no components"),
  layer(["src/store/**"], ["../components/*"], "the store does not know the components"),
);
