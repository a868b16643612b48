//! The production bus: Redis pub/sub, one channel per board (`funnel:board:{id}`).
//!
//! Two connections per process, each owned by one task:
//! - the publisher task drains a bounded queue ([`PUBLISH_QUEUE`]) and sends what it holds as
//!   one pipeline of `PUBLISH`es, so `publish` never waits for Redis;
//! - the subscriber task owns the subscription set: it keeps the Redis subscriptions in step
//!   with the boards that have local subscribers (one Redis subscription per board, however many
//!   local subscriptions share it), decodes what arrives, drops its own echo and fans out.
//!
//! The subscriber connection speaks RESP3, where pub/sub messages arrive as pushes on a regular
//! connection (so it can also be named with `CLIENT SETNAME` and pinged): it needs Redis 6 or
//! later. Connections are named `funnel-bus-sub-{instance}` and `funnel-bus-pub-{instance}`.
//!
//! Redis down or restarted: the process keeps running (the room serves its own clients without
//! the bus), logs once at warn when the bus goes down and at info when it is back, reconnects
//! with exponential backoff ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`]), resubscribes every
//! board and then sends [`BusEvent::Gap`](super::BusEvent::Gap) to every subscription.

use super::{Bus, BusMessage, BusPayload, BusStatus, Fanout, InstanceId, Subscription};
use crate::metrics::Metrics;
use async_trait::async_trait;
use bytes::Bytes;
use funnel_protocol::BoardId;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The prefix of a board's channel: `funnel:board:{board id}`.
pub const CHANNEL_PREFIX: &str = "funnel:board:";

/// Messages waiting for the publisher task. When it is full (Redis slow or down) a publish is
/// dropped, counted in `bus_dropped` and logged at debug: every instance catches up from the
/// shared storage log, so a lost publish costs latency, never data.
pub const PUBLISH_QUEUE: usize = 4096;

/// Most messages sent in one pipeline: one round trip for a burst, a bounded one.
const PUBLISH_BATCH: usize = 128;

/// Pushes (pub/sub messages) waiting between the Redis connection and the subscriber task.
/// When full, further messages are lost and every subscription gets a gap (which board lost
/// one cannot be told).
const INTAKE_QUEUE: usize = 4096;

/// First wait before reconnecting; doubles after each failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts: Redis back within 5 s is noticed within 5 s.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A connection whose peer vanished without closing it (a host gone, a cable pulled) delivers
/// no EOF; a `PING` this often finds out, within this interval plus [`RESPONSE_TIMEOUT`].
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long a command may take before the connection is considered broken. Redis answers in
/// well under a millisecond; seconds mean it is gone or stuck.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long `subscribe` waits for Redis to confirm a new board's subscription before it returns
/// anyway (the subscription then gets a gap once it is active).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// A board's channel.
pub fn channel(board: &BoardId) -> String {
    format!("{CHANNEL_PREFIX}{board}")
}

#[derive(Debug, thiserror::Error)]
pub enum RedisBusError {
    #[error("invalid redis url: {0}; use redis://host:port/")]
    Url(#[source] redis::RedisError),
}

/// The bus over Redis. Create it inside a tokio runtime; dropping it stops its tasks (and every
/// subscription's `recv` then returns `None`).
pub struct RedisBus {
    instance: InstanceId,
    fanout: Arc<Fanout>,
    /// The publisher task holds the receiving end.
    publish: mpsc::Sender<BusMessage>,
    health: Arc<Health>,
    metrics: Metrics,
    shutdown: CancellationToken,
}

impl RedisBus {
    /// Starts the bus on `url` (`redis://host:port/db`). Does not wait for Redis: the bus is
    /// [`BusStatus::Down`] until it connects, and keeps trying.
    pub fn start(url: &str, metrics: Metrics) -> Result<Self, RedisBusError> {
        let info = url.into_connection_info().map_err(RedisBusError::Url)?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let subscriber_client = redis::Client::open(info.clone().set_redis_settings(resp3))
            .map_err(RedisBusError::Url)?;
        let publisher_client = redis::Client::open(info).map_err(RedisBusError::Url)?;
        let instance = InstanceId::random();
        let fanout = Arc::new(Fanout::new(false));
        let health = Arc::new(Health::new());
        let shutdown = CancellationToken::new();
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(run_publisher(
            Publisher {
                client: publisher_client,
                name: publisher_name(instance),
                health: Arc::clone(&health),
                metrics: metrics.clone(),
                shutdown: shutdown.clone(),
            },
            queue,
        ));
        tokio::spawn(run_subscriber(Subscriber {
            client: subscriber_client,
            name: subscriber_name(instance),
            instance,
            fanout: Arc::clone(&fanout),
            health: Arc::clone(&health),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        }));
        Ok(Self {
            instance,
            fanout,
            publish,
            health,
            metrics,
            shutdown,
        })
    }

    /// The `CLIENT SETNAME` of the subscriber connection (operators find it in `CLIENT LIST`).
    pub fn subscriber_connection_name(&self) -> String {
        subscriber_name(self.instance)
    }

    /// The `CLIENT SETNAME` of the publisher connection.
    pub fn publisher_connection_name(&self) -> String {
        publisher_name(self.instance)
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn instance(&self) -> InstanceId {
        self.instance
    }

    fn publish(&self, board: &BoardId, payload: BusPayload) {
        let message = BusMessage {
            origin: self.instance,
            sent_at_ms: super::wall_clock_ms(),
            board: board.clone(),
            payload,
        };
        if let Err(e) = self.publish.try_send(message) {
            // Full (Redis slow or down) or closed (shutting down): see `PUBLISH_QUEUE`.
            self.metrics.bus_dropped.inc();
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "bus stopped",
            };
            tracing::debug!(board = %board, reason, "bus publish dropped; others catch up from storage");
        }
    }

    async fn subscribe(&self, board: &BoardId) -> Subscription {
        let (subscription, mut active, id) = self.fanout.register(board, self.instance);
        let activated = self.status() == BusStatus::Up
            && tokio::time::timeout(SUBSCRIBE_WAIT, active.wait_for(|active| *active))
                .await
                .is_ok_and(|waited| waited.is_ok());
        if !activated {
            self.fanout.gap_when_active(board, id);
        }
        subscription
    }

    fn status(&self) -> BusStatus {
        self.health.status()
    }
}

fn subscriber_name(instance: InstanceId) -> String {
    format!("funnel-bus-sub-{instance}")
}

fn publisher_name(instance: InstanceId) -> String {
    format!("funnel-bus-pub-{instance}")
}

/// Whether both connections are up, and the one log line per transition.
struct Health {
    state: Mutex<HealthState>,
}

struct HealthState {
    subscriber_up: bool,
    publisher_up: bool,
    /// When the bus (either connection) went down; at start, when the bus was created.
    down_since: Option<SystemTime>,
    /// Whether the current outage was logged (once per outage).
    outage_logged: bool,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Subscriber,
    Publisher,
}

impl Health {
    fn new() -> Self {
        Self {
            state: Mutex::new(HealthState {
                subscriber_up: false,
                publisher_up: false,
                down_since: Some(SystemTime::now()),
                outage_logged: false,
            }),
        }
    }

    fn status(&self) -> BusStatus {
        match self.lock().down_since {
            None => BusStatus::Up,
            Some(since) => BusStatus::Down { since },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn up(&self, role: Role) {
        let mut state = self.lock();
        match role {
            Role::Subscriber => state.subscriber_up = true,
            Role::Publisher => state.publisher_up = true,
        }
        if state.subscriber_up
            && state.publisher_up
            && let Some(since) = state.down_since.take()
        {
            let down_for = since.elapsed().unwrap_or_default();
            state.outage_logged = false;
            tracing::info!(down_for = ?down_for, "cluster bus connected to redis");
        }
    }

    fn down(&self, role: Role, error: &dyn std::fmt::Display) {
        let mut state = self.lock();
        match role {
            Role::Subscriber => state.subscriber_up = false,
            Role::Publisher => state.publisher_up = false,
        }
        if state.down_since.is_none() {
            state.down_since = Some(SystemTime::now());
        }
        if !state.outage_logged {
            state.outage_logged = true;
            tracing::warn!(
                connection = ?role,
                error = %error,
                "cluster bus lost redis: serving local clients only, retrying \
                 (instances catch up from storage when it is back)"
            );
        } else {
            tracing::debug!(connection = ?role, error = %error, "cluster bus still down");
        }
    }
}

struct Publisher {
    client: redis::Client,
    name: String,
    health: Arc<Health>,
    metrics: Metrics,
    shutdown: CancellationToken,
}

async fn run_publisher(publisher: Publisher, mut queue: mpsc::Receiver<BusMessage>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = tokio::select! {
            () = publisher.shutdown.cancelled() => return,
            connected = connect(&publisher.client, &publisher.name, None::<fn(PushInfo) -> Result<(), ()>>) => connected,
        };
        match connected {
            Ok(mut conn) => {
                backoff = BACKOFF_MIN;
                publisher.health.up(Role::Publisher);
                match serve_publisher(&publisher, &mut conn, &mut queue).await {
                    None => return,
                    Some(e) => publisher.health.down(Role::Publisher, &e),
                }
            }
            Err(e) => publisher.health.down(Role::Publisher, &e),
        }
        tokio::select! {
            () = publisher.shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Publishes until shutdown (`None`) or a connection error.
async fn serve_publisher(
    publisher: &Publisher,
    conn: &mut MultiplexedConnection,
    queue: &mut mpsc::Receiver<BusMessage>,
) -> Option<redis::RedisError> {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    let mut health_check = health_check_interval();
    loop {
        tokio::select! {
            () = publisher.shutdown.cancelled() => return None,
            received = queue.recv_many(&mut batch, PUBLISH_BATCH) => {
                if received == 0 {
                    return None;
                }
                let mut pipe = redis::pipe();
                for message in batch.drain(..) {
                    pipe.cmd("PUBLISH")
                        .arg(channel(&message.board))
                        .arg(super::encode(&message).as_ref())
                        .ignore();
                }
                match pipe.query_async::<()>(conn).await {
                    Ok(()) => {
                        publisher.metrics.bus_published.inc_by(received as u64);
                    }
                    Err(e) => {
                        // Some may have gone out; the receivers dedupe by seq either way.
                        publisher.metrics.bus_dropped.inc_by(received as u64);
                        tracing::debug!(count = received, error = %e, "bus publishes lost");
                        return Some(e);
                    }
                }
            }
            _ = health_check.tick() => {
                if let Err(e) = ping(conn).await {
                    return Some(e);
                }
            }
        }
    }
}

struct Subscriber {
    client: redis::Client,
    name: String,
    instance: InstanceId,
    fanout: Arc<Fanout>,
    health: Arc<Health>,
    metrics: Metrics,
    shutdown: CancellationToken,
}

/// What the connection's push callback hands to the subscriber task.
struct Intake {
    /// The callback holds the sending end; bounded ([`INTAKE_QUEUE`]).
    pushes: mpsc::Receiver<PushInfo>,
    /// Set by the callback when `pushes` was full and a message was lost.
    overflowed: Arc<AtomicBool>,
    /// Cancelled by the callback when the library reports the connection closed.
    disconnected: CancellationToken,
}

async fn run_subscriber(subscriber: Subscriber) {
    let mut backoff = BACKOFF_MIN;
    let mut connected_before = false;
    loop {
        let (tx, pushes) = mpsc::channel(INTAKE_QUEUE);
        let intake = Intake {
            pushes,
            overflowed: Arc::new(AtomicBool::new(false)),
            disconnected: CancellationToken::new(),
        };
        let overflowed = Arc::clone(&intake.overflowed);
        let disconnected = intake.disconnected.clone();
        // Runs on the connection's driver: must not block, so it only tries to queue.
        let on_push = move |info: PushInfo| -> Result<(), ()> {
            if matches!(info.kind, PushKind::Disconnection) {
                disconnected.cancel();
                return Ok(());
            }
            tx.try_send(info).map_err(|_| {
                overflowed.store(true, Ordering::Release);
            })
        };
        let connected = tokio::select! {
            () = subscriber.shutdown.cancelled() => break,
            connected = connect(&subscriber.client, &subscriber.name, Some(on_push)) => connected,
        };
        match connected {
            Ok(mut conn) => {
                backoff = BACKOFF_MIN;
                subscriber.health.up(Role::Subscriber);
                let reconnected = std::mem::replace(&mut connected_before, true);
                let ended = serve_subscriber(&subscriber, &mut conn, intake, reconnected).await;
                subscriber.fanout.set_active(&HashSet::new());
                match ended {
                    None => break,
                    Some(e) => subscriber.health.down(Role::Subscriber, &e),
                }
            }
            Err(e) => subscriber.health.down(Role::Subscriber, &e),
        }
        tokio::select! {
            () = subscriber.shutdown.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    subscriber.fanout.close();
}

/// Why the subscriber connection ended (`None`: shutdown).
#[derive(Debug, thiserror::Error)]
enum SubscriberEnded {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("redis closed the connection")]
    Closed,
}

async fn serve_subscriber(
    subscriber: &Subscriber,
    conn: &mut MultiplexedConnection,
    mut intake: Intake,
    reconnected: bool,
) -> Option<SubscriberEnded> {
    let mut subscribed = HashSet::new();
    if let Err(e) = reconcile(subscriber, conn, &mut subscribed).await {
        return Some(e.into());
    }
    if reconnected {
        // Subscribed again first, so that nothing published after the catch-up starts is missed.
        subscriber.fanout.gap_all();
    }
    let mut health_check = health_check_interval();
    loop {
        let ended = tokio::select! {
            () = subscriber.shutdown.cancelled() => return None,
            () = intake.disconnected.cancelled() => Some(SubscriberEnded::Closed),
            () = subscriber.fanout.changed.notified() => {
                reconcile(subscriber, conn, &mut subscribed).await.err().map(Into::into)
            }
            push = intake.pushes.recv() => match push {
                Some(push) => {
                    handle_push(subscriber, push);
                    None
                }
                None => Some(SubscriberEnded::Closed),
            },
            _ = health_check.tick() => ping(conn).await.err().map(Into::into),
        };
        if intake.overflowed.swap(false, Ordering::AcqRel) {
            subscriber.metrics.bus_dropped.inc();
            tracing::warn!("cluster bus intake full: messages lost, every board catches up");
            subscriber.fanout.gap_all();
        }
        if ended.is_some() {
            return ended;
        }
    }
}

/// Makes the Redis subscriptions match the boards that have local subscribers.
async fn reconcile(
    subscriber: &Subscriber,
    conn: &mut MultiplexedConnection,
    subscribed: &mut HashSet<BoardId>,
) -> Result<(), redis::RedisError> {
    let wanted: HashSet<BoardId> = subscriber.fanout.boards().into_iter().collect();
    let to_subscribe: Vec<&BoardId> = wanted.difference(subscribed).collect();
    if !to_subscribe.is_empty() {
        let channels: Vec<String> = to_subscribe.iter().map(|b| channel(b)).collect();
        conn.subscribe(&channels).await?;
    }
    let to_unsubscribe: Vec<&BoardId> = subscribed.difference(&wanted).collect();
    if !to_unsubscribe.is_empty() {
        let channels: Vec<String> = to_unsubscribe.iter().map(|b| channel(b)).collect();
        conn.unsubscribe(&channels).await?;
    }
    *subscribed = wanted;
    subscriber.fanout.set_active(subscribed);
    Ok(())
}

fn handle_push(subscriber: &Subscriber, push: PushInfo) {
    if !matches!(push.kind, PushKind::Message) {
        return; // subscribe confirmations and the like
    }
    let mut data = push.data.into_iter();
    let (Some(redis::Value::BulkString(name)), Some(redis::Value::BulkString(raw))) =
        (data.next(), data.next())
    else {
        subscriber.metrics.bus_malformed.inc();
        tracing::debug!("bus push without a channel and a payload skipped");
        return;
    };
    let raw = Bytes::from(raw);
    let message = match super::decode(&raw) {
        Ok(message) => message,
        Err(e) => {
            subscriber.metrics.bus_malformed.inc();
            tracing::debug!(channel = %String::from_utf8_lossy(&name), error = %e, "bus message skipped");
            return;
        }
    };
    if message.origin == subscriber.instance {
        return; // our own echo
    }
    if name.strip_prefix(CHANNEL_PREFIX.as_bytes()) != Some(message.board.as_str().as_bytes()) {
        subscriber.metrics.bus_malformed.inc();
        tracing::debug!(channel = %String::from_utf8_lossy(&name), board = %message.board,
            "bus message for another board than its channel skipped");
        return;
    }
    if message.sent_at_ms > 0 {
        let lag_ms = super::wall_clock_ms().saturating_sub(message.sent_at_ms);
        subscriber
            .metrics
            .bus_lag_seconds
            .observe(lag_ms as f64 / 1000.0);
    }
    let outcome = subscriber.fanout.deliver(&message);
    subscriber
        .metrics
        .bus_received
        .inc_by(outcome.delivered as u64);
    if outcome.dropped > 0 {
        subscriber
            .metrics
            .bus_dropped
            .inc_by(outcome.dropped as u64);
        tracing::debug!(board = %message.board, subscribers = outcome.dropped,
            "bus subscribers behind: message dropped, they catch up from storage");
    }
}

/// Opens a connection named `name`; with `on_push`, a RESP3 one whose pushes go there.
async fn connect(
    client: &redis::Client,
    name: &str,
    on_push: Option<impl Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static>,
) -> Result<MultiplexedConnection, redis::RedisError> {
    let mut config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    if let Some(on_push) = on_push {
        config = config.set_push_sender(on_push);
    }
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(conn)
}

async fn ping(conn: &mut MultiplexedConnection) -> Result<(), redis::RedisError> {
    redis::cmd("PING").query_async::<()>(conn).await
}

fn health_check_interval() -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(
        tokio::time::Instant::now() + HEALTH_CHECK_EVERY,
        HEALTH_CHECK_EVERY,
    );
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
