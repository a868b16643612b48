//! A cluster through real processes: several funnel instances on one PostgreSQL and one Redis.
//! Clients spread over the instances converge, nothing acknowledged is lost when an instance is
//! killed or Redis restarts, and exactly one instance at a time writes a board's counters.
//!
//! Each test has its own PostgreSQL schema and board ids; the Redis restart test runs its own
//! `redis-server`, so the shared one is never disturbed.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use support::{
    Client, ProcessServer, RedisServer, TestDatabase, add_call, add_card, doc_state, http, metric,
    server_field, unique,
};

const SHARED_REDIS: &str = "redis://127.0.0.1:6379/";

/// How long a cluster may take to converge after a fault: a Redis reconnect (backoff up to
/// 5 s) or the periodic catch-up (5 s), plus one load, with room to spare on a busy machine.
const CONVERGE: Duration = Duration::from_secs(30);

fn board_id(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("cluster-{what}-{}", unique(&NEXT))
}

fn instance(db: &TestDatabase, redis: &str, extra: &[&str]) -> ProcessServer {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--database-url", &db.url, "--redis-url", redis];
    args.extend_from_slice(extra);
    // The data directory is unused with PostgreSQL; the process outlives this function.
    ProcessServer::spawn(&dir.keep(), &args)
}

/// Drains every client until all hold the same document (state vector and content) with at
/// least `titles` cards, or panics after `limit`.
async fn converge(clients: &mut [Client], titles: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        for client in clients.iter_mut() {
            assert!(
                client.drain_for(Duration::from_millis(50)).await,
                "a client lost its server"
            );
        }
        let first = doc_state(&clients[0].doc);
        let same = clients.iter().all(|c| doc_state(&c.doc) == first);
        let complete = clients.iter().all(|c| c.card_titles().len() >= titles);
        if same && complete {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "clients did not converge: cards {:?}, state vectors {:?}",
            clients
                .iter()
                .map(|c| c.card_titles().len())
                .collect::<Vec<_>>(),
            clients
                .iter()
                .map(|c| yrs::ReadTxn::state_vector(&yrs::Transact::transact(&c.doc)))
                .collect::<Vec<_>>()
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_three_instances_converge_and_every_write_crosses_instances() {
    let db = TestDatabase::new().await;
    let servers: Vec<ProcessServer> = (0..3).map(|_| instance(&db, SHARED_REDIS, &[])).collect();
    let board = board_id("converge");
    // The first client creates the board; then two clients per instance.
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(Client::connect(&servers[i % 3].url(&board)).await);
    }
    // Everyone writes at once, a few rounds.
    for round in 0..5 {
        for (i, client) in clients.iter_mut().enumerate() {
            let id = format!("c{i}-r{round}");
            client.write(|txn| add_card(txn, &id, &id)).await;
        }
        for client in clients.iter_mut() {
            client.drain_for(Duration::from_millis(5)).await;
        }
    }
    converge(&mut clients, 30, CONVERGE).await;

    // A write on A, seen on B and on C. The latency is printed, not bounded: a bound fails
    // whenever other builds share the cores, and the `cluster` load scenario judges it
    // (BENCHMARKS.md).
    let [a, b, c] = &mut clients[..3] else {
        unreachable!()
    };
    let mut samples = Vec::new();
    for i in 0..100 {
        let title = format!("latency-{i}");
        let sent = Instant::now();
        a.write(|txn| add_card(txn, &title, &title)).await;
        let (seen_b, seen_c) = tokio::join!(
            async {
                b.wait_for_card(&title).await;
                sent.elapsed()
            },
            async {
                c.wait_for_card(&title).await;
                sent.elapsed()
            }
        );
        samples.push(seen_b);
        samples.push(seen_c);
        a.drain_for(Duration::from_millis(1)).await;
    }
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    eprintln!(
        "cross-instance latency over {} samples (100 writes on A seen on B and C): p50 {p50:?}, p99 {p99:?}, max {:?}",
        samples.len(),
        samples.last().unwrap()
    );
    converge(&mut clients, 130, CONVERGE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_loses_nothing_its_clients_or_others_saw() {
    let db = TestDatabase::new().await;
    let mut servers: Vec<Option<ProcessServer>> = (0..3)
        .map(|_| Some(instance(&db, SHARED_REDIS, &[])))
        .collect();
    let board = board_id("kill");
    let url =
        |servers: &[Option<ProcessServer>], i: usize| servers[i].as_ref().unwrap().url(&board);
    let mut on_a = Client::connect(&url(&servers, 0)).await;
    let mut on_b = Client::connect(&url(&servers, 1)).await;
    let mut on_c = Client::connect(&url(&servers, 2)).await;
    for i in 0..20 {
        for (name, client) in [("a", &mut on_a), ("b", &mut on_b), ("c", &mut on_c)] {
            let id = format!("{name}-{i}");
            client.write(|txn| add_card(txn, &id, &id)).await;
            client.drain_for(Duration::from_millis(2)).await;
        }
    }
    // B and C have seen some of A's cards (broadcast, so stored) when A dies mid-stream.
    on_b.wait_for_card("a-10").await;
    on_c.wait_for_card("a-10").await;
    // A dies while all three write (A's last writes may never be stored).
    let doomed = servers[0].take().unwrap();
    tokio::join!(
        keep_writing(&mut on_a, "a"),
        keep_writing(&mut on_b, "b"),
        keep_writing(&mut on_c, "c"),
        async {
            tokio::time::sleep(Duration::from_millis(15)).await;
            doomed.kill_9();
        }
    );
    let mut seen: Vec<String> = Vec::new();
    for client in [&on_a, &on_b, &on_c] {
        seen.extend(client.card_titles());
    }
    seen.sort();
    seen.dedup();

    // A's client reconnects to B with its document (what it saw, and its unacknowledged
    // writes); everyone keeps writing.
    let mut again = Client::reconnect(&url(&servers, 1), on_a.doc.clone()).await;
    for i in 0..5 {
        for (name, client) in [("a2", &mut again), ("b2", &mut on_b), ("c2", &mut on_c)] {
            let id = format!("{name}-{i}");
            client.write(|txn| add_card(txn, &id, &id)).await;
        }
    }
    let mut clients = vec![again, on_b, on_c];
    let expected = seen.len() + 15;
    converge(&mut clients, expected, CONVERGE).await;
    // A late joiner on C reads the same board from the log.
    clients.push(Client::connect(&url(&servers, 2)).await);
    converge(&mut clients, expected, CONVERGE).await;
    let titles = clients[0].card_titles();
    for title in &seen {
        assert!(
            titles.contains(title),
            "{title} was seen before the kill, then lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_converges_after_redis_restarts() {
    let db = TestDatabase::new().await;
    let mut redis = RedisServer::start();
    let servers: Vec<ProcessServer> = (0..2).map(|_| instance(&db, &redis.url(), &[])).collect();
    let board = board_id("redis");
    let mut clients = vec![
        Client::connect(&servers[0].url(&board)).await,
        Client::connect(&servers[1].url(&board)).await,
        Client::connect(&servers[1].url(&board)).await,
    ];
    write_round(&mut clients[..], "before").await;
    converge(&mut clients, 3, CONVERGE).await;

    redis.kill();
    // Readiness says so, and the instances keep serving their own clients meanwhile.
    let deadline = Instant::now() + CONVERGE;
    loop {
        let (status, body) = http(servers[0].addr, "GET", "/readyz", None).await;
        if status == 503 {
            assert!(body.contains("redis is down"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never reported Redis down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only instance 0 writes while Redis is down: instance 1 appends nothing, so it learns of
    // these writes only from a gap (the bus is back) or its periodic catch-up.
    for i in 0..5 {
        let id = format!("during-{i}");
        clients[0].write(|txn| add_card(txn, &id, &id)).await;
        clients[0].drain_for(Duration::from_millis(5)).await;
    }

    redis.restart();
    let restarted = Instant::now();
    converge(&mut clients, 8, CONVERGE).await;
    eprintln!(
        "after the Redis restart, every replica converged in {:?}",
        restarted.elapsed()
    );
    // The fast path works again: both instances write, everyone converges.
    write_round(&mut clients[..], "after").await;
    converge(&mut clients, 11, CONVERGE).await;
    let deadline = Instant::now() + CONVERGE;
    while http(servers[0].addr, "GET", "/readyz", None).await.0 != 200 {
        assert!(Instant::now() < deadline, "/readyz never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes cards `{name}-20` to `{name}-29`, stopping when the client's server is gone.
async fn keep_writing(client: &mut Client, name: &str) {
    for i in 20..30 {
        let id = format!("{name}-{i}");
        let sent = client.try_write(|txn| add_card(txn, &id, &id)).await;
        if !sent || !client.drain_for(Duration::from_millis(3)).await {
            return; // its server is gone
        }
    }
}

/// Every client writes one card `{round}-{i}`.
async fn write_round(clients: &mut [Client], round: &str) {
    for (i, client) in clients.iter_mut().enumerate() {
        let id = format!("{round}-{i}");
        client.write(|txn| add_card(txn, &id, &id)).await;
        client.drain_for(Duration::from_millis(5)).await;
    }
}

/// A card with one planned call, due in an hour: the scheduler writes its counter.
fn card_with_activity(txn: &mut yrs::TransactionMut, id: &str) {
    add_card(txn, id, id);
    let deadline =
        funnel_server::clock::Clock::now_ms(&funnel_server::clock::SystemClock) + 60 * 60_000;
    add_call(txn, &format!("{id}-call"), id, deadline);
}

async fn upkeep_writes(server: &ProcessServer) -> i64 {
    metric(server.addr, "funnel_upkeep_writes_total").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_writes_a_boards_counters_and_another_takes_over_when_it_dies() {
    let db = TestDatabase::new().await;
    let servers: Vec<ProcessServer> = (0..3)
        .map(|_| instance(&db, SHARED_REDIS, &["--lease-ttl", "2s"]))
        .collect();
    let board = board_id("lease");
    let mut clients = Vec::new();
    for server in &servers {
        clients.push(Client::connect(&server.url(&board)).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let id = format!("card-{i}");
        client.write(|txn| card_with_activity(txn, &id)).await;
    }
    for client in clients.iter_mut() {
        for i in 0..3 {
            client.wait_for_upkeep(&format!("card-{i}")).await;
        }
    }
    for client in &clients {
        for i in 0..3 {
            let counter = server_field(&client.doc, &format!("card-{i}"), "counter").unwrap();
            assert_eq!(counter["state"], "planned", "{counter}");
        }
    }
    let mut writes = Vec::new();
    for server in &servers {
        writes.push(upkeep_writes(server).await);
    }
    let holders: Vec<usize> = (0..3).filter(|&i| writes[i] > 0).collect();
    assert_eq!(holders.len(), 1, "counter writes by instance: {writes:?}");
    let holder = holders[0];

    // The holder dies; after the lease's TTL another instance maintains the board.
    let mut servers: Vec<Option<ProcessServer>> = servers.into_iter().map(Some).collect();
    servers[holder].take().unwrap().kill_9();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != holder).collect();
    let mut clients: Vec<Client> = clients
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != holder)
        .map(|(_, c)| c)
        .collect();
    clients[0]
        .write(|txn| card_with_activity(txn, "after"))
        .await;
    let deadline = Instant::now() + CONVERGE;
    loop {
        let mut done = true;
        for client in clients.iter_mut() {
            client.drain_for(Duration::from_millis(50)).await;
            done &= server_field(&client.doc, "after", "counter").is_some();
        }
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no instance took over the board's counters"
        );
    }
    let mut writes = Vec::new();
    for &i in &survivors {
        writes.push(upkeep_writes(servers[i].as_ref().unwrap()).await);
    }
    assert_eq!(
        writes.iter().filter(|&&w| w > 0).count(),
        1,
        "after the takeover, counter writes by survivor: {writes:?}"
    );
    converge(&mut clients, 4, CONVERGE).await;
}

/// An instance dies and its clients reconnect to another at once: the storm of joins waits its
/// turn (`JOINS_AT_ONCE`), every newcomer gets the board, and the clients already live on that
/// instance keep writing and hearing each write meanwhile. How fast is the load tester's to
/// judge (its `storm` scenario: the draggers' p99 during a storm, BENCHMARKS.md); the figures
/// are printed here, not bounded (a p99 bound failed whenever other builds shared the cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_syncs_every_newcomer_while_live_clients_keep_writing() {
    const NEWCOMERS: usize = 300;
    let db = TestDatabase::new().await;
    let server = instance(&db, SHARED_REDIS, &[]);
    let board = board_id("storm");
    let url = server.url(&board);
    let mut writer = Client::connect(&url).await;
    let mut reader = Client::connect(&url).await;
    // A board worth syncing: every newcomer gets 200 cards.
    writer
        .write(|txn| {
            for i in 0..200 {
                let id = format!("base-{i}");
                add_card(txn, &id, &format!("{id} {}", "x".repeat(100)));
            }
        })
        .await;
    reader
        .wait_for_card(&format!("base-199 {}", "x".repeat(100)))
        .await;

    let storm_started = Instant::now();
    let storm: Vec<_> = (0..NEWCOMERS)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Client::connect(&url).await.card_titles().len() })
        })
        .collect();
    let mut samples = Vec::new();
    for i in 0..40 {
        let title = format!("live-{i}");
        let sent = Instant::now();
        writer.write(|txn| add_card(txn, &title, &title)).await;
        reader.wait_for_card(&title).await;
        samples.push(sent.elapsed());
        writer.drain_for(Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = metric(server.addr, "funnel_joins_waiting").await;
    for newcomer in storm {
        assert!(newcomer.await.unwrap() >= 200, "a newcomer got the board");
    }
    let storm_took = storm_started.elapsed();
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    eprintln!(
        "{NEWCOMERS} newcomers joined in {storm_took:?} (still waiting after the live writes: \
         {waiting}); live latency meanwhile: p50 {p50:?}, p99 {p99:?}"
    );
}

/// The holder of a board's lease dies with a reminder pending, and no other instance has the
/// board open: another instance finds the wake-up overdue in storage, loads the board, takes
/// the lease once it expired, and fires the reminder (checked in storage: no client opens it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_reminder_of_a_dead_instance_is_fired_by_another() {
    use funnel_server::storage::Storage;
    const MINUTE: i64 = 60_000;
    let db = TestDatabase::new().await;
    let holder = instance(&db, SHARED_REDIS, &["--lease-ttl", "1s"]);
    let other = instance(&db, SHARED_REDIS, &["--lease-ttl", "1s"]);
    let board = board_id("overdue");
    let mut client = Client::connect(&holder.url(&board)).await;
    // Lights (15 minutes before its deadline) two seconds from now.
    let now = funnel_server::clock::Clock::now_ms(&funnel_server::clock::SystemClock);
    client
        .write(|txn| {
            add_card(txn, "card", "card");
            add_call(txn, "call", "card", now + 15 * MINUTE + 2_000);
        })
        .await;
    client.wait_for_upkeep("card").await;
    assert_eq!(
        server_field(&client.doc, "card", "counter").unwrap()["state"],
        "planned"
    );
    // Its wake-up is recorded; then the holder dies before the reminder.
    let storage = funnel_server::storage::postgres::PostgresStorage::open(&db.url)
        .await
        .unwrap();
    let deadline = Instant::now() + CONVERGE;
    while !storage
        .wakeups()
        .await
        .unwrap()
        .iter()
        .any(|(b, _)| b.as_str() == board)
    {
        assert!(Instant::now() < deadline, "the wake-up was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holder.kill_9();
    let board_id = funnel_protocol::BoardId::parse(&board).unwrap();
    let deadline = Instant::now() + CONVERGE;
    loop {
        let stored = storage.load(&board_id).await.unwrap().unwrap();
        let doc = stored.to_doc(&board_id).unwrap();
        if server_field(&doc, "card", "counter").is_some_and(|c| c["state"] == "due") {
            assert_eq!(
                server_field(&doc, "card", "avatarReason").unwrap(),
                "reminder"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nobody fired the dead instance's reminder"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(upkeep_writes(&other).await > 0);
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_instances_and_goes_when_its_client_leaves() {
    use yrs::sync::AwarenessUpdate;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    let db = TestDatabase::new().await;
    let servers: Vec<ProcessServer> = (0..2).map(|_| instance(&db, SHARED_REDIS, &[])).collect();
    let board = board_id("presence");
    let mut here = Client::connect(&servers[0].url(&board)).await;
    let mut there = Client::connect(&servers[1].url(&board)).await;
    let mut clients = std::collections::HashMap::new();
    clients.insert(
        yrs::block::ClientID::new(4242),
        AwarenessUpdateEntry {
            clock: 1,
            json: r##"{"user":{"id":"ann","name":"Ann","color":"#ff0000"},"dragging":null}"##
                .into(),
        },
    );
    here.send(funnel_protocol::wire::client::encode_awareness(
        &AwarenessUpdate { clients },
    ))
    .await;
    there
        .pump_until("Ann's presence from the other instance", |c, _| {
            c.awareness
                .get(&4242)
                .is_some_and(|json| json.contains("ann"))
        })
        .await;
    drop(here);
    there
        .pump_until("Ann's presence to go", |c, _| {
            c.awareness.get(&4242).is_some_and(|json| json == "null")
        })
        .await;
}
