//! Reminders through the real server: a reminder lights its card's counter and moves its
//! avatar at the right moment even when nobody has the board open, and after a restart.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_server::clock::{Clock, SystemClock};
use std::net::SocketAddr;
use std::time::Duration;
use support::{Client, TestServer, WAIT, add_call, add_card, http, http_with, server_field};

const MINUTE: i64 = 60_000;

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

async fn metric(addr: SocketAddr, name: &str) -> i64 {
    let (_, text) = http(addr, "GET", "/metrics", None).await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn wait_for_metric(addr: SocketAddr, name: &str, pass: impl Fn(i64) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pass(metric(addr, name).await) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never got there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A card with one planned call whose reminder (15 minutes before its deadline) fires at
/// `lights`; returns once the server has written the card's first counter.
async fn card_with_reminder(server: &TestServer, board: &str, lights: i64) {
    let mut client = Client::connect(&server.url(board)).await;
    client
        .write(|txn| {
            add_card(txn, "card", "Call ACME");
            add_call(txn, "call", "card", lights + 15 * MINUTE);
        })
        .await;
    client.wait_for_upkeep("card").await;
    assert_eq!(
        server_field(&client.doc, "card", "counter").unwrap()["state"],
        "planned"
    );
}

async fn assert_reminded(server: &TestServer, board: &str, lights: i64) {
    let client = Client::connect(&server.url(board)).await;
    let counter = server_field(&client.doc, "card", "counter").unwrap();
    assert_eq!(counter["state"], "due", "{counter}");
    assert_eq!(server_field(&client.doc, "card", "avatar").unwrap(), "bob");
    assert_eq!(
        server_field(&client.doc, "card", "avatarReason").unwrap(),
        "reminder"
    );
    assert_eq!(
        server_field(&client.doc, "card", "avatarAt").unwrap(),
        lights
    );
}

#[tokio::test]
async fn a_reminder_fires_while_the_board_is_unloaded() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with(dir.path(), |c| c.room_idle = Duration::from_millis(100)).await;
    let lights = now_ms() + 1500;
    card_with_reminder(&server, "b", lights).await;
    // Nobody has the board open: the room unloads.
    wait_for_metric(server.addr, "funnel_rooms", |n| n == 0).await;
    let stored = metric(server.addr, "funnel_updates_stored_total").await;
    // The scheduler wakes it when the reminder fires, and the upkeep is stored, with no client.
    wait_for_metric(server.addr, "funnel_scheduler_wakeups_total", |n| n >= 1).await;
    wait_for_metric(server.addr, "funnel_updates_stored_total", |n| n > stored).await;
    assert!(now_ms() >= lights);
    assert_reminded(&server, "b", lights).await;
    server.stop().await;
}

#[tokio::test]
async fn a_reminder_due_during_a_restart_fires_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let lights = now_ms() + 1500;
    card_with_reminder(&server, "b", lights).await;
    server.stop().await;

    // The next process knows the wake-up from storage and wakes the board with no client.
    let server = TestServer::start(dir.path()).await;
    wait_for_metric(server.addr, "funnel_scheduler_wakeups_total", |n| n >= 1).await;
    assert!(now_ms() >= lights);
    assert_reminded(&server, "b", lights).await;
    server.stop().await;
}

/// Issue 21's scheduler bug: a fresh room took every reminder older than the stored avatar as
/// firing at the load, so a board opened again gave the avatar back to the reminder's owner.
#[tokio::test]
async fn an_old_reminder_does_not_take_the_avatar_back_after_an_unload_and_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with(dir.path(), |c| c.room_idle = Duration::from_millis(100)).await;
    let lights = now_ms() + 1000;
    let mut client = Client::connect(&server.url("b")).await;
    client
        .write(|txn| {
            add_card(txn, "card", "Call ACME");
            add_call(txn, "call", "card", lights + 15 * MINUTE);
        })
        .await;
    client
        .pump_until("the reminder to move the avatar to bob", |c, _| {
            server_field(&c.doc, "card", "avatarReason") == Some(serde_json::json!("reminder"))
        })
        .await;
    // Another person comments after the reminder fired: the avatar is theirs.
    let (status, body) = http_with(
        server.addr,
        "POST",
        "/api/v1/boards/b/cards/card/timeline",
        &[("X-Funnel-User", "dora")],
        Some(r#"{"kind":"comment","text":"called back"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    client
        .pump_until("the comment to move the avatar to dora", |c, _| {
            server_field(&c.doc, "card", "avatar") == Some(serde_json::json!("dora"))
        })
        .await;
    drop(client);
    wait_for_metric(server.addr, "funnel_rooms", |n| n == 0).await;
    let stored = metric(server.addr, "funnel_updates_stored_total").await;

    // Opened again: the load writes nothing, and the avatar stays the comment's.
    let mut client = Client::connect(&server.url("b")).await;
    client.drain_for(Duration::from_millis(300)).await;
    assert_eq!(server_field(&client.doc, "card", "avatar").unwrap(), "dora");
    assert_eq!(
        server_field(&client.doc, "card", "avatarReason").unwrap(),
        "comment"
    );
    assert_eq!(
        metric(server.addr, "funnel_updates_stored_total").await,
        stored,
        "the load rewrote the board"
    );
    server.stop().await;
}
