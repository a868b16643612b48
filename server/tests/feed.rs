//! The change feed through the real server: the events of API writes and a socket move, in
//! order, with their actor and origin; cursors that resume; the `types` and `boardId` filters
//! and the token's boards; the SSE stream resuming from `Last-Event-ID` and waking on a new
//! event; no `card.updated` from the server's counter/avatar upkeep; none from a viewer's
//! refused write; and two instances on PostgreSQL and Redis, where each event exists once and
//! a reader sees the ids in order.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::BoardId;
use funnel_protocol::board::{self, CardPlace};
use funnel_protocol::policy::Role;
use funnel_server::auth::{Auth, claims_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{Client, TestDatabase, TestServer, WAIT, http_full, json_call};
use yrs::Transact;

const SECRET: &str = "a test secret that is long enough for HS256";

fn token(user: &str, role: Role, boards: &[&str]) -> String {
    let boards: Vec<BoardId> = boards.iter().map(|b| BoardId::parse(b).unwrap()).collect();
    let claims = claims_for(user, None, role, &boards, Duration::from_secs(600));
    Auth::with_secret(SECRET).issue(&claims).unwrap().unwrap()
}

/// A caller of the API with a bearer token.
struct Api {
    addr: SocketAddr,
    bearer: String,
}

impl Api {
    fn new(addr: SocketAddr, user: &str, role: Role) -> Self {
        Self::limited(addr, user, role, &[])
    }

    fn limited(addr: SocketAddr, user: &str, role: Role, boards: &[&str]) -> Self {
        Self {
            addr,
            bearer: token(user, role, boards),
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

    /// The feed's page at `query` (`after=...&types=...`).
    async fn events(&self, query: &str) -> (Vec<Value>, String) {
        let page = self
            .ok("GET", &format!("/api/v1/events?{query}"), None, 200)
            .await;
        let events = page["events"].as_array().unwrap().clone();
        (events, page["next"].as_str().unwrap().to_owned())
    }

    /// Every event after `after` (paging through the feed).
    async fn all_after(&self, after: &str, extra: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor = after.to_owned();
        for _ in 0..100 {
            let (page, next) = self
                .events(&format!("after={cursor}&limit=1000{extra}"))
                .await;
            if page.is_empty() {
                return all;
            }
            all.extend(page);
            cursor = next;
        }
        panic!("the feed did not end after 100 pages");
    }

    /// A deal board; returns its id and its stages' ids by name.
    async fn deal_board(&self) -> (String, Vec<(String, String)>) {
        support::deal_board(self.addr, Some(&self.bearer)).await
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn ids(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn increasing(ids: &[i64]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

async fn start(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(dir, |config| config.auth_secret = Some(SECRET.into())).await
}

fn socket_url(server: &TestServer, board: &str, user: &str, role: Role) -> String {
    format!("{}?token={}", server.url(board), token(user, role, &[]))
}

/// Waits until the feed after `after` holds `n` events (the room stores a socket's update in
/// its own time); returns them.
async fn wait_for_events(api: &Api, after: &str, extra: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let events = api.all_after(after, extra).await;
        if events.len() >= n {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events: {events:?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_writes_and_a_socket_move_make_their_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = Api::new(server.addr, "ann", Role::Admin);
    let (board, stages) = admin.deal_board().await;
    let (before, start) = admin.events("").await;
    assert!(
        before.is_empty(),
        "a new board's creation is no change event: {before:?}"
    );
    assert_eq!(start, "0");

    let cards = format!("/api/v1/boards/{board}/cards");
    let card = admin
        .ok(
            "POST",
            &cards,
            Some(json!({"title": "Deal", "amount": 100})),
            201,
        )
        .await;
    let card_id = card["id"].as_str().unwrap().to_owned();
    let card_path = format!("{cards}/{card_id}");
    admin
        .ok("PATCH", &card_path, Some(json!({"title": "Big deal"})), 200)
        .await;
    let activity = admin
        .ok(
            "POST",
            &format!("{card_path}/activities"),
            Some(
                json!({"kind": "call", "subject": "call back", "deadline": 4_000_000_000_000_i64}),
            ),
            201,
        )
        .await;
    let activity_path = format!(
        "{card_path}/activities/{}",
        activity["id"].as_str().unwrap()
    );
    admin
        .ok("PATCH", &activity_path, Some(json!({"done": true})), 200)
        .await;
    let preparing = support::stage_id(&stages, "Preparing documents");
    admin
        .ok(
            "PATCH",
            &card_path,
            Some(json!({"stageId": preparing})),
            200,
        )
        .await;

    // A member moves it over the socket, into the success stage.
    let mut client = Client::connect(&socket_url(&server, &board, "bob", Role::Member)).await;
    let won = support::stage_id(&stages, "Won").to_owned();
    client
        .write(|txn| board::move_card(txn, &card_id, &won, CardPlace::Top).unwrap())
        .await;
    wait_for_events(&admin, "0", "", 7).await;
    admin.ok("DELETE", &card_path, None, 204).await;
    admin
        .ok(
            "POST",
            &format!("/api/v1/boards/{board}/stages"),
            Some(json!({"name": "Negotiation", "color": "#123456"})),
            201,
        )
        .await;

    let events = admin.all_after("0", "").await;
    assert_eq!(
        types(&events),
        [
            "card.created",
            "card.updated",
            "activity.created",
            "activity.completed",
            "card.moved",
            "card.moved",
            "card.won",
            "card.deleted",
            "stage.created",
        ],
        "{events:#?}"
    );
    assert!(increasing(&ids(&events)));
    for event in &events {
        assert_eq!(event["data"]["boardId"], board.as_str());
        assert!(event["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }
    let [
        created,
        updated,
        activity_created,
        completed,
        api_move,
        socket_move,
        won_event,
        deleted,
        stage_created,
    ] = &events[..]
    else {
        unreachable!()
    };
    // The card as the API shows it, the actor and the origin.
    assert_eq!(created["data"]["cardId"], card_id.as_str());
    assert_eq!(created["data"]["card"]["title"], "Deal");
    assert_eq!(created["data"]["card"]["amount"], 100);
    assert_eq!(
        created["data"]["card"]["stageId"],
        support::stage_id(&stages, "New")
    );
    assert_eq!(created["data"]["actor"], "ann");
    assert_eq!(created["data"]["origin"], "api");
    assert_eq!(
        updated["data"]["changes"],
        json!([{"field": "title", "before": "Deal", "after": "Big deal"}])
    );
    assert_eq!(updated["data"]["card"]["title"], "Big deal");
    assert_eq!(activity_created["data"]["activity"]["kind"], "call");
    assert_eq!(activity_created["data"]["cardId"], card_id.as_str());
    assert_eq!(completed["data"]["activity"]["done"], true);
    assert_eq!(api_move["data"]["from"], support::stage_id(&stages, "New"));
    assert_eq!(api_move["data"]["to"], preparing);
    assert_eq!(socket_move["data"]["from"], preparing);
    assert_eq!(socket_move["data"]["to"], won.as_str());
    assert_eq!(socket_move["data"]["origin"], "socket");
    assert_eq!(socket_move["data"]["actor"], "bob");
    assert_eq!(socket_move["data"]["card"]["stageId"], won.as_str());
    assert_eq!(won_event["data"]["to"], won.as_str());
    assert_eq!(deleted["data"]["card"]["title"], "Big deal");
    assert_eq!(stage_created["data"]["stage"]["name"], "Negotiation");
    assert!(stage_created["data"]["cardId"].is_null());

    let (_, _, metrics) = http_full(
        server.addr,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {}", admin.bearer))],
        None,
    )
    .await;
    let stored: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("funnel_change_events_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no change events metric in {metrics}"));
    assert_eq!(stored, events.len());
    // Cursors resume: after any event, exactly the rest; pages of 2 make up the whole.
    let all_ids = ids(&events);
    for (i, id) in all_ids.iter().enumerate() {
        let rest = admin.all_after(&id.to_string(), "").await;
        assert_eq!(ids(&rest), all_ids[i + 1..]);
    }
    let mut paged = Vec::new();
    let mut cursor = "0".to_owned();
    for _ in 0..10 {
        let (page, next) = admin.events(&format!("after={cursor}&limit=2")).await;
        assert!(page.len() <= 2);
        if page.is_empty() {
            assert_eq!(next, cursor, "an empty page keeps the cursor");
            break;
        }
        paged.extend(page);
        cursor = next;
    }
    assert_eq!(ids(&paged), all_ids);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_and_board_filters_and_the_tokens_boards() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = Api::new(server.addr, "ann", Role::Admin);
    let (one, stages_one) = admin.deal_board().await;
    let (two, _) = admin.deal_board().await;
    let won = support::stage_id(&stages_one, "Won");
    for (board, body) in [
        (&one, json!({"title": "A"})),
        (&two, json!({"title": "B"})),
        // Made in the success stage: created, not won.
        (&one, json!({"title": "C", "stageId": won})),
    ] {
        admin
            .ok(
                "POST",
                &format!("/api/v1/boards/{board}/cards"),
                Some(body),
                201,
            )
            .await;
    }
    let all = admin.all_after("0", "").await;
    assert_eq!(all.len(), 3, "{all:?}");
    let of_two = admin.all_after("0", &format!("&boardId={two}")).await;
    assert_eq!(of_two.len(), 1);
    assert_eq!(of_two[0]["data"]["card"]["title"], "B");
    // A move, to filter by type.
    let a = all[0]["data"]["cardId"].as_str().unwrap().to_owned();
    admin
        .ok(
            "PATCH",
            &format!("/api/v1/boards/{one}/cards/{a}"),
            Some(json!({"stageId": support::stage_id(&stages_one, "Lost")})),
            200,
        )
        .await;
    let moves = admin.all_after("0", "&types=card.moved").await;
    assert_eq!(types(&moves), ["card.moved"]);
    let outcomes = admin.all_after("0", "&types=card.won,card.lost").await;
    assert_eq!(types(&outcomes), ["card.lost"]);
    let cards = admin.all_after("0", "&types=card.*").await;
    assert_eq!(cards.len(), 5);
    assert!(admin.all_after("0", "&types=stage.*").await.is_empty());
    // A token limited to board two sees only its events, and may not ask for board one.
    let limited = Api::limited(server.addr, "ann", Role::Viewer, &[&two]);
    let seen = limited.all_after("0", "").await;
    assert_eq!(ids(&seen), ids(&of_two));
    let (status, problem) = limited
        .call("GET", &format!("/api/v1/events?boardId={one}"), None)
        .await;
    assert_eq!(status, 403, "{problem}");
    // Bad input: a clear 400.
    for query in [
        "after=abc",
        "after=-1",
        "types=card.flipped",
        "limit=0",
        "limit=5000",
        "boardId=",
    ] {
        let (status, problem) = admin
            .call("GET", &format!("/api/v1/events?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query}: {problem}");
    }
    // Without a token: 401.
    let (status, _, _) = http_full(server.addr, "GET", "/api/v1/events", &[], None).await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upkeep_and_a_viewers_refused_writes_make_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = Api::new(server.addr, "ann", Role::Admin);
    let (board, _) = admin.deal_board().await;
    let cards = format!("/api/v1/boards/{board}/cards");
    let card = admin
        .ok("POST", &cards, Some(json!({"title": "Deal"})), 201)
        .await;
    let card_id = card["id"].as_str().unwrap().to_owned();
    // An activity lit at once: the upkeep rewrites the card's counter (and its avatar
    // follows the responsible); an incoming call on the timeline moves the avatar too.
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 60_000;
    admin
        .ok(
            "POST",
            &format!("{cards}/{card_id}/activities"),
            Some(json!({"kind": "call", "deadline": soon, "responsible": "bob"})),
            201,
        )
        .await;
    let mut watcher = Client::connect(&socket_url(&server, &board, "ann", Role::Admin)).await;
    watcher
        .pump_until("the counter lit", |c, _| {
            support::server_field(&c.doc, &card_id, "counter")
                .is_some_and(|counter| counter["lit"] == 1)
        })
        .await;
    let events = admin.all_after("0", "").await;
    assert_eq!(
        types(&events),
        ["card.created", "activity.created"],
        "{events:#?}"
    );
    let cursor = ids(&events).last().unwrap().to_string();

    // A viewer's socket write is refused (nothing of it stays): no event.
    let mut viewer = Client::connect(&socket_url(&server, &board, "vic", Role::Viewer)).await;
    viewer
        .write(|txn| {
            board::edit_card(
                txn,
                &card_id,
                board::CardEdit {
                    title: Some("Hijacked".into()),
                    ..board::CardEdit::default()
                },
            )
            .unwrap()
        })
        .await;
    let viewer_api = Api::new(server.addr, "vic", Role::Viewer);
    let (status, _) = viewer_api
        .call(
            "PATCH",
            &format!("{cards}/{card_id}"),
            Some(json!({"title": "Hijacked"})),
        )
        .await;
    assert_eq!(status, 403);
    // A member's write after them shows that the room has handled the viewer's.
    let member = Api::new(server.addr, "bob", Role::Member);
    member
        .ok(
            "PATCH",
            &format!("{cards}/{card_id}"),
            Some(json!({"client": "ACME"})),
            200,
        )
        .await;
    let after = admin.all_after(&cursor, "").await;
    assert_eq!(types(&after), ["card.updated"], "{after:#?}");
    assert_eq!(
        after[0]["data"]["changes"],
        json!([{"field": "client", "before": "", "after": "ACME"}])
    );
    assert_eq!(after[0]["data"]["actor"], "bob");
    let card = admin
        .ok("GET", &format!("{cards}/{card_id}"), None, 200)
        .await;
    assert_eq!(card["title"], "Deal");
    server.stop().await;
}

/// A minimal SSE reader over reqwest: `(id, data)` of each event, in order.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = reqwest::Client::new()
            .get(format!("http://{addr}/api/v1/events?{query}"))
            .header("Accept", "text/event-stream")
            .header(
                "Authorization",
                format!("Bearer {}", token("ann", Role::Admin, &[])),
            );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = tokio::time::timeout(WAIT, request.send())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str(value.trim()).unwrap());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    return (id, data);
                }
                continue; // a keep-alive comment
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream goes on");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_resumes_from_last_event_id_and_wakes_on_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = Api::new(server.addr, "ann", Role::Admin);
    let (board, _) = admin.deal_board().await;
    let cards = format!("/api/v1/boards/{board}/cards");
    for title in ["one", "two", "three"] {
        admin
            .ok("POST", &cards, Some(json!({"title": title})), 201)
            .await;
    }
    let events = admin.all_after("0", "").await;
    let first = ids(&events)[0].to_string();
    // Resumes after the first: the other two, then what is stored while it listens.
    let mut stream = SseReader::open(server.addr, "after=0", &[("Last-Event-ID", &first)]).await;
    let (id, event) = stream.next().await;
    assert_eq!(id, ids(&events)[1].to_string());
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["data"]["card"]["title"], "two");
    assert_eq!(stream.next().await.1["data"]["card"]["title"], "three");
    // Without a cursor the stream starts now; a filtered one skips what does not pass.
    let mut live = SseReader::open(server.addr, "types=card.moved", &[]).await;
    admin
        .ok("POST", &cards, Some(json!({"title": "four"})), 201)
        .await;
    let (_, fourth) = stream.next().await;
    assert_eq!(fourth["type"], "card.created");
    assert_eq!(fourth["data"]["card"]["title"], "four");
    let card = fourth["data"]["cardId"].as_str().unwrap().to_owned();
    let stages = admin
        .ok("GET", &format!("/api/v1/boards/{board}/stages"), None, 200)
        .await;
    let to = stages["stages"][1]["id"].as_str().unwrap().to_owned();
    admin
        .ok(
            "PATCH",
            &format!("{cards}/{card}"),
            Some(json!({"stageId": to})),
            200,
        )
        .await;
    let (_, moved) = live.next().await;
    assert_eq!(moved["type"], "card.moved");
    assert_eq!(moved["data"]["cardId"], card.as_str());
    assert_eq!(stream.next().await.1["type"], "card.moved");
    // A bad Last-Event-ID is a 400, not a stream.
    let (status, _, _) = http_full(
        server.addr,
        "GET",
        "/api/v1/events/stream",
        &[
            (
                "Authorization",
                &format!("Bearer {}", token("ann", Role::Admin, &[])),
            ),
            ("Last-Event-ID", "yesterday"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    // An open stream does not hold the shutdown up: it ends with the server.
    server.stop().await;
    for mut open in [stream, live] {
        let end = tokio::time::timeout(WAIT, async {
            while let Ok(Some(_)) = open.response.chunk().await {}
        })
        .await;
        assert!(end.is_ok(), "the stream ended");
    }
}

/// Waits until the instance of `api` has heard at least `n` change signals from storage
/// (`funnel_feed_signals_total`); returns how many.
async fn wait_for_signals(api: &Api, n: i64) -> i64 {
    let auth = format!("Bearer {}", api.bearer);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = support::http_with(
            api.addr,
            "GET",
            "/metrics",
            &[("Authorization", &auth)],
            None,
        )
        .await;
        let heard = text
            .lines()
            .find_map(|l| l.strip_prefix("funnel_feed_signals_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if heard >= n {
            return heard;
        }
        assert!(
            Instant::now() < deadline,
            "{heard} change signals heard, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_store_each_event_once_and_a_reader_sees_ids_in_order() {
    let db = TestDatabase::new().await;
    let redis = support::RedisServer::start();
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let (url, redis_url) = (db.url.clone(), redis.url());
        servers.push(
            TestServer::start_with(dir.path(), move |config| {
                config.auth_secret = Some(SECRET.into());
                config.database_url = Some(url);
                config.redis_url = Some(redis_url);
            })
            .await,
        );
        dirs.push(dir);
    }
    let apis: Vec<Api> = servers
        .iter()
        .map(|s| Api::new(s.addr, "ann", Role::Admin))
        .collect();
    // The second instance listens for PostgreSQL's change notifications (one signal once it
    // listens); the events below must add to it, not only its slow poll.
    let signals_at_start = wait_for_signals(&apis[1], 1).await;
    let (board, stages) = apis[0].deal_board().await;
    // A stream on the second instance hears what the first stores.
    let mut stream = SseReader::open(servers[1].addr, "after=0", &[]).await;
    // Socket clients on both instances and API calls to both, at once.
    let mut clients = Vec::new();
    for server in &servers {
        clients.push(Client::connect(&socket_url(server, &board, "bob", Role::Member)).await);
    }
    const PER_WRITER: usize = 10;
    let writers = apis.iter().enumerate().map(|(i, api)| {
        let cards = format!("/api/v1/boards/{board}/cards");
        async move {
            for n in 0..PER_WRITER {
                api.ok(
                    "POST",
                    &cards,
                    Some(json!({"title": format!("api-{i}-{n}")})),
                    201,
                )
                .await;
            }
        }
    });
    futures_util::future::join_all(writers).await;
    let listed = wait_for_events(&apis[1], "0", "", 2 * PER_WRITER).await;
    // Each client moves a card created through the other instance.
    let won = support::stage_id(&stages, "Won").to_owned();
    for (i, client) in clients.iter_mut().enumerate() {
        let title = format!("api-{}-0", 1 - i);
        let card = listed
            .iter()
            .find(|e| e["data"]["card"]["title"] == title.as_str())
            .unwrap()["data"]["cardId"]
            .as_str()
            .unwrap()
            .to_owned();
        client
            .pump_until("the other instance's cards", |c, _| {
                board::card(&c.doc.transact(), &card).is_some()
            })
            .await;
        client
            .write(|txn| board::move_card(txn, &card, &won, CardPlace::Top).unwrap())
            .await;
    }
    let expected = 2 * PER_WRITER + 2 * 2; // created, and moved + won twice
    for api in &apis {
        let events = wait_for_events(api, "0", "", expected).await;
        assert_eq!(events.len(), expected, "each event once: {events:#?}");
        assert!(increasing(&ids(&events)));
        let created = types(&events)
            .iter()
            .filter(|t| **t == "card.created")
            .count();
        assert_eq!(created, 2 * PER_WRITER);
        let moves: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "card.moved")
            .collect();
        assert_eq!(moves.len(), 2);
        assert!(moves.iter().all(|m| m["data"]["origin"] == "socket"));
    }
    let mut streamed = Vec::new();
    while streamed.len() < expected {
        let (id, _) = stream.next().await;
        streamed.push(id.parse::<i64>().unwrap());
    }
    assert!(increasing(&streamed));
    wait_for_signals(&apis[1], signals_at_start + 1).await;
    drop(stream);
    drop(clients);
    for server in servers {
        server.stop().await;
    }
}
