//! The cluster bus: two instances see each other's messages and never their own, in memory and
//! through a real Redis at 127.0.0.1:6379 (two `RedisBus`es, two sets of connections, as two
//! processes would have). Every test uses its own board ids, so parallel runs never collide, and
//! kills only connections it named itself.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use bytes::Bytes;
use funnel_protocol::BoardId;
use funnel_server::bus::memory::MemoryHub;
use funnel_server::bus::redis::{RedisBus, channel};
use funnel_server::bus::{Bus, BusEvent, BusMessage, BusPayload, BusStatus, Subscription};
use funnel_server::metrics::Metrics;
use std::time::{Duration, Instant};

const REDIS: &str = "redis://127.0.0.1:6379/";
/// The longest any expected event may take.
const WAIT: Duration = Duration::from_secs(5);
/// How long silence is watched for when nothing must arrive.
const QUIET: Duration = Duration::from_millis(300);

/// A board id no other test (or run) uses.
fn unique_board(test: &str) -> BoardId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    BoardId::parse(&format!("bus-{test}-{}-{nanos}", std::process::id())).unwrap()
}

fn updates(first_seq: u64, texts: &[&'static str]) -> BusPayload {
    BusPayload::Updates {
        first_seq,
        updates: texts
            .iter()
            .map(|t| Bytes::from_static(t.as_bytes()))
            .collect(),
    }
}

async fn next(subscription: &mut Subscription) -> BusEvent {
    tokio::time::timeout(WAIT, subscription.recv())
        .await
        .expect("no bus event in time")
        .expect("the bus shut down")
}

async fn next_message(subscription: &mut Subscription) -> BusMessage {
    match next(subscription).await {
        BusEvent::Message(message) => message,
        BusEvent::Gap => panic!("a gap where a message was expected"),
    }
}

async fn quiet(subscription: &mut Subscription) {
    if let Ok(event) = tokio::time::timeout(QUIET, subscription.recv()).await {
        panic!("expected nothing, got {event:?}");
    }
}

async fn started_bus(metrics: Metrics) -> RedisBus {
    let bus = RedisBus::start(REDIS, metrics).unwrap();
    wait_for("the bus to connect", || bus.status() == BusStatus::Up).await;
    bus
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// How many clients subscribe to `board`'s channel in Redis.
async fn redis_subscribers(board: &BoardId) -> i64 {
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel(board))
        .query_async(&mut redis().await)
        .await
        .unwrap();
    count
}

/// The id of the connection named `name` in `CLIENT LIST`.
async fn client_id(name: &str) -> Option<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    list.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.contains(&format!("name={name}").as_str()).then(|| {
            fields
                .iter()
                .find_map(|f| f.strip_prefix("id="))
                .unwrap()
                .to_string()
        })
    })
}

#[tokio::test]
async fn memory_instances_see_each_other_never_themselves() {
    let hub = MemoryHub::default();
    let (a, b) = (hub.bus(Metrics::new()), hub.bus(Metrics::new()));
    assert_ne!(a.instance(), b.instance());
    let board = BoardId::parse("memory").unwrap();
    let mut on_a = a.subscribe(&board).await;
    let mut on_b = b.subscribe(&board).await;
    a.publish(&board, updates(1, &["from a"]));
    b.publish(&board, updates(2, &["from b"]));
    let got = next_message(&mut on_b).await;
    assert_eq!(
        (got.origin, got.payload),
        (a.instance(), updates(1, &["from a"]))
    );
    let got = next_message(&mut on_a).await;
    assert_eq!(
        (got.origin, got.payload),
        (b.instance(), updates(2, &["from b"]))
    );
    quiet(&mut on_a).await;
    quiet(&mut on_b).await;
    assert_eq!(a.status(), BusStatus::Up);
}

#[tokio::test]
async fn redis_updates_cross_and_the_echo_is_dropped() {
    let board = unique_board("cross");
    let (a_metrics, b_metrics) = (Metrics::new(), Metrics::new());
    let a = started_bus(a_metrics.clone()).await;
    let b = started_bus(b_metrics.clone()).await;
    let mut on_a = a.subscribe(&board).await;
    let mut on_b = b.subscribe(&board).await;

    a.publish(&board, updates(7, &["one", "two"]));
    let got = next_message(&mut on_b).await;
    assert_eq!(got.origin, a.instance());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        (now_ms - WAIT.as_millis() as u64..=now_ms).contains(&got.sent_at_ms),
        "stamped when published: {} against now {now_ms}",
        got.sent_at_ms
    );
    assert_eq!(got.board, board);
    assert_eq!(got.payload, updates(7, &["one", "two"]));

    // Redis delivers a's own message back to a's connection; a published before b did, so if
    // the echo were not dropped it would come first.
    b.publish(&board, updates(9, &["three"]));
    let got = next_message(&mut on_a).await;
    assert_eq!(
        (got.origin, got.payload),
        (b.instance(), updates(9, &["three"]))
    );
    quiet(&mut on_a).await;
    quiet(&mut on_b).await;

    assert_eq!(a_metrics.bus_published.get(), 1);
    assert_eq!(b_metrics.bus_received.get(), 1);
    assert_eq!(a_metrics.bus_received.get(), 1);
    assert_eq!(a_metrics.bus_dropped.get() + b_metrics.bus_dropped.get(), 0);
    // Each receiver timed the one message it got from the other (its lag on this host).
    for metrics in [&a_metrics, &b_metrics] {
        let text = metrics.encode();
        assert!(
            text.lines().any(|l| l == "funnel_bus_lag_seconds_count 1"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn redis_awareness_crosses() {
    let board = unique_board("awareness");
    let a = started_bus(Metrics::new()).await;
    let b = started_bus(Metrics::new()).await;
    let mut on_b = b.subscribe(&board).await;
    let presence = Bytes::from_static(b"\x01\x8f\x02\x00\x02{}");
    a.publish(&board, BusPayload::Awareness(presence.clone()));
    let got = next_message(&mut on_b).await;
    assert_eq!(got.origin, a.instance());
    assert_eq!(got.payload, BusPayload::Awareness(presence));
}

#[tokio::test]
async fn redis_subscriptions_share_one_channel_and_dropping_unsubscribes() {
    let board = unique_board("share");
    let a = started_bus(Metrics::new()).await;
    let b = started_bus(Metrics::new()).await;
    let mut first = b.subscribe(&board).await;
    let mut second = b.subscribe(&board).await;
    assert_eq!(
        redis_subscribers(&board).await,
        1,
        "one Redis subscription per board"
    );

    a.publish(&board, updates(1, &["both"]));
    assert_eq!(
        next_message(&mut first).await.payload,
        updates(1, &["both"])
    );
    assert_eq!(
        next_message(&mut second).await.payload,
        updates(1, &["both"])
    );

    drop(first);
    a.publish(&board, updates(2, &["second only"]));
    assert_eq!(
        next_message(&mut second).await.payload,
        updates(2, &["second only"])
    );
    assert_eq!(redis_subscribers(&board).await, 1);

    drop(second);
    let start = Instant::now();
    while redis_subscribers(&board).await != 0 {
        assert!(start.elapsed() < WAIT, "the last drop did not unsubscribe");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Subscribing again works, and sees only what is published from then on.
    let mut again = b.subscribe(&board).await;
    a.publish(&board, updates(3, &["again"]));
    assert_eq!(
        next_message(&mut again).await.payload,
        updates(3, &["again"])
    );
    quiet(&mut again).await;
}

#[tokio::test]
async fn redis_a_subscription_sees_only_its_board() {
    let (mine, other) = (unique_board("mine"), unique_board("other"));
    let a = started_bus(Metrics::new()).await;
    let b = started_bus(Metrics::new()).await;
    let mut on_mine = b.subscribe(&mine).await;
    let mut on_other = b.subscribe(&other).await;
    a.publish(&other, updates(1, &["other"]));
    a.publish(&mine, updates(1, &["mine"]));
    let got = next_message(&mut on_mine).await;
    assert_eq!((got.board, got.payload), (mine, updates(1, &["mine"])));
    let got = next_message(&mut on_other).await;
    assert_eq!((got.board, got.payload), (other, updates(1, &["other"])));
    quiet(&mut on_mine).await;
}

#[tokio::test]
async fn redis_malformed_messages_are_counted_and_skipped() {
    let board = unique_board("malformed");
    let a = started_bus(Metrics::new()).await;
    let b_metrics = Metrics::new();
    let b = started_bus(b_metrics.clone()).await;
    let mut on_b = b.subscribe(&board).await;
    let mut raw = redis().await;
    for garbage in [&b""[..], b"\x02future version", b"\x01\x01truncated"] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel(&board))
            .arg(garbage)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    a.publish(&board, updates(5, &["fine"]));
    assert_eq!(next_message(&mut on_b).await.payload, updates(5, &["fine"]));
    assert_eq!(b_metrics.bus_malformed.get(), 3);
    assert_eq!(b_metrics.bus_received.get(), 1);
}

/// Redis is not restarted (other work shares it): killing this bus's own subscriber connection
/// takes the same path as an outage.
#[tokio::test]
async fn redis_a_lost_connection_is_a_gap_then_delivery_resumes() {
    let board = unique_board("reconnect");
    let a = started_bus(Metrics::new()).await;
    let b = started_bus(Metrics::new()).await;
    let mut on_b = b.subscribe(&board).await;
    a.publish(&board, updates(1, &["before"]));
    assert_eq!(
        next_message(&mut on_b).await.payload,
        updates(1, &["before"])
    );

    let name = b.subscriber_connection_name();
    let id = client_id(&name)
        .await
        .expect("the subscriber connection is named");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .arg("ID")
        .arg(&id)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert_eq!(killed, 1, "exactly our own connection is killed");

    wait_for("the bus to notice", || b.status() != BusStatus::Up).await;
    let BusStatus::Down { since } = b.status() else {
        panic!("not down");
    };
    assert!(since.elapsed().unwrap() < WAIT);
    wait_for("the bus to reconnect", || b.status() == BusStatus::Up).await;
    assert_eq!(next(&mut on_b).await, BusEvent::Gap);
    assert_ne!(client_id(&name).await, Some(id), "a new connection");
    assert_eq!(redis_subscribers(&board).await, 1, "resubscribed");

    a.publish(&board, updates(2, &["after"]));
    assert_eq!(
        next_message(&mut on_b).await.payload,
        updates(2, &["after"])
    );
}

#[tokio::test]
async fn redis_a_bus_that_cannot_reach_redis_keeps_running() {
    // Nothing listens on port 1.
    let bus = RedisBus::start("redis://127.0.0.1:1/", Metrics::new()).unwrap();
    let board = unique_board("unreachable");
    let mut subscription = bus.subscribe(&board).await;
    bus.publish(&board, updates(1, &["nowhere"]));
    assert!(matches!(bus.status(), BusStatus::Down { .. }));
    quiet(&mut subscription).await;
    drop(bus);
    let ended = tokio::time::timeout(WAIT, subscription.recv())
        .await
        .unwrap();
    assert_eq!(ended, None, "a stopped bus ends its subscriptions");
}

/// The periodic health check (a `PING` every 5 s on both connections) must keep a quiet,
/// subscribed connection as it is: no reconnect, no gap.
#[tokio::test]
async fn redis_a_quiet_connection_survives_its_health_checks() {
    let board = unique_board("quiet");
    let a = started_bus(Metrics::new()).await;
    let b = started_bus(Metrics::new()).await;
    let mut on_b = b.subscribe(&board).await;
    let subscriber = client_id(&b.subscriber_connection_name()).await.unwrap();
    let publisher = client_id(&a.publisher_connection_name()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(b.status(), BusStatus::Up);
    assert_eq!(
        client_id(&b.subscriber_connection_name()).await,
        Some(subscriber)
    );
    assert_eq!(
        client_id(&a.publisher_connection_name()).await,
        Some(publisher)
    );
    a.publish(&board, updates(1, &["still here"]));
    assert_eq!(
        next_message(&mut on_b).await.payload,
        updates(1, &["still here"])
    );
}
