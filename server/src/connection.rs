//! One WebSocket connection: a reader loop (this task) and a writer task, joined to a room.
//!
//! The reader decodes each binary frame into a typed message and hands it to the room; the
//! writer drains the connection's [`Outbox`] into the socket, many frames a write
//! ([`crate::socket`]). Whoever decides to close (bad input, the room, a slow consumer,
//! shutdown) asks the outbox; the writer sends the close frame and both sides end.

use crate::auth::{Auth, Origins, Principal};
use crate::drain::Drain;
use crate::limits::{ConnectionCounts, ConnectionSlot, MessageBudget, RefusalBackoff};
use crate::metrics::{CloseLabels, Metrics};
use crate::outbox::{Next, Outbox, OutboxLimits, OutboxReceiver, outbox};
use crate::room::{ConnId, RoomCommand};
use crate::rooms::Rooms;
use crate::socket::{self, Socket, SocketReader, SocketWriter, Wire};
use funnel_protocol::BoardId;
use funnel_protocol::wire::{ClientMessage, CloseCode, decode_client_frame, is_sync_step2};
use futures_util::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tungstenite::Message;

/// How long the writer tries to deliver a close frame (the peer may not be reading) before it
/// drops the socket.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// How long a connection the server closed keeps reading (and dropping) what the client still
/// sends, after its close frame is written. Closing a TCP socket with unread input makes the
/// kernel send a reset, which can overtake the close frame: the client then sees 1006 instead of
/// the code and reconnects when it should have stopped (a 44xx) or backed off. A stock client
/// answers the close frame at once, so this only bounds a client that does not.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// How long a connection whose socket write failed keeps reading what the peer sent before it
/// went. A reset peer's last frames may still wait in the socket, unread (a client that sends
/// and closes at once, a tab killed mid-burst): the reader takes them to the end of the stream,
/// and they are judged and stored like any, instead of being dropped with the connection. The
/// end comes at once on a reset socket (its queued bytes, then the error); this bounds a socket
/// whose writes fail while its reads never end.
const LOST_PEER_READ: Duration = Duration::from_secs(5);

/// A peer that sent nothing (no frame, no pong) for this many ping intervals is gone: its TCP
/// connection died without a FIN (a laptop lid, a mobile network), and only silence tells.
const PEER_TIMEOUT_PINGS: u32 = 3;

/// Initial syncs in progress at once, server-wide, by default (`--joins-at-once`): from a
/// connection's first step 1 until the answer's step 2 is written to its socket (the room's
/// load, a full state to send). In a reconnect storm the others wait their turn on an open
/// socket before their step 1 is forwarded, so the storm slows the newcomers, never the clients
/// already live. The turn starts when the step 1 has arrived, so a slow network does not hold
/// it; it ends when the answer has left, so the bytes of at most this many whole boards are in
/// flight at once. Why 8 (many more turns delay live moves during a storm, fewer do not sync
/// the crowd faster): BENCHMARKS.md, History, "Nagle, join turns, one shared cut, checkpoints".
pub const JOINS_AT_ONCE: usize = 8;

/// The longest one initial sync keeps its turn (a board that takes long to load, a client that
/// reads slowly): then the next one goes. A turn bounds bursts of work, not a slow transfer.
const ADMISSION_HOLD_MAX: Duration = Duration::from_secs(1);

/// How many times a join retries when the room it got is unloading at that very moment.
const JOIN_ATTEMPTS: usize = 3;

#[derive(Clone)]
pub struct ConnectionContext {
    pub rooms: Rooms,
    pub outbox_limits: OutboxLimits,
    pub max_frame_bytes: usize,
    /// How often the writer pings. Browsers answer pings on their own, and stock clients renew
    /// their presence every 15 s, so a live peer is never silent for [`PEER_TIMEOUT_PINGS`] pings.
    pub ping_every: Duration,
    pub shutdown: CancellationToken,
    /// A graceful stop: this connection's turn to close (1012) comes within the drain window.
    pub drain: Drain,
    pub metrics: Metrics,
    /// Who the caller is (tokens, or the local admin).
    pub auth: Auth,
    /// What closes sockets at once (a person disabled, a role lowered, a sign-out); the
    /// accounts API sends, each connection listens from its join.
    pub revocations: crate::auth::Revocations,
    /// Browser origins allowed to open sockets.
    pub origins: Origins,
    pub limits: ConnectionLimits,
    /// Open connections per user and address (every connection holds a slot).
    pub counts: ConnectionCounts,
    /// Turns to join ([`JOINS_AT_ONCE`] permits, shared by every connection of the server).
    pub joins: Arc<Semaphore>,
    /// Addresses turned away for a while after a refusal a reconnect cannot cure.
    pub backoff: Arc<RefusalBackoff>,
}

/// What one client may cost (see `config` for each).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub message_rate: u32,
    pub message_burst: u32,
    pub per_user: usize,
    pub per_address: usize,
}

/// A connection let in: who it is, which board, and its slot in the connection counts.
pub struct Admitted {
    pub board: BoardId,
    /// The client's address (for [`RefusalBackoff`]).
    pub peer: std::net::IpAddr,
    pub principal: Principal,
    pub slot: ConnectionSlot,
    /// The client asked for funnel's notices in its URL (`?notices=1`, docs/recovery.md).
    pub wants_notices: bool,
}

/// A connection refused before it joins anything: the close it gets right after the upgrade
/// (so that browsers stop retrying on a 44xx code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: CloseCode,
    pub reason: String,
}

impl Refused {
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// Starts serving one upgraded socket: the returned future serves it until it closes. A refused
/// one only gets its close frame: nothing is queued for a connection that was not admitted.
///
/// The socket is split and the writer spawned before the returned future exists, so that
/// future, which lives as long as the connection, holds neither the socket's writer nor a copy
/// of the context (an idle connection's memory is mostly its two tasks).
pub async fn start(
    socket: Socket,
    admission: Result<Admitted, Refused>,
    ctx: Arc<ConnectionContext>,
) -> impl Future<Output = ()> + Send {
    let conn = ConnId::next();
    let span = tracing::info_span!(
        "connection",
        conn = conn.0,
        board = tracing::field::Empty,
        user = tracing::field::Empty
    );
    if let Ok(admitted) = &admission {
        span.record("board", tracing::field::display(&admitted.board));
        span.record("user", admitted.principal.user.as_str());
    }
    ctx.metrics.connections.inc();
    let counted = ConnectionGauge(ctx.metrics.connections.clone());
    let (outbox, receiver) = outbox(ctx.outbox_limits);
    let (stream, sink) = socket
        .split(ctx.max_frame_bytes, outbox.control_sender())
        .await;
    let writer = tokio::spawn(
        write_loop(sink, receiver, ctx.ping_every, ctx.metrics.clone()).instrument(span.clone()),
    );
    async move {
        let _counted = counted;
        let mut stream = stream;
        let ending = match admission {
            Err(refused) => {
                outbox.close(refused.code, &refused.reason);
                // A stock client sends its step 1 as soon as the socket opens.
                Ending::Drain
            }
            // Boxed: the reader's state (about 2 KiB) does not then take room in this future's
            // beside the states it has before and after.
            Ok(admitted) => Box::pin(read_loop(conn, admitted, &mut stream, &outbox, &ctx)).await,
        };
        drop(outbox);
        let _ = writer.await;
        // The close frame is written (or its deadline passed): let it reach the client before
        // the socket goes (see `CLOSE_LINGER`).
        match ending {
            Ending::Done => {}
            Ending::Drain => {
                let _ = tokio::time::timeout(CLOSE_LINGER, async {
                    while let Some(Ok(message)) = stream.next().await {
                        if matches!(message, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
            Ending::Wait => tokio::time::sleep(CLOSE_LINGER).await,
        }
    }
    .instrument(span)
}

/// What the socket needs once the reader stops, before it is dropped.
enum Ending {
    /// Nothing: the client closed, or the socket is gone.
    Done,
    /// The server closed: read and drop the client's input until its close frame answers ours
    /// (see [`CLOSE_LINGER`]).
    Drain,
    /// The server closed on a frame over the size limit: the rest of that frame is still on
    /// the socket, and reading on would buffer all of it. Only wait, so the close frame is read
    /// before the reset.
    Wait,
}

/// Joins the room and forwards decoded messages to it until the connection must close.
async fn read_loop(
    conn: ConnId,
    admitted: Admitted,
    stream: &mut SocketReader,
    outbox: &Outbox,
    ctx: &ConnectionContext,
) -> Ending {
    // The slot is held until the reader stops.
    let Admitted {
        board,
        peer,
        principal,
        slot: _slot,
        wants_notices,
    } = admitted;
    let board = &board;
    if ctx.shutdown.is_cancelled() || ctx.drain.closing() {
        outbox.close(CloseCode::ServiceRestart, "server restarting; reconnect");
        return Ending::Drain;
    }
    // The turn of this connection's initial sync (see `JOINS_AT_ONCE`): taken at its first
    // step 1, given back once the answer's step 2 is written to the socket.
    let mut admitted = false;
    let mut turn: Option<(OwnedSemaphorePermit, Instant)> = None;
    let expiry = principal.expires_at.and_then(expiry_instant);
    // Subscribed before the join, so a revocation sent meanwhile is heard.
    let mut revocations = ctx.revocations.subscribe();
    // Every socket listens: sessions' for their person and session, every one for its board
    // (archived or restored); `None` once no sender is left.
    let mut revocable = Some(principal.clone());
    // Boxed, as the join's state would otherwise stay in the reader's for the connection's life.
    let Some(room) = Box::pin(join(conn, board, principal, outbox, &ctx.rooms)).await else {
        outbox.close(CloseCode::TryAgainLater, "board is busy; reconnect");
        return Ending::Drain;
    };
    // Asked in the URL, handled as the in-band request would be: before any frame of the client.
    let notices = RoomCommand::Message {
        conn,
        message: Box::new(ClientMessage::WantsNotices),
    };
    if wants_notices && room.send(notices).await.is_err() {
        outbox.close(CloseCode::TryAgainLater, "board is reloading; reconnect");
        return Ending::Drain;
    };
    // Leaves the room however this function ends.
    let _membership = Membership {
        room: room.clone(),
        conn,
    };
    tracing::debug!("joined");
    let peer_timeout = ctx.ping_every * PEER_TIMEOUT_PINGS;
    let mut last_heard = Instant::now();
    let mut liveness = tokio::time::interval(ctx.ping_every);
    let mut budget = MessageBudget::new(ctx.limits.message_rate, ctx.limits.message_burst);
    // Updates sent to the room, to tell when it has judged them all (see `take_budget`).
    let mut forwarded_updates: u64 = 0;
    loop {
        let frame = tokio::select! {
            () = outbox.closed() => return Ending::Drain,
            () = ctx.shutdown.cancelled() => {
                outbox.close(CloseCode::ServiceRestart, "server restarting; reconnect");
                return Ending::Drain;
            }
            () = ctx.drain.turn(conn.0) => {
                outbox.close(CloseCode::ServiceRestart, "server draining; reconnect");
                return Ending::Drain;
            }
            () = sleep_until_opt(turn.as_ref().map(|(_, until)| *until)) => {
                turn = None;
                continue;
            }
            // A timer, not a check per frame: an idle socket of a revoked session ends too.
            () = sleep_until_opt(expiry) => {
                outbox.close(
                    CloseCode::Unauthenticated,
                    "the token has expired: reconnect with a new one",
                );
                return Ending::Drain;
            }
            revocation = revocations.recv(), if revocable.is_some() => {
                use tokio::sync::broadcast::error::RecvError;
                let closes = match &revocation {
                    Ok(revocation) => revocable.as_ref().and_then(|who| revocation.closes(who, board)),
                    // It may have missed its own: reconnect, authenticated anew.
                    Err(RecvError::Lagged(_)) => Some(("reconnect to sign in again", None)),
                    // No sender is left: nothing will be revoked again.
                    Err(RecvError::Closed) => {
                        revocable = None;
                        None
                    }
                };
                let Some((reason, code)) = closes else { continue };
                tracing::info!(reason, "socket revoked");
                outbox.close(code.unwrap_or(CloseCode::TryAgainLater), reason);
                return Ending::Drain;
            }
            () = outbox.answered(), if turn.is_some() => {
                turn = None;
                continue;
            }
            _ = liveness.tick() => {
                if last_heard.elapsed() >= peer_timeout {
                    outbox.close(
                        CloseCode::GoingAway,
                        &format!("nothing heard from the client for {peer_timeout:?}"),
                    );
                    return Ending::Done;
                }
                continue;
            }
            frame = stream.next() => frame,
        };
        last_heard = Instant::now();
        ctx.metrics.frames_received.inc();
        let frame = match frame {
            None => return Ending::Done,
            Some(Ok(Message::Binary(frame))) => frame,
            Some(Ok(Message::Text(_))) => {
                outbox.close(
                    CloseCode::UnsupportedData,
                    "text frames are not part of the protocol: send binary y-websocket messages",
                );
                return Ending::Drain;
            }
            // tungstenite answers pings itself (through the outbox, see `socket`).
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) => {
                outbox.close(CloseCode::Normal, "");
                return Ending::Done;
            }
            Some(Err(e)) => {
                if is_capacity_error(e) {
                    // The client holds that update and sends it again on every reconnect: a
                    // 44xx stops a stock client, and the backoff turns away one that ignores it.
                    let wait = ctx
                        .backoff
                        .strike(peer, board.as_str(), std::time::Instant::now());
                    tracing::debug!(?wait, "backing off an address that sent an oversized frame");
                    outbox.close(
                        CloseCode::FrameTooLarge,
                        &format!(
                            "frame over the {} byte limit; split the change or raise --max-frame-bytes",
                            ctx.max_frame_bytes
                        ),
                    );
                    return Ending::Wait;
                }
                return Ending::Done;
            }
        };
        // One unit of the budget for the frame's first message before decoding it (a client
        // over its rate is refused without the work), one for each further message after.
        if !take_budget(&mut budget, outbox, forwarded_updates).await {
            return over_rate(outbox, ctx);
        }
        // Decoding is pure, so a panic inside yrs on hostile bytes (a debug assertion on client
        // ids, say) can be caught here and cost only this connection.
        let decoded = std::panic::catch_unwind(|| decode_client_frame(&frame));
        let Ok(decoded) = decoded else {
            outbox.close(CloseCode::InvalidPayload, "frame could not be decoded");
            return Ending::Drain;
        };
        let messages = match decoded {
            Ok(messages) => messages,
            Err(e) => {
                tracing::debug!(error = %e, "refused a frame");
                outbox.close(e.close_code(), &e.to_string());
                return Ending::Drain;
            }
        };
        // Every message of the frame, in order, as if each had come in its own frame.
        for (i, message) in messages.into_iter().enumerate() {
            if i > 0 && !take_budget(&mut budget, outbox, forwarded_updates).await {
                return over_rate(outbox, ctx);
            }
            if matches!(
                message,
                ClientMessage::SyncStep2(_) | ClientMessage::Update(_)
            ) {
                forwarded_updates += 1;
            }
            let first_step1 = !admitted && matches!(message, ClientMessage::SyncStep1(_));
            if first_step1 {
                // A reconnect storm queues here, on open sockets, not in the rooms' queues.
                admitted = true;
                let _waiting = Waiting::start(&ctx.metrics);
                let permit = tokio::select! {
                    permit = Arc::clone(&ctx.joins).acquire_owned() => permit.ok(),
                    () = outbox.closed() => return Ending::Drain,
                    () = ctx.shutdown.cancelled() => {
                        outbox.close(CloseCode::ServiceRestart, "server restarting; reconnect");
                        return Ending::Drain;
                    }
                };
                turn = permit.map(|permit| (permit, Instant::now() + ADMISSION_HOLD_MAX));
            }
            let sent = tokio::select! {
                () = outbox.closed() => return Ending::Drain,
                sent = room.send(RoomCommand::Message { conn, message: Box::new(message) }) => sent,
            };
            if sent.is_err() {
                outbox.close(CloseCode::TryAgainLater, "board is reloading; reconnect");
                return Ending::Drain;
            }
        }
    }
}

/// The longest a connection over its budget waits for the room to judge its updates in flight
/// (it normally does within one batch); then it is over its rate.
const REFUND_WAIT: Duration = Duration::from_secs(1);

/// Takes one message from the budget, with the refunds the room has made for updates that
/// brought nothing new (see `Outbox::judged`). The room judges an update after the budget paid
/// for it, so an empty budget first waits for the verdicts on the updates still in flight: an
/// echoing client over its rate only on paper is not closed. False when over the budget.
async fn take_budget(budget: &mut MessageBudget, outbox: &Outbox, forwarded_updates: u64) -> bool {
    let deadline = Instant::now() + REFUND_WAIT;
    loop {
        budget.refund(outbox.take_refunds());
        if budget.take(std::time::Instant::now()) {
            return true;
        }
        if outbox.judged_count() >= forwarded_updates {
            return false;
        }
        tokio::select! {
            () = outbox.next_judged() => {}
            () = outbox.closed() => return false,
            () = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

/// Closes a connection over its message budget.
fn over_rate(outbox: &Outbox, ctx: &ConnectionContext) -> Ending {
    outbox.close(
        CloseCode::TooMany,
        &format!(
            "more than {} messages a second; slow down",
            ctx.limits.message_rate
        ),
    );
    Ending::Drain
}

async fn join(
    conn: ConnId,
    board: &BoardId,
    principal: Principal,
    outbox: &Outbox,
    rooms: &Rooms,
) -> Option<mpsc::Sender<RoomCommand>> {
    for _ in 0..JOIN_ATTEMPTS {
        let room = rooms.get_or_spawn(board);
        let join = RoomCommand::Join {
            conn,
            outbox: outbox.clone(),
            principal: Box::new(principal.clone()),
        };
        if room.send(join).await.is_ok() {
            return Some(room);
        }
        // The room closed its channel while unloading; the registry has dropped it by now.
    }
    None
}

/// Counts a connection waiting for its turn to join, until dropped.
struct Waiting(Metrics);

impl Waiting {
    fn start(metrics: &Metrics) -> Self {
        metrics.joins_waiting.inc();
        Self(metrics.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.joins_waiting.dec();
    }
}

/// The longest a token's expiry is waited for; a token valid for longer than this never ends
/// its socket (tokio's timers and `Instant` arithmetic do not reach arbitrary dates).
const EXPIRY_HORIZON: Duration = Duration::from_secs(365 * 24 * 3600);

/// The instant a token valid until `at` expires, on the runtime's clock (now if it already has).
fn expiry_instant(at: std::time::SystemTime) -> Option<Instant> {
    let left = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    (left <= EXPIRY_HORIZON).then(|| Instant::now() + left)
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Decrements the open-connections gauge when dropped.
struct ConnectionGauge(Gauge);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Tells the room that the connection left, from `Drop`, so no early return can skip it.
struct Membership {
    room: mpsc::Sender<RoomCommand>,
    conn: ConnId,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let leave = RoomCommand::Leave { conn: self.conn };
        if let Err(mpsc::error::TrySendError::Full(leave)) = self.room.try_send(leave) {
            let room = self.room.clone();
            tokio::spawn(async move {
                let _ = room.send(leave).await;
            });
        }
    }
}

fn is_capacity_error(error: tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Capacity(_))
}

/// How much a connection's writer sends at most in one write, before it lets the worker's
/// other tasks run. A joiner's answer (megabytes, in 8 KiB pieces) goes out in writes this
/// large: each `writev` with TCP_NODELAY pushes its segments at once, so fewer, larger writes
/// cost the kernel less (a storm's syncing at 64 KiB against 512 KiB: BENCHMARKS.md, History,
/// "The gathered writer"). A move is one frame of about 100 bytes.
const TURN_BYTES: usize = 512 * 1024;

/// Sends queued frames, and a ping every `ping_every`, until a close is requested; then the
/// close frame.
async fn write_loop(
    mut sink: SocketWriter,
    mut receiver: OutboxReceiver,
    ping_every: Duration,
    metrics: Metrics,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    loop {
        let next = tokio::select! {
            next = receiver.next() => next,
            _ = ping.tick() => {
                // A ping that cannot be written is a dead socket: the next frame finds out too.
                let _ = sink.ping().await;
                continue;
            }
        };
        let first = match wire(next) {
            Ok(wire) => wire,
            Err(request) => {
                log_close(request.code, &request.reason);
                metrics
                    .closes
                    .get_or_create(&CloseLabels {
                        code: request.code.code(),
                    })
                    .inc();
                let _ = tokio::time::timeout(
                    CLOSE_DEADLINE,
                    sink.close(request.code.code(), &request.reason),
                )
                .await;
                return;
            }
        };
        // Everything already queued goes out in few writes (a burst of updates costs one write
        // to the socket, not one each); a burst is bounded by the outbox.
        let closing = receiver.close_signal();
        let mut answered = false;
        let write = async {
            let mut batch = vec![first];
            loop {
                let mut bytes = batch[0].len();
                while bytes < TURN_BYTES && batch.len() < socket::FRAMES_PER_WRITE {
                    let Some(Ok(wire)) = receiver.try_next().map(wire) else {
                        break;
                    };
                    bytes += wire.len();
                    batch.push(wire);
                }
                answered |= batch
                    .iter()
                    .any(|wire| matches!(wire, Wire::Binary(frame) if is_sync_step2(frame)));
                sink.send(&batch).await?;
                batch.clear();
                let Some(Ok(wire)) = receiver.try_next().map(wire) else {
                    return Ok::<(), std::io::Error>(());
                };
                // A joiner's megabytes would hold this worker for as long as the socket takes
                // them: let the other connections' tasks run between writes.
                tokio::task::yield_now().await;
                batch.push(wire);
            }
        };
        let sent = tokio::select! {
            sent = write => sent,
            // A blocked send (the peer does not read) must not delay a close.
            () = closing.cancelled() => Ok(()),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "socket write failed");
            return discard_until_read(&mut receiver).await;
        }
        if answered {
            receiver.mark_answered();
        }
    }
}

/// What the socket sends for an outbox entry, or the close that ends it.
fn wire(next: Next) -> Result<Wire, crate::outbox::CloseRequest> {
    match next {
        Next::Frame(frame) => Ok(Wire::Binary(frame)),
        Next::Control(framed) => Ok(Wire::Framed(framed)),
        Next::Close(request) => Err(request),
    }
}

/// After a failed write: drops what the room queues while the reader takes what the peer sent
/// before it went (see [`LOST_PEER_READ`]); the reader's end, or a close requested meanwhile,
/// ends it, and past the bound it closes the connection itself.
async fn discard_until_read(receiver: &mut OutboxReceiver) {
    let give_up = tokio::time::sleep(LOST_PEER_READ);
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            next = receiver.next() => if let Next::Close(_) = next {
                return;
            },
            () = &mut give_up => {
                receiver.close(CloseCode::GoingAway, "connection lost");
                return;
            }
        }
    }
}

/// One log line per connection end: a clean close at debug, the others at info or warn.
fn log_close(code: CloseCode, reason: &str) {
    match code {
        CloseCode::Normal | CloseCode::GoingAway | CloseCode::ServiceRestart => {
            tracing::debug!(code = code.code(), reason, "connection closed");
        }
        CloseCode::InternalError => tracing::warn!(code = code.code(), reason, "connection closed"),
        _ => tracing::info!(code = code.code(), reason, "connection closed"),
    }
}
