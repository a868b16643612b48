//! Prometheus metrics at `/metrics` (OpenMetrics text format): what an operator watches. One
//! [`Metrics`] per server, passed down in the contexts (no globals, so several servers in one
//! test process keep their own counts).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The WebSocket close code the server sent.
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailLabels {
    /// `created`, `appended`, `duplicate`, or why it was refused: `malformed`, `too_large`,
    /// `no_board`, `in_flight`, `board_full`, `rate_limited`, `refused`, `storage`, `busy`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookOutcomeLabels {
    /// `delivered`, `retry`, `failed` or `disabled`.
    pub outcome: String,
}

#[derive(Clone)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Boards loaded in memory (rooms).
    pub rooms: Gauge,
    /// Loaded boards that let go of their document while quiet (hibernating rooms).
    pub rooms_hibernating: Gauge,
    /// Hibernating rooms that took their board back from storage (a command, a bus update, a
    /// wake-up).
    pub room_wakes: Counter,
    /// Binary frames received from clients.
    pub frames_received: Counter,
    /// Document updates stored (then relayed).
    pub updates_stored: Counter,
    /// Storage appends (one per room batch; the SQLite writer groups them further).
    pub store_batches: Counter,
    /// Boards the scheduler woke up for their reminders.
    pub scheduler_wakeups: Counter,
    /// Boards with a wake-up pending in this instance's scheduler (its queue).
    pub scheduler_queue: Gauge,
    /// How late, in milliseconds, the scheduler took its last due board (0 when on time): a
    /// growing value is a scheduler that cannot keep up.
    pub scheduler_late_ms: Gauge,
    /// Connections the server closed, by close code (1013: slow consumers).
    pub closes: Family<CloseLabels, Counter>,
    /// Messages this instance handed to the cluster bus.
    pub bus_published: Counter,
    /// Bus messages from other instances delivered to this instance's subscriptions.
    pub bus_received: Counter,
    /// Bus messages dropped (a full publish queue, Redis unreachable, a subscriber behind):
    /// recovered from storage, never lost.
    pub bus_dropped: Counter,
    /// Bus messages that did not decode (garbage, or a version this instance does not know).
    pub bus_malformed: Counter,
    /// From another instance handing a message to the bus to this one receiving it (publish
    /// queue, Redis, subscription): by the two machines' wall clocks.
    pub bus_lag_seconds: Histogram,
    /// Connections waiting for their turn to join (a reconnect storm): see
    /// `connection::JOINS_AT_ONCE`.
    pub joins_waiting: Gauge,
    /// Catch-ups of a loaded board from the storage log (a lost or out-of-order bus message, a
    /// bus gap, the periodic check), cluster only.
    pub catch_ups: Counter,
    /// Signals from storage that some instance stored change events (PostgreSQL's
    /// notifications), each waking this instance's event streams and webhook deliveries.
    pub feed_signals: Counter,
    /// Updates of counters and avatars this instance stored as a board's scheduler.
    pub upkeep_writes: Counter,
    /// Scheduler writes refused by storage because a newer lease holder wrote (fencing).
    pub upkeep_fenced: Counter,
    /// Change events (the feed's) this instance stored with its updates.
    pub change_events: Counter,
    /// How long each room batch waited for storage before it could be relayed: the disk's part
    /// of every move's latency (a commit with its flush, under SQLite).
    pub store_seconds: Histogram,
    /// Inbound e-mails (API and SMTP), by what became of them.
    pub inbound_mail: Family<MailLabels, Counter>,
    /// Webhook deliveries waiting to be made (due now or scheduled for a retry), for enabled
    /// endpoints: the outbox's depth, shared by the cluster.
    pub webhook_queue_depth: Gauge,
    /// How long each webhook attempt took, from sending to the receiver's answer (or failure).
    pub webhook_delivery_seconds: Histogram,
    /// Webhook attempts this instance made, by outcome.
    pub webhook_attempts: Family<WebhookOutcomeLabels, Counter>,
    registry: Arc<Registry>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("funnel");
        let metrics = Self {
            connections: Gauge::default(),
            rooms: Gauge::default(),
            rooms_hibernating: Gauge::default(),
            room_wakes: Counter::default(),
            frames_received: Counter::default(),
            updates_stored: Counter::default(),
            store_batches: Counter::default(),
            scheduler_wakeups: Counter::default(),
            scheduler_queue: Gauge::default(),
            scheduler_late_ms: Gauge::default(),
            closes: Family::default(),
            bus_published: Counter::default(),
            bus_received: Counter::default(),
            bus_dropped: Counter::default(),
            bus_malformed: Counter::default(),
            joins_waiting: Gauge::default(),
            catch_ups: Counter::default(),
            feed_signals: Counter::default(),
            upkeep_writes: Counter::default(),
            upkeep_fenced: Counter::default(),
            change_events: Counter::default(),
            // 0.1 ms to 3.3 s.
            store_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            bus_lag_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            inbound_mail: Family::default(),
            webhook_queue_depth: Gauge::default(),
            // 1 ms to 33 s: beyond the longest timeout worth setting.
            webhook_delivery_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            webhook_attempts: Family::default(),
            registry: Arc::new(Registry::default()),
        };
        registry.register(
            "connections",
            "Open WebSocket connections",
            metrics.connections.clone(),
        );
        registry.register("rooms", "Boards loaded in memory", metrics.rooms.clone());
        registry.register(
            "frames_received",
            "Binary frames received from clients",
            metrics.frames_received.clone(),
        );
        registry.register(
            "updates_stored",
            "Document updates stored, then relayed",
            metrics.updates_stored.clone(),
        );
        registry.register(
            "store_batches",
            "Storage appends, one per room batch",
            metrics.store_batches.clone(),
        );
        registry.register(
            "scheduler_wakeups",
            "Boards woken up for their reminders",
            metrics.scheduler_wakeups.clone(),
        );
        registry.register(
            "closes",
            "Connections closed by the server, by close code",
            metrics.closes.clone(),
        );
        registry.register(
            "bus_published",
            "Messages handed to the cluster bus",
            metrics.bus_published.clone(),
        );
        registry.register(
            "bus_received",
            "Bus messages from other instances delivered to subscriptions",
            metrics.bus_received.clone(),
        );
        registry.register(
            "bus_dropped",
            "Bus messages dropped (queue full, Redis down, subscriber behind); recovered from storage",
            metrics.bus_dropped.clone(),
        );
        registry.register(
            "bus_malformed",
            "Bus messages that did not decode",
            metrics.bus_malformed.clone(),
        );
        registry.register(
            "joins_waiting",
            "Connections waiting for their turn to join (a reconnect storm)",
            metrics.joins_waiting.clone(),
        );
        registry.register(
            "rooms_hibernating",
            "Loaded boards whose quiet room dropped its document until the next command",
            metrics.rooms_hibernating.clone(),
        );
        registry.register(
            "room_wakes",
            "Hibernating rooms that reloaded their board from storage",
            metrics.room_wakes.clone(),
        );
        registry.register(
            "catch_ups",
            "Catch-ups of a loaded board from the storage log (cluster)",
            metrics.catch_ups.clone(),
        );
        registry.register(
            "feed_signals",
            "Signals from storage that an instance stored change events (cluster)",
            metrics.feed_signals.clone(),
        );
        registry.register(
            "upkeep_writes",
            "Counter and avatar updates stored by this instance as a board's scheduler",
            metrics.upkeep_writes.clone(),
        );
        registry.register(
            "change_events",
            "Change events this instance stored with the updates that made them",
            metrics.change_events.clone(),
        );
        registry.register(
            "upkeep_fenced",
            "Scheduler writes refused because a newer lease holder wrote",
            metrics.upkeep_fenced.clone(),
        );
        registry.register(
            "scheduler_queue",
            "Boards with a wake-up pending in this instance's scheduler",
            metrics.scheduler_queue.clone(),
        );
        registry.register(
            "scheduler_late_ms",
            "How late the scheduler took its last due board, in milliseconds",
            metrics.scheduler_late_ms.clone(),
        );
        registry.register(
            "bus_lag_seconds",
            "Time from another instance handing a message to the bus to this one receiving it",
            metrics.bus_lag_seconds.clone(),
        );
        registry.register(
            "store_seconds",
            "Time a room batch waited for storage before it was relayed",
            metrics.store_seconds.clone(),
        );
        registry.register(
            "inbound_mail",
            "Inbound e-mails (API and SMTP), by outcome",
            metrics.inbound_mail.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Webhook deliveries waiting to be made, for enabled endpoints",
            metrics.webhook_queue_depth.clone(),
        );
        registry.register(
            "webhook_delivery_seconds",
            "Time of each webhook attempt, from sending to the receiver's answer",
            metrics.webhook_delivery_seconds.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook attempts made by this instance, by outcome",
            metrics.webhook_attempts.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
