//! Writing a board document: one function per user action, each in the caller's transaction so
//! that one action is one update. Each refuses what would break a stage invariant (see
//! [`BoardError`]) before writing anything. A move sets `stage` and `pos` of one card and nothing
//! else: never a delete and re-insert, which would duplicate or lose a card moved twice
//! concurrently.

use super::error::{
    BoardError, MAX_AMOUNT, MAX_LOST_REASONS, MAX_NAME_CHARS, MAX_ROT_DAYS, MAX_THRESHOLD_MIN,
};
use super::read::{Stage, child_map, kind_rank, out_str, read_stage, settings, stages};
use crate::ids::new_id;
use crate::order;
use crate::rules::{Direction, Millis};
use crate::schema::{self, StageKind, root};
use std::collections::BTreeMap;
use yrs::{Any, ArrayPrelim, Map, MapPrelim, MapRef, Out, ReadTxn, TransactionMut, WriteTxn};

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

/// An empty address (none) or one of RFC 5321/5322 syntax with a domain that has a dot
/// (`name@example.com`; `name@localhost` is refused: a client's address is on the Internet).
fn check_email(email: &str) -> Result<(), BoardError> {
    if email.is_empty() {
        return Ok(());
    }
    let bad = || BoardError::BadEmail(email.to_owned());
    let parsed = email_address::EmailAddress::parse_with_options(
        email,
        email_address::Options::default()
            .without_display_text()
            .without_domain_literal(),
    )
    .map_err(|_| bad())?;
    if parsed.domain().contains('.') && parsed.as_str() == email {
        Ok(())
    } else {
        Err(bad())
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
                    map.insert(txn, schema::card::POS, Any::from(key.as_str()));
                }
            }
            fresh[target.len()..].to_vec()
        }
    };
    let cards = txn.get_or_insert_map(root::CARDS);
    for ((_, card), key) in moving.iter().zip(keys) {
        if let Some(map) = child_map(&cards, txn, card) {
            map.insert(txn, schema::card::STAGE, Any::from(cards_to));
            map.insert(txn, schema::card::POS, Any::from(key));
        }
    }
    let stages_root = txn.get_or_insert_map(root::STAGES);
    stages_root.remove(txn, id);
    Ok(())
}

/// Changes to a stage's rules; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageRules {
    /// What a card must carry to enter the stage: card keys
    /// ([`schema::REQUIRABLE_CARD_KEYS`]) and ids of the board's custom fields.
    pub required: Option<Vec<String>>,
    /// Percent chance of winning, 0 to 100.
    pub probability: Option<i64>,
    /// Days without activity before a card is stale, 0 (never) to [`MAX_ROT_DAYS`].
    pub rot_days: Option<i64>,
}

/// Sets a stage's rules (admin): required fields, probability, days before a card rots.
pub fn set_stage_rules(
    txn: &mut TransactionMut,
    id: &str,
    rules: StageRules,
) -> Result<(), BoardError> {
    if rules.probability.is_some_and(|p| !(0..=100).contains(&p)) {
        return Err(BoardError::BadProbability);
    }
    if rules
        .rot_days
        .is_some_and(|d| !(0..=MAX_ROT_DAYS).contains(&d))
    {
        return Err(BoardError::BadRotDays);
    }
    let required = match rules.required {
        Some(keys) if !keys.is_empty() && read_kind(txn, id)? == StageKind::Initial => {
            return Err(BoardError::InitialStageRequiresNothing);
        }
        Some(keys) => {
            let custom = txn.get_map(root::FIELDS);
            let mut seen: Vec<String> = Vec::new();
            for key in keys {
                let known = schema::REQUIRABLE_CARD_KEYS.contains(&key.as_str())
                    || custom
                        .as_ref()
                        .is_some_and(|fields| child_map(fields, txn, &key).is_some());
                if !known {
                    return Err(BoardError::UnknownRequiredField(key));
                }
                if !seen.contains(&key) {
                    seen.push(key);
                }
            }
            Some(seen)
        }
        None => None,
    };
    let stage = stage_map(txn, id)?;
    if let Some(required) = required {
        let list: Vec<Any> = required.into_iter().map(Any::from).collect();
        stage.insert(txn, schema::stage::REQUIRED, Any::from(list));
    }
    if let Some(p) = rules.probability {
        stage.insert(txn, schema::stage::PROBABILITY, Any::from(p));
    }
    if let Some(days) = rules.rot_days {
        stage.insert(txn, schema::stage::ROT_DAYS, Any::from(days));
    }
    Ok(())
}

fn read_kind(txn: &mut TransactionMut, id: &str) -> Result<StageKind, BoardError> {
    let stage = stage_map(txn, id)?;
    read_stage(txn, id, &stage)
        .map(|s| s.kind)
        .ok_or_else(|| BoardError::NoSuchStage(id.to_owned()))
}

/// The reasons a card may be lost for, in order (admin); empty: any text.
pub fn set_lost_reasons(txn: &mut TransactionMut, reasons: &[&str]) -> Result<(), BoardError> {
    let trimmed: Vec<&str> = reasons.iter().map(|r| r.trim()).collect();
    let bad = trimmed.len() > MAX_LOST_REASONS
        || trimmed
            .iter()
            .any(|r| r.is_empty() || r.chars().count() > MAX_NAME_CHARS)
        || trimmed
            .iter()
            .enumerate()
            .any(|(i, r)| trimmed[..i].contains(r));
    if bad {
        return Err(BoardError::BadLostReasons);
    }
    let list: Vec<Any> = trimmed.into_iter().map(Any::from).collect();
    let board = txn.get_or_insert_map(root::BOARD);
    board.insert(txn, schema::board::LOST_REASONS, Any::from(list));
    Ok(())
}

/// A lost reason the board takes: blank (none), or one of its list when it has one.
fn check_lost_reason<T: ReadTxn>(txn: &T, reason: &str) -> Result<(), BoardError> {
    let reasons = settings(txn).lost_reasons;
    if reason.is_empty() || reasons.is_empty() || reasons.iter().any(|r| r == reason) {
        Ok(())
    } else {
        Err(BoardError::BadLostReason(reason.to_owned()))
    }
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
    /// The client's e-mail address (empty: none).
    pub email: String,
    /// Custom field values by field id.
    pub fields: BTreeMap<String, Any>,
    /// The expected close date (ms).
    pub close_date: Option<Millis>,
    /// Why it was lost (for a card created in a failure stage); empty: none.
    pub lost_reason: String,
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
    let email = card.email.trim();
    check_email(email)?;
    let lost_reason = card.lost_reason.trim().to_owned();
    check_lost_reason(txn, &lost_reason)?;
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
            (schema::card::TITLE, Any::from(card.title.trim())),
            (schema::card::STAGE, Any::from(stage)),
            (schema::card::POS, Any::from(pos)),
            (schema::card::AMOUNT, Any::from(card.amount)),
            (schema::card::CURRENCY, Any::from(currency)),
            (
                schema::card::RESPONSIBLE,
                Any::from(card.responsible.as_str()),
            ),
            (schema::card::CLIENT, Any::from(card.client.as_str())),
            (schema::card::EMAIL, Any::from(email)),
            (schema::card::CREATED_AT, Any::from(now)),
        ]),
    );
    if let Some(close) = card.close_date {
        map.insert(txn, schema::card::CLOSE_DATE, Any::from(close));
    }
    if !lost_reason.is_empty() {
        map.insert(txn, schema::card::LOST_REASON, Any::from(lost_reason));
    }
    let fields: MapPrelim = card.fields.into_iter().collect();
    map.insert(txn, schema::card::FIELDS, fields);
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
        let card_stage = out_str(&card, txn, schema::card::STAGE).unwrap_or_default();
        let shown_here =
            card_stage == stage || (is_initial && !stages.iter().any(|s| s.id == card_stage));
        if shown_here {
            keys.push((
                out_str(&card, txn, schema::card::POS).unwrap_or_default(),
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
            map.insert(txn, schema::card::POS, Any::from(key.as_str()));
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
    card.insert(txn, schema::card::STAGE, Any::from(stage));
    card.insert(txn, schema::card::POS, Any::from(pos));
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
    card.insert(txn, schema::card::STAGE, Any::from(stage));
    card.insert(txn, schema::card::POS, Any::from(pos));
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
    /// The client's e-mail address (empty clears it).
    pub email: Option<String>,
    /// Custom field values to set (`Any::Null` clears one).
    pub fields: BTreeMap<String, Any>,
    /// The expected close date: `Some(None)` clears it.
    pub close_date: Option<Option<Millis>>,
    /// Why it was lost (empty clears it).
    pub lost_reason: Option<String>,
}

pub fn edit_card(txn: &mut TransactionMut, id: &str, edit: CardEdit) -> Result<(), BoardError> {
    if let Some(title) = &edit.title {
        check_name("a card title", title)?;
    }
    if let Some(amount) = edit.amount {
        check_amount(amount)?;
    }
    let email = edit.email.map(|e| e.trim().to_owned());
    if let Some(email) = &email {
        check_email(email)?;
    }
    let lost_reason = edit.lost_reason.map(|r| r.trim().to_owned());
    if let Some(reason) = &lost_reason {
        check_lost_reason(txn, reason)?;
    }
    let card = card_map(txn, id)?;
    let strings = [
        (schema::card::TITLE, edit.title.map(|t| t.trim().to_owned())),
        (schema::card::CURRENCY, edit.currency),
        (schema::card::RESPONSIBLE, edit.responsible),
        (schema::card::CLIENT, edit.client),
        (schema::card::EMAIL, email),
        (schema::card::LOST_REASON, lost_reason),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            card.insert(txn, key, Any::from(value));
        }
    }
    if let Some(amount) = edit.amount {
        card.insert(txn, schema::card::AMOUNT, Any::from(amount));
    }
    match edit.close_date {
        Some(Some(close)) => {
            card.insert(txn, schema::card::CLOSE_DATE, Any::from(close));
        }
        Some(None) => {
            card.remove(txn, schema::card::CLOSE_DATE);
        }
        None => {}
    }
    if !edit.fields.is_empty() {
        let fields = match child_map(&card, txn, schema::card::FIELDS) {
            Some(fields) => fields,
            None => card.insert(txn, schema::card::FIELDS, MapPrelim::default()),
        };
        for (key, value) in edit.fields {
            fields.insert(txn, key, value);
        }
    }
    Ok(())
}

/// Records that card `id` changed at `now` (its `updatedAt`), in the transaction of the change.
pub fn touch_card(txn: &mut TransactionMut, id: &str, now: Millis) -> Result<(), BoardError> {
    let card = card_map(txn, id)?;
    card.insert(txn, schema::card::UPDATED_AT, Any::from(now));
    Ok(())
}

/// Archives card `id` at `at` (ms), or restores it (`None`): an archived card keeps everything
/// it holds and leaves the board's columns; restored, it is back where it was.
pub fn archive_card(
    txn: &mut TransactionMut,
    id: &str,
    at: Option<Millis>,
) -> Result<(), BoardError> {
    let card = card_map(txn, id)?;
    match at {
        Some(at) => {
            card.insert(txn, schema::card::ARCHIVED_AT, Any::from(at));
        }
        None => {
            card.remove(txn, schema::card::ARCHIVED_AT);
        }
    }
    Ok(())
}

/// Deletes a card and its activities.
pub fn delete_card(txn: &mut TransactionMut, id: &str) -> Result<(), BoardError> {
    card_map(txn, id)?;
    let activities = txn.get_or_insert_map(root::ACTIVITIES);
    let theirs: Vec<String> = activities
        .iter(txn)
        .filter_map(|(activity, value)| match value {
            Out::YMap(map) => (out_str(&map, txn, schema::activity::CARD).as_deref() == Some(id))
                .then(|| activity.to_owned()),
            _ => None,
        })
        .collect();
    for activity in theirs {
        activities.remove(txn, &activity);
    }
    let cards = txn.get_or_insert_map(root::CARDS);
    cards.remove(txn, id);
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
            (schema::activity::CARD, Any::from(activity.card)),
            (schema::activity::KIND, Any::from(activity.kind)),
            (
                schema::activity::DIRECTION,
                Any::from(activity.direction.as_str()),
            ),
            (schema::activity::SUBJECT, Any::from(activity.subject)),
            (
                schema::activity::RESPONSIBLE,
                Any::from(activity.responsible),
            ),
            (schema::activity::DONE, Any::from(false)),
        ]),
    );
    if let Some(deadline) = activity.deadline {
        map.insert(txn, schema::activity::DEADLINE, Any::from(deadline));
    }
    if let Some(remind) = activity.remind_min {
        map.insert(txn, schema::activity::REMIND_MIN, Any::from(remind));
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
        activity.insert(txn, schema::activity::SUBJECT, Any::from(subject));
    }
    if let Some(deadline) = edit.deadline {
        activity.insert(txn, schema::activity::DEADLINE, Any::from(deadline));
    }
    if let Some(remind) = edit.remind_min {
        activity.insert(txn, schema::activity::REMIND_MIN, Any::from(remind));
    }
    if let Some(responsible) = edit.responsible {
        activity.insert(txn, schema::activity::RESPONSIBLE, Any::from(responsible));
    }
    Ok(())
}

/// Marks an activity done (or open again).
pub fn complete_activity(txn: &mut TransactionMut, id: &str, done: bool) -> Result<(), BoardError> {
    let activity = activity_map(txn, id)?;
    activity.insert(txn, schema::activity::DONE, Any::from(done));
    Ok(())
}

/// Marks an activity done at `now` (its `doneAt`: the card's last activity, which rotting
/// reads) or open again.
pub fn complete_activity_at(
    txn: &mut TransactionMut,
    id: &str,
    done: bool,
    now: Millis,
) -> Result<(), BoardError> {
    let activity = activity_map(txn, id)?;
    activity.insert(txn, schema::activity::DONE, Any::from(done));
    if done {
        activity.insert(txn, schema::activity::DONE_AT, Any::from(now));
    }
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
    set_array(txn, &forms, schema::forms::QUICK_CREATE, fields);
}

/// One user's display form: the fields their cards show, in order.
pub fn set_display_fields(txn: &mut TransactionMut, user: &str, fields: &[&str]) {
    let views = txn.get_or_insert_map(root::VIEWS);
    set_array(txn, &views, user, fields);
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
            (schema::field::LABEL, Any::from(label.trim())),
            (schema::field::TYPE, Any::from(field_type)),
            (schema::field::OPTIONS, Any::from(options)),
        ]),
    );
    Ok(id)
}
