//! A quiet room hibernates (drops its board's document and what is built over it) and takes the
//! board back from storage at the next thing that reads or writes it: a client's update, a
//! join, a scheduled wake-up, another instance's update on the bus or in the log. Nothing is
//! lost, presence keeps flowing while it sleeps, and a room that unloads while asleep folds its
//! log from storage, never from the empty document it holds.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

#[path = "support/room.rs"]
mod room_support;

use funnel_protocol::BoardId;
use funnel_protocol::wire::{self, ServerMessage};
use funnel_server::clock::{Clock, SystemClock};
use funnel_server::metrics::Metrics;
use funnel_server::outbox::OutboxReceiver;
use funnel_server::room::{ConnId, RoomCommand, RoomConfig, RoomContext};
use funnel_server::rooms::Rooms;
use funnel_server::storage::Storage;
use funnel_server::storage::sqlite::SqliteStorage;
use room_support::{join, next_message, send};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

/// Rooms hibernate this long after the last thing that touched their board.
const QUIET: Duration = Duration::from_millis(200);

struct Setup {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    bus: Option<Arc<dyn funnel_server::bus::Bus>>,
    hibernate_after: Duration,
    idle_unload_after: Duration,
}

impl Setup {
    fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            clock: Arc::new(SystemClock),
            bus: None,
            hibernate_after: QUIET,
            idle_unload_after: Duration::from_secs(30),
        }
    }

    fn start(self) -> (Rooms, Metrics) {
        let metrics = Metrics::new();
        let ctx = RoomContext {
            storage: self.storage,
            config: RoomConfig {
                idle_unload_after: self.idle_unload_after,
                compact_after_updates: 1000,
                max_board_bytes: usize::MAX,
                hibernate_after: self.hibernate_after,
            },
            shutdown: CancellationToken::new(),
            metrics: metrics.clone(),
            clock: self.clock,
            leases: Arc::new(funnel_server::lease::LocalLeases::default()),
            wakeups: funnel_server::wakeups::Wakeups::default(),
            bus: self.bus,
            feed: funnel_server::feed::Feed::new(0),
        };
        (Rooms::new(ctx, TaskTracker::new()), metrics)
    }
}

fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Storage> {
    Arc::new(SqliteStorage::open(dir.path()).unwrap())
}

/// The next update frame, skipping presence.
async fn next_update(rx: &mut OutboxReceiver) -> Vec<u8> {
    loop {
        match next_message(rx).await {
            ServerMessage::Update(update) => return update.to_vec(),
            ServerMessage::Awareness(_) => {}
            other => panic!("expected an update, got {other:?}"),
        }
    }
}

/// Joins `conn` as a client with an empty document: its step 1 and the board it is sent.
async fn join_and_sync(
    rooms: &Rooms,
    board: &BoardId,
    conn: u64,
) -> (mpsc::Sender<RoomCommand>, OutboxReceiver, Doc) {
    let (room, mut rx) = join(rooms, board, conn).await;
    assert!(matches!(
        next_message(&mut rx).await,
        ServerMessage::SyncStep1(_)
    ));
    send(
        &room,
        conn,
        wire::client::encode_sync_step1(&StateVector::default()),
    )
    .await;
    let doc = Doc::new();
    loop {
        match next_message(&mut rx).await {
            ServerMessage::SyncStep2(state) => {
                apply(&doc, &state);
                return (room, rx, doc);
            }
            ServerMessage::Update(piece) => apply(&doc, &piece),
            _ => {}
        }
    }
}

fn apply(doc: &Doc, update: &[u8]) {
    doc.transact_mut()
        .apply_update(wire::decode_update_v1(update).unwrap())
        .unwrap();
}

/// Appends `content` to the text `t` under the `fields` root of `doc` (made when missing):
/// the update.
fn append(doc: &Doc, content: &str) -> Vec<u8> {
    let fields = doc.get_or_insert_map(funnel_protocol::schema::root::FIELDS);
    let mut txn = doc.transact_mut();
    let text = match yrs::Map::get(&fields, &txn, "t") {
        Some(yrs::Out::YText(text)) => text,
        _ => yrs::Map::insert(&fields, &mut txn, "t", yrs::TextPrelim::new("")),
    };
    let end = text.len(&txn);
    text.insert(&mut txn, end, content);
    txn.encode_update_v1()
}

fn text_of(doc: &Doc) -> String {
    let fields = doc.get_or_insert_map(funnel_protocol::schema::root::FIELDS);
    let txn = doc.transact();
    match yrs::Map::get(&fields, &txn, "t") {
        Some(yrs::Out::YText(text)) => text.get_string(&txn),
        _ => String::new(),
    }
}

/// Waits (bounded) until `hibernating` rooms hibernate.
async fn until_hibernating(metrics: &Metrics, hibernating: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.rooms_hibernating.get() != hibernating {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} rooms hibernate, not {hibernating}",
            metrics.rooms_hibernating.get()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn presence(client: u64, clock: u32, user: &str) -> bytes::Bytes {
    use yrs::sync::AwarenessUpdate;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    let mut clients = std::collections::HashMap::new();
    clients.insert(
        yrs::block::ClientID::new(client),
        AwarenessUpdateEntry {
            clock,
            json: format!(r##"{{"user":{{"id":"{user}","name":"U","color":"#123456"}}}}"##).into(),
        },
    );
    wire::client::encode_awareness(&AwarenessUpdate { clients })
}

#[tokio::test]
async fn a_quiet_room_hibernates_and_an_update_wakes_it_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (rooms, metrics) = Setup::new(sqlite(&dir)).start();
    let board = BoardId::parse("b").unwrap();
    let (room, mut rx1, doc1) = join_and_sync(&rooms, &board, 1).await;
    let (_, mut rx2, doc2) = join_and_sync(&rooms, &board, 2).await;

    let first = append(&doc1, "one");
    send(&room, 1, wire::client::encode_update(&first)).await;
    assert_eq!(next_update(&mut rx1).await, first, "the echo");
    apply(&doc2, &next_update(&mut rx2).await);

    until_hibernating(&metrics, 1).await;
    assert_eq!(metrics.room_wakes.get(), 0);

    // The second client writes on the sleeping room: it wakes, stores and relays the update.
    let second = append(&doc2, " two");
    send(&room, 2, wire::client::encode_update(&second)).await;
    assert_eq!(next_update(&mut rx2).await, second, "the echo");
    apply(&doc1, &next_update(&mut rx1).await);
    assert_eq!(metrics.room_wakes.get(), 1);
    assert_eq!(metrics.rooms_hibernating.get(), 0);
    assert_eq!(text_of(&doc1), "one two");

    // A newcomer gets both, from the reloaded board.
    let (_, _, doc3) = join_and_sync(&rooms, &board, 3).await;
    assert_eq!(text_of(&doc3), "one two");
    // And it hibernates again once quiet; storage holds everything.
    until_hibernating(&metrics, 1).await;
    let stored = sqlite(&dir).load(&board).await.unwrap().unwrap();
    assert_eq!(text_of(&stored.to_doc(&board).unwrap()), "one two");
}

#[tokio::test]
async fn presence_flows_while_a_room_sleeps_and_a_join_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (rooms, metrics) = Setup::new(sqlite(&dir)).start();
    let board = BoardId::parse("b").unwrap();
    let (room, mut rx1, doc1) = join_and_sync(&rooms, &board, 1).await;
    let (_, mut rx2, _) = join_and_sync(&rooms, &board, 2).await;
    let update = append(&doc1, "kept");
    send(&room, 1, wire::client::encode_update(&update)).await;
    assert_eq!(next_update(&mut rx1).await, update);
    next_update(&mut rx2).await;
    until_hibernating(&metrics, 1).await;

    // Presence is relayed to everyone without waking the board.
    send(&room, 1, presence(11, 1, "u1")).await;
    let ServerMessage::Awareness(seen) = next_message(&mut rx2).await else {
        panic!("the presence")
    };
    assert!(
        seen.clients[&yrs::block::ClientID::new(11)]
            .json
            .contains("u1")
    );
    assert_eq!(metrics.room_wakes.get(), 0);
    assert_eq!(metrics.rooms_hibernating.get(), 1);

    // A join wakes it: the newcomer's step 1 is the board's state, and presence is kept.
    let (room3, mut rx3) = join(&rooms, &board, 3).await;
    let ServerMessage::SyncStep1(sv) = next_message(&mut rx3).await else {
        panic!("the step 1")
    };
    assert_eq!(sv, doc1.transact().state_vector());
    let ServerMessage::Awareness(all) = next_message(&mut rx3).await else {
        panic!("everyone's presence")
    };
    assert!(all.clients.contains_key(&yrs::block::ClientID::new(11)));
    assert_eq!(metrics.room_wakes.get(), 1);
    send(
        &room3,
        3,
        wire::client::encode_sync_step1(&StateVector::default()),
    )
    .await;
    let doc3 = Doc::new();
    loop {
        if let ServerMessage::SyncStep2(state) = next_message(&mut rx3).await {
            apply(&doc3, &state);
            break;
        }
    }
    assert_eq!(text_of(&doc3), "kept");
}

/// A card with a call due in an hour: the room, asleep, wakes by itself when its reminder is
/// due (no client writes, no scheduler command) and writes the counter.
#[tokio::test]
async fn a_sleeping_room_wakes_for_its_reminder() {
    use funnel_protocol::board::{NewActivity, NewCard};
    use funnel_protocol::rules::{Direction, MINUTE_MS};
    use funnel_server::clock::ManualClock;
    use yrs::{Map, Out};
    const T0: i64 = 1_800_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let mut setup = Setup::new(sqlite(&dir));
    setup.clock = Arc::new(clock.clone());
    let (rooms, metrics) = setup.start();
    let board = BoardId::parse("b").unwrap();
    let (room, mut rx, doc) = join_and_sync(&rooms, &board, 1).await;

    let update = {
        let mut txn = doc.transact_mut();
        let stage = funnel_protocol::board::stages(&txn)[0].id.clone();
        let card = NewCard {
            title: "deal".into(),
            responsible: "ann".into(),
            ..NewCard::default()
        };
        let card = funnel_protocol::board::create_card(&mut txn, &stage, card, T0).unwrap();
        let activity = NewActivity {
            card,
            kind: "call".into(),
            direction: Direction::Outgoing,
            subject: "call".into(),
            deadline: Some(T0 + 60 * MINUTE_MS),
            remind_min: None,
            responsible: "bob".into(),
        };
        funnel_protocol::board::add_activity(&mut txn, activity).unwrap();
        txn.encode_update_v1()
    };
    send(&room, 1, wire::client::encode_update(&update)).await;
    assert_eq!(next_update(&mut rx).await, update, "the echo");
    apply(&doc, &next_update(&mut rx).await); // the counter: planned
    let state = |doc: &Doc| -> (String, String) {
        let txn = doc.transact();
        let cards = txn.get_map("cards").unwrap();
        let (_, Out::YMap(card)) = cards.iter(&txn).next().unwrap() else {
            panic!("a card")
        };
        let read = |key: &str| {
            card.get(&txn, key)
                .map(|v| v.to_string(&txn))
                .unwrap_or_default()
        };
        (read("counter"), read("avatarReason"))
    };
    assert!(state(&doc).0.contains("planned"), "{:?}", state(&doc));
    until_hibernating(&metrics, 1).await;

    clock.set(T0 + 45 * MINUTE_MS);
    apply(&doc, &next_update(&mut rx).await);
    assert!(state(&doc).0.contains("due"), "{:?}", state(&doc));
    assert_eq!(state(&doc).1, "reminder");
    assert_eq!(metrics.room_wakes.get(), 1);
}

/// Another instance writes while this one's room sleeps: on the bus, the room wakes and its
/// member gets the change; with the bus lost, the periodic catch-up finds it in the log.
#[tokio::test]
async fn a_sleeping_room_wakes_for_another_instances_update_from_the_bus_or_the_log() {
    use funnel_server::bus::memory::MemoryHub;
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite(&dir);
    let hub = MemoryHub::default();
    let bus_metrics = Metrics::new();
    let mut a = Setup::new(Arc::clone(&storage));
    a.bus = Some(Arc::new(hub.bus(bus_metrics.clone())));
    let (a, metrics_a) = a.start();
    let mut b = Setup::new(Arc::clone(&storage));
    b.bus = Some(Arc::new(hub.bus(bus_metrics.clone())));
    b.hibernate_after = Duration::ZERO;
    let (b, _) = b.start();
    // A third instance whose bus hears nobody: only the log tells it.
    let mut c = Setup::new(storage);
    c.bus = Some(Arc::new(MemoryHub::default().bus(bus_metrics)));
    let (c, metrics_c) = c.start();

    let board = BoardId::parse("b").unwrap();
    let (_, mut rx1, doc1) = join_and_sync(&a, &board, 1).await;
    let (room_b, mut rx2, doc2) = join_and_sync(&b, &board, 2).await;
    let (_, mut rx3, doc3) = join_and_sync(&c, &board, 3).await;
    until_hibernating(&metrics_a, 1).await;
    until_hibernating(&metrics_c, 1).await;

    let update = append(&doc2, "from b");
    send(&room_b, 2, wire::client::encode_update(&update)).await;
    assert_eq!(next_update(&mut rx2).await, update, "the echo");
    apply(&doc1, &next_update(&mut rx1).await);
    assert_eq!(text_of(&doc1), "from b");
    assert_eq!(metrics_a.room_wakes.get(), 1);
    // C's catch-up runs every 5 s.
    apply(&doc3, &next_update(&mut rx3).await);
    assert_eq!(text_of(&doc3), "from b");
    assert_eq!(metrics_c.room_wakes.get(), 1);
    // Each relays it once: nothing more is waiting.
    for rx in [&mut rx1, &mut rx3] {
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.next())
                .await
                .is_err(),
            "a second copy"
        );
    }
}

/// A sleeping room whose last member leaves unloads; the log it folds is storage's (the room
/// holds an empty document then), and the board reloads whole.
#[tokio::test]
async fn a_room_that_unloads_asleep_compacts_from_storage() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(sqlite(&dir));
    setup.idle_unload_after = Duration::from_millis(300);
    let (rooms, metrics) = setup.start();
    let board = BoardId::parse("b").unwrap();
    let (room, mut rx, doc) = join_and_sync(&rooms, &board, 1).await;
    let update = append(&doc, "kept");
    send(&room, 1, wire::client::encode_update(&update)).await;
    assert_eq!(next_update(&mut rx).await, update);
    until_hibernating(&metrics, 1).await;
    room.send(RoomCommand::Leave { conn: ConnId(1) })
        .await
        .unwrap();
    drop(room);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rooms.loaded_count() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "not unloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.rooms_hibernating.get(), 0);
    // The compaction ran (a snapshot and no tail once it is done).
    let storage = sqlite(&dir);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let stored = storage.load(&board).await.unwrap().unwrap();
        if stored.tail_len == 0 {
            break stored;
        }
        assert!(tokio::time::Instant::now() < deadline, "never compacted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(text_of(&stored.to_doc(&board).unwrap()), "kept");
    let (_, _, again) = join_and_sync(&rooms, &board, 2).await;
    assert_eq!(text_of(&again), "kept");
}
