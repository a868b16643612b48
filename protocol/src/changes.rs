//! Typed changes of a board, from what a card, an activity or the stages were before a stored
//! change and what they are after it: the events of the server's change feed, derived without
//! I/O so that every rule here is tested on plain values.
//!
//! The rules (docs/events.md):
//! - a card that appears is `card.created`, one that goes is `card.deleted`;
//! - a card whose `stage` changes is `card.moved` (`from`, `to`), followed by `card.won` when
//!   the new stage is the success stage, `card.lost` when it is a failure stage;
//! - any other change of a card's own fields (title, amount, currency, responsible, client,
//!   email, a custom field, `archivedAt` when it is archived or restored, its place within
//!   its stage) is one `card.updated` that lists each changed field with its value before and
//!   after. `updatedAt` is bookkeeping, not a change,
//!   and the server-maintained fields (counter, avatar, ...) are not read into a
//!   [`Card`]: the server's upkeep makes no events;
//! - an activity that appears is `activity.created`; one whose `done` turns true is
//!   `activity.completed` (an activity created done is both);
//! - stages appear (`stage.created`), change name, colour, kind or place (`stage.updated`, with
//!   the changed fields) or go (`stage.deleted`).

use crate::board::{Activity, Card, Stage};
use crate::schema::StageKind;
use serde_json::{Value, json};

/// One field's value before and after a change (`null`: absent).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field as the API names it (`title`, `amount`, `pos`, `fields.<id>`, ...).
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// What one change did to one object of the board.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    CardCreated {
        card: String,
    },
    CardMoved {
        card: String,
        from: String,
        to: String,
    },
    /// Moved into the success stage (after its [`Change::CardMoved`]).
    CardWon {
        card: String,
        from: String,
        to: String,
    },
    /// Moved into a failure stage (after its [`Change::CardMoved`]).
    CardLost {
        card: String,
        from: String,
        to: String,
    },
    CardUpdated {
        card: String,
        changes: Vec<FieldChange>,
    },
    CardDeleted {
        card: String,
    },
    ActivityCreated {
        activity: String,
        card: String,
    },
    ActivityCompleted {
        activity: String,
        card: String,
    },
    StageCreated {
        stage: String,
    },
    StageUpdated {
        stage: String,
        changes: Vec<FieldChange>,
    },
    StageDeleted {
        stage: String,
    },
}

impl Change {
    /// The event type: `card.created`, `card.moved`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Change::CardCreated { .. } => "card.created",
            Change::CardMoved { .. } => "card.moved",
            Change::CardWon { .. } => "card.won",
            Change::CardLost { .. } => "card.lost",
            Change::CardUpdated { .. } => "card.updated",
            Change::CardDeleted { .. } => "card.deleted",
            Change::ActivityCreated { .. } => "activity.created",
            Change::ActivityCompleted { .. } => "activity.completed",
            Change::StageCreated { .. } => "stage.created",
            Change::StageUpdated { .. } => "stage.updated",
            Change::StageDeleted { .. } => "stage.deleted",
        }
    }

    /// The card the change is about (an activity's card too), if any.
    pub fn card(&self) -> Option<&str> {
        match self {
            Change::CardCreated { card }
            | Change::CardMoved { card, .. }
            | Change::CardWon { card, .. }
            | Change::CardLost { card, .. }
            | Change::CardUpdated { card, .. }
            | Change::CardDeleted { card }
            | Change::ActivityCreated { card, .. }
            | Change::ActivityCompleted { card, .. } => Some(card),
            _ => None,
        }
    }
}

/// What happened to one card, given what it was (`None`: absent) and what it is, and the
/// stages after the change (which say whether a move won or lost it).
pub fn card_changes(before: Option<&Card>, after: Option<&Card>, stages: &[Stage]) -> Vec<Change> {
    match (before, after) {
        (None, None) => Vec::new(),
        (None, Some(card)) => vec![Change::CardCreated {
            card: card.id.clone(),
        }],
        (Some(card), None) => vec![Change::CardDeleted {
            card: card.id.clone(),
        }],
        (Some(before), Some(after)) => {
            let mut out = Vec::new();
            let moved = before.stage != after.stage;
            let mut changes = card_field_changes(before, after);
            if moved {
                // The new place in the new stage is part of the move.
                changes.retain(|c| c.field != "pos");
            }
            if !changes.is_empty() {
                out.push(Change::CardUpdated {
                    card: after.id.clone(),
                    changes,
                });
            }
            if moved {
                let (card, from, to) =
                    (after.id.clone(), before.stage.clone(), after.stage.clone());
                out.push(Change::CardMoved {
                    card: card.clone(),
                    from: from.clone(),
                    to: to.clone(),
                });
                match stages.iter().find(|s| s.id == after.stage).map(|s| s.kind) {
                    Some(StageKind::Success) => out.push(Change::CardWon { card, from, to }),
                    Some(StageKind::Failure) => out.push(Change::CardLost { card, from, to }),
                    _ => {}
                }
            }
            out
        }
    }
}

fn card_field_changes(before: &Card, after: &Card) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut field = |name: &str, b: Value, a: Value| {
        if b != a {
            changes.push(FieldChange {
                field: name.to_owned(),
                before: b,
                after: a,
            });
        }
    };
    field("title", json!(before.title), json!(after.title));
    field("amount", json!(before.amount), json!(after.amount));
    field("currency", json!(before.currency), json!(after.currency));
    field(
        "responsible",
        json!(before.responsible),
        json!(after.responsible),
    );
    field("client", json!(before.client), json!(after.client));
    field("email", json!(before.email), json!(after.email));
    field(
        "closeDate",
        json!(before.close_date),
        json!(after.close_date),
    );
    field(
        "lostReason",
        json!(before.lost_reason),
        json!(after.lost_reason),
    );
    field(
        "archivedAt",
        json!(before.archived_at),
        json!(after.archived_at),
    );
    field("pos", json!(before.pos), json!(after.pos));
    let ids: std::collections::BTreeSet<&String> =
        before.fields.keys().chain(after.fields.keys()).collect();
    for id in ids {
        let b = before.fields.get(id).cloned().unwrap_or(Value::Null);
        let a = after.fields.get(id).cloned().unwrap_or(Value::Null);
        field(&format!("fields.{id}"), b, a);
    }
    changes
}

/// What happened to one activity, given what it was (`None`: absent) and what it is.
pub fn activity_changes(before: Option<&Activity>, after: Option<&Activity>) -> Vec<Change> {
    let Some(after) = after else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if before.is_none() {
        out.push(Change::ActivityCreated {
            activity: after.id.clone(),
            card: after.card.clone(),
        });
    }
    if after.facts.done && !before.is_some_and(|b| b.facts.done) {
        out.push(Change::ActivityCompleted {
            activity: after.id.clone(),
            card: after.card.clone(),
        });
    }
    out
}

/// What happened to the stages: the ones created, changed and deleted, in the order of the
/// stages after the change (deleted ones last, in their old order).
pub fn stage_changes(before: &[Stage], after: &[Stage]) -> Vec<Change> {
    let mut out = Vec::new();
    for stage in after {
        match before.iter().find(|s| s.id == stage.id) {
            None => out.push(Change::StageCreated {
                stage: stage.id.clone(),
            }),
            Some(old) => {
                let mut changes = Vec::new();
                let mut field = |name: &str, b: &str, a: &str| {
                    if b != a {
                        changes.push(FieldChange {
                            field: name.to_owned(),
                            before: json!(b),
                            after: json!(a),
                        });
                    }
                };
                field("name", &old.name, &stage.name);
                field("color", &old.color, &stage.color);
                field("kind", old.kind.as_str(), stage.kind.as_str());
                field("pos", &old.pos, &stage.pos);
                if !changes.is_empty() {
                    out.push(Change::StageUpdated {
                        stage: stage.id.clone(),
                        changes,
                    });
                }
            }
        }
    }
    for stage in before {
        if !after.iter().any(|s| s.id == stage.id) {
            out.push(Change::StageDeleted {
                stage: stage.id.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::{ActivityFacts, Direction};
    use std::collections::BTreeMap;

    fn stage(id: &str, kind: StageKind) -> Stage {
        Stage {
            id: id.into(),
            name: id.to_uppercase(),
            color: "#112233".into(),
            kind,
            pos: format!("a{id}"),
            required: Vec::new(),
            probability_set: None,
            rot_days: 0,
        }
    }

    fn stages() -> Vec<Stage> {
        vec![
            stage("new", StageKind::Initial),
            stage("work", StageKind::Progress),
            stage("won", StageKind::Success),
            stage("lost", StageKind::Failure),
            stage("why", StageKind::Failure),
        ]
    }

    fn card(stage: &str) -> Card {
        Card {
            id: "c1".into(),
            title: "Deal".into(),
            stage: stage.into(),
            pos: "a0".into(),
            amount: 100,
            currency: "EUR".into(),
            responsible: "ann".into(),
            client: "ACME".into(),
            email: String::new(),
            created_at: 1,
            updated_at: 1,
            archived_at: None,
            fields: BTreeMap::new(),
            close_date: None,
            lost_reason: String::new(),
            timeline_at: None,
        }
    }

    fn kinds(changes: &[Change]) -> Vec<&'static str> {
        changes.iter().map(Change::kind).collect()
    }

    fn activity(done: bool) -> Activity {
        Activity {
            id: "a1".into(),
            card: "c1".into(),
            kind: "call".into(),
            subject: "Call back".into(),
            facts: ActivityFacts {
                deadline: Some(10),
                remind_min: None,
                direction: Direction::Outgoing,
                done,
                responsible: "ann".into(),
            },
            done_at: None,
        }
    }

    #[test]
    fn a_card_that_appears_is_created_and_one_that_goes_is_deleted() {
        let c = card("new");
        assert_eq!(
            card_changes(None, Some(&c), &stages()),
            [Change::CardCreated { card: "c1".into() }]
        );
        assert_eq!(
            card_changes(Some(&c), None, &stages()),
            [Change::CardDeleted { card: "c1".into() }]
        );
        assert!(card_changes(None, None, &stages()).is_empty());
    }

    #[test]
    fn an_unchanged_card_or_one_whose_updated_at_alone_changed_makes_nothing() {
        let before = card("new");
        let mut after = before.clone();
        assert!(card_changes(Some(&before), Some(&after), &stages()).is_empty());
        after.updated_at = 99;
        assert!(card_changes(Some(&before), Some(&after), &stages()).is_empty());
    }

    #[test]
    fn a_move_names_both_stages_and_its_new_place_is_part_of_it() {
        let before = card("new");
        let mut after = card("work");
        after.pos = "b5".into();
        assert_eq!(
            card_changes(Some(&before), Some(&after), &stages()),
            [Change::CardMoved {
                card: "c1".into(),
                from: "new".into(),
                to: "work".into()
            }]
        );
    }

    #[test]
    fn a_move_into_the_success_stage_wins_and_into_a_failure_stage_loses() {
        let before = card("work");
        let won = card_changes(Some(&before), Some(&card("won")), &stages());
        assert_eq!(kinds(&won), ["card.moved", "card.won"]);
        assert_eq!(
            won[1],
            Change::CardWon {
                card: "c1".into(),
                from: "work".into(),
                to: "won".into()
            }
        );
        for failure in ["lost", "why"] {
            let lost = card_changes(Some(&before), Some(&card(failure)), &stages());
            assert_eq!(kinds(&lost), ["card.moved", "card.lost"]);
        }
        // Out of a final stage back into progress: a plain move.
        let reopened = card_changes(Some(&card("won")), Some(&card("work")), &stages());
        assert_eq!(kinds(&reopened), ["card.moved"]);
        // Into a stage that does not exist (deleted meanwhile): a plain move.
        let nowhere = card_changes(Some(&before), Some(&card("gone")), &stages());
        assert_eq!(kinds(&nowhere), ["card.moved"]);
    }

    #[test]
    fn archiving_and_restoring_a_card_are_updates_of_archived_at() {
        let before = card("new");
        let mut archived = before.clone();
        archived.archived_at = Some(7);
        let expected = |b: Value, a: Value| {
            vec![Change::CardUpdated {
                card: "c1".into(),
                changes: vec![FieldChange {
                    field: "archivedAt".into(),
                    before: b,
                    after: a,
                }],
            }]
        };
        assert_eq!(
            card_changes(Some(&before), Some(&archived), &stages()),
            expected(Value::Null, json!(7))
        );
        assert_eq!(
            card_changes(Some(&archived), Some(&before), &stages()),
            expected(json!(7), Value::Null)
        );
    }

    #[test]
    fn an_edit_lists_each_changed_field_before_and_after() {
        let before = card("new");
        let mut after = before.clone();
        after.title = "Big deal".into();
        after.amount = 250;
        after.updated_at = 5;
        let changes = card_changes(Some(&before), Some(&after), &stages());
        assert_eq!(
            changes,
            [Change::CardUpdated {
                card: "c1".into(),
                changes: vec![
                    FieldChange {
                        field: "title".into(),
                        before: json!("Deal"),
                        after: json!("Big deal")
                    },
                    FieldChange {
                        field: "amount".into(),
                        before: json!(100),
                        after: json!(250)
                    },
                ]
            }]
        );
    }

    #[test]
    fn custom_fields_set_changed_and_cleared_are_listed_one_by_one() {
        let mut before = card("new");
        before.fields.insert("size".into(), json!(3));
        before.fields.insert("gone".into(), json!("x"));
        let mut after = before.clone();
        after.fields.insert("size".into(), json!(4));
        after.fields.remove("gone");
        after.fields.insert("new".into(), json!(true));
        let Change::CardUpdated { changes, .. } =
            &card_changes(Some(&before), Some(&after), &stages())[0]
        else {
            panic!("an update");
        };
        let fields: Vec<(&str, &Value, &Value)> = changes
            .iter()
            .map(|c| (c.field.as_str(), &c.before, &c.after))
            .collect();
        assert_eq!(
            fields,
            [
                ("fields.gone", &json!("x"), &Value::Null),
                ("fields.new", &Value::Null, &json!(true)),
                ("fields.size", &json!(3), &json!(4)),
            ]
        );
    }

    #[test]
    fn a_reorder_within_a_stage_is_an_update_of_pos_and_an_edit_with_a_move_is_both() {
        let before = card("new");
        let mut after = before.clone();
        after.pos = "a5".into();
        let reorder = card_changes(Some(&before), Some(&after), &stages());
        assert_eq!(kinds(&reorder), ["card.updated"]);
        let mut moved = card("won");
        moved.responsible = "bob".into();
        moved.pos = "zz".into();
        let both = card_changes(Some(&before), Some(&moved), &stages());
        assert_eq!(kinds(&both), ["card.updated", "card.moved", "card.won"]);
        let Change::CardUpdated { changes, .. } = &both[0] else {
            panic!("an update first");
        };
        assert_eq!(changes.len(), 1, "pos belongs to the move: {changes:?}");
        assert_eq!(changes[0].field, "responsible");
    }

    #[test]
    fn activities_are_created_and_completed_once() {
        let open = activity(false);
        let done = activity(true);
        assert_eq!(
            activity_changes(None, Some(&open)),
            [Change::ActivityCreated {
                activity: "a1".into(),
                card: "c1".into()
            }]
        );
        assert_eq!(
            kinds(&activity_changes(Some(&open), Some(&done))),
            ["activity.completed"]
        );
        assert!(activity_changes(Some(&done), Some(&done)).is_empty());
        assert!(
            activity_changes(Some(&done), Some(&open)).is_empty(),
            "reopened"
        );
        assert!(activity_changes(Some(&open), None).is_empty(), "deleted");
        let mut edited = open.clone();
        edited.subject = "Other".into();
        assert!(activity_changes(Some(&open), Some(&edited)).is_empty());
        assert_eq!(
            kinds(&activity_changes(None, Some(&done))),
            ["activity.created", "activity.completed"]
        );
        assert_eq!(activity_changes(None, Some(&done))[1].card(), Some("c1"));
    }

    #[test]
    fn stages_created_updated_and_deleted() {
        let before = stages();
        let mut after = stages();
        after.remove(4); // "why"
        after[1].name = "Working".into();
        after[1].color = "#445566".into();
        after.insert(2, stage("nego", StageKind::Progress));
        let changes = stage_changes(&before, &after);
        assert_eq!(
            kinds(&changes),
            ["stage.updated", "stage.created", "stage.deleted"]
        );
        assert_eq!(
            changes[0],
            Change::StageUpdated {
                stage: "work".into(),
                changes: vec![
                    FieldChange {
                        field: "name".into(),
                        before: json!("WORK"),
                        after: json!("Working")
                    },
                    FieldChange {
                        field: "color".into(),
                        before: json!("#112233"),
                        after: json!("#445566")
                    },
                ]
            }
        );
        assert_eq!(
            changes[2],
            Change::StageDeleted {
                stage: "why".into()
            }
        );
        assert!(stage_changes(&before, &before).is_empty());
        assert_eq!(changes[0].card(), None);
    }
}
