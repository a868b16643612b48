//! A bare WebSocket relay: the physical limit of fan-out on this machine, to compare funnel with.
//!
//! A room is a URL path. Every binary frame a connection sends is forwarded, as the same bytes,
//! to the room's other members: no CRDT, no storage, no validation. Just enough of the
//! y-websocket handshake is answered for clients to consider themselves synced:
//! - a sync step 1 is answered with a sync step 2 — an empty update, or with `cached_join`, the
//!   room's cached state followed by every update relayed since it was captured — and the
//!   connection becomes a member then (so that it never receives a change to something it does
//!   not have yet);
//! - a sync step 2 from a client is not forwarded (it answers a server, which the relay does not
//!   play); with `cached_join`, the first non-empty one of a room becomes the room's cached
//!   state (the load tester's seeding client sends its full board as one);
//! - updates, awareness and anything else are forwarded to the other members.
//!
//! With `durable` (a directory), the relay is the limit of a server that keeps funnel's promise
//! (nothing reaches another client before it is stored): every update frame is first written
//! to a preallocated ring file in that directory and `fdatasync`ed, and only then forwarded. One
//! thread writes the log; frames that queue while it flushes share the next flush, as funnel's
//! writer batches the moves of a room. Awareness and the handshake are not stored and go at once.
//!
//! Each connection has a writer task and a bounded queue; a full queue drops the connection
//! (no close frame fits in a full queue), like funnel's slow-consumer rule, so a comparison
//! never hides a dropped frame: the client sees its connection end.

use bytes::Bytes;
use funnel_protocol::wire::{self, MSG_SYNC, MSG_SYNC_STEP_1, MSG_SYNC_STEP_2, MSG_SYNC_UPDATE};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::EMPTY_UPDATE;
use crate::metrics::lock;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Answer joins with the room's cached state (see the module doc).
    pub cached_join: bool,
    /// Frames queued for one connection before it is closed as a slow consumer (funnel's
    /// default is the same).
    pub queue_frames: usize,
    /// Most bytes of updates kept after the cached state, per room; past it the room stops
    /// caching (newcomers then get an empty state).
    pub max_log_bytes: usize,
    /// Each connection's WebSocket read buffer (tungstenite's default, 128 KiB, is what axum
    /// and so funnel use); smaller saves memory per connection.
    pub read_buffer_bytes: Option<usize>,
    /// Store every update frame durably in a ring file in this directory before forwarding it.
    pub durable: Option<PathBuf>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            cached_join: false,
            queue_frames: 4096,
            max_log_bytes: 64 * 1024 * 1024,
            read_buffer_bytes: None,
            durable: None,
        }
    }
}

/// How long the upgrade handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` fires, then closes every connection (1001).
pub async fn serve(
    listener: TcpListener,
    config: RelayConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let log = match &config.durable {
        Some(dir) => Some(DurableLog::start(dir, config.max_log_bytes)?),
        None => None,
    };
    let cached_join = config.cached_join;
    let durable = config.durable.is_some();
    let relay = Arc::new(Relay {
        config,
        log,
        rooms: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(1),
    });
    tracing::info!(
        cached_join,
        durable,
        "listening on {}",
        listener.local_addr()?
    );
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(Arc::clone(&relay).connection(stream, shutdown.clone()));
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    Ok(())
}

struct Relay {
    config: RelayConfig,
    /// With `durable`: the log every update passes through before it is forwarded.
    log: Option<DurableLog>,
    rooms: Mutex<HashMap<String, Arc<Mutex<Room>>>>,
    next_conn: AtomicU64,
}

#[derive(Default)]
struct Room {
    /// Connections that completed the handshake, with their queue (the writer task holds the
    /// receiving end).
    members: Vec<Member>,
    /// With `cached_join`: the captured state as a step 2 frame, and the update frames
    /// relayed since.
    cached: Option<Bytes>,
    log: Vec<Bytes>,
    log_bytes: usize,
}

struct Member {
    id: u64,
    queue: mpsc::Sender<Message>,
    /// Cancelled when the member's queue overflowed: its reader then drops the connection.
    slow: CancellationToken,
}

impl Room {
    /// Queues `frame` for every member but `except`; closes members whose queue is full.
    fn forward(&mut self, except: u64, frame: &Bytes) {
        self.members.retain(|member| {
            if member.id == except {
                return true;
            }
            let queued = member
                .queue
                .try_send(Message::Binary(frame.clone()))
                .is_ok();
            if !queued {
                tracing::info!(conn = member.id, "closed a slow consumer");
                member.slow.cancel();
            }
            queued
        });
    }

    /// Forwards an update frame and, while the room caches, keeps it for newcomers.
    fn relay_update(&mut self, from: u64, frame: Bytes, max_log_bytes: usize) {
        self.forward(from, &frame);
        if self.cached.is_some() && self.log_bytes + frame.len() <= max_log_bytes {
            self.log_bytes += frame.len();
            self.log.push(frame);
        } else if self.cached.is_some() {
            self.cached = None;
            self.log = Vec::new();
            self.log_bytes = 0;
        }
    }
}

/// The size of the durable relay's ring file: SQLite's log wraps round a file of about this
/// size (the disk probe writes round one too).
pub const RING_BYTES: u64 = crate::disk::FILE_BYTES as u64;

/// An update waiting for its flush, with where it goes after.
struct Pending {
    room: Arc<Mutex<Room>>,
    from: u64,
    frame: Bytes,
}

/// The durable relay's log: a queue to one thread that appends, flushes and then forwards.
struct DurableLog {
    queue: std::sync::mpsc::Sender<Pending>,
}

impl DurableLog {
    /// Creates and preallocates the ring file in `dir` (written through once, so that appends
    /// overwrite blocks that exist, as in a log that has wrapped) and starts the thread.
    fn start(dir: &std::path::Path, max_log_bytes: usize) -> std::io::Result<Self> {
        let file = tempfile::Builder::new()
            .prefix("relay-log-")
            .tempfile_in(dir)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("creating the relay's log in {}: {e}", dir.display()),
                )
            })?;
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < RING_BYTES {
            file.as_file().write_all_at(&zeros, at)?;
            at += zeros.len() as u64;
        }
        file.as_file().sync_all()?;
        let (queue, pending) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("relay-log".into())
            .spawn(move || {
                if let Err(e) = write_log(file.as_file(), &pending, max_log_bytes) {
                    // The senders see the queue closed and drop their connections.
                    tracing::error!(error = %e, "the relay's log failed: no update is forwarded any more");
                }
            })?;
        Ok(Self { queue })
    }
}

/// Takes every queued update, appends them as one write (each frame after its length, wrapping
/// round the ring), flushes once, then forwards them in the order they came.
fn write_log(
    file: &std::fs::File,
    pending: &std::sync::mpsc::Receiver<Pending>,
    max_log_bytes: usize,
) -> std::io::Result<()> {
    let mut batch = Vec::new();
    let mut bytes = Vec::new();
    let mut at = 0u64;
    while let Ok(first) = pending.recv() {
        batch.push(first);
        while let Ok(more) = pending.try_recv() {
            batch.push(more);
        }
        bytes.clear();
        for update in &batch {
            bytes.extend_from_slice(&(update.frame.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&update.frame);
        }
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let room = (RING_BYTES - at) as usize;
            let (now, later) = rest.split_at(rest.len().min(room));
            file.write_all_at(now, at)?;
            at = (at + now.len() as u64) % RING_BYTES;
            rest = later;
        }
        file.sync_data()?;
        for update in batch.drain(..) {
            lock(&update.room).relay_update(update.from, update.frame, max_log_bytes);
        }
    }
    Ok(())
}

impl Relay {
    async fn connection(self: Arc<Self>, stream: TcpStream, shutdown: CancellationToken) {
        let mut path = String::new();
        // The callback's signature is tungstenite's: its error type is a whole response.
        #[allow(clippy::result_large_err)]
        let callback = |request: &Request, response: Response| {
            path = request.uri().path().to_owned();
            Ok(response)
        };
        let mut ws_config = WebSocketConfig::default();
        if let Some(bytes) = self.config.read_buffer_bytes {
            ws_config = ws_config.read_buffer_size(bytes);
        }
        let ws = match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config)),
        )
        .await
        {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "handshake failed");
                return;
            }
            Err(_) => return,
        };
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let room = Arc::clone(lock(&self.rooms).entry(path.clone()).or_default());
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Message>(self.config.queue_frames.max(1));
        let writer = tokio::spawn(async move {
            // Feeds every queued frame, flushing when the queue runs dry: as few writes as
            // the load allows.
            while let Some(message) = rx.recv().await {
                let close = matches!(message, Message::Close(_));
                if sink.feed(message).await.is_err() {
                    return;
                }
                while let Ok(message) = rx.try_recv() {
                    if sink.feed(message).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() || close {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let mut joined = false;
        let slow = CancellationToken::new();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = tx.try_send(close_message(CloseCode::Away, "relay stopping"));
                    break;
                }
                // Its queue is full, so no close frame fits: drop the connection.
                () = slow.cancelled() => {
                    writer.abort();
                    break;
                }
                message = stream.next() => message,
            };
            let frame = match message {
                Some(Ok(Message::Binary(frame))) => frame,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            };
            let room_ref = &room;
            let mut room = lock(room_ref);
            match sync_type(&frame) {
                Some(MSG_SYNC_STEP_1) => {
                    let state = match (&room.cached, self.config.cached_join) {
                        (Some(cached), true) => cached.clone(),
                        _ => wire::encode_sync_step2(&EMPTY_UPDATE),
                    };
                    let mut queued = tx.try_send(Message::Binary(state)).is_ok();
                    if self.config.cached_join && room.cached.is_some() {
                        for update in &room.log {
                            queued &= tx.try_send(Message::Binary(update.clone())).is_ok();
                        }
                    }
                    if !queued {
                        drop(room);
                        let _ = tx.try_send(close_message(CloseCode::Again, "queue full"));
                        break;
                    }
                    if !joined {
                        joined = true;
                        room.members.push(Member {
                            id,
                            queue: tx.clone(),
                            slow: slow.clone(),
                        });
                    }
                }
                Some(MSG_SYNC_STEP_2) => {
                    let captures = self.config.cached_join
                        && room.cached.is_none()
                        && frame.len() > 3 + EMPTY_UPDATE.len();
                    if captures {
                        // The step 2 frame is resent as it is: the same bytes answer newcomers.
                        room.cached = Some(frame);
                    }
                }
                Some(MSG_SYNC_UPDATE) => match &self.log {
                    None => room.relay_update(id, frame, self.config.max_log_bytes),
                    Some(log) => {
                        drop(room);
                        let pending = Pending {
                            room: Arc::clone(room_ref),
                            from: id,
                            frame,
                        };
                        if log.queue.send(pending).is_err() {
                            let _ = tx.try_send(close_message(CloseCode::Error, "log failed"));
                            break;
                        }
                    }
                },
                _ => room.forward(id, &frame),
            }
        }
        // Rooms are never removed: the relay lives for one run, and removing a room that a
        // newcomer just looked up would split it in two.
        lock(&room).members.retain(|member| member.id != id);
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
}

/// The sync sub-type of a sync frame (both varints are one byte for the types that exist).
fn sync_type(frame: &[u8]) -> Option<u8> {
    match frame {
        [t, sub, ..] if *t == MSG_SYNC => Some(*sub),
        _ => None,
    }
}

fn close_message(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}
