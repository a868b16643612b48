//! Clients the server has lost keep working (issue 17, items 1 and 4): a server restored from a
//! backup of its data directory, or with its data wiped, serves a client whose copy holds what
//! the server no longer has. Its own edits are taken back, what it may not write (server-written
//! card keys) is recomputed by the server, and nobody is closed 4403 or 1007.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::board;
use funnel_protocol::schema::{StageKind, card, root};
use std::path::Path;
use std::time::Duration;
use support::{Client, TestServer, add_call, add_card, card_titles, doc_state, server_field};
use yrs::{Map, Out, ReadTxn, Transact};

/// An hour from now, in milliseconds: a call due then keeps its card's counter `planned`.
fn in_an_hour() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_millis()).unwrap() + 3_600_000
}

/// Copies the SQLite files of a stopped server's data directory (`funnel.db` and, if any, its
/// `-wal` and `-shm` companions) from `from` to `to`, removing companions `from` lacks.
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["funnel.db", "funnel.db-wal", "funnel.db-shm"] {
        let source = from.join(name);
        let target = to.join(name);
        if source.exists() {
            std::fs::copy(&source, &target).unwrap();
        } else if target.exists() {
            std::fs::remove_file(&target).unwrap();
        }
    }
}

/// The counter a card holds in `doc`, as JSON.
fn counter(doc: &yrs::Doc, card_id: &str) -> Option<serde_json::Value> {
    server_field(doc, card_id, card::COUNTER)
}

#[tokio::test]
async fn a_client_of_a_server_restored_from_a_backup_is_served_and_its_edits_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backup = dir.path().join("backup");
    let board_id = "restored";

    // Before the backup: a card with a call; the server writes its counter.
    let server = TestServer::start(&data).await;
    let mut client = Client::connect(&server.url(board_id)).await;
    client
        .write(|txn| {
            add_card(txn, "c1", "before the backup");
            add_call(txn, "a1", "c1", in_an_hour());
        })
        .await;
    client.wait_for_upkeep("c1").await;
    server.stop().await;
    copy_store(&data, &backup);

    // After the backup: another card, its counter written by the server.
    let server = TestServer::start(&data).await;
    let mut client = Client::reconnect(&server.url(board_id), client.doc).await;
    client
        .write(|txn| {
            add_card(txn, "c2", "after the backup");
            add_call(txn, "a2", "c2", in_an_hour());
        })
        .await;
    client.wait_for_upkeep("c2").await;
    let upkeep_counter = counter(&client.doc, "c2");
    server.stop().await;

    // Offline, the client forges a counter (what no client may write) and edits a title.
    {
        let doc = &client.doc;
        let mut txn = doc.transact_mut();
        let cards = txn.get_map(root::CARDS).unwrap();
        let Some(Out::YMap(c1)) = cards.get(&txn, "c1") else {
            panic!("card c1")
        };
        c1.insert(&mut txn, card::COUNTER, "forged");
        c1.insert(&mut txn, card::TITLE, "edited offline");
    }

    // The data directory is restored from the backup: the server lost c2 and its counter.
    copy_store(&backup, &data);
    let server = TestServer::start(&data).await;
    let fresh = Client::connect(&server.url(board_id)).await;
    assert_eq!(card_titles(&fresh.doc), ["before the backup"]);
    drop(fresh);

    // The client reconnects: served (a close would fail the sync), its edits taken back.
    let mut client = Client::reconnect(&server.url(board_id), client.doc).await;
    client
        .pump_until("the forged counter taken back", |c, _| {
            counter(&c.doc, "c1").is_some_and(|v| v != "forged")
        })
        .await;
    assert!(
        client.drain_for(Duration::from_millis(300)).await,
        "still connected"
    );
    assert_eq!(
        card_titles(&client.doc),
        ["after the backup", "edited offline"]
    );
    // c2's counter is the server's: recomputed by its upkeep, the same as before the restore.
    assert_eq!(counter(&client.doc, "c2"), upkeep_counter);

    // Everyone else gets the same board, and so does storage.
    let mut other = Client::connect(&server.url(board_id)).await;
    other
        .pump_until("the same board", |c, _| {
            doc_state(&c.doc).1 == doc_state(&client.doc).1
        })
        .await;
    server.stop().await;
    let server = TestServer::start(&data).await;
    let stored = Client::connect(&server.url(board_id)).await;
    assert_eq!(doc_state(&stored.doc).1, doc_state(&client.doc).1);
    assert_eq!(counter(&stored.doc, "c1"), counter(&client.doc, "c1"));
    server.stop().await;
}

#[tokio::test]
async fn a_client_of_a_wiped_server_is_served_by_the_board_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let board_id = "wiped";

    let server = TestServer::start(&data).await;
    let mut client = Client::connect(&server.url(board_id)).await;
    client
        .write(|txn| add_card(txn, "c1", "kept by the client"))
        .await;
    client.drain_for(Duration::from_millis(200)).await;
    server.stop().await;

    // The data is wiped; opening the board creates it again, with the same stage ids.
    std::fs::remove_dir_all(&data).unwrap();
    let server = TestServer::start(&data).await;
    let mut client = Client::reconnect(&server.url(board_id), client.doc).await;
    assert!(
        client.drain_for(Duration::from_millis(300)).await,
        "still connected"
    );
    let stages = board::stages(&client.doc.transact());
    assert_eq!(stages.len(), 7, "one set of default stages");
    assert_eq!(
        stages
            .iter()
            .filter(|s| s.kind == StageKind::Initial)
            .count(),
        1
    );
    board::check_invariants(&client.doc.transact()).unwrap();
    assert_eq!(card_titles(&client.doc), ["kept by the client"]);

    let other = Client::connect(&server.url(board_id)).await;
    assert_eq!(doc_state(&other.doc).1, doc_state(&client.doc).1);
    server.stop().await;
}

/// How a client asks for funnel's notices.
#[derive(Clone, Copy)]
enum Ask {
    /// The funnel message, first on the socket.
    InBand,
    /// `?notices=1` on the URL (what the web client does).
    Query,
}

/// Connects with `doc` as a client that asks for funnel's notices, and reads until it has
/// synced and received the recovered notice its step 2 earned.
async fn reconnect_for_notice(
    url: &str,
    doc: yrs::Doc,
    ask: Ask,
) -> (Client, funnel_protocol::wire::Recovered) {
    use funnel_protocol::wire::{self, ServerMessage};
    let mut client = match ask {
        Ask::InBand => Client::connect_raw(url).await,
        Ask::Query => Client::connect_raw(&format!("{url}?notices=1")).await,
    };
    client.doc = doc;
    if let Ask::InBand = ask {
        client.send(wire::client::encode_wants_notices()).await;
    }
    let sv = client.doc.transact().state_vector();
    client.send(wire::client::encode_sync_step1(&sv)).await;
    let mut notice = None;
    let mut synced = false;
    client
        .pump_until("the sync and the recovered notice", |_, message| {
            if let Some(ServerMessage::Recovered(recovered)) = message {
                notice = Some(recovered.clone());
            }
            synced |= matches!(message, Some(ServerMessage::SyncStep2(_)));
            synced && notice.is_some()
        })
        .await;
    (client, notice.unwrap())
}

/// The web client's banner rests on this: after a restore, a client that had received another
/// writer's card the server lost is told, in the notice after its step 2, that the board held
/// none of that writer's changes; a client that brings only its own offline edits is told the
/// board held none of its own, and nothing of anyone else's.
#[tokio::test]
async fn after_a_restore_the_notice_names_the_writers_whose_changes_the_server_lacked() {
    use funnel_protocol::wire::TakenBack;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backup = dir.path().join("backup");
    let board_id = "noticed";

    let server = TestServer::start(&data).await;
    let mut reader = Client::connect(&server.url(board_id)).await;
    reader
        .write(|txn| add_card(txn, "c1", "before the backup"))
        .await;
    reader
        .pump_until("the echo of the reader's card (stored)", |_, message| {
            matches!(
                message,
                Some(funnel_protocol::wire::ServerMessage::Update(_))
            )
        })
        .await;
    server.stop().await;
    copy_store(&data, &backup);

    // After the backup another writer adds a card; the reader receives it.
    let server = TestServer::start(&data).await;
    let mut reader = Client::reconnect(&server.url(board_id), reader.doc).await;
    let mut writer = Client::connect(&server.url(board_id)).await;
    writer
        .write(|txn| add_card(txn, "c2", "after the backup"))
        .await;
    reader.wait_for_card("after the backup").await;
    let writer_id = writer.doc.client_id();
    drop(writer);
    server.stop().await;

    copy_store(&backup, &data);
    let server = TestServer::start(&data).await;
    let (reader, notice) =
        reconnect_for_notice(&server.url(board_id), reader.doc, Ask::InBand).await;
    assert_eq!(notice.held.get(&writer_id), 0, "{notice:?}");
    assert!(
        !notice.held.contains_client(&reader.doc.client_id()),
        "the reader brought nothing of its own: {notice:?}"
    );
    assert!(
        notice
            .taken_back
            .iter()
            .all(|kind| *kind == TakenBack::ServerFields),
        "a member's card is no write taken back: {notice:?}"
    );
    assert_eq!(
        card_titles(&reader.doc),
        ["after the backup", "before the backup"]
    );

    // A client that only brings its own offline edits (asking in its URL, as the web client
    // does): the notice names it alone, at the clock the board held of it (none).
    let mut offline = Client::connect(&server.url(board_id)).await;
    offline.drain_for(Duration::from_millis(200)).await;
    drop(offline.ws);
    {
        let mut txn = offline.doc.transact_mut();
        add_card(&mut txn, "c3", "made offline");
    }
    let offline_id = offline.doc.client_id();
    let (_back, notice) =
        reconnect_for_notice(&server.url(board_id), offline.doc, Ask::Query).await;
    let named: Vec<_> = notice
        .held
        .iter()
        .map(|(client, clock)| (*client, *clock))
        .collect();
    assert_eq!(named, [(offline_id, 0)]);
    assert!(notice.taken_back.is_empty(), "{notice:?}");
    server.stop().await;
}
