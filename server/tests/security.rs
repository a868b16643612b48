//! The security matrix through the real server: tokens, roles, server-written fields, stage
//! invariants, limits and origins. Each refusal is checked by its close code or HTTP status, and
//! by what it left behind: the other clients and the stored board are untouched.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::BoardId;
use funnel_protocol::board::{self, card_key};
use funnel_protocol::policy::Role;
use funnel_protocol::schema::{StageKind, root};
use funnel_protocol::wire;
use funnel_server::auth::{Auth, Claims, claims_for};
use futures_util::SinkExt;
use std::time::Duration;
use support::{Client, TestServer, add_card, doc_state, http_with};
use tokio_tungstenite::tungstenite::Message;
use yrs::{Map, Out, Transact, WriteTxn};

const SECRET: &str = "a test secret that is long enough for HS256";

fn token(user: &str, role: Role, boards: &[&str]) -> String {
    let boards: Vec<BoardId> = boards.iter().map(|b| BoardId::parse(b).unwrap()).collect();
    issue(&claims_for(
        user,
        None,
        role,
        &boards,
        Duration::from_secs(600),
    ))
}

fn issue(claims: &Claims) -> String {
    Auth::with_secret(SECRET).issue(claims).unwrap().unwrap()
}

fn ws_url(server: &TestServer, board: &str, token: &str) -> String {
    format!("{}?token={token}", server.url(board))
}

async fn start(
    tweak: impl FnOnce(&mut funnel_server::config::ServeConfig),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some(SECRET.into());
        config.allowed_origins = vec!["https://crm.example.com".into()];
        tweak(config);
    })
    .await;
    (server, dir)
}

/// Creates a board through the API as an admin; returns its id.
async fn create_board(server: &TestServer) -> String {
    let admin = format!("Bearer {}", token("root", Role::Admin, &[]));
    let (status, body) = http_with(
        server.addr,
        "POST",
        "/api/v1/boards",
        &[("Authorization", &admin)],
        Some(r#"{"entity": "deal", "name": "Q4"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    created["id"].as_str().unwrap().to_owned()
}

fn initial_stage(client: &Client) -> String {
    board::stages(&client.doc.transact())
        .into_iter()
        .find(|s| s.kind == StageKind::Initial)
        .unwrap()
        .id
}

/// A client that connects and expects to be refused with `code`; returns the reason.
async fn refused(url: &str, headers: &[(&str, &str)], code: u16) -> String {
    let mut client = Client::connect_raw_with(url, headers).await;
    let (got, reason) = client.expect_close().await;
    assert_eq!(got, code, "{url}: {reason}");
    reason
}

/// What a fresh admin replica of the board holds now (what storage serves).
async fn stored(server: &TestServer, board: &str) -> serde_json::Value {
    let admin = Client::connect(&ws_url(server, board, &token("root", Role::Admin, &[]))).await;
    doc_state(&admin.doc).1
}

#[tokio::test]
async fn tokens_are_checked_before_anything_is_sent() {
    let (server, _dir) = start(|_| {}).await;
    let board = create_board(&server).await;

    let reason = refused(&server.url(&board), &[], 4401).await;
    assert!(reason.contains("token is required"), "{reason}");

    let mut expired = claims_for("ann", None, Role::Admin, &[], Duration::ZERO);
    expired.exp -= 3600;
    let reason = refused(&ws_url(&server, &board, &issue(&expired)), &[], 4401).await;
    assert!(reason.contains("expired"), "{reason}");

    let forged = Auth::with_secret("somebody else's secret, also long enough")
        .issue(&claims_for(
            "ann",
            None,
            Role::Admin,
            &[],
            Duration::from_secs(60),
        ))
        .unwrap()
        .unwrap();
    let reason = refused(&ws_url(&server, &board, &forged), &[], 4401).await;
    assert!(reason.contains("signature"), "{reason}");

    let other_board = token("ann", Role::Admin, &["elsewhere"]);
    let reason = refused(&ws_url(&server, &board, &other_board), &[], 4403).await;
    assert!(reason.contains("does not open"), "{reason}");

    // Only admins create a board by opening it.
    let member = token("ann", Role::Member, &[]);
    refused(&ws_url(&server, "no-such-board", &member), &[], 4404).await;
    let admin = token("root", Role::Admin, &[]);
    let created = Client::connect(&ws_url(&server, "made-by-opening", &admin)).await;
    assert!(!support::stage_names(&created.doc).is_empty());

    // The HTTP API answers the same with statuses.
    let (status, head, body) =
        support::http_full(server.addr, "GET", "/api/v1/boards", &[], None).await;
    assert_eq!(status, 401, "{body}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], 401, "{body}");
    assert!(
        problem["detail"].as_str().unwrap().contains("token"),
        "{body}"
    );
    let bearer = format!("Bearer {other_board}");
    let path = format!("/api/v1/boards/{board}");
    let (status, _) = http_with(
        server.addr,
        "GET",
        &path,
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = http_with(
        server.addr,
        "GET",
        "/api/v1/boards",
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !body.contains(&board),
        "the list shows only the token's boards: {body}"
    );
    let bearer = format!("Bearer {member}");
    let (status, _) = http_with(
        server.addr,
        "POST",
        "/api/v1/boards",
        &[("Authorization", &bearer)],
        Some(r#"{"entity": "lead"}"#),
    )
    .await;
    assert_eq!(status, 403, "only admins create boards");
    let (status, body) = http_with(
        server.addr,
        "GET",
        "/api/v1/me",
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""role":"member""#), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn roles_and_server_fields_are_enforced_on_every_update() {
    let (server, _dir) = start(|_| {}).await;
    let board = create_board(&server).await;
    let mut observer =
        Client::connect(&ws_url(&server, &board, &token("obs", Role::Viewer, &[]))).await;
    let mut member =
        Client::connect(&ws_url(&server, &board, &token("ann", Role::Member, &[]))).await;

    // A member adds a card: allowed, and the observer sees it.
    member.write(|txn| add_card(txn, "c1", "ACME")).await;
    observer.wait_for_card("ACME").await;
    let before = doc_state(&observer.doc).1;

    // A viewer's write.
    let mut viewer =
        Client::connect(&ws_url(&server, &board, &token("vic", Role::Viewer, &[]))).await;
    viewer
        .write(|txn| add_card(txn, "c2", "from a viewer"))
        .await;
    let (code, reason) = viewer.expect_close().await;
    assert_eq!(
        (code, reason.as_str()),
        (4403, "viewers cannot change the board")
    );

    // A member deleting the initial stage.
    let mut member2 =
        Client::connect(&ws_url(&server, &board, &token("bob", Role::Member, &[]))).await;
    let initial = initial_stage(&member2);
    member2
        .write(|txn| {
            txn.get_or_insert_map(root::STAGES).remove(txn, &initial);
        })
        .await;
    let (code, reason) = member2.expect_close().await;
    assert_eq!((code, reason.as_str()), (4403, "only admins change stages"));

    // A member writing a card's counter.
    let mut member3 =
        Client::connect(&ws_url(&server, &board, &token("cid", Role::Member, &[]))).await;
    member3
        .write(|txn| {
            let cards = txn.get_or_insert_map(root::CARDS);
            let Some(Out::YMap(card)) = cards.get(txn, "c1") else {
                panic!("no card c1")
            };
            card.insert(txn, card_key::COUNTER, "forged");
        })
        .await;
    let (code, reason) = member3.expect_close().await;
    assert_eq!(code, 4403);
    assert!(
        reason.contains("counter of card c1 is written by the server"),
        "{reason}"
    );

    // Even an admin cannot break the stage invariants.
    let mut admin =
        Client::connect(&ws_url(&server, &board, &token("root", Role::Admin, &[]))).await;
    let initial = initial_stage(&admin);
    admin
        .write(|txn| {
            txn.get_or_insert_map(root::STAGES).remove(txn, &initial);
        })
        .await;
    let (code, reason) = admin.expect_close().await;
    assert_eq!(code, 4403);
    assert!(reason.contains("exactly one initial stage"), "{reason}");

    // Nothing of it reached the others or storage; the first member is still connected.
    member.write(|txn| add_card(txn, "c3", "still live")).await;
    observer.wait_for_card("still live").await;
    observer.wait_for_upkeep("c3").await;
    let after = doc_state(&observer.doc).1;
    assert_eq!(after["stages"], before["stages"]);
    assert!(after["cards"].get("c2").is_none());
    assert!(
        after["cards"]["c1"]
            .get("counter")
            .is_none_or(|c| c != "forged")
    );
    let stored = stored(&server, &board).await;
    assert_eq!(stored["stages"], before["stages"]);
    assert_eq!(stored["cards"], after["cards"]);
    server.stop().await;
}

#[tokio::test]
async fn malformed_oversize_and_flooding_clients_are_closed_alone() {
    let (server, _dir) = start(|config| {
        config.max_frame_bytes = 64 * 1024;
        config.max_board_bytes = 64 * 1024;
        config.message_rate = 20;
        config.message_burst = 20;
    })
    .await;
    let board = create_board(&server).await;
    let member = token("ann", Role::Member, &[]);
    let url = ws_url(&server, &board, &member);
    let mut observer = Client::connect(&url).await;
    let before = doc_state(&observer.doc).1;

    let mut big = Client::connect_raw(&url).await;
    big.send(vec![0u8; 65 * 1024].into()).await;
    assert_eq!(big.expect_close().await.0, 1009);

    let mut garbage = Client::connect_raw(&url).await;
    // A sync update whose buffer claims 5 bytes and holds 2.
    garbage.send(vec![0u8, 2, 5, 1, 2].into()).await;
    assert_eq!(garbage.expect_close().await.0, 1007);

    // Found by fuzzing: an update with a client id over 53 bits trips a debug assertion inside
    // yrs' decoder. It costs that connection only (this test runs a debug build).
    let mut tripper = Client::connect_raw(&url).await;
    let frame = include_bytes!("../../fuzz/corpus/decode_frame/regression-client-id-over-53-bits");
    tripper.send(frame.to_vec().into()).await;
    assert_eq!(tripper.expect_close().await.0, 1007);

    let mut texter = Client::connect_raw(&url).await;
    texter.ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(texter.expect_close().await.0, 1003);

    let mut flooder = Client::connect_raw(&url).await;
    let step1 = wire::client::encode_sync_step1(&yrs::StateVector::default());
    for _ in 0..100 {
        if flooder
            .ws
            .send(Message::Binary(step1.clone()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = flooder.expect_close().await;
    assert_eq!(code, 4429, "{reason}");

    // The board's size limit (64 KiB here): a 40 KB card fits, a second one does not.
    let mut writer = Client::connect(&url).await;
    let long = "x".repeat(40_000);
    writer.write(|txn| add_card(txn, "big1", &long)).await;
    observer.wait_for_card(&long).await;
    writer
        .write(|txn| add_card(txn, "big2", &format!("{long}y")))
        .await;
    let (code, reason) = writer.expect_close().await;
    assert_eq!(code, 4413, "{reason}");
    assert!(reason.contains("size limit"), "{reason}");

    // The observer is still served, and the board is as it was.
    observer
        .write(|txn| add_card(txn, "c1", "after the storm"))
        .await;
    let stored = stored(&server, &board).await;
    assert_eq!(stored["stages"], before["stages"]);
    assert_eq!(
        support::card_titles(&observer.doc),
        ["after the storm", &long]
    );
    assert!(stored["cards"].get("big2").is_none());
    server.stop().await;
}

#[tokio::test]
async fn browser_origins_and_connection_counts_are_limited() {
    let (server, _dir) = start(|config| config.max_connections_per_user = 2).await;
    let board = create_board(&server).await;
    let member = token("ann", Role::Member, &[]);
    let url = ws_url(&server, &board, &member);

    let reason = refused(&url, &[("Origin", "https://evil.example")], 4403).await;
    assert!(reason.contains("origin"), "{reason}");
    let bearer = format!("Bearer {member}");
    let (status, _) = http_with(
        server.addr,
        "GET",
        "/api/v1/boards",
        &[
            ("Authorization", &bearer),
            ("Origin", "https://evil.example"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 403);
    let allowed = Client::connect_raw_with(&url, &[("Origin", "https://crm.example.com")]).await;
    let own = format!("http://{}", server.addr);
    let _own = Client::connect_raw_with(&url, &[("Origin", &own)]).await;

    // Two connections for ann are open: a third is refused until one closes.
    let reason = refused(&url, &[], 4429).await;
    assert!(
        reason.contains("too many connections for this user"),
        "{reason}"
    );
    drop(allowed);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let mut client = Client::connect_raw(&url).await;
        match tokio::time::timeout(Duration::from_millis(300), client.expect_close()).await {
            Err(_) => break, // not closed: admitted
            Ok((4429, _)) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot was never released"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(other) => panic!("unexpected close {other:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn timeline_events_belong_to_the_caller_count_in_the_board_and_are_rate_limited() {
    let (server, _dir) = start(|config| config.max_board_bytes = 64 * 1024).await;
    let board = create_board(&server).await;
    let member = token("mia", Role::Member, &[]);
    let bearer = format!("Bearer {member}");
    let mut writer = Client::connect(&ws_url(&server, &board, &member)).await;
    writer.write(|txn| add_card(txn, "card", "ACME")).await;
    writer.wait_for_upkeep("card").await;
    let timeline = format!("/api/v1/boards/{board}/cards/card/timeline");
    let post = |body: String, headers: Vec<(&'static str, String)>| {
        let timeline = timeline.clone();
        let bearer = bearer.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("Authorization", &bearer)];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            support::http_full(server.addr, "POST", &timeline, &all, Some(&body)).await
        }
    };

    // The author is the token's user, whatever the body or a header says, and the time is the
    // server's.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (status, _, body) = post(
        r#"{"kind":"call","direction":"missed","user":"boss"}"#.into(),
        vec![],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("user"), "{body}");
    let (status, _, body) = post(
        r#"{"kind":"call","direction":"missed","text":"+33 1"}"#.into(),
        vec![("X-Funnel-User", "boss".into())],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["user"], "mia");
    let at = event["at"].as_i64().unwrap();
    assert!(at >= before && at < before + 60_000, "{at} vs {before}");
    writer
        .pump_until("the avatar to move to mia", |c, _| {
            support::server_field(&c.doc, "card", "avatar") == Some(serde_json::json!("mia"))
        })
        .await;

    // Timeline texts fill the board's budget: the API refuses with 413, and a client's update
    // that no longer fits is refused with 4413.
    let text = "t".repeat(4000);
    let mut full = None;
    for _ in 0..18 {
        let (status, _, body) =
            post(format!(r#"{{"kind":"comment","text":"{text}"}}"#), vec![]).await;
        if status != 201 {
            full = Some((status, body));
            break;
        }
    }
    let (status, body) = full.expect("64 KiB of timeline fills the board");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("size limit"), "{body}");
    writer
        .write(|txn| add_card(txn, "big", &"x".repeat(4000)))
        .await;
    let (code, reason) = writer.expect_close().await;
    assert_eq!(code, 4413, "{reason}");

    // Posts are rate limited per user: the burst is spent by now (the refused ones count too).
    let mut limited = None;
    for _ in 0..funnel_server::limits::TIMELINE_POSTS_BURST {
        let (status, head, body) = post(r#"{"kind":"comment"}"#.into(), vec![]).await;
        if status == 429 {
            limited = Some((head, body));
            break;
        }
    }
    let (head, body) = limited.expect("the burst runs out");
    assert!(body.contains("too many"), "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let retry_after = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no Retry-After in {head}"));
    assert!(retry_after.trim().parse::<u64>().unwrap() >= 1, "{head}");
    // Another user has a rate of their own (and a short comment still fits the board).
    let other = format!("Bearer {}", token("ned", Role::Member, &[]));
    let (status, body) = http_with(
        server.addr,
        "POST",
        &timeline,
        &[("Authorization", &other)],
        Some(r#"{"kind":"comment","text":"hi"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn the_board_limit_counts_what_the_board_holds_not_what_was_written() {
    // Compactions every 5 entries reset the count; between them it crosses the limit and the
    // room measures the document.
    let (server, _dir) = start(|config| {
        config.max_board_bytes = 64 * 1024;
        config.compact_after = 5;
    })
    .await;
    let board = create_board(&server).await;
    let url = ws_url(&server, &board, &token("ann", Role::Member, &[]));
    let mut writer = Client::connect(&url).await;
    writer.write(|txn| add_card(txn, "card", "draft")).await;
    // Rewriting a 20 KB title twenty times writes 400 KB into a 64 KiB board that never holds
    // more than one title: every write is taken.
    for i in 0..20 {
        let title = format!("{i:02}{}", "x".repeat(20_000));
        writer
            .write(|txn| {
                let cards = txn.get_or_insert_map(root::CARDS);
                let Some(Out::YMap(card)) = cards.get(txn, "card") else {
                    panic!("no card");
                };
                card.insert(txn, card_key::TITLE, title);
            })
            .await;
    }
    let mut reader = Client::connect(&url).await;
    reader
        .wait_for_card(&format!("19{}", "x".repeat(20_000)))
        .await;
    writer
        .write(|txn| add_card(txn, "small", "still writable"))
        .await;
    reader.wait_for_card("still writable").await;

    // A board that really is full still refuses: two more 25 KB cards do not fit beside it.
    writer
        .write(|txn| add_card(txn, "big1", &"y".repeat(25_000)))
        .await;
    writer
        .write(|txn| add_card(txn, "big2", &"z".repeat(25_000)))
        .await;
    let (code, reason) = writer.expect_close().await;
    assert_eq!(code, 4413, "{reason}");
    assert!(reason.contains("size limit"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_and_the_openapi_document_need_a_token_when_tokens_are_on() {
    let (server, _dir) = start(|_| {}).await;
    let admin = format!("Bearer {}", token("root", Role::Admin, &[]));
    let member = format!("Bearer {}", token("ann", Role::Member, &[]));
    let viewer = format!("Bearer {}", token("vic", Role::Viewer, &[]));
    let get = |path: &'static str, auth: Option<String>| async move {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        http_with(server.addr, "GET", path, &headers, None).await
    };
    // /metrics: an admin's token only.
    assert_eq!(get("/metrics", None).await.0, 401);
    assert_eq!(get("/metrics", Some("Bearer nope".into())).await.0, 401);
    let (status, body) = get("/metrics", Some(member.clone())).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = get("/metrics", Some(admin.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("funnel_rooms"), "{body}");
    // The OpenAPI document: any valid token.
    assert_eq!(get("/api/v1/openapi.json", None).await.0, 401);
    let (status, body) = get("/api/v1/openapi.json", Some(viewer)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"openapi\""), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_listen_serves_metrics_on_its_own_listener_only() {
    // A free port for the metrics listener (bound, read, released).
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (server, _dir) = start(|config| config.metrics_listen = Some(metrics_addr)).await;
    let admin = format!("Bearer {}", token("root", Role::Admin, &[]));
    // Gone from the main listener, even for an admin.
    let (status, body) = http_with(
        server.addr,
        "GET",
        "/metrics",
        &[("Authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // Served on its own listener, without a token (who reaches it is the network's concern).
    let (status, body) = support::http(metrics_addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("funnel_rooms"), "{body}");
    // Nothing else is there.
    let (status, _) = support::http(metrics_addr, "GET", "/api/v1/boards", None).await;
    assert_eq!(status, 404);
    server.stop().await;
}
