//! Stock clients keep working (issue 17): an oversized update is refused in a way that stops
//! the client, and its reconnects are turned away cheaply; a client's own update is confirmed
//! to it; a board larger than a connection's outgoing queue can still be joined.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::wire::{self, ServerMessage};
use support::{Client, TestServer, WAIT, add_card, card_titles};
use tokio_tungstenite::tungstenite;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, Transact, Update};

#[tokio::test]
async fn an_oversized_update_gets_4414_and_the_same_address_is_turned_away_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.max_frame_bytes = 64 * 1024;
    })
    .await;
    let url = server.url("oversize");
    let mut owner = Client::connect(&url).await;

    // An old y-websocket release ignores 44xx: it reconnects and uploads the update again.
    let big_update = {
        let doc = yrs::Doc::new();
        let mut txn = doc.transact_mut();
        add_card(&mut txn, "big", &"x".repeat(80_000));
        txn.encode_update_v1()
    };
    for _ in 0..2 {
        let mut big = Client::connect_raw(&url).await;
        big.send(wire::client::encode_update(&big_update)).await;
        let (code, reason) = big.expect_close().await;
        assert_eq!(code, 4414, "{reason}");
        assert!(reason.contains("65536 byte limit"), "{reason}");
    }

    // Reconnecting again: refused with 429 and a retry hint before any upgrade, so nothing of
    // the board is loaded or queued for it.
    let refused = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .unwrap();
    let Err(tungstenite::Error::Http(response)) = refused else {
        panic!("a reconnect right after the refusal is turned away: {refused:?}");
    };
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");

    // Only that board: the same address opens another one, and the board still serves.
    let elsewhere = Client::connect(&server.url("elsewhere")).await;
    assert!(elsewhere.card_titles().is_empty());
    owner.write(|txn| add_card(txn, "c1", "small")).await;
    owner.wait_for_card("small").await;
    assert_eq!(card_titles(&owner.doc), ["small"]);
    server.stop().await;
}

#[tokio::test]
async fn a_clients_own_update_comes_back_to_it_once_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = server.url("echo");
    let mut writer = Client::connect(&url).await;
    let mut other = Client::connect(&url).await;
    let sent = writer.write(|txn| add_card(txn, "c1", "mine")).await;
    writer
        .pump_until(
            "the echo of its own update",
            |_, message| matches!(message, Some(ServerMessage::Update(u)) if u[..] == sent[..]),
        )
        .await;
    other.wait_for_card("mine").await;
    // A step 2 that carries what the server lacks is confirmed the same way.
    let offline = yrs::Doc::new();
    {
        let state = writer
            .doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        offline
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        add_card(&mut offline.transact_mut(), "c2", "offline");
    }
    let author = offline.client_id();
    let mut back = Client::reconnect(&url, offline).await;
    back.pump_until("the echo of its step 2", |_, message| {
        matches!(message, Some(ServerMessage::Update(u))
            if wire::decode_update_v1(u).unwrap().state_vector().get(&author) > 0)
    })
    .await;
    other.wait_for_card("offline").await;
    server.stop().await;
}

/// Issue 17, item 2: the join answer was queued whole, and a board larger than the outgoing
/// queue's byte budget closed every joiner with 1013, forever.
#[tokio::test]
async fn a_board_larger_than_the_outbox_budget_is_joined_by_a_fresh_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.outbox_bytes = 64 * 1024;
    })
    .await;
    let url = server.url("large");
    let mut writer = Client::connect(&url).await;
    // About 400 KB in 20 cards of 20 KB: six times the budget.
    let long = "y".repeat(20_000);
    for i in 0..20 {
        let id = format!("c{i}");
        writer
            .write(|txn| add_card(txn, &id, &format!("{i} {long}")))
            .await;
        // Its echo (in pieces) and the card's upkeep are read before the next write: the
        // writer's own queue has the small budget too.
        writer.wait_for_upkeep(&id).await;
    }
    let size = writer
        .doc
        .transact()
        .encode_state_as_update_v1(&yrs::StateVector::default())
        .len();
    assert!(size > 6 * 64 * 1024, "{size}");

    for _ in 0..2 {
        let joiner = Client::connect(&url).await;
        assert_eq!(joiner.card_titles().len(), 20);
        assert_eq!(joiner.card_titles(), writer.card_titles());
    }
    // A client that already holds part of the board gets the rest the same way.
    let partial = yrs::Doc::new();
    let rejoiner = Client::reconnect(&url, partial).await;
    assert_eq!(rejoiner.card_titles().len(), 20);
    server.stop().await;
}
