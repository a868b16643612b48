//! One simulated client: a WebSocket that speaks the y-websocket protocol to any server, holding
//! a real yrs document or only counting what it receives, and, when it is a dragger, moving
//! cards at a fixed rate. The seeding client of a board also writes the board's cards.
//!
//! Every wait is bounded: the connect, each send, and the whole client by the run's deadline.

use crate::clock::{Rng, now_us};
use crate::metrics::{FinalState, Phase, Shared, lock};
use crate::stamp::{self, MoveStamp, SeedMark, field};
use bytes::Bytes;
use funnel_protocol::board::{self, CardPlace, card_key};
use funnel_protocol::schema::{self, Entity, root};
use funnel_protocol::wire::{self, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::{
    Any, Doc, In, Map, MapPrelim, Out, ReadTxn, StateVector, Transact, TransactionMut, WriteTxn,
};

/// How long a TCP connect plus WebSocket upgrade may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one send may wait for the socket (a server that stopped reading).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// At the end, a doc-holding client reads until its connection was quiet this long…
const SETTLE_QUIET: Duration = Duration::from_millis(300);
/// …or this long has passed.
const SETTLE_MAX: Duration = Duration::from_secs(5);
/// How long the closing handshake may take at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Close codes after which a stock client reconnects and re-syncs (a server going away, a
/// restart or drain, "try again later"); a client with a failover list does the same.
const RECONNECT_CODES: [u16; 3] = [1001, 1012, 1013];
/// Connection attempts of one reconnect before the client gives up (and reports an error).
const MAX_RECONNECT_ATTEMPTS: u32 = 60;
/// The wait after a full round of refused attempts doubles from this, up to
/// [`RECONNECT_BACKOFF_MAX`], as y-websocket's does.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Each attempt waits a random share of this first, so a wave of closes does not come back as
/// one burst of upgrades.
const RECONNECT_JITTER_MS: usize = 100;

/// An empty lib0 v1 update (no structs, empty delete set): what a client without a document
/// answers to the server's step 1.
pub const EMPTY_UPDATE: [u8; 2] = [0, 0];

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What one client does in a run.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// Unique in the run; the `movedBy` of its moves.
    pub id: u32,
    /// Index of its board in the run.
    pub room: usize,
    pub url: String,
    /// Which of the run's servers (`--url`, round-robin by id) `url` is, and how many there
    /// are: a client's server is its id modulo `instances`, so a receiver tells a move from
    /// another server by its sender's id. `instances` is 1 when clients reconnect elsewhere
    /// (`roll`), where that no longer holds.
    pub instance: usize,
    pub instances: usize,
    /// Where to reconnect, in order, after a close in [`RECONNECT_CODES`] (the other servers
    /// first, then `url`); empty: such a close ends the client, counted as a disconnect.
    pub failover: Vec<String>,
    /// Holds a yrs document (applies every update, joins the convergence check).
    pub holds_doc: bool,
    /// A storm newcomer (joins during the move phase).
    pub joiner: bool,
    /// Moves per second, for draggers.
    pub drag_rate: Option<f64>,
    /// Set on the one client per board that writes the cards.
    pub seed: Option<SeedPlan>,
    /// Cards on the board: ids `c00000`, `c00001`, ….
    pub cards: usize,
    /// Waits for the last seed batch (steady clients other than the seeder, when seeding).
    pub waits_for_seed: bool,
    /// Announce a presence (one awareness update) after the initial sync, as browsers do.
    pub awareness: bool,
    pub rng_seed: u64,
}

#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub cards: usize,
    /// Cards per transaction (one update frame each).
    pub batch: usize,
    pub board_name: String,
}

/// The id of card `n`.
pub fn card_id(n: usize) -> String {
    format!("c{n:05}")
}

/// Runs one client until the run reaches [`Phase::Finish`] or `deadline` passes.
pub async fn run(plan: ClientPlan, shared: Arc<Shared>, deadline: Instant) {
    let started = Instant::now();
    let ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect(&plan.url)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            shared.error(format!("connect failed: {}", short(&e.to_string())));
            shared.settle(plan.joiner);
            return;
        }
        Err(_) => {
            shared.error("connect timed out");
            shared.settle(plan.joiner);
            return;
        }
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut client = Client {
        doc: plan.holds_doc.then(Doc::new),
        rng: Rng::new(plan.rng_seed),
        plan,
        shared,
        ws,
        started,
        seen: HashMap::new(),
        stamps: Vec::new(),
        synced: false,
        seeded: false,
        moves: 0,
        early_updates: Vec::new(),
        stages: Vec::new(),
        resync_from: None,
    };
    let ended = client.run_until(deadline).await;
    if !client.synced {
        // Lost before its initial sync: the orchestrator stops waiting for it.
        client.shared.settle(client.plan.joiner);
    }
    client.finish(ended).await;
}

async fn connect(url: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    // Small read buffers: thousands of clients share this process; frames are small except
    // initial states, which the buffer grows for.
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    Ok(ws)
}

/// Why [`Client::on_message`] says the connection is over.
#[derive(Debug, PartialEq, Eq)]
enum Gone {
    /// Counted already; the client stops.
    Over,
    /// The server closed with a code in [`RECONNECT_CODES`]: a client with a failover list
    /// reconnects.
    Restart(u16),
}

/// How the client's loop ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The run finished: report and close.
    Finished,
    /// The connection ended or failed early (already counted).
    Lost,
    DeadlinePassed,
}

struct Client {
    plan: ClientPlan,
    shared: Arc<Shared>,
    ws: Socket,
    doc: Option<Doc>,
    rng: Rng,
    started: Instant,
    /// Per sender, a bitset of the move numbers received: each move counts once.
    seen: HashMap<u32, Vec<u64>>,
    stamps: Vec<MoveStamp>,
    synced: bool,
    /// Seeded the board (seeder) or saw its last seed batch (others).
    seeded: bool,
    moves: u32,
    /// Updates that arrived before the initial step 2, applied right after it.
    early_updates: Vec<Vec<u8>>,
    /// The board's stage ids, read once before the first move.
    stages: Vec<String>,
    /// Set from a reconnect until its re-sync's step 2: when the old connection closed.
    resync_from: Option<Instant>,
}

impl Client {
    async fn run_until(&mut self, deadline: Instant) -> Ended {
        let mut ticker: Option<Interval> = None;
        let ended = self.run_loop(deadline, &mut ticker).await;
        if ticker.is_some() {
            self.shared.active_draggers.fetch_sub(1, Ordering::Relaxed);
        }
        ended
    }

    async fn run_loop(&mut self, deadline: Instant, ticker: &mut Option<Interval>) -> Ended {
        let mut phase_rx = self.shared.phase.subscribe();
        if let Err(e) = self.send_step1().await {
            self.shared.error(format!("send failed: {e}"));
            return Ended::Lost;
        }
        loop {
            let phase = *phase_rx.borrow_and_update();
            if phase == Phase::Finish {
                return Ended::Finished;
            }
            if phase >= Phase::Seed && self.plan.seed.is_some() && !self.seeded && self.synced {
                self.seeded = true;
                if let Err(e) = self.seed().await {
                    self.shared.error(format!("seeding failed: {e}"));
                    return Ended::Lost;
                }
            }
            match (phase, self.plan.drag_rate) {
                (Phase::Move, Some(rate)) if ticker.is_none() && self.synced && rate > 0.0 => {
                    let period = Duration::from_secs_f64(1.0 / rate);
                    // A random phase, so that draggers do not all move in the same instant.
                    let offset = period.mul_f64(self.rng.below(1000) as f64 / 1000.0);
                    let mut interval = tokio::time::interval_at(Instant::now() + offset, period);
                    // An overloaded tester sends fewer moves rather than bursts; the report
                    // counts what was sent.
                    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
                    *ticker = Some(interval);
                    self.shared.active_draggers.fetch_add(1, Ordering::Relaxed);
                }
                (Phase::Drain, _) if ticker.is_some() => {
                    // The orchestrator counts moves only once every dragger has stopped.
                    *ticker = None;
                    self.shared.active_draggers.fetch_sub(1, Ordering::Relaxed);
                }
                _ => {}
            }
            tokio::select! {
                // A phase change goes first: no move starts after the moves stopped.
                biased;
                changed = phase_rx.changed() => {
                    if changed.is_err() {
                        return Ended::Finished;
                    }
                }
                frame = self.ws.next() => {
                    let flow = match frame {
                        Some(Ok(message)) => self.on_message(message).await,
                        Some(Err(e)) => {
                            self.shared.disconnect(format!("socket error: {}", short(&e.to_string())));
                            Err(Gone::Over)
                        }
                        None => {
                            self.shared.disconnect("stream ended without a close");
                            Err(Gone::Over)
                        }
                    };
                    match flow {
                        Ok(()) => {}
                        Err(Gone::Restart(code)) => {
                            if !self.reconnect(code, deadline).await {
                                return Ended::Lost;
                            }
                        }
                        Err(Gone::Over) => return Ended::Lost,
                    }
                }
                // No move between a reconnect and its re-sync, as a person waits for the board.
                _ = tick(ticker), if self.synced => {
                    if let Err(e) = self.send_move().await {
                        self.shared.error(format!("move failed: {e}"));
                        return Ended::Lost;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Ended::DeadlinePassed,
            }
        }
    }

    async fn finish(mut self, ended: Ended) {
        if ended == Ended::DeadlinePassed {
            self.shared
                .error("client still running at the run's deadline");
        }
        if ended == Ended::Finished && self.doc.is_some() {
            // Moves have stopped: read what is still in flight (a newcomer may still be
            // catching up) until the connection has been quiet for a moment, within a bound.
            let until = Instant::now() + SETTLE_MAX;
            while Instant::now() < until {
                match tokio::time::timeout(SETTLE_QUIET, self.ws.next()).await {
                    Ok(Some(Ok(message))) => {
                        if self.on_message(message).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) | Err(_) => break,
                }
            }
        }
        if ended != Ended::Lost
            && let Some(doc) = &self.doc
        {
            let state = final_state(self.plan.room, doc);
            lock(&self.shared.final_states).push(state);
        }
        if ended != Ended::Lost {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.close(None)).await;
        }
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), String> {
        let len = frame.len() as u64;
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::Binary(frame))).await {
            Ok(Ok(())) => {
                self.shared.frames_out.fetch_add(1, Ordering::Relaxed);
                self.shared.bytes_out.fetch_add(len, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(short(&e.to_string())),
            Err(_) => Err("send timed out".into()),
        }
    }

    async fn send_step1(&mut self) -> Result<(), String> {
        let sv = match &self.doc {
            Some(doc) => doc.transact().state_vector(),
            None => StateVector::default(),
        };
        self.send(wire::client::encode_sync_step1(&sv)).await
    }

    /// Reconnects after the server closed with `code` (a restart or a drain), trying the
    /// failover list in order, then re-syncs from the client's own state. `false` when no
    /// server took it back within the attempts (reported as an error).
    async fn reconnect(&mut self, code: u16, deadline: Instant) -> bool {
        let closed_at = Instant::now();
        self.shared.reconnect(format!("closed by server: {code}"));
        // Sends the reply to the server's close frame (tungstenite queued it).
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.close(None)).await;
        let mut order = self.plan.failover.clone();
        order.push(self.plan.url.clone());
        let rounds_backoff = |round: u32| {
            RECONNECT_BACKOFF
                .saturating_mul(1 << round.min(5))
                .min(RECONNECT_BACKOFF_MAX)
        };
        for attempt in 0..MAX_RECONNECT_ATTEMPTS {
            let jitter = Duration::from_millis(self.rng.below(RECONNECT_JITTER_MS) as u64);
            tokio::time::sleep(jitter).await;
            if Instant::now() >= deadline {
                break;
            }
            let i = attempt as usize % order.len();
            match tokio::time::timeout(CONNECT_TIMEOUT, connect(&order[i])).await {
                Ok(Ok(ws)) => {
                    self.ws = ws;
                    // The server that answered is this client's own from now on; the others
                    // follow it in the same order.
                    order.rotate_left(i);
                    self.plan.url = order.remove(0);
                    self.plan.failover = order;
                    self.synced = false;
                    self.early_updates.clear();
                    self.resync_from = Some(closed_at);
                    if let Err(e) = self.send_step1().await {
                        self.shared.error(format!("send failed: {e}"));
                        return false;
                    }
                    return true;
                }
                Ok(Err(_)) | Err(_) => {
                    self.shared.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if i + 1 == order.len() {
                        let round = attempt / order.len() as u32;
                        tokio::time::sleep(rounds_backoff(round)).await;
                    }
                }
            }
        }
        self.shared
            .error("no server took the client back after a restart");
        false
    }

    /// Handles one message from the server; `Err` when the connection is over.
    async fn on_message(&mut self, message: Message) -> Result<(), Gone> {
        let bytes = match message {
            Message::Binary(bytes) => bytes,
            Message::Close(frame) => {
                if let Some(frame) = &frame {
                    let code = u16::from(frame.code);
                    if !self.plan.failover.is_empty() && RECONNECT_CODES.contains(&code) {
                        return Err(Gone::Restart(code));
                    }
                }
                let why = match frame {
                    Some(frame) => format!("closed by server: {}", u16::from(frame.code)),
                    None => "closed by server without a code".into(),
                };
                self.shared.disconnect(why);
                return Err(Gone::Over);
            }
            // Pings are answered by tungstenite; text is not part of the protocol.
            _ => return Ok(()),
        };
        self.shared.frames_in.fetch_add(1, Ordering::Relaxed);
        self.shared
            .bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let message = match wire::decode_server_frame(&bytes) {
            Ok(message) => message,
            Err(e) => {
                self.shared
                    .error(format!("undecodable frame: {}", short(&e.to_string())));
                return Ok(());
            }
        };
        match message {
            ServerMessage::SyncStep1(sv) => {
                let diff = match &self.doc {
                    Some(doc) => doc.transact().encode_state_as_update_v1(&sv),
                    None => EMPTY_UPDATE.to_vec(),
                };
                if let Err(e) = self.send(wire::client::encode_sync_step2(&diff)).await {
                    self.shared.error(format!("send failed: {e}"));
                    return Err(Gone::Over);
                }
            }
            ServerMessage::SyncStep2(update) => {
                if self.synced {
                    self.apply(&update);
                } else {
                    // What came before the step 2 (live moves, and the first pieces of a large
                    // state: funnel sends it as updates with the step 2 last) is applied with
                    // it as one merged update, so yrs never holds a part waiting for another.
                    let early = std::mem::take(&mut self.early_updates);
                    let merged = if early.is_empty() {
                        Some(update.to_vec())
                    } else {
                        match yrs::merge_updates_v1(early.iter().chain([&update])) {
                            Ok(merged) => Some(merged),
                            Err(e) => {
                                self.shared.error(format!(
                                    "undecodable update: {}",
                                    short(&e.to_string())
                                ));
                                None
                            }
                        }
                    };
                    if let Some(merged) = &merged {
                        if self.resync_from.is_some() {
                            self.count_resync(merged);
                        }
                        self.apply(merged);
                    }
                    self.synced = true;
                    match self.resync_from.take() {
                        Some(closed_at) => Shared::record(
                            &self.shared.resync_gap,
                            closed_at.elapsed().as_micros() as u64,
                        ),
                        None => self.on_synced().await?,
                    }
                }
            }
            ServerMessage::Update(update) => {
                // Before the step 2, an update may be a piece of the board's state (funnel sends
                // a large one as updates, step 2 last), whose cards carry the stamps of moves
                // made before this client came: not deliveries, so moves count once synced.
                if self.synced {
                    self.count_moves(&update);
                } else if self.resync_from.is_some() {
                    // Moves made while this client was away, as pieces of its re-sync.
                    self.count_resync(&update);
                }
                if self.plan.waits_for_seed && !self.seeded {
                    let last = stamp::scan_seeds(&update).any(|mark| mark.batch == mark.last);
                    if last {
                        self.seeded = true;
                        self.shared.seeded.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if self.synced {
                    self.apply(&update);
                } else if self.doc.is_some() {
                    // A server may relay updates before it answers our step 1 (funnel does:
                    // a connection joins the room before its step 1 is read, and it sends a
                    // large state as updates before the step 2). Applied now, a move of a
                    // card we do not have yet would wait in yrs as a pending update, which
                    // yrs 0.28 handles badly (ARCHITECTURE.md): keep it for the step 2.
                    self.shared
                        .updates_before_sync
                        .fetch_add(1, Ordering::Relaxed);
                    self.early_updates.push(update);
                }
            }
            ServerMessage::AuthDenied(reason) => {
                self.shared
                    .error(format!("permission denied: {}", short(&reason)));
            }
            ServerMessage::Awareness(_)
            | ServerMessage::QueryAwareness
            | ServerMessage::Recovered(_) => {}
        }
        Ok(())
    }

    async fn on_synced(&mut self) -> Result<(), Gone> {
        let took_us = self.started.elapsed().as_micros() as u64;
        if self.plan.joiner {
            Shared::record(&self.shared.sync_joiners, took_us);
            self.shared.joiners_synced.fetch_add(1, Ordering::Relaxed);
        } else {
            Shared::record(&self.shared.sync_steady, took_us);
            self.shared.synced.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.settle(self.plan.joiner);
        if self.plan.awareness {
            let frame = awareness_frame(self.plan.id);
            if let Err(e) = self.send(frame).await {
                self.shared.error(format!("send failed: {e}"));
                return Err(Gone::Over);
            }
        }
        Ok(())
    }

    fn apply(&mut self, update: &[u8]) {
        let Some(doc) = &self.doc else { return };
        let update = match wire::decode_update_v1(update) {
            Ok(update) => update,
            Err(e) => {
                self.shared
                    .error(format!("undecodable update: {}", short(&e.to_string())));
                return;
            }
        };
        let mut txn = doc.transact_mut();
        if let Err(e) = txn.apply_update(update) {
            self.shared
                .error(format!("update not applied: {}", short(&e.to_string())));
        } else if txn.has_missing_updates() {
            self.shared
                .error("update with missing parents (kept pending)");
        }
    }

    fn count_moves(&mut self, update: &[u8]) {
        self.stamps.clear();
        stamp::scan_moves(update, &mut self.stamps);
        if self.stamps.is_empty() {
            return;
        }
        let now = now_us();
        let storm_from = self.shared.storm_from_us.load(Ordering::Relaxed);
        let storm_until = self.shared.storm_until_us.load(Ordering::Relaxed);
        for stamp in &self.stamps {
            if stamp.sender == self.plan.id {
                continue; // an echo of our own move: not a delivery
            }
            if !first_sight(&mut self.seen, stamp) {
                self.shared.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.plan.joiner {
                self.shared
                    .delivered_joiners
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.shared.delivered_steady.fetch_add(1, Ordering::Relaxed);
            if let Some(by) = self.shared.delivered_by_instance.get(self.plan.instance) {
                by.fetch_add(1, Ordering::Relaxed);
            }
            let latency = now.saturating_sub(stamp.sent_us);
            Shared::record(&self.shared.latency, latency);
            let instances = self.plan.instances.max(1);
            if instances > 1 && stamp.sender as usize % instances != self.plan.instance {
                Shared::record(&self.shared.cross_latency, latency);
            }
            let in_storm = storm_from != 0
                && stamp.sent_us >= storm_from
                && (storm_until == 0 || stamp.sent_us <= storm_until);
            if in_storm {
                Shared::record(&self.shared.storm_latency, latency);
            }
        }
    }

    /// Counts the moves a re-sync brings that this client had not seen: made while it was away,
    /// or sent to the old server too late to be stored (its sender's step 2 brought them back).
    /// The card's last move only: one superseded while the client was away is never seen.
    fn count_resync(&mut self, update: &[u8]) {
        self.stamps.clear();
        stamp::scan_moves(update, &mut self.stamps);
        for stamp in &self.stamps {
            if stamp.sender != self.plan.id
                && first_sight(&mut self.seen, stamp)
                && !self.plan.joiner
            {
                self.shared
                    .delivered_on_resync
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes the board's cards in batches; the last frame is a seed mark alone, sent after
    /// a full-state step 2 that a caching relay keeps for newcomers.
    async fn seed(&mut self) -> Result<(), String> {
        let Some(plan) = self.plan.seed.clone() else {
            return Ok(());
        };
        let Some(doc) = self.doc.clone() else {
            return Err("a seeding client must hold a document".into());
        };
        let batch_size = plan.batch.max(1);
        let batches = plan.cards.div_ceil(batch_size);
        let last = batches as u32;
        if board::stages(&doc.transact()).is_empty() {
            // A server that does not create boards (a relay, another Yjs server): the seeder
            // writes the default deal pipeline itself.
            let update = {
                let mut txn = doc.transact_mut();
                schema::initialize_board(
                    &mut txn,
                    &Entity::Deal,
                    schema::Language::En,
                    &plan.board_name,
                );
                txn.encode_update_v1()
            };
            self.send(wire::client::encode_update(&update)).await?;
        }
        let stages: Vec<String> = board::stages(&doc.transact())
            .into_iter()
            .map(|s| s.id)
            .collect();
        if stages.is_empty() {
            return Err("the board has no stages".into());
        }
        let placement = place_cards(plan.cards, stages.len());
        let now_ms = (now_us() / 1000) as i64;
        for batch in 0..batches {
            let update = {
                let mut txn = doc.transact_mut();
                let cards = txn.get_or_insert_map(root::CARDS);
                let from = batch * batch_size;
                let to = (from + batch_size).min(plan.cards);
                for (n, (column, pos)) in placement.iter().enumerate().take(to).skip(from) {
                    cards.insert(
                        &mut txn,
                        card_id(n),
                        card_prelim(n, &stages[*column], pos, now_ms),
                    );
                }
                mark_seed(&mut txn, batch as u32, last);
                txn.encode_update_v1()
            };
            self.send(wire::client::encode_update(&update)).await?;
        }
        let full = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        self.send(wire::client::encode_sync_step2(&full)).await?;
        let update = {
            let mut txn = doc.transact_mut();
            mark_seed(&mut txn, last, last);
            txn.encode_update_v1()
        };
        self.send(wire::client::encode_update(&update)).await
    }

    /// One move: a random card to a random place of a random stage, stamped, in one
    /// transaction.
    async fn send_move(&mut self) -> Result<(), String> {
        let Some(doc) = self.doc.clone() else {
            return Err("a dragger must hold a document".into());
        };
        if self.plan.cards == 0 {
            return Ok(());
        }
        if self.stages.is_empty() {
            self.stages = board::stages(&doc.transact())
                .into_iter()
                .map(|s| s.id)
                .collect();
            if self.stages.is_empty() {
                return Err("the board has no stages to move cards to".into());
            }
        }
        let card = card_id(self.rng.below(self.plan.cards));
        let stage = self.stages[self.rng.below(self.stages.len())].clone();
        let stamp = MoveStamp {
            sender: self.plan.id,
            seq: self.moves,
            sent_us: 0,
        };
        let update = {
            let mut txn = doc.transact_mut();
            let keys = column_keys(&txn, &stage, &card);
            let gap = self.rng.below(keys.len() + 1);
            let prev = gap.checked_sub(1).map(|i| keys[i].as_str());
            let next = keys.get(gap).map(String::as_str);
            if board::move_card_between(&mut txn, &card, &stage, prev, next).is_err() {
                // Neighbours with equal or over-long keys: the column needs a rebalance.
                board::move_card(&mut txn, &card, &stage, CardPlace::Top)
                    .map_err(|e| format!("move of {card}: {e}"))?;
                self.shared.rebalances.fetch_add(1, Ordering::Relaxed);
            }
            let sent_us = now_us();
            let stamp = MoveStamp { sent_us, ..stamp };
            let cards = txn.get_or_insert_map(root::CARDS);
            let Some(Out::YMap(card_map)) = cards.get(&txn, &card) else {
                return Err(format!("card {card} vanished"));
            };
            card_map.insert(&mut txn, field::MOVE_STAMP, Any::from(stamp.encode()));
            txn.encode_update_v1()
        };
        self.moves += 1;
        self.send(wire::client::encode_update(&update)).await?;
        self.shared.moves_sent[self.plan.room].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Marks `stamp`'s move as seen; `false` when it was already.
fn first_sight(seen: &mut HashMap<u32, Vec<u64>>, stamp: &MoveStamp) -> bool {
    let bits = seen.entry(stamp.sender).or_default();
    let (word, bit) = ((stamp.seq / 64) as usize, stamp.seq % 64);
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    let fresh = bits[word] & (1 << bit) == 0;
    bits[word] |= 1 << bit;
    fresh
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The `pos` keys of the cards in `stage` other than `except`, sorted as the board sorts them.
fn column_keys<T: ReadTxn>(txn: &T, stage: &str, except: &str) -> Vec<String> {
    let Some(cards) = txn.get_map(root::CARDS) else {
        return Vec::new();
    };
    let mut keys: Vec<(String, String)> = cards
        .iter(txn)
        .filter(|(id, _)| *id != except)
        .filter_map(|(id, value)| {
            let Out::YMap(card) = value else { return None };
            let card_stage = string_field(&card, txn, card_key::STAGE)?;
            (card_stage == stage)
                .then(|| Some((string_field(&card, txn, card_key::POS)?, id.to_owned())))
                .flatten()
        })
        .collect();
    keys.sort_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
    keys.into_iter().map(|(pos, _)| pos).collect()
}

fn string_field<T: ReadTxn>(map: &yrs::MapRef, txn: &T, key: &str) -> Option<String> {
    match map.get(txn, key)? {
        Out::Any(Any::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// Stage (index) and order key of every card: spread 30/20/15/15/10/6/4 % over the stages in
/// board order (as in the board-model benches), keys from `order::rebalanced` per column.
fn place_cards(cards: usize, stages: usize) -> Vec<(usize, String)> {
    const SHARE: [usize; 7] = [30, 20, 15, 15, 10, 6, 4];
    let weights: Vec<usize> = (0..stages)
        .map(|i| SHARE.get(i).copied().unwrap_or(4))
        .collect();
    let total: usize = weights.iter().sum();
    let mut columns = Vec::with_capacity(cards);
    for n in 0..cards {
        // Card n goes where n falls in the cumulative weights, interleaved so that every
        // column gets cards from the whole id range.
        let mut slot = (n * 7919) % total;
        let mut column = 0;
        while slot >= weights[column] {
            slot -= weights[column];
            column += 1;
        }
        columns.push(column);
    }
    let mut counts = vec![0; stages];
    for &c in &columns {
        counts[c] += 1;
    }
    let mut keys: Vec<std::vec::IntoIter<String>> = counts
        .iter()
        .map(|&n| funnel_protocol::order::rebalanced(n).into_iter())
        .collect();
    columns
        .into_iter()
        .map(|c| {
            let key = keys[c].next().unwrap_or_default();
            (c, key)
        })
        .collect()
}

fn card_prelim(n: usize, stage: &str, pos: &str, now_ms: i64) -> MapPrelim {
    let s = |v: &str| In::Any(Any::from(v));
    MapPrelim::from([
        (card_key::TITLE, s(&format!("Deal {n}: CRM rollout"))),
        (card_key::STAGE, s(stage)),
        (card_key::POS, s(pos)),
        (
            card_key::AMOUNT,
            In::Any(Any::from(((n * 7_919) % 250_000 + 500) as i64 * 100)),
        ),
        (card_key::CURRENCY, s("USD")),
        (card_key::RESPONSIBLE, s(&format!("user-{}", n % 25))),
        (card_key::CLIENT, s(&format!("Client {}", n % 400))),
        (card_key::CREATED_AT, In::Any(Any::from(now_ms))),
        (
            card_key::FIELDS,
            In::Map(MapPrelim::from_iter(std::iter::empty::<(&str, Any)>())),
        ),
    ])
}

fn mark_seed(txn: &mut TransactionMut, batch: u32, last: u32) {
    let board = txn.get_or_insert_map(root::BOARD);
    board.insert(txn, field::SEED, SeedMark { batch, last }.encode());
}

fn awareness_frame(id: u32) -> Bytes {
    use yrs::sync::AwarenessUpdate;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    let json = format!(
        r##"{{"user":{{"id":"load-{id}","name":"Load {id}","color":"#39a8ef"}},"dragging":null,"viewing":null}}"##
    );
    let mut clients = HashMap::new();
    clients.insert(
        yrs::ClientID::new(u64::from(id) + 1),
        AwarenessUpdateEntry {
            clock: 1,
            json: json.into(),
        },
    );
    wire::client::encode_awareness(&AwarenessUpdate { clients })
}

/// What the convergence check compares.
pub fn final_state(room: usize, doc: &Doc) -> FinalState {
    let txn = doc.transact();
    let mut state_vector: Vec<(u64, u32)> = txn
        .state_vector()
        .iter()
        .map(|(client, clock)| (client.get(), *clock))
        .collect();
    state_vector.sort_unstable();
    let mut cards: Vec<(String, String, String)> = txn
        .get_map(root::CARDS)
        .map(|cards| {
            cards
                .iter(&txn)
                .filter_map(|(id, value)| {
                    let Out::YMap(card) = value else { return None };
                    Some((
                        id.to_owned(),
                        string_field(&card, &txn, card_key::STAGE).unwrap_or_default(),
                        string_field(&card, &txn, card_key::POS).unwrap_or_default(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    cards.sort_unstable();
    // DefaultHasher::new() uses fixed keys: equal inputs hash equally within this process.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cards.hash(&mut hasher);
    FinalState {
        room,
        state_vector,
        cards_hash: hasher.finish(),
        cards: cards.len(),
    }
}

/// Error texts become report keys: keep them short.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}
