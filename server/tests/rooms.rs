//! The registry and the room task through their public API: one room per board however
//! joins race, unloading when idle, reminders on the board's clock, and a cluster's rooms on a
//! shared storage (catch-up before a step 2 from another instance, the bus, fencing).

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

#[path = "support/room.rs"]
mod room_support;

use funnel_protocol::BoardId;
use funnel_protocol::wire::{self, ServerMessage};
use funnel_server::outbox::OutboxReceiver;
use funnel_server::room::{ConnId, RoomCommand, RoomConfig, RoomContext};
use funnel_server::rooms::Rooms;
use funnel_server::storage::sqlite::SqliteStorage;
use room_support::{join, next_message, send};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yrs::{Doc, GetString, StateVector, Text, Transact};

fn rooms(dir: &std::path::Path, idle: Duration) -> Rooms {
    rooms_with_clock(dir, idle, Arc::new(funnel_server::clock::SystemClock))
}

fn rooms_with_clock(
    dir: &std::path::Path,
    idle: Duration,
    clock: Arc<dyn funnel_server::clock::Clock>,
) -> Rooms {
    let ctx = RoomContext {
        storage: Arc::new(SqliteStorage::open(dir).unwrap()),
        config: RoomConfig {
            idle_unload_after: idle,
            compact_after_updates: 1000,
            max_board_bytes: usize::MAX,
            hibernate_after: Duration::ZERO,
        },
        shutdown: CancellationToken::new(),
        metrics: funnel_server::metrics::Metrics::new(),
        clock,
        leases: Arc::new(funnel_server::lease::LocalLeases::default()),
        wakeups: funnel_server::wakeups::Wakeups::default(),
        bus: None,
        feed: funnel_server::feed::Feed::new(0),
    };
    Rooms::new(ctx, TaskTracker::new())
}

/// Reads the echo of a client's own update: the room confirms every stored update to its
/// sender too (y-websocket's sync status waits for it).
async fn expect_echo(rx: &mut OutboxReceiver, update: &[u8]) {
    let message = next_message(rx).await;
    assert!(
        matches!(&message, ServerMessage::Update(u) if u[..] == update[..]),
        "the echo of the client's update, got {message:?}"
    );
}

/// A new card of `ann`'s in the first stage with one planned call of `bob`'s an hour after
/// `now`, written in one transaction of `doc`: its update.
fn card_with_call(doc: &Doc, now: i64) -> Vec<u8> {
    use funnel_protocol::board::{NewActivity, NewCard};
    use funnel_protocol::rules::{Direction, MINUTE_MS};
    let mut txn = doc.transact_mut();
    let stage = funnel_protocol::board::stages(&txn)[0].id.clone();
    let card = NewCard {
        title: "deal".into(),
        responsible: "ann".into(),
        ..NewCard::default()
    };
    let card = funnel_protocol::board::create_card(&mut txn, &stage, card, now).unwrap();
    let activity = NewActivity {
        card,
        kind: "call".into(),
        direction: Direction::Outgoing,
        subject: "call".into(),
        deadline: Some(now + 60 * MINUTE_MS),
        remind_min: None,
        responsible: "bob".into(),
    };
    funnel_protocol::board::add_activity(&mut txn, activity).unwrap();
    txn.encode_update_v1()
}
#[tokio::test]
async fn two_first_joins_share_one_room() {
    let dir = tempfile::tempdir().unwrap();
    let rooms = rooms(dir.path(), Duration::from_secs(30));
    let board = BoardId::parse("b").unwrap();
    let (a, b) = tokio::join!(async { rooms.get_or_spawn(&board) }, async {
        rooms.get_or_spawn(&board)
    });
    assert!(a.same_channel(&b));
    assert_eq!(rooms.loaded_count(), 1);
}

#[tokio::test]
async fn an_idle_room_is_unloaded_and_reloads_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let rooms = rooms(dir.path(), Duration::from_millis(50));
    let board = BoardId::parse("b").unwrap();
    let (room, mut rx) = join(&rooms, &board, 1).await;
    assert!(matches!(
        next_message(&mut rx).await,
        ServerMessage::SyncStep1(_)
    ));
    // Text under the `fields` root: roots outside the schema are refused.
    let update = {
        let doc = Doc::new();
        let fields = doc.get_or_insert_map(funnel_protocol::schema::root::FIELDS);
        let mut txn = doc.transact_mut();
        let text = yrs::Map::insert(&fields, &mut txn, "t", yrs::TextPrelim::new(""));
        text.insert(&mut txn, 0, "kept");
        txn.encode_update_v1()
    };
    send(&room, 1, wire::client::encode_update(&update)).await;
    room.send(RoomCommand::Leave { conn: ConnId(1) })
        .await
        .unwrap();
    drop(room);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rooms.loaded_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle room was not unloaded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (room, mut rx) = join(&rooms, &board, 2).await;
    send(
        &room,
        2,
        wire::client::encode_sync_step1(&StateVector::default()),
    )
    .await;
    let state = loop {
        if let ServerMessage::SyncStep2(state) = next_message(&mut rx).await {
            break state;
        }
    };
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(wire::decode_update_v1(&state).unwrap())
        .unwrap();
    let fields = doc.get_or_insert_map(funnel_protocol::schema::root::FIELDS);
    let Some(yrs::Out::YText(text)) = yrs::Map::get(&fields, &doc.transact(), "t") else {
        panic!("no text kept")
    };
    assert_eq!(text.get_string(&doc.transact()), "kept");
}

#[tokio::test]
async fn a_reminder_fires_at_the_clock_time_with_no_client_writing() {
    use funnel_protocol::rules::MINUTE_MS;
    use funnel_server::clock::ManualClock;
    use yrs::{Map, Out, ReadTxn};
    const T0: i64 = 1_800_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let rooms = rooms_with_clock(dir.path(), Duration::from_secs(30), Arc::new(clock.clone()));
    let board_id = BoardId::parse("b").unwrap();
    let (room, mut rx) = join(&rooms, &board_id, 1).await;

    // The client gets the board, then adds a card with a call due in an hour.
    send(
        &room,
        1,
        wire::client::encode_sync_step1(&StateVector::default()),
    )
    .await;
    let doc = Doc::new();
    let apply = |doc: &Doc, update: &[u8]| {
        doc.transact_mut()
            .apply_update(wire::decode_update_v1(update).unwrap())
            .unwrap();
    };
    loop {
        if let ServerMessage::SyncStep2(state) = next_message(&mut rx).await {
            apply(&doc, &state);
            break;
        }
    }
    let update = card_with_call(&doc, T0);
    send(&room, 1, wire::client::encode_update(&update)).await;
    expect_echo(&mut rx, &update).await;
    let state = |doc: &Doc| -> (String, String) {
        let txn = doc.transact();
        let cards = txn.get_map("cards").unwrap();
        let (_, Out::YMap(card)) = cards.iter(&txn).next().unwrap() else {
            panic!("a card")
        };
        let counter = card
            .get(&txn, "counter")
            .map(|v| v.to_string(&txn))
            .unwrap_or_default();
        let avatar = card
            .get(&txn, "avatarReason")
            .map(|v| v.to_string(&txn))
            .unwrap_or_default();
        (counter, avatar)
    };
    // The server answers with the card's counter: planned, avatar its responsible.
    let ServerMessage::Update(upkeep) = next_message(&mut rx).await else {
        panic!("the upkeep's update")
    };
    apply(&doc, &upkeep);
    assert!(state(&doc).0.contains("planned"), "{:?}", state(&doc));
    assert_eq!(state(&doc).1, "responsible");

    // 45 minutes later by the board's clock the reminder is due; the scheduler wakes the room.
    clock.set(T0 + 45 * MINUTE_MS);
    room.send(RoomCommand::Wake).await.unwrap();
    let ServerMessage::Update(reminder) = next_message(&mut rx).await else {
        panic!("the reminder's update")
    };
    apply(&doc, &reminder);
    assert!(state(&doc).0.contains("due"), "{:?}", state(&doc));
    assert_eq!(state(&doc).1, "reminder");
}

/// Leases held elsewhere: never granted.
struct NoLeases;

#[async_trait::async_trait]
impl funnel_server::lease::Leases for NoLeases {
    async fn try_acquire(&self, _: &BoardId) -> Option<funnel_server::lease::Lease> {
        None
    }
}

/// A registry of one instance of an in-process cluster: its own bus, shared storage and
/// leases.
fn cluster_rooms(
    storage: Arc<dyn funnel_server::storage::Storage>,
    bus: Arc<dyn funnel_server::bus::Bus>,
    leases: Arc<dyn funnel_server::lease::Leases>,
) -> Rooms {
    let ctx = RoomContext {
        storage,
        config: RoomConfig {
            idle_unload_after: Duration::from_secs(30),
            compact_after_updates: 1000,
            max_board_bytes: usize::MAX,
            hibernate_after: Duration::ZERO,
        },
        shutdown: CancellationToken::new(),
        metrics: funnel_server::metrics::Metrics::new(),
        clock: Arc::new(funnel_server::clock::SystemClock),
        leases,
        wakeups: funnel_server::wakeups::Wakeups::default(),
        bus: Some(bus),
        feed: funnel_server::feed::Feed::new(0),
    };
    Rooms::new(ctx, TaskTracker::new())
}

async fn sync(room: &mpsc::Sender<RoomCommand>, conn: u64, rx: &mut OutboxReceiver) -> Doc {
    assert!(matches!(
        next_message(rx).await,
        ServerMessage::SyncStep1(_)
    ));
    send(
        room,
        conn,
        wire::client::encode_sync_step1(&StateVector::default()),
    )
    .await;
    let doc = Doc::new();
    loop {
        if let ServerMessage::SyncStep2(state) = next_message(rx).await {
            doc.transact_mut()
                .apply_update(wire::decode_update_v1(&state).unwrap())
                .unwrap();
            return doc;
        }
    }
}

/// A client moves from instance A (the board's scheduler) to instance B, which has not
/// heard of A's latest writes (here: never, their buses are apart). Its step 2 carries A's
/// counter writes, which no client may make: B catches up from the log first, so only the
/// client's own changes are checked, and it is not refused.
#[tokio::test]
async fn a_client_from_another_instance_brings_its_server_writes_without_a_refusal() {
    use funnel_server::bus::memory::MemoryHub;
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn funnel_server::storage::Storage> =
        Arc::new(SqliteStorage::open(dir.path()).unwrap());
    let metrics = funnel_server::metrics::Metrics::new();
    // A is the board's scheduler; B never is.
    let a = cluster_rooms(
        Arc::clone(&storage),
        Arc::new(MemoryHub::default().bus(metrics.clone())),
        Arc::new(funnel_server::lease::LocalLeases::default()),
    );
    let b = cluster_rooms(
        storage,
        Arc::new(MemoryHub::default().bus(metrics)),
        Arc::new(NoLeases),
    );
    let board = BoardId::parse("b").unwrap();
    let (room_a, mut rx1) = join(&a, &board, 1).await;
    let doc = sync(&room_a, 1, &mut rx1).await;
    let (room_b, mut rx2) = join(&b, &board, 2).await;
    let watcher = sync(&room_b, 2, &mut rx2).await;

    let now = funnel_server::clock::Clock::now_ms(&funnel_server::clock::SystemClock);
    let update = card_with_call(&doc, now);
    send(&room_a, 1, wire::client::encode_update(&update)).await;
    expect_echo(&mut rx1, &update).await;
    let ServerMessage::Update(counter) = next_message(&mut rx1).await else {
        panic!("A's counter write")
    };
    doc.transact_mut()
        .apply_update(wire::decode_update_v1(&counter).unwrap())
        .unwrap();

    // The client reconnects to B and answers B's step 1 with what B lacks.
    let (room_b3, mut rx3) = join(&b, &board, 3).await;
    let ServerMessage::SyncStep1(sv) = next_message(&mut rx3).await else {
        panic!("B's step 1")
    };
    let diff = yrs::ReadTxn::encode_state_as_update_v1(&doc.transact(), &sv);
    send(&room_b3, 3, wire::client::encode_sync_step2(&diff)).await;
    // Not closed: B relays what it caught up on, to both its clients.
    assert!(matches!(
        next_message(&mut rx3).await,
        ServerMessage::Update(_)
    ));
    // The log's entries, each as stored: the card, then A's counter write.
    for _ in 0..2 {
        let ServerMessage::Update(caught_up) = next_message(&mut rx2).await else {
            panic!("B's catch-up")
        };
        watcher
            .transact_mut()
            .apply_update(wire::decode_update_v1(&caught_up).unwrap())
            .unwrap();
    }
    let counter = |doc: &Doc| {
        let txn = doc.transact();
        let cards = yrs::ReadTxn::get_map(&txn, "cards").unwrap();
        let (_, yrs::Out::YMap(card)) = yrs::Map::iter(&cards, &txn).next().unwrap() else {
            panic!("a card")
        };
        yrs::Map::get(&card, &txn, "counter").map(|v| yrs::types::ToJson::to_json(&v, &txn))
    };
    assert!(counter(&watcher).is_some_and(|c| c.to_string().contains("planned")));
    assert_eq!(counter(&watcher), counter(&doc));
}

/// A text update under the `fields` root, from a fresh client.
fn text_update(content: &str) -> Vec<u8> {
    let doc = Doc::new();
    let fields = doc.get_or_insert_map(funnel_protocol::schema::root::FIELDS);
    let mut txn = doc.transact_mut();
    let text = yrs::Map::insert(&fields, &mut txn, "t", yrs::TextPrelim::new(""));
    text.insert(&mut txn, 0, content);
    txn.encode_update_v1()
}

#[tokio::test]
async fn updates_and_presence_cross_instances_on_the_bus() {
    use funnel_server::bus::memory::MemoryHub;
    use yrs::sync::AwarenessUpdate;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn funnel_server::storage::Storage> =
        Arc::new(SqliteStorage::open(dir.path()).unwrap());
    let leases: Arc<dyn funnel_server::lease::Leases> =
        Arc::new(funnel_server::lease::LocalLeases::default());
    let hub = MemoryHub::default();
    let metrics = funnel_server::metrics::Metrics::new();
    let a = cluster_rooms(
        Arc::clone(&storage),
        Arc::new(hub.bus(metrics.clone())),
        Arc::clone(&leases),
    );
    let b = cluster_rooms(storage, Arc::new(hub.bus(metrics)), leases);
    let board = BoardId::parse("b").unwrap();
    let (room_a, mut rx1) = join(&a, &board, 1).await;
    sync(&room_a, 1, &mut rx1).await;
    let (room_b, mut rx2) = join(&b, &board, 2).await;
    let watcher = sync(&room_b, 2, &mut rx2).await;

    let update = text_update("from a");
    send(&room_a, 1, wire::client::encode_update(&update)).await;
    let ServerMessage::Update(relayed) = next_message(&mut rx2).await else {
        panic!("A's update, relayed by B")
    };
    assert_eq!(relayed, update, "relayed as stored, never re-encoded");
    watcher
        .transact_mut()
        .apply_update(wire::decode_update_v1(&relayed).unwrap())
        .unwrap();

    let mut clients = std::collections::HashMap::new();
    clients.insert(
        yrs::block::ClientID::new(11),
        AwarenessUpdateEntry {
            clock: 1,
            json: r##"{"user":{"id":"u1","name":"U","color":"#123456"}}"##.into(),
        },
    );
    let presence = wire::client::encode_awareness(&AwarenessUpdate { clients });
    send(&room_a, 1, presence).await;
    let ServerMessage::Awareness(seen) = next_message(&mut rx2).await else {
        panic!("A's presence, relayed by B")
    };
    assert!(
        seen.clients[&yrs::block::ClientID::new(11)]
            .json
            .contains("u1")
    );
    room_a
        .send(RoomCommand::Leave { conn: ConnId(1) })
        .await
        .unwrap();
    let ServerMessage::Awareness(gone) = next_message(&mut rx2).await else {
        panic!("A's presence removal, relayed by B")
    };
    assert_eq!(&*gone.clients[&yrs::block::ClientID::new(11)].json, "null");
}

/// In a cluster, storage holds a newer scheduler's fence: this room's counter write is
/// refused, the room stops its upkeep and reloads the stored board; the client's own card is
/// kept, and no unstored counter reaches anyone.
#[tokio::test]
async fn a_fenced_out_scheduler_write_is_dropped_and_the_board_reloaded() {
    use funnel_server::storage::Storage;
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SqliteStorage::open(dir.path()).unwrap());
    let metrics = funnel_server::metrics::Metrics::new();
    let ctx = RoomContext {
        storage: Arc::clone(&storage) as Arc<dyn Storage>,
        config: RoomConfig {
            idle_unload_after: Duration::from_secs(30),
            compact_after_updates: 1000,
            max_board_bytes: usize::MAX,
            hibernate_after: Duration::ZERO,
        },
        shutdown: CancellationToken::new(),
        metrics: metrics.clone(),
        clock: Arc::new(funnel_server::clock::SystemClock),
        leases: Arc::new(funnel_server::lease::LocalLeases::default()),
        wakeups: funnel_server::wakeups::Wakeups::default(),
        bus: Some(Arc::new(
            funnel_server::bus::memory::MemoryHub::default().bus(metrics.clone()),
        )),
        feed: funnel_server::feed::Feed::new(0),
    };
    let rooms = Rooms::new(ctx, TaskTracker::new());
    let board = BoardId::parse("b").unwrap();
    let (room, mut rx) = join(&rooms, &board, 1).await;
    let doc = sync(&room, 1, &mut rx).await;
    // Another scheduler, with a far higher token, wrote since.
    let nothing = Doc::new().transact_mut().encode_update_v1();
    storage
        .append_fenced(&board, vec![bytes::Bytes::from(nothing)], u64::MAX / 2)
        .await
        .unwrap();

    let update = {
        let mut txn = doc.transact_mut();
        let stage = funnel_protocol::board::stages(&txn)[0].id.clone();
        let card = funnel_protocol::board::NewCard {
            title: "kept".into(),
            responsible: "ann".into(),
            ..Default::default()
        };
        funnel_protocol::board::create_card(&mut txn, &stage, card, 0).unwrap();
        txn.encode_update_v1()
    };
    send(&room, 1, wire::client::encode_update(&update)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metrics.upkeep_fenced.get() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never fenced");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(metrics.upkeep_writes.get(), 0);
    // The room is alive and serves the stored board: the card, without a counter.
    let (_room, mut rx2) = join(&rooms, &board, 2).await;
    let fresh = sync(&room, 2, &mut rx2).await;
    let titles: Vec<String> = {
        let txn = fresh.transact();
        let cards = yrs::ReadTxn::get_map(&txn, "cards").unwrap();
        yrs::Map::iter(&cards, &txn)
            .filter_map(|(_, card)| match card {
                yrs::Out::YMap(card) => {
                    assert!(yrs::Map::get(&card, &txn, "counter").is_none());
                    yrs::Map::get(&card, &txn, "title").map(|t| t.to_string(&txn))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(titles, ["kept"]);
    // The client's own update was stored: its echo is the one frame it gets.
    expect_echo(&mut rx, &update).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rx.next())
            .await
            .is_err(),
        "nothing unstored reached the writer"
    );
}
