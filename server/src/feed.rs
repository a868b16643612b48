//! The change feed: typed events derived from each stored change of a board, kept in storage
//! with the update that caused them, listed after a cursor and streamed to whoever listens.
//!
//! # Contract (what the webhooks and the API rely on; extend it, never rename it)
//! - [`ChangeEvent`] `{ id: i64, board: BoardId, kind: String /* "card.moved" */, timestamp:
//!   i64 ms, data: serde_json::Value }`. As JSON (the API, webhook bodies): `{"id": "<cursor>",
//!   "type": kind, "timestamp": ms, "data": {...}}`; the id is a decimal string, an opaque cursor.
//! - Ids are strictly increasing as a reader sees them: every event with an id below one a
//!   reader got is committed already (PostgreSQL: inserts of change events are serialised by a
//!   transaction advisory lock, so ids commit in order across instances).
//! - [`Storage::changes_after`](crate::storage::Storage::changes_after)`(after, &ChangeFilter,
//!   limit)`: the events with an id above `after`, in id order, at most `limit`.
//! - [`Feed`]: a cloneable handle (in `AppState`, and in `RoomContext` for the rooms that store
//!   events) with [`Feed::latest`] (the newest stored id known here) and [`Feed::changed`] (wakes
//!   when a newer event is stored on this instance or, in a cluster, on another one).
//! - [`Origin`]: where a change came from, `socket`, `api`, `email` or `scheduler`.
//!
//! Events exist once: only the instance that stores an update derives its events, in the same
//! storage transaction as the update (none for a write that was not stored, none lost for one
//! that was). Updates applied from the bus or a catch-up derive none. See docs/events.md.

use crate::storage::Storage;
use funnel_protocol::BoardId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// One stored event of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// Strictly increasing, across boards and instances (see the module's contract).
    pub id: i64,
    pub board: BoardId,
    /// `card.created`, `card.moved`, ... (see [`TYPES`]).
    pub kind: String,
    /// When the change was stored, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// `boardId`, `origin`, `actor` and the type's own fields (docs/events.md).
    pub data: Value,
}

/// An event as JSON: the API's list items, the SSE `data:` lines and webhook bodies.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeEventJson {
    /// An opaque cursor: pass it as `after` (or `Last-Event-ID`) to resume after this event.
    pub id: String,
    /// `card.created`, `card.moved`, `card.updated`, `card.deleted`, `card.won`, `card.lost`,
    /// `activity.created`, `activity.completed`, `stage.created`, `stage.updated`,
    /// `stage.deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// `boardId`, `origin`, `actor`, and the type's fields (`cardId`, `card`, `from`, `to`,
    /// `changes`, `activity`, `stage`).
    #[schema(value_type = Object)]
    pub data: Value,
}

impl ChangeEvent {
    pub fn to_json(&self) -> ChangeEventJson {
        ChangeEventJson {
            id: self.id.to_string(),
            kind: self.kind.clone(),
            timestamp: self.timestamp,
            data: self.data.clone(),
        }
    }
}

impl Serialize for ChangeEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// An event about to be stored with the update that caused it (its id is assigned then).
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    pub kind: String,
    pub timestamp: i64,
    pub data: Value,
}

/// Every event type, in the order docs/events.md lists them.
pub const TYPES: [&str; 11] = [
    "card.created",
    "card.moved",
    "card.updated",
    "card.deleted",
    "card.won",
    "card.lost",
    "activity.created",
    "activity.completed",
    "stage.created",
    "stage.updated",
    "stage.deleted",
];

/// Which events a reader wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only events of these boards; `None`: every board.
    pub boards: Option<Vec<BoardId>>,
    /// Only events of these types (exact names, see [`ChangeFilter::parse_types`]); `None`: all.
    pub types: Option<Vec<String>>,
}

/// A `types` list that names a type that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}: use one of {types} or a prefix such as card.*", types = TYPES.join(", "))]
pub struct UnknownType(pub String);

impl ChangeFilter {
    /// A comma-separated list of types, each exact (`card.moved`) or a prefix (`card.*`), as
    /// the exact types it names.
    pub fn parse_types(raw: &str) -> Result<Vec<String>, UnknownType> {
        let mut types: Vec<String> = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let named: Vec<&str> = match item.strip_suffix('*') {
                Some(prefix) => TYPES
                    .iter()
                    .copied()
                    .filter(|t| t.starts_with(prefix))
                    .collect(),
                None => TYPES.iter().copied().filter(|t| *t == item).collect(),
            };
            if named.is_empty() {
                return Err(UnknownType(item.to_owned()));
            }
            for t in named {
                if !types.iter().any(|have| have == t) {
                    types.push(t.to_owned());
                }
            }
        }
        Ok(types)
    }

    /// Whether `event` passes the filter (what storage selects, for events at hand).
    pub fn matches(&self, event: &ChangeEvent) -> bool {
        self.boards
            .as_ref()
            .is_none_or(|boards| boards.contains(&event.board))
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.contains(&event.kind))
    }
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A client's update over its WebSocket.
    Socket,
    /// The board API.
    #[default]
    Api,
    /// Inbound e-mail.
    Email,
    /// The server's own timers.
    Scheduler,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Socket => "socket",
            Origin::Api => "api",
            Origin::Email => "email",
            Origin::Scheduler => "scheduler",
        }
    }
}

/// The newest stored event id known to this instance, and a wake-up for those who wait for a
/// newer one. Cheap to clone; every clone sees the same value, each waits on its own.
#[derive(Clone)]
pub struct Feed {
    /// This handle's view: what [`Feed::changed`] last saw.
    latest: watch::Receiver<i64>,
    /// Shared by every clone (so the channel lives while any handle does): rooms raise the
    /// value after storing events, the cluster poll after seeing another instance's.
    notify: Arc<watch::Sender<i64>>,
}

impl Feed {
    /// A feed whose newest stored id is `latest` (what storage holds at start; 0: none).
    pub fn new(latest: i64) -> Self {
        let (notify, latest) = watch::channel(latest);
        Self {
            latest,
            notify: Arc::new(notify),
        }
    }

    /// The newest stored event id known here (0: none yet).
    pub fn latest(&self) -> i64 {
        *self.latest.borrow()
    }

    /// Waits until an event newer than the newest one this handle saw (at its creation or the
    /// last return of `changed`) is stored, and returns its id. Cancel-safe.
    pub async fn changed(&mut self) -> i64 {
        // The sender lives in `self.notify`, so `changed` only fails if it were dropped, which
        // cannot happen while `self` exists; the value is then still the newest.
        let _ = self.latest.changed().await;
        *self.latest.borrow_and_update()
    }

    /// Events up to `id` are stored (and committed): wakes the waiters when it is newer.
    pub fn stored(&self, id: i64) {
        self.notify.send_if_modified(|latest| {
            if id > *latest {
                *latest = id;
                true
            } else {
                false
            }
        });
    }
}

/// How often an instance of a cluster looks for events stored by the others (one indexed
/// `max(id)` query) when storage cannot signal them: the longest a listener of this instance
/// then waits for another's event.
pub const CLUSTER_POLL_EVERY: Duration = Duration::from_millis(500);

/// The same while storage signals them ([`Storage::change_signals`]): only what a lost signal
/// could cost.
pub const CLUSTER_POLL_SIGNALLED: Duration = Duration::from_secs(5);

/// In a cluster: raises `feed` to the newest id in storage whenever storage signals that some
/// instance stored events (PostgreSQL's notifications), and at least every
/// [`CLUSTER_POLL_SIGNALLED`] (every [`CLUSTER_POLL_EVERY`] without signals), so that this
/// instance's listeners hear of events stored by others, until shutdown.
pub async fn follow_storage(
    feed: Feed,
    storage: Arc<dyn Storage>,
    signals_heard: prometheus_client::metrics::counter::Counter,
    shutdown: CancellationToken,
) {
    let mut signals = storage.change_signals(shutdown.clone());
    let poll = |signalled: bool| {
        let period = if signalled {
            CLUSTER_POLL_SIGNALLED
        } else {
            CLUSTER_POLL_EVERY
        };
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every
    };
    let mut every = poll(signals.is_some());
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
            signal = async { signals.as_mut()?.recv().await }, if signals.is_some() => {
                if signal.is_some() {
                    signals_heard.inc();
                } else {
                    signals = None; // the listener is gone: poll at the faster pace
                    every = poll(false);
                }
            }
        }
        match storage.latest_change().await {
            Ok(id) => feed.stored(id),
            Err(e) => tracing::debug!(error = %e, "cannot read the newest change event id"),
        }
    }
}

/// How often events older than `--change-retention` are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);

/// Deletes events older than `retention` now and every [`SWEEP_EVERY`], until shutdown.
pub async fn sweep_changes(
    storage: Arc<dyn Storage>,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        match storage
            .sweep_changes(now.saturating_sub(retention_ms))
            .await
        {
            Ok(0) => {}
            Ok(swept) => tracing::debug!(swept, "expired change events deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired change events"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_expand_prefixes_and_refuse_unknown_names() {
        assert_eq!(
            ChangeFilter::parse_types("card.moved, stage.*").unwrap(),
            [
                "card.moved",
                "stage.created",
                "stage.updated",
                "stage.deleted"
            ]
        );
        assert_eq!(ChangeFilter::parse_types("card.*").unwrap().len(), 6);
        assert_eq!(
            ChangeFilter::parse_types("card.moved,card.*")
                .unwrap()
                .len(),
            6
        );
        assert!(ChangeFilter::parse_types("card.flipped").is_err());
        assert!(ChangeFilter::parse_types("deal.*").is_err());
    }

    #[tokio::test]
    async fn a_feed_wakes_on_a_newer_id_only() {
        let feed = Feed::new(5);
        let mut listener = feed.clone();
        feed.stored(3);
        feed.stored(5);
        assert_eq!(listener.latest(), 5);
        let woke = tokio::time::timeout(Duration::from_millis(50), listener.changed()).await;
        assert!(woke.is_err(), "no newer id was stored");
        feed.stored(9);
        assert_eq!(listener.changed().await, 9);
        assert_eq!(feed.latest(), 9);
    }
}
