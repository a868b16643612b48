//! The rules of a stage beyond its kind: what a card must carry to enter it (`required`), how
//! likely a card in it is won (`probability`, for the weighted sum and the forecast), and when a
//! card in it turns stale (`rotDays`). Pure reads over [`Stage`] and [`Card`]; the policy
//! (`crate::policy`) enforces the first on every client update, the browser mirrors all three
//! (`clients/web/src/model/requirements.ts`).

use super::read::{Activity, Card, Stage};
use crate::rules::{Direction, Millis};
use crate::schema::card;
use serde_json::Value;

/// One day, in milliseconds.
pub const DAY_MS: Millis = 24 * 60 * 60 * 1000;

/// The entries of `stage.required` that `card` does not carry, in the stage's order, each
/// once. A card key counts as given when it is set and not empty: an `amount` other than 0,
/// a `client`, `email` or `responsible` that is not blank, a `closeDate`, and a `lostReason`
/// that is not blank and, when the board lists its reasons (`lost_reasons`), one of them.
/// Any other entry names a custom field, given when its value is neither null nor blank text.
pub fn missing_required(stage: &Stage, card: &Card, lost_reasons: &[String]) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for key in &stage.required {
        if missing.contains(key) || carries(card, key, lost_reasons) {
            continue;
        }
        missing.push(key.clone());
    }
    missing
}

fn carries(card: &Card, key: &str, lost_reasons: &[String]) -> bool {
    let text = |s: &str| !s.trim().is_empty();
    match key {
        card::AMOUNT => card.amount != 0,
        card::CLIENT => text(&card.client),
        card::EMAIL => text(&card.email),
        card::RESPONSIBLE => text(&card.responsible),
        card::CLOSE_DATE => card.close_date.is_some(),
        card::LOST_REASON => {
            text(&card.lost_reason)
                && (lost_reasons.is_empty() || lost_reasons.contains(&card.lost_reason))
        }
        custom => match card.fields.get(custom) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => text(s),
            Some(_) => true,
        },
    }
}

/// When something last happened to `card`: the latest of its creation, its last recorded
/// change (`updatedAt`), its last timeline event and the completion of its activities.
pub fn last_activity_at(card: &Card, activities: &[Activity]) -> Millis {
    let done = activities
        .iter()
        .filter(|a| a.facts.done)
        .filter_map(|a| a.done_at);
    [card.created_at, card.updated_at]
        .into_iter()
        .chain(card.timeline_at)
        .chain(done)
        .max()
        .unwrap_or(0)
}

/// Whether `card` in `stage` is stale (rotting) at `now`: the stage has a `rotDays`, nothing is
/// planned on the card (no open outgoing activity), and nothing happened to it for that many
/// days ([`last_activity_at`]).
pub fn is_stale(stage: &Stage, card: &Card, activities: &[Activity], now: Millis) -> bool {
    if stage.rot_days <= 0 {
        return false;
    }
    let planned = activities
        .iter()
        .any(|a| !a.facts.done && a.facts.direction == Direction::Outgoing);
    if planned {
        return false;
    }
    let idle = now.saturating_sub(last_activity_at(card, activities));
    idle >= stage.rot_days.saturating_mul(DAY_MS)
}

/// `amount` weighted by the stage's probability, rounded towards zero.
pub fn weighted(amount: i64, stage: &Stage) -> i64 {
    (i128::from(amount) * i128::from(stage.probability()) / 100) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ActivityFacts;
    use crate::schema::StageKind;

    fn stage(required: &[&str], rot_days: i64) -> Stage {
        Stage {
            id: "won".into(),
            name: "Won".into(),
            color: "#00ff00".into(),
            kind: StageKind::Success,
            pos: "a0".into(),
            required: required.iter().map(|s| s.to_string()).collect(),
            probability_set: None,
            rot_days,
        }
    }

    fn card() -> Card {
        Card {
            id: "c".into(),
            title: "ACME".into(),
            stage: "won".into(),
            pos: "a0".into(),
            amount: 0,
            currency: "USD".into(),
            responsible: "ann".into(),
            client: String::new(),
            email: String::new(),
            created_at: 1_000,
            updated_at: 1_000,
            archived_at: None,
            fields: Default::default(),
            close_date: None,
            lost_reason: String::new(),
            timeline_at: None,
        }
    }

    fn activity(done: bool, done_at: Option<Millis>, direction: Direction) -> Activity {
        Activity {
            id: "a".into(),
            card: "c".into(),
            kind: "call".into(),
            subject: String::new(),
            facts: ActivityFacts {
                deadline: None,
                remind_min: None,
                direction,
                done,
                responsible: "ann".into(),
            },
            done_at,
        }
    }

    #[test]
    fn missing_fields_are_listed_in_the_stages_order_once() {
        let won = stage(
            &["amount", "lostReason", "source", "amount", "responsible"],
            0,
        );
        let mut c = card();
        assert_eq!(
            missing_required(&won, &c, &[]),
            ["amount", "lostReason", "source"]
        );
        c.amount = 5;
        c.lost_reason = "price".into();
        c.fields.insert("source".into(), Value::String("  ".into()));
        assert_eq!(missing_required(&won, &c, &[]), ["source"]);
        c.fields.insert("source".into(), Value::Bool(false));
        assert!(missing_required(&won, &c, &[]).is_empty());
        let reasons = vec!["too expensive".to_owned()];
        assert_eq!(missing_required(&won, &c, &reasons), ["lostReason"]);
        c.lost_reason = "too expensive".into();
        assert!(missing_required(&won, &c, &reasons).is_empty());
    }

    #[test]
    fn probability_defaults_by_kind_and_is_clamped() {
        let mut s = stage(&[], 0);
        assert_eq!(s.probability(), 100);
        s.kind = StageKind::Progress;
        assert_eq!(s.probability(), 0);
        s.probability_set = Some(140);
        assert_eq!(s.probability(), 100);
        s.probability_set = Some(30);
        assert_eq!(weighted(1_001, &s), 300);
        assert_eq!(weighted(-1_001, &s), -300);
    }

    #[test]
    fn a_card_rots_after_its_stages_days_unless_something_is_planned() {
        let s = stage(&[], 3);
        let c = card();
        let at = |days: i64| 1_000 + days * DAY_MS;
        assert!(!is_stale(&s, &c, &[], at(3) - 1));
        assert!(is_stale(&s, &c, &[], at(3)));
        assert!(!is_stale(&stage(&[], 0), &c, &[], at(300)));
        let planned = activity(false, None, Direction::Outgoing);
        assert!(!is_stale(&s, &c, &[planned], at(30)));
        let incoming = activity(false, None, Direction::Incoming);
        assert!(is_stale(&s, &c, &[incoming], at(30)));
        let done = activity(true, Some(at(2)), Direction::Outgoing);
        assert!(!is_stale(&s, &c, std::slice::from_ref(&done), at(4)));
        assert!(is_stale(&s, &c, &[done], at(5)));
        let mut touched = card();
        touched.timeline_at = Some(at(10));
        assert!(!is_stale(&s, &touched, &[], at(12)));
    }
}
