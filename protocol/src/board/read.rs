//! Reading a board document into plain structs, with the rules every replica applies the same
//! way: order by (`pos`, id), the initial stage first and final stages last whatever their keys
//! say, defaults for what is missing. The whole-board view ([`BoardView::read`]) is made by the
//! board index from these reads; nothing here depends on the index.

use super::error::BoardError;
use crate::rules::{ActivityFacts, Counter, Direction, Millis};
use crate::schema::{self, StageKind, root};
use std::collections::{BTreeMap, HashMap};
use yrs::types::ToJson;
use yrs::{Any, Array, Map, MapRef, Out, ReadTxn};

/// A stage as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub id: String,
    pub name: String,
    pub color: String,
    pub kind: StageKind,
    pub pos: String,
    /// What a card must carry to enter it: card keys and custom field ids, in stored order.
    pub required: Vec<String>,
    /// Percent chance of winning as stored (0 to 100), `None` when unset: see
    /// [`Stage::probability`].
    pub probability_set: Option<i64>,
    /// Days without activity after which a card here is stale; 0: never.
    pub rot_days: i64,
}

impl Stage {
    /// The percent chance that a card here is won: as set (clamped to 0 to 100), else 100 in
    /// the success stage and 0 elsewhere.
    pub fn probability(&self) -> i64 {
        match self.probability_set {
            Some(p) => p.clamp(0, 100),
            None if self.kind == StageKind::Success => 100,
            None => 0,
        }
    }
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
    /// The client's e-mail address; empty when none.
    pub email: String,
    pub created_at: Millis,
    /// When the card last changed (its `updatedAt`; missing: `created_at`).
    pub updated_at: Millis,
    /// When it was archived (its `archivedAt`); `None`: it is on the board.
    pub archived_at: Option<Millis>,
    /// Custom field values, as JSON.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// The expected close date (ms), if set.
    pub close_date: Option<Millis>,
    /// Why it was lost; empty when none.
    pub lost_reason: String,
    /// When the server last recorded a timeline event on it (`timelineAt`), if ever.
    pub timeline_at: Option<Millis>,
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

/// One manager's load: their cards in open stages (initial and progress); won and lost cards
/// are not counted.
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
    /// The reasons a card may be lost for, in order; empty: any text.
    pub lost_reasons: Vec<String>,
}

/// Everything a board screen shows, read in one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardView {
    pub settings: Settings,
    pub columns: Vec<Column>,
    /// Per responsible (open cards only), sorted by responsible id.
    pub workload: Vec<Workload>,
    /// Ids of the cards whose counter is `idle` (nothing planned, not in a final stage), in
    /// board order.
    pub unprocessed: Vec<String>,
    /// Each card's counter at the time of reading, by card id.
    pub counters: rustc_hash::FxHashMap<String, Counter>,
}

pub(super) fn out_str<T: ReadTxn>(map: &MapRef, txn: &T, key: &str) -> Option<String> {
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

/// A plain array of strings (or a `Y.Array` of them) under `key`; other entries are skipped.
fn out_strings<T: ReadTxn>(map: &MapRef, txn: &T, key: &str) -> Vec<String> {
    let strings = |items: Vec<Any>| {
        items
            .into_iter()
            .filter_map(|item| match item {
                Any::String(s) => Some(s.to_string()),
                _ => None,
            })
            .collect()
    };
    match map.get(txn, key) {
        Some(Out::Any(Any::Array(items))) => strings(items.to_vec()),
        Some(Out::YArray(array)) => strings(
            array
                .iter(txn)
                .filter_map(|v| match v {
                    Out::Any(any) => Some(any),
                    _ => None,
                })
                .collect(),
        ),
        _ => Vec::new(),
    }
}

pub(crate) fn child_map<T: ReadTxn>(parent: &MapRef, txn: &T, key: &str) -> Option<MapRef> {
    match parent.get(txn, key)? {
        Out::YMap(map) => Some(map),
        _ => None,
    }
}

/// Where a stage kind sorts: the initial stage first, final stages last, whatever their keys.
pub(super) fn kind_rank(kind: StageKind) -> u8 {
    match kind {
        StageKind::Initial => 0,
        StageKind::Progress => 1,
        StageKind::Success | StageKind::Failure => 2,
    }
}

pub(super) fn read_stage<T: ReadTxn>(txn: &T, id: &str, map: &MapRef) -> Option<Stage> {
    Some(Stage {
        id: id.to_owned(),
        name: out_str(map, txn, schema::stage::NAME).unwrap_or_default(),
        color: out_str(map, txn, schema::stage::COLOR).unwrap_or_default(),
        kind: StageKind::parse(&out_str(map, txn, schema::stage::KIND)?).ok()?,
        pos: out_str(map, txn, schema::stage::POS).unwrap_or_default(),
        required: out_strings(map, txn, schema::stage::REQUIRED),
        probability_set: out_i64(map, txn, schema::stage::PROBABILITY),
        rot_days: out_i64(map, txn, schema::stage::ROT_DAYS)
            .unwrap_or(0)
            .max(0),
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
    let fields = child_map(map, txn, schema::card::FIELDS)
        .map(|fields| {
            fields
                .iter(txn)
                .map(|(key, value)| (key.to_owned(), out_to_json(txn, &value)))
                .collect()
        })
        .unwrap_or_default();
    let created_at = out_i64(map, txn, schema::card::CREATED_AT).unwrap_or(0);
    Card {
        id: id.to_owned(),
        title: out_str(map, txn, schema::card::TITLE).unwrap_or_default(),
        stage: out_str(map, txn, schema::card::STAGE).unwrap_or_default(),
        pos: out_str(map, txn, schema::card::POS).unwrap_or_default(),
        amount: out_i64(map, txn, schema::card::AMOUNT).unwrap_or(0),
        currency: out_str(map, txn, schema::card::CURRENCY).unwrap_or_default(),
        responsible: out_str(map, txn, schema::card::RESPONSIBLE).unwrap_or_default(),
        client: out_str(map, txn, schema::card::CLIENT).unwrap_or_default(),
        email: out_str(map, txn, schema::card::EMAIL).unwrap_or_default(),
        created_at,
        updated_at: out_i64(map, txn, schema::card::UPDATED_AT).unwrap_or(created_at),
        archived_at: out_i64(map, txn, schema::card::ARCHIVED_AT),
        fields,
        close_date: out_i64(map, txn, schema::card::CLOSE_DATE),
        lost_reason: out_str(map, txn, schema::card::LOST_REASON).unwrap_or_default(),
        timeline_at: out_i64(map, txn, schema::card::TIMELINE_AT),
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
    /// When it was marked done (`doneAt`), if its writer said.
    pub done_at: Option<Millis>,
}

/// One activity, or `None` when it names no card.
pub(crate) fn read_activity<T: ReadTxn>(txn: &T, id: &str, activity: &MapRef) -> Option<Activity> {
    let card = out_str(activity, txn, schema::activity::CARD)?;
    // The rules single out `incoming`: anything else, unknown values included, is planned.
    let direction = match out_str(activity, txn, schema::activity::DIRECTION).map(|raw| raw.parse())
    {
        Some(Ok(Direction::Incoming)) => Direction::Incoming,
        _ => Direction::Outgoing,
    };
    Some(Activity {
        id: id.to_owned(),
        card,
        kind: out_str(activity, txn, schema::activity::KIND).unwrap_or_default(),
        subject: out_str(activity, txn, schema::activity::SUBJECT).unwrap_or_default(),
        done_at: out_i64(activity, txn, schema::activity::DONE_AT),
        facts: ActivityFacts {
            deadline: out_i64(activity, txn, schema::activity::DEADLINE),
            remind_min: out_i64(activity, txn, schema::activity::REMIND_MIN),
            direction,
            done: out_bool(activity, txn, schema::activity::DONE).unwrap_or(false),
            responsible: out_str(activity, txn, schema::activity::RESPONSIBLE).unwrap_or_default(),
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
        lost_reasons: board
            .as_ref()
            .map(|b| out_strings(b, txn, schema::board::LOST_REASONS))
            .unwrap_or_default(),
    }
}

impl BoardView {
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
    read_array(txn, root::FORMS, schema::forms::QUICK_CREATE)
}

pub fn display_fields<T: ReadTxn>(txn: &T, user: &str) -> Vec<String> {
    read_array(txn, root::VIEWS, user)
}
