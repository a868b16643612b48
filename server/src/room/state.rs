//! The room's logic as a synchronous state machine: commands in, frames out. No sockets, no
//! storage, no timers: the room task feeds it and carries out what it asks, so that most of the
//! hub is tested without I/O.
//!
//! Protocol invariant: an update reaches other connections only after the task stored it. The
//! state machine therefore keeps two lists, drained by the task in this order:
//! [`RoomState::take_updates_to_store`], then (once they are durable) [`RoomState::deliver`].
//! Updates that another instance stored come in through [`RoomState::apply_remote_updates`] and
//! [`RoomState::apply_stored`]: already durable, they are only delivered.

use crate::auth::Principal;
use crate::outbox::{Outbox, Outgoing, PushError};
use crate::room::model::BoardModel;
use crate::room::upkeep::Upkeep;
use crate::storage::{StorageError, StoredBoard, TimelineEvent};
use bytes::Bytes;
use funnel_protocol::BoardId;
use funnel_protocol::policy::{self, CLIENT_ORIGIN, EffectRecorder, Role};
use funnel_protocol::wire::{self, ClientMessage, CloseCode, IncomingAwareness, IncomingUpdate};
use funnel_protocol::{pieces, presence};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use yrs::sync::time::Clock;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact};

mod hibernation;
pub use hibernation::needs_board;

/// A connection's id, unique within the process: the key of a room's members, so they are
/// served in the order they joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The origin of the transactions that apply timeline events (the board index sees them: they
/// add activities).
const TIMELINE_ORIGIN: &str = "funnel-timeline";

/// The largest update frame a sync answer, or a change relayed to the board's connections (a
/// bulk import, a seed batch, the upkeep of many cards; a move is one frame of about 100 bytes),
/// is cut into (one block larger than this goes alone). Large enough that a 2.5 MB board is
/// ~320 frames (the outbox takes 4,096), and that a relayed change is rarely cut (cutting
/// decodes and re-encodes it); small enough that no client gets a frame it must buffer at
/// length. No connection keeps a buffer of the frames it writes (`socket::SocketWriter`), so
/// their size costs no connection any memory once written.
pub const MAX_PIECE_BYTES: usize = 8 * 1024;

/// The origin of the transactions that apply updates another instance stored (from the bus or
/// the storage log). Not [`CLIENT_ORIGIN`]: the instance that stored them checked them, and they
/// are never stored again.
pub const REMOTE_ORIGIN: &str = "funnel-remote";

/// A presence not renewed for this long is removed. y-protocols clients renew every 15 s and
/// drop others after 30 s; the server applies the same rule because yrs' `Awareness` expires
/// nobody on its own.
pub const AWARENESS_TIMEOUT_MS: u64 = 30_000;

/// The most awareness clients one connection may hold at once. A stock client has one (its
/// document's client id, for the provider's whole life); a few more leave room for a client
/// that reopens its document on the same socket, and none may fill the room's presence, which
/// every joiner is sent whole.
pub const MAX_AWARENESS_CLIENTS: usize = 4;

/// The most updates one connection may have waiting for changes the board does not have yet
/// ([`RoomState::hold`]): a stock client that edits while its step 2 is on the way sends a few
/// (one per transaction of that round trip); over this, or [`MAX_HELD_BYTES`], it is closed with
/// 1013 and resyncs.
pub const MAX_HELD_UPDATES: usize = 64;

/// The most bytes of updates one connection may have waiting (see [`MAX_HELD_UPDATES`]).
pub const MAX_HELD_BYTES: usize = 1 << 20;

/// Why updates from another instance were not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error("an update from another instance does not decode or apply")]
    Malformed,
    #[error("an update from another instance builds on changes this board lacks")]
    Missing,
}

/// One connection in the room.
struct Member {
    outbox: Outbox,
    /// Who is connected: their role decides what their updates may change.
    principal: Principal,
    /// Awareness client ids this connection owns (see [`RoomState::awareness_owners`]):
    /// removed when it leaves.
    awareness_clients: HashSet<ClientID>,
    /// Updates that build on changes the board does not have yet, in the order they came
    /// ([`RoomState::hold`]); dropped when the connection leaves (its client still has them).
    held: VecDeque<(IncomingUpdate, UpdateKind)>,
    held_bytes: usize,
    /// The client asked for funnel's notices (`ClientMessage::WantsNotices`): after a step 2
    /// that brought the board changes it lacked, it is told so ([`wire::Recovered`]).
    wants_notices: bool,
}

/// Which message an update came in: a step 2 (the answer to the server's step 1, what a
/// reconnecting client holds and the board lacks) or an update made just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdateKind {
    SyncStep2,
    Update,
}

/// Who a frame goes to.
#[derive(Debug, Clone, Copy)]
enum Recipients {
    One(ConnId),
    All,
}

pub struct RoomState {
    board: BoardId,
    doc: Doc,
    awareness: Awareness,
    /// Which connection owns each local awareness client id: the first to set a state for it
    /// while the room held none. Only the owner changes or removes that presence; what others
    /// send for it is dropped (see [`RoomState::is_free`]). Kept in step with each member's
    /// `awareness_clients`.
    awareness_owners: HashMap<ClientID, ConnId>,
    /// In the order they connected: a change reaches the longest-connected first, so a crowd
    /// of newcomers queues behind the people already on the board, not in front of them.
    members: BTreeMap<ConnId, Member>,
    /// Raw updates applied to the document but not yet stored.
    to_store: Vec<Bytes>,
    /// Frames waiting for the updates before them to be stored.
    to_send: Vec<(Recipients, Outgoing)>,
    /// The server's step 1, encoded once while the document is unchanged.
    cached_step1: Option<Bytes>,
    /// What a joiner with an empty document is sent, cut once and shared (a reconnect storm
    /// encodes the board once, even while people keep moving cards). Dropped by
    /// [`RoomState::release_idle`] once no joiner has used it for a sweep: on an idle board it
    /// is a second copy of the whole document in memory.
    full_state: Option<FullState>,
    /// A joiner was answered from `full_state` since the last [`RoomState::release_idle`].
    full_state_used: bool,
    /// The board as plain data, one read model for the change feed and the upkeep.
    model: BoardModel,
    /// The server's upkeep of counters and avatars, when this room holds the board's lease.
    upkeep: Option<Upkeep>,
    /// What the upkeep wrote, applied but not yet stored: the task stores it with the lease's
    /// fence after the batch's other updates, then [`RoomState::upkeep_stored`] queues its frames.
    upkeep_to_store: Vec<Bytes>,
    /// The frames of `upkeep_to_store`, encoded once when it was written.
    upkeep_frames: Vec<Bytes>,
    /// Part of a cluster: local presence changes are kept for the bus.
    clustered: bool,
    /// Raw awareness updates of this instance's own clients, for the other instances.
    awareness_to_publish: Vec<Bytes>,
    /// The document holds an update that was refused (it waits for missing parents, or its
    /// writer's role does not allow it) and was never stored: the task replaces the document
    /// with the stored one before it handles anything else.
    tainted: bool,
    /// Records what each client update changed, for the role check.
    recorder: EffectRecorder,
    /// The admin-only roots and the display forms as they were after the last client update,
    /// while none of them changed (`EffectRecorder::guarded_changed`): what a member's update
    /// is judged and taken back against.
    guarded: Option<Arc<policy::Snapshot>>,
    /// The board's document size: what storage held at load, plus every update since (a
    /// running count that only grows: a rewritten field counts again), and the most the board
    /// may grow to. Near the limit the count is reset to the document's encoded size
    /// ([`RoomState::over_limit`]), so rewriting a field does not fill the board.
    stored_bytes: usize,
    max_bytes: usize,
    /// `stored_bytes` right after the document was last measured: while it stays the same, a
    /// second measure would find the same size.
    measured_at: Option<usize>,
    /// What the board's timeline events take in storage: part of the same budget.
    timeline_bytes: usize,
    /// `Some` while the room has let go of its board (`hibernation.rs`): `doc` is then empty
    /// and the task wakes the room before anything reads it.
    hibernated: Option<hibernation::Hibernated>,
}

impl RoomState {
    /// A room over a loaded document. `clock` gives milliseconds for awareness expiry.
    pub fn new(board: BoardId, doc: Doc, clock: impl Clock + 'static) -> Self {
        // The awareness reads its document's client id only (the server sets no presence of
        // its own): given the board's document it would keep a second handle on it, so a
        // replaced document (`replace_doc`) stayed in memory as long as the room.
        let awareness = Awareness::with_clock(Doc::with_client_id(doc.client_id().get()), clock);
        let recorder = EffectRecorder::attach(&doc);
        let model = BoardModel::attach(&doc);
        Self {
            board,
            model,
            doc,
            awareness,
            awareness_owners: HashMap::new(),
            members: BTreeMap::new(),
            to_store: Vec::new(),
            to_send: Vec::new(),
            cached_step1: None,
            full_state: None,
            full_state_used: false,
            tainted: false,
            upkeep: None,
            upkeep_to_store: Vec::new(),
            upkeep_frames: Vec::new(),
            clustered: false,
            awareness_to_publish: Vec::new(),
            recorder,
            guarded: None,
            stored_bytes: 0,
            max_bytes: usize::MAX,
            measured_at: None,
            timeline_bytes: 0,
            hibernated: None,
        }
    }

    /// Caps the board's stored size: an update that would take it over `max_bytes` is refused.
    /// `stored_bytes` is what the loaded board's document takes in storage now,
    /// `timeline_bytes` what its timeline events take: both count towards `max_bytes`.
    pub fn limit_size(&mut self, stored_bytes: usize, timeline_bytes: usize, max_bytes: usize) {
        self.stored_bytes = stored_bytes;
        self.timeline_bytes = timeline_bytes;
        self.max_bytes = max_bytes;
    }

    /// The document was just encoded whole (`bytes` long, for a snapshot): the running count
    /// restarts from that.
    pub fn measured(&mut self, bytes: usize) {
        self.stored_bytes = bytes;
        self.measured_at = Some(bytes);
    }

    /// The board's size limit, if `extra` more bytes would take the board over it. The running
    /// count is checked first; only when it crosses the limit is the document measured (its
    /// encoded size, once per crossing), and the count reset to that before refusing.
    pub fn over_limit(&mut self, extra: usize) -> Option<usize> {
        let fits = |stored: usize, timeline: usize| {
            stored.saturating_add(timeline).saturating_add(extra) <= self.max_bytes
        };
        if fits(self.stored_bytes, self.timeline_bytes) {
            return None;
        }
        if self.measured_at != Some(self.stored_bytes) {
            self.stored_bytes = self
                .doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default())
                .len();
            self.measured_at = Some(self.stored_bytes);
        }
        (!fits(self.stored_bytes, self.timeline_bytes)).then_some(self.max_bytes)
    }

    /// Starts maintaining counters and avatars (this room holds the board's lease).
    pub fn enable_upkeep(&mut self) {
        if self.upkeep.is_none() {
            self.upkeep = Some(Upkeep::new(&mut self.model));
        }
    }

    /// Stops maintaining counters and avatars (the lease is lost).
    pub fn disable_upkeep(&mut self) {
        self.forget_upkeep_while_hibernating();
        self.upkeep = None;
        self.model.track_for_upkeep(false);
    }

    /// The document and its read model, for the change feed to derive the events of what
    /// changed since the model was last brought up to date.
    pub fn doc_and_model(&mut self) -> (&Doc, &mut BoardModel) {
        (&self.doc, &mut self.model)
    }

    /// Brings the read model up to date without events (what another instance stored).
    pub fn sync_model(&mut self) {
        self.model.sync(&self.doc);
    }

    /// The room is part of a cluster: keep local presence changes for
    /// [`RoomState::take_awareness_to_publish`].
    pub fn set_clustered(&mut self) {
        self.clustered = true;
    }

    pub fn has_upkeep(&self) -> bool {
        self.upkeep.is_some()
    }

    /// Brings counters and avatars up to date at `now` (milliseconds since the epoch); what it
    /// writes is stored and sent to everyone like a client's update.
    pub fn run_upkeep(&mut self, now: i64) {
        let Some(upkeep) = self.upkeep.as_mut() else {
            return;
        };
        if let Some(update) = upkeep.run(&self.doc, &mut self.model, now) {
            let raw = Bytes::from(update);
            let frames = self.changed_by(&raw);
            self.upkeep_frames.extend(frames);
            self.stored_bytes += raw.len();
            self.upkeep_to_store.push(raw);
        }
    }

    /// What the upkeep wrote since the last call: to store with the lease's fence, after
    /// [`RoomState::take_updates_to_store`]'s part.
    pub fn take_upkeep_to_store(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.upkeep_to_store)
    }

    /// The upkeep's updates taken by [`RoomState::take_upkeep_to_store`] are stored: they go to
    /// everyone with the next delivery.
    pub fn upkeep_stored(&mut self) {
        for frame in std::mem::take(&mut self.upkeep_frames) {
            self.to_send.push((Recipients::All, frame.into()));
        }
    }

    /// Storage refused the upkeep's updates (a newer lease holder wrote) or the lease is gone:
    /// they are in the document but nowhere else. The upkeep stops and the room is tainted, so
    /// the task reloads the stored board, as for a refused client update.
    pub fn refuse_upkeep(&mut self) {
        self.upkeep = None;
        self.model.track_for_upkeep(false);
        self.upkeep_to_store.clear();
        self.upkeep_frames.clear();
        self.tainted = true;
    }

    pub fn has_card(&self, id: &str) -> bool {
        funnel_protocol::board::card(&self.doc.transact(), id).is_some()
    }

    /// Applies a stored timeline event to its card, in one server transaction: `timelineAt`
    /// (clients showing the card refetch its timeline), an open incoming activity for an
    /// incoming call, missed call, incoming e-mail or incoming chat message, and the avatar
    /// rule (at the next upkeep).
    pub fn apply_timeline_event(&mut self, event: &TimelineEvent, subject: Option<&str>) {
        use funnel_protocol::board::{self, NewActivity, card_key};
        use funnel_protocol::rules::{AvatarEvent, Direction};
        self.timeline_bytes = self.timeline_bytes.saturating_add(event.stored_len());
        let incoming = event.kind.adds_incoming_activity(event.direction);
        let reason = event.kind.avatar_reason(event.direction);
        let update = {
            let mut txn = self.doc.transact_mut_with(TIMELINE_ORIGIN);
            if let Some(yrs::Out::YMap(card)) = txn
                .get_map(funnel_protocol::schema::root::CARDS)
                .and_then(|cards| yrs::Map::get(&cards, &txn, &event.card))
            {
                yrs::Map::insert(&card, &mut txn, card_key::TIMELINE_AT, event.at);
            }
            if incoming {
                let given = subject
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or(&event.text);
                // A missed call says so: its open activity is not just "an incoming call".
                let subject: String = match (event.direction, given.trim().is_empty()) {
                    (funnel_protocol::timeline::TimelineDirection::Missed, true) => {
                        "Missed call".to_owned()
                    }
                    (funnel_protocol::timeline::TimelineDirection::Missed, false) => {
                        format!("Missed call: {}", given.trim())
                    }
                    _ => given.to_owned(),
                }
                .chars()
                .take(200)
                .collect();
                let activity = NewActivity {
                    card: event.card.clone(),
                    kind: event.kind.as_str().to_owned(),
                    direction: Direction::Incoming,
                    subject,
                    deadline: Some(event.at),
                    remind_min: None,
                    responsible: event.user.clone(),
                };
                if let Err(e) = board::add_activity(&mut txn, activity) {
                    tracing::warn!(error = %e, "timeline: no incoming activity added");
                }
            }
            txn.encode_update_v1()
        };
        if let (Some(reason), Some(upkeep)) = (reason, self.upkeep.as_mut()) {
            upkeep.note_event(
                &event.card,
                AvatarEvent {
                    at: event.at,
                    user: event.user.clone(),
                    reason,
                },
            );
        }
        let raw = Bytes::from(update);
        self.send_change(Recipients::All, &raw);
        self.stored_bytes += raw.len();
        self.to_store.push(raw);
    }

    /// A write of the board API on behalf of `principal` (see `room::api_write`): one
    /// transaction of the client origin, judged by the same policy as a socket update with the
    /// caller's role, then stored and sent to everyone like one. Refused (by the policy, the size
    /// limit or the write itself after it changed something), the room is tainted, so nothing
    /// of it stays. Returns what the write returned.
    pub fn apply_api_write(
        &mut self,
        principal: &Principal,
        write: super::api_write::ApiWriteFn,
    ) -> Result<String, super::api_write::ApiWriteError> {
        use super::api_write::ApiWriteError;
        if principal.role == Role::Viewer {
            return Err(ApiWriteError::Refused(policy::Refusal::ReadOnly));
        }
        let roots_before = self.doc.transact().root_refs().count();
        let (result, update) = {
            let mut txn = self.doc.transact_mut_with(CLIENT_ORIGIN);
            let result = write(&mut txn);
            let changed = txn.before_state() != txn.after_state() || !txn.delete_set().is_empty();
            (result, changed.then(|| txn.encode_update_v1()))
        };
        let effects = self.recorder.take();
        let target = match result {
            Ok(target) => target,
            Err(e) => {
                self.tainted |= update.is_some();
                return Err(e);
            }
        };
        let Some(update) = update else {
            return Ok(target);
        };
        let allowed = policy::check(
            principal.role,
            &principal.user,
            &effects,
            &self.doc.transact(),
            roots_before,
        );
        if let Err(refusal) = allowed {
            tracing::info!(board = %self.board, user = principal.user, role = %principal.role, %refusal, "refused an api write");
            self.tainted = true;
            return Err(ApiWriteError::Refused(refusal));
        }
        if let Some(max) = self.over_limit(update.len()) {
            self.tainted = true;
            return Err(ApiWriteError::BoardFull { max });
        }
        let raw = Bytes::from(update);
        self.send_change(Recipients::All, &raw);
        self.stored_bytes += raw.len();
        self.to_store.push(raw);
        Ok(target)
    }

    /// When a counter changes next by itself (milliseconds since the epoch).
    pub fn next_wake(&self) -> Option<i64> {
        self.upkeep.as_ref().and_then(Upkeep::next_wake)
    }

    /// Swaps in a document reloaded from storage (`stored_bytes` in size), dropping a refused
    /// update. Members keep their state: what they have is what was stored.
    pub fn replace_doc(&mut self, doc: Doc, stored_bytes: usize) {
        self.recorder = EffectRecorder::attach(&doc);
        self.guarded = None;
        // A model of the new document (the old one's tracker detaches as it is dropped).
        self.model = BoardModel::attach(&doc);
        self.doc = doc;
        self.stored_bytes = stored_bytes;
        self.measured_at = None;
        self.tainted = false;
        self.upkeep_to_store.clear();
        self.upkeep_frames.clear();
        if self.upkeep.is_some() {
            self.upkeep = Some(Upkeep::new(&mut self.model));
        }
        self.changed();
    }

    /// Whether the document holds a refused, waiting update (see [`RoomState::handle`]): the
    /// task should reload the board from storage.
    pub fn is_tainted(&self) -> bool {
        self.tainted
    }

    pub fn board(&self) -> &BoardId {
        &self.board
    }

    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// The user a connection acts as (its token's `sub`), while it is a member.
    pub fn user_of(&self, conn: ConnId) -> Option<&str> {
        self.members.get(&conn).map(|m| m.principal.user.as_str())
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// A connection joins: it gets the server's step 1 (so it sends what the server lacks) and
    /// everyone's presence.
    pub fn join(&mut self, conn: ConnId, outbox: Outbox, principal: Principal) {
        self.members.insert(
            conn,
            Member {
                outbox,
                principal,
                awareness_clients: HashSet::new(),
                held: VecDeque::new(),
                held_bytes: 0,
                wants_notices: false,
            },
        );
        let step1 = self.step1_frame();
        self.to_send.push((Recipients::One(conn), step1.into()));
        if let Some(frame) = self.all_awareness_frame() {
            self.to_send.push((Recipients::One(conn), frame.into()));
        }
    }

    /// A connection leaves (closed, or gone): its presence is removed for everyone.
    pub fn leave(&mut self, conn: ConnId) {
        let Some(member) = self.members.remove(&conn) else {
            return;
        };
        for client in &member.awareness_clients {
            if self.awareness_owners.get(client) == Some(&conn) {
                self.awareness_owners.remove(client);
            }
        }
        self.remove_awareness(member.awareness_clients, true);
    }

    /// Closes every connection (shutdown, storage failure).
    pub fn close_all(&mut self, code: CloseCode, reason: &str) {
        for member in std::mem::take(&mut self.members).into_values() {
            member.outbox.close(code, reason);
        }
        self.to_send.clear();
    }

    pub fn handle(&mut self, conn: ConnId, message: ClientMessage) {
        if !self.members.contains_key(&conn) {
            // It was closed (slow consumer, bad update) while this message was in flight.
            return;
        }
        let is_step2 = matches!(message, ClientMessage::SyncStep2(_));
        match message {
            ClientMessage::SyncStep1(sv) => {
                // One entry, streamed by the writer as the socket drains: a board larger than
                // the outbox's byte budget can still be joined (see `Outgoing::Answer`).
                let answer = Outgoing::Answer(self.step2_frames(&sv).into());
                self.to_send.push((Recipients::One(conn), answer));
            }
            ClientMessage::SyncStep2(update) | ClientMessage::Update(update) => {
                let kind = if is_step2 {
                    UpdateKind::SyncStep2
                } else {
                    UpdateKind::Update
                };
                let nothing_new = self.apply_update(conn, update, kind);
                // Refunds an echo's message budget (see `Outbox::judged`).
                if let Some(member) = self.members.get(&conn) {
                    member.outbox.judged(nothing_new);
                }
            }
            ClientMessage::Awareness(awareness) => self.apply_awareness(conn, awareness),
            ClientMessage::QueryAwareness => {
                if let Some(frame) = self.all_awareness_frame() {
                    self.to_send.push((Recipients::One(conn), frame.into()));
                }
            }
            ClientMessage::WantsNotices => {
                if let Some(member) = self.members.get_mut(&conn) {
                    member.wants_notices = true;
                }
            }
        }
    }

    /// Applies a client's update; true when it brought nothing new (an echo, an empty step 2).
    /// One that builds on changes the board lacks is held for its connection instead
    /// ([`RoomState::hold`]) and applied once they arrive.
    fn apply_update(&mut self, conn: ConnId, incoming: IncomingUpdate, kind: UpdateKind) -> bool {
        if incoming.update.is_empty() {
            return true;
        }
        if !self.members.contains_key(&conn) {
            return false;
        }
        let has = self.doc.transact().state_vector();
        // Only blocks the board lacks can grow it: a step 2 that repeats what the board holds
        // (a reconnecting client's, however large) passes.
        if incoming.update.extends(&has)
            && let Some(max) = self.over_limit(incoming.raw.len())
        {
            let reason = format!("the board is at its size limit ({max} bytes)");
            self.close_member(conn, CloseCode::BoardTooLarge, &reason);
            return false;
        }
        // An update that builds on changes this board does not have (a gap in an author's
        // clocks, a missing origin or deleted item): yrs 0.28 would integrate it around a
        // placeholder or keep it pending, and can later diverge or panic when the missing part
        // arrives. A stock client sends one when it edits while its step 2 is still on the
        // way: it waits for that, beside the document.
        let missing = pieces::depends_on_missing(&incoming.raw, &has).unwrap_or_else(|| {
            incoming
                .update
                .state_vector_lower()
                .iter()
                .any(|(client, clock)| *clock > has.get(client))
        });
        if missing {
            self.hold(conn, incoming, kind);
            return false;
        }
        let nothing_new = self.integrate(conn, incoming, kind, &has);
        self.release_held();
        nothing_new
    }

    /// Keeps `incoming` for its connection until what it builds on arrives, in the order it
    /// came; over [`MAX_HELD_UPDATES`] or [`MAX_HELD_BYTES`] the connection is closed with 1013
    /// (its client reconnects, and its step 2 then carries everything).
    fn hold(&mut self, conn: ConnId, incoming: IncomingUpdate, kind: UpdateKind) {
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        member.held_bytes += incoming.raw.len();
        member.held.push_back((incoming, kind));
        if member.held.len() > MAX_HELD_UPDATES || member.held_bytes > MAX_HELD_BYTES {
            self.close_member(
                conn,
                CloseCode::TryAgainLater,
                "too many updates wait for changes this board does not have; reconnect to resync",
            );
        }
    }

    /// Applies every held update whose dependencies the board now has, each connection's in
    /// the order they came, until none is ready.
    fn release_held(&mut self) {
        loop {
            let has = self.doc.transact().state_vector();
            let ready = self.members.iter().find_map(|(conn, member)| {
                let (first, _) = member.held.front()?;
                let missing = pieces::depends_on_missing(&first.raw, &has).unwrap_or(true);
                (!missing).then_some(*conn)
            });
            let Some(conn) = ready else { return };
            let Some((incoming, kind)) = self.members.get_mut(&conn).and_then(|member| {
                let (incoming, kind) = member.held.pop_front()?;
                member.held_bytes -= incoming.raw.len();
                Some((incoming, kind))
            }) else {
                return;
            };
            self.integrate(conn, incoming, kind, &has);
        }
    }

    /// Applies an update whose dependencies the board has, judges it by what it leaves
    /// (`policy::judge`), takes back in a server transaction what the writer's role may not
    /// write, and queues it (with that compensation, merged into one update) to store and
    /// relay. True when it brought nothing new.
    fn integrate(
        &mut self,
        conn: ConnId,
        incoming: IncomingUpdate,
        kind: UpdateKind,
        has: &StateVector,
    ) -> bool {
        let Some(member) = self.members.get(&conn) else {
            return false;
        };
        let (role, user) = (member.principal.role, member.principal.user.clone());
        // A notice is only worth its cost to a client that asked, after its step 2.
        let notify = kind == UpdateKind::SyncStep2 && member.wants_notices;
        let roots_before = self.doc.transact().root_refs().count();
        let before = if role == Role::Viewer {
            // A viewer writes nothing: its usual step 2 carries nothing new and passes without
            // a copy of the board; one that does (a copy holding others' changes the server
            // lost) is applied and taken back whole.
            if !incoming.update.extends(has) && !self.deletes_anything_new(&incoming.update) {
                return true;
            }
            Arc::new(policy::Snapshot::capture(
                &self.doc.transact(),
                &policy::ROOTS,
            ))
        } else {
            self.guarded_snapshot()
        };
        let changed = {
            let mut txn = self.doc.transact_mut_with(CLIENT_ORIGIN);
            if let Err(e) = txn.apply_update(incoming.update) {
                drop(txn);
                self.tainted = true;
                self.close_member(
                    conn,
                    CloseCode::InvalidPayload,
                    &format!("update cannot be applied: {e}"),
                );
                return false;
            }
            if txn.has_missing_updates() {
                // Checked before (`pieces::depends_on_missing`): only an update that the check
                // reads differently from yrs gets here. The board never keeps one: it is
                // neither stored nor relayed, and the client resyncs.
                Err(())
            } else {
                let changed =
                    txn.before_state() != txn.after_state() || !txn.delete_set().is_empty();
                // For the notice: the board's clocks, for each author this step 2 brought
                // changes of that the board lacked.
                let held = notify
                    .then(|| clocks_before(txn.before_state(), txn.after_state()))
                    .filter(|held| !held.is_empty());
                Ok((changed, held))
            }
            // The transaction commits here: the recorder's observers see what it changed.
        };
        let effects = self.recorder.take();
        let (changed, held) = match changed {
            Ok(changed) => changed,
            Err(()) => {
                self.refuse_waiting_update(conn);
                self.tainted = true;
                return false;
            }
        };
        if role != Role::Viewer {
            self.guarded = Some(Arc::clone(&before));
        }
        if !changed {
            return true;
        }
        let judged = policy::judge(
            role,
            &user,
            &effects,
            &before,
            &self.doc.transact(),
            roots_before,
        );
        let compensation = match judged {
            Ok(compensation) => compensation,
            Err(refusal) => {
                self.refuse(conn, &user, role, &refusal);
                return false;
            }
        };
        let taken_back = if compensation.is_empty() && !compensation.check_stages {
            None
        } else {
            let mut txn = self.doc.transact_mut_with(policy::COMPENSATION_ORIGIN);
            policy::compensate(&mut txn, &compensation, &before);
            let update = txn.encode_update_v1();
            (update.as_slice() != EMPTY_UPDATE).then_some(update)
        };
        // Only stage mending writes when nothing else is taken back.
        let stages_mended = compensation.is_empty() && taken_back.is_some();
        let notice = held.map(|held| wire::Recovered {
            held,
            taken_back: compensation.taken_back(stages_mended),
        });
        let verdict = policy::verify(role, &user, &effects, &before, &self.doc.transact());
        if let Err(refusal) = verdict {
            self.refuse(conn, &user, role, &refusal);
            return false;
        }
        // Sent to its sender too, once stored: the confirmation the sync status of newer
        // y-websocket releases waits for (the echo's content covers the client's update).
        let Some(compensation) = taken_back else {
            self.send_notice(conn, notice);
            self.send_change(Recipients::All, &incoming.raw);
            self.stored_bytes += incoming.raw.len();
            self.to_store.push(incoming.raw);
            return false;
        };
        // The update and what takes part of it back, as one update: stored in one entry and
        // relayed in one frame (or its pieces), so no other client ever holds what the role may
        // not write. The writer gets it too: its echo, and what was taken back.
        let merged = match yrs::merge_updates_v1([incoming.raw.as_ref(), compensation.as_slice()]) {
            Ok(merged) => Bytes::from(merged),
            Err(e) => {
                tracing::warn!(error = %e, "could not merge an update with its compensation");
                self.refuse(conn, &user, role, &policy::Refusal::ReadOnly);
                return false;
            }
        };
        tracing::info!(conn = conn.0, board = %self.board, user, %role, "took back what a client's update may not write");
        self.send_notice(conn, notice);
        self.send_change(Recipients::All, &merged);
        self.stored_bytes += merged.len();
        self.to_store.push(merged);
        false
    }

    /// Queues a recovered notice for its connection, delivered once the update it speaks of is
    /// stored, like everything else, and before that update's echo: the client compares the
    /// notice with what it had received from the server, which the echo would add to.
    fn send_notice(&mut self, conn: ConnId, notice: Option<wire::Recovered>) {
        if let Some(notice) = notice {
            let frame = wire::encode_recovered(&notice);
            self.to_send.push((Recipients::One(conn), frame.into()));
        }
    }

    /// Refuses an update already integrated in memory, never stored or relayed: the task swaps
    /// in the stored document before anything reads this one again.
    fn refuse(&mut self, conn: ConnId, user: &str, role: Role, refusal: &policy::Refusal) {
        tracing::info!(conn = conn.0, board = %self.board, user, %role, %refusal, "refused an update");
        self.tainted = true;
        self.close_member(conn, CloseCode::Forbidden, &refusal.to_string());
    }

    /// The admin-only roots and the display forms as they are now, copied again only when one
    /// of them changed since the last copy.
    fn guarded_snapshot(&mut self) -> Arc<policy::Snapshot> {
        match self.guarded.take() {
            Some(snapshot) if !self.recorder.guarded_changed() => snapshot,
            _ => {
                self.recorder.guarded_changed();
                Arc::new(policy::Snapshot::capture(
                    &self.doc.transact(),
                    &policy::GUARDED_ROOTS,
                ))
            }
        }
    }

    /// Whether `update`'s deletions remove anything this document still holds.
    fn deletes_anything_new(&self, update: &yrs::Update) -> bool {
        let deletes = update.delete_set();
        if deletes.is_empty() {
            return false;
        }
        let deleted = self.doc.transact().snapshot().delete_set;
        !deletes.diff(&deleted).is_empty()
    }

    fn refuse_waiting_update(&mut self, conn: ConnId) {
        self.close_member(
            conn,
            CloseCode::InvalidPayload,
            "update depends on changes this board does not have; reconnect to resync",
        );
    }

    /// A connection's presence. Its states were checked when the frame was decoded (JSON of the
    /// schema's shape, see `funnel_protocol::presence`); here the room checks whose they are:
    /// a connection sets and removes only the awareness clients it owns (see
    /// [`RoomState::awareness_owners`]), at most [`MAX_AWARENESS_CLIENTS`] of them, and with
    /// tokens its presence's `user.id` is the token's user whatever the client wrote.
    fn apply_awareness(&mut self, conn: ConnId, incoming: IncomingAwareness) {
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let (user, from_token) = (member.principal.user.clone(), member.principal.from_token);
        let mut owned = member.awareness_clients.clone();
        let mut edited = false;
        let mut kept = HashMap::with_capacity(incoming.update.clients.len());
        for (client, mut entry) in incoming.update.clients {
            let ours = owned.contains(&client) || self.is_free(client, entry.clock);
            if !ours {
                // Someone else's presence: a stock y-websocket client sends on every presence
                // it hears of, so this is usually a copy of what the room has (or had).
                edited = true;
                continue;
            }
            if entry.json.as_ref() == presence::REMOVED {
                owned.remove(&client);
            } else {
                owned.insert(client);
                if from_token && let Some(json) = presence::with_user_id(&entry.json, &user) {
                    entry.json = json.into();
                    edited = true;
                }
            }
            kept.insert(client, entry);
        }
        if owned.len() > MAX_AWARENESS_CLIENTS {
            let reason =
                format!("more than {MAX_AWARENESS_CLIENTS} awareness clients on one connection");
            self.close_member(conn, CloseCode::BadRequest, &reason);
            return;
        }
        for client in kept.keys() {
            if owned.contains(client) {
                self.awareness_owners.insert(*client, conn);
            } else {
                self.awareness_owners.remove(client);
            }
        }
        if let Some(member) = self.members.get_mut(&conn) {
            member.awareness_clients = owned;
        }
        if kept.is_empty() {
            return;
        }
        let update = AwarenessUpdate { clients: kept };
        let frame = if edited {
            wire::encode_awareness(&update)
        } else {
            incoming.frame
        };
        let raw = self.clustered.then(|| Bytes::from(update.encode_v1()));
        if let Err(e) = self.awareness.apply_update(update) {
            tracing::debug!(error = %e, "awareness update not applied");
            return;
        }
        self.awareness_to_publish.extend(raw);
        // Echoed to the sender too: browsers hide WebSocket pings, so a client that hears nothing
        // for 30 s reconnects; its own renewal coming back keeps it alive on a quiet board.
        self.to_send.push((Recipients::All, frame.into()));
    }

    /// Whether a connection may claim awareness client `client` with an entry at `clock`: no
    /// connection here owns it, the room holds no live state for it (another instance's
    /// client), and the entry is newer than what the room last knew of it (not a late copy of
    /// a presence that was removed).
    fn is_free(&self, client: ClientID, clock: u32) -> bool {
        if self.awareness_owners.contains_key(&client) {
            return false;
        }
        match self.awareness.meta(client) {
            None => true,
            Some((known, _)) => {
                clock > known
                    && self
                        .awareness
                        .iter()
                        .any(|(id, state)| id == client && state.data.is_none())
            }
        }
    }

    /// Lets go of what only a busy board needs (called every few seconds, see `room.rs`): the
    /// joiners' shared cut of the board when no joiner used it since the last call (the next
    /// one cuts it again), and the capacity that bursts left in the room's buffers.
    pub fn release_idle(&mut self) {
        if !self.full_state_used {
            self.full_state = None;
        }
        self.full_state_used = false;
        self.to_store.shrink_to(IDLE_CAPACITY);
        self.to_send.shrink_to(IDLE_CAPACITY);
        self.awareness_to_publish.shrink_to(IDLE_CAPACITY);
        self.upkeep_frames.shrink_to(IDLE_CAPACITY);
        self.upkeep_to_store.shrink_to(IDLE_CAPACITY);
    }

    /// Removes presences not renewed for [`AWARENESS_TIMEOUT_MS`]; `now_ms` is on the room's
    /// awareness clock.
    pub fn sweep_awareness(&mut self, now_ms: u64) {
        let expired: Vec<ClientID> = self
            .awareness
            .iter()
            .filter(|(_, state)| {
                state.data.is_some()
                    && now_ms.saturating_sub(state.last_updated) >= AWARENESS_TIMEOUT_MS
            })
            .map(|(client, _)| client)
            .collect();
        if expired.is_empty() {
            return;
        }
        for member in self.members.values_mut() {
            for client in &expired {
                member.awareness_clients.remove(client);
            }
        }
        for client in &expired {
            self.awareness_owners.remove(client);
        }
        // Not published: every instance sweeps its own copy (one that dies stops renewing).
        self.remove_awareness(expired, false);
    }

    /// Removes presences; `local`: they were this instance's clients', so the other instances
    /// are told too.
    /// Any state counts, whether its JSON parses or not (one from an instance that did not
    /// check it must still go when its client does).
    fn remove_awareness(&mut self, clients: impl IntoIterator<Item = ClientID>, local: bool) {
        let mut clients = clients.into_iter().peekable();
        if clients.peek().is_none() {
            return;
        }
        let present: HashSet<ClientID> = self
            .awareness
            .iter()
            .filter(|(_, state)| state.data.is_some())
            .map(|(client, _)| client)
            .collect();
        let mut removed = Vec::new();
        for client in clients {
            if present.contains(&client) {
                self.awareness.remove_state(client);
                removed.push(client);
            }
        }
        if removed.is_empty() {
            return;
        }
        match self.awareness.update_with_clients(removed) {
            Ok(update) => {
                if local && self.clustered {
                    self.awareness_to_publish
                        .push(Bytes::from(update.encode_v1()));
                }
                self.to_send
                    .push((Recipients::All, wire::encode_awareness(&update).into()));
            }
            Err(e) => tracing::warn!(error = %e, "could not encode awareness removal"),
        }
    }

    /// Raw awareness updates of this instance's clients since the last call, for the bus.
    pub fn take_awareness_to_publish(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.awareness_to_publish)
    }

    /// Presence from another instance: applied to the room's awareness (the sweep expires it
    /// when that instance stops renewing it) and relayed to every local member.
    pub fn apply_remote_awareness(&mut self, raw: &[u8]) {
        let update = match AwarenessUpdate::decode_v1(raw) {
            Ok(update) => update,
            Err(e) => {
                tracing::debug!(error = %e, "remote awareness does not decode");
                return;
            }
        };
        let frame = wire::encode_awareness(&update);
        if let Err(e) = self.awareness.apply_update(update) {
            tracing::debug!(error = %e, "remote awareness not applied");
            return;
        }
        self.to_send.push((Recipients::All, frame.into()));
    }

    /// Whether `incoming` carries something this document lacks (its state vector is ahead of
    /// the document's somewhere): a cluster catches up from storage before applying it, so that
    /// a client coming from another instance is not refused for that instance's server writes.
    pub fn is_news(&self, incoming: &IncomingUpdate) -> bool {
        let has = self.doc.transact().state_vector();
        incoming
            .update
            .state_vector()
            .iter()
            .any(|(client, clock)| *clock > has.get(client))
    }

    /// Updates another instance stored, in seq order, directly after what this document holds
    /// (a bus message). Applied with [`REMOTE_ORIGIN`], never stored again, and relayed to every
    /// local member (each encoded once). An update that does not decode, or that leaves yrs
    /// waiting for missing parents, is an error: the caller catches up from storage instead.
    pub fn apply_remote_updates(&mut self, updates: &[Bytes]) -> Result<(), RemoteError> {
        for raw in updates {
            let update = wire::decode_update_v1(raw).map_err(|_| RemoteError::Malformed)?;
            let missing = {
                let mut txn = self.doc.transact_mut_with(REMOTE_ORIGIN);
                if txn.apply_update(update).is_err() {
                    drop(txn);
                    self.tainted = true;
                    return Err(RemoteError::Malformed);
                }
                txn.has_missing_updates()
            };
            if missing {
                // Not causal after all: swap in the stored board before anything reads this.
                self.tainted = true;
                return Err(RemoteError::Missing);
            }
            self.stored_bytes += raw.len();
            self.send_change(Recipients::All, raw);
        }
        Ok(())
    }

    /// Applies what storage holds above this document (`Storage::load_since`), in seq order,
    /// and relays to every local member what it lacked. Log entries alone (no snapshot among
    /// them) are relayed each as stored, the ones that brought something new, in seq order, as
    /// the bus would have: a card moved twice in the window reaches the clients as two moves,
    /// not as its last place only. After a snapshot, or when an entry waits for another
    /// (yrs keeps it pending), one update: the difference from the state before.
    pub fn apply_stored(&mut self, stored: &StoredBoard) -> Result<(), StorageError> {
        if stored.entries.is_empty() {
            return Ok(());
        }
        let before = self.doc.transact().state_vector();
        let from_snapshot = stored.entries.len() > stored.tail_len;
        // The entries to relay as they are; `None` once the difference must go instead.
        let mut news: Option<Vec<&Bytes>> = (!from_snapshot).then(Vec::new);
        let mut changed = false;
        let mut missing = false;
        for (seq, raw) in &stored.entries {
            let corrupt = |reason: String| StorageError::Corrupt {
                board: self.board.clone(),
                seq: *seq,
                reason,
            };
            let update = wire::decode_update_v1(raw).map_err(|e| corrupt(e.to_string()))?;
            let mut txn = self.doc.transact_mut_with(REMOTE_ORIGIN);
            if let Err(e) = txn.apply_update(update) {
                // Possibly half integrated: swap in the stored board (whose load then reports
                // the damage).
                drop(txn);
                self.tainted = true;
                return Err(corrupt(e.to_string()));
            }
            let new = txn.before_state() != txn.after_state() || !txn.delete_set().is_empty();
            missing = txn.has_missing_updates();
            drop(txn);
            changed |= new;
            if missing {
                news = None; // a later entry may complete it: only the difference is whole
            } else if new && let Some(news) = news.as_mut() {
                news.push(raw);
            }
        }
        let bytes: usize = stored.entries.iter().map(|(_, raw)| raw.len()).sum();
        if from_snapshot {
            // Snapshot and tail are the whole stored board.
            self.stored_bytes = bytes;
        } else {
            self.stored_bytes += bytes;
        }
        if missing {
            self.tainted = true;
            return Ok(());
        }
        match news {
            Some(news) => {
                for raw in news {
                    self.send_change(Recipients::All, raw);
                }
            }
            None if changed => {
                let diff = self.doc.transact().encode_state_as_update_v1(&before);
                self.send_change(Recipients::All, &diff);
            }
            None => {}
        }
        Ok(())
    }

    fn close_member(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        if let Some(member) = self.members.get(&conn) {
            member.outbox.close(code, reason);
        }
        self.leave(conn);
    }

    /// The document was replaced: nothing cached from it holds.
    fn changed(&mut self) {
        self.cached_step1 = None;
        self.full_state = None;
    }

    /// The document changed by `raw` (an update as applied): a joiner's full state is the one
    /// cut before plus this, until the changes grow past [`FullState::MAX_CHANGES_SHARE`].
    /// Returns the change's update frames (encoded once, for the cut and for delivery).
    fn changed_by(&mut self, raw: &[u8]) -> Vec<Bytes> {
        self.cached_step1 = None;
        let frames = update_frames(raw);
        if let Some(full) = self.full_state.as_mut()
            && !full.add_change(&frames)
        {
            self.full_state = None;
        }
        frames
    }

    /// The document changed by `raw`: recorded (see [`RoomState::changed_by`]) and queued for
    /// `to`.
    fn send_change(&mut self, to: Recipients, raw: &[u8]) {
        for frame in self.changed_by(raw) {
            self.to_send.push((to, frame.into()));
        }
    }

    fn step1_frame(&mut self) -> Bytes {
        let doc = &self.doc;
        self.cached_step1
            .get_or_insert_with(|| wire::encode_sync_step1(&doc.transact().state_vector()))
            .clone()
    }

    /// The answer to a step 1: what the client lacks, as update frames of at most
    /// [`MAX_PIECE_BYTES`] each and a step 2 last (see `funnel_protocol::pieces`: a connection
    /// keeps the capacity of the largest frame it ever wrote). A joiner's full state is cut
    /// once and shared while the document is unchanged.
    fn step2_frames(&mut self, sv: &StateVector) -> Vec<Bytes> {
        let doc = &self.doc;
        let diff = || doc.transact().encode_state_as_update_v1(sv);
        if !sv.is_empty() {
            return answer_frames(&diff()).0;
        }
        self.full_state_used = true;
        self.full_state
            .get_or_insert_with(|| FullState::cut(&diff()))
            .frames()
    }

    fn all_awareness_frame(&self) -> Option<Bytes> {
        let update = self.awareness.update().ok()?;
        (!update.clients.is_empty()).then(|| wire::encode_awareness(&update))
    }

    /// The updates to store before [`deliver`](Self::deliver) may run.
    pub fn take_updates_to_store(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.to_store)
    }

    /// Whether frames are waiting to be delivered.
    pub fn has_frames(&self) -> bool {
        !self.to_send.is_empty()
    }

    /// Queues the waiting frames on the connections' outboxes. A connection whose queue is full
    /// is closed (slow consumer) and leaves, and its presence removal is delivered in turn.
    pub fn deliver(&mut self) {
        // Each round can only add presence removals for members it removed, so it ends.
        while !self.to_send.is_empty() {
            let mut gone = Vec::new();
            for (to, frame) in std::mem::take(&mut self.to_send) {
                let mut push = |conn: ConnId, member: &Member| match member
                    .outbox
                    .push(frame.clone())
                {
                    Ok(()) => {}
                    Err(PushError::Full) => {
                        tracing::info!(conn = conn.0, board = %self.board, "closed a slow consumer");
                        gone.push(conn);
                    }
                    // Closing on its own (bad input, socket gone): its Leave is on the way.
                    Err(PushError::Closed) => gone.push(conn),
                };
                match to {
                    Recipients::One(conn) => {
                        if let Some(member) = self.members.get(&conn) {
                            push(conn, member);
                        }
                    }
                    Recipients::All => {
                        for (conn, member) in &self.members {
                            push(*conn, member);
                        }
                    }
                }
            }
            gone.sort_unstable();
            gone.dedup();
            for conn in gone {
                self.leave(conn);
            }
        }
    }
}

/// For each author whose clock went from `before` to a later one in `after`, the clock
/// `before` holds (0 when none): what the board held of their changes.
fn clocks_before(before: &StateVector, after: &StateVector) -> StateVector {
    let mut held = StateVector::default();
    for (client, end) in after.iter() {
        let had = before.get(client);
        if *end > had {
            held.set_max(*client, had);
        }
    }
    held
}

/// An update as update frames, in pieces when it is large (a bulk import, the upkeep of a
/// thousand new cards): see [`MAX_PIECE_BYTES`]. A move is one small frame.
fn update_frames(raw: &[u8]) -> Vec<Bytes> {
    if raw.len() <= MAX_PIECE_BYTES {
        return vec![wire::encode_update(raw)];
    }
    pieces::split_update_v1(raw, MAX_PIECE_BYTES)
        .iter()
        .map(|piece| wire::encode_update(piece))
        .collect()
}

/// A sync answer to a step 1: update frames of at most [`MAX_PIECE_BYTES`], a step 2 last; and
/// that last piece's raw update.
fn answer_frames(diff: &[u8]) -> (Vec<Bytes>, Vec<u8>) {
    let mut pieces = pieces::split_update_v1(diff, MAX_PIECE_BYTES);
    let last = pieces.pop().unwrap_or_default();
    let mut frames: Vec<Bytes> = pieces.iter().map(|p| wire::encode_update(p)).collect();
    frames.push(wire::encode_sync_step2(&last));
    (frames, last)
}

/// The answer to a joiner with an empty document, shared by every such joiner: the board's
/// state as it was cut, then every change since as it was applied (each change builds only on
/// what comes before it, so the joiner never holds an update waiting for its parents), then a
/// step 2. Encoding and cutting a 5,000-card board takes milliseconds of the room's task, and
/// during a storm every move would otherwise make the next joiner pay them again.
struct FullState {
    /// The state when it was cut, as a sync answer (step 2 last).
    answer: Vec<Bytes>,
    /// The answer's last piece as an update frame, for when changes follow it.
    last_as_update: Bytes,
    state_bytes: usize,
    /// Update frames of the changes since, in the order they were applied.
    changes: Vec<Bytes>,
    changes_bytes: usize,
}

impl FullState {
    /// Changes are kept until they weigh this share of the state; then the next joiner cuts
    /// the state again (which also folds what the changes overwrote).
    const MAX_CHANGES_SHARE: usize = 4;

    fn cut(state: &[u8]) -> Self {
        let (answer, last) = answer_frames(state);
        let last_as_update = wire::encode_update(&last);
        Self {
            state_bytes: answer.iter().map(Bytes::len).sum(),
            answer,
            last_as_update,
            changes: Vec::new(),
            changes_bytes: 0,
        }
    }

    /// Records a change; `false` when the changes outweigh what re-cutting costs.
    fn add_change(&mut self, frames: &[Bytes]) -> bool {
        self.changes_bytes += frames.iter().map(Bytes::len).sum::<usize>();
        self.changes.extend_from_slice(frames);
        self.changes_bytes * Self::MAX_CHANGES_SHARE <= self.state_bytes.max(MAX_PIECE_BYTES)
    }

    fn frames(&self) -> Vec<Bytes> {
        if self.changes.is_empty() {
            return self.answer.clone();
        }
        let mut frames = Vec::with_capacity(self.answer.len() + self.changes.len() + 1);
        frames.extend_from_slice(&self.answer[..self.answer.len() - 1]);
        frames.push(self.last_as_update.clone());
        frames.extend_from_slice(&self.changes);
        frames.push(wire::encode_sync_step2(EMPTY_UPDATE));
        frames
    }
}

/// What a room's queues keep of their capacity once the board is quiet (see
/// [`RoomState::release_idle`]): enough for a move and its echoes without a new allocation.
pub const IDLE_CAPACITY: usize = 16;

/// A v1 update that changes nothing: no structs, an empty delete set.
const EMPTY_UPDATE: &[u8] = &[0, 0];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Next, OutboxLimits, OutboxReceiver, outbox};
    use funnel_protocol::wire::{ServerMessage, decode_client_frame, decode_server_frame};
    use futures_util::FutureExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use yrs::sync::AwarenessUpdate;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    use yrs::{GetString, Text};

    const LIMITS: OutboxLimits = OutboxLimits {
        max_frames: 64,
        max_bytes: 1 << 20,
    };

    struct Harness {
        room: RoomState,
        now: Arc<AtomicU64>,
    }

    impl Harness {
        fn new() -> Self {
            let now = Arc::new(AtomicU64::new(0));
            let clock = Arc::clone(&now);
            let room = RoomState::new(BoardId::parse("b").unwrap(), Doc::new(), move || {
                clock.load(Ordering::Relaxed)
            });
            Self { room, now }
        }

        fn join(&mut self, id: u64) -> OutboxReceiver {
            self.join_as(id, Principal::local_admin())
        }

        fn join_as(&mut self, id: u64, principal: Principal) -> OutboxReceiver {
            let (tx, rx) = outbox(LIMITS);
            self.room.join(ConnId(id), tx, principal);
            rx
        }

        /// The presence the room holds for awareness client `client`, as JSON text.
        fn presence(&self, client: u64) -> Option<String> {
            self.room
                .awareness
                .iter()
                .find(|(id, _)| id.get() == client)
                .and_then(|(_, state)| state.data.as_deref().map(str::to_owned))
        }

        /// Connections 1 and 2, joined, with their join frames already read.
        fn join_two_quiet(&mut self) -> (OutboxReceiver, OutboxReceiver) {
            let mut a = self.join(1);
            let mut b = self.join(2);
            self.flush();
            received(&mut a);
            received(&mut b);
            (a, b)
        }

        fn send(&mut self, id: u64, frame: Bytes) {
            for message in decode_client_frame(&frame).unwrap() {
                self.room.handle(ConnId(id), message);
            }
        }

        /// `doc` holds everything the room's document does.
        fn assert_holds_the_board(&self, doc: &Doc) {
            assert_eq!(
                doc.transact().state_vector(),
                self.room.doc().transact().state_vector()
            );
        }

        /// What the task does after each batch: store, then deliver.
        fn flush(&mut self) -> Vec<Bytes> {
            let stored = self.room.take_updates_to_store();
            self.room.deliver();
            stored
        }
    }

    fn received(rx: &mut OutboxReceiver) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        while let Some(Next::Frame(frame)) = rx.next().now_or_never() {
            out.push(decode_server_frame(&frame).unwrap());
        }
        out
    }

    /// A text the tests edit, under the `fields` root (the harness's members are admins; roots
    /// outside the schema are refused, see `policy::ROOTS`).
    fn text(doc: &Doc) -> yrs::TextRef {
        let fields = doc.get_or_insert_map(funnel_protocol::schema::root::FIELDS);
        let mut txn = doc.transact_mut();
        match yrs::Map::get(&fields, &txn, "t") {
            Some(yrs::Out::YText(text)) => text,
            _ => yrs::Map::insert(&fields, &mut txn, "t", yrs::TextPrelim::new("")),
        }
    }

    /// A fresh client's whole document after it typed `content`.
    fn text_update(content: &str) -> Vec<u8> {
        let doc = Doc::new();
        let t = text(&doc);
        t.insert(&mut doc.transact_mut(), 0, content);
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// A presence of the schema's shape for user `id`.
    fn state_of(id: &str) -> String {
        format!(r##"{{"user":{{"id":"{id}","name":"N","color":"#123456"}},"dragging":null}}"##)
    }

    fn awareness_frame(client: u64, clock: u32, json: &str) -> Bytes {
        wire::client::encode_awareness_state(client, clock, json)
    }

    #[test]
    fn an_update_is_stored_then_sent_to_everyone_its_sender_included() {
        let mut h = Harness::new();
        let mut a = h.join(1);
        let mut b = h.join(2);
        h.flush();
        assert!(matches!(
            received(&mut a)[..],
            [ServerMessage::SyncStep1(_)]
        ));
        assert!(matches!(
            received(&mut b)[..],
            [ServerMessage::SyncStep1(_)]
        ));

        let update = text_update("hi");
        h.send(1, wire::client::encode_update(&update));
        let stored = h.flush();
        assert_eq!(stored, vec![Bytes::from(update.clone())]);
        // The sender's copy confirms it (y-websocket's sync status waits for it).
        assert!(matches!(&received(&mut a)[..], [ServerMessage::Update(u)] if *u == update));
        assert!(matches!(&received(&mut b)[..], [ServerMessage::Update(u)] if *u == update));

        // The same update again changes nothing: neither stored nor relayed.
        h.send(2, wire::client::encode_update(&update));
        assert!(h.flush().is_empty());
        assert!(received(&mut a).is_empty());
        let text = text(h.room.doc());
        assert_eq!(text.get_string(&h.room.doc().transact()), "hi");
    }

    #[test]
    fn a_late_joiner_gets_the_full_state_from_its_step1() {
        let mut h = Harness::new();
        let _a = h.join(1);
        h.send(1, wire::client::encode_update(&text_update("abc")));
        h.flush();
        let mut c = h.join(3);
        h.send(3, wire::client::encode_sync_step1(&StateVector::default()));
        h.flush();
        let messages = received(&mut c);
        let Some(ServerMessage::SyncStep2(state)) = messages.last() else {
            panic!("expected step 2, got {messages:?}")
        };
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(wire::decode_update_v1(state).unwrap())
            .unwrap();
        let text = text(&doc);
        assert_eq!(text.get_string(&doc.transact()), "abc");
    }

    /// Connection 1 writes fields `f{i}` of 1,000 characters each, one update per field.
    fn write_fields(h: &mut Harness, writer: &Doc, fields: std::ops::Range<usize>) {
        let map = writer.get_or_insert_map(funnel_protocol::schema::root::FIELDS);
        for i in fields {
            let value: String = (0..1_000)
                .map(|j| char::from(b'a' + ((i + j) % 26) as u8))
                .collect();
            let sv = writer.transact().state_vector();
            yrs::Map::insert(&map, &mut writer.transact_mut(), format!("f{i}"), value);
            let update = writer.transact().encode_state_as_update_v1(&sv);
            h.send(1, wire::client::encode_update(&update));
        }
    }

    /// A new client `id` joins with an empty document: the frames it gets after the room's
    /// step 1, and its document once it applied them, each with nothing pending.
    fn join_fresh(h: &mut Harness, id: u64) -> (Vec<Bytes>, Doc) {
        let mut rx = h.join(id);
        h.send(id, wire::client::encode_sync_step1(&StateVector::default()));
        h.flush();
        let mut frames = Vec::new();
        while let Some(Next::Frame(frame)) = rx.next().now_or_never() {
            frames.push(frame);
        }
        let doc = Doc::new();
        for frame in &frames[1..] {
            let message = decode_server_frame(frame).unwrap();
            let (ServerMessage::Update(update) | ServerMessage::SyncStep2(update)) = message else {
                panic!("expected updates, got {message:?}")
            };
            let mut txn = doc.transact_mut();
            txn.apply_update(wire::decode_update_v1(&update).unwrap())
                .unwrap();
            assert!(
                !txn.has_missing_updates(),
                "a piece came before what it builds on"
            );
        }
        let last = decode_server_frame(frames.last().unwrap()).unwrap();
        assert!(matches!(last, ServerMessage::SyncStep2(_)), "{last:?}");
        (frames, doc)
    }

    #[test]
    fn a_large_board_reaches_a_joiner_in_small_frames_step2_last() {
        let mut h = Harness::new();
        let _a = h.join(1);
        // 40 fields of 1,000 characters from one client: a 40 KB board.
        write_fields(&mut h, &Doc::new(), 0..40);
        h.flush();
        let (frames, doc) = join_fresh(&mut h, 3);
        assert!(
            frames.len() > 2,
            "{} frames for a 40 KB board",
            frames.len()
        );
        for frame in &frames {
            assert!(
                frame.len() <= MAX_PIECE_BYTES + 6_000,
                "{} bytes",
                frame.len()
            );
        }
        h.assert_holds_the_board(&doc);
    }

    #[test]
    fn joiners_share_one_cut_of_the_board_and_get_the_changes_since_after_it() {
        let mut h = Harness::new();
        let _a = h.join(1);
        let writer = Doc::new();
        write_fields(&mut h, &writer, 0..40);
        h.flush();
        let (first, _) = join_fresh(&mut h, 3);
        // Two changes after the cut, then a joiner: the same pieces (not cut again), the
        // changes, a step 2; and it holds the whole board.
        write_fields(&mut h, &writer, 40..42);
        h.flush();
        let (second, doc) = join_fresh(&mut h, 4);
        let shared = first.len() - 2; // all but the step 1 and the last piece
        for (a, b) in first[1..=shared].iter().zip(&second[1..=shared]) {
            assert_eq!(a.as_ptr(), b.as_ptr(), "a piece was encoded again");
        }
        assert_eq!(
            second.len(),
            first.len() + 3,
            "the last piece, 2 changes, step 2"
        );
        h.assert_holds_the_board(&doc);
        // Changes worth more than a quarter of the board: the next joiner gets a new cut.
        write_fields(&mut h, &writer, 42..60);
        h.flush();
        let (third, doc) = join_fresh(&mut h, 5);
        assert_ne!(first[1].as_ptr(), third[1].as_ptr(), "cut again");
        h.assert_holds_the_board(&doc);
    }

    #[test]
    fn awareness_is_echoed_to_all_removed_on_leave_and_swept_when_stale() {
        let mut h = Harness::new();
        let (mut a, mut b) = h.join_two_quiet();

        h.send(1, awareness_frame(11, 1, &state_of("u1")));
        h.send(2, awareness_frame(22, 1, &state_of("u2")));
        h.flush();
        assert_eq!(received(&mut a).len(), 2, "own echo + b's presence");
        assert_eq!(received(&mut b).len(), 2);

        // a leaves: b hears that client 11 is gone.
        h.room.leave(ConnId(1));
        h.flush();
        let removal = received(&mut b);
        let [ServerMessage::Awareness(update)] = &removal[..] else {
            panic!("expected a removal, got {removal:?}")
        };
        assert_eq!(&*update.clients[&ClientID::new(11)].json, "null");

        // 22 renews at 20 s; at 40 s it is 20 s old and stays; at 50 s it is 30 s old and goes.
        h.now.store(20_000, Ordering::Relaxed);
        h.send(2, awareness_frame(22, 2, &state_of("u2")));
        h.flush();
        received(&mut b);
        h.now.store(40_000, Ordering::Relaxed);
        h.room.sweep_awareness(40_000);
        h.flush();
        assert!(received(&mut b).is_empty());
        h.room.sweep_awareness(50_000);
        h.flush();
        assert!(
            matches!(&received(&mut b)[..], [ServerMessage::Awareness(u)] if &*u.clients[&ClientID::new(22)].json == "null")
        );
    }

    /// A member with a token for `user`.
    fn member(user: &str) -> Principal {
        Principal {
            user: user.to_owned(),
            name: user.to_owned(),
            role: Role::Member,
            boards: None,
            from_token: true,
            expires_at: None,
            board_roles: Default::default(),
            session: None,
        }
    }

    /// The close code `rx` was asked to close with, if any.
    fn close_code(rx: &mut OutboxReceiver) -> Option<CloseCode> {
        while let Some(next) = rx.next().now_or_never() {
            if let Next::Close(request) = next {
                return Some(request.code);
            }
        }
        None
    }

    /// Issue 22: a state that does not parse was kept after its connection left (the removal
    /// only looked at states that parse). Decoding refuses such states now; one that gets in
    /// anyway still goes with its connection.
    #[test]
    fn any_state_of_a_leaving_connection_is_removed_even_one_that_does_not_parse() {
        let mut h = Harness::new();
        let (_a, mut b) = h.join_two_quiet();
        let mut clients = std::collections::HashMap::new();
        clients.insert(
            ClientID::new(11),
            AwarenessUpdateEntry {
                clock: 1,
                json: "{not json".into(),
            },
        );
        let update = AwarenessUpdate { clients };
        let frame = wire::client::encode_awareness(&update);
        h.room.handle(
            ConnId(1),
            ClientMessage::Awareness(IncomingAwareness { update, frame }),
        );
        h.flush();
        received(&mut b);
        assert!(h.presence(11).is_some());
        h.room.leave(ConnId(1));
        h.flush();
        assert!(
            matches!(&received(&mut b)[..], [ServerMessage::Awareness(u)] if &*u.clients[&ClientID::new(11)].json == "null")
        );
        assert_eq!(h.presence(11), None);
    }

    /// Issue 22: any connection could overwrite or remove anyone's presence by its client id.
    /// What a connection sends for another's client id is dropped, not refused: stock
    /// y-websocket clients send on every presence they hear of, their peers' included.
    #[test]
    fn a_connection_sets_and_removes_only_its_own_awareness_clients() {
        let mut h = Harness::new();
        let mut ann = h.join_as(1, member("ann"));
        let mut bob = h.join_as(2, member("bob"));
        let mut eve = h.join_as(3, member("eve"));
        h.flush();
        h.send(1, awareness_frame(11, 1, &state_of("ann")));
        h.flush();
        for rx in [&mut ann, &mut bob, &mut eve] {
            received(rx);
        }
        // Eve removes Ann's presence, Bob overwrites it: both dropped, nobody hears of it.
        h.send(3, awareness_frame(11, 2, "null"));
        h.send(2, awareness_frame(11, 5, &state_of("bob")));
        h.flush();
        for rx in [&mut ann, &mut bob, &mut eve] {
            assert!(received(rx).is_empty(), "nothing relayed");
            assert!(close_code(rx).is_none());
        }
        assert!(h.presence(11).unwrap().contains(r#""id":"ann""#));
        // Bob's own presence in the same frame as a copy of Ann's: his part goes through.
        let mut clients = std::collections::HashMap::new();
        for (client, json) in [(11, state_of("ann")), (22, state_of("bob"))] {
            clients.insert(
                ClientID::new(client),
                AwarenessUpdateEntry {
                    clock: 1,
                    json: json.into(),
                },
            );
        }
        h.send(
            2,
            wire::client::encode_awareness(&AwarenessUpdate { clients }),
        );
        h.flush();
        let heard = received(&mut eve);
        assert!(
            matches!(&heard[..], [ServerMessage::Awareness(u)] if u.clients.len() == 1 && u.clients.contains_key(&ClientID::new(22))),
            "{heard:?}"
        );
        // Ann removes her own: it goes. Bob's leave then removes only his.
        h.send(1, awareness_frame(11, 2, "null"));
        h.flush();
        assert_eq!(h.presence(11), None);
        received(&mut eve);
        h.room.leave(ConnId(2));
        h.flush();
        let heard = received(&mut eve);
        assert!(
            matches!(&heard[..], [ServerMessage::Awareness(u)] if u.clients.keys().eq([&ClientID::new(22)])),
            "{heard:?}"
        );
    }

    /// A stock client echoes a presence it heard; a copy that arrives after its owner left
    /// must not bring it back (owned by the wrong connection, never removed).
    #[test]
    fn a_late_copy_of_a_removed_presence_does_not_bring_it_back() {
        let mut h = Harness::new();
        let (_a, mut b) = h.join_two_quiet();
        h.send(1, awareness_frame(11, 3, &state_of("u1")));
        h.room.leave(ConnId(1));
        h.flush();
        received(&mut b);
        h.send(2, awareness_frame(11, 3, &state_of("u1")));
        h.flush();
        assert!(received(&mut b).is_empty());
        assert_eq!(h.presence(11), None);
        // The client itself, back with a newer clock, gets it again.
        let _again = h.join(3);
        h.send(3, awareness_frame(11, 9, &state_of("u1")));
        h.flush();
        assert!(h.presence(11).is_some());
        h.room.leave(ConnId(3));
        assert_eq!(h.presence(11), None);
    }

    #[test]
    fn with_a_token_the_presence_names_the_tokens_user() {
        let mut h = Harness::new();
        let mut mallory = h.join_as(1, member("mallory"));
        let mut other = h.join(2);
        h.flush();
        received(&mut mallory);
        received(&mut other);
        h.send(1, awareness_frame(11, 1, &state_of("the-ceo")));
        h.flush();
        for rx in [&mut other, &mut mallory] {
            let messages = received(rx);
            let [ServerMessage::Awareness(u)] = &messages[..] else {
                panic!("one presence, got {messages:?}")
            };
            let json = &u.clients[&ClientID::new(11)].json;
            assert!(json.contains(r#""id":"mallory""#), "{json}");
            assert!(json.contains(r#""name":"N""#), "the rest is kept: {json}");
        }
        // In local mode (no tokens) the client's own id stays.
        h.send(2, awareness_frame(22, 1, &state_of("u2")));
        h.flush();
        assert!(h.presence(22).unwrap().contains(r#""id":"u2""#));
    }

    #[test]
    fn a_connection_holds_a_bounded_number_of_awareness_clients() {
        let mut h = Harness::new();
        let mut a = h.join(1);
        h.flush();
        for client in 0..MAX_AWARENESS_CLIENTS as u64 {
            h.send(1, awareness_frame(100 + client, 1, &state_of("u1")));
        }
        h.flush();
        assert!(close_code(&mut a).is_none());
        // One removed makes room for another; one more over the limit closes.
        h.send(1, awareness_frame(100, 2, "null"));
        h.send(1, awareness_frame(200, 1, &state_of("u1")));
        h.flush();
        assert!(close_code(&mut a).is_none());
        h.send(1, awareness_frame(201, 1, &state_of("u1")));
        h.flush();
        assert_eq!(close_code(&mut a), Some(CloseCode::BadRequest));
        assert!(
            h.room.awareness.iter().all(|(_, s)| s.data.is_none()),
            "all removed on close"
        );
    }

    #[test]
    fn a_slow_consumer_is_closed_and_the_others_carry_on() {
        let mut h = Harness::new();
        let (slow_tx, mut slow_rx) = outbox(OutboxLimits {
            max_frames: 2,
            max_bytes: 1 << 20,
        });
        h.room.join(ConnId(9), slow_tx, Principal::local_admin());
        let mut fast = h.join(1);
        h.flush();
        for i in 0..5 {
            h.send(
                1,
                wire::client::encode_update(&text_update(&format!("{i}"))),
            );
            h.flush();
            received(&mut fast);
        }
        assert_eq!(h.room.member_count(), 1);
        let mut closed = None;
        while let Some(next) = slow_rx.next().now_or_never() {
            if let Next::Close(request) = next {
                closed = Some(request.code);
                break;
            }
        }
        assert_eq!(closed, Some(CloseCode::TryAgainLater));
    }

    /// A stock client that reconnects with offline edits and edits again before its step 2 is
    /// out sends an update with a gap in its clocks: it is held, not refused (issue 17, item 4).
    #[test]
    fn an_update_with_missing_parents_waits_for_them_and_is_applied_after() {
        let mut h = Harness::new();
        let (mut a, mut b) = h.join_two_quiet();
        // A client makes two changes and sends the second first: it builds on the first.
        let doc = Doc::with_client_id(42);
        let text = text(&doc);
        text.insert(&mut doc.transact_mut(), 0, "first ");
        let first = full_state(&doc);
        let second = {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 6, "second");
            txn.encode_update_v1()
        };
        h.send(1, wire::client::encode_update(&second));
        assert!(h.flush().is_empty(), "nothing stored while it waits");
        assert!(
            received(&mut b).is_empty(),
            "nothing relayed while it waits"
        );
        assert!(!h.room.is_tainted(), "the document never holds it");
        assert_eq!(close_code(&mut a), None);
        h.send(1, wire::client::encode_sync_step2(&first));
        let stored = h.flush();
        assert_eq!(stored.len(), 2, "the step 2, then the update that waited");
        assert_eq!(received(&mut b).len(), 2);
        h.assert_holds_the_board(&doc);
        assert_eq!(h.room.member_count(), 2);
    }

    #[test]
    fn an_update_whose_origin_is_missing_waits_and_a_connection_holds_a_bounded_number() {
        let mut h = Harness::new();
        let (mut a, mut b) = h.join_two_quiet();
        // Client 2 edits next to text written by client 1, whose update the board never got.
        let one = Doc::with_client_id(1);
        text(&one).insert(&mut one.transact_mut(), 0, "abc");
        let first = one
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let two = Doc::with_client_id(2);
        two.transact_mut()
            .apply_update(wire::decode_update_v1(&first).unwrap())
            .unwrap();
        let typed = text(&two);
        let edit = |at: u32| {
            let mut txn = two.transact_mut();
            typed.insert(&mut txn, at, "X");
            txn.encode_update_v1()
        };
        h.send(1, wire::client::encode_update(&edit(1)));
        assert!(h.flush().is_empty(), "nothing stored");
        assert!(received(&mut b).is_empty(), "nothing relayed");
        assert!(!h.room.is_tainted());
        for _ in 0..MAX_HELD_UPDATES {
            h.send(1, wire::client::encode_update(&edit(1)));
        }
        h.flush();
        assert_eq!(close_code(&mut a), Some(CloseCode::TryAgainLater));
        assert_eq!(h.room.member_count(), 1);
        assert!(
            received(&mut b)
                .iter()
                .all(|m| !matches!(m, ServerMessage::Update(_)))
        );
    }

    /// A room over a new deal board `b`, and a client copy of it.
    fn board_harness() -> (Harness, Doc) {
        use funnel_protocol::schema::{self, Entity};
        let doc = Doc::new();
        let board = BoardId::parse("b").unwrap();
        schema::initialize_board_for(
            &mut doc.transact_mut(),
            &board,
            &Entity::Deal,
            schema::Language::En,
            "Deals",
        );
        let mut h = Harness::new();
        h.room.replace_doc(doc, 0);
        let copy = Doc::new();
        copy.transact_mut()
            .apply_update(wire::decode_update_v1(&full_state(h.room.doc())).unwrap())
            .unwrap();
        (h, copy)
    }

    fn full_state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// What `copy` holds that the room lacks, as the step 2 it answers the room's step 1 with.
    fn step2_of(h: &Harness, copy: &Doc) -> Bytes {
        let sv = h.room.doc().transact().state_vector();
        wire::client::encode_sync_step2(&copy.transact().encode_state_as_update_v1(&sv))
    }

    /// Applies the updates a connection received to its copy.
    fn apply_received(copy: &Doc, messages: Vec<ServerMessage>) {
        for message in messages {
            if let ServerMessage::Update(update) | ServerMessage::SyncStep2(update) = message {
                copy.transact_mut()
                    .apply_update(wire::decode_update_v1(&update).unwrap())
                    .unwrap();
            }
        }
    }

    /// Every root as plain data (a missing root as an empty map), to compare two copies.
    fn json(doc: &Doc) -> Vec<yrs::Any> {
        use yrs::types::ToJson;
        let txn = doc.transact();
        policy::ROOTS
            .iter()
            .map(|name| {
                txn.get_map(*name)
                    .map(|map| map.to_json(&txn))
                    .unwrap_or_else(|| {
                        yrs::Any::from(std::collections::HashMap::<String, yrs::Any>::new())
                    })
            })
            .collect()
    }

    /// The frames a connection received, and its close code if it was closed.
    fn drain(rx: &mut OutboxReceiver) -> (Vec<ServerMessage>, Option<CloseCode>) {
        let mut out = Vec::new();
        while let Some(next) = rx.next().now_or_never() {
            match next {
                Next::Frame(frame) => out.push(decode_server_frame(&frame).unwrap()),
                Next::Close(request) => return (out, Some(request.code)),
                Next::Control(_) => unreachable!("the room queues no control frames"),
            }
        }
        (out, None)
    }

    fn new_card(txn: &mut yrs::TransactionMut, title: &str) -> String {
        let initial = funnel_protocol::board::stages(txn)[0].id.clone();
        let card = funnel_protocol::board::NewCard {
            title: title.into(),
            ..Default::default()
        };
        funnel_protocol::board::create_card(txn, &initial, card, 1).unwrap()
    }

    /// Issue 17, item 1: a member's copy holds what a restored server lost: its own card, the
    /// server's counter on it and an admin's stage rename. It is served: its card is taken, the
    /// rest taken back in the same stored entry, and every copy ends equal.
    #[test]
    fn a_members_old_copy_is_taken_in_and_what_it_may_not_write_taken_back() {
        use funnel_protocol::schema::{card, root, stage};
        let (mut h, copy) = board_harness();
        let mut a = h.join_as(1, member("m"));
        let mut b = h.join(2);
        h.flush();
        received(&mut a);
        received(&mut b);
        let initial = funnel_protocol::board::stages(&h.room.doc().transact())[0]
            .id
            .clone();
        let b_copy = Doc::new();
        b_copy
            .transact_mut()
            .apply_update(wire::decode_update_v1(&full_state(h.room.doc())).unwrap())
            .unwrap();
        {
            let mut txn = copy.transact_mut();
            let id = new_card(&mut txn, "mine");
            let cards = txn.get_map(root::CARDS).unwrap();
            let Some(yrs::Out::YMap(map)) = yrs::Map::get(&cards, &txn, &id) else {
                panic!("a card")
            };
            yrs::Map::insert(&map, &mut txn, card::COUNTER, yrs::Any::from(7));
            let stages = txn.get_map(root::STAGES).unwrap();
            let Some(yrs::Out::YMap(first)) = yrs::Map::get(&stages, &txn, &initial) else {
                panic!("a stage")
            };
            yrs::Map::insert(&first, &mut txn, stage::NAME, "Renamed by an admin");
        }
        h.send(1, step2_of(&h, &copy));
        let stored = h.flush();
        let (to_a, closed) = drain(&mut a);
        assert_eq!(closed, None, "served, not closed");
        assert_eq!(
            stored.len(),
            1,
            "the update and its compensation in one entry"
        );
        let doc = h.room.doc().clone();
        let view = funnel_protocol::board::BoardView::read(&doc.transact(), 0);
        let cards: Vec<_> = view.columns.iter().flat_map(|c| c.cards.iter()).collect();
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].title, "mine");
        assert_eq!(
            funnel_protocol::board::stages(&doc.transact())[0].name,
            "New"
        );
        let card_id = cards[0].id.clone();
        let counter = {
            let txn = doc.transact();
            match yrs::Map::get(&txn.get_map(root::CARDS).unwrap(), &txn, &card_id) {
                Some(yrs::Out::YMap(map)) => yrs::Map::get(&map, &txn, card::COUNTER),
                _ => panic!("a card"),
            }
        };
        assert!(
            counter.is_none(),
            "the server's key is the upkeep's again: {counter:?}"
        );
        apply_received(&copy, to_a);
        assert_eq!(
            json(&copy),
            json(&doc),
            "the writer holds what the board holds"
        );
        apply_received(&b_copy, received(&mut b));
        assert_eq!(
            json(&b_copy),
            json(&doc),
            "the others get the update with its compensation"
        );
        funnel_protocol::board::check_invariants(&doc.transact()).unwrap();
    }

    /// The recovered notice: after a step 2 that brought the board changes it lacked, a
    /// connection that asked is told the board's clocks before for each of their authors, and
    /// what was taken back; an update made just now, or a connection that did not ask, gets none.
    #[test]
    fn a_step2_that_brings_what_the_board_lacked_is_noticed_to_a_client_that_asked() {
        use funnel_protocol::schema::{root, stage};
        use funnel_protocol::wire::{Recovered, TakenBack};
        let (mut h, copy) = board_harness();
        let mut a = h.join_as(1, member("m"));
        let mut b = h.join_as(2, member("n"));
        h.send(1, wire::client::encode_wants_notices());
        h.flush();
        received(&mut a);
        received(&mut b);
        let other = Doc::new();
        other
            .transact_mut()
            .apply_update(wire::decode_update_v1(&full_state(h.room.doc())).unwrap())
            .unwrap();
        // `other` is a writer whose card the room lost; `copy` had received it and renames the
        // initial stage (a member may not) and adds a card of its own.
        {
            let mut txn = other.transact_mut();
            new_card(&mut txn, "lost");
        }
        let lost = other
            .transact()
            .encode_state_as_update_v1(&h.room.doc().transact().state_vector());
        copy.transact_mut()
            .apply_update(wire::decode_update_v1(&lost).unwrap())
            .unwrap();
        {
            let mut txn = copy.transact_mut();
            new_card(&mut txn, "mine");
            let initial = funnel_protocol::board::stages(&txn)[0].id.clone();
            let stages = txn.get_map(root::STAGES).unwrap();
            let Some(yrs::Out::YMap(first)) = yrs::Map::get(&stages, &txn, &initial) else {
                panic!("a stage")
            };
            yrs::Map::insert(&first, &mut txn, stage::NAME, "Renamed by an admin");
        }
        h.send(1, step2_of(&h, &copy));
        h.flush();
        let to_a = received(&mut a);
        assert!(
            matches!(to_a.first(), Some(ServerMessage::Recovered(_))),
            "the notice comes before the echo it speaks of: {to_a:?}"
        );
        let notices: Vec<Recovered> = to_a
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Recovered(notice) => Some(notice),
                _ => None,
            })
            .collect();
        let mut expected = StateVector::default();
        expected.set_max(copy.client_id(), 0);
        expected.set_max(other.client_id(), 0);
        assert_eq!(
            notices,
            vec![Recovered {
                held: expected,
                taken_back: vec![TakenBack::Stages],
            }]
        );
        assert!(
            received(&mut b)
                .iter()
                .all(|m| !matches!(m, ServerMessage::Recovered(_))),
            "only the connection that asked is told"
        );
        // A change made now, by a client that asked: no notice.
        let edit = {
            let mut txn = copy.transact_mut();
            new_card(&mut txn, "now");
            txn.encode_update_v1()
        };
        h.send(1, wire::client::encode_update(&edit));
        h.flush();
        assert!(
            received(&mut a)
                .iter()
                .all(|m| !matches!(m, ServerMessage::Recovered(_)))
        );
    }

    /// A viewer's copy that holds a member's card the server lost: served, and the card taken
    /// back (a viewer writes nothing), for everyone.
    #[test]
    fn a_viewers_old_copy_is_taken_back_whole() {
        let (mut h, copy) = board_harness();
        let viewer = Principal {
            role: Role::Viewer,
            ..member("v")
        };
        let mut a = h.join_as(1, viewer);
        let mut b = h.join(2);
        h.flush();
        received(&mut a);
        received(&mut b);
        let before = json(h.room.doc());
        new_card(&mut copy.transact_mut(), "lost by the server");
        h.send(1, step2_of(&h, &copy));
        let stored = h.flush();
        let (to_a, closed) = drain(&mut a);
        assert_eq!(closed, None, "served, not closed");
        assert_eq!(stored.len(), 1);
        assert_eq!(json(h.room.doc()), before, "nothing of it stays");
        apply_received(&copy, to_a);
        assert_eq!(json(&copy), before);
        // Its usual step 2 (nothing new) is no write and stores nothing.
        h.send(1, step2_of(&h, &copy));
        assert!(h.flush().is_empty());
    }

    /// A board wiped and created again with fresh stage ids (before they were derived from the
    /// board id), and an admin's copy of the old one: two initial and two success stages after
    /// the merge. The room demotes the second of each, the same way everywhere.
    #[test]
    fn an_admins_copy_of_a_recreated_board_gets_its_duplicate_stages_demoted() {
        use funnel_protocol::schema::{self, Entity, StageKind};
        let old = Doc::new();
        schema::initialize_board(
            &mut old.transact_mut(),
            &Entity::Deal,
            schema::Language::En,
            "Deals",
        );
        let new = Doc::new();
        schema::initialize_board(
            &mut new.transact_mut(),
            &Entity::Deal,
            schema::Language::En,
            "Deals",
        );
        let mut h = Harness::new();
        h.room.replace_doc(new, 0);
        let mut a = h.join(1);
        h.flush();
        received(&mut a);
        h.send(1, step2_of(&h, &old));
        h.send(
            1,
            wire::client::encode_sync_step1(&old.transact().state_vector()),
        );
        h.flush();
        let (to_a, closed) = drain(&mut a);
        assert_eq!(closed, None, "served, not closed");
        let doc = h.room.doc().clone();
        funnel_protocol::board::check_invariants(&doc.transact()).unwrap();
        let stages = funnel_protocol::board::stages(&doc.transact());
        assert_eq!(stages.len(), 14);
        assert_eq!(
            stages
                .iter()
                .filter(|s| s.kind == StageKind::Initial)
                .count(),
            1
        );
        apply_received(&old, to_a);
        assert_eq!(json(&old), json(&doc));
    }

    /// The same board created again from the same id has the same stage ids: an old copy
    /// merges into it without touching a stage's content, and needs no compensation at all.
    #[test]
    fn a_copy_of_a_board_recreated_with_the_same_id_merges_without_compensation() {
        let (mut h, _) = board_harness();
        let (_, old) = board_harness();
        let mut a = h.join_as(1, member("m"));
        h.flush();
        received(&mut a);
        h.send(1, step2_of(&h, &old));
        let stored = h.flush();
        let (to_a, closed) = drain(&mut a);
        assert_eq!(closed, None);
        assert_eq!(stored.len(), 1);
        assert_eq!(
            funnel_protocol::board::stages(&h.room.doc().transact()).len(),
            7
        );
        // Nothing taken back: what comes back is its own update, stored as it came (the echo
        // that confirms it to the sender, in pieces: it is a whole board), never a compensation.
        let echoed = Doc::new();
        apply_received(&echoed, to_a);
        let as_stored = Doc::new();
        as_stored
            .transact_mut()
            .apply_update(wire::decode_update_v1(&stored[0]).unwrap())
            .unwrap();
        assert_eq!(
            full_state(&echoed),
            full_state(&as_stored),
            "nothing to take back"
        );
    }

    #[test]
    fn remote_updates_are_relayed_to_everyone_and_never_stored_again() {
        let mut h = Harness::new();
        let (mut a, mut b) = h.join_two_quiet();
        let update = Bytes::from(text_update("from another instance"));
        h.room
            .apply_remote_updates(std::slice::from_ref(&update))
            .unwrap();
        assert!(h.flush().is_empty(), "the other instance stored it");
        for rx in [&mut a, &mut b] {
            assert!(matches!(&received(rx)[..], [ServerMessage::Update(u)] if *u == update));
        }
        assert_eq!(
            text(h.room.doc()).get_string(&h.room.doc().transact()),
            "from another instance"
        );
        // One that builds on something this board lacks is not applied over the hole.
        let doc = Doc::with_client_id(42);
        let t = text(&doc);
        t.insert(&mut doc.transact_mut(), 0, "first ");
        let second = {
            let mut txn = doc.transact_mut();
            t.insert(&mut txn, 6, "second");
            Bytes::from(txn.encode_update_v1())
        };
        assert_eq!(
            h.room.apply_remote_updates(&[second]),
            Err(RemoteError::Missing)
        );
        assert!(h.room.is_tainted(), "the room reloads from storage");
    }

    #[test]
    fn a_catch_up_relays_only_the_difference() {
        let mut h = Harness::new();
        let (mut a, _b) = h.join_two_quiet();
        let source = Doc::with_client_id(7);
        let t = text(&source);
        t.insert(&mut source.transact_mut(), 0, &"x".repeat(1000));
        let first = Bytes::from(
            source
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
        );
        h.room
            .apply_remote_updates(std::slice::from_ref(&first))
            .unwrap();
        h.flush();
        received(&mut a);
        let second = {
            let mut txn = source.transact_mut();
            t.insert(&mut txn, 0, "y");
            Bytes::from(txn.encode_update_v1())
        };
        // The log above this replica: the snapshot (everything) and the new entry.
        let snapshot = Bytes::from(
            source
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
        );
        let stored = StoredBoard {
            entries: vec![(1, snapshot), (2, second)],
            tail_len: 1,
        };
        h.room.apply_stored(&stored).unwrap();
        h.flush();
        let messages = received(&mut a);
        let [ServerMessage::Update(diff)] = &messages[..] else {
            panic!("one update, got {messages:?}")
        };
        assert!(
            diff.len() < 100,
            "a diff, not the snapshot: {} bytes",
            diff.len()
        );
        assert_eq!(
            text(h.room.doc()).get_string(&h.room.doc().transact()),
            format!("y{}", "x".repeat(1000))
        );
        // Nothing new: nothing relayed.
        h.room.apply_stored(&stored).unwrap();
        h.flush();
        assert!(received(&mut a).is_empty());
    }

    /// Regression: a catch-up after a lost bus message relayed one difference, in which a
    /// card moved twice in the window kept only its last place: clients on this instance never
    /// heard the first move (the load tester's cluster run counted it missing).
    #[test]
    fn a_catch_up_from_log_entries_relays_each_new_entry_as_stored() {
        use yrs::Map;
        let mut h = Harness::new();
        let (mut a, _b) = h.join_two_quiet();
        let source = Doc::with_client_id(7);
        let card = source.get_or_insert_map("probe");
        let entry = |value: &str| {
            let mut txn = source.transact_mut();
            card.insert(&mut txn, "stage", value);
            Bytes::from(txn.encode_update_v1())
        };
        let (first, second, third) = (entry("won"), entry("lost"), entry("new"));
        h.room
            .apply_remote_updates(std::slice::from_ref(&first))
            .unwrap();
        h.flush();
        received(&mut a);
        // The log above an older applied seq: one entry this replica has, two it lacks.
        let stored = StoredBoard {
            entries: vec![(1, first), (2, second.clone()), (3, third.clone())],
            tail_len: 3,
        };
        h.room.apply_stored(&stored).unwrap();
        h.flush();
        let messages = received(&mut a);
        let [
            ServerMessage::Update(got_second),
            ServerMessage::Update(got_third),
        ] = &messages[..]
        else {
            panic!("two updates, got {messages:?}")
        };
        assert_eq!((got_second, got_third), (&second.to_vec(), &third.to_vec()));
        h.room.apply_stored(&stored).unwrap();
        h.flush();
        assert!(received(&mut a).is_empty(), "nothing new, nothing relayed");
    }

    #[test]
    fn local_presence_is_kept_for_the_bus_and_remote_presence_relayed() {
        let mut h = Harness::new();
        h.room.set_clustered();
        let (mut a, _b) = h.join_two_quiet();
        h.send(1, awareness_frame(11, 1, &state_of("u1")));
        h.flush();
        received(&mut a);
        let published = h.room.take_awareness_to_publish();
        assert_eq!(published.len(), 1);
        let remote = {
            let mut clients = std::collections::HashMap::new();
            clients.insert(
                ClientID::new(99),
                AwarenessUpdateEntry {
                    clock: 1,
                    json: r#"{"user":{"id":"far"}}"#.into(),
                },
            );
            Bytes::from(AwarenessUpdate { clients }.encode_v1())
        };
        h.room.apply_remote_awareness(&remote);
        h.flush();
        assert!(
            matches!(&received(&mut a)[..], [ServerMessage::Awareness(u)] if u.clients.contains_key(&ClientID::new(99)))
        );
        assert!(
            h.room.take_awareness_to_publish().is_empty(),
            "remote presence is never published back"
        );
        // The local client leaves: its removal goes to the bus; the sweep's does not.
        h.room.leave(ConnId(1));
        assert_eq!(h.room.take_awareness_to_publish().len(), 1);
        h.room.sweep_awareness(AWARENESS_TIMEOUT_MS + 1);
        h.flush();
        assert!(h.room.take_awareness_to_publish().is_empty());
    }
}
