// Reading a submitted form. `FormData.get` answers a string, a File or null; the forms of funnel
// have no file inputs, so a field reads as its text, or as the fallback when the form has no such
// field.

/** The text of the field `name` of a submitted form, or `fallback` when there is none. */
export function formText(data: FormData, name: string, fallback = ""): string {
  const value = data.get(name);
  return typeof value === "string" ? value : fallback;
}
