//! The change feed's part of a room: the events of each change the room makes, derived right
//! after the command that made it (so each knows its actor and origin) and stored with the
//! turn's updates, in the same storage transaction (`Room::store_then_deliver`).
//!
//! A [`ChangeLog`] reads the board through the room's one read model ([`BoardModel`], shared
//! with the upkeep): the cards as they were before a change, from its index, and as they are
//! after, and turns what a command changed into events with `funnel_protocol::changes`. What
//! the room applies from other instances (the bus, a catch-up) is only synced into the model
//! ([`BoardModel::sync`]): the instance that stored it derived its events. The upkeep's
//! transactions (counters, avatars) are not tracked at all, so they make no events. A refused
//! update never reaches [`ChangeLog::derive`]: the room reloads the stored board first, with a
//! model of its own.

use super::model::BoardModel;
use crate::feed::{NewChange, Origin};
use crate::shapes;
use funnel_protocol::board::{Card, Stage};
use funnel_protocol::changes::{self, Change, FieldChange};
use funnel_protocol::{BoardId, board};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use yrs::{Doc, Transact};

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
}

/// What the feed reads of the board before a change: the changed cards and activities as they
/// were (sorted by id), and the stages if they changed.
type Before = (
    Vec<(String, Option<Arc<Card>>)>,
    Vec<(String, Option<board::Activity>)>,
    Option<Vec<Stage>>,
);

impl ChangeLog {
    pub fn new(board: BoardId) -> Self {
        Self { board }
    }

    /// The events of what changed in `doc` since `model` was last brought up to date, by
    /// `author`, at `now` (ms); brings it up to date.
    pub fn derive(
        &mut self,
        doc: &Doc,
        model: &mut BoardModel,
        author: &Author,
        now: i64,
    ) -> Vec<NewChange> {
        let Some((_, (cards, activities, stages_before))) =
            model.update(doc, |index, changed| -> Before {
                let mut cards: Vec<(String, Option<Arc<Card>>)> = changed
                    .cards
                    .iter()
                    .map(|id| (id.clone(), index.card(id).cloned()))
                    .collect();
                cards.sort_by(|a, b| a.0.cmp(&b.0));
                let mut activities: Vec<(String, Option<board::Activity>)> = changed
                    .activities
                    .iter()
                    .map(|id| (id.clone(), index.activity(id).cloned()))
                    .collect();
                activities.sort_by(|a, b| a.0.cmp(&b.0));
                let stages = changed.stages.then(|| index.stages().to_vec());
                (cards, activities, stages)
            })
        else {
            return Vec::new();
        };
        let index = model.index();
        let txn = doc.transact();

        let mut out = Vec::new();
        let mut push = |change: Change, data: Map<String, Value>| {
            out.push(self::event(&self.board, author, now, &change, data));
        };
        // Stages first: a card moved into a stage made in the same change comes after it.
        if let Some(before) = &stages_before {
            for change in changes::stage_changes(before, index.stages()) {
                let stage = match &change {
                    Change::StageCreated { stage }
                    | Change::StageUpdated { stage, .. }
                    | Change::StageDeleted { stage } => stage,
                    _ => continue,
                };
                let shown = index
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
            let after = index.card(id).cloned();
            for change in changes::card_changes(before.as_deref(), after.as_deref(), index.stages())
            {
                // The card as the API shows it now (as it was, for a deleted one).
                let shown = after.as_ref().or(before.as_ref()).map(|card| {
                    let column = index
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
            let after = index.activity(id).cloned();
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
                let card = change.card().and_then(|card| index.card(card)).map(|card| {
                    let column = index
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
        schema::initialize_board(
            &mut doc.transact_mut(),
            &Entity::Deal,
            schema::Language::En,
            "Deals",
        );
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

    /// A board's model and its feed, as a room holds them.
    struct Fed {
        model: BoardModel,
        log: ChangeLog,
    }

    impl Fed {
        fn attach(doc: &Doc) -> Self {
            Self {
                model: BoardModel::attach(doc),
                log: ChangeLog::new(BoardId::parse("b").unwrap()),
            }
        }

        fn derive(&mut self, doc: &Doc, author: &Author, now: i64) -> Vec<NewChange> {
            self.log.derive(doc, &mut self.model, author, now)
        }
    }

    #[test]
    fn each_derive_names_what_changed_since_the_last_with_its_author() {
        let (doc, stages) = board_doc();
        let mut log = Fed::attach(&doc);
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
    fn upkeep_writes_make_no_events_and_synced_changes_none_later() {
        let (doc, stages) = board_doc();
        let card = new_card(&doc, &stages[0].id);
        let mut log = Fed::attach(&doc);
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
        log.model.sync(&doc);
        assert!(log.derive(&doc, &author(), 2).is_empty());
        assert_eq!(log.model.index().card(&card).unwrap().title, "renamed");
    }

    #[test]
    fn the_feed_and_the_upkeep_share_one_index_and_each_sees_every_change() {
        let (doc, stages) = board_doc();
        let mut fed = Fed::attach(&doc);
        let mut upkeep = super::super::upkeep::Upkeep::new(&mut fed.model);
        // The first run checks every card (none yet); then a card comes, the feed takes the
        // change first, and the upkeep still writes the new card's counter and avatar.
        assert!(upkeep.run(&doc, &mut fed.model, 1).is_none());
        let card = new_card(&doc, &stages[0].id);
        assert_eq!(kinds(&fed.derive(&doc, &author(), 2)), ["card.created"]);
        assert!(upkeep.run(&doc, &mut fed.model, 2).is_some());
        assert!(
            upkeep.run(&doc, &mut fed.model, 2).is_none(),
            "nothing left"
        );
        // An edit: the feed reads it (the room derives after every command, before the
        // batch's upkeep), and the upkeep finds nothing of its own to write.
        board::edit_card(
            &mut doc.transact_mut(),
            &card,
            board::CardEdit {
                title: Some("renamed".into()),
                ..board::CardEdit::default()
            },
        )
        .unwrap();
        let edited = fed.derive(&doc, &author(), 3);
        assert_eq!(kinds(&edited), ["card.updated"]);
        assert_eq!(edited[0].data["card"]["title"], "renamed");
        assert!(
            upkeep.run(&doc, &mut fed.model, 3).is_none(),
            "a title moves no counter"
        );
    }
}
