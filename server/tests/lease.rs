//! The distributed lease against a real Redis at 127.0.0.1:6379: one holder per board, tokens
//! that only grow, release on drop, renewal past the TTL, and a holder cut off from Redis that
//! gives the lease up before anyone else can take it. Two `RedisLeases` stand for two
//! instances; every test uses its own board ids.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use funnel_protocol::BoardId;
use funnel_server::bus::InstanceId;
use funnel_server::lease::redis::{LeaseTimings, RedisLeases, lease_key};
use funnel_server::lease::{Lease, Leases};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const REDIS: &str = "redis://127.0.0.1:6379/";
const WAIT: Duration = Duration::from_secs(10);

fn unique_board(test: &str) -> BoardId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    BoardId::parse(&format!("lease-{test}-{}-{nanos}", std::process::id())).unwrap()
}

fn leases_at(url: &str, ttl: Duration) -> RedisLeases {
    let timings = LeaseTimings {
        ttl,
        retry_busy_after: Duration::ZERO,
    };
    RedisLeases::new(url, InstanceId::random(), timings).unwrap()
}

fn leases(ttl: Duration) -> RedisLeases {
    leases_at(REDIS, ttl)
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The lease key's value and remaining time to live in milliseconds.
async fn stored(board: &BoardId) -> (Option<String>, i64) {
    let mut conn = redis().await;
    let value: Option<String> = redis::cmd("GET")
        .arg(lease_key(board))
        .query_async(&mut conn)
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(lease_key(board))
        .query_async(&mut conn)
        .await
        .unwrap();
    (value, pttl)
}

/// Retries `leases` until it hands out the board's lease (errors count as "not yet").
async fn acquire_within(leases: &RedisLeases, board: &BoardId, limit: Duration) -> Lease {
    let start = Instant::now();
    loop {
        if let Ok(Some(lease)) = leases.acquire(board).await {
            return lease;
        }
        assert!(
            start.elapsed() < limit,
            "lease not acquired within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_instances_race_and_exactly_one_holds_each_board() {
    let (a, b) = (
        leases(Duration::from_secs(10)),
        leases(Duration::from_secs(10)),
    );
    let mut held = Vec::new();
    for round in 0..10 {
        let board = unique_board(&format!("race{round}"));
        let (on_a, on_b) = tokio::join!(a.acquire(&board), b.acquire(&board));
        let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
        assert!(
            on_a.is_some() != on_b.is_some(),
            "round {round}: exactly one holder"
        );
        let lease = on_a.or(on_b).unwrap();
        assert!(lease.is_held());
        let (value, pttl) = stored(&board).await;
        assert!(value.unwrap().ends_with(&format!(":{}", lease.token())));
        assert!(pttl > 0);
        held.push(lease);
    }
}

#[tokio::test]
async fn dropping_the_lease_lets_the_other_instance_take_it_with_a_higher_token() {
    let board = unique_board("handover");
    // A long TTL: the handover must come from the release, not from expiry.
    let (a, b) = (
        leases(Duration::from_secs(30)),
        leases(Duration::from_secs(30)),
    );
    let first = a.try_acquire(&board).await.unwrap();
    assert!(b.try_acquire(&board).await.is_none());
    let first_token = first.token();
    drop(first);
    let second = acquire_within(&b, &board, Duration::from_secs(3)).await;
    assert!(second.token() > first_token);
    assert!(a.try_acquire(&board).await.is_none());
    drop(second);
    let third = acquire_within(&a, &board, Duration::from_secs(3)).await;
    assert!(third.token() > first_token + 1);
}

#[tokio::test]
async fn a_held_lease_is_renewed_past_its_ttl() {
    let board = unique_board("renewed");
    let ttl = Duration::from_millis(600);
    let (a, b) = (leases(ttl), leases(ttl));
    let lease = a.try_acquire(&board).await.unwrap();
    tokio::time::sleep(ttl * 3).await;
    assert!(lease.is_held());
    assert!(b.try_acquire(&board).await.is_none());
    let (value, pttl) = stored(&board).await;
    assert!(value.unwrap().ends_with(&format!(":{}", lease.token())));
    assert!(pttl > 0);
}

#[tokio::test]
async fn a_killed_connection_does_not_lose_the_lease() {
    let board = unique_board("blip");
    let ttl = Duration::from_millis(1500);
    let (a, b) = (leases(ttl), leases(ttl));
    let lease = a.try_acquire(&board).await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    let id = list
        .lines()
        .find(|line| line.contains(&format!("name={} ", a.connection_name())))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .expect("the lease connection is named")
        .to_string();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&id)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // The next renewal fails, the one after reconnects and succeeds, well within the TTL.
    tokio::time::sleep(ttl * 2).await;
    assert!(lease.is_held());
    assert!(b.try_acquire(&board).await.is_none());
}

/// A TCP proxy to Redis that can be cut: every connection through it closes and new ones are
/// refused, as in a network partition between one instance and Redis.
struct Proxy {
    url: String,
    cut: CancellationToken,
}

async fn proxy() -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let cut = CancellationToken::new();
    let stop = cut.clone();
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = tokio::select! {
                () = stop.cancelled() => return, // drops the listener: connections are refused
                accepted = listener.accept() => accepted.unwrap(),
            };
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect("127.0.0.1:6379").await.unwrap();
                tokio::select! {
                    () = stop.cancelled() => {}
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                }
            });
        }
    });
    Proxy { url, cut }
}

#[tokio::test]
async fn a_holder_cut_off_from_redis_reports_lost_before_its_ttl_ends() {
    let board = unique_board("partition");
    let ttl = Duration::from_secs(2);
    let proxy = proxy().await;
    let (a, b) = (leases_at(&proxy.url, ttl), leases(ttl));
    let lease = a.try_acquire(&board).await.unwrap();
    // Let one renewal go through the proxy first.
    tokio::time::sleep(ttl / 2).await;
    assert!(lease.is_held());

    proxy.cut.cancel();
    let cut_at = Instant::now();
    tokio::time::timeout(WAIT, lease.lost()).await.unwrap();
    assert!(!lease.is_held());
    // The holder gave up while its key still stood in Redis: nobody else could have acquired
    // yet, so it never wrote beside another holder.
    let (value, pttl) = stored(&board).await;
    assert!(
        value.unwrap().ends_with(&format!(":{}", lease.token())),
        "the key is still the old holder's"
    );
    assert!(pttl > 0, "lost only after the key expired");
    assert!(cut_at.elapsed() < ttl);
    assert!(b.try_acquire(&board).await.is_none());

    // After the TTL the other instance takes over, with a higher token.
    let next = acquire_within(&b, &board, WAIT).await;
    assert!(next.token() > lease.token());
    assert!(cut_at.elapsed() >= ttl / 2, "not before the key expired");
    assert!(!lease.is_held(), "lost stays lost");
}

#[tokio::test]
async fn asking_an_unreachable_redis_answers_quickly_and_reconnects_later() {
    let board = unique_board("unreachable");
    // Nothing listens on port 1: refused at once. A room asks after every batch, so the answer
    // must come without waiting for Redis.
    let nowhere = leases_at("redis://127.0.0.1:1/", Duration::from_secs(10));
    for _ in 0..3 {
        let start = Instant::now();
        assert!(nowhere.try_acquire(&board).await.is_none());
        assert!(start.elapsed() < Duration::from_millis(500));
    }
    // Through a proxy that comes up only later, the same client gets the lease once it can.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let later = leases_at(&format!("redis://{addr}/"), Duration::from_secs(10));
    assert!(later.try_acquire(&board).await.is_none());
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect("127.0.0.1:6379").await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let lease = acquire_within(&later, &board, WAIT).await;
    assert!(lease.is_held());
}
