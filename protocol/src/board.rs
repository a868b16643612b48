//! Typed reads and writes over a board document.
//!
//! Reads ([`BoardView::read`], [`stages`], [`card`]) turn the document into plain structs, applying
//! the rules every replica applies the same way: order by (`pos`, id); final stages after the
//! others and the initial stage first, whatever the keys say; a card whose stage is gone shows in
//! the initial column; counts and sums per column; workload per responsible; unprocessed cards.
//!
//! Writes are one function per user action, each in the caller's transaction, so that one action
//! is one update. They refuse what would break a stage invariant (see [`BoardError`]) before
//! writing anything. A move sets `stage` and `pos` of one card and nothing else: never a delete
//! and re-insert, which would duplicate or lose a card moved twice concurrently.
//!
//! Concurrent structural edits made offline by two admins (say, each deletes a different one of
//! the last two failure stages) can merge into a document that breaks a counting invariant; the
//! server checks every incoming update against these rules, so a board it serves stays valid.

use crate::ids::new_id;
use crate::order::{self, OrderError};
use crate::rules::{ActivityFacts, Counter, Direction, Millis};
use crate::schema::{self, StageKind, root};
use std::collections::{BTreeMap, HashMap};
use yrs::types::ToJson;
use yrs::{
    Any, Array, ArrayPrelim, Map, MapPrelim, MapRef, Out, ReadTxn, TransactionMut, WriteTxn,
};

/// Keys of a card map.
pub mod card_key {
    pub const TITLE: &str = "title";
    pub const STAGE: &str = "stage";
    pub const POS: &str = "pos";
    pub const AMOUNT: &str = "amount";
    pub const CURRENCY: &str = "currency";
    pub const RESPONSIBLE: &str = "responsible";
    pub const CLIENT: &str = "client";
    pub const CREATED_AT: &str = "createdAt";
    pub const FIELDS: &str = "fields";
    pub const AVATAR: &str = "avatar";
    pub const AVATAR_AT: &str = "avatarAt";
    pub const AVATAR_REASON: &str = "avatarReason";
    pub const COUNTER: &str = "counter";
    /// Written by the server: when the card's timeline last got an event.
    pub const TIMELINE_AT: &str = "timelineAt";
}

/// Keys of an activity map.
pub mod activity_key {
    pub const CARD: &str = "card";
    pub const KIND: &str = "kind";
    pub const DIRECTION: &str = "direction";
    pub const SUBJECT: &str = "subject";
    pub const DEADLINE: &str = "deadline";
    pub const REMIND_MIN: &str = "remindMin";
    pub const RESPONSIBLE: &str = "responsible";
    pub const DONE: &str = "done";
}

/// Keys of a custom field definition.
pub mod field_key {
    pub const LABEL: &str = "label";
    pub const TYPE: &str = "type";
    pub const OPTIONS: &str = "options";
}

/// The key of the quick-create form in `forms`.
pub const QUICK_CREATE: &str = "quickCreate";

/// The longest stage name, card title or field label, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The largest amount, in minor units, either way: the largest integer a JavaScript number (what
/// the browser reads) holds exactly, 2^53 - 1.
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;

/// The largest counter threshold: a week, in minutes.
pub const MAX_THRESHOLD_MIN: i64 = 7 * 24 * 60;

/// Why a write was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("no stage {0}")]
    NoSuchStage(String),
    #[error("no card {0}")]
    NoSuchCard(String),
    #[error("no activity {0}")]
    NoSuchActivity(String),
    #[error("the initial stage cannot be deleted, only renamed")]
    InitialStageIsPermanent,
    #[error("a board has exactly one success stage: it cannot be added or deleted")]
    SuccessStageIsUnique,
    #[error("a board has exactly one initial stage: it cannot be added")]
    InitialStageIsUnique,
    #[error("the last failure stage cannot be deleted")]
    LastFailureStage,
    #[error("stage order: {0}")]
    StageOrder(&'static str),
    #[error("cards of a deleted stage must go to another stage")]
    CardsNeedAnotherStage,
    #[error("{what} must be 1 to {MAX_NAME_CHARS} characters")]
    BadName { what: &'static str },
    #[error("colour must be #rrggbb, got {0:?}")]
    BadColor(String),
    #[error("an amount must be within ±{MAX_AMOUNT} minor units")]
    BadAmount,
    #[error("counter threshold must be 0 to {MAX_THRESHOLD_MIN} minutes")]
    BadThreshold,
    #[error("unknown field type {0:?}: use string, number, money, date, enum, user or bool")]
    BadFieldType(String),
    #[error("the neighbours' order keys are too long to split; move with a rebalance")]
    NeedsRebalance,
    #[error(transparent)]
    Order(#[from] OrderError),
}

/// A stage as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub id: String,
    pub name: String,
    pub color: String,
    pub kind: StageKind,
    pub pos: String,
}

/// A card as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub id: String,
    pub title: String,
    /// The stage the card names (maybe a deleted one: see [`Column`]).
    pub stage: String,
    pub pos: String,
    pub amount: i64,
    pub currency: String,
    pub responsible: String,
    pub client: String,
    pub created_at: Millis,
    /// Custom field values, as JSON.
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// One column of the board: a stage and its cards in order, with count and sums.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub stage: Stage,
    /// Shared with the index the view was made from: a view copies no card.
    pub cards: Vec<std::sync::Arc<Card>>,
    /// Sum of `amount` per currency.
    pub sums: BTreeMap<String, i64>,
}

/// One manager's load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub responsible: String,
    pub cards: usize,
    pub amounts: BTreeMap<String, i64>,
    /// Cards whose counter is lit (state `due`).
    pub lit: usize,
}

/// The board's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub name: String,
    pub entity: String,
    pub currency: String,
    pub counter_threshold_min: i64,
}

/// Everything a board screen shows, read in one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardView {
    pub settings: Settings,
    pub columns: Vec<Column>,
    /// Per responsible, sorted by responsible id.
    pub workload: Vec<Workload>,
    /// Ids of the cards whose counter is `idle` (nothing planned, not in a final stage), in
    /// board order.
    pub unprocessed: Vec<String>,
    /// Each card's counter at the time of reading, by card id.
    pub counters: rustc_hash::FxHashMap<String, Counter>,
}

// ---------------------------------------------------------------------------------------------
// Reading

fn out_str<T: ReadTxn>(map: &MapRef, txn: &T, key: &str) -> Option<String> {
    match map.get(txn, key)? {
        Out::Any(Any::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

fn out_i64<T: ReadTxn>(map: &MapRef, txn: &T, key: &str) -> Option<i64> {
    match map.get(txn, key)? {
        Out::Any(Any::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

fn out_bool<T: ReadTxn>(map: &MapRef, txn: &T, key: &str) -> Option<bool> {
    match map.get(txn, key)? {
        Out::Any(Any::Bool(b)) => Some(b),
        _ => None,
    }
}

pub(crate) fn child_map<T: ReadTxn>(parent: &MapRef, txn: &T, key: &str) -> Option<MapRef> {
    match parent.get(txn, key)? {
        Out::YMap(map) => Some(map),
        _ => None,
    }
}

fn parse_kind(raw: &str) -> Option<StageKind> {
    match raw {
        "initial" => Some(StageKind::Initial),
        "progress" => Some(StageKind::Progress),
        "success" => Some(StageKind::Success),
        "failure" => Some(StageKind::Failure),
        _ => None,
    }
}

/// Where a stage kind sorts: the initial stage first, final stages last, whatever their keys.
fn kind_rank(kind: StageKind) -> u8 {
    match kind {
        StageKind::Initial => 0,
        StageKind::Progress => 1,
        StageKind::Success | StageKind::Failure => 2,
    }
}

fn read_stage<T: ReadTxn>(txn: &T, id: &str, map: &MapRef) -> Option<Stage> {
    Some(Stage {
        id: id.to_owned(),
        name: out_str(map, txn, schema::stage::NAME).unwrap_or_default(),
        color: out_str(map, txn, schema::stage::COLOR).unwrap_or_default(),
        kind: parse_kind(&out_str(map, txn, schema::stage::KIND)?)?,
        pos: out_str(map, txn, schema::stage::POS).unwrap_or_default(),
    })
}

/// The stages in board order: (kind rank, `pos`, id). Entries that are not stage maps, or have
/// no valid kind, are skipped.
pub fn stages<T: ReadTxn>(txn: &T) -> Vec<Stage> {
    let Some(map) = txn.get_map(root::STAGES) else {
        return Vec::new();
    };
    let mut stages: Vec<Stage> = map
        .iter(txn)
        .filter_map(|(id, value)| match value {
            Out::YMap(stage) => read_stage(txn, id, &stage),
            _ => None,
        })
        .collect();
    stages.sort_by(|a, b| {
        (kind_rank(a.kind), a.pos.as_bytes(), a.id.as_bytes()).cmp(&(
            kind_rank(b.kind),
            b.pos.as_bytes(),
            b.id.as_bytes(),
        ))
    });
    stages
}

pub(crate) fn read_card<T: ReadTxn>(txn: &T, id: &str, map: &MapRef) -> Card {
    let fields = child_map(map, txn, card_key::FIELDS)
        .map(|fields| {
            fields
                .iter(txn)
                .map(|(key, value)| (key.to_owned(), out_to_json(txn, &value)))
                .collect()
        })
        .unwrap_or_default();
    Card {
        id: id.to_owned(),
        title: out_str(map, txn, card_key::TITLE).unwrap_or_default(),
        stage: out_str(map, txn, card_key::STAGE).unwrap_or_default(),
        pos: out_str(map, txn, card_key::POS).unwrap_or_default(),
        amount: out_i64(map, txn, card_key::AMOUNT).unwrap_or(0),
        currency: out_str(map, txn, card_key::CURRENCY).unwrap_or_default(),
        responsible: out_str(map, txn, card_key::RESPONSIBLE).unwrap_or_default(),
        client: out_str(map, txn, card_key::CLIENT).unwrap_or_default(),
        created_at: out_i64(map, txn, card_key::CREATED_AT).unwrap_or(0),
        fields,
    }
}

fn out_to_json<T: ReadTxn>(txn: &T, value: &Out) -> serde_json::Value {
    let any = value.to_json(txn);
    serde_json::to_value(&any).unwrap_or(serde_json::Value::Null)
}

/// One card, if it exists.
pub fn card<T: ReadTxn>(txn: &T, id: &str) -> Option<Card> {
    let cards = txn.get_map(root::CARDS)?;
    let map = child_map(&cards, txn, id)?;
    Some(read_card(txn, id, &map))
}

/// An activity as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: String,
    pub card: String,
    pub kind: String,
    pub subject: String,
    pub facts: ActivityFacts,
}

/// One activity, or `None` when it names no card.
pub(crate) fn read_activity<T: ReadTxn>(txn: &T, id: &str, activity: &MapRef) -> Option<Activity> {
    let card = out_str(activity, txn, activity_key::CARD)?;
    let direction = match out_str(activity, txn, activity_key::DIRECTION).as_deref() {
        Some("incoming") => Direction::Incoming,
        _ => Direction::Outgoing,
    };
    Some(Activity {
        id: id.to_owned(),
        card,
        kind: out_str(activity, txn, activity_key::KIND).unwrap_or_default(),
        subject: out_str(activity, txn, activity_key::SUBJECT).unwrap_or_default(),
        facts: ActivityFacts {
            deadline: out_i64(activity, txn, activity_key::DEADLINE),
            remind_min: out_i64(activity, txn, activity_key::REMIND_MIN),
            direction,
            done: out_bool(activity, txn, activity_key::DONE).unwrap_or(false),
            responsible: out_str(activity, txn, activity_key::RESPONSIBLE).unwrap_or_default(),
        },
    })
}

/// Every activity of the board, grouped by card id, each list in id order.
pub fn activities_by_card<T: ReadTxn>(txn: &T) -> HashMap<String, Vec<Activity>> {
    let mut by_card: HashMap<String, Vec<Activity>> = HashMap::new();
    let Some(map) = txn.get_map(root::ACTIVITIES) else {
        return by_card;
    };
    for (id, value) in map.iter(txn) {
        let Out::YMap(activity) = value else { continue };
        if let Some(activity) = read_activity(txn, id, &activity) {
            by_card
                .entry(activity.card.clone())
                .or_default()
                .push(activity);
        }
    }
    for list in by_card.values_mut() {
        list.sort_by(|a, b| a.id.cmp(&b.id));
    }
    by_card
}

/// The board's settings, with defaults for what is missing.
pub fn settings<T: ReadTxn>(txn: &T) -> Settings {
    let board = txn.get_map(root::BOARD);
    let get = |key| board.as_ref().and_then(|b| out_str(b, txn, key));
    Settings {
        name: get(schema::board::NAME).unwrap_or_default(),
        entity: get(schema::board::ENTITY).unwrap_or_default(),
        currency: get(schema::board::CURRENCY).unwrap_or_else(|| schema::DEFAULT_CURRENCY.into()),
        counter_threshold_min: board
            .as_ref()
            .and_then(|b| out_i64(b, txn, schema::board::COUNTER_THRESHOLD_MIN))
            .unwrap_or(schema::DEFAULT_COUNTER_THRESHOLD_MIN),
    }
}

impl BoardView {
    /// Reads the whole board as it stands at `now` (counters depend on the time). To read the
    /// same board again and again, keep a [`BoardIndex`](crate::index::BoardIndex) instead.
    pub fn read<T: ReadTxn>(txn: &T, now: Millis) -> Self {
        crate::index::BoardIndex::build(txn).view(now)
    }

    /// The column a card is shown in.
    pub fn column_of(&self, card: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.cards.iter().any(|x| x.id == card))
    }
}

/// Checks the stage invariants on a document: exactly one initial stage, exactly one success
/// stage, at least one failure stage. (Order is a reading rule and always holds.)
pub fn check_invariants<T: ReadTxn>(txn: &T) -> Result<(), BoardError> {
    let stages = stages(txn);
    let count = |kind| stages.iter().filter(|s| s.kind == kind).count();
    if count(StageKind::Initial) != 1 {
        return Err(BoardError::InitialStageIsUnique);
    }
    if count(StageKind::Success) != 1 {
        return Err(BoardError::SuccessStageIsUnique);
    }
    if count(StageKind::Failure) == 0 {
        return Err(BoardError::LastFailureStage);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing

fn check_name(what: &'static str, name: &str) -> Result<(), BoardError> {
    let chars = name.trim().chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(BoardError::BadName { what });
    }
    Ok(())
}

fn check_amount(amount: i64) -> Result<(), BoardError> {
    if (-MAX_AMOUNT..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(BoardError::BadAmount)
    }
}

fn check_color(color: &str) -> Result<(), BoardError> {
    let ok = color.len() == 7
        && color.starts_with('#')
        && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(BoardError::BadColor(color.to_owned()))
    }
}

fn stage_map(txn: &mut TransactionMut, id: &str) -> Result<MapRef, BoardError> {
    let stages = txn.get_or_insert_map(root::STAGES);
    child_map(&stages, txn, id).ok_or_else(|| BoardError::NoSuchStage(id.to_owned()))
}

fn card_map(txn: &mut TransactionMut, id: &str) -> Result<MapRef, BoardError> {
    let cards = txn.get_or_insert_map(root::CARDS);
    child_map(&cards, txn, id).ok_or_else(|| BoardError::NoSuchCard(id.to_owned()))
}

fn activity_map(txn: &mut TransactionMut, id: &str) -> Result<MapRef, BoardError> {
    let activities = txn.get_or_insert_map(root::ACTIVITIES);
    child_map(&activities, txn, id).ok_or_else(|| BoardError::NoSuchActivity(id.to_owned()))
}

/// A key for an item placed right after `after` (None: first) in `ordered` (sorted keys of the
/// other items). `None` when the neighbours' keys collide or are too long: rebalance first.
fn key_after(ordered: &[&str], after_index: Option<usize>) -> Option<String> {
    let prev = after_index.map(|i| ordered[i]);
    let next = match after_index {
        Some(i) => ordered.get(i + 1).copied(),
        None => ordered.first().copied(),
    };
    let key = order::key_between(prev, next).ok()?;
    (key.len() <= order::MAX_KEY_LEN).then_some(key)
}

/// Adds a stage of `kind` (progress or failure) right after `after`; returns its id.
pub fn add_stage(
    txn: &mut TransactionMut,
    name: &str,
    color: &str,
    kind: StageKind,
    after: &str,
) -> Result<String, BoardError> {
    check_name("a stage name", name)?;
    check_color(color)?;
    match kind {
        StageKind::Initial => return Err(BoardError::InitialStageIsUnique),
        StageKind::Success => return Err(BoardError::SuccessStageIsUnique),
        StageKind::Progress | StageKind::Failure => {}
    }
    let id = new_id();
    let pos = place_stage(txn, &id, kind, after)?;
    let stages = txn.get_or_insert_map(root::STAGES);
    stages.insert(
        txn,
        id.clone(),
        MapPrelim::from([
            (schema::stage::NAME, Any::from(name.trim())),
            (schema::stage::COLOR, Any::from(color)),
            (schema::stage::KIND, Any::from(kind.as_str())),
            (schema::stage::POS, Any::from(pos)),
        ]),
    );
    Ok(id)
}

/// The key for stage `id` (new or moving) of `kind` right after `after`, checking that the
/// result keeps the initial stage first and the final stages last. Rebalances the stage keys
/// when they collide or grew too long.
fn place_stage(
    txn: &mut TransactionMut,
    id: &str,
    kind: StageKind,
    after: &str,
) -> Result<String, BoardError> {
    let others: Vec<Stage> = stages(txn).into_iter().filter(|s| s.id != id).collect();
    let after_index = others
        .iter()
        .position(|s| s.id == after)
        .ok_or_else(|| BoardError::NoSuchStage(after.to_owned()))?;
    let before = &others[after_index];
    let next = others.get(after_index + 1);
    // The kinds around the new place must stay in rank order.
    if kind_rank(before.kind) > kind_rank(kind)
        || next.is_some_and(|n| kind_rank(n.kind) < kind_rank(kind))
    {
        return Err(BoardError::StageOrder(match kind {
            StageKind::Initial => "the initial stage stays first",
            StageKind::Progress => "a progress stage goes before the final stages",
            StageKind::Success | StageKind::Failure => "final stages stay after the others",
        }));
    }
    let keys: Vec<&str> = others.iter().map(|s| s.pos.as_str()).collect();
    if let Some(key) = key_after(&keys, Some(after_index)) {
        return Ok(key);
    }
    // Colliding or long keys: give every other stage a fresh key, in order, then place.
    let fresh = order::rebalanced(others.len());
    let stages_root = txn.get_or_insert_map(root::STAGES);
    for (stage, key) in others.iter().zip(&fresh) {
        if let Some(map) = child_map(&stages_root, txn, &stage.id) {
            map.insert(txn, schema::stage::POS, Any::from(key.as_str()));
        }
    }
    let keys: Vec<&str> = fresh.iter().map(String::as_str).collect();
    key_after(&keys, Some(after_index)).ok_or(BoardError::StageOrder("no key fits"))
}

pub fn rename_stage(txn: &mut TransactionMut, id: &str, name: &str) -> Result<(), BoardError> {
    check_name("a stage name", name)?;
    let stage = stage_map(txn, id)?;
    stage.insert(txn, schema::stage::NAME, Any::from(name.trim()));
    Ok(())
}

pub fn recolor_stage(txn: &mut TransactionMut, id: &str, color: &str) -> Result<(), BoardError> {
    check_color(color)?;
    let stage = stage_map(txn, id)?;
    stage.insert(txn, schema::stage::COLOR, Any::from(color));
    Ok(())
}

/// Moves stage `id` right after stage `after`.
pub fn move_stage(txn: &mut TransactionMut, id: &str, after: &str) -> Result<(), BoardError> {
    let stage = stage_map(txn, id)?;
    let kind = read_stage(txn, id, &stage)
        .map(|s| s.kind)
        .ok_or_else(|| BoardError::NoSuchStage(id.to_owned()))?;
    if kind == StageKind::Initial {
        return Err(BoardError::StageOrder("the initial stage stays first"));
    }
    let pos = place_stage(txn, id, kind, after)?;
    stage.insert(txn, schema::stage::POS, Any::from(pos));
    Ok(())
}

/// Deletes stage `id`; its cards move to the end of stage `cards_to`.
pub fn delete_stage(txn: &mut TransactionMut, id: &str, cards_to: &str) -> Result<(), BoardError> {
    let all = stages(txn);
    let stage = all
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| BoardError::NoSuchStage(id.to_owned()))?;
    match stage.kind {
        StageKind::Initial => return Err(BoardError::InitialStageIsPermanent),
        StageKind::Success => return Err(BoardError::SuccessStageIsUnique),
        StageKind::Failure if all.iter().filter(|s| s.kind == StageKind::Failure).count() == 1 => {
            return Err(BoardError::LastFailureStage);
        }
        StageKind::Failure | StageKind::Progress => {}
    }
    if cards_to == id {
        return Err(BoardError::CardsNeedAnotherStage);
    }
    if !all.iter().any(|s| s.id == cards_to) {
        return Err(BoardError::NoSuchStage(cards_to.to_owned()));
    }
    // The cards keep their order and go after the target's last card, one write each.
    let moving = column_keys(txn, id, "");
    let last = column_keys(txn, cards_to, "").pop().map(|(pos, _)| pos);
    let keys = match order::n_keys_between(last.as_deref(), None, moving.len()) {
        Ok(keys) => keys,
        // The target's keys are unusable: rebalance it first.
        Err(_) => {
            let target = column_keys(txn, cards_to, "");
            let fresh = order::rebalanced(target.len() + moving.len());
            let cards = txn.get_or_insert_map(root::CARDS);
            for ((_, card), key) in target.iter().zip(&fresh) {
                if let Some(map) = child_map(&cards, txn, card) {
                    map.insert(txn, card_key::POS, Any::from(key.as_str()));
                }
            }
            fresh[target.len()..].to_vec()
        }
    };
    let cards = txn.get_or_insert_map(root::CARDS);
    for ((_, card), key) in moving.iter().zip(keys) {
        if let Some(map) = child_map(&cards, txn, card) {
            map.insert(txn, card_key::STAGE, Any::from(cards_to));
            map.insert(txn, card_key::POS, Any::from(key));
        }
    }
    let stages_root = txn.get_or_insert_map(root::STAGES);
    stages_root.remove(txn, id);
    Ok(())
}

/// Where a card goes in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardPlace<'a> {
    Top,
    Bottom,
    /// Right after this card of the target column.
    After(&'a str),
}

/// The fields of the quick-create form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewCard {
    pub title: String,
    pub amount: i64,
    /// Empty: the board's currency.
    pub currency: String,
    pub responsible: String,
    pub client: String,
    /// Custom field values by field id.
    pub fields: BTreeMap<String, Any>,
}

/// Creates a card at the top of `stage`; returns its id.
pub fn create_card(
    txn: &mut TransactionMut,
    stage: &str,
    card: NewCard,
    now: Millis,
) -> Result<String, BoardError> {
    check_name("a card title", &card.title)?;
    check_amount(card.amount)?;
    stage_map(txn, stage)?;
    let currency = if card.currency.is_empty() {
        settings(txn).currency
    } else {
        card.currency
    };
    let id = new_id();
    let pos = card_key_in(txn, stage, &id, CardPlace::Top)?;
    let cards = txn.get_or_insert_map(root::CARDS);
    let map = cards.insert(
        txn,
        id.clone(),
        MapPrelim::from([
            (card_key::TITLE, Any::from(card.title.trim())),
            (card_key::STAGE, Any::from(stage)),
            (card_key::POS, Any::from(pos)),
            (card_key::AMOUNT, Any::from(card.amount)),
            (card_key::CURRENCY, Any::from(currency)),
            (card_key::RESPONSIBLE, Any::from(card.responsible.as_str())),
            (card_key::CLIENT, Any::from(card.client.as_str())),
            (card_key::CREATED_AT, Any::from(now)),
        ]),
    );
    let fields: MapPrelim = card.fields.into_iter().collect();
    map.insert(txn, card_key::FIELDS, fields);
    Ok(id)
}

/// The (`pos`, id) of the cards shown in `stage`, in order, leaving out card `except`. Reads two
/// fields of each card and nothing else; orphaned cards count in the initial stage.
fn column_keys<T: ReadTxn>(txn: &T, stage: &str, except: &str) -> Vec<(String, String)> {
    let stages = stages(txn);
    let is_initial = stages
        .iter()
        .any(|s| s.id == stage && s.kind == StageKind::Initial);
    let mut keys = Vec::new();
    let Some(cards) = txn.get_map(root::CARDS) else {
        return keys;
    };
    for (id, value) in cards.iter(txn) {
        let Out::YMap(card) = value else { continue };
        if id == except {
            continue;
        }
        let card_stage = out_str(&card, txn, card_key::STAGE).unwrap_or_default();
        let shown_here =
            card_stage == stage || (is_initial && !stages.iter().any(|s| s.id == card_stage));
        if shown_here {
            keys.push((
                out_str(&card, txn, card_key::POS).unwrap_or_default(),
                id.to_owned(),
            ));
        }
    }
    keys.sort_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
    keys
}

/// The `pos` for card `id` placed in `stage` at `place`, rebalancing the column's keys first when
/// they collide or grew too long.
fn card_key_in(
    txn: &mut TransactionMut,
    stage: &str,
    id: &str,
    place: CardPlace<'_>,
) -> Result<String, BoardError> {
    let others = column_keys(txn, stage, id);
    let after_index = match place {
        CardPlace::Top => None,
        CardPlace::Bottom => others.len().checked_sub(1),
        CardPlace::After(after) => Some(
            others
                .iter()
                .position(|(_, card)| card == after)
                .ok_or_else(|| BoardError::NoSuchCard(after.to_owned()))?,
        ),
    };
    let keys: Vec<&str> = others.iter().map(|(pos, _)| pos.as_str()).collect();
    if let Some(key) = key_after(&keys, after_index) {
        return Ok(key);
    }
    let fresh = order::rebalanced(others.len());
    let cards = txn.get_or_insert_map(root::CARDS);
    for ((_, card), key) in others.iter().zip(&fresh) {
        if let Some(map) = child_map(&cards, txn, card) {
            map.insert(txn, card_key::POS, Any::from(key.as_str()));
        }
    }
    let keys: Vec<&str> = fresh.iter().map(String::as_str).collect();
    key_after(&keys, after_index).ok_or(BoardError::StageOrder("no key fits"))
}

/// Moves a card between two neighbours whose keys the caller already has (a client has the
/// column on screen): no scan, so its cost does not grow with the board. `prev` and `next` are
/// the `pos` of the cards that will sit just before and after it (None at an end). When they
/// collide or are too long to split, it fails ([`BoardError::Order`] or
/// [`BoardError::NeedsRebalance`]): use [`move_card`],
/// which rebalances the column.
pub fn move_card_between(
    txn: &mut TransactionMut,
    id: &str,
    stage: &str,
    prev: Option<&str>,
    next: Option<&str>,
) -> Result<(), BoardError> {
    let card = card_map(txn, id)?;
    stage_map(txn, stage)?;
    let pos = order::key_between(prev, next)?;
    if pos.len() > order::MAX_KEY_LEN {
        return Err(BoardError::NeedsRebalance);
    }
    card.insert(txn, card_key::STAGE, Any::from(stage));
    card.insert(txn, card_key::POS, Any::from(pos));
    Ok(())
}

/// Moves a card to `stage` at `place`: sets its `stage` and `pos`, nothing else.
pub fn move_card(
    txn: &mut TransactionMut,
    id: &str,
    stage: &str,
    place: CardPlace<'_>,
) -> Result<(), BoardError> {
    let card = card_map(txn, id)?;
    stage_map(txn, stage)?;
    let pos = card_key_in(txn, stage, id, place)?;
    card.insert(txn, card_key::STAGE, Any::from(stage));
    card.insert(txn, card_key::POS, Any::from(pos));
    Ok(())
}

/// Changes to a card's own fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardEdit {
    pub title: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub responsible: Option<String>,
    pub client: Option<String>,
    /// Custom field values to set (`Any::Null` clears one).
    pub fields: BTreeMap<String, Any>,
}

pub fn edit_card(txn: &mut TransactionMut, id: &str, edit: CardEdit) -> Result<(), BoardError> {
    if let Some(title) = &edit.title {
        check_name("a card title", title)?;
    }
    if let Some(amount) = edit.amount {
        check_amount(amount)?;
    }
    let card = card_map(txn, id)?;
    let strings = [
        (card_key::TITLE, edit.title.map(|t| t.trim().to_owned())),
        (card_key::CURRENCY, edit.currency),
        (card_key::RESPONSIBLE, edit.responsible),
        (card_key::CLIENT, edit.client),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            card.insert(txn, key, Any::from(value));
        }
    }
    if let Some(amount) = edit.amount {
        card.insert(txn, card_key::AMOUNT, Any::from(amount));
    }
    if !edit.fields.is_empty() {
        let fields = match child_map(&card, txn, card_key::FIELDS) {
            Some(fields) => fields,
            None => card.insert(txn, card_key::FIELDS, MapPrelim::default()),
        };
        for (key, value) in edit.fields {
            fields.insert(txn, key, value);
        }
    }
    Ok(())
}

/// A planned or incoming activity to add to a card.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub card: String,
    /// `call`, `meeting`, `task`, `email`, `chat`, ...
    pub kind: String,
    pub direction: Direction,
    pub subject: String,
    pub deadline: Option<Millis>,
    pub remind_min: Option<i64>,
    pub responsible: String,
}

pub fn add_activity(txn: &mut TransactionMut, activity: NewActivity) -> Result<String, BoardError> {
    card_map(txn, &activity.card)?;
    let id = new_id();
    let activities = txn.get_or_insert_map(root::ACTIVITIES);
    let map = activities.insert(
        txn,
        id.clone(),
        MapPrelim::from([
            (activity_key::CARD, Any::from(activity.card)),
            (activity_key::KIND, Any::from(activity.kind)),
            (
                activity_key::DIRECTION,
                Any::from(match activity.direction {
                    Direction::Incoming => "incoming",
                    Direction::Outgoing => "outgoing",
                }),
            ),
            (activity_key::SUBJECT, Any::from(activity.subject)),
            (activity_key::RESPONSIBLE, Any::from(activity.responsible)),
            (activity_key::DONE, Any::from(false)),
        ]),
    );
    if let Some(deadline) = activity.deadline {
        map.insert(txn, activity_key::DEADLINE, Any::from(deadline));
    }
    if let Some(remind) = activity.remind_min {
        map.insert(txn, activity_key::REMIND_MIN, Any::from(remind));
    }
    Ok(id)
}

/// Changes to an activity; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityEdit {
    pub subject: Option<String>,
    pub deadline: Option<Millis>,
    pub remind_min: Option<i64>,
    pub responsible: Option<String>,
}

pub fn edit_activity(
    txn: &mut TransactionMut,
    id: &str,
    edit: ActivityEdit,
) -> Result<(), BoardError> {
    let activity = activity_map(txn, id)?;
    if let Some(subject) = edit.subject {
        activity.insert(txn, activity_key::SUBJECT, Any::from(subject));
    }
    if let Some(deadline) = edit.deadline {
        activity.insert(txn, activity_key::DEADLINE, Any::from(deadline));
    }
    if let Some(remind) = edit.remind_min {
        activity.insert(txn, activity_key::REMIND_MIN, Any::from(remind));
    }
    if let Some(responsible) = edit.responsible {
        activity.insert(txn, activity_key::RESPONSIBLE, Any::from(responsible));
    }
    Ok(())
}

/// Marks an activity done (or open again).
pub fn complete_activity(txn: &mut TransactionMut, id: &str, done: bool) -> Result<(), BoardError> {
    let activity = activity_map(txn, id)?;
    activity.insert(txn, activity_key::DONE, Any::from(done));
    Ok(())
}

pub fn remove_activity(txn: &mut TransactionMut, id: &str) -> Result<(), BoardError> {
    activity_map(txn, id)?;
    let activities = txn.get_or_insert_map(root::ACTIVITIES);
    activities.remove(txn, id);
    Ok(())
}

fn set_array(txn: &mut TransactionMut, parent: &MapRef, key: &str, values: &[&str]) {
    let prelim: ArrayPrelim = values.iter().map(|v| Any::from(*v)).collect();
    parent.insert(txn, key, prelim);
}

/// The fields of the quick-create form, in order.
pub fn set_quick_create_fields(txn: &mut TransactionMut, fields: &[&str]) {
    let forms = txn.get_or_insert_map(root::FORMS);
    set_array(txn, &forms, QUICK_CREATE, fields);
}

/// One user's display form: the fields their cards show, in order.
pub fn set_display_fields(txn: &mut TransactionMut, user: &str, fields: &[&str]) {
    let views = txn.get_or_insert_map(root::VIEWS);
    set_array(txn, &views, user, fields);
}

fn read_array<T: ReadTxn>(txn: &T, root_name: &str, key: &str) -> Vec<String> {
    let Some(parent) = txn.get_map(root_name) else {
        return Vec::new();
    };
    match parent.get(txn, key) {
        Some(Out::YArray(array)) => array
            .iter(txn)
            .filter_map(|v| match v {
                Out::Any(Any::String(s)) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn quick_create_fields<T: ReadTxn>(txn: &T) -> Vec<String> {
    read_array(txn, root::FORMS, QUICK_CREATE)
}

pub fn display_fields<T: ReadTxn>(txn: &T, user: &str) -> Vec<String> {
    read_array(txn, root::VIEWS, user)
}

pub fn set_counter_threshold(txn: &mut TransactionMut, minutes: i64) -> Result<(), BoardError> {
    if !(0..=MAX_THRESHOLD_MIN).contains(&minutes) {
        return Err(BoardError::BadThreshold);
    }
    let board = txn.get_or_insert_map(root::BOARD);
    board.insert(
        txn,
        schema::board::COUNTER_THRESHOLD_MIN,
        Any::from(minutes),
    );
    Ok(())
}

/// The types a custom field may have.
pub const FIELD_TYPES: [&str; 7] = ["string", "number", "money", "date", "enum", "user", "bool"];

/// Defines (or redefines) a custom field; returns its id.
pub fn define_field(
    txn: &mut TransactionMut,
    id: Option<&str>,
    label: &str,
    field_type: &str,
    options: &[&str],
) -> Result<String, BoardError> {
    check_name("a field label", label)?;
    if !FIELD_TYPES.contains(&field_type) {
        return Err(BoardError::BadFieldType(field_type.to_owned()));
    }
    let id = id.map_or_else(new_id, str::to_owned);
    let fields = txn.get_or_insert_map(root::FIELDS);
    let options: Vec<Any> = options.iter().map(|o| Any::from(*o)).collect();
    fields.insert(
        txn,
        id.clone(),
        MapPrelim::from([
            (field_key::LABEL, Any::from(label.trim())),
            (field_key::TYPE, Any::from(field_type)),
            (field_key::OPTIONS, Any::from(options)),
        ]),
    );
    Ok(id)
}
