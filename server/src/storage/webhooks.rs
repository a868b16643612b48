//! What webhooks keep in storage: the endpoints, a durable outbox of deliveries, and the
//! delivery log. [`WebhookStore`] is implemented by both backends (`sqlite/webhooks.rs`,
//! `postgres/webhooks.rs`); `Storage::webhooks` hands it out.
//!
//! The outbox: each endpoint keeps a cursor into the change feed. Moving the cursor and
//! inserting the deliveries of the events it passes are one transaction, and the move is a
//! compare-and-set (`advance`), so each event is queued once per endpoint even when several
//! instances read the feed. A delivery is sent by whoever claims it (`claim_due`): a claim
//! names its holder and expires, so one instance sends each delivery at a time, and a claim
//! left by a dead process lapses.

use super::StorageError;
use async_trait::async_trait;
use funnel_protocol::BoardId;

/// An endpoint that receives events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    /// The boards whose events it receives; empty: every board.
    pub boards: Vec<BoardId>,
    /// `whsec_` and the base64 of the key that signs its deliveries.
    pub secret: String,
    /// The secret before the last rotation, which signs too until `previous_until`.
    pub previous_secret: Option<String>,
    /// Milliseconds since the Unix epoch; 0 without a previous secret.
    pub previous_until: i64,
    /// Why and since when nothing is sent to it (a 410 answer), if it is disabled.
    pub disabled: Option<Disabled>,
    /// The id of the last change event it has queued (or skipped as not its own).
    pub cursor: i64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub reason: String,
}

impl Endpoint {
    /// Whether it receives an event of type `kind` on `board`.
    pub fn wants(&self, kind: &str, board: &BoardId) -> bool {
        (self.events.is_empty() || self.events.iter().any(|e| e == kind))
            && (self.boards.is_empty() || self.boards.contains(board))
    }

    /// The secrets that sign a delivery made at `now`: the current one, then the previous one
    /// while its overlap lasts.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some(previous) = &self.previous_secret
            && now < self.previous_until
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// A delivery to queue: one event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The change event's id (the `webhook-id`).
    pub event: i64,
    /// The body to send, `{type, timestamp, data}`: fixed when queued, so every attempt sends
    /// (and signs) the same bytes, even after the event left the feed's retention.
    pub payload: String,
}

/// A delivery claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub endpoint: String,
    pub event: i64,
    /// Attempts made before this one.
    pub attempt: u32,
    pub payload: String,
    /// The claim that holds it: only its holder finishes it.
    pub claim: String,
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Another attempt is scheduled.
    Retry,
    /// The last attempt of the schedule failed: no more are made.
    Failed,
    /// The receiver answered 410 Gone: the endpoint is disabled.
    Disabled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
            Outcome::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "delivered" => Outcome::Delivered,
            "retry" => Outcome::Retry,
            "failed" => Outcome::Failed,
            "disabled" => Outcome::Disabled,
            _ => return None,
        })
    }
}

/// One attempt as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Increasing; pages of the log go by id (0 before it is stored).
    pub id: i64,
    pub endpoint: String,
    pub delivery: i64,
    pub event: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// From sending the request to the end of the answer's headers (or the failure).
    pub latency_ms: i64,
    /// Why it failed, when no answer came (a timeout, a refused connection, a private address).
    pub error: Option<String>,
    pub outcome: Outcome,
    /// Milliseconds since the Unix epoch, when it was made.
    pub at: i64,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    /// Another attempt at this time (milliseconds since the Unix epoch).
    RetryAt(i64),
    Failed,
    /// Disable the endpoint for this reason, and cancel its other pending deliveries.
    Disable(String),
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new endpoint.
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<(), StorageError>;

    /// Every endpoint, oldest first.
    async fn endpoints(&self) -> Result<Vec<Endpoint>, StorageError>;

    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StorageError>;

    /// Changes an endpoint's url, event types and boards; false when there is no such one.
    async fn edit_endpoint(
        &self,
        id: &str,
        url: &str,
        events: &[String],
        boards: &[BoardId],
    ) -> Result<bool, StorageError>;

    /// Enables the endpoint with its cursor moved to `cursor` (what it missed while disabled is
    /// not sent; a replay sends it); false when there is no such endpoint.
    async fn enable(&self, id: &str, cursor: i64) -> Result<bool, StorageError>;

    /// Disables the endpoint and cancels its pending deliveries; false when there is no such
    /// endpoint.
    async fn disable(&self, id: &str, disabled: &Disabled) -> Result<bool, StorageError>;

    /// Makes `secret` the endpoint's secret and its current one the previous one, which still
    /// signs until `previous_until`. One statement: two rotations at once keep one of them
    /// whole. False when there is no such endpoint.
    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: i64,
    ) -> Result<bool, StorageError>;

    /// Deletes an endpoint with its deliveries and its log; false when there was none.
    async fn delete_endpoint(&self, id: &str) -> Result<bool, StorageError>;

    /// Moves the endpoint's cursor from `from` to `to` and queues `deliveries` (due at `now`),
    /// in one transaction, only if the cursor is still at `from` and the endpoint enabled:
    /// false when another reader moved it first (then nothing is queued).
    async fn advance(
        &self,
        endpoint: &str,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<bool, StorageError>;

    /// Queues `deliveries` again (a replay), due at `now`, whatever the cursor.
    async fn requeue(
        &self,
        endpoint: &str,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<(), StorageError>;

    /// Claims up to `limit` pending deliveries of enabled endpoints due by `now` and not
    /// claimed by anyone else (or whose claim lapsed), for `claim` until `until`. Across
    /// instances no delivery is claimed twice at once (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    async fn claim_due(
        &self,
        now: i64,
        claim: &str,
        until: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StorageError>;

    /// Records an attempt in the log and what follows it. The delivery changes only while
    /// `delivery.claim` still holds it (a lapsed claim taken by another instance wins); the log
    /// keeps the attempt either way.
    async fn finish(
        &self,
        delivery: &Delivery,
        attempt: &AttemptRecord,
        next: &NextStep,
    ) -> Result<(), StorageError>;

    /// An endpoint's log, newest first: up to `limit` attempts with an id below `before`.
    async fn attempts(
        &self,
        endpoint: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StorageError>;

    /// Pending deliveries of enabled endpoints (the queue's depth), and the earliest time one
    /// of them is due.
    async fn queue(&self) -> Result<(u64, Option<i64>), StorageError>;

    /// Deletes finished deliveries and log entries older than `before`; returns how many.
    async fn sweep_deliveries(&self, before: i64) -> Result<u64, StorageError>;
}
