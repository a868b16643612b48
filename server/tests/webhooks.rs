//! Webhooks through the real server and a real receiver (axum on 127.0.0.1, port 0): a socket
//! move reaches it signed (checked with the Standard Webhooks reference crate), a 503 is
//! retried with the same `webhook-id`, a 410 disables the endpoint, a rotation signs with both
//! secrets, a replay delivers again, private addresses are refused without the flag (literal
//! addresses when saved, names when they resolve), the delivery log, validation and roles.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use axum::http::{HeaderMap, StatusCode};
use funnel_protocol::policy::Role;
use funnel_server::auth::{Auth, claims_for};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Client, TestServer, WAIT, http_full, json_call};
use tokio::sync::mpsc;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// Verifies the signature with the reference crate and `secret`.
    fn verify(&self, secret: &str) -> Result<(), standardwebhooks::WebhookError> {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(self.body.as_bytes(), &self.headers)
    }
}

/// A webhook receiver on 127.0.0.1: answers each request with the next scripted status (200
/// once the script is spent) and hands every request to the test.
struct Receiver {
    addr: SocketAddr,
    script: Arc<Mutex<VecDeque<u16>>>,
    requests: mpsc::Receiver<Received>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        // Bounded: a test that lets more than this pile up has failed anyway.
        let (tx, requests) = mpsc::channel(256);
        let answers = Arc::clone(&script);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (answers, tx) = (Arc::clone(&answers), tx.clone());
                async move {
                    let status = answers.lock().unwrap().pop_front().unwrap_or(200);
                    tx.try_send(Received { headers, body }).unwrap();
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            script,
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("a delivery within the wait")
            .unwrap()
    }

    /// The next delivery of an event of type `kind` (others, such as card.created before a
    /// move, are skipped).
    async fn next_of(&mut self, kind: &str) -> Received {
        for _ in 0..20 {
            let got = self.next().await;
            if got.json()["type"] == kind {
                return got;
            }
        }
        panic!("no {kind} delivery among the next 20");
    }

    /// Nothing more arrives within `quiet`.
    async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(got)) = tokio::time::timeout(quiet, self.requests.recv()).await {
            panic!("unexpected delivery: {}", got.body);
        }
    }
}

const SECRET: &str = "a test secret that is long enough for HS256";

/// A server in local mode that may call 127.0.0.1, with the retry schedule in milliseconds.
async fn start(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(dir, |config| {
        config.webhook_allow_private = true;
        config.webhook_retry_scale = 0.001;
        config.webhook_timeout = Duration::from_secs(2);
    })
    .await
}

async fn call(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(server, None, method, path, body).await
}

async fn call_as(
    server: &TestServer,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, value) = json_call(server.addr, token, method, path, body).await;
    (status, value)
}

async fn ok(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> Value {
    let (status, value) = call(server, method, path, body).await;
    assert_eq!(status, want, "{method} {path}: {value}");
    value
}

/// A deal board; its id and its stages' ids by name.
async fn deal_board(server: &TestServer) -> (String, Vec<(String, String)>) {
    let board = ok(
        server,
        "POST",
        "/api/v1/boards",
        Some(json!({"entity": "deal"})),
        201,
    )
    .await;
    let id = board["id"].as_str().unwrap().to_owned();
    let stages = ok(
        server,
        "GET",
        &format!("/api/v1/boards/{id}/stages"),
        None,
        200,
    )
    .await;
    let named = support::named_stages(&stages);
    (id, named)
}

async fn create_card(server: &TestServer, board: &str, title: &str) -> String {
    let card = ok(
        server,
        "POST",
        &format!("/api/v1/boards/{board}/cards"),
        Some(json!({"title": title})),
        201,
    )
    .await;
    card["id"].as_str().unwrap().to_owned()
}

async fn move_card(server: &TestServer, board: &str, card: &str, stage: &str) {
    ok(
        server,
        "PATCH",
        &format!("/api/v1/boards/{board}/cards/{card}"),
        Some(json!({"stageId": stage})),
        200,
    )
    .await;
}

async fn webhook(server: &TestServer, body: Value) -> Value {
    ok(server, "POST", "/api/v1/webhooks", Some(body), 201).await
}

/// The endpoint's delivery log, newest first, once it holds at least `count` attempts.
async fn log_of(server: &TestServer, id: &str, count: usize) -> Vec<Value> {
    let path = format!("/api/v1/webhooks/{id}/deliveries");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = ok(server, "GET", &path, None, 200).await;
        let entries = log["deliveries"].as_array().unwrap().clone();
        if entries.len() >= count {
            return entries;
        }
        assert!(tokio::time::Instant::now() < deadline, "log of {id}: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_socket_move_reaches_the_receiver_signed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut receiver = Receiver::start().await;
    let (board, stages) = deal_board(&server).await;
    let hook = webhook(
        &server,
        json!({"url": receiver.url(), "events": ["card.moved"], "boards": [board]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{hook}");
    assert_eq!(hook["events"], json!(["card.moved"]));
    assert_eq!(hook["boards"], json!([board]));
    assert_eq!(hook["enabled"], true);
    let card = create_card(&server, &board, "Acme").await;
    let mut client = Client::connect(&server.url(&board)).await;
    client.wait_for_card("Acme").await;
    let won = support::stage_id(&stages, "Won").to_owned();
    client
        .write(|txn| {
            funnel_protocol::board::move_card(
                txn,
                &card,
                &won,
                funnel_protocol::board::CardPlace::Top,
            )
            .unwrap()
        })
        .await;
    let got = receiver.next().await;
    got.verify(&secret).unwrap();
    assert!(
        got.verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .is_err(),
        "another key fails"
    );
    assert_eq!(got.header("content-type"), "application/json");
    let body = got.json();
    assert_eq!(
        body["type"], "card.moved",
        "only the types asked for: {body}"
    );
    assert_eq!(body["data"]["cardId"], card.as_str());
    assert_eq!(body["data"]["boardId"], board.as_str());
    assert_eq!(body["data"]["to"], won.as_str());
    assert_eq!(body["data"]["origin"], "socket");
    assert!(
        body["timestamp"].as_i64().unwrap() > 1_700_000_000_000,
        "{body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "{{type, timestamp, data}}: {body}"
    );
    // The webhook-id is the event's id in the feed.
    let events = ok(
        &server,
        "GET",
        &format!("/api/v1/events?boardId={board}&types=card.moved"),
        None,
        200,
    )
    .await;
    assert_eq!(events["events"][0]["id"], got.header("webhook-id"));
    let sent_at: i64 = got.header("webhook-timestamp").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - sent_at).abs() < 60, "seconds, now: {sent_at}");
    // The log shows it delivered, and the metrics count it.
    let log = log_of(&server, hook["id"].as_str().unwrap(), 1).await;
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["eventId"], got.header("webhook-id"));
    let (_, metrics) = support::http(server.addr, "GET", "/metrics", None).await;
    assert!(
        metrics.contains("funnel_webhook_delivery_seconds_count 1"),
        "{metrics}"
    );
    assert!(metrics.contains("funnel_webhook_queue_depth"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_id_and_the_log_shows_each_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut receiver = Receiver::start().await;
    receiver.answer(&[503, 500]);
    let (board, _) = deal_board(&server).await;
    let hook = webhook(
        &server,
        json!({"url": receiver.url(), "events": ["card.created"]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    create_card(&server, &board, "Retried").await;
    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    for got in [&first, &second, &third] {
        got.verify(secret).unwrap();
        assert_eq!(got.header("webhook-id"), first.header("webhook-id"));
        assert_eq!(got.body, first.body, "the same bytes every time");
    }
    let log = log_of(&server, hook["id"].as_str().unwrap(), 3).await;
    let seen: Vec<(i64, i64, &str)> = log
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["status"].as_i64().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [(3, 200, "delivered"), (2, 500, "retry"), (1, 503, "retry")]
    );
    // Pages of one.
    let page = ok(
        &server,
        "GET",
        &format!(
            "/api/v1/webhooks/{}/deliveries?limit=1",
            hook["id"].as_str().unwrap()
        ),
        None,
        200,
    )
    .await;
    let next = page["next"].as_str().unwrap().to_owned();
    let older = ok(
        &server,
        "GET",
        &format!(
            "/api/v1/webhooks/{}/deliveries?limit=1&before={next}",
            hook["id"].as_str().unwrap()
        ),
        None,
        200,
    )
    .await;
    assert_eq!(older["deliveries"][0]["attempt"], 2);
    receiver.expect_silence(Duration::from_millis(300)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_2xx_is_failed_after_the_last_attempt() {
    let dir = tempfile::tempdir().unwrap();
    // The whole schedule (about 28 h) in about 5 s.
    let server = TestServer::start_with(dir.path(), |config| {
        config.webhook_allow_private = true;
        config.webhook_retry_scale = 0.00005;
    })
    .await;
    let mut receiver = Receiver::start().await;
    receiver.answer(&[500; 8]);
    let (board, _) = deal_board(&server).await;
    let hook = webhook(
        &server,
        json!({"url": receiver.url(), "events": ["card.created"]}),
    )
    .await;
    create_card(&server, &board, "Doomed").await;
    for _ in 0..8 {
        receiver.next().await;
    }
    let log = log_of(&server, hook["id"].as_str().unwrap(), 8).await;
    assert_eq!(log[0]["attempt"], 8);
    assert_eq!(log[0]["outcome"], "failed");
    receiver.expect_silence(Duration::from_millis(300)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_it_is_enabled_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut receiver = Receiver::start().await;
    receiver.answer(&[410]);
    let (board, stages) = deal_board(&server).await;
    let hook = webhook(&server, json!({"url": receiver.url()})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let card = create_card(&server, &board, "Gone").await;
    receiver.next_of("card.created").await;
    let log = log_of(&server, &id, 1).await;
    assert_eq!(
        (log[0]["status"].as_i64(), log[0]["outcome"].as_str()),
        (Some(410), Some("disabled"))
    );
    let read = ok(&server, "GET", &format!("/api/v1/webhooks/{id}"), None, 200).await;
    assert_eq!(read["enabled"], false, "{read}");
    assert!(
        read["disabledReason"].as_str().unwrap().contains("410"),
        "{read}"
    );
    assert!(
        read.get("secret").is_none(),
        "a read shows no secret: {read}"
    );
    // Nothing more is sent while it is disabled, and nothing queued meanwhile later either.
    move_card(
        &server,
        &board,
        &card,
        support::stage_id(&stages, "In progress"),
    )
    .await;
    receiver.expect_silence(Duration::from_millis(500)).await;
    assert_eq!(log_of(&server, &id, 1).await.len(), 1);
    let enabled = ok(
        &server,
        "PATCH",
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"enabled": true})),
        200,
    )
    .await;
    assert_eq!(enabled["enabled"], true);
    move_card(&server, &board, &card, support::stage_id(&stages, "Won")).await;
    let got = receiver.next().await;
    assert_eq!(
        got.json()["data"]["to"],
        support::stage_id(&stages, "Won"),
        "{}",
        got.body
    );
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut receiver = Receiver::start().await;
    let (board, _) = deal_board(&server).await;
    let hook = webhook(
        &server,
        json!({"url": receiver.url(), "events": ["card.created"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let old = hook["secret"].as_str().unwrap().to_owned();
    let rotated = ok(
        &server,
        "POST",
        &format!("/api/v1/webhooks/{id}/rotate"),
        None,
        200,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert!(
        rotated["previousSecretUntil"].as_i64().unwrap() > 0,
        "{rotated}"
    );
    create_card(&server, &board, "Both").await;
    let got = receiver.next().await;
    let signatures: Vec<&str> = got.header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    got.verify(&old).unwrap();
    got.verify(&new).unwrap();
    server.stop().await;

    // With no overlap, the old secret stops signing at once.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.webhook_allow_private = true;
        config.webhook_secret_overlap = Duration::ZERO;
    })
    .await;
    let (board, _) = deal_board(&server).await;
    let hook = webhook(
        &server,
        json!({"url": receiver.url(), "events": ["card.created"]}),
    )
    .await;
    let old = hook["secret"].as_str().unwrap().to_owned();
    let id = hook["id"].as_str().unwrap();
    let rotated = ok(
        &server,
        "POST",
        &format!("/api/v1/webhooks/{id}/rotate"),
        None,
        200,
    )
    .await;
    create_card(&server, &board, "Only new").await;
    let got = receiver.next().await;
    assert_eq!(got.header("webhook-signature").split(' ').count(), 1);
    got.verify(rotated["secret"].as_str().unwrap()).unwrap();
    assert!(got.verify(&old).is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_replay_delivers_again_every_matching_event_after_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut receiver = Receiver::start().await;
    let (board, _) = deal_board(&server).await;
    let (other, _) = deal_board(&server).await;
    let hook = webhook(
        &server,
        json!({"url": receiver.url(), "events": ["card.created"], "boards": [board]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let mut ids = Vec::new();
    for title in ["One", "Two", "Three"] {
        create_card(&server, &board, title).await;
        create_card(&server, &other, title).await; // not this endpoint's board
        let got = receiver.next().await;
        assert_eq!(got.json()["data"]["boardId"], board.as_str());
        ids.push(got.header("webhook-id").to_owned());
    }
    receiver.expect_silence(Duration::from_millis(300)).await;
    let replay = ok(
        &server,
        "POST",
        &format!("/api/v1/webhooks/{id}/replay?from={}", ids[0]),
        None,
        202,
    )
    .await;
    assert_eq!(replay["queued"], 2, "{replay}");
    assert!(replay["next"].is_null());
    let mut again = vec![
        receiver.next().await.header("webhook-id").to_owned(),
        receiver.next().await.header("webhook-id").to_owned(),
    ];
    again.sort();
    let mut expected = ids[1..].to_vec();
    expected.sort();
    assert_eq!(again, expected);
    // From 0: all three. A bad cursor is a 400.
    let replay = ok(
        &server,
        "POST",
        &format!("/api/v1/webhooks/{id}/replay?from=0"),
        None,
        202,
    )
    .await;
    assert_eq!(replay["queued"], 3);
    for _ in 0..3 {
        receiver.next().await;
    }
    let (status, problem) = call(
        &server,
        "POST",
        &format!("/api/v1/webhooks/{id}/replay?from=abc"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    let (status, _) = call(
        &server,
        "POST",
        &format!("/api/v1/webhooks/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn private_addresses_are_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.webhook_retry_scale = 0.001;
    })
    .await;
    let mut receiver = Receiver::start().await;
    for url in [
        receiver.url(),
        "http://10.1.2.3/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://[::1]:{}/hook", receiver.addr.port()),
        "http://[::ffff:127.0.0.1]/hook".to_owned(),
        "http://0.0.0.0/hook".to_owned(),
    ] {
        let (status, problem) = call(
            &server,
            "POST",
            "/api/v1/webhooks",
            Some(json!({"url": url})),
        )
        .await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "url");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("--webhook-allow-private"),
            "{problem}"
        );
    }
    // A name that resolves to loopback is saved, but its resolver drops the address: nothing
    // reaches the receiver and the log says why.
    let (board, _) = deal_board(&server).await;
    let hook = webhook(
        &server,
        json!({"url": format!("http://localhost:{}/hook", receiver.addr.port()), "events": ["card.created"]}),
    )
    .await;
    create_card(&server, &board, "Rebound").await;
    let log = log_of(&server, hook["id"].as_str().unwrap(), 1).await;
    assert!(log[0]["status"].is_null(), "{:?}", log[0]);
    assert!(
        log[0]["error"].as_str().unwrap().contains("private"),
        "{:?}",
        log[0]
    );
    assert_eq!(log[0]["outcome"], "retry");
    receiver.expect_silence(Duration::from_millis(300)).await;
    server.stop().await;
}

/// The endpoints made here point at 127.0.0.1's discard port: nothing in this test stores an
/// event, and a delivery would reach no one.
#[tokio::test]
async fn endpoints_are_validated_listed_edited_and_deleted_by_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
        config.webhook_allow_private = true;
    })
    .await;
    let auth = Auth::with_secret(SECRET);
    let token = |role: Role, boards: &[funnel_protocol::BoardId]| {
        auth.issue(&claims_for(
            "u",
            None,
            role,
            boards,
            Duration::from_secs(600),
        ))
        .unwrap()
        .unwrap()
    };
    let admin = token(Role::Admin, &[]);
    let (status, board) = call_as(
        &server,
        Some(&admin),
        "POST",
        "/api/v1/boards",
        Some(json!({"entity": "deal"})),
    )
    .await;
    assert_eq!(status, 201);
    let board_id = board["id"].as_str().unwrap().to_owned();
    // Field errors are listed together.
    let (status, problem) = call_as(
        &server,
        Some(&admin),
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": "ftp://example.com/", "events": ["card.flipped"], "boards": ["no-such-board"]})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "events", "boards"], "{problem}");
    let (status, _) = call_as(
        &server,
        Some(&admin),
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/x", "secret": "mine"})),
    )
    .await;
    assert_eq!(status, 400, "unknown fields are refused");
    // Members and viewers may not; nobody without a token.
    for role in [Role::Member, Role::Viewer] {
        let (status, _) = call_as(
            &server,
            Some(&token(role, &[])),
            "GET",
            "/api/v1/webhooks",
            None,
        )
        .await;
        assert_eq!(status, 403);
    }
    let (status, _) = call_as(&server, None, "GET", "/api/v1/webhooks", None).await;
    assert_eq!(status, 401);
    // Created, listed, edited, deleted.
    let (status, hook) = call_as(
        &server,
        Some(&admin),
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/in", "events": ["card.won", "card.won", "card.lost"]})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(
        hook["events"],
        json!(["card.won", "card.lost"]),
        "duplicates dropped"
    );
    let (status, prefixed) = call_as(
        &server,
        Some(&admin),
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/in", "events": ["stage.*", "card.moved"]})),
    )
    .await;
    assert_eq!(status, 201, "{prefixed}");
    assert_eq!(
        prefixed["events"],
        json!([
            "stage.created",
            "stage.updated",
            "stage.deleted",
            "card.moved"
        ]),
        "a prefix names its types"
    );
    let path = format!("/api/v1/webhooks/{}", prefixed["id"].as_str().unwrap());
    let (status, _) = call_as(&server, Some(&admin), "DELETE", &path, None).await;
    assert_eq!(status, 204);
    for bad in ["deal.*", "card.moved,card.won", ""] {
        let body = json!({"url": "http://127.0.0.1:9/in", "events": [bad]});
        let (status, problem) = call_as(
            &server,
            Some(&admin),
            "POST",
            "/api/v1/webhooks",
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{bad:?}: {problem}");
    }
    let id = hook["id"].as_str().unwrap().to_owned();
    let (_, list) = call_as(&server, Some(&admin), "GET", "/api/v1/webhooks", None).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(list["next"].is_null());
    assert!(list["webhooks"][0].get("secret").is_none());
    let (status, edited) = call_as(
        &server,
        Some(&admin),
        "PATCH",
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"boards": [board_id], "events": []})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["boards"].clone(), edited["events"].clone()),
        (json!([board_id]), json!([]))
    );
    assert_eq!(edited["url"], "http://127.0.0.1:9/in");
    // An admin limited to other boards sees none of it, and must name its boards.
    let other = funnel_protocol::BoardId::parse("elsewhere").unwrap();
    let limited = token(Role::Admin, &[other]);
    let (_, list) = call_as(&server, Some(&limited), "GET", "/api/v1/webhooks", None).await;
    assert_eq!(list["webhooks"], json!([]));
    let (status, _) = call_as(
        &server,
        Some(&limited),
        "GET",
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, problem) = call_as(
        &server,
        Some(&limited),
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/x"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (status, _) = call_as(
        &server,
        Some(&admin),
        "DELETE",
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, problem) = call_as(
        &server,
        Some(&admin),
        "GET",
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["type"], "urn:funnel:problem:not-found");
    server.stop().await;
}

/// Two instances on one PostgreSQL (and Redis): events stored by either are delivered, each
/// exactly once, though both workers read the feed and claim from the one outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_delivers_each_event_once() {
    let db = support::TestDatabase::new().await;
    let cluster = |config: &mut funnel_server::config::ServeConfig| {
        config.database_url = Some(db.url.clone());
        config.redis_url = Some("redis://127.0.0.1:6379/".into());
        config.webhook_allow_private = true;
        config.webhook_retry_scale = 0.001;
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestServer::start_with(dir_a.path(), cluster).await;
    let b = TestServer::start_with(dir_b.path(), cluster).await;
    let mut receiver = Receiver::start().await;
    // A few 503s make both instances retry too.
    receiver.answer(&[503, 503, 503]);
    let (board, _) = deal_board(&a).await;
    let hook = webhook(
        &b,
        json!({"url": receiver.url(), "events": ["card.created"]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let cards = 20;
    for n in 0..cards {
        let instance = if n % 2 == 0 { &a } else { &b };
        create_card(instance, &board, &format!("Card {n}")).await;
    }
    let mut delivered = std::collections::BTreeMap::new();
    for _ in 0..cards + 3 {
        let got = receiver.next().await;
        got.verify(&secret).unwrap();
        *delivered
            .entry(got.header("webhook-id").to_owned())
            .or_insert(0) += 1;
    }
    receiver.expect_silence(Duration::from_secs(1)).await;
    assert_eq!(delivered.len(), cards, "{delivered:?}");
    let log = log_of(&a, hook["id"].as_str().unwrap(), cards + 3).await;
    let successes = log.iter().filter(|e| e["outcome"] == "delivered").count();
    assert_eq!(successes, cards, "one success per event");
    a.stop().await;
    b.stop().await;
}

/// A JSON call to a server at `addr` (a child process): the status and the body.
async fn call_at(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, _, text) = http_full(addr, method, path, &[], body.as_deref()).await;
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

/// On PostgreSQL, a delivery waiting for its retry when its process is killed with SIGKILL is
/// made by the next process, with the same webhook-id (the SQLite case is in
/// tests/interop/webhooks.test.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_pending_at_a_kill_9_is_made_after_the_restart_on_postgres() {
    let db = support::TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Retries after about a second: time to kill the process in between.
    let args = [
        "--database-url",
        &db.url,
        "--webhook-allow-private",
        "--webhook-retry-scale",
        "0.2",
    ];
    let server = support::ProcessServer::spawn(dir.path(), &args);
    let mut receiver = Receiver::start().await;
    receiver.answer(&[503]);
    let (status, board) = call_at(
        server.addr,
        "POST",
        "/api/v1/boards",
        Some(json!({"entity": "deal"})),
    )
    .await;
    assert_eq!(status, 201);
    let board = board["id"].as_str().unwrap().to_owned();
    let (status, hook) = call_at(
        server.addr,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": receiver.url(), "events": ["card.created"]})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().unwrap().to_owned();
    let (status, _) = call_at(
        server.addr,
        "POST",
        &format!("/api/v1/boards/{board}/cards"),
        Some(json!({"title": "Survivor"})),
    )
    .await;
    assert_eq!(status, 201);
    let refused = receiver.next().await;
    // Once the 503 is recorded (the retry is scheduled), the process dies.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, log) = call_at(
            server.addr,
            "GET",
            &format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
        if log["deliveries"].as_array().is_some_and(|d| !d.is_empty()) {
            assert_eq!(log["deliveries"][0]["outcome"], "retry");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the attempt was not recorded: {log}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill_9();
    let server = support::ProcessServer::spawn(dir.path(), &args);
    let retried = receiver.next().await;
    assert_eq!(retried.header("webhook-id"), refused.header("webhook-id"));
    assert_eq!(retried.body, refused.body);
    retried.verify(hook["secret"].as_str().unwrap()).unwrap();
    receiver.expect_silence(Duration::from_millis(500)).await;
    server.terminate();
}
