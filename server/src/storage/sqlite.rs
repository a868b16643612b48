//! The embedded default: SQLite in the data directory, zero set-up.
//!
//! Writes go through one writer thread that owns the write connection: it takes every job that
//! is queued when it wakes up and commits them in one transaction (group commit), so a burst of
//! updates from many rooms costs one fsync. Reads (loading a board, compaction input) use a
//! separate connection; WAL mode lets them run beside the writer.

mod accounts;
mod webhooks;

use super::{
    Appended, BoardMeta, InboundMail, KEY_IN_FLIGHT_MS, KEY_LIFETIME_MS, KeptResponse, KeyClaim,
    KeyRequest, MAIL_IN_FLIGHT_MS, MAX_CHANGES_PAGE, MailClaim, Seq, Storage, StorageError,
    StoredBoard, StoredChange, TimelineEvent, migration_checksum, unrecorded_migrations,
};
use crate::clock::{Clock, SystemClock};
use crate::feed::{ChangeEvent, ChangeFilter, NewChange};
use async_trait::async_trait;
use bytes::Bytes;
use funnel_protocol::BoardId;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The database file inside the data directory.
pub const DB_FILE: &str = "funnel.db";

/// Jobs waiting for the writer. When full, appenders wait: back-pressure reaches the rooms, and
/// through their bounded channels the sockets, instead of memory growing.
const WRITER_QUEUE: usize = 4096;

/// The most jobs committed in one transaction: bounds the latency of the first job in a batch.
const MAX_GROUP_COMMIT: usize = 512;

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE boards (
        id         TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE updates (
        board TEXT    NOT NULL,
        seq   INTEGER NOT NULL,
        data  BLOB    NOT NULL,
        PRIMARY KEY (board, seq)
    ) WITHOUT ROWID;
    CREATE TABLE snapshots (
        board TEXT    PRIMARY KEY,
        seq   INTEGER NOT NULL,
        data  BLOB    NOT NULL
    ) WITHOUT ROWID;
"#,
    r#"
    ALTER TABLE boards ADD COLUMN entity TEXT NOT NULL DEFAULT 'deal';
    ALTER TABLE boards ADD COLUMN name   TEXT NOT NULL DEFAULT '';
"#,
    r#"
    CREATE TABLE wakeups (
        board TEXT    PRIMARY KEY,
        at    INTEGER NOT NULL
    ) WITHOUT ROWID;
"#,
    r#"
    CREATE TABLE timeline (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        board     TEXT    NOT NULL,
        card      TEXT    NOT NULL,
        at        INTEGER NOT NULL,
        kind      TEXT    NOT NULL,
        direction TEXT    NOT NULL,
        user      TEXT    NOT NULL,
        text      TEXT    NOT NULL
    );
    CREATE INDEX timeline_by_card ON timeline (board, card, id);
"#,
    r#"
    ALTER TABLE boards ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
    CREATE TABLE idempotency_keys (
        caller       TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        fingerprint  TEXT    NOT NULL,
        token        TEXT    NOT NULL,
        claimed_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        -- NULL while the request is in flight.
        status       INTEGER,
        content_type TEXT,
        location     TEXT,
        body         BLOB,
        PRIMARY KEY (caller, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
"#,
    r#"
    CREATE TABLE inbound_mail (
        board        TEXT    NOT NULL,
        message_id   TEXT    NOT NULL,
        claimed_at   INTEGER NOT NULL,
        -- NULL while the message is being taken.
        card         TEXT,
        event_id     INTEGER,
        subject      TEXT    NOT NULL DEFAULT '',
        from_address TEXT    NOT NULL DEFAULT '',
        from_name    TEXT    NOT NULL DEFAULT '',
        at           INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (board, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX inbound_mail_by_event ON inbound_mail (board, event_id);
"#,
    // The change feed (`crate::feed`): AUTOINCREMENT, so that an id is never given out again
    // after the retention sweep deleted the newest events. `data` is the event's JSON text.
    r#"
    CREATE TABLE change_events (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        board TEXT    NOT NULL,
        kind  TEXT    NOT NULL,
        at    INTEGER NOT NULL,
        data  TEXT    NOT NULL
    );
    CREATE INDEX change_events_by_board ON change_events (board, id);
    CREATE INDEX change_events_by_time ON change_events (at);
"#,
    // Webhooks: endpoints with their cursor into the change feed, the outbox of deliveries,
    // and the delivery log (storage/webhooks.rs).
    r#"
    CREATE TABLE webhooks (
        id              TEXT    PRIMARY KEY,
        url             TEXT    NOT NULL,
        -- JSON arrays; empty: every event type, every board.
        events          TEXT    NOT NULL,
        boards          TEXT    NOT NULL,
        secret          TEXT    NOT NULL,
        previous_secret TEXT,
        previous_until  INTEGER NOT NULL DEFAULT 0,
        disabled_at     INTEGER,
        disabled_reason TEXT,
        cursor          INTEGER NOT NULL,
        created_at      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE webhook_deliveries (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint      TEXT    NOT NULL,
        event         INTEGER NOT NULL,
        payload       TEXT    NOT NULL,
        -- Attempts made so far.
        attempt       INTEGER NOT NULL DEFAULT 0,
        -- pending, delivered, failed or cancelled.
        state         TEXT    NOT NULL,
        next_at       INTEGER NOT NULL,
        claim         TEXT    NOT NULL DEFAULT '',
        claimed_until INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        done_at       INTEGER
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
    CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint, state);
    CREATE INDEX webhook_deliveries_done ON webhook_deliveries (done_at) WHERE done_at IS NOT NULL;
    CREATE TABLE webhook_attempts (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint   TEXT    NOT NULL,
        delivery   INTEGER NOT NULL,
        event      INTEGER NOT NULL,
        attempt    INTEGER NOT NULL,
        status     INTEGER,
        latency_ms INTEGER NOT NULL,
        error      TEXT,
        outcome    TEXT    NOT NULL,
        at         INTEGER NOT NULL
    );
    CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint, id);
    CREATE INDEX webhook_attempts_by_time ON webhook_attempts (at);
"#,
    // Accounts (storage/accounts.rs): people, their one-time invites and sign-in sessions,
    // invites and sessions kept under the SHA-256 of their secret.
    r#"
    CREATE TABLE people (
        id            TEXT    PRIMARY KEY,
        email         TEXT    NOT NULL UNIQUE,
        name          TEXT    NOT NULL,
        role          TEXT    NOT NULL,
        -- A JSON object: board id -> role.
        board_roles   TEXT    NOT NULL DEFAULT '{}',
        password_hash TEXT,
        disabled_at   INTEGER,
        created_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE invites (
        digest     TEXT    PRIMARY KEY,
        person     TEXT    NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX invites_by_time ON invites (expires_at);
    CREATE TABLE sessions (
        digest     TEXT    PRIMARY KEY,
        person     TEXT    NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_person ON sessions (person);
    CREATE INDEX sessions_by_time ON sessions (expires_at);
"#,
    // A card's history (`Storage::card_changes`): the card each change event is about, indexed
    // with its board, and when a board was archived (NULL: it is not).
    r#"
    ALTER TABLE change_events ADD COLUMN card TEXT;
    UPDATE change_events SET card = json_extract(data, '$.cardId') WHERE json_valid(data);
    CREATE INDEX change_events_by_card ON change_events (board, card, id) WHERE card IS NOT NULL;
    ALTER TABLE boards ADD COLUMN archived_at INTEGER;
"#,
    // Sign-in through an identity provider (`crate::oidc`): the provider's subject a person was
    // linked to at their first sign-in there (`{issuer} {sub}`), one person per subject.
    r#"
    ALTER TABLE people ADD COLUMN oidc_subject TEXT;
    CREATE UNIQUE INDEX people_by_oidc_subject ON people (oidc_subject)
        WHERE oidc_subject IS NOT NULL;
"#,
];

pub struct SqliteStorage {
    /// The writer thread holds the receiving end; it exits after a `Shutdown` job.
    jobs: mpsc::Sender<Job>,
    /// The read connection; used from `spawn_blocking` only.
    reader: Arc<Mutex<Connection>>,
}

enum Job {
    Create {
        meta: BoardMeta,
        initial: Bytes,
        reply: oneshot::Sender<Result<bool, StorageError>>,
    },
    Rename {
        board: BoardId,
        name: String,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    SetWakeup {
        board: BoardId,
        at: Option<i64>,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    AddEvent {
        event: TimelineEvent,
        /// The inbound message to settle with it.
        mail: Option<InboundMail>,
        reply: oneshot::Sender<Result<TimelineEvent, StorageError>>,
    },
    Append {
        board: BoardId,
        updates: Vec<Bytes>,
        /// `Some` for a scheduler's fenced append.
        fence: Option<u64>,
        /// The change events stored with the updates.
        changes: Vec<StoredChange>,
        reply: oneshot::Sender<Result<Appended, StorageError>>,
    },
    ReplaceSnapshot {
        board: BoardId,
        seq: Seq,
        data: Bytes,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    ClaimKey {
        request: KeyRequest,
        reply: oneshot::Sender<Result<KeyClaim, StorageError>>,
    },
    /// Finishes (with a response) or releases (without) a claimed key.
    SettleKey {
        caller: String,
        key: String,
        token: String,
        response: Option<KeptResponse>,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    SweepKeys {
        now: i64,
        reply: oneshot::Sender<Result<u64, StorageError>>,
    },
    /// A write that answers for itself once the batch's transaction ends (see
    /// [`SqliteStorage::write`]): inbound mail, change-event sweeps, webhooks.
    Write(WriteJob),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Tells a [`Job::Write`]'s caller how its transaction ended: `None` committed.
type Settle = Box<dyn FnOnce(Option<StorageError>) + Send>;

/// The work of a [`Job::Write`], run in the batch's transaction; `None` when it failed (and has
/// answered already).
type WriteJob = Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> Option<Settle> + Send>;

impl SqliteStorage {
    /// Opens (creating if needed) the database in `data_dir` and starts the writer thread.
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let mut writer = Connection::open(&path)?;
        configure(&writer, CACHE_KIB)?;
        migrate(&mut writer)?;
        webhooks::release_claims(&writer)?;
        // Checkpoints run on their own thread (see `checkpoint_loop`), never inside a commit
        // that a room is waiting for: the writer's commits only say when one is due. (A WAL hook
        // replaces SQLite's automatic checkpoint, which is one.)
        let (due, checkpoints) = std::sync::mpsc::sync_channel(1);
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            if pages >= CHECKPOINT_AFTER_PAGES {
                let _ = due.try_send(()); // one already waiting is as good
            }
            Ok(())
        }))?;
        let reader = Connection::open(&path)?;
        configure(&reader, SIDE_CACHE_KIB)?;
        let checkpointer = Connection::open(&path)?;
        configure(&checkpointer, SIDE_CACHE_KIB)?;
        let checkpoint_thread = std::thread::Builder::new()
            .name("funnel-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &checkpoints))?;
        let (jobs, rx) = mpsc::channel(WRITER_QUEUE);
        std::thread::Builder::new()
            .name("funnel-sqlite-writer".into())
            .spawn(move || Writer::new(writer, checkpoint_thread).run(rx))?;
        Ok(Self {
            jobs,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> Job,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    /// Runs `f` in the writer's next transaction, under a savepoint of its own (a failing `f`
    /// undoes only its own writes), and answers once that transaction has committed. For the
    /// writes that are not the board log's (webhooks), without a job type each.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        let work: WriteJob = Box::new(move |txn| match in_savepoint(txn, || f(txn)) {
            Ok(value) => Some(Box::new(move |failed: Option<StorageError>| {
                let _ = reply.send(match failed {
                    None => Ok(value),
                    Some(e) => Err(e),
                });
            })),
            Err(e) => {
                let _ = reply.send(Err(e));
                None
            }
        });
        self.jobs
            .send(Job::Write(work))
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            // A poisoned lock only means another read panicked; the connection itself is fine.
            let mut conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|_| StorageError::Closed)?
    }
}

/// A board row; `None` for an id that is not a valid board id (not written by this program).
fn meta_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<BoardMeta>> {
    let id: String = row.get(0)?;
    Ok(BoardId::parse(&id).ok().map(|id| BoardMeta {
        id,
        entity: row.get(1).unwrap_or_default(),
        name: row.get(2).unwrap_or_default(),
        created_at: row.get(3).unwrap_or_default(),
        archived_at: row.get(4).unwrap_or_default(),
    }))
}

fn configure(conn: &Connection, cache_kib: usize) -> Result<(), StorageError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before the room broadcasts it, even across a power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Pages kept in memory per connection (negative: KiB), at most; SQLite's default is 2 MiB.
    // Every loaded board appends at the end of its own range of the log, so the writer's hot
    // pages grow with the boards in use: with 500 boards at 2 MiB, each commit read about 12
    // pages back from the files.
    conn.pragma_update(None, "cache_size", -(cache_kib as i64))?;
    Ok(())
}

/// The most the writer's page cache holds, in KiB (see `configure`). A commit touches the last
/// leaf of each appending board's range in `updates` and in `change_events_by_board` (the other
/// tables append at one end): with 500 boards about 1,000 pages of 4 KiB and the trees' inner
/// pages, which 8 MiB holds. At 32 MiB the cache kept every page the
/// log grew by (about 2 KiB a move with its events), up to 32 MiB of a `rooms` run's peak RSS,
/// for pages no commit reads again (BENCHMARKS.md).
const CACHE_KIB: usize = 8 * 1024;

/// The page cache of the reader and the checkpointer, in KiB: SQLite's default. Neither is on
/// the commit path: the reader loads boards (each once while it stays loaded) and answers the
/// API's reads, the checkpointer copies the log into the database. With the writer's 32 MiB
/// each of them filled its own 32 MiB as the boards loaded, for nothing (the `rooms` load
/// test's RSS, BENCHMARKS.md).
const SIDE_CACHE_KIB: usize = 2 * 1024;

fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let done = usize::try_from(done).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(StorageError::NewerSchema {
            found: done,
            known: MIGRATIONS.len(),
        });
    }
    check_migrations(conn, done)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let txn = conn.transaction()?;
        txn.execute_batch(sql)?;
        txn.execute(
            "INSERT OR REPLACE INTO funnel_migrations (version, checksum) VALUES (?1, ?2)",
            params![index as i64 + 1, migration_checksum(sql)],
        )?;
        txn.pragma_update(None, "user_version", index as i64 + 1)?;
        txn.commit()?;
    }
    Ok(())
}

/// Compares the checksums the database records of its first `done` migrations with this
/// build's, refusing a database another build migrated. A database from before checksums were
/// kept gets them recorded (it ran these migrations: nothing else wrote `user_version`).
fn check_migrations(conn: &mut Connection, done: usize) -> Result<(), StorageError> {
    let txn = conn.transaction()?;
    txn.execute_batch(
        "CREATE TABLE IF NOT EXISTS funnel_migrations (
             version  INTEGER PRIMARY KEY,
             checksum TEXT    NOT NULL
         )",
    )?;
    let recorded: HashMap<usize, Option<String>> = txn
        .prepare("SELECT version, checksum FROM funnel_migrations")?
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?
        .filter_map(|row| match row {
            Ok((version, checksum)) => Some(Ok((usize::try_from(version).ok()?, Some(checksum)))),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    for (version, checksum) in unrecorded_migrations(MIGRATIONS, done, &recorded)? {
        txn.execute(
            "INSERT OR REPLACE INTO funnel_migrations (version, checksum) VALUES (?1, ?2)",
            params![version as i64, checksum],
        )?;
    }
    txn.commit()?;
    Ok(())
}

/// Reads what lies above seq `after` of a board (everything for 0): the snapshot when it folded
/// entries above `after`, then the log tail. One read transaction, so that a compaction that
/// commits between the two reads cannot hide entries.
fn read_board(
    conn: &mut Connection,
    board: &BoardId,
    after: Seq,
) -> Result<Option<StoredBoard>, StorageError> {
    let txn = conn.transaction()?;
    if !board_exists(&txn, board)? {
        return Ok(None);
    }
    let snapshot: Option<(i64, Vec<u8>)> = txn
        .query_row(
            "SELECT seq, data FROM snapshots WHERE board = ?1",
            [board.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let folded = snapshot.as_ref().map_or(0, |(seq, _)| *seq as Seq);
    let from = folded.max(after);
    let mut entries: Vec<(Seq, Bytes)> = Vec::new();
    if let Some((seq, data)) = snapshot.filter(|_| folded > after) {
        entries.push((seq as Seq, Bytes::from(data)));
    }
    let snapshot_entries = entries.len();
    let mut stmt = txn.prepare_cached(
        "SELECT seq, data FROM updates WHERE board = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![board.as_str(), from as i64], |row| {
        Ok((
            row.get::<_, i64>(0)? as Seq,
            Bytes::from(row.get::<_, Vec<u8>>(1)?),
        ))
    })?;
    for row in rows {
        entries.push(row?);
    }
    let tail_len = entries.len() - snapshot_entries;
    Ok(Some(StoredBoard { entries, tail_len }))
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn load(&self, board: &BoardId) -> Result<Option<StoredBoard>, StorageError> {
        let board = board.clone();
        self.read(move |conn| read_board(conn, &board, 0)).await
    }

    async fn load_since(
        &self,
        board: &BoardId,
        after: Seq,
    ) -> Result<Option<StoredBoard>, StorageError> {
        let board = board.clone();
        self.read(move |conn| read_board(conn, &board, after)).await
    }

    async fn create(&self, meta: &BoardMeta, initial: Bytes) -> Result<bool, StorageError> {
        let meta = meta.clone();
        self.submit(|reply| Job::Create {
            meta,
            initial,
            reply,
        })
        .await
    }

    async fn list(&self) -> Result<Vec<BoardMeta>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, entity, name, created_at, archived_at FROM boards ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map([], meta_from_row)?;
            let mut boards = Vec::new();
            for row in rows {
                boards.extend(row?);
            }
            Ok(boards)
        })
        .await
    }

    async fn meta(&self, board: &BoardId) -> Result<Option<BoardMeta>, StorageError> {
        let board = board.clone();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, entity, name, created_at, archived_at FROM boards WHERE id = ?1",
                    [board.as_str()],
                    meta_from_row,
                )
                .optional()?
                .flatten())
        })
        .await
    }

    async fn add_event(
        &self,
        event: TimelineEvent,
        mail: Option<InboundMail>,
    ) -> Result<TimelineEvent, StorageError> {
        self.submit(|reply| Job::AddEvent { event, mail, reply })
            .await
    }

    async fn timeline_bytes(&self, board: &BoardId) -> Result<usize, StorageError> {
        let board = board.clone();
        self.read(move |conn| {
            let bytes: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(length(CAST(card AS BLOB)) + length(CAST(kind AS BLOB))
                   + length(CAST(direction AS BLOB)) + length(CAST(user AS BLOB))
                   + length(CAST(text AS BLOB)) + 16), 0)
                 FROM timeline WHERE board = ?1",
                )?
                .query_row(params![board.as_str()], |row| row.get(0))?;
            Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
        })
        .await
    }

    async fn events(
        &self,
        board: &BoardId,
        card: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, StorageError> {
        let board = board.clone();
        let card = card.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, kind, direction, user, text FROM timeline
                 WHERE board = ?1 AND card = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    board.as_str(),
                    card,
                    before.unwrap_or(i64::MAX),
                    limit as i64
                ],
                |row| {
                    Ok(TimelineEvent {
                        id: row.get(0)?,
                        board: board.clone(),
                        card: card.clone(),
                        at: row.get(1)?,
                        kind: text_column(row, 2)?,
                        direction: text_column(row, 3)?,
                        user: row.get(4)?,
                        text: row.get(5)?,
                    })
                },
            )?;
            let mut events = Vec::new();
            for row in rows {
                events.push(row?);
            }
            Ok(events)
        })
        .await
    }

    async fn set_wakeup(&self, board: &BoardId, at: Option<i64>) -> Result<(), StorageError> {
        let board = board.clone();
        self.submit(|reply| Job::SetWakeup { board, at, reply })
            .await
    }

    async fn wakeups(&self) -> Result<Vec<(BoardId, i64)>, StorageError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT board, at FROM wakeups ORDER BY at")?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut wakeups = Vec::new();
            for row in rows {
                let (board, at) = row?;
                if let Ok(board) = BoardId::parse(&board) {
                    wakeups.push((board, at));
                }
            }
            Ok(wakeups)
        })
        .await
    }

    async fn rename(&self, board: &BoardId, name: &str) -> Result<(), StorageError> {
        let board = board.clone();
        let name = name.to_owned();
        self.submit(|reply| Job::Rename { board, name, reply })
            .await
    }

    async fn append(&self, board: &BoardId, updates: Vec<Bytes>) -> Result<Seq, StorageError> {
        Ok(self
            .append_with_changes(board, updates, None, Vec::new())
            .await?
            .seq)
    }

    async fn append_fenced(
        &self,
        board: &BoardId,
        updates: Vec<Bytes>,
        fence: u64,
    ) -> Result<Seq, StorageError> {
        Ok(self
            .append_with_changes(board, updates, Some(fence), Vec::new())
            .await?
            .seq)
    }

    async fn append_with_changes(
        &self,
        board: &BoardId,
        updates: Vec<Bytes>,
        fence: Option<u64>,
        changes: Vec<NewChange>,
    ) -> Result<Appended, StorageError> {
        let board = board.clone();
        let changes = changes.into_iter().map(StoredChange::from).collect();
        self.submit(|reply| Job::Append {
            board,
            updates,
            fence,
            changes,
            reply,
        })
        .await
    }

    async fn changes_after(
        &self,
        after: i64,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StorageError> {
        // The lists go in as JSON arrays (NULL: no filter), so that one cached statement serves
        // every filter. One writer commits in id order, so a read never sees a hole fill later.
        let boards = filter.boards.as_ref().map(|boards| {
            Value::from(boards.iter().map(|b| b.as_str()).collect::<Vec<_>>()).to_string()
        });
        let types = filter
            .types
            .as_ref()
            .map(|types| Value::from(types.clone()).to_string());
        let limit = limit.min(MAX_CHANGES_PAGE) as i64;
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, board, kind, at, data FROM change_events
                 WHERE id > ?1
                   AND (?2 IS NULL OR board IN (SELECT value FROM json_each(?2)))
                   AND (?3 IS NULL OR kind IN (SELECT value FROM json_each(?3)))
                 ORDER BY id LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![after, boards, types, limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })?;
            let mut events = Vec::new();
            for row in rows {
                let (id, board, kind, at, data) = row?;
                events.push(super::change_from_row(id, &board, kind, at, &data)?);
            }
            Ok(events)
        })
        .await
    }

    async fn card_changes(
        &self,
        board: &BoardId,
        card: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StorageError> {
        let board = board.clone();
        let card = card.to_owned();
        let limit = limit.min(MAX_CHANGES_PAGE) as i64;
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, kind, at, data FROM change_events
                 WHERE board = ?1 AND card = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![board.as_str(), card, before.unwrap_or(i64::MAX), limit],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                },
            )?;
            let mut events = Vec::new();
            for row in rows {
                let (id, kind, at, data) = row?;
                events.push(super::change_from_row(id, board.as_str(), kind, at, &data)?);
            }
            Ok(events)
        })
        .await
    }

    async fn cards_changed_since(
        &self,
        board: &BoardId,
        since: i64,
    ) -> Result<Vec<String>, StorageError> {
        let board = board.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT card FROM change_events
                 WHERE board = ?1 AND at >= ?2 AND card IS NOT NULL",
            )?;
            let rows = stmt.query_map(params![board.as_str(), since], |row| row.get(0))?;
            let mut cards = Vec::new();
            for row in rows {
                cards.push(row?);
            }
            Ok(cards)
        })
        .await
    }

    async fn set_archived(&self, board: &BoardId, at: Option<i64>) -> Result<bool, StorageError> {
        let board = board.clone();
        self.write(move |txn| {
            Ok(txn.execute(
                "UPDATE boards SET archived_at = ?2 WHERE id = ?1",
                params![board.as_str(), at],
            )? == 1)
        })
        .await
    }

    async fn latest_change(&self) -> Result<i64, StorageError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM change_events")?
                .query_row([], |row| row.get(0))?)
        })
        .await
    }

    async fn sweep_changes(&self, before: i64) -> Result<u64, StorageError> {
        self.write(move |txn| {
            Ok(txn.execute("DELETE FROM change_events WHERE at < ?1", [before])? as u64)
        })
        .await
    }

    async fn compact(&self, board: &BoardId) -> Result<(), StorageError> {
        let id = board.clone();
        let stored = self
            .read(move |conn| Ok(read_board(conn, &id, 0)?.filter(|stored| stored.tail_len > 0)))
            .await?;
        let Some(stored) = stored else {
            return Ok(());
        };
        let seq = stored.last_seq();
        // Off the read connection, so that loads of other boards do not wait for it.
        let data = stored.fold_blocking(board).await?;
        self.put_snapshot(board, seq, data).await
    }

    async fn put_snapshot(
        &self,
        board: &BoardId,
        seq: Seq,
        data: Bytes,
    ) -> Result<(), StorageError> {
        let board = board.clone();
        self.submit(|reply| Job::ReplaceSnapshot {
            board,
            seq,
            data,
            reply,
        })
        .await
    }

    async fn claim_key(&self, request: &KeyRequest) -> Result<KeyClaim, StorageError> {
        let request = request.clone();
        self.submit(|reply| Job::ClaimKey { request, reply }).await
    }

    async fn finish_key(
        &self,
        caller: &str,
        key: &str,
        token: &str,
        response: &KeptResponse,
    ) -> Result<(), StorageError> {
        let (caller, key, token) = (caller.to_owned(), key.to_owned(), token.to_owned());
        let response = Some(response.clone());
        self.submit(|reply| Job::SettleKey {
            caller,
            key,
            token,
            response,
            reply,
        })
        .await
    }

    async fn release_key(&self, caller: &str, key: &str, token: &str) -> Result<(), StorageError> {
        let (caller, key, token) = (caller.to_owned(), key.to_owned(), token.to_owned());
        self.submit(|reply| Job::SettleKey {
            caller,
            key,
            token,
            response: None,
            reply,
        })
        .await
    }

    async fn sweep_keys(&self, now: i64) -> Result<u64, StorageError> {
        self.submit(|reply| Job::SweepKeys { now, reply }).await
    }

    async fn claim_mail(
        &self,
        board: &BoardId,
        message_id: &str,
        now: i64,
    ) -> Result<MailClaim, StorageError> {
        let (board, message_id) = (board.clone(), message_id.to_owned());
        self.write(move |txn| claim_mail(txn, &board, &message_id, now))
            .await
    }

    async fn release_mail(&self, board: &BoardId, message_id: &str) -> Result<(), StorageError> {
        let (board, message_id) = (board.clone(), message_id.to_owned());
        self.write(move |txn| settle_mail(txn, &board, &message_id, None))
            .await
    }

    async fn mail_card(
        &self,
        board: &BoardId,
        message_ids: &[String],
    ) -> Result<Option<String>, StorageError> {
        let board = board.clone();
        let message_ids = message_ids.to_vec();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT card, at FROM inbound_mail
                 WHERE board = ?1 AND message_id = ?2 AND card IS NOT NULL",
            )?;
            let mut latest: Option<(i64, String)> = None;
            for id in &message_ids {
                let found: Option<(String, i64)> = stmt
                    .query_row(params![board.as_str(), id], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()?;
                if let Some((card, at)) = found
                    && latest.as_ref().is_none_or(|(best, _)| at > *best)
                {
                    latest = Some((at, card));
                }
            }
            Ok(latest.map(|(_, card)| card))
        })
        .await
    }

    async fn mails_of_events(
        &self,
        board: &BoardId,
        event_ids: &[i64],
    ) -> Result<Vec<InboundMail>, StorageError> {
        let board = board.clone();
        let event_ids = event_ids.to_vec();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT message_id, card, event_id, subject, from_address, from_name, at
                 FROM inbound_mail WHERE board = ?1 AND event_id = ?2 AND card IS NOT NULL",
            )?;
            let mut mails = Vec::new();
            for id in event_ids {
                let found = stmt
                    .query_row(params![board.as_str(), id], |row| {
                        Ok(InboundMail {
                            board: board.clone(),
                            message_id: row.get(0)?,
                            card: row.get(1)?,
                            event_id: row.get(2)?,
                            subject: row.get(3)?,
                            from_address: row.get(4)?,
                            from_name: row.get(5)?,
                            at: row.get(6)?,
                        })
                    })
                    .optional()?;
                mails.extend(found);
            }
            Ok(mails)
        })
        .await
    }

    fn webhooks(&self) -> &dyn super::webhooks::WebhookStore {
        self
    }

    fn accounts(&self) -> &dyn super::accounts::AccountStore {
        self
    }

    async fn ping(&self) -> Result<(), StorageError> {
        if self.jobs.is_closed() {
            return Err(StorageError::Closed);
        }
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.jobs.send(Job::Shutdown { reply }).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// The last seq of each board this process has written to, so an append does not query it.
    last_seq: HashMap<BoardId, Seq>,
    /// The checkpoint thread: it ends once the connection's hook is removed.
    checkpoints: Option<std::thread::JoinHandle<()>>,
}

/// Log pages after which the checkpoint thread copies the write-ahead log into the database
/// file: SQLite's own default for its automatic checkpoint.
const CHECKPOINT_AFTER_PAGES: i32 = 1000;

/// Copies the write-ahead log into the database file each time the writer's commits leave
/// [`CHECKPOINT_AFTER_PAGES`] in it (`due` fires), until the writer's connection is gone.
/// SQLite's automatic checkpoint would run inside the commit that crosses that size, and every
/// room waiting for the commit would wait for the checkpoint's writes and fsync too (the
/// fan-out latency's tail in the `rooms` load test). A passive checkpoint takes no lock that the
/// writer or the reader waits for: it copies what no reader still needs and leaves the rest
/// for the next round. Durability does not depend on it: a commit is in the log, on disk,
/// before it is acknowledged.
fn checkpoint_loop(conn: &Connection, due: &std::sync::mpsc::Receiver<()>) {
    while due.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint of the SQLite log failed; retrying");
        }
    }
}

/// A job's reply, held until its transaction commits.
enum Pending {
    Created(oneshot::Sender<Result<bool, StorageError>>, bool),
    Appended(oneshot::Sender<Result<Appended, StorageError>>, Appended),
    Done(oneshot::Sender<Result<(), StorageError>>),
    Event(
        oneshot::Sender<Result<TimelineEvent, StorageError>>,
        TimelineEvent,
    ),
    Claim(oneshot::Sender<Result<KeyClaim, StorageError>>, KeyClaim),
    Swept(oneshot::Sender<Result<u64, StorageError>>, u64),
    Settle(Settle),
}

impl Writer {
    fn new(conn: Connection, checkpoints: std::thread::JoinHandle<()>) -> Self {
        Self {
            conn,
            last_seq: HashMap::new(),
            checkpoints: Some(checkpoints),
        }
    }

    /// Stops the checkpoint thread (after its current checkpoint) and folds the whole log into
    /// the database file: a stopped server leaves its data there, with an empty log.
    fn final_checkpoint(&mut self) {
        type Hook = fn(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()>;
        if let Err(e) = self.conn.wal_hook(None::<Hook>) {
            tracing::warn!(error = %e, "cannot remove the SQLite log hook");
        }
        if let Some(thread) = self.checkpoints.take() {
            let _ = thread.join();
        }
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "final checkpoint of the SQLite log failed");
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_GROUP_COMMIT);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_GROUP_COMMIT {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let shutdown = self.commit_batch(&mut batch);
            if let Some(reply) = shutdown {
                rx.close();
                // Jobs that were queued after the shutdown are refused: their senders see Closed.
                drop(rx);
                self.final_checkpoint();
                let _ = reply.send(());
                return;
            }
        }
    }

    /// Runs every job of the batch in one transaction, each under its own savepoint so that one
    /// failing job does not fail the others; replies once the transaction is committed.
    fn commit_batch(&mut self, batch: &mut Vec<Job>) -> Option<oneshot::Sender<()>> {
        let mut pending = Vec::with_capacity(batch.len());
        let mut shutdown = None;
        let mut seqs: HashMap<BoardId, Seq> = HashMap::new();
        let result = (|| -> Result<(), StorageError> {
            let txn = self.conn.transaction()?;
            for job in batch.drain(..) {
                match job {
                    Job::Shutdown { reply } => shutdown = Some(reply),
                    Job::Create {
                        meta,
                        initial,
                        reply,
                    } => match create(&txn, &meta, &initial) {
                        Ok(created) => {
                            if created {
                                seqs.insert(meta.id, 1);
                            }
                            pending.push(Pending::Created(reply, created));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Job::Append {
                        board,
                        updates,
                        fence,
                        changes,
                        reply,
                    } => {
                        let last = match seqs.get(&board).or(self.last_seq.get(&board)) {
                            Some(seq) => Ok(*seq),
                            None => max_seq(&txn, &board),
                        };
                        let appended = last
                            .and_then(|last| append(&txn, &board, last, &updates, fence, &changes));
                        match appended {
                            Ok(appended) => {
                                seqs.insert(board.clone(), appended.seq);
                                pending.push(Pending::Appended(reply, appended));
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    Job::AddEvent { event, mail, reply } => match add_event(&txn, &event, mail) {
                        Ok(id) => {
                            pending.push(Pending::Event(reply, TimelineEvent { id, ..event }))
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Job::SetWakeup { board, at, reply } => match set_wakeup(&txn, &board, at) {
                        Ok(()) => pending.push(Pending::Done(reply)),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Job::Rename { board, name, reply } => match rename(&txn, &board, &name) {
                        Ok(()) => pending.push(Pending::Done(reply)),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Job::ReplaceSnapshot {
                        board,
                        seq,
                        data,
                        reply,
                    } => match replace_snapshot(&txn, &board, seq, &data) {
                        Ok(()) => pending.push(Pending::Done(reply)),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Job::ClaimKey { request, reply } => match claim_key(&txn, &request) {
                        Ok(claim) => pending.push(Pending::Claim(reply, claim)),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Job::SettleKey {
                        caller,
                        key,
                        token,
                        response,
                        reply,
                    } => match settle_key(&txn, &caller, &key, &token, response.as_ref()) {
                        Ok(()) => pending.push(Pending::Done(reply)),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Job::Write(work) => {
                        if let Some(settle) = work(&txn) {
                            pending.push(Pending::Settle(settle));
                        }
                    }
                    Job::SweepKeys { now, reply } => match txn
                        .execute("DELETE FROM idempotency_keys WHERE expires_at <= ?1", [now])
                    {
                        Ok(n) => pending.push(Pending::Swept(reply, n as u64)),
                        Err(e) => {
                            let _ = reply.send(Err(e.into()));
                        }
                    },
                }
            }
            txn.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.last_seq.extend(seqs);
                for done in pending {
                    match done {
                        Pending::Created(reply, created) => {
                            let _ = reply.send(Ok(created));
                        }
                        Pending::Appended(reply, appended) => {
                            let _ = reply.send(Ok(appended));
                        }
                        Pending::Done(reply) => {
                            let _ = reply.send(Ok(()));
                        }
                        Pending::Event(reply, event) => {
                            let _ = reply.send(Ok(event));
                        }
                        Pending::Claim(reply, claim) => {
                            let _ = reply.send(Ok(claim));
                        }
                        Pending::Swept(reply, n) => {
                            let _ = reply.send(Ok(n));
                        }
                        Pending::Settle(settle) => settle(None),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = pending.len(), "storage transaction failed");
                let message = e.to_string();
                let failed = || StorageError::Io(std::io::Error::other(message.clone()));
                for done in pending {
                    match done {
                        Pending::Created(reply, _) => {
                            let _ = reply.send(Err(failed()));
                        }
                        Pending::Appended(reply, _) => {
                            let _ = reply.send(Err(failed()));
                        }
                        Pending::Done(reply) => {
                            let _ = reply.send(Err(failed()));
                        }
                        Pending::Event(reply, _) => {
                            let _ = reply.send(Err(failed()));
                        }
                        Pending::Claim(reply, _) => {
                            let _ = reply.send(Err(failed()));
                        }
                        Pending::Swept(reply, _) => {
                            let _ = reply.send(Err(failed()));
                        }
                        Pending::Settle(settle) => settle(Some(failed())),
                    }
                }
            }
        }
        shutdown
    }
}

/// Runs `f` under a savepoint: on error, what `f` wrote is undone and the transaction goes on.
/// The two statements of the common path are prepared once (every append runs them; parsing
/// them each time was a few percent of the writer's time).
fn in_savepoint<T>(
    txn: &rusqlite::Transaction<'_>,
    f: impl FnOnce() -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    txn.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f() {
        Ok(value) => {
            txn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(value)
        }
        Err(e) => {
            txn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

/// A column that holds a typed value as its text (a timeline event's kind or direction). The
/// values are stored from the types, so one that does not parse was written by other means.
fn text_column<T>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let raw: String = row.get(index)?;
    raw.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn add_event(
    txn: &rusqlite::Transaction<'_>,
    event: &TimelineEvent,
    mail: Option<InboundMail>,
) -> Result<i64, StorageError> {
    txn.execute(
        "INSERT INTO timeline (board, card, at, kind, direction, user, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            event.board.as_str(),
            event.card,
            event.at,
            event.kind.as_str(),
            event.direction.as_str(),
            event.user,
            event.text
        ],
    )?;
    let id = txn.last_insert_rowid();
    if let Some(mail) = mail {
        let mail = InboundMail {
            event_id: id,
            ..mail
        };
        settle_mail(txn, &mail.board, &mail.message_id, Some(&mail))?;
    }
    Ok(id)
}

/// Claims a Message-ID unless a row holds it (taken, or in flight and not abandoned). The
/// writer thread is the only writer, so the read and the write are one step.
fn claim_mail(
    txn: &rusqlite::Transaction<'_>,
    board: &BoardId,
    message_id: &str,
    now: i64,
) -> Result<MailClaim, StorageError> {
    type Row = (
        i64,
        Option<String>,
        Option<i64>,
        String,
        String,
        String,
        i64,
    );
    let row: Option<Row> = txn
        .prepare_cached(
            "SELECT claimed_at, card, event_id, subject, from_address, from_name, at
             FROM inbound_mail WHERE board = ?1 AND message_id = ?2",
        )?
        .query_row(params![board.as_str(), message_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })
        .optional()?;
    match row {
        Some((_, Some(card), event_id, subject, from_address, from_name, at)) => {
            return Ok(MailClaim::Taken(InboundMail {
                board: board.clone(),
                message_id: message_id.to_owned(),
                card,
                event_id: event_id.unwrap_or_default(),
                subject,
                from_address,
                from_name,
                at,
            }));
        }
        Some((claimed_at, None, ..)) if claimed_at + MAIL_IN_FLIGHT_MS > now => {
            return Ok(MailClaim::InFlight);
        }
        _ => {} // new, or abandoned in flight: its server died while taking it
    }
    txn.prepare_cached(
        "INSERT OR REPLACE INTO inbound_mail (board, message_id, claimed_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![board.as_str(), message_id, now])?;
    Ok(MailClaim::Claimed)
}

/// Records where a claimed message went, or (without `mail`) deletes its in-flight claim.
fn settle_mail(
    txn: &rusqlite::Transaction<'_>,
    board: &BoardId,
    message_id: &str,
    mail: Option<&InboundMail>,
) -> Result<(), StorageError> {
    match mail {
        Some(mail) => txn.execute(
            "UPDATE inbound_mail SET card = ?3, event_id = ?4, subject = ?5, from_address = ?6,
                    from_name = ?7, at = ?8
             WHERE board = ?1 AND message_id = ?2 AND card IS NULL",
            params![
                board.as_str(),
                message_id,
                mail.card,
                mail.event_id,
                mail.subject,
                mail.from_address,
                mail.from_name,
                mail.at
            ],
        )?,
        None => txn.execute(
            "DELETE FROM inbound_mail WHERE board = ?1 AND message_id = ?2 AND card IS NULL",
            params![board.as_str(), message_id],
        )?,
    };
    Ok(())
}

/// Claims a key unless a live row holds it (the writer thread is the only writer, so the read
/// and the write are one step).
fn claim_key(
    txn: &rusqlite::Transaction<'_>,
    request: &KeyRequest,
) -> Result<KeyClaim, StorageError> {
    type Row = (
        String,
        i64,
        i64,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
    );
    let row: Option<Row> = txn
        .prepare_cached(
            "SELECT fingerprint, claimed_at, expires_at, status, content_type, location, body
             FROM idempotency_keys WHERE caller = ?1 AND key = ?2",
        )?
        .query_row(params![request.caller, request.key], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })
        .optional()?;
    if let Some((fingerprint, claimed_at, expires_at, status, content_type, location, body)) = row
        && expires_at > request.now
    {
        match status {
            Some(status) => {
                return Ok(KeyClaim::Done {
                    fingerprint,
                    response: KeptResponse {
                        status: u16::try_from(status).unwrap_or(500),
                        content_type,
                        location,
                        body: Bytes::from(body.unwrap_or_default()),
                    },
                });
            }
            None if claimed_at + KEY_IN_FLIGHT_MS > request.now => {
                return Ok(KeyClaim::InFlight { fingerprint });
            }
            None => {} // abandoned: its server died mid-request
        }
    }
    txn.prepare_cached(
        "INSERT OR REPLACE INTO idempotency_keys
         (caller, key, fingerprint, token, claimed_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        request.caller,
        request.key,
        request.fingerprint,
        request.token,
        request.now,
        request.now.saturating_add(KEY_LIFETIME_MS)
    ])?;
    Ok(KeyClaim::Claimed)
}

/// Records the response of the claim `token` (or, without one, deletes its in-flight row).
fn settle_key(
    txn: &rusqlite::Transaction<'_>,
    caller: &str,
    key: &str,
    token: &str,
    response: Option<&KeptResponse>,
) -> Result<(), StorageError> {
    match response {
        Some(response) => txn.execute(
            "UPDATE idempotency_keys SET status = ?4, content_type = ?5, location = ?6, body = ?7
             WHERE caller = ?1 AND key = ?2 AND token = ?3 AND status IS NULL",
            params![
                caller,
                key,
                token,
                i64::from(response.status),
                response.content_type,
                response.location,
                response.body.as_ref()
            ],
        )?,
        None => txn.execute(
            "DELETE FROM idempotency_keys
             WHERE caller = ?1 AND key = ?2 AND token = ?3 AND status IS NULL",
            params![caller, key, token],
        )?,
    };
    Ok(())
}

fn set_wakeup(
    txn: &rusqlite::Transaction<'_>,
    board: &BoardId,
    at: Option<i64>,
) -> Result<(), StorageError> {
    match at {
        Some(at) => txn.execute(
            "INSERT INTO wakeups (board, at) VALUES (?1, ?2)
             ON CONFLICT (board) DO UPDATE SET at = excluded.at",
            params![board.as_str(), at],
        )?,
        None => txn.execute("DELETE FROM wakeups WHERE board = ?1", [board.as_str()])?,
    };
    Ok(())
}

fn rename(
    txn: &rusqlite::Transaction<'_>,
    board: &BoardId,
    name: &str,
) -> Result<(), StorageError> {
    txn.execute(
        "UPDATE boards SET name = ?2 WHERE id = ?1",
        params![board.as_str(), name],
    )?;
    Ok(())
}

fn create(
    txn: &rusqlite::Transaction<'_>,
    meta: &BoardMeta,
    initial: &[u8],
) -> Result<bool, StorageError> {
    let board = &meta.id;
    in_savepoint(txn, || {
        let inserted = txn.execute(
            "INSERT INTO boards (id, created_at, entity, name) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO NOTHING",
            params![board.as_str(), SystemClock.now_ms(), meta.entity, meta.name],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        txn.execute(
            "INSERT INTO updates (board, seq, data) VALUES (?1, 1, ?2)",
            params![board.as_str(), initial],
        )?;
        Ok(true)
    })
}

fn board_exists(conn: &Connection, board: &BoardId) -> Result<bool, StorageError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM boards WHERE id = ?1",
            [board.as_str()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The board's last seq, read once per board and process (the writer caches it after). Fails
/// for a board that does not exist.
fn max_seq(txn: &rusqlite::Transaction<'_>, board: &BoardId) -> Result<Seq, StorageError> {
    if !board_exists(txn, board)? {
        return Err(StorageError::NoSuchBoard(board.clone()));
    }
    let seq: i64 = txn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM updates WHERE board = ?1), 0),
                    COALESCE((SELECT seq FROM snapshots WHERE board = ?1), 0))",
        [board.as_str()],
        |row| row.get(0),
    )?;
    Ok(seq as Seq)
}

fn append(
    txn: &rusqlite::Transaction<'_>,
    board: &BoardId,
    last: Seq,
    updates: &[Bytes],
    fence: Option<u64>,
    changes: &[StoredChange],
) -> Result<Appended, StorageError> {
    in_savepoint(txn, || {
        if let Some(fence) = fence {
            record_fence(txn, board, fence)?;
        }
        let mut stmt =
            txn.prepare_cached("INSERT INTO updates (board, seq, data) VALUES (?1, ?2, ?3)")?;
        let mut seq = last;
        for update in updates {
            seq += 1;
            stmt.execute(params![board.as_str(), seq as i64, &update[..]])?;
        }
        let mut last_change = None;
        if !changes.is_empty() {
            let mut stmt = txn.prepare_cached(
                "INSERT INTO change_events (board, kind, at, data, card)
                 VALUES (?1, ?2, ?3, ?4, json_extract(?4, '$.cardId'))",
            )?;
            for change in changes {
                stmt.execute(params![board.as_str(), change.kind, change.at, change.data])?;
            }
            last_change = Some(txn.last_insert_rowid());
        }
        Ok(Appended { seq, last_change })
    })
}

/// Records `fence` as the board's fence, unless a higher one is recorded already.
fn record_fence(
    txn: &rusqlite::Transaction<'_>,
    board: &BoardId,
    fence: u64,
) -> Result<(), StorageError> {
    let current: Option<i64> = txn
        .query_row(
            "SELECT fence FROM boards WHERE id = ?1",
            [board.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        return Err(StorageError::NoSuchBoard(board.clone()));
    };
    let stored = super::fence_column(fence);
    if current > stored {
        return Err(StorageError::Fenced {
            board: board.clone(),
            fence,
            current: current as u64,
        });
    }
    txn.execute(
        "UPDATE boards SET fence = ?2 WHERE id = ?1",
        params![board.as_str(), stored],
    )?;
    Ok(())
}

fn replace_snapshot(
    txn: &rusqlite::Transaction<'_>,
    board: &BoardId,
    seq: Seq,
    data: &[u8],
) -> Result<(), StorageError> {
    in_savepoint(txn, || {
        txn.execute(
            "INSERT INTO snapshots (board, seq, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (board) DO UPDATE SET seq = excluded.seq, data = excluded.data
             WHERE excluded.seq > snapshots.seq",
            params![board.as_str(), seq as i64, data],
        )?;
        txn.execute(
            "DELETE FROM updates WHERE board = ?1 AND seq <= ?2",
            params![board.as_str(), seq as i64],
        )?;
        Ok(())
    })
}

/// Copies the database in `data_dir` to `to` with SQLite's online backup, while a server may be
/// using it: the copy is one consistent moment of the database, written to a temporary file
/// beside `to` and renamed into place, so `to` is never a partial copy. `progress` hears
/// `(pages copied, pages in all)` after each step. Refuses to overwrite an existing `to`.
pub fn backup(
    data_dir: &Path,
    to: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, BackupError> {
    let source_path = data_dir.join(DB_FILE);
    if !source_path.is_file() {
        return Err(BackupError::NoDatabase(source_path));
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    let source = Connection::open_with_flags(
        &source_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(std::time::Duration::from_secs(5))?;
    let partial = to.with_file_name(format!(
        ".{}.partial",
        to.file_name()
            .map_or_else(|| "backup".into(), |n| n.to_string_lossy())
    ));
    let _ = std::fs::remove_file(&partial);
    let copied = (|| -> Result<u64, BackupError> {
        let mut target = Connection::open(&partial)?;
        {
            let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
            // Small steps with a pause between them let the server's writer commit meanwhile;
            // a write during the copy makes SQLite restart it from a fresh moment.
            loop {
                let step = backup.step(BACKUP_PAGES_PER_STEP)?;
                let p = backup.progress();
                let total = u64::try_from(p.pagecount).unwrap_or(0);
                let left = u64::try_from(p.remaining).unwrap_or(0);
                progress(total.saturating_sub(left), total);
                match step {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More
                    | rusqlite::backup::StepResult::Busy
                    | rusqlite::backup::StepResult::Locked => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        }
        let check: String = target.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if check != "ok" {
            return Err(BackupError::Integrity(check));
        }
        target.close().map_err(|(_, e)| e)?;
        Ok(std::fs::metadata(&partial)?.len())
    })();
    match copied {
        Ok(bytes) => {
            std::fs::rename(&partial, to)?;
            Ok(bytes)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Why `funnel backup` made no copy.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {} (is --data-dir right?)", .0.display())]
    NoDatabase(std::path::PathBuf),
    #[error("{} exists already: choose another file, or remove it first", .0.display())]
    Exists(std::path::PathBuf),
    #[error("the copy fails SQLite's integrity check: {0}")]
    Integrity(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Pages the online backup copies at a time (4 KiB each).
const BACKUP_PAGES_PER_STEP: std::os::raw::c_int = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(board: &BoardId) -> BoardMeta {
        BoardMeta {
            id: board.clone(),
            entity: "deal".into(),
            name: format!("Board {board}"),
            created_at: 0,
            archived_at: None,
        }
    }

    #[tokio::test]
    async fn boards_are_listed_with_their_entity_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path()).unwrap();
        let a = BoardId::parse("a").unwrap();
        let b = BoardId::parse("b").unwrap();
        storage.create(&meta(&a), update_with("x")).await.unwrap();
        let mut lead = meta(&b);
        lead.entity = "lead".into();
        storage.create(&lead, update_with("y")).await.unwrap();
        storage.rename(&a, "Q4 deals").await.unwrap();
        let listed = storage.list().await.unwrap();
        let summary: Vec<(&str, &str, &str)> = listed
            .iter()
            .map(|m| (m.id.as_str(), m.entity.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(
            summary,
            [("a", "deal", "Q4 deals"), ("b", "lead", "Board b")]
        );
        assert!(listed.iter().all(|m| m.created_at > 0));
        assert_eq!(storage.meta(&b).await.unwrap().unwrap().entity, "lead");
        assert!(
            storage
                .meta(&BoardId::parse("c").unwrap())
                .await
                .unwrap()
                .is_none()
        );
        storage.close().await;
    }

    fn update_with(text: &str) -> Bytes {
        use yrs::{Doc, Text, Transact};
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        t.insert(&mut txn, 0, text);
        Bytes::from(txn.encode_update_v1())
    }

    fn text_of(stored: &StoredBoard) -> String {
        use yrs::{Doc, GetString, Transact};
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        for (_, raw) in &stored.entries {
            let update = funnel_protocol::wire::decode_update_v1(raw).unwrap();
            txn.apply_update(update).unwrap();
        }
        let mut words: Vec<char> = t.get_string(&txn).chars().collect();
        words.sort();
        words.into_iter().collect()
    }

    #[tokio::test]
    async fn create_append_compact_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let board = BoardId::parse("b1").unwrap();
        let storage = SqliteStorage::open(dir.path()).unwrap();
        assert!(storage.load(&board).await.unwrap().is_none());
        assert!(
            storage
                .create(&meta(&board), update_with("a"))
                .await
                .unwrap()
        );
        assert!(
            !storage
                .create(&meta(&board), update_with("z"))
                .await
                .unwrap()
        );
        let seq = storage
            .append(&board, vec![update_with("b"), update_with("c")])
            .await
            .unwrap();
        assert_eq!(seq, 3);
        storage.compact(&board).await.unwrap();
        assert_eq!(
            storage
                .append(&board, vec![update_with("d")])
                .await
                .unwrap(),
            4
        );
        let stored = storage.load(&board).await.unwrap().unwrap();
        assert_eq!(
            (stored.last_seq(), stored.tail_len, stored.entries.len()),
            (4, 1, 2)
        );
        assert_eq!(text_of(&stored), "abcd");
        storage.close().await;
        assert!(matches!(
            storage.append(&board, vec![update_with("e")]).await,
            Err(StorageError::Closed)
        ));

        // A second process life: seq numbering continues after the snapshot.
        let storage = SqliteStorage::open(dir.path()).unwrap();
        storage.compact(&board).await.unwrap();
        assert_eq!(
            storage
                .append(&board, vec![update_with("e")])
                .await
                .unwrap(),
            5
        );
        let stored = storage.load(&board).await.unwrap().unwrap();
        assert_eq!(text_of(&stored), "abcde");
        storage.close().await;
    }

    /// The writer never checkpoints (see `checkpoint_loop`): without the checkpoint thread
    /// the log would grow forever and the database file never.
    #[tokio::test]
    async fn the_log_is_checkpointed_beside_the_writer_and_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path()).unwrap();
        let board = BoardId::parse("b").unwrap();
        storage
            .create(&meta(&board), update_with("x"))
            .await
            .unwrap();
        let db = dir.path().join(DB_FILE);
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let before = size(&db);
        // 6 MB in the log: past `CHECKPOINT_AFTER_PAGES`.
        for _ in 0..20 {
            let updates = (0..10).map(|_| Bytes::from(vec![7u8; 30_000])).collect();
            storage.append(&board, updates).await.unwrap();
        }
        let mut rounds = 0;
        while size(&db) < before + 4_000_000 {
            rounds += 1;
            assert!(rounds < 100, "no checkpoint within 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        storage.close().await;
        assert_eq!(size(&wal), 0, "closing folds the whole log in");
        let reopened = SqliteStorage::open(dir.path()).unwrap();
        let stored = reopened.load(&board).await.unwrap().unwrap();
        assert_eq!(stored.tail_len, 201, "the creation and 200 appends");
    }

    #[tokio::test]
    async fn concurrent_appends_are_grouped_and_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SqliteStorage::open(dir.path()).unwrap());
        let boards: Vec<BoardId> = (0..8)
            .map(|i| BoardId::parse(&format!("b{i}")).unwrap())
            .collect();
        for board in &boards {
            storage
                .create(&meta(board), update_with("x"))
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for board in boards.clone() {
            let storage = Arc::clone(&storage);
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for _ in 0..20 {
                    seqs.push(
                        storage
                            .append(&board, vec![update_with("y")])
                            .await
                            .unwrap(),
                    );
                }
                seqs
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), (2..22).collect::<Vec<Seq>>());
        }
        storage.close().await;
    }
}
