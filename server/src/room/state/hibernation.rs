//! A quiet room lets go of its board: [`RoomState::hibernate`] drops the document and all that
//! is built over it (the read model, the role check's recorder, the upkeep, the cached step 1
//! and the joiners' cut), keeping the members, their presence and the few facts it needs to
//! come back; [`RoomState::wake`] takes the board as storage holds it and rebuilds them, as a
//! load does. The room task (`room.rs`) decides when, and wakes the room before anything reads
//! the document.
//!
//! Nothing is lost: a room hibernates only when everything it holds is stored (no update to
//! store or deliver, none held for its parents, no refused update, no avatar event the upkeep
//! has not applied), so the stored board is the document it drops. Members kept their copy:
//! what they have is what was stored. In a cluster, what other instances stored meanwhile is in
//! the reloaded board; the members get it as one update from the state they had
//! ([`Hibernated::state_vector`]), as a catch-up relays the difference.

use super::RoomState;
use crate::room::model::BoardModel;
use crate::room::upkeep::Upkeep;
use funnel_protocol::policy::EffectRecorder;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact};

/// What a hibernated room keeps of its board.
#[derive(Debug)]
pub(super) struct Hibernated {
    /// The document's state vector when it was dropped: what every member holds. A reloaded
    /// board ahead of it (another instance stored more) is relayed from there.
    state_vector: StateVector,
    /// The document's own client id, which the reloaded one takes again: the server's writes
    /// after a wake continue its clocks instead of adding an author to every state vector.
    client_id: ClientID,
    /// The upkeep ran (this room held the board's lease): it runs again once awake.
    upkeep: bool,
    /// When a counter was to change next (the upkeep's wake-up): the task wakes the room then.
    next_wake: Option<i64>,
}

impl RoomState {
    /// Drops the board's document and everything built over it, if the room holds nothing that
    /// is not stored (see the module's docs). Returns whether it hibernated (false: it already
    /// was, or something waits).
    pub fn hibernate(&mut self) -> bool {
        if !self.may_hibernate() {
            return false;
        }
        let state_vector = self.doc.transact().state_vector();
        let client_id = self.doc.client_id();
        let next_wake = self.next_wake();
        let upkeep = self.upkeep.is_some();
        // A document with nothing in it, for what reads one while the room sleeps (the change
        // feed finds nothing new in it); the board's own, and whatever observed it, go.
        let empty = Doc::with_client_id(client_id.get());
        self.recorder = EffectRecorder::attach(&empty);
        self.model = BoardModel::attach(&empty);
        self.doc = empty;
        self.upkeep = None;
        self.guarded = None;
        self.changed();
        self.full_state_used = false;
        self.release_idle();
        for member in self.members.values_mut() {
            member.held = Default::default();
        }
        self.hibernated = Some(Hibernated {
            state_vector,
            client_id,
            upkeep,
            next_wake,
        });
        true
    }

    fn may_hibernate(&self) -> bool {
        self.hibernated.is_none()
            && !self.tainted
            && self.to_store.is_empty()
            && self.to_send.is_empty()
            && self.upkeep_to_store.is_empty()
            && self.upkeep_frames.is_empty()
            && self.upkeep.as_ref().is_none_or(Upkeep::is_settled)
            && self.members.values().all(|member| member.held.is_empty())
    }

    /// The lease was lost while the room slept: no upkeep when it wakes.
    pub(super) fn forget_upkeep_while_hibernating(&mut self) {
        if let Some(slept) = self.hibernated.as_mut() {
            slept.upkeep = false;
            slept.next_wake = None;
        }
    }

    /// Whether the room dropped its board ([`RoomState::hibernate`]) and has not woken since.
    pub fn is_hibernating(&self) -> bool {
        self.hibernated.is_some()
    }

    /// The client id a reloaded document of a hibernated room takes (see
    /// [`Hibernated::client_id`]).
    pub fn hibernated_client_id(&self) -> Option<ClientID> {
        self.hibernated.as_ref().map(|h| h.client_id)
    }

    /// When a hibernated room must wake for its counters (the upkeep's next wake-up when it
    /// slept); `None` when awake (ask [`RoomState::next_wake`]) or when nothing is due.
    pub fn hibernated_wake(&self) -> Option<i64> {
        self.hibernated.as_ref().and_then(|h| h.next_wake)
    }

    /// Takes the board back, `doc` as storage holds it (`stored_bytes` in size), reloaded with
    /// [`RoomState::hibernated_client_id`]; the upkeep restarts if it ran. When `others_wrote`
    /// (storage holds entries the room had not applied when it slept: another instance's), what
    /// `doc` holds beyond the members' state is queued for every member with the next delivery,
    /// as one update from the state vector they had (with the board's deletions, which a state
    /// vector does not show); already stored, it is not stored again. Does nothing unless the
    /// room hibernates.
    pub fn wake(&mut self, doc: Doc, stored_bytes: usize, others_wrote: bool) {
        let Some(slept) = self.hibernated.take() else {
            return;
        };
        self.replace_doc(doc, stored_bytes);
        if slept.upkeep {
            self.enable_upkeep();
        }
        if others_wrote {
            let diff = self
                .doc
                .transact()
                .encode_state_as_update_v1(&slept.state_vector);
            self.send_change(super::Recipients::All, &diff);
        }
    }
}

/// Whether a client's message reads or changes the board (a hibernated room wakes for it):
/// presence, a query of it and the notices' request do not.
pub fn needs_board(message: &funnel_protocol::wire::ClientMessage) -> bool {
    use funnel_protocol::wire::ClientMessage;
    match message {
        ClientMessage::SyncStep1(_) | ClientMessage::SyncStep2(_) | ClientMessage::Update(_) => {
            true
        }
        ClientMessage::Awareness(_)
        | ClientMessage::QueryAwareness
        | ClientMessage::WantsNotices => false,
    }
}
