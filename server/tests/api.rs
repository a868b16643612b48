//! The JSON API and the web client's files, through the real server.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use serde_json::Value;
use support::{Client, TestServer, http, http_full, http_with, stage_names};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The problem document (RFC 9457) of an error response: checks its media type and shape, and
/// returns its `detail`.
fn problem(status: u16, head: &str, body: &str) -> String {
    let content_type = head
        .lines()
        .find_map(|line| {
            let line = line.to_ascii_lowercase();
            line.strip_prefix("content-type: ").map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no Content-Type in {head}"));
    assert_eq!(content_type.trim(), "application/problem+json", "{head}");
    let problem = json(body);
    assert_eq!(problem["status"], status, "{body}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:funnel:problem:"),
        "{body}"
    );
    assert!(!problem["title"].as_str().unwrap().is_empty(), "{body}");
    problem["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn boards_are_created_listed_and_opened() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, body) = http(server.addr, "GET", "/api/v1/boards", None).await;
    assert_eq!(
        (status, json(&body)),
        (200, serde_json::json!({ "boards": [] }))
    );

    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/boards",
        Some(r#"{"entity":"lead","name":"  Inbound leads "}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let lead = json(&body);
    assert_eq!(
        (lead["entity"].as_str(), lead["name"].as_str()),
        (Some("lead"), Some("Inbound leads"))
    );
    let id = lead["id"].as_str().unwrap().to_owned();
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/boards",
        Some(r#"{"entity":"smart:7"}"#),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(json(&body)["name"], "Smart process 7");

    let (status, body) = http(server.addr, "GET", &format!("/api/v1/boards/{id}"), None).await;
    assert_eq!((status, json(&body)), (200, lead.clone()));
    let (_, body) = http(server.addr, "GET", "/api/v1/boards", None).await;
    let listed: Vec<String> = json(&body)["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["entity"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ["lead", "smart:7"]);

    // The board's document has the lead stages and the name.
    let client = Client::connect(&server.url(&id)).await;
    assert_eq!(
        stage_names(&client.doc),
        [
            "Not processed",
            "In progress",
            "Processed",
            "Converted",
            "Junk"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_board_created_in_french_has_its_default_stages_and_name_in_french() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let create = |body: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let addr = server.addr;
        async move { http_with(addr, "POST", "/api/v1/boards", headers, Some(body)).await }
    };
    // Asked for in the body.
    let (status, body) = create(r#"{"entity":"deal","language":"fr"}"#, &[]).await;
    assert_eq!(status, 201, "{body}");
    let deal = json(&body);
    assert_eq!(deal["name"], "Transactions");
    let client = Client::connect(&server.url(deal["id"].as_str().unwrap())).await;
    assert_eq!(
        stage_names(&client.doc),
        [
            "Nouvelle",
            "Préparation des documents",
            "Facture envoyée",
            "En cours",
            "Gagnée",
            "Perdue",
            "Analyse de l'échec"
        ]
    );
    assert_eq!(
        board_language(&client.doc).as_deref(),
        Some("fr"),
        "the document says its language"
    );
    // From the browser's languages when the body names none; the body wins over them.
    let (status, body) = create(
        r#"{"entity":"lead"}"#,
        &[("Accept-Language", "de-DE, fr-CA;q=0.8, en;q=0.5")],
    )
    .await;
    assert_eq!(
        (status, json(&body)["name"].as_str()),
        (201, Some("Prospects"))
    );
    let (status, body) = create(
        r#"{"entity":"lead","language":"en"}"#,
        &[("Accept-Language", "fr")],
    )
    .await;
    assert_eq!((status, json(&body)["name"].as_str()), (201, Some("Leads")));
    let english = Client::connect(&server.url(json(&body)["id"].as_str().unwrap())).await;
    assert_eq!(stage_names(&english.doc)[0], "Not processed");
    assert_eq!(board_language(&english.doc).as_deref(), Some("en"));
    // A language funnel does not have: 400, nothing created.
    let (status, head, body) = http_full(
        server.addr,
        "POST",
        "/api/v1/boards",
        &[],
        Some(r#"{"entity":"deal","language":"de"}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        problem(400, &head, &body).contains("unknown language"),
        "{body}"
    );
    let (_, body) = http(server.addr, "GET", "/api/v1/boards", None).await;
    assert_eq!(json(&body)["boards"].as_array().unwrap().len(), 3);
    server.stop().await;
}

fn board_language(doc: &yrs::Doc) -> Option<String> {
    use yrs::{Map, ReadTxn, Transact};
    let txn = doc.transact();
    let board = txn.get_map("board")?;
    match board.get(&txn, "language")? {
        yrs::Out::Any(yrs::Any::String(language)) => Some(language.to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn renaming_a_board_in_its_document_renames_it_in_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, body) = http(
        server.addr,
        "POST",
        "/api/v1/boards",
        Some(r#"{"entity":"deal"}"#),
    )
    .await;
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    let mut client = Client::connect(&server.url(&id)).await;
    client
        .write(|txn| {
            use yrs::{Map, WriteTxn};
            let board = txn.get_or_insert_map("board");
            board.insert(txn, "name", "Enterprise deals");
        })
        .await;
    // Another client seeing it means it was stored, and the list was updated before delivery.
    let mut other = Client::connect(&server.url(&id)).await;
    other
        .pump_until("the new name", |c, _| {
            funnel_protocol::board::settings(&yrs::Transact::transact(&c.doc)).name
                == "Enterprise deals"
        })
        .await;
    let (_, body) = http(server.addr, "GET", &format!("/api/v1/boards/{id}"), None).await;
    assert_eq!(json(&body)["name"], "Enterprise deals");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let long_name = format!(r#"{{"entity":"deal","name":"{}"}}"#, "x".repeat(201));
    let cases = [
        (
            "POST",
            "/api/v1/boards",
            Some(r#"{"entity":"deals"}"#),
            400,
            "unknown entity",
        ),
        ("POST", "/api/v1/boards", Some("{not json"), 400, ""),
        (
            "POST",
            "/api/v1/boards",
            Some(r#"{"name":"x"}"#),
            400,
            "entity",
        ),
        (
            "POST",
            "/api/v1/boards",
            Some(long_name.as_str()),
            400,
            "at most 200",
        ),
        ("GET", "/api/v1/boards/nope", None, 404, "no board nope"),
        ("GET", "/api/v1/boards/a.b", None, 404, "no board"),
        ("GET", "/api/v1/whatever", None, 404, "openapi"),
    ];
    for (method, path, body, status, message) in cases {
        let (got, head, text) = http_full(server.addr, method, path, &[], body).await;
        assert_eq!(got, status, "{method} {path}: {text}");
        let error = problem(status, &head, &text);
        assert!(error.contains(message), "{method} {path}: {error}");
    }
    let (_, body) = http(server.addr, "GET", "/api/v1/boards", None).await;
    assert_eq!(
        json(&body)["boards"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, body) = http(server.addr, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    let doc = json(&body);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/api/v1/auth/methods",
            "/api/v1/boards",
            "/api/v1/boards/{boardId}",
            "/api/v1/boards/{boardId}/cards",
            "/api/v1/boards/{boardId}/cards/{cardId}",
            "/api/v1/boards/{boardId}/cards/{cardId}/activities",
            "/api/v1/boards/{boardId}/cards/{cardId}/activities/{activityId}",
            "/api/v1/boards/{boardId}/cards/{cardId}/history",
            "/api/v1/boards/{boardId}/cards/{cardId}/timeline",
            "/api/v1/boards/{boardId}/fields",
            "/api/v1/boards/{boardId}/forms/quickCreate",
            "/api/v1/boards/{boardId}/inbound-email",
            "/api/v1/boards/{boardId}/stages",
            "/api/v1/boards/{boardId}/stages/{stageId}",
            "/api/v1/events",
            "/api/v1/invites",
            "/api/v1/invites/{secret}",
            "/api/v1/invites/{secret}/accept",
            "/api/v1/me",
            "/api/v1/people",
            "/api/v1/people/{personId}",
            "/api/v1/session",
            "/api/v1/webhooks",
            "/api/v1/webhooks/{webhookId}",
            "/api/v1/webhooks/{webhookId}/deliveries",
            "/api/v1/webhooks/{webhookId}/replay",
            "/api/v1/webhooks/{webhookId}/rotate",
            "/auth/oidc/callback",
            "/auth/oidc/start"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_web_client_is_served_with_a_fallback_to_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>funnel app</title>",
    )
    .unwrap();
    std::fs::create_dir(web.path().join("assets")).unwrap();
    std::fs::write(web.path().join("assets/app.js"), "console.log('app')").unwrap();
    let web_dir = web.path().to_owned();
    let server = TestServer::start_with(dir.path(), move |c| c.web_dir = web_dir).await;
    for path in ["/", "/boards/some-board", "/anything/else"] {
        let (status, body) = http(server.addr, "GET", path, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("funnel app"), "{path}: {body}");
    }
    let (status, body) = http(server.addr, "GET", "/assets/app.js", None).await;
    assert_eq!((status, body.as_str()), (200, "console.log('app')"));
    server.stop().await;

    // Without a build, a page says how to make one.
    let server = TestServer::start_with(dir.path(), |c| c.web_dir = "/nonexistent".into()).await;
    let (status, body) = http(server.addr, "GET", "/", None).await;
    assert_eq!(status, 404);
    assert!(body.contains("npm --prefix clients/web"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn timeline_events_are_stored_paged_and_move_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, body) = http(
        server.addr,
        "POST",
        "/api/v1/boards",
        Some(r#"{"entity":"deal"}"#),
    )
    .await;
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    let mut client = Client::connect(&server.url(&id)).await;
    client
        .write(|txn| support::add_card(txn, "card", "ACME"))
        .await;
    client.wait_for_upkeep("card").await;
    let timeline = format!("/api/v1/boards/{id}/cards/card/timeline");

    // A comment: stored, and the avatar moves to its author (local mode: X-Funnel-User).
    let (status, body) = http_with(
        server.addr,
        "POST",
        &timeline,
        &[("X-Funnel-User", "dora")],
        Some(r#"{"kind":"comment","text":"sent the quote"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(json(&body)["user"], "dora");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = json(&body)["at"].as_i64().unwrap();
    assert!(
        (now - 60_000..=now).contains(&at),
        "the server's time: {at} vs {now}"
    );
    client
        .pump_until("the avatar to move to dora", |c, _| {
            support::server_field(&c.doc, "card", "avatar") == Some(serde_json::json!("dora"))
        })
        .await;
    assert_eq!(
        support::server_field(&client.doc, "card", "avatarReason").unwrap(),
        "comment"
    );

    // A missed call: an open incoming activity, so the counter turns green (incoming).
    let (status, _) = http_with(
        server.addr,
        "POST",
        &timeline,
        &[("X-Funnel-User", "eve")],
        Some(r#"{"kind":"call","direction":"missed","text":"+33 1 23 45 67 89"}"#),
    )
    .await;
    assert_eq!(status, 201);
    client
        .pump_until("an incoming counter", |c, _| {
            support::server_field(&c.doc, "card", "counter")
                .is_some_and(|v| v["state"] == "incoming")
        })
        .await;
    assert_eq!(
        support::server_field(&client.doc, "card", "avatar").unwrap(),
        "eve"
    );
    assert!(support::server_field(&client.doc, "card", "timelineAt").is_some());
    // Its activity says it was missed, with the event's text.
    let subjects: Vec<String> = {
        use yrs::{Map, ReadTxn, Transact};
        let txn = client.doc.transact();
        let activities = txn.get_map("activities").expect("activities");
        activities
            .iter(&txn)
            .filter_map(|(_, value)| match value {
                yrs::Out::YMap(a) => match a.get(&txn, "subject") {
                    Some(yrs::Out::Any(yrs::Any::String(s))) => Some(s.to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    assert!(
        subjects
            .iter()
            .any(|s| s == "Missed call: +33 1 23 45 67 89"),
        "{subjects:?}"
    );

    // An outgoing e-mail is kept but moves nothing.
    let (status, body) = http(
        server.addr,
        "POST",
        &timeline,
        Some(r#"{"kind":"email","direction":"outgoing","text":"hello"}"#),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(json(&body)["user"], "local", "no header: the local user");

    // Newest first, two per page.
    let (status, body) = http(server.addr, "GET", &format!("{timeline}?limit=2"), None).await;
    assert_eq!(status, 200);
    let page = json(&body);
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["email", "call"]);
    let next = page["next"].as_i64().unwrap();
    let (_, body) = http(
        server.addr,
        "GET",
        &format!("{timeline}?limit=2&before={next}"),
        None,
    )
    .await;
    let page = json(&body);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["kind"], "comment");
    assert!(page["next"].is_null());

    // Bad input.
    let cases = [
        (timeline.clone(), r#"{"kind":"fax"}"#.to_owned(), 400),
        (timeline.clone(), r#"{"kind":"call"}"#.to_owned(), 400),
        (
            timeline.clone(),
            r#"{"kind":"comment","direction":"incoming"}"#.to_owned(),
            400,
        ),
        // The caller is the author and the server's clock the time: neither is taken.
        (
            timeline.clone(),
            r#"{"kind":"comment","user":"x"}"#.to_owned(),
            400,
        ),
        (
            timeline.clone(),
            r#"{"kind":"comment","at":1}"#.to_owned(),
            400,
        ),
        (
            timeline.clone(),
            format!(r#"{{"kind":"comment","text":"{}"}}"#, "x".repeat(4097)),
            400,
        ),
        (
            timeline.clone(),
            format!(r#"{{"kind":"comment","text":"{}"}}"#, "x".repeat(9000)),
            413,
        ),
        (
            format!("/api/v1/boards/{id}/cards/nope/timeline"),
            r#"{"kind":"comment"}"#.to_owned(),
            404,
        ),
        (
            "/api/v1/boards/nope/cards/card/timeline".to_owned(),
            r#"{"kind":"comment"}"#.to_owned(),
            404,
        ),
    ];
    for (path, body, status) in cases {
        let (got, head, text) = http_full(server.addr, "POST", &path, &[], Some(&body)).await;
        assert_eq!(got, status, "{path} {body}: {text}");
        problem(status, &head, &text);
    }
    let (_, body) = http(server.addr, "GET", &timeline, None).await;
    assert_eq!(
        json(&body)["events"].as_array().unwrap().len(),
        3,
        "nothing more was stored"
    );
    server.stop().await;
}

#[tokio::test]
async fn api_calls_over_the_rate_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.api_rate = 1;
        config.api_burst = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            http(server.addr, "GET", "/api/v1/boards", None).await.0,
            200
        );
    }
    let (status, head, body) = http_full(server.addr, "GET", "/api/v1/me", &[], None).await;
    assert_eq!(status, 429, "{body}");
    problem(429, &head, &body);
    let retry_after: u64 = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no Retry-After in {head}"))
        .trim()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The docs page is static files, outside the budget.
    assert_eq!(http(server.addr, "GET", "/api/docs/", None).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn the_docs_page_serves_swagger_ui_over_the_whole_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, page) = http(server.addr, "GET", "/api/docs/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("swagger-ui"), "{page}");
    let (status, config) = http(server.addr, "GET", "/api/docs/swagger-initializer.js", None).await;
    assert_eq!(status, 200);
    assert!(config.contains("/api/docs/openapi.json"), "{config}");
    let (status, doc) = http(server.addr, "GET", "/api/docs/openapi.json", None).await;
    assert_eq!(status, 200);
    let doc = json(&doc);
    let create = &doc["paths"]["/api/v1/boards"]["post"];
    assert!(
        create["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Idempotency-Key"),
        "{create}"
    );
    assert!(create["responses"]["429"].is_object(), "{create}");
    // The API's own copy is the same document.
    let (_, served) = http(server.addr, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(json(&served), doc);
    server.stop().await;
}
