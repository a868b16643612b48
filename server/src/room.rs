//! A room: the one task that owns a board's document while the board has connections.
//!
//! Architecture invariant: only the room task touches a room's `Doc`. Connections talk to it
//! through its bounded command channel, so the room's order is the channel's order and no lock
//! guards the document. The logic lives in [`state::RoomState`]; this file is the task around it:
//! loading, batching, storing before delivering, awareness sweeps, compaction and unloading, and
//! in a cluster the bus (publishing what it stored, applying what others stored) and the
//! catch-ups from the storage log. The board's lease has one owner, [`lease_keeper`].
//!
//! The task is `Room`: each turn waits in one `select!` for the first thing to do, does it
//! (one method per kind of event), then ends the turn in one place (`Room::end_turn`). The
//! room leaves its registry through a [`Registration`], so it never names the registry.
//!
//! Modules: [`state`] (the state machine), [`upkeep`] (what the server writes on cards),
//! [`lease_keeper`] (the board's lease as the room holds it), [`api_write`] (the board API's
//! reads and writes), [`changes`] (the change feed's events of what the room stores),
//! [`model`] (the board's one read model, which the upkeep and the feed share), `hibernation`
//! (when a quiet room lets go of its board and what wakes it; the state's part is in
//! `state/hibernation.rs`).

pub mod api_write;
pub mod changes;
mod hibernation;
pub mod lease_keeper;
pub mod model;
pub mod state;
pub mod upkeep;

use crate::auth::Principal;
use crate::bus::{Bus, BusEvent, BusPayload, Subscription};
use crate::clock::Clock;
use crate::lease::Leases;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::storage::{BoardMeta, Seq, Storage, StorageError, StoredBoard, TimelineEvent};
use crate::wakeups::Wakeups;
use bytes::Bytes;
use funnel_protocol::BoardId;
use funnel_protocol::board;
use funnel_protocol::schema::{self, Entity};
use funnel_protocol::wire::{ClientMessage, CloseCode};
use lease_keeper::{LeaseEvent, LeaseKeeper};
pub use state::ConnId;
use state::RoomState;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use yrs::{Doc, Transact};

/// Commands a room takes, in channel order. Each variant's payload is boxed: the command
/// channel allocates its slots 32 at a time, two such blocks a room, and a command was 160
/// bytes (10 KiB a room) when the payloads were inline; boxed, it is 32.
pub enum RoomCommand {
    /// A connection joins; the room sends it frames through `outbox` until it leaves. Its
    /// `principal` (already authenticated and allowed on this board) decides what it may write.
    Join {
        conn: ConnId,
        outbox: Outbox,
        principal: Box<Principal>,
    },
    /// A decoded message from a connection.
    Message {
        conn: ConnId,
        message: Box<ClientMessage>,
    },
    /// A connection is gone.
    Leave { conn: ConnId },
    /// The scheduler: a counter of this board is due to change (a reminder).
    Wake,
    /// A timeline event of a card (from the API): stored, then applied to the card (its avatar,
    /// an incoming activity, `timelineAt`); the reply comes once all of it is durable.
    Timeline {
        event: Box<TimelineEvent>,
        /// Where it came from (the API, or inbound e-mail), for the change feed.
        origin: crate::feed::Origin,
        /// The inbound message the event records, settled with it in storage (its `event_id`
        /// is set there): a reader never sees the entry without its mail. Its Subject is the
        /// subject of the open incoming activity an incoming event adds; without a mail (or a
        /// subject), the start of the event's text. Boxed: a room command stays small (the
        /// command channel holds many).
        mail: Option<Box<crate::storage::InboundMail>>,
        reply: oneshot::Sender<Result<TimelineEvent, TimelineError>>,
    },
    /// A read or write of the board API (see [`api_write`]); the reply comes once what it wrote
    /// is stored.
    Api {
        request: Box<api_write::ApiRequest>,
        reply: api_write::ApiReply,
    },
}

/// Why a timeline event was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("no card {0} on this board")]
    NoSuchCard(String),
    #[error("the board is at its size limit ({max} bytes): the event was not added")]
    BoardFull { max: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Capacity of a room's command channel. A full channel makes the connections' readers wait,
/// which stops them reading their sockets: back-pressure, not memory growth.
pub const ROOM_QUEUE: usize = 1024;

/// How many commands a room handles before it stores and delivers: larger batches mean fewer
/// storage transactions under load, smaller ones a shorter wait for the first command.
pub const MAX_BATCH: usize = 256;

/// How often stale presences are swept (see `state::AWARENESS_TIMEOUT_MS`) and what only a busy
/// board needs is let go (`RoomState::release_idle`).
const AWARENESS_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How often a room of a cluster catches up from the storage log even when the bus reports
/// nothing: a message can be lost without any receiver noticing (a publish dropped on the
/// sending instance, its queue full while Redis was slow or down). This bounds how long a
/// replica can miss a change to this interval plus one load; each tick costs one read of an
/// (usually empty) log tail per loaded board.
const CATCH_UP_EVERY: Duration = Duration::from_secs(5);

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
    /// The cluster fan-out; `None` for a single instance (then no bus code runs at all).
    pub bus: Option<Arc<dyn Bus>>,
    /// Told the newest change event id after each append that stored events.
    pub feed: crate::feed::Feed,
}

#[derive(Debug, Clone, Copy)]
pub struct RoomConfig {
    /// How long a room with no connection stays loaded.
    pub idle_unload_after: Duration,
    /// Log entries since the last snapshot that trigger a background compaction.
    pub compact_after_updates: usize,
    /// The most a board may hold (its document's encoded size and its timeline events), in bytes.
    pub max_board_bytes: usize,
    /// How long a room with nothing to do for its board (no command reading or writing it, no
    /// update from another instance, no wake-up) keeps the board in memory before it
    /// hibernates: it drops the document and reloads it at the next such event
    /// (`state/hibernation.rs`). Zero: never.
    pub hibernate_after: Duration,
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("board {board} vanished right after it was created")]
    Vanished { board: BoardId },
}

/// How a room leaves the registry that spawned it. The registry implements it for each room it
/// spawns (`rooms::Rooms`); the room names only this trait, so the registry depends on the room
/// and never the other way round.
pub trait Registration: Send + Sync + 'static {
    /// Takes the room out of the registry if `may_go(rx)` holds, checked under the registry's
    /// lock so that no join can slip in between the check and the removal, then closes `rx` to
    /// commands from handles given out before. Returns whether the room left.
    fn leave(
        &self,
        rx: &mut mpsc::Receiver<RoomCommand>,
        may_go: fn(&mpsc::Receiver<RoomCommand>) -> bool,
    ) -> bool;
}

/// The room task. `rx` is the receiving end of the channel whose senders the registry hands out;
/// `registration` is how the room leaves the registry when it unloads.
pub async fn run(
    board: BoardId,
    mut rx: mpsc::Receiver<RoomCommand>,
    registration: impl Registration,
    ctx: RoomContext,
) {
    ctx.metrics.rooms.inc();
    // Counts the room out however this function ends.
    let _loaded = RoomGauge(ctx.metrics.clone());
    // Boxed: the load's state (1.5 KiB) would otherwise stay in this task's for the room's life.
    let mut room = match Box::pin(Room::open(board.clone(), &ctx)).await {
        Ok(room) => room,
        Err(e) => {
            tracing::error!(board = %board, error = %e, "board could not be loaded");
            registration.leave(&mut rx, |_| true);
            let reason = match e {
                LoadError::Storage(StorageError::Corrupt { .. }) => "board storage is damaged",
                _ => "board could not be loaded; try again",
            };
            refuse_joins(&mut rx, CloseCode::InternalError, reason);
            return;
        }
    };
    while room.turn(&mut rx, &registration).await.is_continue() {}
    if room.state.is_hibernating() {
        ctx.metrics.rooms_hibernating.dec();
    }
    registration.leave(&mut rx, |_| true);
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

/// Everything the room task holds: the board's state machine, what it needs to store and
/// publish, and the timers it waits on between turns.
struct Room {
    state: RoomState,
    storage: Arc<dyn Storage>,
    metrics: Metrics,
    config: RoomConfig,
    /// Wall-clock time for counters and reminders.
    clock: Arc<dyn Clock>,
    /// When each board must next be woken up (shared with the scheduler).
    wakeups: Wakeups,
    /// The wake-up last recorded for this board (`Some(None)`: recorded as none).
    recorded_wake: Option<Option<i64>>,
    shutdown: CancellationToken,
    /// When the task started: the awareness clock counts from here.
    started: Instant,
    /// Since when the room has had no member (`None`: it has some).
    idle_since: Option<Instant>,
    /// When something last read or wrote the board: the room hibernates
    /// `config.hibernate_after` later.
    last_active: Instant,
    /// The commands of the current turn, in channel order (kept for its capacity, which the
    /// sweep gives back down to [`state::IDLE_CAPACITY`] commands: a burst of a full batch
    /// would otherwise leave `MAX_BATCH` commands' room on an idle board).
    batch: Vec<RoomCommand>,
    sweep: Interval,
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
    /// The board API's requests of this batch: answered once it is stored.
    api_replies: Vec<(api_write::ApiReply, api_write::ApiReadFn, String)>,
    /// The board's lease: while it is held the room runs the upkeep, its appends fenced by the
    /// lease's token.
    lease: LeaseKeeper,
    /// The cluster fan-out (`None`: a single instance).
    bus: Option<Arc<dyn Bus>>,
    /// This board's channel on the bus (`None`: a single instance, or the bus shut down).
    subscription: Option<Subscription>,
    /// The periodic catch-up from the log (cluster only).
    catch_up_every: Option<Interval>,
    /// The highest seq up to which the document holds every stored entry of the board.
    applied_seq: Seq,
    /// The change feed's view of the board: derives the events of each command's changes.
    changes: changes::ChangeLog,
    /// The events of this turn's changes, stored with its updates.
    pending_changes: Vec<crate::feed::NewChange>,
    /// Told the newest event id once they are stored.
    feed: crate::feed::Feed,
}

impl Room {
    /// Subscribes (in a cluster), loads or creates the board, and takes its lease if it can.
    async fn open(board: BoardId, ctx: &RoomContext) -> Result<Self, LoadError> {
        let started = Instant::now();
        // Subscribe before loading: whatever another instance stores after the load is then
        // either in the load or on the subscription (or reported as a gap).
        let subscription = match &ctx.bus {
            Some(bus) => Some(bus.subscribe(&board).await),
            None => None,
        };
        let (doc, tail_len, stored_bytes, applied_seq) =
            load_or_create(&board, ctx.storage.as_ref()).await?;
        let timeline_bytes = ctx.storage.timeline_bytes(&board).await?;
        tracing::debug!("room loaded");
        let name = board::settings(&doc.transact()).name;
        let presence_clock = move || started.elapsed().as_millis() as u64;
        let change_log = changes::ChangeLog::new(board.clone());
        let mut state = RoomState::new(board.clone(), doc, presence_clock);
        state.limit_size(stored_bytes, timeline_bytes, ctx.config.max_board_bytes);
        if ctx.bus.is_some() {
            state.set_clustered();
        }
        let lease = LeaseKeeper::start(board, Arc::clone(&ctx.leases), ctx.bus.is_some()).await;
        if lease.token().is_some() {
            state.enable_upkeep();
        }
        state.run_upkeep(ctx.clock.now_ms());
        let catch_up_every = ctx.bus.as_ref().map(|_| {
            let mut every =
                tokio::time::interval_at(Instant::now() + CATCH_UP_EVERY, CATCH_UP_EVERY);
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            every
        });
        // A room that hibernates sooner than a sweep checks as often.
        let sweep_every = match ctx.config.hibernate_after.is_zero() {
            true => AWARENESS_SWEEP_EVERY,
            false => AWARENESS_SWEEP_EVERY.min(ctx.config.hibernate_after),
        };
        let mut sweep = tokio::time::interval(sweep_every);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Room {
            state,
            storage: Arc::clone(&ctx.storage),
            metrics: ctx.metrics.clone(),
            config: ctx.config,
            clock: Arc::clone(&ctx.clock),
            wakeups: ctx.wakeups.clone(),
            recorded_wake: None,
            shutdown: ctx.shutdown.clone(),
            started,
            idle_since: Some(Instant::now()),
            last_active: Instant::now(),
            batch: Vec::new(),
            sweep,
            tail_len,
            name,
            timeline_replies: Vec::new(),
            compaction: None,
            api_replies: Vec::new(),
            lease,
            bus: ctx.bus.clone(),
            subscription,
            catch_up_every,
            applied_seq,
            changes: change_log,
            pending_changes: Vec::new(),
            feed: ctx.feed.clone(),
        })
    }

    /// One turn of the task: waits for the first thing to do, does it, and ends the turn
    /// ([`Self::end_turn`]). Breaks when the room stops: shut down, dropped by the registry,
    /// unloaded, or closed by a failure.
    ///
    /// Every branch of the `select!` is cancel-safe, since all but the one that fires are
    /// dropped: the channel's `recv_many`, the token, the intervals and the subscription are
    /// cancel-safe by their docs; the sleeps are made anew each turn from deadlines kept here;
    /// the compaction's handle stays in its option until it finished; the lease keeper's
    /// `next` is cancel-safe by its own.
    async fn turn(
        &mut self,
        rx: &mut mpsc::Receiver<RoomCommand>,
        registration: &dyn Registration,
    ) -> ControlFlow<()> {
        let idle_deadline = self
            .idle_since
            .map(|since| since + self.config.idle_unload_after);
        let next_wake = match self.state.is_hibernating() {
            true => self.state.hibernated_wake(),
            false => self.state.next_wake(),
        };
        let wake = next_wake.map(|at| {
            let wait = at.saturating_sub(self.clock.now_ms()).max(0) as u64;
            Instant::now() + Duration::from_millis(wait)
        });
        tokio::select! {
            () = self.shutdown.cancelled() => {
                self.state.close_all(CloseCode::ServiceRestart, "server restarting; reconnect");
                return ControlFlow::Break(());
            }
            received = rx.recv_many(&mut self.batch, MAX_BATCH) => {
                if received == 0 {
                    return ControlFlow::Break(()); // every sender is gone: the registry dropped this room
                }
                self.on_commands().await?;
            }
            _ = self.sweep.tick() => {
                self.state.sweep_awareness(self.presence_now());
                self.state.release_idle();
                self.batch.shrink_to(state::IDLE_CAPACITY);
                self.hibernate_if_quiet();
            }
            () = sleep_until_opt(idle_deadline) => {
                if registration.leave(rx, |rx| rx.is_empty()) {
                    // Fold what this visit wrote, so the next load reads one snapshot. Safe
                    // beside a new room of the same board: compaction works from storage alone.
                    if self.tail_len > 0 {
                        self.start_compaction();
                    }
                    return ControlFlow::Break(());
                }
            }
            () = wait_opt(&mut self.compaction) => {}
            // The upkeep runs at the end of the turn, over the board (woken if it slept).
            () = sleep_until_opt(wake) => self.wake_up().await?,
            event = recv_opt(&mut self.subscription) => match event {
                Some(event) => {
                    if hibernation::bus_event_needs_board(&event) {
                        self.wake_up().await?;
                    }
                    self.on_bus_event(event).await
                }
                None => self.subscription = None, // the bus shut down
            },
            () = tick_opt(&mut self.catch_up_every) => {
                if self.state.is_hibernating() {
                    self.wake_if_behind().await?;
                } else {
                    self.catch_up().await;
                }
            }
            event = self.lease.next() => match event {
                LeaseEvent::Acquired => {
                    // The new holder runs the upkeep now: counters may be due.
                    self.wake_up().await?;
                    self.state.enable_upkeep();
                }
                LeaseEvent::Lost => self.state.disable_upkeep(),
            },
        }
        self.end_turn().await
    }

    /// The batch in `self.batch`, one command after the other.
    async fn on_commands(&mut self) -> ControlFlow<()> {
        let mut batch = std::mem::take(&mut self.batch);
        for command in batch.drain(..) {
            if hibernation::needs_board(&command) {
                self.wake_up().await?;
            }
            // A client that comes from another instance may carry what that instance stored
            // and this one has not applied yet (its counter writes, which no client may make):
            // catch up first, so only its own changes are checked.
            if self.bus.is_some()
                && let RoomCommand::Message { message, .. } = &command
                && let ClientMessage::SyncStep2(update) = &**message
                && self.state.is_news(update)
            {
                self.catch_up().await;
            }
            let author = self.author_of(&command);
            match command {
                RoomCommand::Timeline {
                    event, mail, reply, ..
                } => self.timeline(*event, mail, reply).await,
                RoomCommand::Api { request, reply } => self.api(*request, reply),
                command => self.handle(command),
            }
            // The command's events, unless what it wrote is about to be dropped (refused).
            if !self.state.is_tainted() {
                let now = self.clock.now_ms();
                let (doc, model) = self.state.doc_and_model();
                let mut events = self.changes.derive(doc, model, &author, now);
                self.pending_changes.append(&mut events);
            }
            // A refused update is in the document but nowhere else: swap in the stored board
            // before the next command reads this one (a joiner's full state).
            self.recover_if_tainted().await?;
        }
        self.batch = batch;
        ControlFlow::Continue(())
    }

    /// Who a command's changes are by (its events' `origin` and `actor`).
    fn author_of(&self, command: &RoomCommand) -> changes::Author {
        use crate::feed::Origin;
        match command {
            RoomCommand::Message { conn, .. } => changes::Author {
                origin: Origin::Socket,
                actor: self.state.user_of(*conn).map(str::to_owned),
            },
            RoomCommand::Api { request, .. } => match &**request {
                api_write::ApiRequest::Write {
                    principal, origin, ..
                } => changes::Author {
                    origin: *origin,
                    actor: Some(principal.user.clone()),
                },
                api_write::ApiRequest::Read { .. } => changes::Author::scheduler(),
            },
            RoomCommand::Timeline { event, origin, .. } => changes::Author {
                origin: *origin,
                actor: Some(event.user.clone()),
            },
            _ => changes::Author::scheduler(),
        }
    }

    /// What ends every turn, whatever started it: the upkeep, storing then delivering,
    /// answering the batch's timeline events, recording the next wake-up, and the idle clock.
    /// Breaks when the room cannot go on (storage or a reload failed; everyone is closed).
    async fn end_turn(&mut self) -> ControlFlow<()> {
        self.recover_if_tainted().await?;
        self.state.run_upkeep(self.clock.now_ms());
        let stored = self.store_then_deliver().await;
        for (reply, event) in self.timeline_replies.drain(..) {
            let _ = reply.send(match &stored {
                Ok(()) => Ok(event),
                Err(_) => Err(TimelineError::Storage(StorageError::Closed)),
            });
        }
        self.answer_api(stored.is_ok());
        if let Err(e) = stored {
            tracing::error!(board = %self.state.board(), error = %e, "storing updates failed; closing the board");
            self.state.close_all(
                CloseCode::InternalError,
                "storage failed; reconnect to resync",
            );
            return ControlFlow::Break(());
        }
        // A refused scheduler write is in the document only: reload the stored board.
        self.recover_if_tainted().await?;
        self.record_wake().await;
        self.idle_since = match (self.state.member_count(), self.idle_since) {
            (0, None) => Some(Instant::now()),
            (0, since) => since,
            _ => None,
        };
        ControlFlow::Continue(())
    }

    /// A tainted room (its document holds a refused update, a client's or the upkeep's) gets
    /// the stored board back before anything reads the document again. Breaks, after closing
    /// everyone, when the reload fails.
    async fn recover_if_tainted(&mut self) -> ControlFlow<()> {
        if self.state.is_tainted() && self.recover().await.is_err() {
            self.state
                .close_all(CloseCode::InternalError, "board reload failed; reconnect");
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Records when this board must next wake up, for the scheduler and across restarts.
    async fn record_wake(&mut self) {
        let wake = self.state.next_wake();
        if !self.state.has_upkeep() || self.recorded_wake == Some(wake) {
            return;
        }
        let board = self.state.board();
        self.wakeups.set(board, wake);
        match self.storage.set_wakeup(board, wake).await {
            Ok(()) => self.recorded_wake = Some(wake),
            Err(e) => {
                tracing::warn!(board = %board, error = %e, "cannot record the next wake-up")
            }
        }
    }

    /// Milliseconds since the task started, the clock of presence expiry.
    fn presence_now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join {
                conn,
                outbox,
                principal,
            } => self.state.join(conn, outbox, *principal),
            RoomCommand::Message { conn, message } => self.state.handle(conn, *message),
            RoomCommand::Leave { conn } => self.state.leave(conn),
            // Upkeep runs after every batch; waking is all it takes.
            RoomCommand::Wake => {}
            // Handled by `timeline`, which waits for storage.
            RoomCommand::Timeline { reply, .. } => {
                let _ = reply.send(Err(TimelineError::Storage(StorageError::Closed)));
            }
            // Handled by `api`, which answers after storing.
            RoomCommand::Api { reply, .. } => {
                let _ = reply.send(Err(api_write::ApiWriteError::Storage));
            }
        }
    }

    /// Stores a timeline event and applies it to its card; the reply waits for the batch to be
    /// stored.
    async fn timeline(
        &mut self,
        event: TimelineEvent,
        mail: Option<Box<crate::storage::InboundMail>>,
        reply: oneshot::Sender<Result<TimelineEvent, TimelineError>>,
    ) {
        if !self.state.has_card(&event.card) {
            let _ = reply.send(Err(TimelineError::NoSuchCard(event.card)));
            return;
        }
        if let Some(max) = self.state.over_limit(event.stored_len()) {
            let _ = reply.send(Err(TimelineError::BoardFull { max }));
            return;
        }
        let subject = mail
            .as_ref()
            .map(|mail| mail.subject.clone())
            .filter(|subject| !subject.is_empty());
        match self.storage.add_event(event, mail.map(|mail| *mail)).await {
            Ok(stored) => {
                self.state.apply_timeline_event(&stored, subject.as_deref());
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
        let mut updates = self.state.take_updates_to_store();
        let mut upkeep = self.state.take_upkeep_to_store();
        let changes = std::mem::take(&mut self.pending_changes);
        let change_count = changes.len() as u64;
        if self.bus.is_none() && !upkeep.is_empty() {
            // One instance: its in-process lease is never taken over, so there is nothing to
            // fence, and the upkeep's update goes with the batch, in one storage transaction.
            // (If that fails, the room closes and nothing queued is delivered.)
            self.state.upkeep_stored();
            self.metrics.upkeep_writes.inc_by(upkeep.len() as u64);
            updates.append(&mut upkeep);
        }
        if !updates.is_empty() || !changes.is_empty() {
            let count = updates.len();
            let published = self.bus.is_some().then(|| updates.clone());
            let storing = Instant::now();
            // The events go in the same transaction as the updates that made them.
            let appended = self
                .storage
                .append_with_changes(self.state.board(), updates, None, changes)
                .await?;
            let last = appended.seq;
            if let Some(id) = appended.last_change {
                self.feed.stored(id);
                self.metrics.change_events.inc_by(change_count);
            }
            self.metrics
                .store_seconds
                .observe(storing.elapsed().as_secs_f64());
            match published {
                Some(updates) => self.stored(last, updates).await,
                // One instance: nobody else appends, so the document holds every entry to `last`.
                None => self.applied_seq = self.applied_seq.max(last),
            }
            self.metrics.store_batches.inc();
            self.metrics.updates_stored.inc_by(count as u64);
            self.tail_len += count;
            if self.tail_len >= self.config.compact_after_updates {
                self.start_compaction();
            }
            // The board list shows the name: keep its copy in step with the document (not from
            // a document that holds a refused update: it is about to be replaced).
            let name = board::settings(&self.state.doc().transact()).name;
            if name != self.name && !self.state.is_tainted() {
                self.storage.rename(self.state.board(), &name).await?;
                self.name = name;
            }
        }
        if !upkeep.is_empty() {
            self.store_upkeep(upkeep).await?;
        }
        if self.state.has_frames() {
            self.state.deliver();
        }
        if let Some(bus) = &self.bus {
            for awareness in self.state.take_awareness_to_publish() {
                bus.publish(self.state.board(), BusPayload::Awareness(awareness));
            }
        }
        Ok(())
    }

    /// Stores what the upkeep wrote, fenced by the board's lease (after the batch's client
    /// part, so the log keeps the batch's order); in a cluster only, where another instance
    /// may hold the lease by now. Refused (a newer holder wrote) or without a
    /// lease, the write is treated like a refused update: the upkeep stops and the room is
    /// tainted, so the task reloads the stored board.
    async fn store_upkeep(&mut self, upkeep: Vec<Bytes>) -> Result<(), StorageError> {
        let Some(fence) = self.lease.token() else {
            self.state.refuse_upkeep();
            return Ok(());
        };
        let count = upkeep.len();
        let board = self.state.board().clone();
        match self
            .storage
            .append_fenced(&board, upkeep.clone(), fence)
            .await
        {
            Ok(last) => {
                self.state.upkeep_stored();
                if self.bus.is_some() {
                    self.stored(last, upkeep).await;
                }
                self.metrics.store_batches.inc();
                self.metrics.updates_stored.inc_by(count as u64);
                self.metrics.upkeep_writes.inc_by(count as u64);
                self.tail_len += count;
                Ok(())
            }
            Err(StorageError::Fenced { fence, current, .. }) => {
                tracing::warn!(board = %board, fence, current, "a newer lease holder wrote this board's counters; stopping its upkeep here");
                self.metrics.upkeep_fenced.inc();
                self.lease.fenced_out();
                self.state.refuse_upkeep();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `updates` are stored with the seqs up to `last` (cluster only): they go to the other
    /// instances, and `applied_seq` advances, through the log when another instance appended
    /// in between.
    async fn stored(&mut self, last: Seq, updates: Vec<Bytes>) {
        let first_seq = (last + 1).saturating_sub(updates.len() as u64);
        if let Some(bus) = &self.bus {
            bus.publish(
                self.state.board(),
                BusPayload::Updates { first_seq, updates },
            );
        }
        if first_seq == self.applied_seq + 1 {
            self.applied_seq = last;
        } else {
            // Another instance appended in between: its entries are below ours.
            self.catch_up().await;
            self.applied_seq = self.applied_seq.max(last);
        }
    }

    /// Applies what the log holds above `applied_seq` (a lost or out-of-order bus message, a
    /// gap, the periodic check) and relays the difference to local members with the next
    /// delivery. A failure is logged; the next tick retries.
    async fn catch_up(&mut self) {
        let board = self.state.board().clone();
        let loaded = self.storage.load_since(&board, self.applied_seq).await;
        let stored = match loaded {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(board = %board, error = %e, "cannot catch up from storage; retrying later");
                return;
            }
        };
        if stored.entries.is_empty() {
            return;
        }
        self.metrics.catch_ups.inc();
        let last = stored.last_seq();
        match self.state.apply_stored(&stored) {
            Ok(()) => self.applied_seq = self.applied_seq.max(last),
            Err(e) => {
                tracing::error!(board = %board, error = %e, "catching up from storage failed")
            }
        }
        // Stored by another instance, which made its events.
        self.state.sync_model();
    }

    /// What another instance sent: updates that directly follow `applied_seq` are applied and
    /// relayed; known ones are skipped; after a hole (or a gap) the log is read instead, since
    /// yrs must only get causally complete updates. Presence is applied and relayed.
    async fn on_bus_event(&mut self, event: BusEvent) {
        let message = match event {
            BusEvent::Gap => return self.catch_up().await,
            BusEvent::Message(message) => message,
        };
        match message.payload {
            BusPayload::Updates { first_seq, updates } => {
                let count = updates.len() as u64;
                let last = (first_seq + count).saturating_sub(1);
                if count == 0 || last <= self.applied_seq {
                    return; // already applied (through the log, after a gap)
                }
                if first_seq > self.applied_seq + 1 {
                    return self.catch_up().await; // a hole: some message was lost
                }
                let known = (self.applied_seq + 1 - first_seq) as usize;
                let applied = self.state.apply_remote_updates(&updates[known..]);
                // Stored by another instance, which made its events.
                self.state.sync_model();
                match applied {
                    Ok(()) => self.applied_seq = last,
                    Err(e) => {
                        tracing::warn!(board = %self.state.board(), error = %e, "reading the log instead");
                        if !self.state.is_tainted() {
                            self.catch_up().await;
                        }
                    }
                }
            }
            BusPayload::Awareness(raw) => self.state.apply_remote_awareness(&raw),
            // Only on the revocations' channel (`bus::revocations`), which no room hears unless
            // a board took its id: nothing of the board's.
            BusPayload::Revocation(_) => {}
        }
    }

    /// Stores and delivers what the batch made so far (all of it allowed), then replaces the
    /// document, which holds a refused update, with the stored board.
    async fn recover(&mut self) -> Result<(), ()> {
        let board = self.state.board().clone();
        let reloaded = match self.store_then_deliver().await {
            Ok(()) => reload(&board, self.storage.as_ref()).await,
            Err(e) => Err(e.into()),
        };
        match reloaded {
            Ok((doc, stored_bytes, last_seq)) => {
                self.state.replace_doc(doc, stored_bytes);
                self.applied_seq = last_seq;
                Ok(())
            }
            Err(e) => {
                tracing::error!(board = %board, error = %e, "reloading the board failed");
                Err(())
            }
        }
    }

    /// Folds the board's log into its snapshot in the background, one compaction at a time.
    ///
    /// In a cluster, from the log (`Storage::compact`, under the board's lock: other instances
    /// append too). One instance is the board's only writer, and between batches its document
    /// holds exactly the stored entries up to `applied_seq` (a refused update never stays: the
    /// task reloads first), so it writes its own document's state as the snapshot instead of
    /// making storage fold a second copy of the board (a board-sized memory peak each time).
    fn start_compaction(&mut self) {
        if self.compaction.is_some() {
            return;
        }
        self.tail_len = 0;
        let storage = Arc::clone(&self.storage);
        let board = self.state.board().clone();
        // A hibernating room holds no board to snapshot: storage folds its log then.
        let own_state = (self.bus.is_none()
            && !self.state.is_tainted()
            && !self.state.is_hibernating())
        .then(|| {
            let state = yrs::ReadTxn::encode_state_as_update_v1(
                &self.state.doc().transact(),
                &yrs::StateVector::default(),
            );
            (self.applied_seq, Bytes::from(state))
        });
        if let Some((_, state)) = &own_state {
            self.state.measured(state.len());
        }
        self.compaction = Some(tokio::spawn(async move {
            let compacted = match own_state {
                Some((seq, state)) => storage.put_snapshot(&board, seq, state).await,
                None => storage.compact(&board).await,
            };
            match compacted {
                Ok(()) => tracing::debug!(board = %board, "compacted"),
                Err(e) => tracing::warn!(board = %board, error = %e, "compaction failed"),
            }
        }));
    }
}

/// The board's document, how many log entries follow its snapshot, how many bytes it takes in
/// storage, and the seq of its last entry; a board that does not exist is created first.
async fn load_or_create(
    board: &BoardId,
    storage: &dyn Storage,
) -> Result<(Doc, usize, usize, Seq), LoadError> {
    let stored = match storage.load(board).await? {
        Some(stored) => stored,
        None => {
            // Local mode: whoever opens a board that does not exist creates it, as a deal
            // pipeline.
            let entity = Entity::Deal;
            let language = schema::Language::default();
            let meta = BoardMeta {
                id: board.clone(),
                entity: entity.as_string(),
                name: entity.default_board_name(language),
                created_at: 0,
                archived_at: None,
            };
            if create_board(storage, &meta, &entity, language).await? {
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
        stored.last_seq(),
    ))
}

fn stored_bytes(stored: &StoredBoard) -> usize {
    stored.entries.iter().map(|(_, raw)| raw.len()).sum()
}

/// Creates a board of `entity` named `meta.name` with its default stages named in `language`,
/// unless it exists; returns whether this call created it.
pub async fn create_board(
    storage: &dyn Storage,
    meta: &BoardMeta,
    entity: &Entity,
    language: schema::Language,
) -> Result<bool, StorageError> {
    let doc = Doc::new();
    let initial = {
        let mut txn = doc.transact_mut();
        schema::initialize_board_for(&mut txn, &meta.id, entity, language, &meta.name);
        txn.encode_update_v1()
    };
    storage.create(meta, Bytes::from(initial)).await
}

/// The board as stored (and its size), to replace a document that holds a refused update.
async fn reload(board: &BoardId, storage: &dyn Storage) -> Result<(Doc, usize, Seq), LoadError> {
    let stored = storage
        .load(board)
        .await?
        .ok_or_else(|| LoadError::Vanished {
            board: board.clone(),
        })?;
    Ok((
        stored.to_doc(board)?,
        stored_bytes(&stored),
        stored.last_seq(),
    ))
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

async fn recv_opt(subscription: &mut Option<Subscription>) -> Option<BusEvent> {
    match subscription {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
    }
}

async fn tick_opt(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
