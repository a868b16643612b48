//! The JSON shapes of a board's cards and activities, shared by the board API (`crate::api`)
//! and the change feed (`crate::room::changes`, whose events carry the card as the API shows
//! it): one shape, so that an integrator reads a card the same way from both.

use funnel_protocol::board::{self, card_key};
use funnel_protocol::schema::root;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use yrs::types::ToJson;
use yrs::{Map, Out, ReadTxn};

/// A JSON value from a yrs value (server fields): plain data, which serializes without fail;
/// were it not to, `null`.
fn json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A card.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardJson {
    pub id: String,
    pub title: String,
    /// The stage it is shown in (a card whose stage was deleted shows in the initial stage).
    pub stage_id: String,
    /// Its order key within the stage.
    pub pos: String,
    /// Minor units (cents).
    pub amount: i64,
    pub currency: String,
    pub responsible: String,
    pub client: String,
    /// The client's e-mail address; empty when none.
    pub email: String,
    /// Custom field values by field id.
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    /// The expected close date (ms); null when none.
    pub close_date: Option<i64>,
    /// Why it was lost; empty when none.
    pub lost_reason: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When it last changed (ms), as its writer saw it.
    pub updated_at: i64,
    /// When it was archived (ms); null: it is on the board. An archived card is in no column
    /// and in no list but `?archived=true`.
    pub archived_at: Option<i64>,
    /// The server's activity counter: `count`, `lit`, `incoming`, `next`, `state`; null until
    /// the server first wrote it.
    #[schema(value_type = Object)]
    pub counter: Value,
    /// The user whose avatar the card shows (written by the server).
    pub avatar: String,
}

/// A card as JSON, shown in `shown_in` (its stage, or the initial stage when its own is
/// gone); its server fields read from `txn` (`null` when the card is no longer there).
pub fn card_json<T: ReadTxn>(txn: &T, card: &board::Card, shown_in: &str) -> CardJson {
    let map = txn
        .get_map(root::CARDS)
        .and_then(|cards| match cards.get(txn, &card.id) {
            Some(Out::YMap(map)) => Some(map),
            _ => None,
        });
    let server = |key: &str| -> Value {
        map.as_ref()
            .and_then(|m| m.get(txn, key))
            .map(|out| json(out.to_json(txn)))
            .unwrap_or(Value::Null)
    };
    CardJson {
        id: card.id.clone(),
        title: card.title.clone(),
        stage_id: shown_in.to_owned(),
        pos: card.pos.clone(),
        amount: card.amount,
        currency: card.currency.clone(),
        responsible: card.responsible.clone(),
        client: card.client.clone(),
        email: card.email.clone(),
        fields: card.fields.clone(),
        close_date: card.close_date,
        lost_reason: card.lost_reason.clone(),
        created_at: card.created_at,
        updated_at: card.updated_at,
        archived_at: card.archived_at,
        counter: server(card_key::COUNTER),
        avatar: server(card_key::AVATAR)
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// An activity of a card.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityJson {
    pub id: String,
    pub card_id: String,
    /// `call`, `meeting`, `task`, `email`, `chat`, ...
    pub kind: String,
    /// `incoming` or `outgoing` (planned).
    pub direction: String,
    pub subject: String,
    /// Milliseconds since the Unix epoch; null: none (it never lights).
    pub deadline: Option<i64>,
    /// Minutes before the deadline at which it lights; null: the board's threshold.
    pub remind_min: Option<i64>,
    pub responsible: String,
    pub done: bool,
}

/// An activity as JSON.
pub fn activity_json(activity: &board::Activity) -> ActivityJson {
    ActivityJson {
        id: activity.id.clone(),
        card_id: activity.card.clone(),
        kind: activity.kind.clone(),
        direction: activity.facts.direction.as_str().to_owned(),
        subject: activity.subject.clone(),
        deadline: activity.facts.deadline,
        remind_min: activity.facts.remind_min,
        responsible: activity.facts.responsible.clone(),
        done: activity.facts.done,
    }
}
