//! Signed webhooks: every change event a board's feed stores is delivered to the endpoints that
//! want it, per the Standard Webhooks specification (docs/webhooks.md).
//!
//! The path of an event: the change feed stores it with the update that caused it; the worker
//! ([`worker`]) of any instance moves each endpoint's cursor past it and queues a delivery for
//! every endpoint that wants it, in one transaction (storage's outbox, `storage/webhooks.rs`);
//! then one instance claims the delivery, signs it and posts it, and records the attempt: a
//! 2xx delivers it, a 410 disables the endpoint, anything else is retried on the schedule
//! ([`retry`]) until it fails. A process killed meanwhile leaves the delivery in storage, where
//! the next worker finds it.
//!
//! Modules: [`address`] (the private-address rule and the resolver that enforces it),
//! [`signing`] (secrets and signatures), [`retry`] (the schedule), [`worker`] (the delivery
//! loop). The admin API is `api/webhooks.rs`.

pub mod address;
pub mod retry;
pub mod signing;
pub mod worker;

use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The event types an endpoint may ask for: the change feed's (docs/events.md).
pub use crate::feed::TYPES as EVENT_TYPES;

/// What the webhook flags set (`--webhook-*`), shared by the API and the worker.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `--webhook-allow-private`: internal addresses may be called.
    pub allow_private: bool,
    /// `--webhook-timeout`: how long a receiver has to answer.
    pub timeout: Duration,
    /// `--webhook-retry-scale`: a factor on the retry schedule.
    pub retry_scale: f64,
    /// `--webhook-secret-overlap`: how long a rotated-out secret still signs.
    pub secret_overlap: Duration,
}

impl WebhookSettings {
    pub fn from_config(config: &crate::config::ServeConfig) -> Self {
        Self {
            allow_private: config.webhook_allow_private,
            timeout: config.webhook_timeout,
            retry_scale: config.webhook_retry_scale,
            secret_overlap: config.webhook_secret_overlap,
        }
    }
}

/// What the API holds of webhooks: the settings, and a way to wake this instance's worker when
/// it queued something (a replay) or changed an endpoint, instead of waiting for its next poll.
#[derive(Clone)]
pub struct Webhooks {
    pub settings: Arc<WebhookSettings>,
    /// The worker waits on it (with the feed and its timers).
    pub wake: Arc<Notify>,
}

impl Webhooks {
    pub fn new(settings: WebhookSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Makes the worker look at the outbox now.
    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }
}

/// A delivery's body, `{type, timestamp, data}`: the change event as the feed lists it, less
/// its id (which travels as `webhook-id`). `timestamp` is when the change was stored, in
/// milliseconds since the Unix epoch like every time funnel writes.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub timestamp: i64,
    pub data: &'a serde_json::Value,
}

impl<'a> Payload<'a> {
    pub fn new(kind: &'a str, timestamp: i64, data: &'a serde_json::Value) -> Self {
        Self {
            kind,
            timestamp,
            data,
        }
    }

    /// The body's bytes, exactly as they are signed and sent.
    pub fn to_body(&self) -> String {
        // A struct of strings, a number and a JSON value always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_type_timestamp_and_data() {
        let data = serde_json::json!({"boardId": "b", "cardId": "c"});
        let body = Payload::new("card.moved", 1_700_000_000_123, &data).to_body();
        assert_eq!(
            body,
            r#"{"type":"card.moved","timestamp":1700000000123,"data":{"boardId":"b","cardId":"c"}}"#
        );
    }
}
