//! The change feed's part of a room: the events of each change the room makes, derived right
//! after the command that made it (so each knows its actor and origin) and stored with the
//! turn's updates, in the same storage transaction (`Room::store_then_deliver`).
//!
//! A [`ChangeLog`] keeps its own read model of the board as the feed last saw it (a
//! [`BoardIndex`], kept current from a [`ChangeTracker`] under its own observer key) and turns
//! what a command changed into events with `funnel_protocol::changes`. What the room applies
//! from other instances (the bus, a catch-up) is [`ChangeLog::absorb`]ed: the instance that
//! stored it derived its events. The upkeep's transactions (counters, avatars) are not tracked
//! at all, so they make no events. A refused update never reaches [`ChangeLog::derive`]: the
//! room reloads the stored board first and [`ChangeLog::reset`]s.

use crate::feed::{NewChange, Origin};
use crate::shapes;
use funnel_protocol::board::{Card, Stage};
use funnel_protocol::changes::{self, Change, FieldChange};
use funnel_protocol::index::{BoardIndex, ChangeTracker};
use funnel_protocol::{BoardId, board};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use yrs::{Doc, Transact};

/// The observer key of the feed's tracker (the upkeep's tracker has the default one).
const FEED_TRACKER: &str = "funnel-change-feed";

/// Who made a change, as its events name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub origin: Origin,
    /// The token's `sub` (the local user in local mode); `None` for the server itself.
    pub actor: Option<String>,
}

impl Author {
    /// The server's own timers.
    pub fn scheduler() -> Self {
        Self {
            origin: Origin::Scheduler,
            actor: None,
        }
    }
}

pub struct ChangeLog {
    board: BoardId,
    /// The board as of the last derive or absorb.
    index: BoardIndex,
    /// What changed since then (detaches from the document on drop).
    tracker: ChangeTracker,
}

impl ChangeLog {
    pub fn attach(board: BoardId, doc: &Doc) -> Self {
        let tracker = ChangeTracker::attach_as(doc, FEED_TRACKER);
        let index = BoardIndex::build(&doc.transact());
        Self {
            board,
            index,
            tracker,
        }
    }

    /// The room replaced its document (a reload after a refused update): start over from it.
    pub fn reset(&mut self, doc: &Doc) {
        // The old tracker detaches from the old document when it is dropped here.
        *self = Self::attach(self.board.clone(), doc);
    }

    /// Takes in what changed without making events (another instance stored it, and derived
    /// its events there).
    pub fn absorb(&mut self, doc: &Doc) {
        let changed = self.tracker.take();
        if !changed.is_empty() {
            self.index.apply(&doc.transact(), &changed);
        }
    }

    /// The events of what changed since the last call, by `author`, at `now` (ms).
    pub fn derive(&mut self, doc: &Doc, author: &Author, now: i64) -> Vec<NewChange> {
        let changed = self.tracker.take();
        if changed.is_empty() {
            return Vec::new();
        }
        let mut cards: Vec<(String, Option<Arc<Card>>)> = changed
            .cards
            .iter()
            .map(|id| (id.clone(), self.index.card(id).cloned()))
            .collect();
        cards.sort_by(|a, b| a.0.cmp(&b.0));
        let mut activities: Vec<(String, Option<board::Activity>)> = changed
            .activities
            .iter()
            .map(|id| (id.clone(), self.index.activity(id).cloned()))
            .collect();
        activities.sort_by(|a, b| a.0.cmp(&b.0));
        let stages_before: Option<Vec<Stage>> =
            changed.stages.then(|| self.index.stages().to_vec());
        let txn = doc.transact();
        self.index.apply(&txn, &changed);

        let mut out = Vec::new();
        let mut push = |change: Change, data: Map<String, Value>| {
            out.push(self::event(&self.board, author, now, &change, data));
        };
        // Stages first: a card moved into a stage made in the same change comes after it.
        if let Some(before) = &stages_before {
            for change in changes::stage_changes(before, self.index.stages()) {
                let stage = match &change {
                    Change::StageCreated { stage }
                    | Change::StageUpdated { stage, .. }
                    | Change::StageDeleted { stage } => stage,
                    _ => continue,
                };
                let shown = self
                    .index
                    .stages()
                    .iter()
                    .chain(before.iter())
                    .find(|s| &s.id == stage)
                    .map(stage_json)
                    .unwrap_or(Value::Null);
                let mut data = Map::new();
                data.insert("stageId".into(), json!(stage));
                data.insert("stage".into(), shown);
                if let Change::StageUpdated { changes, .. } = &change {
                    data.insert("changes".into(), changes_json(changes));
                }
                push(change, data);
            }
        }
        for (id, before) in &cards {
            let after = self.index.card(id).cloned();
            for change in
                changes::card_changes(before.as_deref(), after.as_deref(), self.index.stages())
            {
                // The card as the API shows it now (as it was, for a deleted one).
                let shown = after.as_ref().or(before.as_ref()).map(|card| {
                    let column = self
                        .index
                        .shown_stage(card)
                        .map_or_else(|| card.stage.clone(), |s| s.id.clone());
                    value(shapes::card_json(&txn, card, &column))
                });
                let mut data = Map::new();
                data.insert("cardId".into(), json!(id));
                data.insert("card".into(), shown.unwrap_or(Value::Null));
                match &change {
                    Change::CardMoved { from, to, .. }
                    | Change::CardWon { from, to, .. }
                    | Change::CardLost { from, to, .. } => {
                        data.insert("from".into(), json!(from));
                        data.insert("to".into(), json!(to));
                    }
                    Change::CardUpdated { changes, .. } => {
                        data.insert("changes".into(), changes_json(changes));
                    }
                    _ => {}
                }
                push(change, data);
            }
        }
        for (id, before) in &activities {
            let after = self.index.activity(id).cloned();
            for change in changes::activity_changes(before.as_ref(), after.as_ref()) {
                let mut data = Map::new();
                data.insert("cardId".into(), json!(change.card()));
                data.insert("activityId".into(), json!(id));
                data.insert(
                    "activity".into(),
                    after
                        .as_ref()
                        .map_or(Value::Null, |a| value(shapes::activity_json(a))),
                );
                let card = change
                    .card()
                    .and_then(|card| self.index.card(card))
                    .map(|card| {
                        let column = self
                            .index
                            .shown_stage(card)
                            .map_or_else(|| card.stage.clone(), |s| s.id.clone());
                        value(shapes::card_json(&txn, card, &column))
                    });
                data.insert("card".into(), card.unwrap_or(Value::Null));
                push(change, data);
            }
        }
        out
    }
}

/// One event: the type's own `data` plus what every event carries.
fn event(
    board: &BoardId,
    author: &Author,
    now: i64,
    change: &Change,
    mut data: Map<String, Value>,
) -> NewChange {
    data.insert("boardId".into(), json!(board.as_str()));
    data.insert("origin".into(), json!(author.origin.as_str()));
    data.insert("actor".into(), json!(author.actor));
    NewChange {
        kind: change.kind().to_owned(),
        timestamp: now,
        data: Value::Object(data),
    }
}

/// A shape as JSON: plain structs that serialize without fail; were one not to, `null`.
fn value(shape: impl serde::Serialize) -> Value {
    serde_json::to_value(shape).unwrap_or(Value::Null)
}

fn changes_json(changes: &[FieldChange]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|c| json!({ "field": c.field, "before": c.before, "after": c.after }))
            .collect(),
    )
}

fn stage_json(stage: &Stage) -> Value {
    json!({
        "id": stage.id,
        "name": stage.name,
        "color": stage.color,
        "kind": stage.kind.as_str(),
        "pos": stage.pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use funnel_protocol::board::{CardPlace, NewCard};
    use funnel_protocol::index::UPKEEP_ORIGIN;
    use funnel_protocol::schema::{self, Entity, StageKind};
    use yrs::Map as _;
    use yrs::ReadTxn as _;

    fn board_doc() -> (Doc, Vec<Stage>) {
        let doc = Doc::new();
        schema::initialize_board(&mut doc.transact_mut(), &Entity::Deal, "Deals");
        let stages = board::stages(&doc.transact());
        (doc, stages)
    }

    fn author() -> Author {
        Author {
            origin: Origin::Socket,
            actor: Some("bob".into()),
        }
    }

    fn kinds(events: &[NewChange]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    fn new_card(doc: &Doc, stage: &str) -> String {
        let card = NewCard {
            title: "deal".into(),
            responsible: "ann".into(),
            ..NewCard::default()
        };
        board::create_card(&mut doc.transact_mut(), stage, card, 1).unwrap()
    }

    #[test]
    fn each_derive_names_what_changed_since_the_last_with_its_author() {
        let (doc, stages) = board_doc();
        let mut log = ChangeLog::attach(BoardId::parse("b").unwrap(), &doc);
        assert!(log.derive(&doc, &author(), 5).is_empty());
        let card = new_card(&doc, &stages[0].id);
        let created = log.derive(&doc, &author(), 5);
        assert_eq!(kinds(&created), ["card.created"]);
        let data = &created[0].data;
        assert_eq!(data["boardId"], "b");
        assert_eq!(data["origin"], "socket");
        assert_eq!(data["actor"], "bob");
        assert_eq!(data["cardId"], card.as_str());
        assert_eq!(data["card"]["title"], "deal");
        assert_eq!(data["card"]["stageId"], stages[0].id.as_str());
        assert_eq!(created[0].timestamp, 5);
        let success = stages
            .iter()
            .find(|s| s.kind == StageKind::Success)
            .unwrap();
        board::move_card(&mut doc.transact_mut(), &card, &success.id, CardPlace::Top).unwrap();
        let moved = log.derive(&doc, &Author::scheduler(), 6);
        assert_eq!(kinds(&moved), ["card.moved", "card.won"]);
        assert_eq!(moved[0].data["from"], stages[0].id.as_str());
        assert_eq!(moved[0].data["to"], success.id.as_str());
        assert_eq!(moved[0].data["actor"], Value::Null);
        assert_eq!(moved[0].data["origin"], "scheduler");
        assert!(log.derive(&doc, &author(), 7).is_empty(), "taken once");
    }

    #[test]
    fn upkeep_writes_make_no_events_and_absorbed_changes_none_later() {
        let (doc, stages) = board_doc();
        let card = new_card(&doc, &stages[0].id);
        let mut log = ChangeLog::attach(BoardId::parse("b").unwrap(), &doc);
        {
            // Under the upkeep's origin nothing is tracked, whatever it writes: its server
            // fields, and here even a field that would otherwise be an edit.
            let mut txn = doc.transact_mut_with(UPKEEP_ORIGIN);
            let cards = txn.get_map(schema::root::CARDS).unwrap();
            let Some(yrs::Out::YMap(map)) = cards.get(&txn, &card) else {
                panic!("the card");
            };
            map.insert(&mut txn, "avatar", "zed");
            map.insert(&mut txn, "client", "upkeep");
        }
        assert!(log.derive(&doc, &author(), 1).is_empty());
        // Another instance's change is taken in without events, and not made later.
        board::edit_card(
            &mut doc.transact_mut(),
            &card,
            board::CardEdit {
                title: Some("renamed".into()),
                ..board::CardEdit::default()
            },
        )
        .unwrap();
        log.absorb(&doc);
        assert!(log.derive(&doc, &author(), 2).is_empty());
    }

    #[test]
    fn a_reset_starts_over_from_the_new_document() {
        let (doc, stages) = board_doc();
        let mut log = ChangeLog::attach(BoardId::parse("b").unwrap(), &doc);
        new_card(&doc, &stages[0].id);
        // The room reloads the stored board (which lacks the card): nothing to report, and
        // the old document is no longer tracked.
        let (reloaded, reloaded_stages) = board_doc();
        log.reset(&reloaded);
        assert!(log.derive(&reloaded, &author(), 1).is_empty());
        new_card(&doc, &stages[0].id);
        assert!(log.derive(&reloaded, &author(), 2).is_empty());
        new_card(&reloaded, &reloaded_stages[0].id);
        assert_eq!(
            kinds(&log.derive(&reloaded, &author(), 3)),
            ["card.created"]
        );
    }
}
