// A people picker (the card's responsible, an activity's owner, user fields): a combobox that
// searches people by name (WAI-ARIA combobox pattern: the list follows the typing, arrows move,
// Enter picks, Escape closes). With accounts the people are the directory (`GET /api/v1/people`)
// and only they can be picked; in local mode they are the browser's roster, and any typed id is
// taken too. The chosen user id travels in a hidden input named `name`, so forms read it as before.

import { useId, useLayoutEffect, useRef, useState } from "preact/hooks";
import { t } from "../ui/i18n";
import type { Person } from "../ui/api";
import { avatarOf, resolvePerson, searchPeople } from "../ui/people";
import { colorFor } from "../ui/users";
import { initials } from "../ui/format";
import { useBoard } from "./context";
import { useSession } from "./session";

/** A roster entry (local mode) as a person of the directory. */
function rosterPerson(entry: { id: string; name: string }): Person {
  return {
    id: entry.id,
    name: entry.name,
    initials: initials(entry.name),
    color: colorFor(entry.id),
    email: null,
    role: null,
    boardRoles: {},
    disabled: false,
    active: true,
  };
}

export function PersonPicker({
  name,
  label,
  value,
  onCommit,
  autoFocus,
  describedBy,
}: {
  /** The form field that carries the chosen id. */
  name: string;
  label: string;
  /** The user id chosen to begin with ("" for nobody). */
  value: string;
  /** Called with the id once a person is picked (the card panel writes it at once). */
  onCommit?: (id: string) => void;
  /** Focus the input once shown (the card panel's inline editor). */
  autoFocus?: boolean;
  /** The id of what else describes the input (an error under it). */
  describedBy?: string | undefined;
}) {
  const session = useSession();
  const board = useBoard();
  // With accounts, only people of the directory; a server with tokens alone has nobody in it,
  // and then any id is taken, as in local mode.
  const free = !session.accounts || session.directory.people.length === 0;
  // The roster is read through a ref of the board (it changes without a new board object).
  const people: readonly Person[] = free ? board.roster().map(rosterPerson) : session.directory.people;
  const shown = (id: string) => (id === "" ? "" : (people.find((p) => p.id === id)?.name ?? board.nameOf(id)));

  const [chosen, setChosen] = useState(value);
  const [text, setText] = useState(() => shown(value));
  const [query, setQuery] = useState<string | null>(null);
  const [active, setActive] = useState(0);
  const [problem, setProblem] = useState<string | null>(null);
  const hiddenRef = useRef<HTMLInputElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();
  useLayoutEffect(() => {
    if (autoFocus === true) inputRef.current?.focus();
  }, [autoFocus]);
  const listId = `${id}-list`;

  const open = query !== null;
  const matches = open ? searchPeople(people, query) : [];

  const choose = (person: string) => {
    if (hiddenRef.current !== null) hiddenRef.current.value = person;
    setChosen(person);
    setText(shown(person));
    setQuery(null);
    setProblem(null);
    if (person !== chosen) onCommit?.(person);
  };

  /** What the typed text stands for, once the person leaves the field or presses Enter. */
  const settle = () => {
    if (text === shown(chosen)) {
      setQuery(null);
      return;
    }
    const resolved = resolvePerson(people, text, free);
    if (resolved === null) {
      setProblem(free ? t("picker.badId") : t("picker.choose"));
      setText(shown(chosen));
      setQuery(null);
      return;
    }
    choose(resolved);
  };

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) {
        setQuery("");
        setActive(0);
        return;
      }
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive((a) => (matches.length === 0 ? 0 : (a + step + matches.length) % matches.length));
    } else if (event.key === "Enter") {
      // Unchanged: Enter does what it does in the form (submits it).
      if (text === shown(chosen)) {
        setQuery(null);
        return;
      }
      // Changed: Enter picks; it never submits the form with a half-typed name.
      event.preventDefault();
      const exact = resolvePerson(people, text, false);
      const pick = matches[active];
      if (exact !== null && exact !== "") choose(exact);
      else if (open && pick !== undefined && text.trim() !== "") choose(pick.id);
      else settle();
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      event.stopPropagation();
      setText(shown(chosen));
      setQuery(null);
    }
  };

  const pick = matches[active];
  return (
    <div class="field person-picker" data-person-picker={name}>
      <label class="field-label" for={id}>
        {label}
      </label>
      <input ref={hiddenRef} type="hidden" name={name} value={chosen} />
      <input
        ref={inputRef}
        id={id}
        type="text"
        role="combobox"
        autoComplete="off"
        spellcheck={false}
        aria-autocomplete="list"
        aria-expanded={open}
        aria-controls={listId}
        aria-activedescendant={open && pick !== undefined ? `${id}-${pick.id}` : undefined}
        aria-invalid={problem !== null}
        aria-describedby={[problem !== null ? `${id}-problem` : "", describedBy ?? ""].join(" ").trim() || undefined}
        placeholder={free ? t("picker.nameOrId") : t("picker.searchByName")}
        value={text}
        onInput={(e) => {
          const typed = e.currentTarget.value;
          setText(typed);
          setQuery(typed);
          setActive(0);
          setProblem(null);
          // A form submitted right now reads what the text already names.
          const resolved = resolvePerson(people, typed, free);
          if (resolved !== null && hiddenRef.current !== null) hiddenRef.current.value = resolved;
          // The text names exactly one person: nothing left to choose, the list gets out of the way.
          const exact = resolvePerson(people, typed, false);
          const found = searchPeople(people, typed, 2);
          if (exact !== null && exact !== "" && found.length === 1 && found[0]!.id === exact) setQuery(null);
        }}
        onFocus={() => {
          setQuery("");
          setActive(0);
        }}
        onBlur={settle}
        onKeyDown={onKeyDown}
      />
      {/* In local mode a typed id nobody has is fine: no list to say so over the form. */}
      {open && (matches.length > 0 || !free) && (
        <ul class="person-options" id={listId} role="listbox" aria-label={label}>
          {matches.map((person, i) => {
            const look = avatarOf(session.directory, person.id, person.name);
            return (
              <li
                key={person.id}
                id={`${id}-${person.id}`}
                role="option"
                aria-selected={i === active}
                data-person-option={person.id}
                class={i === active ? "is-active" : undefined}
                // Keep the focus in the input, so its blur does not settle before the click.
                onMouseDown={(e) => e.preventDefault()}
                onClick={() => choose(person.id)}
              >
                <span class="avatar avatar-small" style={`--avatar:${person.color}`} aria-hidden="true">
                  {look.initials}
                </span>
                <span class="person-option-name">{person.name}</span>
                {person.email !== null && <span class="muted person-option-email">{person.email}</span>}
              </li>
            );
          })}
          {matches.length === 0 && (
            <li class="muted person-options-empty" role="presentation">
              {t("picker.noMatch")}
            </li>
          )}
        </ul>
      )}
      {problem !== null && (
        <span class="form-error" id={`${id}-problem`} role="alert">
          {problem}
        </span>
      )}
    </div>
  );
}
