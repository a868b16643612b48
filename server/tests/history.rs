//! A card's history and board archives through the real server, on SQLite and on PostgreSQL:
//! `GET .../cards/{cardId}/history` lists the card's own events newest first (API and socket
//! writes, with actor, moves' stages and edits' old and new values), in pages, to viewers too,
//! and keeps a deleted card's; `updatedSince` finds a socket's edit through the feed; `PATCH /api/v1/boards/{id} {"archived"}` takes a board out of
//! the list into `?archived=true`, makes it read-only (API 409, sockets reopened as viewers)
//! until it is restored.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::board::{self, CardPlace};
use funnel_protocol::policy::Role;
use funnel_server::auth::{Auth, claims_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{Client, TestDatabase, TestServer, WAIT, json_call};

const SECRET: &str = "a test secret that is long enough for HS256";

fn token(user: &str, role: Role) -> String {
    let claims = claims_for(user, None, role, &[], Duration::from_secs(600));
    Auth::with_secret(SECRET).issue(&claims).unwrap().unwrap()
}

struct Api {
    addr: SocketAddr,
    bearer: String,
}

impl Api {
    fn new(addr: SocketAddr, user: &str, role: Role) -> Self {
        Self {
            addr,
            bearer: token(user, role),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, _, value) = json_call(self.addr, Some(&self.bearer), method, path, body).await;
        (status, value)
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, value) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }
}

/// A server on SQLite (`None`) or on the PostgreSQL database `url`.
async fn start(dir: &std::path::Path, database: Option<String>) -> TestServer {
    TestServer::start_with(dir, move |config| {
        config.auth_secret = Some(SECRET.into());
        config.database_url = database;
    })
    .await
}

/// A deal board: its id and its stages as (name, id).
async fn deal_board(admin: &Api) -> (String, Vec<(String, String)>) {
    support::deal_board(admin.addr, Some(&admin.bearer)).await
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// Waits until the card's history holds `n` events (a socket's update is stored in the room's
/// own time); returns them.
async fn wait_for_history(api: &Api, path: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = api.ok("GET", path, None, 200).await;
        let events = page["events"].as_array().unwrap().clone();
        if events.len() >= n {
            return events;
        }
        assert!(Instant::now() < deadline, "only {events:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_cards_history_lists_its_changes_newest_first(database: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), database).await;
    let admin = Api::new(server.addr, "ann", Role::Admin);
    let viewer = Api::new(server.addr, "vic", Role::Viewer);
    let (board, stages) = deal_board(&admin).await;
    let cards = format!("/api/v1/boards/{board}/cards");
    let card = admin
        .ok("POST", &cards, Some(json!({"title": "Acme"})), 201)
        .await;
    let card_id = card["id"].as_str().unwrap().to_owned();
    let other = admin
        .ok("POST", &cards, Some(json!({"title": "Other"})), 201)
        .await;
    let card_path = format!("{cards}/{card_id}");
    admin
        .ok(
            "PATCH",
            &card_path,
            Some(json!({"title": "Acme renewal", "amount": 5000})),
            200,
        )
        .await;
    admin
        .ok(
            "PATCH",
            &format!("{cards}/{}", other["id"].as_str().unwrap()),
            Some(json!({"title": "Other, edited"})),
            200,
        )
        .await;
    // Bob moves it over his socket into Won (a write that sets no `updatedAt`).
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before_move = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let won = support::stage_id(&stages, "Won").to_owned();
    let initial = stages[0].1.clone();
    let url = format!(
        "{}?token={}",
        server.url(&board),
        token("bob", Role::Member)
    );
    let mut bob = Client::connect(&url).await;
    bob.write(|txn| board::move_card(txn, &card_id, &won, CardPlace::Top).unwrap())
        .await;
    let history = format!("{card_path}/history");
    let events = wait_for_history(&viewer, &history, 4).await;
    assert_eq!(
        types(&events),
        ["card.won", "card.moved", "card.updated", "card.created"],
        "newest first, the other card's edit left out: {events:?}"
    );
    // `updatedSince` finds the socket's move, and not the card edited before it.
    let since = admin
        .ok(
            "GET",
            &format!("{cards}?updatedSince={before_move}"),
            None,
            200,
        )
        .await;
    let ids: Vec<&str> = since["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [card_id.as_str()], "{since}");
    let moved = &events[1]["data"];
    assert_eq!(
        (&moved["from"], &moved["to"]),
        (&json!(initial), &json!(won))
    );
    assert_eq!(
        (&moved["actor"], &moved["origin"]),
        (&json!("bob"), &json!("socket"))
    );
    let edited = &events[2]["data"];
    assert_eq!(edited["actor"], "ann");
    assert_eq!(edited["origin"], "api");
    let changes = edited["changes"].as_array().unwrap();
    assert!(
        changes.contains(&json!({"field": "title", "before": "Acme", "after": "Acme renewal"})),
        "{changes:?}"
    );
    assert!(
        changes.contains(&json!({"field": "amount", "before": 0, "after": 5000})),
        "{changes:?}"
    );
    // Archiving is part of the history too.
    admin
        .ok("PATCH", &card_path, Some(json!({"archived": true})), 200)
        .await;
    let events = wait_for_history(&viewer, &history, 5).await;
    assert_eq!(events[0]["type"], "card.updated");
    assert_eq!(events[0]["data"]["changes"][0]["field"], "archivedAt");
    assert_eq!(events[0]["data"]["changes"][0]["before"], Value::Null);

    // Pages of two, then the rest; `next` is null on the last page.
    let first = viewer
        .ok("GET", &format!("{history}?limit=2"), None, 200)
        .await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap();
    let second = viewer
        .ok(
            "GET",
            &format!("{history}?limit=2&before={next}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        types(second["events"].as_array().unwrap()),
        ["card.moved", "card.updated"]
    );
    let third = viewer
        .ok(
            "GET",
            &format!(
                "{history}?limit=2&before={}",
                second["next"].as_str().unwrap()
            ),
            None,
            200,
        )
        .await;
    assert_eq!(types(third["events"].as_array().unwrap()), ["card.created"]);
    assert_eq!(third["next"], Value::Null);

    // A deleted card keeps its history; a card that never was is a 404.
    admin.ok("DELETE", &card_path, None, 204).await;
    let events = wait_for_history(&viewer, &history, 6).await;
    assert_eq!(events[0]["type"], "card.deleted");
    let (status, problem) = viewer
        .call("GET", &format!("{cards}/no-such-card/history"), None)
        .await;
    assert_eq!(status, 404, "{problem}");
    for bad in ["limit=0", "limit=201", "before=-1", "before=soon"] {
        let (status, problem) = viewer.call("GET", &format!("{history}?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {problem}");
        assert!(problem["detail"].is_string(), "{problem}");
    }
    let (status, _) = viewer
        .call("GET", "/api/v1/boards/no-such-board/cards/x/history", None)
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

async fn an_archived_board_leaves_the_list_and_is_read_only_until_restored(
    database: Option<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), database).await;
    let admin = Api::new(server.addr, "ann", Role::Admin);
    let member = Api::new(server.addr, "bob", Role::Member);
    let (board, _) = deal_board(&admin).await;
    let (kept, _) = deal_board(&admin).await;
    let cards = format!("/api/v1/boards/{board}/cards");
    member
        .ok("POST", &cards, Some(json!({"title": "Before"})), 201)
        .await;
    let url = format!(
        "{}?token={}",
        server.url(&board),
        token("bob", Role::Member)
    );
    let mut open = Client::connect(&url).await;
    open.wait_for_card("Before").await;

    // Members cannot archive.
    let path = format!("/api/v1/boards/{board}");
    let (status, _) = member
        .call("PATCH", &path, Some(json!({"archived": true})))
        .await;
    assert_eq!(status, 403);
    let settings = admin
        .ok("PATCH", &path, Some(json!({"archived": true})), 200)
        .await;
    assert_eq!(settings["archived"], true, "{settings}");
    assert!(settings["archivedAt"].as_i64().unwrap() > 0, "{settings}");
    assert_eq!(settings["name"], "Q4");
    // The open socket reconnects (1012) to find the board read-only.
    let (code, reason) = open.expect_close().await;
    assert_eq!(code, 1012, "{reason}");

    let listed = admin.ok("GET", "/api/v1/boards", None, 200).await;
    let ids: Vec<&str> = listed["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept.as_str()]);
    let archived = admin
        .ok("GET", "/api/v1/boards?archived=true", None, 200)
        .await;
    assert_eq!(archived["boards"][0]["id"], board.as_str());
    assert_eq!(archived["boards"][0]["archived"], true);
    let (status, _) = admin
        .call("GET", "/api/v1/boards?archived=maybe", None)
        .await;
    assert_eq!(status, 400);
    let one = admin.ok("GET", &path, None, 200).await;
    assert_eq!(one["archived"], true);

    // Read-only: reads work, API writes are a 409, a socket's write is taken back.
    let list = member.ok("GET", &cards, None, 200).await;
    assert_eq!(list["cards"].as_array().unwrap().len(), 1);
    let (status, problem) = member
        .call("POST", &cards, Some(json!({"title": "After"})))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("archived"),
        "{problem}"
    );
    let (status, _) = admin
        .call("PATCH", &path, Some(json!({"name": "Renamed"})))
        .await;
    assert_eq!(status, 409);
    let mut reopened = Client::connect(&url).await;
    reopened.wait_for_card("Before").await;
    reopened
        .write(|txn| support::add_card(txn, "socket-card", "Over the socket"))
        .await;
    reopened
        .pump_until("the refused card is taken back", |c, _| {
            !c.card_titles().contains(&"Over the socket".to_owned())
        })
        .await;

    // Restored, with a rename in the same call: back in the list, writable again.
    let settings = admin
        .ok(
            "PATCH",
            &path,
            Some(json!({"archived": false, "name": "Q4 again"})),
            200,
        )
        .await;
    assert_eq!(settings["archived"], false, "{settings}");
    assert_eq!(settings["archivedAt"], Value::Null);
    assert_eq!(settings["name"], "Q4 again");
    let (code, _) = reopened.expect_close().await;
    assert_eq!(code, 1012);
    member
        .ok("POST", &cards, Some(json!({"title": "After"})), 201)
        .await;
    let listed = admin.ok("GET", "/api/v1/boards", None, 200).await;
    assert_eq!(listed["boards"].as_array().unwrap().len(), 2);
    let cards = member.ok("GET", &cards, None, 200).await;
    let titles: Vec<&str> = cards["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert!(!titles.contains(&"Over the socket"), "{titles:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cards_history_on_sqlite() {
    a_cards_history_lists_its_changes_newest_first(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cards_history_on_postgres() {
    let db = TestDatabase::new().await;
    a_cards_history_lists_its_changes_newest_first(Some(db.url.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_board_on_sqlite() {
    an_archived_board_leaves_the_list_and_is_read_only_until_restored(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_board_on_postgres() {
    let db = TestDatabase::new().await;
    an_archived_board_leaves_the_list_and_is_read_only_until_restored(Some(db.url.clone())).await;
}
