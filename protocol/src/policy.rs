//! Who may change what in a board document, checked on what an update actually did.
//!
//! A yrs update is opaque bytes: which cards, stages or settings it touches is only known once it
//! is integrated (map entries that overwrite others inherit their parent from their neighbours,
//! and deletions name items by id). So the server applies a client's update in a transaction with
//! the origin [`CLIENT_ORIGIN`], an [`EffectRecorder`] (yrs deep observers on every root) records
//! what that transaction changed, and [`check`] decides from the writer's [`Role`] whether the
//! change was allowed. [`judge`] decides on what the update leaves, [`compensate`] takes back in
//! a server transaction what the role may not write, and [`verify`] checks the result; only a
//! root outside the schema or a malformed card is refused whole (see docs/security.md, "How an
//! update is judged").
//!
//! The rules (docs/security.md, "Who may write what"):
//! - viewers write nothing;
//! - members write cards, activities and their own display form (`views/<their id>`), not stages,
//!   fields, forms or the board's settings;
//! - admins write everything a client may write;
//! - the server-maintained card fields (`counter`, `avatar`, `avatarAt`, `avatarReason`,
//!   `timelineAt`) are written by the server alone, whatever the role;
//! - no root other than the schema's, and the stage invariants hold after every update.

mod restore;

use crate::board::{self, BoardError};
use crate::schema::{card, root};
pub use restore::{Snapshot, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use yrs::types::{EntryChange, Event, PathSegment};
use yrs::{
    Any, DeepObservable, Doc, Map, Origin, Out, ReadTxn, Transact, TransactionMut, WriteTxn,
};

/// The origin of the transactions that apply a client's update: only those are recorded.
pub const CLIENT_ORIGIN: &str = "funnel-client";

/// The card fields only the server writes.
pub const SERVER_CARD_KEYS: [&str; 5] = [
    card::COUNTER,
    card::AVATAR,
    card::AVATAR_AT,
    card::AVATAR_REASON,
    card::TIMELINE_AT,
];

/// The roots a board document may have.
pub const ROOTS: [&str; 7] = [
    root::BOARD,
    root::STAGES,
    root::CARDS,
    root::ACTIVITIES,
    root::FIELDS,
    root::FORMS,
    root::VIEWS,
];

/// The roots only admins write.
pub const ADMIN_ROOTS: [&str; 4] = [root::BOARD, root::STAGES, root::FIELDS, root::FORMS];

/// The roots a member may not write all of: the admins' and the display forms (a member writes
/// only its own). [`EffectRecorder::guarded_changed`] says when a snapshot of them is stale.
pub const GUARDED_ROOTS: [&str; 5] = [
    root::BOARD,
    root::STAGES,
    root::FIELDS,
    root::FORMS,
    root::VIEWS,
];

/// The origin of the server transaction that takes back what a client's update wrote and its
/// role may not (see [`judge`]). Not [`CLIENT_ORIGIN`]: it is not judged again.
pub const COMPENSATION_ORIGIN: &str = "funnel-compensation";

/// A user's role on a board, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Member,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use viewer, member or admin")]
pub struct UnknownRole(pub String);

impl Role {
    pub fn parse(raw: &str) -> Result<Self, UnknownRole> {
        match raw {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A server-maintained card key a client transaction wrote, and what it held before (`None`:
/// absent, or the card is new).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerWrite {
    pub card: String,
    pub key: String,
    pub before: Option<Any>,
}

/// A card a client transaction placed in a stage (moved it, or created it), and where it was
/// before (`None`: the card is new, or had no such key).
#[derive(Debug, Clone, PartialEq)]
pub struct CardMove {
    pub card: String,
    pub stage_before: Option<Any>,
    pub pos_before: Option<Any>,
    /// The card entry itself is new (or replaced whole).
    pub new_card: bool,
}

/// A card that sits, after an update, in a stage whose required fields it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub card: String,
    pub stage: String,
    /// The stage's name, for the message.
    pub stage_name: String,
    /// The required card keys and custom field ids it lacks, in the stage's order.
    pub missing: Vec<String>,
}

/// What one client transaction changed, by area of the board.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    /// The `board` root (name, entity, currency, threshold).
    pub settings: bool,
    pub stages: bool,
    pub fields: bool,
    pub forms: bool,
    pub cards: bool,
    pub activities: bool,
    /// Users whose display form (`views/<user>`) changed.
    pub views: BTreeSet<String>,
    /// A server-maintained field a client wrote: (card id, key), the first one.
    pub server_field: Option<(String, String)>,
    /// Every server-maintained field the transaction wrote, with what it held before.
    pub server_writes: Vec<ServerWrite>,
    /// A card entry that is not a map: (card id).
    pub malformed_card: Option<String>,
    /// Cards placed in a stage (moved or created), each once, with where they were before.
    pub moves: Vec<CardMove>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        *self == Effects::default()
    }
}

/// Why an update was refused. The reason goes to the client in its close frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("viewers cannot change the board")]
    ReadOnly,
    #[error("only admins change {0}")]
    AdminOnly(&'static str),
    #[error("only admins change another user's display form")]
    OthersView,
    #[error("{key} of card {card} is written by the server alone")]
    ServerField { card: String, key: String },
    #[error("card {0} must be a map")]
    MalformedCard(String),
    #[error("unknown document root {0:?}")]
    UnknownRoot(String),
    #[error("{0}")]
    Invariant(BoardError),
    #[error(
        "card {} cannot enter stage {:?} without {}: fill them in with the move",
        .0.card, .0.stage_name, .0.missing.join(", ")
    )]
    MissingFields(Unmet),
}

/// Whether `role` (as `user`) may make the change `effects` describes. `txn` is the document
/// after the change: the stage invariants are checked on it when stages changed, and roots the
/// change added (there were `roots_before`) must be the schema's.
pub fn check<T: ReadTxn>(
    role: Role,
    user: &str,
    effects: &Effects,
    txn: &T,
    roots_before: usize,
) -> Result<(), Refusal> {
    if let Some((card, key)) = &effects.server_field {
        return Err(Refusal::ServerField {
            card: card.clone(),
            key: key.clone(),
        });
    }
    if let Some(card) = &effects.malformed_card {
        return Err(Refusal::MalformedCard(card.clone()));
    }
    if txn.root_refs().count() > roots_before
        && let Some(name) = unknown_root(txn)
    {
        return Err(Refusal::UnknownRoot(name));
    }
    if role == Role::Viewer && !effects.is_empty() {
        return Err(Refusal::ReadOnly);
    }
    if role < Role::Admin {
        let admin_only = [
            (effects.settings, "the board's settings"),
            (effects.stages, "stages"),
            (effects.fields, "fields"),
            (effects.forms, "forms"),
        ];
        if let Some((_, what)) = admin_only.iter().find(|(touched, _)| *touched) {
            return Err(Refusal::AdminOnly(what));
        }
        if effects.views.iter().any(|owner| owner != user) {
            return Err(Refusal::OthersView);
        }
    }
    if effects.stages {
        board::check_invariants(txn).map_err(Refusal::Invariant)?;
    }
    if let Some(unmet) = unmet_moves(txn, &effects.moves).into_iter().next() {
        return Err(Refusal::MissingFields(unmet));
    }
    Ok(())
}

/// The cards of `moves` that now sit in a stage whose required fields they lack
/// ([`board::missing_required`]). A card that is gone, or whose stage is gone (shown in the
/// initial stage), is judged in the stage it is shown in.
pub fn unmet_moves<T: ReadTxn>(txn: &T, moves: &[CardMove]) -> Vec<Unmet> {
    if moves.is_empty() {
        return Vec::new();
    }
    let stages = board::stages(txn);
    if stages.iter().all(|s| s.required.is_empty()) {
        return Vec::new();
    }
    let lost_reasons = board::settings(txn).lost_reasons;
    let mut unmet = Vec::new();
    for moved in moves {
        let Some(card) = board::card(txn, &moved.card) else {
            continue;
        };
        let Some(stage) = stages
            .iter()
            .find(|s| s.id == card.stage)
            .or_else(|| stages.first())
        else {
            continue;
        };
        // The initial stage requires nothing (every new card enters it), whatever it holds.
        if stage.kind == crate::schema::StageKind::Initial {
            continue;
        }
        let missing = board::missing_required(stage, &card, &lost_reasons);
        if !missing.is_empty() {
            unmet.push(Unmet {
                card: card.id,
                stage: stage.id.clone(),
                stage_name: stage.name.clone(),
                missing,
            });
        }
    }
    unmet
}

fn unknown_root<T: ReadTxn>(txn: &T) -> Option<String> {
    txn.root_refs()
        .map(|(name, _)| name)
        .find(|name| !ROOTS.contains(name))
        .map(str::to_owned)
}

/// Records what each [`CLIENT_ORIGIN`] transaction changes, until [`EffectRecorder::take`].
/// Detaches its observers on drop.
pub struct EffectRecorder {
    doc: Doc,
    effects: Arc<Mutex<Effects>>,
    /// Set by any transaction, whatever its origin, that changes one of [`GUARDED_ROOTS`].
    guarded_changed: Arc<AtomicBool>,
}

/// The observer key of the recorder (one per document).
const RECORDER: &str = "funnel-policy";

impl EffectRecorder {
    pub fn attach(doc: &Doc) -> Self {
        let effects = Arc::new(Mutex::new(Effects::default()));
        let guarded_changed = Arc::new(AtomicBool::new(true));
        let roots: Vec<_> = {
            let mut txn = doc.transact_mut();
            ROOTS
                .iter()
                .map(|name| (*name, txn.get_or_insert_map(*name)))
                .collect()
        };
        for (name, map) in roots {
            let effects = Arc::clone(&effects);
            let guarded = GUARDED_ROOTS
                .contains(&name)
                .then(|| Arc::clone(&guarded_changed));
            map.observe_deep(RECORDER, move |txn, events| {
                if let Some(flag) = &guarded {
                    flag.store(true, Ordering::Relaxed);
                }
                if txn.origin() != Some(&Origin::from(CLIENT_ORIGIN)) {
                    return;
                }
                let mut effects = effects.lock().unwrap_or_else(|p| p.into_inner());
                record(&mut effects, name, txn, events);
            });
        }
        Self {
            doc: doc.clone(),
            effects,
            guarded_changed,
        }
    }

    /// Whether a [`GUARDED_ROOTS`] snapshot taken before the last call may be stale (true on
    /// the first call); resets.
    pub fn guarded_changed(&self) -> bool {
        self.guarded_changed.swap(false, Ordering::Relaxed)
    }

    /// What the client transactions since the last call changed.
    pub fn take(&self) -> Effects {
        std::mem::take(&mut *self.effects.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for EffectRecorder {
    fn drop(&mut self) {
        let txn = self.doc.transact();
        for name in ROOTS {
            if let Some(map) = txn.get_map(name) {
                map.unobserve_deep(Origin::from(RECORDER));
            }
        }
    }
}

fn record(
    effects: &mut Effects,
    root_name: &str,
    txn: &TransactionMut,
    events: &yrs::types::Events,
) {
    match root_name {
        root::BOARD => effects.settings = true,
        root::STAGES => effects.stages = true,
        root::FIELDS => effects.fields = true,
        root::FORMS => effects.forms = true,
        root::ACTIVITIES => effects.activities = true,
        root::VIEWS => {
            for event in events.iter() {
                match event.path().front() {
                    Some(PathSegment::Key(owner)) => {
                        effects.views.insert(owner.to_string());
                    }
                    Some(PathSegment::Index(_)) => {}
                    None => {
                        if let Event::Map(map) = event {
                            effects
                                .views
                                .extend(map.keys(txn).keys().map(|k| k.to_string()));
                        }
                    }
                }
            }
        }
        root::CARDS => {
            effects.cards = true;
            for event in events.iter() {
                record_card_event(effects, txn, event);
            }
        }
        _ => {}
    }
}

/// Finds server-maintained fields written by a client: a new card that carries one, a card
/// entry set or removed, or anything inside one (a counter's map); each with what it held.
fn record_card_event(effects: &mut Effects, txn: &TransactionMut, event: &Event) {
    let path = event.path();
    let mut segments = path.iter();
    match (segments.next(), segments.next()) {
        // Entries of the root `cards` map: whole cards added or replaced.
        (None, _) => {
            let Event::Map(map) = event else { return };
            for (card, change) in map.keys(txn) {
                let new = match change {
                    EntryChange::Inserted(new) | EntryChange::Updated(_, new) => new,
                    EntryChange::Removed(_) => continue,
                };
                match new {
                    Out::YMap(card_map) => {
                        note_move(effects, card, None, None, true);
                        for key in card_map
                            .keys(txn)
                            .filter(|key| SERVER_CARD_KEYS.contains(key))
                        {
                            note_server_write(effects, card, key, None);
                        }
                    }
                    _ => {
                        effects
                            .malformed_card
                            .get_or_insert_with(|| card.to_string());
                    }
                }
            }
        }
        // Keys of one card set or removed.
        (Some(PathSegment::Key(card)), None) => {
            let Event::Map(map) = event else { return };
            let keys = map.keys(txn);
            if let Some(change) = keys.get(card::STAGE) {
                let old = |change: &EntryChange| match change {
                    EntryChange::Updated(Out::Any(old), _)
                    | EntryChange::Removed(Out::Any(old)) => Some(old.clone()),
                    _ => None,
                };
                let pos_before = keys.get(card::POS).map_or_else(
                    // The key was not written: it holds what it held.
                    || match cards_entry(txn, card) {
                        Some(Out::Any(pos)) => Some(pos),
                        _ => None,
                    },
                    old,
                );
                note_move(effects, card, old(change), pos_before, false);
            }
            for (key, change) in keys {
                if !SERVER_CARD_KEYS.contains(&key.as_ref()) {
                    continue;
                }
                let before = match change {
                    EntryChange::Inserted(_) => None,
                    EntryChange::Updated(old, _) | EntryChange::Removed(old) => match old {
                        Out::Any(any) => Some(any.clone()),
                        _ => None,
                    },
                };
                note_server_write(effects, card, key, before);
            }
        }
        // Inside a card's nested value: `fields` is the client's, `counter` the server's.
        (Some(PathSegment::Key(card)), Some(PathSegment::Key(key)))
            if SERVER_CARD_KEYS.contains(&key.as_ref()) =>
        {
            note_server_write(effects, card, key, None);
        }
        _ => {}
    }
}

/// The current `pos` of card `card` (for a move that left it as it was).
fn cards_entry(txn: &TransactionMut, card: &str) -> Option<Out> {
    match txn.get_map(root::CARDS)?.get(txn, card)? {
        Out::YMap(map) => map.get(txn, card::POS),
        _ => None,
    }
}

fn note_move(
    effects: &mut Effects,
    card: &str,
    stage_before: Option<Any>,
    pos_before: Option<Any>,
    new_card: bool,
) {
    if effects.moves.iter().any(|m| m.card == card) {
        return;
    }
    effects.moves.push(CardMove {
        card: card.to_owned(),
        stage_before,
        pos_before,
        new_card,
    });
}

fn note_server_write(effects: &mut Effects, card: &str, key: &str, before: Option<Any>) {
    if effects
        .server_writes
        .iter()
        .any(|w| w.card == card && w.key == key)
    {
        return;
    }
    effects
        .server_field
        .get_or_insert_with(|| (card.to_owned(), key.to_owned()));
    effects.server_writes.push(ServerWrite {
        card: card.to_owned(),
        key: key.to_owned(),
        before,
    });
}

/// What the server writes after a client's update so that the board holds only what the
/// writer's role may write: roots put back as they were, server-written card keys put back (the
/// upkeep recomputes them), and the stage invariants mended. Empty: the update is allowed as
/// it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compensation {
    /// Roots restored from the snapshot, whole.
    pub roots: Vec<&'static str>,
    /// The display forms restored from the snapshot, except this user's own.
    pub views_except: Option<String>,
    pub server_writes: Vec<ServerWrite>,
    /// Stages changed: check the invariants after the rest, and mend them.
    pub check_stages: bool,
    /// Cards placed in a stage whose required fields they lack: put back where they were (a
    /// new card: into the initial stage).
    pub moves_back: Vec<CardMove>,
}

impl Compensation {
    /// Nothing to take back (stages may still need their invariants checked).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
            && self.views_except.is_none()
            && self.server_writes.is_empty()
            && self.moves_back.is_empty()
    }

    /// What this takes back, in the words of the wire's notice, each once and in order.
    /// `stages_mended`: the compensation changed the stages beyond the roots it restores (the
    /// invariants were mended).
    pub fn taken_back(&self, stages_mended: bool) -> Vec<crate::wire::TakenBack> {
        use crate::wire::TakenBack;
        let mut kinds: Vec<TakenBack> = self
            .roots
            .iter()
            .filter_map(|name| match *name {
                root::BOARD => Some(TakenBack::Settings),
                root::STAGES => Some(TakenBack::Stages),
                root::FIELDS => Some(TakenBack::Fields),
                root::FORMS => Some(TakenBack::Forms),
                root::VIEWS => Some(TakenBack::Views),
                root::CARDS | root::ACTIVITIES => Some(TakenBack::Cards),
                _ => None,
            })
            .collect();
        if self.views_except.is_some() {
            kinds.push(TakenBack::Views);
        }
        if !self.server_writes.is_empty() {
            kinds.push(TakenBack::ServerFields);
        }
        if !self.moves_back.is_empty() {
            kinds.push(TakenBack::Cards);
        }
        if stages_mended {
            kinds.push(TakenBack::Stages);
        }
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// Judges a client's update, already applied, by what it leaves (docs/security.md, "How an
/// update is judged"). `effects` is what it changed, `before` a snapshot taken before it of
/// every root the role may not write (all [`ROOTS`] for a viewer, [`GUARDED_ROOTS`] for a
/// member; an admin's may be empty), `txn` the document after it. An entry the update merged
/// but that holds what it held (a copy of the same stage from a board recreated with the same
/// ids) is no write. Refused outright, as no honest copy holds them: a root outside the schema
/// and a card that is not a map. Everything else the role may not write is taken back by the
/// returned [`Compensation`], then [`verify`] checks the result.
pub fn judge<T: ReadTxn>(
    role: Role,
    user: &str,
    effects: &Effects,
    before: &Snapshot,
    txn: &T,
    roots_before: usize,
) -> Result<Compensation, Refusal> {
    if let Some(card) = &effects.malformed_card {
        return Err(Refusal::MalformedCard(card.clone()));
    }
    if txn.root_refs().count() > roots_before
        && let Some(name) = unknown_root(txn)
    {
        return Err(Refusal::UnknownRoot(name));
    }
    let mut compensation = Compensation {
        server_writes: effects.server_writes.clone(),
        check_stages: effects.stages,
        ..Compensation::default()
    };
    let touched = |name: &str| match name {
        root::BOARD => effects.settings,
        root::STAGES => effects.stages,
        root::FIELDS => effects.fields,
        root::FORMS => effects.forms,
        root::CARDS => effects.cards,
        root::ACTIVITIES => effects.activities,
        root::VIEWS => !effects.views.is_empty(),
        _ => false,
    };
    let forbidden: &[&'static str] = match role {
        Role::Viewer => &ROOTS,
        Role::Member => &ADMIN_ROOTS,
        Role::Admin => &[],
    };
    for name in forbidden {
        if touched(name) && !before.unchanged(txn, name, None) {
            compensation.roots.push(name);
        }
    }
    if role == Role::Member
        && effects.views.iter().any(|owner| owner != user)
        && !before.unchanged(txn, root::VIEWS, Some(user))
    {
        compensation.views_except = Some(user.to_owned());
    }
    let unmet = unmet_moves(txn, &effects.moves);
    compensation.moves_back = effects
        .moves
        .iter()
        .filter(|m| unmet.iter().any(|u| u.card == m.card))
        .cloned()
        .collect();
    Ok(compensation)
}

/// Writes `compensation` in the caller's transaction (origin [`COMPENSATION_ORIGIN`]): the
/// roots from `before`, the server-written card keys to what they held, then the stage
/// invariants mended ([`repair_or_restore_stages`]).
pub fn compensate(txn: &mut TransactionMut, compensation: &Compensation, before: &Snapshot) {
    for name in &compensation.roots {
        if let (Some(map), Some(entries)) = (txn.get_map(*name), before.root(name)) {
            restore::restore_map(txn, &map, entries, None);
        }
    }
    if let Some(user) = &compensation.views_except
        && let (Some(map), Some(entries)) = (txn.get_map(root::VIEWS), before.root(root::VIEWS))
    {
        restore::restore_map(txn, &map, entries, Some(user));
    }
    if let Some(cards) = txn.get_map(root::CARDS) {
        for write in &compensation.server_writes {
            let Some(Out::YMap(card_map)) = cards.get(txn, &write.card) else {
                continue;
            };
            match &write.before {
                Some(value) => {
                    card_map.insert(txn, write.key.as_str(), value.clone());
                }
                None => {
                    card_map.remove(txn, &write.key);
                }
            }
        }
    }
    if compensation.check_stages {
        repair_or_restore_stages(txn, before);
    }
    put_back(txn, &compensation.moves_back);
}

/// Puts cards back where they were before a move into a stage whose required fields they lack:
/// their `stage` and `pos` as they were; a new card (or one that had no stage) into the initial
/// stage, keeping its `pos`. Nothing else of the card changes: the fields it was given stay.
fn put_back(txn: &mut TransactionMut, moves: &[CardMove]) {
    if moves.is_empty() {
        return;
    }
    let initial = board::stages(txn).into_iter().next().map(|s| s.id);
    let Some(cards) = txn.get_map(root::CARDS) else {
        return;
    };
    for moved in moves {
        let Some(Out::YMap(card_map)) = cards.get(txn, &moved.card) else {
            continue;
        };
        match (&moved.stage_before, &initial) {
            (Some(stage), _) if !moved.new_card => {
                card_map.insert(txn, card::STAGE, stage.clone());
                if let Some(pos) = &moved.pos_before {
                    card_map.insert(txn, card::POS, pos.clone());
                }
            }
            (_, Some(initial)) => {
                card_map.insert(txn, card::STAGE, initial.as_str());
            }
            (_, None) => {}
        }
    }
}

/// Where [`put_back`] leaves a card of `moved`: the stage it names.
fn put_back_stage<T: ReadTxn>(txn: &T, moved: &CardMove) -> Option<String> {
    match &moved.stage_before {
        Some(Any::String(stage)) if !moved.new_card => Some(stage.to_string()),
        _ => board::stages(txn).into_iter().next().map(|s| s.id),
    }
}

/// Mends broken stage invariants: duplicates demoted first ([`restore::demote_duplicate_stages`]),
/// and if the board is still broken (no initial, success or failure stage left) the stages as
/// `before` held them, when it holds them.
pub fn repair_or_restore_stages(txn: &mut TransactionMut, before: &Snapshot) {
    if board::check_invariants(txn).is_ok() {
        return;
    }
    restore::demote_duplicate_stages(txn);
    if board::check_invariants(txn).is_ok() {
        return;
    }
    if let (Some(map), Some(entries)) = (txn.get_map(root::STAGES), before.root(root::STAGES)) {
        restore::restore_map(txn, &map, entries, None);
    }
}

/// Checks the board after a judged update and its compensation: what the role may not write
/// holds what `before` held, every server-written key the client wrote holds what it held, and
/// the stage invariants hold. This is [`check`]'s verdict on what the two leave together; a
/// failure means the compensation could not take the update back, and it is refused.
pub fn verify<T: ReadTxn>(
    role: Role,
    user: &str,
    effects: &Effects,
    before: &Snapshot,
    txn: &T,
) -> Result<(), Refusal> {
    for write in &effects.server_writes {
        let now = match txn
            .get_map(root::CARDS)
            .and_then(|cards| cards.get(txn, &write.card))
        {
            Some(Out::YMap(card)) => card.get(txn, &write.key),
            // The card is gone (or not a map, refused before): nothing of it is left.
            _ => continue,
        };
        let holds = match (&write.before, now) {
            (None, None) => true,
            (Some(before), Some(Out::Any(now))) => *before == now,
            _ => false,
        };
        if !holds {
            return Err(Refusal::ServerField {
                card: write.card.clone(),
                key: write.key.clone(),
            });
        }
    }
    let forbidden: &[&'static str] = match role {
        Role::Viewer => &ROOTS,
        Role::Member => &ADMIN_ROOTS,
        Role::Admin => &[],
    };
    for name in forbidden {
        if before.root(name).is_some() && !before.unchanged(txn, name, None) {
            return Err(match role {
                Role::Viewer => Refusal::ReadOnly,
                _ => Refusal::AdminOnly(admin_area(name)),
            });
        }
    }
    if role == Role::Member
        && before.root(root::VIEWS).is_some()
        && !before.unchanged(txn, root::VIEWS, Some(user))
    {
        return Err(Refusal::OthersView);
    }
    if effects.stages {
        board::check_invariants(txn).map_err(Refusal::Invariant)?;
    }
    // A card put back where it was stands as it stood: only a card that stays where the
    // update placed it must carry what that stage requires.
    for unmet in unmet_moves(txn, &effects.moves) {
        let moved = effects.moves.iter().find(|m| m.card == unmet.card);
        let put_back = moved.and_then(|m| put_back_stage(txn, m));
        if put_back.as_deref() != Some(unmet.stage.as_str()) {
            return Err(Refusal::MissingFields(unmet));
        }
    }
    Ok(())
}

fn admin_area(name: &str) -> &'static str {
    match name {
        root::BOARD => "the board's settings",
        root::STAGES => "stages",
        root::FIELDS => "fields",
        _ => "forms",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::NewCard;
    use crate::schema::{self, Entity};
    use yrs::{Any, MapPrelim, Update, updates::decoder::Decode};

    #[test]
    fn a_compensation_names_what_it_takes_back_once_each_in_order() {
        use crate::wire::TakenBack;
        let compensation = Compensation {
            roots: vec![root::ACTIVITIES, root::STAGES, root::CARDS, root::BOARD],
            views_except: Some("ann".into()),
            server_writes: vec![ServerWrite {
                card: "c1".into(),
                key: card::COUNTER.into(),
                before: None,
            }],
            check_stages: true,
            moves_back: Vec::new(),
        };
        assert_eq!(
            compensation.taken_back(true),
            [
                TakenBack::Settings,
                TakenBack::Stages,
                TakenBack::Views,
                TakenBack::Cards,
                TakenBack::ServerFields
            ]
        );
        assert_eq!(Compensation::default().taken_back(false), []);
        assert_eq!(
            Compensation::default().taken_back(true),
            [TakenBack::Stages]
        );
    }

    /// A board as the server holds it, with a client replica in step.
    struct Fixture {
        server: Doc,
        recorder: EffectRecorder,
        client: Doc,
    }

    impl Fixture {
        fn new() -> Self {
            let server = Doc::new();
            schema::initialize_board(
                &mut server.transact_mut(),
                &Entity::Deal,
                schema::Language::En,
                "Q4",
            );
            let client = Doc::new();
            let state = server
                .transact()
                .encode_state_as_update_v1(&yrs::StateVector::default());
            client
                .transact_mut()
                .apply_update(Update::decode_v1(&state).unwrap())
                .unwrap();
            let recorder = EffectRecorder::attach(&server);
            Self {
                server,
                recorder,
                client,
            }
        }

        /// Applies what `write` does on the client to the server, and checks it as `role`.
        fn write(
            &self,
            role: Role,
            user: &str,
            write: impl FnOnce(&mut TransactionMut),
        ) -> Result<(), Refusal> {
            let update = {
                let mut txn = self.client.transact_mut();
                write(&mut txn);
                txn.encode_update_v1()
            };
            let roots_before = self.server.transact().root_refs().count();
            let mut txn = self.server.transact_mut_with(CLIENT_ORIGIN);
            txn.apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            txn.commit();
            let effects = self.recorder.take();
            check(role, user, &effects, &txn, roots_before)
        }

        fn card(&self) -> String {
            let stage = board::stages(&self.client.transact())[0].id.clone();
            let mut txn = self.client.transact_mut();
            let id = board::create_card(
                &mut txn,
                &stage,
                NewCard {
                    title: "ACME".into(),
                    amount: 100,
                    currency: "EUR".into(),
                    responsible: "u1".into(),
                    ..NewCard::default()
                },
                1,
            )
            .unwrap();
            drop(txn);
            self.sync();
            id
        }

        /// Brings the server up to the client without checks (what was stored before).
        fn sync(&self) {
            let sv = self.server.transact().state_vector();
            let update = self.client.transact().encode_state_as_update_v1(&sv);
            self.server
                .transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            self.recorder.take();
        }
    }

    fn cards(txn: &mut TransactionMut) -> yrs::MapRef {
        txn.get_or_insert_map(root::CARDS)
    }

    #[test]
    fn viewers_write_nothing_but_an_empty_update_is_no_write() {
        let f = Fixture::new();
        assert_eq!(f.write(Role::Viewer, "v", |_| {}), Ok(()));
        let card = f.card();
        let refused = f.write(Role::Viewer, "v", |txn| {
            let cards = cards(txn);
            let Some(Out::YMap(card)) = cards.get(txn, &card) else {
                panic!()
            };
            card.insert(txn, schema::card::TITLE, "renamed");
        });
        assert_eq!(refused, Err(Refusal::ReadOnly));
    }

    #[test]
    fn members_write_cards_and_activities_not_stages_or_settings() {
        let f = Fixture::new();
        let card = f.card();
        assert_eq!(
            f.write(Role::Member, "m", |txn| {
                let cards = cards(txn);
                let Some(Out::YMap(card)) = cards.get(txn, &card) else {
                    panic!()
                };
                card.insert(txn, schema::card::TITLE, "renamed");
            }),
            Ok(())
        );
        let initial = board::stages(&f.client.transact())[0].id.clone();
        assert_eq!(
            f.write(Role::Member, "m", |txn| {
                txn.get_or_insert_map(root::STAGES).remove(txn, &initial);
            }),
            Err(Refusal::AdminOnly("stages"))
        );
        f.sync();
        assert_eq!(
            f.write(Role::Member, "m", |txn| {
                board::set_counter_threshold(txn, 30).unwrap();
            }),
            Err(Refusal::AdminOnly("the board's settings"))
        );
    }

    #[test]
    fn members_write_their_own_display_form_only() {
        let f = Fixture::new();
        assert_eq!(
            f.write(Role::Member, "m", |txn| board::set_display_fields(
                txn,
                "m",
                &["title"]
            )),
            Ok(())
        );
        assert_eq!(
            f.write(Role::Member, "m", |txn| board::set_display_fields(
                txn,
                "other",
                &["title"]
            )),
            Err(Refusal::OthersView)
        );
    }

    #[test]
    fn server_fields_are_refused_whoever_writes_them() {
        let f = Fixture::new();
        let card = f.card();
        let by_key = f.write(Role::Admin, "a", |txn| {
            let cards = cards(txn);
            let Some(Out::YMap(card)) = cards.get(txn, &card) else {
                panic!()
            };
            card.insert(txn, schema::card::AVATAR, "mallory");
        });
        assert!(
            matches!(&by_key, Err(Refusal::ServerField { key, .. }) if key == "avatar"),
            "{by_key:?}"
        );
        f.sync();
        let in_new_card = f.write(Role::Member, "m", |txn| {
            cards(txn).insert(
                txn,
                "forged",
                MapPrelim::from([(schema::card::COUNTER.to_owned(), Any::from(3))]),
            );
        });
        assert!(
            matches!(&in_new_card, Err(Refusal::ServerField { card, .. }) if card == "forged"),
            "{in_new_card:?}"
        );
    }

    #[test]
    fn admins_keep_the_stage_invariants() {
        let f = Fixture::new();
        let stages = board::stages(&f.client.transact());
        let initial = stages[0].id.clone();
        let refused = f.write(Role::Admin, "a", |txn| {
            txn.get_or_insert_map(root::STAGES).remove(txn, &initial);
        });
        assert_eq!(
            refused,
            Err(Refusal::Invariant(BoardError::InitialStageIsUnique))
        );
    }

    /// The Won stage of the fixture's board, made to require an amount and a custom field.
    fn won_requires(f: &Fixture) -> String {
        let won = board::stages(&f.client.transact())
            .into_iter()
            .find(|s| s.kind == schema::StageKind::Success)
            .unwrap()
            .id;
        {
            let mut txn = f.client.transact_mut();
            board::define_field(&mut txn, Some("source"), "Source", "string", &[]).unwrap();
            let rules = board::StageRules {
                required: Some(vec!["amount".into(), "source".into()]),
                ..Default::default()
            };
            board::set_stage_rules(&mut txn, &won, rules).unwrap();
        }
        f.sync();
        won
    }

    #[test]
    fn a_move_into_a_stage_needs_what_the_stage_requires() {
        let f = Fixture::new();
        let won = won_requires(&f);
        let card = f.card();
        let refused = f.write(Role::Member, "m", |txn| {
            board::move_card(txn, &card, &won, board::CardPlace::Top).unwrap();
        });
        match refused {
            Err(Refusal::MissingFields(unmet)) => {
                assert_eq!(unmet.missing, ["source"]);
                assert_eq!(unmet.stage, won);
            }
            other => panic!("{other:?}"),
        }
        f.sync();
        // The same move with the field given in the same update passes.
        let card = f.card();
        let given = f.write(Role::Member, "m", |txn| {
            let edit = board::CardEdit {
                fields: [("source".to_owned(), Any::from("fair"))].into(),
                ..Default::default()
            };
            board::edit_card(txn, &card, edit).unwrap();
            board::move_card(txn, &card, &won, board::CardPlace::Top).unwrap();
        });
        assert_eq!(given, Ok(()));
    }

    #[test]
    fn a_move_that_lacks_a_required_field_is_taken_back() {
        let f = Fixture::new();
        let won = won_requires(&f);
        let card = f.card();
        let before_pos = board::card(&f.server.transact(), &card).unwrap();
        let update = {
            let mut txn = f.client.transact_mut();
            board::edit_card(
                &mut txn,
                &card,
                board::CardEdit {
                    title: Some("kept".into()),
                    ..Default::default()
                },
            )
            .unwrap();
            board::move_card(&mut txn, &card, &won, board::CardPlace::Top).unwrap();
            txn.encode_update_v1()
        };
        let roots_before = f.server.transact().root_refs().count();
        let snapshot = Snapshot::capture(&f.server.transact(), &GUARDED_ROOTS);
        {
            let mut txn = f.server.transact_mut_with(CLIENT_ORIGIN);
            txn.apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
        }
        let effects = f.recorder.take();
        let compensation = judge(
            Role::Member,
            "m",
            &effects,
            &snapshot,
            &f.server.transact(),
            roots_before,
        )
        .unwrap();
        assert_eq!(compensation.moves_back.len(), 1);
        assert_eq!(
            compensation.taken_back(false),
            [crate::wire::TakenBack::Cards]
        );
        compensate(
            &mut f.server.transact_mut_with(COMPENSATION_ORIGIN),
            &compensation,
            &snapshot,
        );
        let after = board::card(&f.server.transact(), &card).unwrap();
        assert_eq!(after.stage, before_pos.stage);
        assert_eq!(after.pos, before_pos.pos);
        assert_eq!(after.title, "kept", "the rest of the update stays");
        assert_eq!(
            verify(Role::Member, "m", &effects, &snapshot, &f.server.transact()),
            Ok(())
        );
    }

    #[test]
    fn a_new_card_in_a_stage_it_cannot_enter_lands_in_the_initial_stage() {
        let f = Fixture::new();
        let won = won_requires(&f);
        let update = {
            let mut txn = f.client.transact_mut();
            board::create_card(
                &mut txn,
                &won,
                NewCard {
                    title: "straight to won".into(),
                    ..NewCard::default()
                },
                1,
            )
            .unwrap();
            txn.encode_update_v1()
        };
        let roots_before = f.server.transact().root_refs().count();
        let snapshot = Snapshot::capture(&f.server.transact(), &GUARDED_ROOTS);
        f.server
            .transact_mut_with(CLIENT_ORIGIN)
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        let effects = f.recorder.take();
        let compensation = judge(
            Role::Admin,
            "a",
            &effects,
            &snapshot,
            &f.server.transact(),
            roots_before,
        )
        .unwrap();
        compensate(
            &mut f.server.transact_mut_with(COMPENSATION_ORIGIN),
            &compensation,
            &snapshot,
        );
        let view = board::BoardView::read(&f.server.transact(), 1);
        assert_eq!(view.columns[0].cards.len(), 1);
        assert_eq!(
            verify(Role::Admin, "a", &effects, &snapshot, &f.server.transact()),
            Ok(())
        );
    }

    #[test]
    fn unknown_roots_are_refused() {
        let f = Fixture::new();
        let refused = f.write(Role::Admin, "a", |txn| {
            txn.get_or_insert_map("junk").insert(txn, "k", "v");
        });
        assert_eq!(refused, Err(Refusal::UnknownRoot("junk".into())));
    }
}
