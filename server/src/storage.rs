//! Durable storage of boards: an append-only log of updates per board, folded now and then into
//! a snapshot. Loading a board is its snapshot plus the log tail.
//!
//! The room appends every update before it broadcasts it, so what anyone has seen is on disk.
//! Implementations batch concurrent appends into one transaction (group commit).
//!
//! Modules: [`sqlite`] (the embedded default), [`postgres`] (what a cluster of instances shares),
//! [`webhooks`] (webhook endpoints, their outbox and delivery log, on both), [`accounts`] (people,
//! invites and sessions, on both).

pub mod accounts;
pub mod postgres;
pub mod sqlite;
pub mod webhooks;

use crate::feed::{ChangeEvent, ChangeFilter, NewChange};
use async_trait::async_trait;
use bytes::Bytes;
use funnel_protocol::BoardId;
use funnel_protocol::timeline::{TimelineDirection, TimelineKind};
use yrs::{Doc, ReadTxn, StateVector, Transact};

/// Position of an update in a board's log. Starts at 1; 0 means "nothing".
pub type Seq = u64;

/// A board as stored: the updates to apply in order, snapshot first.
#[derive(Debug, Default)]
pub struct StoredBoard {
    /// The snapshot (if any) followed by the log tail, each a lib0 v1 update with its seq.
    pub entries: Vec<(Seq, Bytes)>,
    /// How many of `entries` are log entries not yet folded into the snapshot.
    pub tail_len: usize,
}

impl StoredBoard {
    /// The sequence number of the last update included.
    pub fn last_seq(&self) -> Seq {
        self.entries.last().map_or(0, |(seq, _)| *seq)
    }

    /// The board's document: every entry applied in order.
    pub fn to_doc(&self, board: &BoardId) -> Result<Doc, StorageError> {
        self.apply_to(board, Doc::new())
    }

    /// The board applied to `doc` (an empty document, say with a client id of its choosing).
    pub fn apply_to(&self, board: &BoardId, doc: Doc) -> Result<Doc, StorageError> {
        {
            let mut txn = doc.transact_mut();
            for (seq, raw) in &self.entries {
                let corrupt = |reason: String| StorageError::Corrupt {
                    board: board.clone(),
                    seq: *seq,
                    reason,
                };
                let update = funnel_protocol::wire::decode_update_v1(raw)
                    .map_err(|e| corrupt(e.to_string()))?;
                txn.apply_update(update)
                    .map_err(|e| corrupt(e.to_string()))?;
            }
        }
        Ok(doc)
    }

    /// All entries merged into one update, through the document so that deleted content is
    /// garbage-collected. CPU-bound: call it off the async runtime.
    pub fn fold(&self, board: &BoardId) -> Result<Bytes, StorageError> {
        let doc = self.to_doc(board)?;
        let folded = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        Ok(Bytes::from(folded))
    }

    /// [`StoredBoard::fold`] on a blocking thread: folding a large board is CPU work, kept off
    /// the async runtime.
    pub async fn fold_blocking(self, board: &BoardId) -> Result<Bytes, StorageError> {
        let id = board.clone();
        tokio::task::spawn_blocking(move || self.fold(&id))
            .await
            .map_err(|_| StorageError::Closed)?
    }
}

/// What an append with change events stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The seq of the last update (as [`Storage::append`] returns it).
    pub seq: Seq,
    /// The id of the last change event stored with it; `None` when it carried none.
    pub last_change: Option<i64>,
}

/// A change event as the databases store it: its data already JSON text, made by the caller
/// (a room) rather than in the writer, which every room of the instance waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredChange {
    kind: String,
    at: i64,
    data: String,
}

impl From<NewChange> for StoredChange {
    fn from(change: NewChange) -> Self {
        Self {
            data: change.data.to_string(),
            kind: change.kind,
            at: change.timestamp,
        }
    }
}

/// The most change events one [`Storage::changes_after`] call returns.
pub const MAX_CHANGES_PAGE: usize = 1000;

/// What the board list shows of a board, kept beside its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardMeta {
    pub id: BoardId,
    /// `lead`, `deal`, `invoice`, `quote` or `smart:<typeId>`.
    pub entity: String,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When an admin archived the board (ms since the Unix epoch); `None`: it is not archived.
    /// An archived board leaves the board list and opens read-only (docs/api.md).
    pub archived_at: Option<i64>,
}

/// A timeline event of a card, as stored (comments, calls, e-mails, chat messages). Kept out of
/// the board document, which stays small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    /// Increasing; pages of a card's timeline go by id.
    pub id: i64,
    pub board: BoardId,
    pub card: String,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// `comment`, `call`, `email` or `chat`, stored as that text.
    pub kind: TimelineKind,
    /// `incoming`, `outgoing` or `missed` (calls); none (stored empty) for comments.
    pub direction: TimelineDirection,
    /// The employee the event belongs to (who commented, who took or missed the call...).
    pub user: String,
    pub text: String,
}

impl TimelineEvent {
    /// What the event counts for in its board's size budget: its texts, in bytes, plus the
    /// id and the time.
    pub fn stored_len(&self) -> usize {
        self.card.len()
            + self.kind.as_str().len()
            + self.direction.as_str().len()
            + self.user.len()
            + self.text.len()
            + 16
    }
}

/// How long an `Idempotency-Key` holds its first response: a retry within this time gets it.
pub const KEY_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a key stays in flight without an answer before it counts as abandoned (its
/// server died mid-request) and a retry may claim it anew. Longer than any request takes.
pub const KEY_IN_FLIGHT_MS: i64 = 60 * 1000;

/// A request that claims an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// Who sent it: keys of different callers never meet.
    pub caller: String,
    /// The `Idempotency-Key` header.
    pub key: String,
    /// A digest of the method, path and body: a retry must send the same.
    pub fingerprint: String,
    /// Names this claim, so that only its holder finishes or releases it.
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub now: i64,
}

/// A response kept under its key and replayed to a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Bytes,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key was free (new, expired, or abandoned in flight): the request now holds it.
    Claimed,
    /// Another request with this key has not finished.
    InFlight { fingerprint: String },
    /// A request with this key finished within the key's lifetime: its response.
    Done {
        fingerprint: String,
        response: KeptResponse,
    },
}

/// An inbound e-mail a board took: its Message-ID (the key that makes a second delivery a
/// duplicate, and that a reply names in In-Reply-To or References) and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    pub board: BoardId,
    /// As the message gave it, without the angle brackets.
    pub message_id: String,
    /// The card it created or was added to.
    pub card: String,
    /// Its entry in the card's timeline.
    pub event_id: i64,
    pub subject: String,
    /// The sender's address, as written (matching ignores case).
    pub from_address: String,
    /// The sender's display name; empty when none.
    pub from_name: String,
    /// Milliseconds since the Unix epoch, when it was taken.
    pub at: i64,
}

/// What a claim of a Message-ID found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailClaim {
    /// The Message-ID was new (or its claim was abandoned in flight): the caller holds it now.
    Claimed,
    /// The board took this Message-ID already.
    Taken(InboundMail),
    /// Another delivery of the same message is being taken right now.
    InFlight,
}

/// How long a claimed Message-ID stays in flight before it counts as abandoned (its server died
/// while taking it) and a new delivery may claim it. Longer than taking a message takes.
pub const MAIL_IN_FLIGHT_MS: i64 = 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A statement failed or the connection broke. The message carries PostgreSQL's own text
    /// (the driver's `Display` alone says only "db error").
    #[error("postgres: {}", describe_postgres(.0))]
    Postgres(tokio_postgres::Error),
    /// PostgreSQL cannot be used at all: a bad URL, an unreachable server, a refused login, or
    /// no pooled connection within the wait limit.
    #[error("{0}")]
    PostgresUnavailable(String),
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored update of board {board} at seq {seq} does not decode: {reason}")]
    Corrupt {
        board: BoardId,
        seq: Seq,
        reason: String,
    },
    /// An append of a board's scheduler carried an older fence than one recorded already: a
    /// newer lease holder has written since, so this one lost the lease.
    #[error(
        "board {board}: fence {fence} is older than the recorded fence {current}; this instance \
         lost the board's lease and must stop writing as its scheduler"
    )]
    Fenced {
        board: BoardId,
        fence: u64,
        current: u64,
    },
    /// An append or fence for a board that was never created.
    #[error("board {0} does not exist; create it before appending to it")]
    NoSuchBoard(BoardId),
    /// A stored timeline event whose `kind` or `direction` names none the API takes (events are
    /// stored from the typed values, so the table was edited by other means).
    #[error("stored timeline event {id} does not read back: {reason}")]
    CorruptEvent { id: i64, reason: String },
    /// A stored change event that does not read back (its board id or its data).
    #[error("stored change event {id} does not read back: {reason}")]
    CorruptChange { id: i64, reason: String },
    /// The database was migrated by a newer funnel than this one (a rollback to an older
    /// build): nothing is touched.
    #[error(
        "the database's schema is at version {found}, newer than this funnel knows ({known}); \
         run a newer funnel, or restore a backup made by this version"
    )]
    NewerSchema { found: usize, known: usize },
    /// A migration the database records differs from this funnel's migration of that number:
    /// another build (a branch, a fork) migrated it. Nothing is touched.
    #[error(
        "the database's migration {version} is not this funnel's (it was migrated by another \
         build of funnel); run that build, or restore a backup made by this version"
    )]
    ForeignSchema { version: usize },
    #[error("storage is shut down")]
    Closed,
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

/// PostgreSQL's own message for an error (the driver's `Display` says only "db error"), or the
/// driver's message with its causes.
fn describe_postgres(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} (sqlstate {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str("; ");
            text.push_str(detail);
        }
        if let Some(hint) = db.hint() {
            text.push_str("; hint: ");
            text.push_str(hint);
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A change event as both databases store it: its board id and its data as text.
fn change_from_row(
    id: i64,
    board: &str,
    kind: String,
    at: i64,
    data: &str,
) -> Result<ChangeEvent, StorageError> {
    let corrupt = |reason: String| StorageError::CorruptChange { id, reason };
    Ok(ChangeEvent {
        id,
        board: BoardId::parse(board).map_err(|e| corrupt(e.to_string()))?,
        kind,
        timestamp: at,
        data: serde_json::from_str(data).map_err(|e| corrupt(e.to_string()))?,
    })
}

/// A fence as the databases store it (a signed 64-bit column). Fences count lease grants and
/// never come near `i64::MAX`; one above it is stored as `i64::MAX`, still refusing every lower
/// fence.
fn fence_column(fence: u64) -> i64 {
    i64::try_from(fence).unwrap_or(i64::MAX)
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The board's snapshot and log tail, or `None` when the board does not exist. Snapshot and
    /// log are read consistently: a compaction committing meanwhile cannot hide entries.
    async fn load(&self, board: &BoardId) -> Result<Option<StoredBoard>, StorageError>;

    /// What a replica that has applied everything up to `after` lacks: the log entries with a
    /// seq above `after`, in order. When some of them are already folded into the snapshot, the
    /// snapshot comes first (with its seq), then the tail above it; `tail_len` counts the log
    /// entries. Empty when nothing is above `after`; `None` when the board does not exist.
    /// This is how an instance catches up from the shared log after a lost pub/sub message.
    async fn load_since(
        &self,
        board: &BoardId,
        after: Seq,
    ) -> Result<Option<StoredBoard>, StorageError>;

    /// Creates the board with `initial` as its first update, unless it exists already; returns
    /// whether this call created it. Two racing creators: exactly one wins.
    /// `meta.created_at` is set by storage.
    async fn create(&self, meta: &BoardMeta, initial: Bytes) -> Result<bool, StorageError>;

    /// Every board, oldest first.
    async fn list(&self) -> Result<Vec<BoardMeta>, StorageError>;

    /// One board's metadata, or `None` when it does not exist.
    async fn meta(&self, board: &BoardId) -> Result<Option<BoardMeta>, StorageError>;

    /// Records when a board must next be woken up to update its counters (`None`: never), so
    /// that a reminder fires while nobody has the board open, and after a restart.
    async fn set_wakeup(&self, board: &BoardId, at: Option<i64>) -> Result<(), StorageError>;

    /// Every recorded wake-up.
    async fn wakeups(&self) -> Result<Vec<(BoardId, i64)>, StorageError>;

    /// Stores a timeline event (its `id` is assigned) and returns it. With `mail`, the inbound
    /// message it came from is settled in the same transaction (its `event_id` is the new id),
    /// so nobody reads the entry without its mail (subject, sender).
    async fn add_event(
        &self,
        event: TimelineEvent,
        mail: Option<InboundMail>,
    ) -> Result<TimelineEvent, StorageError>;

    /// A card's timeline, newest first: up to `limit` events with an id below `before`.
    async fn events(
        &self,
        board: &BoardId,
        card: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, StorageError>;

    /// What a board's timeline events take in storage, in bytes (`TimelineEvent::stored_len`
    /// summed): the part of the board's size budget that is not its document.
    async fn timeline_bytes(&self, board: &BoardId) -> Result<usize, StorageError>;

    /// Records a board's new name (the name lives in the document; this copy feeds the list).
    async fn rename(&self, board: &BoardId, name: &str) -> Result<(), StorageError>;

    /// Appends updates to the board's log, in order, durably; returns the seq of the last one.
    ///
    /// The `n` updates of one call get the consecutive seqs `last - n + 1 ..= last`, even with
    /// several instances appending to the board at once, and seqs become visible in order: a
    /// reader that sees seq `N` sees every seq below it (catch-up with [`Storage::load_since`]
    /// relies on it). With no updates, returns the board's last seq and writes nothing.
    async fn append(&self, board: &BoardId, updates: Vec<Bytes>) -> Result<Seq, StorageError>;

    /// [`Storage::append`] for the updates that a board's scheduler (its lease holder) writes.
    /// In the same transaction it records `fence` as the board's fence, and refuses the whole
    /// append with [`StorageError::Fenced`] when a higher fence was recorded already: a holder
    /// that was paused and lost its lease cannot write after a newer holder did. An equal or
    /// higher fence is accepted. Seqs and visibility are as for `append`; plain `append`
    /// (clients' updates) is not fenced.
    async fn append_fenced(
        &self,
        board: &BoardId,
        updates: Vec<Bytes>,
        fence: u64,
    ) -> Result<Seq, StorageError>;

    /// [`Storage::append`] (no `fence`) or [`Storage::append_fenced`] (a `fence`) that stores
    /// `changes`, the change events derived from these updates, in the same transaction: both
    /// or neither are stored. Their ids are assigned in order, above every id committed before,
    /// and commit in id order even with several instances writing (the feed's contract, see
    /// `crate::feed`). A refused fenced append stores no events either.
    async fn append_with_changes(
        &self,
        board: &BoardId,
        updates: Vec<Bytes>,
        fence: Option<u64>,
        changes: Vec<NewChange>,
    ) -> Result<Appended, StorageError>;

    /// The change events with an id above `after` that pass `filter`, in id order, at most
    /// `limit` (capped at [`MAX_CHANGES_PAGE`]). A reader that got id `N` has seen every
    /// committed event below `N` that passes the filter, and none below `N` commits later.
    async fn changes_after(
        &self,
        after: i64,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StorageError>;

    /// A card's history: the change events about card `card` of `board` (those whose data names
    /// it as `cardId`) with an id below `before`, newest first, at most `limit` (capped at
    /// [`MAX_CHANGES_PAGE`]). Served by an index on (board, card, id).
    async fn card_changes(
        &self,
        board: &BoardId,
        card: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StorageError>;

    /// The cards of `board` that have a change event stored at `since` (ms) or later: what
    /// `updatedSince` adds to the cards' own `updatedAt`, which a client's socket edit need not
    /// set. Events are kept `--change-retention`; older changes are not found here.
    async fn cards_changed_since(
        &self,
        board: &BoardId,
        since: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Archives the board (`Some(at)`, ms since the Unix epoch) or restores it (`None`);
    /// returns whether the board exists.
    async fn set_archived(&self, board: &BoardId, at: Option<i64>) -> Result<bool, StorageError>;

    /// The id of the newest stored change event (0: none).
    async fn latest_change(&self) -> Result<i64, StorageError>;

    /// A signal each time any instance may have stored change events, and once after each
    /// (re)connection of the listener (what was stored while it was away), until `shutdown`:
    /// PostgreSQL's `NOTIFY`, sent by every transaction that stores events and delivered at its
    /// commit. `None` where nothing signals (SQLite: one process stores them all); the feed's
    /// cluster follower polls [`Storage::latest_change`] either way, less often when signalled.
    fn change_signals(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let _ = shutdown;
        None
    }

    /// Deletes the change events stored before `before` (ms since the Unix epoch); returns how
    /// many. Ids are never given out again.
    async fn sweep_changes(&self, before: i64) -> Result<u64, StorageError>;

    /// Folds the board's log into its snapshot, from what is stored (never from a room's memory,
    /// so that several writers stay safe). Appends made meanwhile are kept.
    async fn compact(&self, board: &BoardId) -> Result<(), StorageError>;

    /// Records `data` as the board's snapshot up to `seq` and deletes the log entries it
    /// covers, unless a snapshot with a higher seq is there already. For the board's only
    /// writer (a single instance's room), which holds every entry up to `seq` in memory and
    /// nothing else: it snapshots its own document instead of folding a second copy of the
    /// board from the log (`compact`), which a cluster must do.
    async fn put_snapshot(
        &self,
        board: &BoardId,
        seq: Seq,
        data: Bytes,
    ) -> Result<(), StorageError>;

    /// Claims `request.key` for `request.caller` at `request.now`, atomically across
    /// instances: free when no row holds it, its row expired ([`KEY_LIFETIME_MS`] after its
    /// claim) or its row stayed in flight for [`KEY_IN_FLIGHT_MS`]. Otherwise says what holds it.
    async fn claim_key(&self, request: &KeyRequest) -> Result<KeyClaim, StorageError>;

    /// Records the response of the request that claimed the key with `token`; nothing when
    /// another claim has taken the key since.
    async fn finish_key(
        &self,
        caller: &str,
        key: &str,
        token: &str,
        response: &KeptResponse,
    ) -> Result<(), StorageError>;

    /// Frees a key claimed with `token` that is still in flight (its request failed and wrote
    /// nothing), so that a retry may run.
    async fn release_key(&self, caller: &str, key: &str, token: &str) -> Result<(), StorageError>;

    /// Deletes every key that expired by `now`; returns how many.
    async fn sweep_keys(&self, now: i64) -> Result<u64, StorageError>;

    /// Claims `message_id` on `board` at `now`, atomically across instances: free when no row
    /// holds it, or its row stayed in flight for [`MAIL_IN_FLIGHT_MS`].
    async fn claim_mail(
        &self,
        board: &BoardId,
        message_id: &str,
        now: i64,
    ) -> Result<MailClaim, StorageError>;

    /// Frees a claim that is still in flight (taking the message failed and wrote nothing), so
    /// that a new delivery may run.
    async fn release_mail(&self, board: &BoardId, message_id: &str) -> Result<(), StorageError>;

    /// The card of the most recently taken message among `message_ids` on `board`, if any: where
    /// a reply goes.
    async fn mail_card(
        &self,
        board: &BoardId,
        message_ids: &[String],
    ) -> Result<Option<String>, StorageError>;

    /// The taken messages whose timeline entries are `event_ids` (for a timeline page).
    async fn mails_of_events(
        &self,
        board: &BoardId,
        event_ids: &[i64],
    ) -> Result<Vec<InboundMail>, StorageError>;

    /// Webhook endpoints, their outbox of deliveries and their log.
    fn webhooks(&self) -> &dyn webhooks::WebhookStore;

    /// People, their invites and their sessions.
    fn accounts(&self) -> &dyn accounts::AccountStore;

    /// Whether storage answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StorageError>;

    /// Finishes queued writes and stops. Later calls fail with [`StorageError::Closed`].
    async fn close(&self);
}

/// What a database records of a migration it ran: the SHA-256 of its SQL, in hex. A migration
/// is never edited once released, so a different checksum means another build migrated the
/// database ([`StorageError::ForeignSchema`]).
pub fn migration_checksum(sql: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Compares the checksums a database records of its first `done` migrations (`recorded`: version
/// → checksum, `None` where a row has none) with this build's `migrations`. Returns the versions
/// to record with their checksums (a database from before checksums were kept: it ran these
/// migrations, since nothing else advances its version), or [`StorageError::ForeignSchema`] for
/// the first that differs.
pub fn unrecorded_migrations(
    migrations: &[&str],
    done: usize,
    recorded: &std::collections::HashMap<usize, Option<String>>,
) -> Result<Vec<(usize, String)>, StorageError> {
    let mut to_record = Vec::new();
    for (index, sql) in migrations.iter().enumerate().take(done) {
        let version = index + 1;
        let ours = migration_checksum(sql);
        match recorded.get(&version) {
            Some(Some(theirs)) if *theirs != ours => {
                return Err(StorageError::ForeignSchema { version });
            }
            Some(Some(_)) => {}
            Some(None) | None => to_record.push((version, ours)),
        }
    }
    Ok(to_record)
}
