// Who am I. In local mode: a select of the local roster, and a small editor to add people or
// rename them (src/ui/users.ts). Signed in (or with a token): the person's avatar, name and role,
// nothing to pick, with the People page for admins and Sign out for a person who signed in
// (`Account`, below). `Identity` shows whichever applies.

import { useRef, useState } from "preact/hooks";
import type { Me } from "../ui/auth";
import { initials } from "../ui/format";
import { formText } from "../ui/formData";
import { t, type Key } from "../ui/i18n";
import { avatarOf } from "../ui/people";
import { onLinkClick } from "../ui/route";
import { colorFor, isValidUserId, type RosterEntry, type User } from "../ui/users";
import { LanguageSwitch } from "./LanguageSwitch";
import { useSession } from "./session";

const ROLE_LABELS: Record<Me["role"], Key> = { viewer: "role.viewer", member: "role.member", admin: "role.admin" };

/** The header's user: the language switch, then the signed-in account or the local picker. */
export function Identity(props: {
  account: Me | null;
  user: User;
  roster: readonly RosterEntry[];
  onUser: (id: string) => void;
  onRoster: (roster: RosterEntry[]) => void;
}) {
  return (
    <>
      <LanguageSwitch />
      {props.account !== null ? <Account me={props.account} /> : <UserPicker {...props} />}
    </>
  );
}

/** The signed-in user: avatar, name and role; People (admins) and Sign out (a session). */
export function Account({ me }: { me: Me }) {
  const session = useSession();
  const [busy, setBusy] = useState(false);
  const look = avatarOf(session.directory, me.user, me.name);
  const signOut = () => {
    setBusy(true);
    session.signOut().catch(() => setBusy(false));
  };
  return (
    <div class="account" data-me={me.user} data-role={me.role}>
      <span class="avatar" style={`--avatar:${look.color}`} aria-hidden="true">
        {look.initials}
      </span>
      <span class="account-name">{me.name}</span>
      <span class="role-badge" title={t("account.signedInAs", { who: me.email ?? me.user })}>
        {t(ROLE_LABELS[me.role])}
      </span>
      {session.accounts && me.role === "admin" && (
        <a href="/people" class="button small" data-action="people" onClick={onLinkClick}>
          {t("account.people")}
        </a>
      )}
      {me.signedInWith === "session" && (
        <button type="button" class="button small" data-action="sign-out" disabled={busy} onClick={signOut}>
          {t("account.signOut")}
        </button>
      )}
    </div>
  );
}

export function UserPicker({
  user,
  roster,
  onUser,
  onRoster,
}: {
  user: User;
  roster: readonly RosterEntry[];
  onUser: (id: string) => void;
  onRoster: (roster: RosterEntry[]) => void;
}) {
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const dialogRef = useRef<HTMLDivElement>(null);

  const add = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const id = formText(data, "user-id").trim();
    const name = formText(data, "user-name").trim();
    if (!isValidUserId(id)) return setError(t("picker.badId"));
    if (roster.some((r) => r.id === id)) return setError(t("picker.already", { id }));
    setError(null);
    onRoster([...roster, { id, name: name || id }]);
    form.reset();
  };

  return (
    <div class="user-picker">
      <span class="avatar" style={`--avatar:${colorFor(user.id)}`} aria-hidden="true">
        {initials(user.name)}
      </span>
      <label class="visually-hidden" for="current-user">
        {t("picker.currentUser")}
      </label>
      <select id="current-user" value={user.id} onChange={(e) => onUser(e.currentTarget.value)}>
        {roster.map((r) => (
          <option key={r.id} value={r.id}>
            {r.name}
          </option>
        ))}
      </select>
      <button type="button" class="button small" aria-expanded={editing} onClick={() => setEditing((on) => !on)}>
        {t("account.people")}
      </button>
      {editing && (
        <div
          ref={dialogRef}
          class="popover"
          role="dialog"
          aria-label={t("account.people")}
          onKeyDown={(e) => {
            if (e.key === "Escape") setEditing(false);
          }}
        >
          <p class="hint">{t("picker.hint")}</p>
          <ul class="rows">
            {roster.map((r) => (
              <li key={r.id} class="roster-row">
                <span class="avatar avatar-small" style={`--avatar:${colorFor(r.id)}`} aria-hidden="true">
                  {initials(r.name)}
                </span>
                <label class="field field-inline">
                  <span class="field-label">{r.id}</span>
                  <input
                    type="text"
                    defaultValue={r.name}
                    aria-label={t("picker.nameOf", { id: r.id })}
                    onChange={(e) => {
                      const name = e.currentTarget.value.trim() || r.id;
                      onRoster(roster.map((x) => (x.id === r.id ? { ...x, name } : x)));
                    }}
                  />
                </label>
                {r.id !== user.id && (
                  <button
                    type="button"
                    class="icon-button"
                    aria-label={t("picker.remove", { name: r.name })}
                    onClick={() => onRoster(roster.filter((x) => x.id !== r.id))}
                  >
                    ×
                  </button>
                )}
              </li>
            ))}
          </ul>
          <form class="form-row" onSubmit={add} aria-label={t("picker.add")}>
            <label class="field">
              <span class="field-label">{t("picker.id")}</span>
              <input type="text" name="user-id" required autoComplete="off" />
            </label>
            <label class="field">
              <span class="field-label">{t("home.name")}</span>
              <input type="text" name="user-name" autoComplete="off" />
            </label>
            <button type="submit" class="button small">
              {t("picker.addButton")}
            </button>
          </form>
          {error && (
            <p class="form-error" role="alert">
              {error}
            </p>
          )}
          <button type="button" class="button small" onClick={() => setEditing(false)}>
            {t("picker.done")}
          </button>
        </div>
      )}
    </div>
  );
}
