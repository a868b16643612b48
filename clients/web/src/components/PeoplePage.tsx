// The People page, `/people`, for admins (docs/accounts.md): the directory with each person's
// e-mail, state and default role; invite someone and hand them the one-time link; change a
// person's default role and their role on single boards; disable and enable people. Every
// change is one `PATCH /api/v1/people/{id}`; the server closes the sockets a change takes away.
// Others never see the page (the header has no link to it, and the server refuses them).

import { useEffect, useRef, useState } from "preact/hooks";
import {
  invitePerson,
  listBoards,
  listPeople,
  patchPerson,
  type BoardSummary,
  type Person,
  type PersonPatch,
} from "../ui/api";
import { ROLES, type Role } from "../ui/auth";
import { formatDateTime } from "../ui/format";
import { formText } from "../ui/formData";
import { avatarOf, directoryOf } from "../ui/people";
import { onLinkClick } from "../ui/route";
import type { RosterEntry, User } from "../ui/users";
import { useSession } from "./session";
import { t } from "../ui/i18n";
import { Identity } from "./UserPicker";

/** A role's name in the page's language. */
const roleName = (role: Role): string => t(`role.${role}`);

/** A link just made: shown once, with a copy button. */
interface MadeLink {
  person: Person;
  link: string;
  expiresAt: number;
}

export function PeoplePage(props: {
  user: User;
  roster: readonly RosterEntry[];
  onUser: (id: string) => void;
  onRoster: (roster: RosterEntry[]) => void;
}) {
  const session = useSession();
  const isAdmin = session.accounts && session.me?.role === "admin";
  const [people, setPeople] = useState<Person[] | null>(null);
  const [boards, setBoards] = useState<BoardSummary[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [made, setMade] = useState<MadeLink | null>(null);
  const [status, setStatus] = useState("");

  useEffect(() => {
    document.title = t("peoplePage.documentTitle");
  }, []);
  useEffect(() => {
    if (!isAdmin) return;
    const abort = new AbortController();
    Promise.all([listPeople(abort.signal), listBoards(abort.signal)])
      .then(([list, all]) => {
        setPeople(list);
        setBoards(all);
      })
      .catch((failure: unknown) => {
        if (!abort.signal.aborted) setError(t("peoplePage.readError", { error: messageOf(failure) }));
      });
    return () => abort.abort();
  }, [isAdmin]);

  /** A person as the server now has them, in place of the old row. */
  const replace = (person: Person) => {
    setPeople((list) =>
      list === null
        ? [person]
        : list.some((p) => p.id === person.id)
          ? list.map((p) => (p.id === person.id ? person : p))
          : [...list, person],
    );
    session.reloadDirectory();
  };

  const change = (person: Person, patch: PersonPatch, done: string) => {
    setError(null);
    patchPerson(person.id, patch)
      .then((after) => {
        replace(after);
        setStatus(done);
      })
      .catch((failure: unknown) => setError(`${person.name}: ${messageOf(failure)}`));
  };

  const invite = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const email = formText(data, "email").trim();
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) return setError(t("peoplePage.enterEmail"));
    const role = formText(data, "role", "member") as Role;
    setError(null);
    invitePerson(email, formText(data, "name"), role)
      .then((answer) => {
        replace(answer.person);
        setMade(answer);
        setStatus(t("peoplePage.linkMade", { name: answer.person.name }));
        form.reset();
        // reset() picks the first option (Preact's defaultValue is no default): member again.
        const role = form.elements.namedItem("role");
        if (role instanceof HTMLSelectElement) role.value = "member";
      })
      .catch((failure: unknown) => setError(messageOf(failure)));
  };

  const newLink = (person: Person) => {
    if (person.email === null) return;
    setError(null);
    invitePerson(person.email, "", person.role ?? "member")
      .then((answer) => {
        setMade(answer);
        setStatus(t("peoplePage.newLinkMade", { name: person.name }));
      })
      .catch((failure: unknown) => setError(`${person.name}: ${messageOf(failure)}`));
  };

  return (
    <div class="page people-page" data-page="people">
      <header class="topbar">
        <a href="/" class="brand" onClick={onLinkClick}>
          funnel
        </a>
        <nav class="crumbs" aria-label={t("board.breadcrumb")}>
          <a href="/" onClick={onLinkClick}>
            {t("board.boards")}
          </a>
          <span aria-hidden="true">/</span>
          <h1>{t("peoplePage.title")}</h1>
        </nav>
        <span class="spacer" />
        <Identity account={session.me} {...props} />
      </header>
      <main class="people-main">
        {!session.accounts && (
          <div class="refusal" data-people-refused="local">
            <p class="refusal-message">{t("peoplePage.noAccounts")}</p>
            <p class="hint">{t("peoplePage.noAccountsHint")}</p>
          </div>
        )}
        {session.accounts && !isAdmin && (
          <div class="refusal" data-people-refused="role">
            <p class="refusal-message">{t("peoplePage.adminsOnly")}</p>
            <p class="hint">
              <a href="/" onClick={onLinkClick}>
                {t("peoplePage.back")}
              </a>
            </p>
          </div>
        )}
        {isAdmin && (
          <>
            <section class="panel-section people-invite" aria-labelledby="invite-heading">
              <h2 id="invite-heading">{t("peoplePage.inviteSomeone")}</h2>
              <form class="form-row" data-form="invite-person" onSubmit={invite} noValidate>
                <label class="field">
                  <span class="field-label">{t("peoplePage.email")}</span>
                  <input type="email" name="email" required autoComplete="off" />
                </label>
                <label class="field">
                  <span class="field-label">{t("home.name")}</span>
                  <input type="text" name="name" autoComplete="off" maxLength={200} />
                </label>
                <label class="field">
                  <span class="field-label">{t("peoplePage.roleEverywhere")}</span>
                  <select name="role">
                    {ROLES.map((r) => (
                      <option key={r} value={r} selected={r === "member"}>
                        {roleName(r)}
                      </option>
                    ))}
                  </select>
                </label>
                <button type="submit" class="button primary">
                  {t("peoplePage.invite")}
                </button>
              </form>
              {made !== null && <LinkBox made={made} onClose={() => setMade(null)} />}
            </section>
            {error !== null && (
              <p class="form-error" data-people-error="" role="alert">
                {error}
              </p>
            )}
            <p class="visually-hidden" role="status">
              {status}
            </p>
            <section class="panel-section" aria-labelledby="people-heading">
              <h2 id="people-heading">{t("peoplePage.title")}</h2>
              {people === null ? (
                <p class="muted">{t("common.loading")}</p>
              ) : (
                <ul class="people-list">
                  {people.map((person) => (
                    <PersonRow
                      key={person.id}
                      person={person}
                      self={person.id === session.me?.user}
                      boards={boards}
                      onChange={(patch, done) => change(person, patch, done)}
                      onNewLink={() => newLink(person)}
                    />
                  ))}
                </ul>
              )}
            </section>
          </>
        )}
      </main>
    </div>
  );
}

function messageOf(failure: unknown): string {
  const text = failure instanceof Error ? failure.message : String(failure);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The one-time link just made, with a copy button: shown once, never stored. */
function LinkBox({ made, onClose }: { made: MadeLink; onClose: () => void }) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const field = useRef<HTMLInputElement>(null);
  const copy = () => {
    field.current?.select();
    navigator.clipboard.writeText(made.link).then(
      () => setCopied("yes"),
      () => setCopied("no"),
    );
  };
  return (
    <div class="invite-link" data-invite-link-for={made.person.id} role="group" aria-label={t("peoplePage.inviteLink")}>
      <p>
        {t("peoplePage.giveLink", {
          name: made.person.name,
          email: made.person.email ?? "",
          until: formatDateTime(made.expiresAt),
        })}
      </p>
      <div class="form-row">
        <input
          ref={field}
          type="text"
          readOnly
          value={made.link}
          data-invite-link=""
          aria-label={t("peoplePage.inviteLink")}
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" class="button" data-action="copy-invite-link" onClick={copy}>
          {t("peoplePage.copy")}
        </button>
        <button type="button" class="button" onClick={onClose}>
          {t("peoplePage.done")}
        </button>
      </div>
      {copied === "yes" && <p class="hint">{t("peoplePage.copied")}</p>}
      {copied === "no" && <p class="hint">{t("peoplePage.notCopied")}</p>}
    </div>
  );
}

function PersonRow({
  person,
  self,
  boards,
  onChange,
  onNewLink,
}: {
  person: Person;
  self: boolean;
  boards: readonly BoardSummary[];
  onChange: (patch: PersonPatch, done: string) => void;
  onNewLink: () => void;
}) {
  const [open, setOpen] = useState(false);
  const look = avatarOf(directoryOf([person]), person.id);
  const state = t(person.disabled ? "peoplePage.disabled" : person.active ? "peoplePage.active" : "peoplePage.invited");
  const boardName = (id: string) => boards.find((b) => b.id === id)?.name ?? id;
  const own = Object.entries(person.boardRoles);
  const others = boards.filter((b) => person.boardRoles[b.id] === undefined);

  const addBoardRole = (event: SubmitEvent) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const board = formText(data, "board");
    const role = formText(data, "role", "member") as Role;
    if (board === "") return;
    onChange(
      { boardRoles: { [board]: role } },
      t("peoplePage.isOn", { name: person.name, role: roleName(role), board: boardName(board) }),
    );
  };

  return (
    <li
      class={`person-row${person.disabled ? " is-disabled" : ""}`}
      data-person-id={person.id}
      data-person-email={person.email ?? ""}
      data-person-state={person.disabled ? "disabled" : person.active ? "active" : "invited"}
    >
      <div class="person-main">
        <span class="avatar" style={`--avatar:${look.color}`} aria-hidden="true">
          {look.initials}
        </span>
        <span class="person-name">
          <span>
            <strong>{person.name}</strong>
            {self && <span class="muted">{t("peoplePage.you")}</span>}
          </span>
          <span class="muted person-email">{person.email}</span>
        </span>
        <span class="person-state">{state}</span>
        <label class="field field-inline">
          <span class="field-label">{t("peoplePage.role")}</span>
          <select
            data-person-role=""
            value={person.role ?? "member"}
            disabled={self}
            onChange={(e) => {
              const role = e.currentTarget.value as Role;
              onChange({ role }, t("peoplePage.isNow", { name: person.name, role: roleName(role) }));
            }}
          >
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {roleName(r)}
              </option>
            ))}
          </select>
        </label>
        <span class="person-actions">
          <button
            type="button"
            class="button small"
            aria-expanded={open}
            data-action="board-roles"
            onClick={() => setOpen((o) => !o)}
          >
            {own.length > 0 ? t("peoplePage.boardsCount", { count: own.length }) : t("peoplePage.boards")}
          </button>
          {!person.disabled && (
            <button type="button" class="button small" data-action="new-link" onClick={onNewLink}>
              {person.active ? t("peoplePage.newPasswordLink") : t("peoplePage.newInviteLink")}
            </button>
          )}
          {!self &&
            (person.disabled ? (
              <button
                type="button"
                class="button small"
                data-action="enable-person"
                onClick={() => onChange({ disabled: false }, t("peoplePage.enabled", { name: person.name }))}
              >
                {t("peoplePage.enable")}
              </button>
            ) : (
              <button
                type="button"
                class="button small danger-quiet"
                data-action="disable-person"
                onClick={() => onChange({ disabled: true }, t("peoplePage.disabledEverywhere", { name: person.name }))}
              >
                {t("peoplePage.disable")}
              </button>
            ))}
        </span>
      </div>
      {open && (
        <div class="person-boards" data-person-boards="">
          {own.length === 0 && <p class="muted">{t("peoplePage.sameRole")}</p>}
          <ul class="rows">
            {own.map(([board, role]) => (
              <li key={board} class="form-row" data-board-role={board}>
                <span>{boardName(board)}</span>
                <select
                  aria-label={t("peoplePage.roleOn", { board: boardName(board) })}
                  value={role}
                  onChange={(e) => {
                    const next = e.currentTarget.value as Role;
                    onChange(
                      { boardRoles: { [board]: next } },
                      t("peoplePage.isOn", { name: person.name, role: roleName(next), board: boardName(board) }),
                    );
                  }}
                >
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {roleName(r)}
                    </option>
                  ))}
                </select>
                <button
                  type="button"
                  class="button small"
                  onClick={() =>
                    onChange(
                      { boardRoles: { [board]: null } },
                      t("peoplePage.usual", { name: person.name, board: boardName(board) }),
                    )
                  }
                >
                  {t("peoplePage.useUsual")}
                </button>
              </li>
            ))}
          </ul>
          {others.length > 0 && (
            <form class="form-row" data-form="board-role" onSubmit={addBoardRole}>
              <label class="field">
                <span class="field-label">{t("peoplePage.board")}</span>
                <select name="board">
                  {others.map((b) => (
                    <option key={b.id} value={b.id}>
                      {b.name}
                    </option>
                  ))}
                </select>
              </label>
              <label class="field">
                <span class="field-label">{t("peoplePage.roleThere")}</span>
                <select name="role">
                  {ROLES.map((r) => (
                    <option key={r} value={r} selected={r === "member"}>
                      {roleName(r)}
                    </option>
                  ))}
                </select>
              </label>
              <button type="submit" class="button small">
                {t("peoplePage.set")}
              </button>
            </form>
          )}
        </div>
      )}
    </li>
  );
}
