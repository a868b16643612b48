//! A room: the one task that owns a board's document while the board has connections.
//!
//! Architecture invariant: only the room task touches a room's `Doc`. Connections talk to it
//! through its bounded command channel, so the room's order is the channel's order and no lock
//! guards the document. The logic lives in [`state::RoomState`]; this file is the task around it:
//! loading, batching, storing before delivering, awareness sweeps, compaction and unloading.

pub mod state;
pub mod upkeep;

use crate::auth::Principal;
use crate::clock::Clock;
use crate::lease::Leases;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::rooms::Rooms;
use crate::storage::{BoardMeta, Storage, StorageError, StoredBoard, TimelineEvent};
use crate::wakeups::Wakeups;
use bytes::Bytes;
use funnel_protocol::BoardId;
use funnel_protocol::board;
use funnel_protocol::schema::{self, Entity};
use funnel_protocol::wire::{ClientMessage, CloseCode};
use state::RoomState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use yrs::{Doc, Transact};

/// Commands a room takes, in channel order.
pub enum RoomCommand {
    /// A connection joins; the room sends it frames through `outbox` until it leaves. Its
    /// `principal` (already authenticated and allowed on this board) decides what it may write.
    Join {
        conn: ConnId,
        outbox: Outbox,
        principal: Principal,
    },
    /// A decoded message from a connection.
    Message {
        conn: ConnId,
        message: ClientMessage,
    },
    /// A connection is gone.
    Leave { conn: ConnId },
    /// The scheduler: a counter of this board is due to change (a reminder).
    Wake,
    /// A timeline event of a card (from the API): stored, then applied to the card (its avatar,
    /// an incoming activity, `timelineAt`); the reply comes once all of it is durable.
    Timeline {
        event: TimelineEvent,
        reply: oneshot::Sender<Result<TimelineEvent, TimelineError>>,
    },
}

/// Why a timeline event was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("no card {0} on this board")]
    NoSuchCard(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A connection's id, unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Capacity of a room's command channel. A full channel makes the connections' readers wait,
/// which stops them reading their sockets: back-pressure, not memory growth.
pub const ROOM_QUEUE: usize = 1024;

/// How many commands a room handles before it stores and delivers: larger batches mean fewer
/// storage transactions under load, smaller ones a shorter wait for the first command.
const MAX_BATCH: usize = 256;

/// How often stale presences are swept (see `state::AWARENESS_TIMEOUT_MS`).
const AWARENESS_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// What every room needs, shared.
#[derive(Clone)]
pub struct RoomContext {
    pub storage: Arc<dyn Storage>,
    pub config: RoomConfig,
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
    /// Wall-clock time for counters and reminders.
    pub clock: Arc<dyn Clock>,
    /// Who maintains each board's counters and avatars.
    pub leases: Arc<dyn Leases>,
    /// When each board must next be woken up (shared with the scheduler).
    pub wakeups: Wakeups,
}

#[derive(Debug, Clone, Copy)]
pub struct RoomConfig {
    /// How long a room with no connection stays loaded.
    pub idle_unload_after: Duration,
    /// Log entries since the last snapshot that trigger a background compaction.
    pub compact_after_updates: usize,
    /// The most a board may take in storage (snapshot and log), in bytes.
    pub max_board_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("board {board} vanished right after it was created")]
    Vanished { board: BoardId },
}

/// The room task. `rx` is the receiving end of the channel whose senders the registry hands out.
pub async fn run(
    board: BoardId,
    generation: u64,
    mut rx: mpsc::Receiver<RoomCommand>,
    rooms: Rooms,
    ctx: RoomContext,
) {
    ctx.metrics.rooms.inc();
    // Counts the room out however this function ends.
    let _loaded = RoomGauge(ctx.metrics.clone());
    let started = Instant::now();
    let clock = move || started.elapsed().as_millis() as u64;
    let (doc, tail_len, stored_bytes) = match load_or_create(&board, ctx.storage.as_ref()).await {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(board = %board, error = %e, "board could not be loaded");
            rooms.remove(&board, generation, &mut rx, |_| true);
            let reason = match e {
                LoadError::Storage(StorageError::Corrupt { .. }) => "board storage is damaged",
                _ => "board could not be loaded; try again",
            };
            refuse_joins(&mut rx, CloseCode::InternalError, reason);
            return;
        }
    };
    tracing::debug!("room loaded");
    let name = board::settings(&doc.transact()).name;
    let mut state = RoomState::new(board.clone(), doc, clock);
    state.limit_size(stored_bytes, ctx.config.max_board_bytes);
    let mut room = Room {
        name,
        timeline_replies: Vec::new(),
        state,
        storage: Arc::clone(&ctx.storage),
        metrics: ctx.metrics.clone(),
        config: ctx.config,
        tail_len,
        compaction: None,
    };
    // Exactly one holder maintains a board's counters and avatars; in one process the lease is
    // only busy while a previous room of this board is still unloading, so it is retried.
    let mut lease = ctx.leases.try_acquire(&board).await;
    if lease.is_some() {
        room.state.enable_upkeep();
    }
    room.state.run_upkeep(ctx.clock.now_ms());
    // The wake-up last recorded for this board (`Some(None)`: recorded as none).
    let mut recorded_wake: Option<Option<i64>> = None;
    let mut sweep = tokio::time::interval(AWARENESS_SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since = Some(Instant::now());
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let idle_deadline = idle_since.map(|since| since + ctx.config.idle_unload_after);
        let wake = room.state.next_wake().map(|at| {
            let wait = at.saturating_sub(ctx.clock.now_ms()).max(0) as u64;
            Instant::now() + Duration::from_millis(wait)
        });
        tokio::select! {
            () = ctx.shutdown.cancelled() => {
                room.state.close_all(CloseCode::ServiceRestart, "server restarting; reconnect");
                break;
            }
            received = rx.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break; // every sender is gone: the registry dropped this room
                }
                let mut reload_failed = false;
                for command in batch.drain(..) {
                    match command {
                        RoomCommand::Timeline { event, reply } => room.timeline(event, reply).await,
                        command => room.handle(command),
                    }
                    // A refused update is in the document but nowhere else: swap in the stored
                    // board before the next command reads this one (a joiner's full state).
                    if room.state.is_tainted() && room.recover(&board).await.is_err() {
                        reload_failed = true;
                        break;
                    }
                }
                if reload_failed {
                    room.state
                        .close_all(CloseCode::InternalError, "board reload failed; reconnect");
                    break;
                }
            }
            _ = sweep.tick() => room.state.sweep_awareness(clock()),
            () = sleep_until_opt(idle_deadline) => {
                if rooms.remove(&board, generation, &mut rx, |rx| rx.is_empty()) {
                    // Fold what this visit wrote, so the next load reads one snapshot. Safe
                    // beside a new room of the same board: compaction works from storage alone.
                    if room.tail_len > 0 {
                        room.start_compaction();
                    }
                    break;
                }
            }
            () = wait_opt(&mut room.compaction) => {}
            () = sleep_until_opt(wake) => {}
        }
        if lease.is_none() {
            lease = ctx.leases.try_acquire(&board).await;
            if lease.is_some() {
                room.state.enable_upkeep();
            }
        }
        room.state.run_upkeep(ctx.clock.now_ms());
        let stored = room.store_then_deliver().await;
        for (reply, event) in room.timeline_replies.drain(..) {
            let _ = reply.send(match &stored {
                Ok(()) => Ok(event),
                Err(_) => Err(TimelineError::Storage(StorageError::Closed)),
            });
        }
        if let Err(e) = stored {
            tracing::error!(board = %board, error = %e, "storing updates failed; closing the board");
            room.state.close_all(
                CloseCode::InternalError,
                "storage failed; reconnect to resync",
            );
            break;
        }
        // Record when this board must next wake up, for the scheduler and across restarts.
        let wake = room.state.next_wake();
        if room.state.has_upkeep() && recorded_wake != Some(wake) {
            ctx.wakeups.set(&board, wake);
            match ctx.storage.set_wakeup(&board, wake).await {
                Ok(()) => recorded_wake = Some(wake),
                Err(e) => {
                    tracing::warn!(board = %board, error = %e, "cannot record the next wake-up")
                }
            }
        }
        idle_since = match (room.state.member_count(), idle_since) {
            (0, None) => Some(Instant::now()),
            (0, since) => since,
            _ => None,
        };
    }
    rooms.remove(&board, generation, &mut rx, |_| true);
    // Joins that raced with the unload: their connections retry on a fresh room.
    refuse_joins(
        &mut rx,
        CloseCode::TryAgainLater,
        "board is reloading; reconnect",
    );
    if let Some(task) = room.compaction.take() {
        let _ = task.await;
    }
    tracing::debug!(board = %board, "room unloaded");
}

struct Room {
    state: RoomState,
    storage: Arc<dyn Storage>,
    metrics: Metrics,
    config: RoomConfig,
    /// Log entries stored since the last compaction started.
    tail_len: usize,
    /// The board's name as last recorded for the board list.
    name: String,
    /// Timeline events whose card changes are in this batch: answered once it is stored.
    timeline_replies: Vec<(
        oneshot::Sender<Result<TimelineEvent, TimelineError>>,
        TimelineEvent,
    )>,
    compaction: Option<JoinHandle<()>>,
}

impl Room {
    fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join {
                conn,
                outbox,
                principal,
            } => self.state.join(conn, outbox, principal),
            RoomCommand::Message { conn, message } => self.state.handle(conn, message),
            RoomCommand::Leave { conn } => self.state.leave(conn),
            // Upkeep runs after every batch; waking is all it takes.
            RoomCommand::Wake => {}
            // Handled by `timeline`, which waits for storage.
            RoomCommand::Timeline { reply, .. } => {
                let _ = reply.send(Err(TimelineError::Storage(StorageError::Closed)));
            }
        }
    }

    /// Stores a timeline event and applies it to its card; the reply waits for the batch to be
    /// stored.
    async fn timeline(
        &mut self,
        event: TimelineEvent,
        reply: oneshot::Sender<Result<TimelineEvent, TimelineError>>,
    ) {
        if !self.state.has_card(&event.card) {
            let _ = reply.send(Err(TimelineError::NoSuchCard(event.card)));
            return;
        }
        match self.storage.add_event(event).await {
            Ok(stored) => {
                self.state.apply_timeline_event(&stored);
                self.timeline_replies.push((reply, stored));
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Stores what the batch changed, then delivers its frames: nothing reaches another client
    /// before it is durable.
    async fn store_then_deliver(&mut self) -> Result<(), StorageError> {
        let updates = self.state.take_updates_to_store();
        if !updates.is_empty() {
            let count = updates.len();
            self.storage.append(self.state.board(), updates).await?;
            self.metrics.store_batches.inc();
            self.metrics.updates_stored.inc_by(count as u64);
            self.tail_len += count;
            self.maybe_compact();
            // The board list shows the name: keep its copy in step with the document (not from
            // a document that holds a refused update: it is about to be replaced).
            let name = board::settings(&self.state.doc().transact()).name;
            if name != self.name && !self.state.is_tainted() {
                self.storage.rename(self.state.board(), &name).await?;
                self.name = name;
            }
        }
        if self.state.has_frames() {
            self.state.deliver();
        }
        Ok(())
    }

    /// Stores and delivers what the batch made so far (all of it allowed), then replaces the
    /// document, which holds a refused update, with the stored board.
    async fn recover(&mut self, board: &BoardId) -> Result<(), ()> {
        let reloaded = match self.store_then_deliver().await {
            Ok(()) => reload(board, self.storage.as_ref()).await,
            Err(e) => Err(e.into()),
        };
        match reloaded {
            Ok((doc, stored_bytes)) => {
                self.state.replace_doc(doc, stored_bytes);
                Ok(())
            }
            Err(e) => {
                tracing::error!(board = %board, error = %e, "reloading the board failed");
                Err(())
            }
        }
    }

    fn maybe_compact(&mut self) {
        if self.tail_len >= self.config.compact_after_updates {
            self.start_compaction();
        }
    }

    /// Folds the board's log into its snapshot in the background, one compaction at a time.
    fn start_compaction(&mut self) {
        if self.compaction.is_some() {
            return;
        }
        self.tail_len = 0;
        let storage = Arc::clone(&self.storage);
        let board = self.state.board().clone();
        self.compaction = Some(tokio::spawn(async move {
            match storage.compact(&board).await {
                Ok(()) => tracing::debug!(board = %board, "compacted"),
                Err(e) => tracing::warn!(board = %board, error = %e, "compaction failed"),
            }
        }));
    }
}

/// The board's document, how many log entries follow its snapshot, and how many bytes it takes
/// in storage; a board that does not exist is created first.
async fn load_or_create(
    board: &BoardId,
    storage: &dyn Storage,
) -> Result<(Doc, usize, usize), LoadError> {
    let stored = match storage.load(board).await? {
        Some(stored) => stored,
        None => {
            // Local mode: whoever opens a board that does not exist creates it, as a deal
            // pipeline.
            let entity = Entity::Deal;
            let meta = BoardMeta {
                id: board.clone(),
                entity: entity.as_string(),
                name: entity.default_board_name(),
                created_at: 0,
            };
            if create_board(storage, &meta, &entity).await? {
                tracing::info!("board created");
            }
            // Load what is stored, which is another creator's board if that one won the race.
            storage
                .load(board)
                .await?
                .ok_or_else(|| LoadError::Vanished {
                    board: board.clone(),
                })?
        }
    };
    Ok((
        stored.to_doc(board)?,
        stored.tail_len,
        stored_bytes(&stored),
    ))
}

fn stored_bytes(stored: &StoredBoard) -> usize {
    stored.entries.iter().map(|(_, raw)| raw.len()).sum()
}

/// Creates a board of `entity` named `meta.name` with its default stages, unless it exists;
/// returns whether this call created it.
pub async fn create_board(
    storage: &dyn Storage,
    meta: &BoardMeta,
    entity: &Entity,
) -> Result<bool, StorageError> {
    let doc = Doc::new();
    let initial = {
        let mut txn = doc.transact_mut();
        schema::initialize_board(&mut txn, entity, &meta.name);
        txn.encode_update_v1()
    };
    storage.create(meta, Bytes::from(initial)).await
}

/// The board as stored (and its size), to replace a document that holds a refused update.
async fn reload(board: &BoardId, storage: &dyn Storage) -> Result<(Doc, usize), LoadError> {
    let stored = storage
        .load(board)
        .await?
        .ok_or_else(|| LoadError::Vanished {
            board: board.clone(),
        })?;
    Ok((stored.to_doc(board)?, stored_bytes(&stored)))
}

/// Decrements the loaded-rooms gauge when dropped.
struct RoomGauge(Metrics);

impl Drop for RoomGauge {
    fn drop(&mut self) {
        self.0.rooms.dec();
    }
}

fn refuse_joins(rx: &mut mpsc::Receiver<RoomCommand>, code: CloseCode, reason: &str) {
    rx.close();
    while let Ok(command) = rx.try_recv() {
        if let RoomCommand::Join { outbox, .. } = command {
            outbox.close(code, reason);
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn wait_opt(task: &mut Option<JoinHandle<()>>) {
    match task {
        Some(handle) => {
            let _ = handle.await;
            *task = None;
        }
        None => std::future::pending().await,
    }
}
