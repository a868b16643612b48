//! PostgreSQL storage: what several funnel instances behind a load balancer share.
//!
//! Several processes write to one board at once here, so nothing that decides an order lives
//! in a process:
//! - **Seqs** come from the board's row: an append runs `UPDATE boards SET last_seq =
//!   last_seq + n ... RETURNING last_seq`, which holds the row lock until its transaction
//!   commits. Appends to one board are thereby serialised across instances: the seqs of one
//!   call are consecutive, and they commit (become visible) in seq order.
//! - **Group commit**: one writer task per instance takes every write queued at that moment
//!   (from many rooms) into one transaction, like the SQLite writer thread. A batch touching
//!   several boards locks their rows in a fixed order (by board id), so two instances' batches
//!   cannot deadlock.
//! - **Fencing**: the same row holds the fence of the board's scheduler; a fenced append
//!   checks and records it in its `UPDATE`, so the check and the write are one step.
//! - **Compaction** reads snapshot and log from the database under a per-board advisory lock
//!   (two compactors never interleave), folds them off the runtime, writes the snapshot with
//!   its seq and deletes only the entries it folded. Appends go on meanwhile: they take the row
//!   lock, not the advisory one, and their seqs are above what the compactor read.
//! - **Change events** (the feed's, `crate::feed`) take their ids from a sequence, and
//!   concurrent transactions could commit those out of order: a reader at id 100 would then skip
//!   a 99 committed later. A transaction that stores events first takes the feed's advisory
//!   lock (before any row lock, so it cannot deadlock with the board rows), and holds it until
//!   it commits: ids are given out and committed in one order, across instances.
//! - **Reads** are single statements (one snapshot each), so a board is read consistently
//!   without a transaction.
//!
//! Migrations are versioned, recorded in `funnel_migrations`, and applied at open in one
//! transaction under an advisory lock, so instances starting together apply each one once.

mod accounts;
mod webhooks;

use super::{
    Appended, BoardMeta, InboundMail, KEY_IN_FLIGHT_MS, KEY_LIFETIME_MS, KeptResponse, KeyClaim,
    KeyRequest, MAIL_IN_FLIGHT_MS, MAX_CHANGES_PAGE, MailClaim, Seq, Storage, StorageError,
    StoredBoard, StoredChange, TimelineEvent, change_from_row, describe_postgres, fence_column,
    migration_checksum, unrecorded_migrations,
};
use crate::clock::{Clock, SystemClock};
use crate::feed::{ChangeEvent, ChangeFilter, NewChange};
use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use funnel_protocol::BoardId;
use funnel_protocol::timeline::{UnknownTimelineDirection, UnknownTimelineKind};
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{GenericClient, NoTls};

/// Writes waiting for the writer task. When full, appenders wait: back-pressure reaches the
/// rooms, and through their bounded channels the sockets, instead of memory growing.
const WRITER_QUEUE: usize = 4096;

/// The most writes committed in one transaction: bounds the latency of the first one.
const MAX_GROUP_COMMIT: usize = 512;

/// Connections per instance: the writer's, plus reads and compactions beside it. Several
/// instances share one server, whose default limit is 100 connections.
const POOL_SIZE: usize = 8;

/// How long opening a connection may take (unless the URL sets `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for a free pooled connection before failing with a clear error
/// instead of hanging (a stalled server, or every connection busy).
const POOL_WAIT: Duration = Duration::from_secs(10);

/// First half of the two-key advisory locks; the second is a hash of the schema (and board),
/// so that funnels in different schemas of one database do not wait for each other.
const MIGRATION_LOCK: i32 = 0x6675_6e01;
const COMPACTION_LOCK: i32 = 0x6675_6e02;
const CHANGES_LOCK: i32 = 0x6675_6e03;

/// Schema versions, applied in order; `funnel_migrations` records which ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE boards (
        id         TEXT   PRIMARY KEY,
        created_at BIGINT NOT NULL,
        entity     TEXT   NOT NULL,
        name       TEXT   NOT NULL,
        -- The last seq given out: appends take the row lock to advance it.
        last_seq   BIGINT NOT NULL DEFAULT 0,
        -- The highest fence a scheduler wrote with.
        fence      BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE updates (
        board TEXT   NOT NULL,
        seq   BIGINT NOT NULL,
        data  BYTEA  NOT NULL,
        PRIMARY KEY (board, seq)
    );
    CREATE TABLE snapshots (
        board TEXT   PRIMARY KEY,
        seq   BIGINT NOT NULL,
        data  BYTEA  NOT NULL
    );
    CREATE TABLE wakeups (
        board TEXT   PRIMARY KEY,
        at    BIGINT NOT NULL
    );
    CREATE TABLE timeline (
        id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        board     TEXT   NOT NULL,
        card      TEXT   NOT NULL,
        at        BIGINT NOT NULL,
        kind      TEXT   NOT NULL,
        direction TEXT   NOT NULL,
        user_id   TEXT   NOT NULL,
        text      TEXT   NOT NULL
    );
    CREATE INDEX timeline_by_card ON timeline (board, card, id);
"#,
    r#"
    CREATE TABLE idempotency_keys (
        caller       TEXT   NOT NULL,
        key          TEXT   NOT NULL,
        fingerprint  TEXT   NOT NULL,
        token        TEXT   NOT NULL,
        claimed_at   BIGINT NOT NULL,
        expires_at   BIGINT NOT NULL,
        -- NULL while the request is in flight.
        status       INTEGER,
        content_type TEXT,
        location     TEXT,
        body         BYTEA,
        PRIMARY KEY (caller, key)
    );
    CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
"#,
    r#"
    CREATE TABLE inbound_mail (
        board        TEXT   NOT NULL,
        message_id   TEXT   NOT NULL,
        claimed_at   BIGINT NOT NULL,
        -- NULL while the message is being taken.
        card         TEXT,
        event_id     BIGINT,
        subject      TEXT   NOT NULL DEFAULT '',
        from_address TEXT   NOT NULL DEFAULT '',
        from_name    TEXT   NOT NULL DEFAULT '',
        at           BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (board, message_id)
    );
    CREATE INDEX inbound_mail_by_event ON inbound_mail (board, event_id);
"#,
    // The change feed (`crate::feed`). `data` is the event's JSON text, as in SQLite.
    r#"
    CREATE TABLE change_events (
        id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        board TEXT   NOT NULL,
        kind  TEXT   NOT NULL,
        at    BIGINT NOT NULL,
        data  TEXT   NOT NULL
    );
    CREATE INDEX change_events_by_board ON change_events (board, id);
    CREATE INDEX change_events_by_time ON change_events (at);
"#,
    // Webhooks: endpoints with their cursor into the change feed, the outbox of deliveries,
    // and the delivery log (storage/webhooks.rs).
    r#"
    CREATE TABLE webhooks (
        id              TEXT   PRIMARY KEY,
        url             TEXT   NOT NULL,
        -- JSON arrays; empty: every event type, every board.
        events          TEXT   NOT NULL,
        boards          TEXT   NOT NULL,
        secret          TEXT   NOT NULL,
        previous_secret TEXT,
        previous_until  BIGINT NOT NULL DEFAULT 0,
        disabled_at     BIGINT,
        disabled_reason TEXT,
        cursor          BIGINT NOT NULL,
        created_at      BIGINT NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        endpoint      TEXT    NOT NULL,
        event         BIGINT  NOT NULL,
        payload       TEXT    NOT NULL,
        -- Attempts made so far.
        attempt       INTEGER NOT NULL DEFAULT 0,
        -- pending, delivered, failed or cancelled.
        state         TEXT    NOT NULL,
        next_at       BIGINT  NOT NULL,
        claim         TEXT    NOT NULL DEFAULT '',
        claimed_until BIGINT  NOT NULL DEFAULT 0,
        created_at    BIGINT  NOT NULL,
        done_at       BIGINT
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
    CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint, state);
    CREATE INDEX webhook_deliveries_done ON webhook_deliveries (done_at) WHERE done_at IS NOT NULL;
    CREATE TABLE webhook_attempts (
        id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        endpoint   TEXT    NOT NULL,
        delivery   BIGINT  NOT NULL,
        event      BIGINT  NOT NULL,
        attempt    INTEGER NOT NULL,
        status     INTEGER,
        latency_ms BIGINT  NOT NULL,
        error      TEXT,
        outcome    TEXT    NOT NULL,
        at         BIGINT  NOT NULL
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
        disabled_at   BIGINT,
        created_at    BIGINT  NOT NULL
    );
    CREATE TABLE invites (
        digest     TEXT    PRIMARY KEY,
        person     TEXT    NOT NULL,
        expires_at BIGINT  NOT NULL,
        created_at BIGINT  NOT NULL
    );
    CREATE INDEX invites_by_time ON invites (expires_at);
    CREATE TABLE sessions (
        digest     TEXT    PRIMARY KEY,
        person     TEXT    NOT NULL,
        expires_at BIGINT  NOT NULL,
        created_at BIGINT  NOT NULL
    );
    CREATE INDEX sessions_by_person ON sessions (person);
    CREATE INDEX sessions_by_time ON sessions (expires_at);
"#,
    // A card's history (`Storage::card_changes`): the card each change event is about, indexed
    // with its board, and when a board was archived (NULL: it is not).
    r#"
    ALTER TABLE change_events ADD COLUMN card TEXT;
    UPDATE change_events SET card = data::jsonb ->> 'cardId';
    CREATE INDEX change_events_by_card ON change_events (board, card, id) WHERE card IS NOT NULL;
    ALTER TABLE boards ADD COLUMN archived_at BIGINT;
"#,
];

/// Claims Message-ID `$2` of board `$1` at `$3` unless a row holds it: taken, or in flight since
/// `$4` or later. A row back: claimed. Concurrent claimers wait on the row (or its insert) and
/// see the winner's row in their `ON CONFLICT` check.
const CLAIM_MAIL: &str = "
    INSERT INTO inbound_mail (board, message_id, claimed_at) VALUES ($1, $2, $3)
    ON CONFLICT (board, message_id) DO UPDATE SET claimed_at = excluded.claimed_at
     WHERE inbound_mail.card IS NULL AND inbound_mail.claimed_at <= $4
    RETURNING 1";

/// Claims key `$2` of caller `$1` unless a live row holds it: no row, an expired one (by `$5`,
/// now) or one in flight since before `$7`. A row back: claimed. Concurrent claimers of one key
/// wait on its row (or its insert) and see the winner's row in their `ON CONFLICT` check.
const CLAIM_KEY: &str = "
    INSERT INTO idempotency_keys (caller, key, fingerprint, token, claimed_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (caller, key) DO UPDATE
       SET fingerprint = excluded.fingerprint, token = excluded.token,
           claimed_at = excluded.claimed_at, expires_at = excluded.expires_at,
           status = NULL, content_type = NULL, location = NULL, body = NULL
     WHERE idempotency_keys.expires_at <= $5
        OR (idempotency_keys.status IS NULL AND idempotency_keys.claimed_at <= $7)
    RETURNING 1";

/// What lies above seq `$2` of board `$1`, in one statement (one snapshot): a marker row when
/// the board exists, the snapshot when it folded entries above `$2`, then the log above both.
const READ_SINCE: &str = "
    SELECT 0 AS part, NULL::BIGINT AS seq, NULL::BYTEA AS data FROM boards WHERE id = $1
    UNION ALL
    SELECT 1, seq, data FROM snapshots WHERE board = $1 AND seq > $2
    UNION ALL
    SELECT 2, u.seq, u.data FROM updates u
     WHERE u.board = $1
       AND u.seq > GREATEST($2, COALESCE((SELECT s.seq FROM snapshots s WHERE s.board = $1), 0))
    ORDER BY part, seq";

/// Appends the updates `$2` to board `$1` under its row lock, giving them the seqs after
/// `last_seq`. With a fence `$3`, only when no higher fence is recorded, and records it (a
/// null `$3` is a plain append: `GREATEST` ignores nulls). No row back: refused or no board.
/// The change events (`$4` kinds, `$5` times, `$6` data) are stored only with the updates, in
/// their order; the row carries the last one's id (null: none).
const APPEND: &str = "
    WITH advanced AS (
        UPDATE boards
           SET last_seq = last_seq + cardinality($2::BYTEA[]), fence = GREATEST(fence, $3::BIGINT)
         WHERE id = $1 AND ($3::BIGINT IS NULL OR fence <= $3::BIGINT)
        RETURNING last_seq
    ), appended AS (
        INSERT INTO updates (board, seq, data)
        SELECT $1, advanced.last_seq - cardinality($2::BYTEA[]) + u.ord, u.data
          FROM advanced, unnest($2::BYTEA[]) WITH ORDINALITY AS u(data, ord)
    ), changed AS (
        INSERT INTO change_events (board, kind, at, data, card)
        SELECT $1, c.kind, c.at, c.data, c.data::jsonb ->> 'cardId'
          FROM advanced, unnest($4::TEXT[], $5::BIGINT[], $6::TEXT[]) WITH ORDINALITY
               AS c(kind, at, data, ord)
         ORDER BY c.ord
        RETURNING id
    )
    SELECT last_seq, (SELECT max(id) FROM changed) FROM advanced";

/// Creates board `$1` with its first update `$5` as seq 1, unless it exists: the primary key
/// makes a racing creator wait for the first one's commit, then do nothing.
const CREATE: &str = "
    WITH created AS (
        INSERT INTO boards (id, created_at, entity, name, last_seq) VALUES ($1, $2, $3, $4, 1)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), initial AS (
        INSERT INTO updates (board, seq, data) SELECT id, 1, $5 FROM created
    )
    SELECT count(*) FROM created";

pub struct PostgresStorage {
    /// The writer task holds the receiving end; it exits after a `Shutdown` job, or when this
    /// sender is dropped.
    jobs: mpsc::Sender<Job>,
    /// Reads and compactions take connections from here; so does the writer task (a clone).
    pool: Pool,
    /// For the one connection of its own that listens for change notifications.
    config: tokio_postgres::Config,
}

/// The channel a transaction that stored change events notifies, as SQL: one per schema (the
/// instances of one deployment share it, separate schemas on one database do not), an md5 so
/// that it fits the 63 bytes of a name whatever the schema's.
const CHANGES_CHANNEL: &str = "'funnel_changes_' || md5(COALESCE(current_schema(), ''))";

/// How long the change listener waits before it connects again, first and at most.
const LISTEN_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(10));

/// Forwards every change notification (coalesced: one pending signal stands for any number)
/// to `signals`, connecting again with backoff when the connection ends, until `shutdown` or
/// until nobody holds the receiver.
async fn listen_for_changes(
    config: tokio_postgres::Config,
    signals: mpsc::Sender<()>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut backoff = LISTEN_BACKOFF.0;
    loop {
        let ended = tokio::select! {
            () = shutdown.cancelled() => return,
            ended = listen_once(&config, &signals) => ended,
        };
        if signals.is_closed() {
            return;
        }
        if let Err(e) = ended {
            tracing::warn!(error = %describe_postgres(&e), ?backoff, "change notifications lost; the feed polls until they are back");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(LISTEN_BACKOFF.1);
    }
}

/// One connection's worth of [`listen_for_changes`]: `LISTEN`, one signal (what was stored
/// before it listened), then one per notification until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    signals: &mpsc::Sender<()>,
) -> Result<(), tokio_postgres::Error> {
    use futures_util::StreamExt;
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection's messages (notifications among them) come through its own poll, which
    // must also run for the client's queries to get answers.
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let listen = async {
        let channel: String = client
            .query_one(&format!("SELECT {CHANGES_CHANNEL}"), &[])
            .await?
            .get(0);
        // `funnel_changes_` and hex digits: nothing to escape inside the quotes.
        client.batch_execute(&format!("LISTEN \"{channel}\"")).await
    };
    tokio::pin!(listen);
    loop {
        tokio::select! {
            listened = &mut listen => {
                listened?;
                break;
            }
            message = messages.next() => match message {
                Some(Err(e)) => return Err(e),
                Some(Ok(_)) => {}
                None => return Ok(()),
            },
        }
    }
    let _ = signals.try_send(());
    while let Some(message) = messages.next().await {
        if let tokio_postgres::AsyncMessage::Notification(_) = message? {
            // Full: a signal is pending already, and it stands for this one too.
            let _ = signals.try_send(());
        }
        if signals.is_closed() {
            break;
        }
    }
    // `client` lived until here: dropping it ends the connection, and the listening with it.
    Ok(())
}

impl PostgresStorage {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`,
    /// with the usual `?key=value` parameters, e.g. `options=-csearch_path%3Dmyschema`),
    /// applies pending migrations, and starts the writer task. Fails with a message saying
    /// what to check when the URL is bad or the server cannot be reached.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StorageError::PostgresUnavailable(format!(
                "invalid database url: {}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
                describe_postgres(&e)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe_target(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .build()
            .map_err(|e| {
                StorageError::PostgresUnavailable(format!("cannot set up the connection pool: {e}"))
            })?;
        let mut client = pool.get().await.map_err(|e| {
            StorageError::PostgresUnavailable(format!(
                "cannot connect to PostgreSQL at {target}: {}; check that the server runs and \
                 listens there, and that the URL's user, password and database are right",
                describe_pool_error(&e)
            ))
        })?;
        migrate(&mut client).await?;
        drop(client);
        let (jobs, rx) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(Writer { pool: pool.clone() }.run(rx));
        Ok(Self { jobs, pool, config })
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

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        if self.jobs.is_closed() {
            return Err(StorageError::Closed);
        }
        self.pool.get().await.map_err(pool_error)
    }
}

fn describe_pool_error(e: &PoolError) -> String {
    match e {
        PoolError::Backend(e) => describe_postgres(e),
        PoolError::Timeout(_) => "no answer in time".into(),
        other => other.to_string(),
    }
}

fn pool_error(e: PoolError) -> StorageError {
    match e {
        PoolError::Backend(e) => StorageError::Postgres(e),
        PoolError::Closed => StorageError::Closed,
        PoolError::Timeout(_) => StorageError::PostgresUnavailable(format!(
            "no PostgreSQL connection within {POOL_WAIT:?}: the server is unreachable or slow, \
             or every pooled connection is busy"
        )),
        other => StorageError::PostgresUnavailable(format!("postgres connection pool: {other}")),
    }
}

/// `user@host:port/database` from the parsed URL, without the password.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("(no user)"),
        if hosts.is_empty() {
            "(no host)".to_owned()
        } else {
            hosts.join(",")
        },
        config.get_dbname().unwrap_or("(default database)")
    )
}

/// Applies every migration not yet recorded, in one transaction under an advisory lock: a
/// second instance starting at the same moment waits, then finds them applied.
async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StorageError> {
    let txn = client.transaction().await?;
    txn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(COALESCE(current_schema(), '')))",
        &[&MIGRATION_LOCK],
    )
    .await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS funnel_migrations (
             version    INTEGER     PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let done: i32 = txn
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM funnel_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    let known = MIGRATIONS.len();
    let done = usize::try_from(done).unwrap_or(0);
    if done > known {
        return Err(StorageError::NewerSchema { found: done, known });
    }
    // Each applied migration's checksum: another build's migration of the same number is
    // refused. Rows from before checksums were kept (NULL) get this build's.
    txn.batch_execute("ALTER TABLE funnel_migrations ADD COLUMN IF NOT EXISTS checksum TEXT")
        .await?;
    let mut recorded = std::collections::HashMap::new();
    for row in txn
        .query("SELECT version, checksum FROM funnel_migrations", &[])
        .await?
    {
        let version: i32 = row.try_get(0)?;
        let checksum: Option<String> = row.try_get(1)?;
        if let Ok(version) = usize::try_from(version) {
            recorded.insert(version, checksum);
        }
    }
    for (version, checksum) in unrecorded_migrations(MIGRATIONS, done, &recorded)? {
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        txn.execute(
            "INSERT INTO funnel_migrations (version, checksum) VALUES ($1, $2)
             ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum",
            &[&version, &checksum],
        )
        .await?;
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        txn.batch_execute(sql).await?;
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        txn.execute(
            "INSERT INTO funnel_migrations (version, checksum) VALUES ($1, $2)",
            &[&version, &migration_checksum(sql)],
        )
        .await?;
        tracing::info!(version, "applied a PostgreSQL migration");
    }
    txn.commit().await?;
    Ok(())
}

/// What lies above seq `after` of a board (everything for 0), in one statement; `read_since`
/// is [`READ_SINCE`] prepared on `client`'s connection.
async fn read_since(
    client: &impl GenericClient,
    read_since: &tokio_postgres::Statement,
    board: &BoardId,
    after: Seq,
) -> Result<Option<StoredBoard>, StorageError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let rows = client.query(read_since, &[&board.as_str(), &after]).await?;
    let mut exists = false;
    let mut entries = Vec::with_capacity(rows.len());
    let mut tail_len = 0;
    for row in rows {
        let part: i32 = row.try_get(0)?;
        if part == 0 {
            exists = true;
            continue;
        }
        let seq: i64 = row.try_get(1)?;
        let data: Vec<u8> = row.try_get(2)?;
        if part == 2 {
            tail_len += 1;
        }
        entries.push((seq as Seq, Bytes::from(data)));
    }
    Ok(exists.then_some(StoredBoard { entries, tail_len }))
}

fn meta_from_row(row: &tokio_postgres::Row) -> Result<Option<BoardMeta>, StorageError> {
    let id: &str = row.try_get(0)?;
    // A row that is not a valid board id was not written by this program: skip it.
    let Ok(id) = BoardId::parse(id) else {
        return Ok(None);
    };
    Ok(Some(BoardMeta {
        id,
        entity: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
        archived_at: row.try_get(4)?,
    }))
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn load(&self, board: &BoardId) -> Result<Option<StoredBoard>, StorageError> {
        self.load_since(board, 0).await
    }

    async fn load_since(
        &self,
        board: &BoardId,
        after: Seq,
    ) -> Result<Option<StoredBoard>, StorageError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(READ_SINCE).await?;
        read_since(&**client, &statement, board, after).await
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
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, entity, name, created_at, archived_at FROM boards ORDER BY created_at, id",
            )
            .await?;
        let rows = client.query(&statement, &[]).await?;
        let mut boards = Vec::with_capacity(rows.len());
        for row in &rows {
            boards.extend(meta_from_row(row)?);
        }
        Ok(boards)
    }

    async fn meta(&self, board: &BoardId) -> Result<Option<BoardMeta>, StorageError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, entity, name, created_at, archived_at FROM boards WHERE id = $1",
            )
            .await?;
        let row = client.query_opt(&statement, &[&board.as_str()]).await?;
        Ok(match row {
            Some(row) => meta_from_row(&row)?,
            None => None,
        })
    }

    async fn set_wakeup(&self, board: &BoardId, at: Option<i64>) -> Result<(), StorageError> {
        let board = board.clone();
        self.submit(|reply| Job::SetWakeup { board, at, reply })
            .await
    }

    async fn wakeups(&self) -> Result<Vec<(BoardId, i64)>, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT board, at FROM wakeups ORDER BY at", &[])
            .await?;
        let mut wakeups = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Ok(board) = BoardId::parse(row.try_get(0)?) {
                wakeups.push((board, row.try_get(1)?));
            }
        }
        Ok(wakeups)
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
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT COALESCE(SUM(octet_length(card) + octet_length(kind)
                   + octet_length(direction) + octet_length(user_id) + octet_length(text) + 16),
                   0)::BIGINT
                 FROM timeline WHERE board = $1",
            )
            .await?;
        let bytes: i64 = client
            .query_one(&statement, &[&board.as_str()])
            .await?
            .try_get(0)?;
        Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
    }

    async fn events(
        &self,
        board: &BoardId,
        card: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, StorageError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = client
            .prepare_cached(
                "SELECT id, at, kind, direction, user_id, text FROM timeline
                 WHERE board = $1 AND card = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
            )
            .await?;
        let rows = client
            .query(
                &statement,
                &[&board.as_str(), &card, &before.unwrap_or(i64::MAX), &limit],
            )
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.try_get(0)?;
            // Stored from the types as their text: one that does not parse was written by other
            // means.
            let corrupt = |reason: String| StorageError::CorruptEvent { id, reason };
            events.push(TimelineEvent {
                id,
                board: board.clone(),
                card: card.to_owned(),
                at: row.try_get(1)?,
                kind: row
                    .try_get::<_, &str>(2)?
                    .parse()
                    .map_err(|e: UnknownTimelineKind| corrupt(e.to_string()))?,
                direction: row
                    .try_get::<_, &str>(3)?
                    .parse()
                    .map_err(|e: UnknownTimelineDirection| corrupt(e.to_string()))?,
                user: row.try_get(4)?,
                text: row.try_get(5)?,
            });
        }
        Ok(events)
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
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, board, kind, at, data FROM change_events
                  WHERE id > $1
                    AND ($2::TEXT[] IS NULL OR board = ANY($2::TEXT[]))
                    AND ($3::TEXT[] IS NULL OR kind = ANY($3::TEXT[]))
                  ORDER BY id LIMIT $4",
            )
            .await?;
        let boards: Option<Vec<&str>> = filter
            .boards
            .as_ref()
            .map(|boards| boards.iter().map(|b| b.as_str()).collect());
        let types: Option<Vec<&str>> = filter
            .types
            .as_ref()
            .map(|types| types.iter().map(String::as_str).collect());
        let limit = limit.min(MAX_CHANGES_PAGE) as i64;
        let rows = client
            .query(&statement, &[&after, &boards, &types, &limit])
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let board: String = row.try_get(1)?;
            let data: String = row.try_get(4)?;
            events.push(change_from_row(
                id,
                &board,
                row.try_get(2)?,
                row.try_get(3)?,
                &data,
            )?);
        }
        Ok(events)
    }

    async fn card_changes(
        &self,
        board: &BoardId,
        card: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StorageError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, kind, at, data FROM change_events
                  WHERE board = $1 AND card = $2 AND id < $3
                  ORDER BY id DESC LIMIT $4",
            )
            .await?;
        let limit = limit.min(MAX_CHANGES_PAGE) as i64;
        let before = before.unwrap_or(i64::MAX);
        let rows = client
            .query(&statement, &[&board.as_str(), &card, &before, &limit])
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let data: String = row.try_get(3)?;
            events.push(change_from_row(
                row.try_get(0)?,
                board.as_str(),
                row.try_get(1)?,
                row.try_get(2)?,
                &data,
            )?);
        }
        Ok(events)
    }

    async fn cards_changed_since(
        &self,
        board: &BoardId,
        since: i64,
    ) -> Result<Vec<String>, StorageError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT DISTINCT card FROM change_events
                  WHERE board = $1 AND at >= $2 AND card IS NOT NULL",
            )
            .await?;
        let rows = client.query(&statement, &[&board.as_str(), &since]).await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(StorageError::from))
            .collect()
    }

    async fn set_archived(&self, board: &BoardId, at: Option<i64>) -> Result<bool, StorageError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE boards SET archived_at = $2 WHERE id = $1",
                &[&board.as_str(), &at],
            )
            .await?
            == 1)
    }

    fn change_signals(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Option<mpsc::Receiver<()>> {
        let (signals, received) = mpsc::channel(1);
        tokio::spawn(listen_for_changes(self.config.clone(), signals, shutdown));
        Some(received)
    }

    async fn latest_change(&self) -> Result<i64, StorageError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT COALESCE(max(id), 0) FROM change_events")
            .await?;
        Ok(client.query_one(&statement, &[]).await?.try_get(0)?)
    }

    async fn sweep_changes(&self, before: i64) -> Result<u64, StorageError> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM change_events WHERE at < $1", &[&before])
            .await?)
    }

    async fn compact(&self, board: &BoardId) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        // One transaction holds the board's compaction lock from the read to the write. If
        // this future is dropped midway, the transaction rolls back and the lock goes with it.
        let txn = client.transaction().await?;
        lock_compaction(&txn, board).await?;
        // Read after taking the lock (a new statement sees what an earlier compactor committed).
        let statement = txn.prepare_cached(READ_SINCE).await?;
        let Some(stored) = read_since(&*txn, &statement, board, 0).await? else {
            return Ok(());
        };
        if stored.tail_len == 0 {
            return Ok(());
        }
        let seq = i64::try_from(stored.last_seq()).unwrap_or(i64::MAX);
        let data = stored.fold_blocking(board).await?;
        write_snapshot(&txn, board, seq, &data).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn put_snapshot(
        &self,
        board: &BoardId,
        seq: Seq,
        data: Bytes,
    ) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        lock_compaction(&txn, board).await?;
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        write_snapshot(&txn, board, seq, &data).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn claim_key(&self, request: &KeyRequest) -> Result<KeyClaim, StorageError> {
        let client = self.client().await?;
        let claim = client.prepare_cached(CLAIM_KEY).await?;
        let read = client
            .prepare_cached(
                "SELECT fingerprint, status, content_type, location, body
                 FROM idempotency_keys WHERE caller = $1 AND key = $2",
            )
            .await?;
        let expires_at = request.now.saturating_add(KEY_LIFETIME_MS);
        let stale_before = request.now.saturating_sub(KEY_IN_FLIGHT_MS);
        // The read is a statement of its own (it sees a row another instance committed during
        // the claim); a sweep can delete that row between the two, hence a second round.
        for _ in 0..3 {
            let claimed = client
                .query_opt(
                    &claim,
                    &[
                        &request.caller,
                        &request.key,
                        &request.fingerprint,
                        &request.token,
                        &request.now,
                        &expires_at,
                        &stale_before,
                    ],
                )
                .await?;
            if claimed.is_some() {
                return Ok(KeyClaim::Claimed);
            }
            let Some(row) = client
                .query_opt(&read, &[&request.caller, &request.key])
                .await?
            else {
                continue;
            };
            let fingerprint: String = row.try_get(0)?;
            return Ok(match row.try_get::<_, Option<i32>>(1)? {
                None => KeyClaim::InFlight { fingerprint },
                Some(status) => KeyClaim::Done {
                    fingerprint,
                    response: KeptResponse {
                        status: u16::try_from(status).unwrap_or(500),
                        content_type: row.try_get(2)?,
                        location: row.try_get(3)?,
                        body: Bytes::from(
                            row.try_get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                        ),
                    },
                },
            });
        }
        Err(StorageError::PostgresUnavailable(
            "an idempotency key kept changing under its claim; try again".into(),
        ))
    }

    async fn finish_key(
        &self,
        caller: &str,
        key: &str,
        token: &str,
        response: &KeptResponse,
    ) -> Result<(), StorageError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE idempotency_keys
                    SET status = $4, content_type = $5, location = $6, body = $7
                  WHERE caller = $1 AND key = $2 AND token = $3 AND status IS NULL",
            )
            .await?;
        client
            .execute(
                &statement,
                &[
                    &caller,
                    &key,
                    &token,
                    &i32::from(response.status),
                    &response.content_type,
                    &response.location,
                    &response.body.as_ref(),
                ],
            )
            .await?;
        Ok(())
    }

    async fn release_key(&self, caller: &str, key: &str, token: &str) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM idempotency_keys
                  WHERE caller = $1 AND key = $2 AND token = $3 AND status IS NULL",
                &[&caller, &key, &token],
            )
            .await?;
        Ok(())
    }

    async fn sweep_keys(&self, now: i64) -> Result<u64, StorageError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM idempotency_keys WHERE expires_at <= $1",
                &[&now],
            )
            .await?)
    }

    async fn claim_mail(
        &self,
        board: &BoardId,
        message_id: &str,
        now: i64,
    ) -> Result<MailClaim, StorageError> {
        let client = self.client().await?;
        let claim = client.prepare_cached(CLAIM_MAIL).await?;
        let read = client
            .prepare_cached(
                "SELECT card, event_id, subject, from_address, from_name, at
                 FROM inbound_mail WHERE board = $1 AND message_id = $2",
            )
            .await?;
        let stale_before = now.saturating_sub(MAIL_IN_FLIGHT_MS);
        // The read is a statement of its own (it sees a row another instance committed during
        // the claim); a release can delete that row between the two, hence a second round.
        for _ in 0..3 {
            let claimed = client
                .query_opt(&claim, &[&board.as_str(), &message_id, &now, &stale_before])
                .await?;
            if claimed.is_some() {
                return Ok(MailClaim::Claimed);
            }
            let Some(row) = client
                .query_opt(&read, &[&board.as_str(), &message_id])
                .await?
            else {
                continue;
            };
            return Ok(match row.try_get::<_, Option<String>>(0)? {
                None => MailClaim::InFlight,
                Some(card) => MailClaim::Taken(InboundMail {
                    board: board.clone(),
                    message_id: message_id.to_owned(),
                    card,
                    event_id: row.try_get::<_, Option<i64>>(1)?.unwrap_or_default(),
                    subject: row.try_get(2)?,
                    from_address: row.try_get(3)?,
                    from_name: row.try_get(4)?,
                    at: row.try_get(5)?,
                }),
            });
        }
        Err(StorageError::PostgresUnavailable(
            "a Message-ID kept changing under its claim; try again".into(),
        ))
    }

    async fn release_mail(&self, board: &BoardId, message_id: &str) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM inbound_mail WHERE board = $1 AND message_id = $2 AND card IS NULL",
                &[&board.as_str(), &message_id],
            )
            .await?;
        Ok(())
    }

    async fn mail_card(
        &self,
        board: &BoardId,
        message_ids: &[String],
    ) -> Result<Option<String>, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT card FROM inbound_mail
                  WHERE board = $1 AND message_id = ANY($2) AND card IS NOT NULL
                  ORDER BY at DESC LIMIT 1",
                &[&board.as_str(), &message_ids],
            )
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    async fn mails_of_events(
        &self,
        board: &BoardId,
        event_ids: &[i64],
    ) -> Result<Vec<InboundMail>, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT message_id, card, event_id, subject, from_address, from_name, at
                   FROM inbound_mail WHERE board = $1 AND event_id = ANY($2) AND card IS NOT NULL",
                &[&board.as_str(), &event_ids],
            )
            .await?;
        let mut mails = Vec::with_capacity(rows.len());
        for row in &rows {
            mails.push(InboundMail {
                board: board.clone(),
                message_id: row.try_get(0)?,
                card: row.try_get(1)?,
                event_id: row.try_get(2)?,
                subject: row.try_get(3)?,
                from_address: row.try_get(4)?,
                from_name: row.try_get(5)?,
                at: row.try_get(6)?,
            });
        }
        Ok(mails)
    }

    fn webhooks(&self) -> &dyn super::webhooks::WebhookStore {
        self
    }

    fn accounts(&self) -> &dyn super::accounts::AccountStore {
        self
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.jobs.send(Job::Shutdown { reply }).await.is_ok() {
            let _ = done.await;
        }
        self.pool.close();
    }
}

/// Takes the board's compaction lock for the rest of `txn` (a compaction and a snapshot write
/// of one board never overlap, across instances).
async fn lock_compaction(
    txn: &deadpool_postgres::Transaction<'_>,
    board: &BoardId,
) -> Result<(), StorageError> {
    txn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(COALESCE(current_schema(), '') || '/' || $2))",
        &[&COMPACTION_LOCK, &board.as_str()],
    )
    .await?;
    Ok(())
}

/// Replaces the board's snapshot with `data` (up to `seq`) unless a later one is there, and
/// deletes the entries it covers: only those, since entries appended meanwhile have higher seqs
/// (they took the board's row lock after the entries up to `seq` had committed).
async fn write_snapshot(
    txn: &deadpool_postgres::Transaction<'_>,
    board: &BoardId,
    seq: i64,
    data: &[u8],
) -> Result<(), StorageError> {
    txn.execute(
        "INSERT INTO snapshots (board, seq, data) VALUES ($1, $2, $3)
         ON CONFLICT (board) DO UPDATE SET seq = excluded.seq, data = excluded.data
         WHERE excluded.seq > snapshots.seq",
        &[&board.as_str(), &seq, &data],
    )
    .await?;
    txn.execute(
        "DELETE FROM updates WHERE board = $1 AND seq <= $2",
        &[&board.as_str(), &seq],
    )
    .await?;
    Ok(())
}

/// A write for the writer task; the reply is sent once its transaction committed (or failed).
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
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What a job did inside a transaction that has not committed yet.
enum Outcome {
    Created(bool),
    Done,
    Event(i64),
    Appended(Appended),
    /// Refused without writing (an older fence, or no such board); the batch goes on.
    Refused(StorageError),
}

impl Job {
    /// Whether the job stores change events (its transaction takes the feed's lock).
    fn stores_changes(&self) -> bool {
        matches!(self, Job::Append { changes, .. } if !changes.is_empty())
    }

    /// The order a batch runs its jobs in: by board, so that row locks are always taken in the
    /// same order by every instance (no deadlock); within a board, the board row's locks
    /// (create, appends, rename) before the wake-up row's. The sort is stable, so one board's
    /// appends keep their queue order.
    fn lock_order(&self) -> (&str, u8) {
        match self {
            Job::Create { meta, .. } => (meta.id.as_str(), 0),
            Job::Append { board, .. } | Job::Rename { board, .. } => (board.as_str(), 1),
            Job::SetWakeup { board, .. } => (board.as_str(), 2),
            Job::AddEvent { event, .. } => (event.board.as_str(), 3),
            Job::Shutdown { .. } => ("", 4),
        }
    }

    /// Runs this job in `txn`. Its first statement is sent on the future's first poll (the
    /// statements are prepared already), which is what lets a batch pipeline its jobs in order.
    async fn run(
        &self,
        txn: &deadpool_postgres::Transaction<'_>,
        statements: &Statements,
    ) -> Result<Outcome, StorageError> {
        match self {
            Job::Create { meta, initial, .. } => {
                let created: i64 = txn
                    .query_one(
                        &statements.create,
                        &[
                            &meta.id.as_str(),
                            &SystemClock.now_ms(),
                            &meta.entity,
                            &meta.name,
                            &&initial[..],
                        ],
                    )
                    .await?
                    .try_get(0)?;
                Ok(Outcome::Created(created > 0))
            }
            Job::Rename { board, name, .. } => {
                txn.execute(&statements.rename, &[&board.as_str(), name])
                    .await?;
                Ok(Outcome::Done)
            }
            Job::SetWakeup { board, at, .. } => {
                match at {
                    Some(at) => {
                        txn.execute(&statements.set_wakeup, &[&board.as_str(), at])
                            .await?
                    }
                    None => {
                        txn.execute(&statements.clear_wakeup, &[&board.as_str()])
                            .await?
                    }
                };
                Ok(Outcome::Done)
            }
            Job::AddEvent { event, mail, .. } => {
                let id: i64 = txn
                    .query_one(
                        &statements.add_event,
                        &[
                            &event.board.as_str(),
                            &event.card,
                            &event.at,
                            &event.kind.as_str(),
                            &event.direction.as_str(),
                            &event.user,
                            &event.text,
                        ],
                    )
                    .await?
                    .try_get(0)?;
                if let Some(mail) = mail {
                    txn.execute(
                        "UPDATE inbound_mail SET card = $3, event_id = $4, subject = $5,
                                from_address = $6, from_name = $7, at = $8
                          WHERE board = $1 AND message_id = $2 AND card IS NULL",
                        &[
                            &mail.board.as_str(),
                            &mail.message_id,
                            &mail.card,
                            &id,
                            &mail.subject,
                            &mail.from_address,
                            &mail.from_name,
                            &mail.at,
                        ],
                    )
                    .await?;
                }
                Ok(Outcome::Event(id))
            }
            Job::Append {
                board,
                updates,
                fence,
                changes,
                ..
            } => {
                let data: Vec<&[u8]> = updates.iter().map(|update| &update[..]).collect();
                let stored_fence = fence.map(fence_column);
                let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
                let times: Vec<i64> = changes.iter().map(|c| c.at).collect();
                let bodies: Vec<&str> = changes.iter().map(|c| c.data.as_str()).collect();
                let row = txn
                    .query_opt(
                        &statements.append,
                        &[
                            &board.as_str(),
                            &data,
                            &stored_fence,
                            &kinds,
                            &times,
                            &bodies,
                        ],
                    )
                    .await?;
                if let Some(row) = row {
                    let last: i64 = row.try_get(0)?;
                    return Ok(Outcome::Appended(Appended {
                        seq: last as Seq,
                        last_change: row.try_get(1)?,
                    }));
                }
                // Refused: read the fence anew (this statement's snapshot is newer than the
                // append's, which may predate the commit that raised the fence).
                let current: Option<i64> = txn
                    .query_opt("SELECT fence FROM boards WHERE id = $1", &[&board.as_str()])
                    .await?
                    .map(|row| row.try_get(0))
                    .transpose()?;
                Ok(Outcome::Refused(match (current, fence) {
                    (Some(current), Some(fence)) => StorageError::Fenced {
                        board: board.clone(),
                        fence: *fence,
                        current: current as u64,
                    },
                    _ => StorageError::NoSuchBoard(board.clone()),
                }))
            }
            Job::Shutdown { .. } => Ok(Outcome::Done),
        }
    }

    /// Sends this job's reply: `outcome` is what [`Job::run`] returned for this very job, in a
    /// transaction that committed.
    fn finish(self, outcome: Result<Outcome, StorageError>) {
        match (self, outcome) {
            (Job::Create { reply, .. }, Ok(Outcome::Created(created))) => {
                let _ = reply.send(Ok(created));
            }
            (Job::Append { reply, .. }, Ok(Outcome::Appended(appended))) => {
                let _ = reply.send(Ok(appended));
            }
            (Job::AddEvent { event, reply, .. }, Ok(Outcome::Event(id))) => {
                let _ = reply.send(Ok(TimelineEvent { id, ..event }));
            }
            (Job::Rename { reply, .. } | Job::SetWakeup { reply, .. }, Ok(Outcome::Done)) => {
                let _ = reply.send(Ok(()));
            }
            (Job::Shutdown { reply }, _) => {
                let _ = reply.send(());
            }
            (job, Err(e) | Ok(Outcome::Refused(e))) => job.fail(e),
            // `run` answers each kind of job with its own outcome, so this arm is not reached;
            // failing the job (rather than panicking) keeps the writer alive if it ever were.
            (job, Ok(_)) => {
                tracing::error!("storage job got another kind's outcome");
                job.fail(StorageError::Closed);
            }
        }
    }

    fn fail(self, e: StorageError) {
        match self {
            Job::Create { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Job::Append { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Job::AddEvent { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Job::Rename { reply, .. } | Job::SetWakeup { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Job::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }
}

/// The writer task: group commit over a pooled connection.
struct Writer {
    pool: Pool,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_GROUP_COMMIT);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < MAX_GROUP_COMMIT {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let (shutdowns, jobs): (Vec<Job>, Vec<Job>) = batch
                .drain(..)
                .partition(|job| matches!(job, Job::Shutdown { .. }));
            if !jobs.is_empty() {
                self.commit_batch(jobs).await;
            }
            if !shutdowns.is_empty() {
                rx.close();
                // Jobs queued after the shutdown are refused: their senders see Closed.
                drop(rx);
                for shutdown in shutdowns {
                    shutdown.finish(Ok(Outcome::Done));
                }
                return;
            }
        }
    }

    /// Runs every job of the batch in one transaction and replies once it committed. When a
    /// statement fails (a bad value, a deadlock), the jobs run again one transaction each, so
    /// that one bad write fails alone.
    async fn commit_batch(&self, mut jobs: Vec<Job>) {
        jobs.sort_by(|a, b| a.lock_order().cmp(&b.lock_order()));
        let count = jobs.len();
        match self.transaction(&jobs).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    job.finish(Ok(outcome));
                }
            }
            Err(e) if count > 1 && is_statement_error(&e) => {
                tracing::warn!(error = %e, jobs = count, "storage batch failed; retrying its jobs one by one");
                for job in jobs {
                    let outcome = self
                        .transaction(std::slice::from_ref(&job))
                        .await
                        .map(|mut outcomes| outcomes.pop().unwrap_or(Outcome::Done));
                    job.finish(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = count, "storage transaction failed");
                let message = e.to_string();
                let mut first = Some(e);
                for job in jobs {
                    let e = first.take().unwrap_or_else(|| {
                        StorageError::PostgresUnavailable(format!(
                            "the write's transaction failed: {message}"
                        ))
                    });
                    job.fail(e);
                }
            }
        }
    }

    /// Runs `jobs` in one transaction, pipelined: every job's statement is sent before the
    /// first answer is awaited (tokio-postgres writes a request on its future's first poll),
    /// in the order of `jobs`, and PostgreSQL runs them in that order. A batch of n jobs then
    /// costs about one round trip and one commit instead of n round trips.
    async fn transaction(&self, jobs: &[Job]) -> Result<Vec<Outcome>, StorageError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let txn = client.transaction().await?;
        if jobs.iter().any(Job::stores_changes) {
            // First, before any row lock (see the module's notes): ids commit in order.
            // The notification goes out at the commit, to every instance's feed follower
            // (`listen_for_changes`); one statement, so it costs no round trip of its own.
            txn.execute(
                &format!(
                    "SELECT pg_advisory_xact_lock($1, hashtext(COALESCE(current_schema(), ''))), \
                     pg_notify({CHANGES_CHANNEL}, '')"
                ),
                &[&CHANGES_LOCK],
            )
            .await?;
        }
        let statements = Statements::prepare(&txn).await?;
        let running: Vec<_> = {
            let mut context = Context::from_waker(Waker::noop());
            jobs.iter()
                .map(|job| {
                    let mut future = Box::pin(job.run(&txn, &statements));
                    // The first poll sends the statement; it is awaited below, in order.
                    let early = match future.as_mut().poll(&mut context) {
                        Poll::Ready(outcome) => Some(outcome),
                        Poll::Pending => None,
                    };
                    (future, early)
                })
                .collect()
        };
        let mut outcomes = Vec::with_capacity(jobs.len());
        for (future, early) in running {
            let outcome = match early {
                Some(outcome) => outcome,
                None => future.await,
            };
            outcomes.push(outcome?);
        }
        txn.commit().await?;
        Ok(outcomes)
    }
}

/// The writer's statements, prepared once per connection (the pool's statement cache keeps
/// them) so that running a job sends it at once.
struct Statements {
    create: tokio_postgres::Statement,
    rename: tokio_postgres::Statement,
    set_wakeup: tokio_postgres::Statement,
    clear_wakeup: tokio_postgres::Statement,
    add_event: tokio_postgres::Statement,
    append: tokio_postgres::Statement,
}

impl Statements {
    async fn prepare(txn: &deadpool_postgres::Transaction<'_>) -> Result<Self, StorageError> {
        Ok(Self {
            create: txn.prepare_cached(CREATE).await?,
            rename: txn
                .prepare_cached("UPDATE boards SET name = $2 WHERE id = $1")
                .await?,
            set_wakeup: txn
                .prepare_cached(
                    "INSERT INTO wakeups (board, at) VALUES ($1, $2)
                     ON CONFLICT (board) DO UPDATE SET at = excluded.at",
                )
                .await?,
            clear_wakeup: txn
                .prepare_cached("DELETE FROM wakeups WHERE board = $1")
                .await?,
            add_event: txn
                .prepare_cached(
                    "INSERT INTO timeline (board, card, at, kind, direction, user_id, text)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .await?,
            append: txn.prepare_cached(APPEND).await?,
        })
    }
}

/// Whether PostgreSQL refused a statement (the transaction did not commit, and running its
/// jobs again is safe), as opposed to a lost connection, after which a commit may have landed.
fn is_statement_error(e: &StorageError) -> bool {
    matches!(e, StorageError::Postgres(e) if e.as_db_error().is_some())
}
