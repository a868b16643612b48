// The home page: the pipelines of each entity (GET /api/v1/boards), and a form that creates one
// (POST /api/v1/boards) and opens it; that form is for admins only (with a token, the server
// lists only the boards the token opens). Admins archive a pipeline from its link (PATCH
// {"archived": true}, with Undo for a few seconds); "Show archived" lists the archived ones
// (GET ?archived=true), which open read-only and which admins restore.

import { useEffect, useRef, useState } from "preact/hooks";
import { parseEntity } from "../model/schema";
import { createBoard, listBoards, setBoardArchived, type BoardSummary } from "../ui/api";
import { ENTITY_SECTIONS, entityTitle, isValidSmartType } from "../ui/entities";
import { formText } from "../ui/formData";
import { formatDate } from "../ui/format";
import { currentLanguage, t, useLanguage } from "../ui/i18n";
import { boardPath, navigate, onLinkClick } from "../ui/route";
import type { Me, Permissions } from "../ui/auth";
import type { RosterEntry, User } from "../ui/users";
import { NOTICE_MS } from "./BoardPage";
import { Identity } from "./UserPicker";

interface HomeNotice {
  message: string;
  undo?: () => void;
}

export function HomePage({
  user,
  roster,
  onUser,
  onRoster,
  account,
  permissions,
}: {
  user: User;
  roster: readonly RosterEntry[];
  onUser: (id: string) => void;
  onRoster: (roster: RosterEntry[]) => void;
  account: Me | null;
  permissions: Permissions;
}) {
  const [boards, setBoards] = useState<BoardSummary[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [entity, setEntity] = useState("deal");
  const [createError, setCreateError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [showArchived, setShowArchived] = useState(false);
  const [archived, setArchived] = useState<BoardSummary[] | null>(null);
  const [notice, setNotice] = useState<HomeNotice | null>(null);
  const noticeTimer = useRef<number | undefined>(undefined);
  const admin = permissions.createBoards;
  const language = useLanguage();

  const say = (next: HomeNotice) => {
    window.clearTimeout(noticeTimer.current);
    setNotice(next);
    noticeTimer.current = window.setTimeout(() => setNotice(null), NOTICE_MS);
  };
  useEffect(() => () => window.clearTimeout(noticeTimer.current), []);

  useEffect(() => {
    if (!showArchived) return;
    const abort = new AbortController();
    setArchived(null);
    listBoards(abort.signal, true)
      .then((list) => setArchived(list))
      .catch((error: unknown) => {
        if (abort.signal.aborted) return;
        setArchived([]);
        say({ message: t("home.archivedLoadError", { error: String(error) }) });
      });
    return () => abort.abort();
  }, [showArchived]);

  /** Archives (or restores) `board`, moving it between the two lists; Undo does the reverse. */
  const setArchive = async (board: BoardSummary, archive: boolean, offerUndo = true) => {
    try {
      await setBoardArchived(board.id, archive);
    } catch (error) {
      say({
        message: t(archive ? "home.archiveError" : "home.restoreError", { name: board.name, error: String(error) }),
      });
      return;
    }
    const moved = { ...board, archivedAt: archive ? Date.now() : null };
    const without = (list: BoardSummary[] | null) => list?.filter((b) => b.id !== board.id) ?? null;
    if (archive) {
      setBoards(without);
      setArchived((list) => (list === null ? null : [moved, ...(without(list) ?? [])]));
    } else {
      setArchived(without);
      setBoards((list) => [...(without(list) ?? []), moved].sort((a, b) => a.createdAt - b.createdAt));
    }
    say({
      message: t(archive ? "home.archived" : "home.restored", { name: board.name }),
      ...(offerUndo ? { undo: () => void setArchive(moved, !archive, false) } : {}),
    });
  };

  useEffect(() => {
    document.title = t("home.documentTitle");
  }, [language]);

  useEffect(() => {
    const abort = new AbortController();
    listBoards(abort.signal)
      .then((list) => setBoards(list))
      .catch((error: unknown) => {
        if (abort.signal.aborted) return;
        setLoadError(error instanceof Error ? error.message : String(error));
        setBoards([]);
      });
    return () => abort.abort();
  }, []);

  const smartTypes = [...new Set((boards ?? []).map((b) => b.entity).filter((e) => e.startsWith("smart:")))].sort();
  const sections = [...ENTITY_SECTIONS.map((s) => s.entity), ...smartTypes];
  const others = (boards ?? []).filter((b) => !sections.includes(b.entity));

  const create = async (event: SubmitEvent) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    let chosen = formText(data, "entity", "deal");
    if (chosen === "smart") {
      const typeId = formText(data, "smart-type").trim();
      if (!isValidSmartType(typeId)) {
        setCreateError(t("home.badSmartType"));
        return;
      }
      chosen = `smart:${typeId}`;
    }
    const parsed = parseEntity(chosen);
    if (parsed === null) {
      setCreateError(t("home.unknownKind", { kind: chosen }));
      return;
    }
    const name = formText(data, "name").trim() || null;
    setBusy(true);
    setCreateError(null);
    try {
      const board = await createBoard(chosen, name, currentLanguage());
      navigate(boardPath(board.id));
    } catch (error) {
      setCreateError(error instanceof Error ? error.message : String(error));
      setBusy(false);
    }
  };

  const renderSection = (key: string, list: BoardSummary[], extra?: string) => (
    <section key={key} class="entity-section" data-entity-section={key} aria-labelledby={`section-${key}`}>
      <h2 id={`section-${key}`}>{extra ?? entityTitle(key)}</h2>
      {list.length === 0 ? (
        <p class="muted">{boards === null ? t("common.loading") : t("home.noPipeline")}</p>
      ) : (
        <ul class="board-links">
          {list.map((b) => (
            <li key={b.id}>
              <a href={boardPath(b.id)} data-board-link={b.id} onClick={onLinkClick}>
                <span class="board-link-name">{b.name}</span>
                {b.createdAt > 0 && (
                  <span class="board-link-meta">{t("home.created", { date: formatDate(b.createdAt) })}</span>
                )}
              </a>
              {admin && (
                <button
                  type="button"
                  class="button board-archive"
                  data-action="archive-board"
                  aria-label={t("home.archiveLabel", { name: b.name })}
                  onClick={() => void setArchive(b, true)}
                >
                  {t("home.archive")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );

  return (
    <div class="page home-page">
      <header class="topbar">
        <a href="/" class="brand" onClick={onLinkClick}>
          funnel
        </a>
        <h1 class="topbar-title">{t("home.title")}</h1>
        <span class="spacer" />
        <Identity account={account} user={user} roster={roster} onUser={onUser} onRoster={onRoster} />
      </header>
      <main class="home">
        {loadError !== null && (
          <p class="form-error" role="alert">
            {t("home.loadError", { error: loadError })}
          </p>
        )}
        <div class={permissions.createBoards ? "home-grid" : "home-grid home-grid-single"}>
          <div class="sections">
            {ENTITY_SECTIONS.map((s) =>
              renderSection(
                s.entity,
                (boards ?? []).filter((b) => b.entity === s.entity),
              ),
            )}
            <h2 class="group-title">{t("home.smartProcesses")}</h2>
            {smartTypes.length === 0 && <p class="muted">{t("home.noSmartProcess")}</p>}
            {smartTypes.map((t) =>
              renderSection(
                t,
                (boards ?? []).filter((b) => b.entity === t),
              ),
            )}
            {others.length > 0 && renderSection("other", others, t("entity.other"))}
            <div class="archived-toggle">
              <button
                type="button"
                class="button"
                data-action="show-archived"
                aria-expanded={showArchived}
                onClick={() => setShowArchived((shown) => !shown)}
              >
                {showArchived ? t("home.hideArchived") : t("home.showArchived")}
              </button>
            </div>
            {showArchived && (
              <section class="entity-section" data-archived-boards="" aria-labelledby="section-archived">
                <h2 id="section-archived">{t("home.archivedPipelines")}</h2>
                {archived === null ? (
                  <p class="muted">{t("common.loading")}</p>
                ) : archived.length === 0 ? (
                  <p class="muted">{t("home.noArchived")}</p>
                ) : (
                  <ul class="board-links">
                    {archived.map((b) => (
                      <li key={b.id} data-archived-board={b.id}>
                        <a href={boardPath(b.id)} data-board-link={b.id} onClick={onLinkClick}>
                          <span class="board-link-name">{b.name}</span>
                          <span class="board-link-meta">
                            {t("home.readOnly", { entity: entityTitle(b.entity) })}
                            {b.archivedAt !== null && t("home.archivedOn", { date: formatDate(b.archivedAt) })}
                          </span>
                        </a>
                        {admin && (
                          <button
                            type="button"
                            class="button"
                            data-action="restore-board"
                            aria-label={t("home.restoreLabel", { name: b.name })}
                            onClick={() => void setArchive(b, false)}
                          >
                            {t("home.restore")}
                          </button>
                        )}
                      </li>
                    ))}
                  </ul>
                )}
              </section>
            )}
          </div>
          {permissions.createBoards && (
            <form
              class="card-form new-board"
              data-form="new-board"
              onSubmit={(event) => void create(event)}
              aria-labelledby="new-board-title"
            >
              <h2 id="new-board-title">{t("home.newPipeline")}</h2>
              <label class="field">
                <span class="field-label">{t("home.kind")}</span>
                <select name="entity" value={entity} onChange={(e) => setEntity(e.currentTarget.value)}>
                  {ENTITY_SECTIONS.map((s) => (
                    <option key={s.entity} value={s.entity}>
                      {t(s.title)}
                    </option>
                  ))}
                  {smartTypes.map((t) => (
                    <option key={t} value={t}>
                      {entityTitle(t)}
                    </option>
                  ))}
                  <option value="smart">{t("home.newSmartProcess")}</option>
                </select>
              </label>
              {entity === "smart" && (
                <label class="field">
                  <span class="field-label">{t("home.smartType")}</span>
                  <input
                    type="text"
                    name="smart-type"
                    required
                    pattern="[A-Za-z0-9_\-]{1,32}"
                    autoComplete="off"
                    placeholder={t("home.smartTypePlaceholder")}
                  />
                </label>
              )}
              <label class="field">
                <span class="field-label">{t("home.name")}</span>
                <input
                  type="text"
                  name="name"
                  maxLength={200}
                  autoComplete="off"
                  placeholder={t("home.namePlaceholder")}
                />
              </label>
              {createError !== null && (
                <p class="form-error" role="alert">
                  {createError}
                </p>
              )}
              <button type="submit" class="button primary" disabled={busy}>
                {busy ? t("home.creating") : t("home.create")}
              </button>
            </form>
          )}
        </div>
      </main>
      {notice !== null && (
        <div class="notices" role="alert">
          <p class="notice notice-info" data-notice="board-archive">
            <span>{notice.message}</span>
            {notice.undo !== undefined && (
              <button
                type="button"
                class="button"
                data-action="undo"
                onClick={() => {
                  notice.undo?.();
                  setNotice(null);
                }}
              >
                {t("common.undo")}
              </button>
            )}
          </p>
        </div>
      )}
    </div>
  );
}
