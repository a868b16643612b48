//! The board resources of the JSON API (cards, stages) through the real server: each resource,
//! filters and paging, roles (viewer 403, member stage change 403, no token 401), stage
//! invariants 409, bad bodies with field-level errors, writes that reach a live socket client,
//! and a client's move that shows over REST at once; on SQLite, and one case on PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::policy::Role;
use funnel_server::auth::{Auth, claims_for};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Client, TestDatabase, TestServer, http_full, json_call};
use yrs::Transact;

const SECRET: &str = "a test secret that is long enough for HS256";

fn token(user: &str, role: Role) -> String {
    let claims = claims_for(user, None, role, &[], Duration::from_secs(600));
    Auth::with_secret(SECRET).issue(&claims).unwrap().unwrap()
}

/// A caller of the API: their bearer token (None: no header).
struct Api<'a> {
    server: &'a TestServer,
    bearer: Option<String>,
}

impl Api<'_> {
    /// The status, the head and the JSON body (Null when empty).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String, Value) {
        json_call(self.server.addr, self.bearer.as_deref(), method, path, body).await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, _, value) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }

    /// Expects a problem document of `status`; returns it.
    async fn problem(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, head, value) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{head}"
        );
        assert_eq!(value["status"], status, "{value}");
        value
    }
}

async fn start_with_tokens(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(dir, |config| config.auth_secret = Some(SECRET.into())).await
}

/// A deal board made by `admin`; returns its id and its stages' ids by name.
async fn deal_board(admin: &Api<'_>) -> (String, Vec<(String, String)>) {
    support::deal_board(admin.server.addr, admin.bearer.as_deref()).await
}

fn titles(list: &Value) -> Vec<&str> {
    list["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn cards_are_created_listed_filtered_paged_edited_moved_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path()).await;
    let admin = Api {
        server: &server,
        bearer: Some(token("root", Role::Admin)),
    };
    let ann = Api {
        server: &server,
        bearer: Some(token("ann", Role::Member)),
    };
    let (board, stages) = deal_board(&admin).await;
    let cards = format!("/api/v1/boards/{board}/cards");
    let new = support::stage_id(&stages, "New");
    let won = support::stage_id(&stages, "Won");

    // Created at the top of the initial stage, as the caller, with a Location.
    let (status, head, acme) = ann
        .call(
            "POST",
            &cards,
            Some(json!({"title": "Acme", "amount": 150000, "client": "Acme Inc", "email": "buyer@acme.com"})),
        )
        .await;
    assert_eq!(status, 201, "{acme}");
    let acme_id = acme["id"].as_str().unwrap().to_owned();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("location: {cards}/{acme_id}").to_ascii_lowercase()),
        "{head}"
    );
    assert_eq!(
        (
            &acme["stageId"],
            &acme["responsible"],
            &acme["currency"],
            &acme["email"]
        ),
        (
            &json!(new),
            &json!("ann"),
            &json!("USD"),
            &json!("buyer@acme.com")
        )
    );
    // The server's fields are there by the reply: the upkeep ran before it.
    assert_eq!(acme["avatar"], "ann", "{acme}");
    assert_eq!(acme["counter"]["state"], "idle", "{acme}");
    let created_at = acme["createdAt"].as_i64().unwrap();
    assert!(created_at > 0 && acme["updatedAt"].as_i64().unwrap() >= created_at);

    let globex = ann
        .ok(
            "POST",
            &cards,
            Some(json!({"title": "Globex", "stageId": won, "responsible": "bob"})),
            201,
        )
        .await;
    let globex_id = globex["id"].as_str().unwrap().to_owned();
    let initech = ann
        .ok("POST", &cards, Some(json!({"title": "Initech"})), 201)
        .await;
    let initech_id = initech["id"].as_str().unwrap().to_owned();

    // Board order: New (newest on top), then Won.
    let all = ann.ok("GET", &cards, None, 200).await;
    assert_eq!(titles(&all), ["Initech", "Acme", "Globex"]);
    assert!(all["next"].is_null());
    let get = |query: String| {
        let ann = &ann;
        let cards = &cards;
        async move { ann.ok("GET", &format!("{cards}?{query}"), None, 200).await }
    };
    assert_eq!(titles(&get(format!("stageId={won}")).await), ["Globex"]);
    assert_eq!(titles(&get("responsible=bob".into()).await), ["Globex"]);
    assert_eq!(titles(&get("q=ACME.COM".into()).await), ["Acme"]);
    assert_eq!(titles(&get("q=inc".into()).await), ["Acme"]);
    // Paging: two pages of two and one.
    let first = get("limit=2".into()).await;
    assert_eq!(titles(&first), ["Initech", "Acme"]);
    let cursor = first["next"].as_str().unwrap().to_owned();
    let second = get(format!("limit=2&cursor={cursor}")).await;
    assert_eq!(titles(&second), ["Globex"]);
    assert!(second["next"].is_null());
    let stale = ann
        .problem("GET", &format!("{cards}?cursor=gone"), None, 422)
        .await;
    assert_eq!(stale["errors"][0]["field"], "cursor", "{stale}");

    // Edited: only the fields sent; updatedSince sees the edit.
    let before_edit = all["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["updatedAt"].as_i64().unwrap())
        .max()
        .unwrap()
        + 1;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // `updatedSince` also takes the cards with a change event since then, and an event's time
    // is when the room stored it, a little after the `updatedAt` the API wrote: ask from now.
    let before_edit = before_edit.max(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let edited = ann
        .ok(
            "PATCH",
            &format!("{cards}/{acme_id}"),
            Some(json!({"amount": 99, "email": ""})),
            200,
        )
        .await;
    assert_eq!(
        (&edited["amount"], &edited["email"], &edited["title"]),
        (&json!(99), &json!(""), &json!("Acme"))
    );
    assert_eq!(
        titles(&get(format!("updatedSince={before_edit}")).await),
        ["Acme"]
    );

    // Moved: to the top of Won, then after Globex, then before Initech back in New.
    let moved = ann
        .ok(
            "PATCH",
            &format!("{cards}/{acme_id}"),
            Some(json!({"stageId": won})),
            200,
        )
        .await;
    assert_eq!(moved["stageId"], won);
    assert_eq!(
        titles(&get(format!("stageId={won}")).await),
        ["Acme", "Globex"]
    );
    ann.ok(
        "PATCH",
        &format!("{cards}/{acme_id}"),
        Some(json!({"after": globex_id})),
        200,
    )
    .await;
    assert_eq!(
        titles(&get(format!("stageId={won}")).await),
        ["Globex", "Acme"]
    );
    ann.ok(
        "PATCH",
        &format!("{cards}/{acme_id}"),
        Some(json!({"stageId": new, "before": initech_id})),
        200,
    )
    .await;
    assert_eq!(
        titles(&get(format!("stageId={new}")).await),
        ["Acme", "Initech"]
    );
    let fetched = ann
        .ok("GET", &format!("{cards}/{acme_id}"), None, 200)
        .await;
    assert_eq!(fetched["stageId"], new);

    // Deleted.
    ann.ok("DELETE", &format!("{cards}/{globex_id}"), None, 204)
        .await;
    ann.problem("GET", &format!("{cards}/{globex_id}"), None, 404)
        .await;
    ann.problem("DELETE", &format!("{cards}/{globex_id}"), None, 404)
        .await;
    assert_eq!(
        titles(&ann.ok("GET", &cards, None, 200).await),
        ["Acme", "Initech"]
    );

    // Archived: out of the board's list and its stage counts, in `?archived=true`, kept whole;
    // restored, back where it was.
    let archived = ann
        .ok(
            "PATCH",
            &format!("{cards}/{initech_id}"),
            Some(json!({"archived": true})),
            200,
        )
        .await;
    assert!(archived["archivedAt"].as_i64().is_some(), "{archived}");
    assert_eq!(titles(&ann.ok("GET", &cards, None, 200).await), ["Acme"]);
    let shelf = ann
        .ok("GET", &format!("{cards}?archived=true"), None, 200)
        .await;
    assert_eq!(titles(&shelf), ["Initech"]);
    assert_eq!(shelf["cards"][0]["stageId"], new);
    let stages_path = cards.replace("/cards", "/stages");
    let counted = ann.ok("GET", &stages_path, None, 200).await;
    let total: i64 = counted["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cards"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(
        total, 1,
        "stage counts leave the archived card out: {counted}"
    );
    let fetched = ann
        .ok("GET", &format!("{cards}/{initech_id}"), None, 200)
        .await;
    assert_eq!(fetched["archivedAt"], archived["archivedAt"]);
    let restored = ann
        .ok(
            "PATCH",
            &format!("{cards}/{initech_id}"),
            Some(json!({"archived": false})),
            200,
        )
        .await;
    assert!(restored["archivedAt"].is_null());
    assert_eq!(
        titles(&ann.ok("GET", &cards, None, 200).await),
        ["Acme", "Initech"]
    );
    assert_eq!(
        titles(
            &ann.ok("GET", &format!("{cards}?archived=true"), None, 200)
                .await
        ),
        Vec::<&str>::new()
    );

    // Restarted, the board holds what the API wrote.
    server.stop().await;
    let server = start_with_tokens(dir.path()).await;
    let ann = Api {
        server: &server,
        bearer: Some(token("ann", Role::Member)),
    };
    let after = ann.ok("GET", &cards, None, 200).await;
    assert_eq!(titles(&after), ["Acme", "Initech"]);
    assert_eq!(after["cards"][0]["amount"], 99);
    server.stop().await;
}

#[tokio::test]
async fn roles_tokens_bad_bodies_and_stage_invariants_are_refused_with_problems() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path()).await;
    let admin = Api {
        server: &server,
        bearer: Some(token("root", Role::Admin)),
    };
    let member = Api {
        server: &server,
        bearer: Some(token("ann", Role::Member)),
    };
    let viewer = Api {
        server: &server,
        bearer: Some(token("vic", Role::Viewer)),
    };
    let nobody = Api {
        server: &server,
        bearer: None,
    };
    let (board, stages) = deal_board(&admin).await;
    let cards = format!("/api/v1/boards/{board}/cards");
    let stages_path = format!("/api/v1/boards/{board}/stages");
    let card = member
        .ok("POST", &cards, Some(json!({"title": "Acme"})), 201)
        .await;
    let card_path = format!("{cards}/{}", card["id"].as_str().unwrap());

    // No token: 401 with its challenge.
    let (status, head, _) = nobody.call("GET", &cards, None).await;
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    // Viewers read but write nothing.
    assert_eq!(titles(&viewer.ok("GET", &cards, None, 200).await), ["Acme"]);
    for (method, path, body) in [
        ("POST", cards.clone(), json!({"title": "x"})),
        ("PATCH", card_path.clone(), json!({"title": "x"})),
        ("DELETE", card_path.clone(), Value::Null),
    ] {
        let body = (!body.is_null()).then_some(body);
        viewer.problem(method, &path, body, 403).await;
    }
    // Members change cards, not stages.
    let lost = support::stage_id(&stages, "Lost");
    let problem = member
        .problem(
            "POST",
            &stages_path,
            Some(json!({"name": "Demo", "color": "#123456"})),
            403,
        )
        .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("admin"),
        "{problem}"
    );
    member
        .problem(
            "PATCH",
            &format!("{stages_path}/{lost}"),
            Some(json!({"name": "Gone"})),
            403,
        )
        .await;
    member
        .problem("DELETE", &format!("{stages_path}/{lost}"), None, 403)
        .await;

    // Bad bodies: not JSON or unknown fields 400, bad fields 422 each named.
    member.problem("POST", &cards, None, 400).await;
    member
        .problem(
            "POST",
            &cards,
            Some(json!({"title": "x", "user": "eve"})),
            400,
        )
        .await;
    for (body, field) in [
        (json!({"title": "  "}), "title"),
        (json!({"title": "x", "email": "not-an-address"}), "email"),
        (json!({"title": "x", "currency": "dollars"}), "currency"),
        (
            json!({"title": "x", "amount": 9_007_199_254_740_992_i64}),
            "amount",
        ),
        (json!({"title": "x", "stageId": "nope"}), "stageId"),
    ] {
        let problem = member
            .problem("POST", &cards, Some(body.clone()), 422)
            .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        assert_eq!(problem["type"], "urn:funnel:problem:invalid-fields");
    }
    member
        .problem("PATCH", &card_path, Some(json!({"after": "nope"})), 422)
        .await;
    // The quick-create form's fields are required, all listed at once.
    let doc_client = Client::connect(&format!(
        "{}?token={}",
        server.url(&board),
        token("root", Role::Admin)
    ))
    .await;
    let mut doc_client = doc_client;
    doc_client
        .write(|txn| funnel_protocol::board::set_quick_create_fields(txn, &["amount", "email"]))
        .await;
    // Another client seeing the form means the room applied it (and the API goes through it).
    let mut other = Client::connect(&format!(
        "{}?token={}",
        server.url(&board),
        token("root", Role::Admin)
    ))
    .await;
    other
        .pump_until("the quick-create form", |c, _| {
            !funnel_protocol::board::quick_create_fields(&c.doc.transact()).is_empty()
        })
        .await;
    let problem = member
        .problem("POST", &cards, Some(json!({"title": "Bare"})), 422)
        .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["amount", "email"], "{problem}");
    member
        .ok(
            "POST",
            &cards,
            Some(json!({"title": "Full", "amount": 1, "email": "a@b.co"})),
            201,
        )
        .await;

    // Stage invariants: 409 with the reason; nothing changes.
    let new = support::stage_id(&stages, "New");
    let won = support::stage_id(&stages, "Won");
    let failure = support::stage_id(&stages, "Failure analysis");
    let problem = admin
        .problem("DELETE", &format!("{stages_path}/{new}"), None, 409)
        .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("initial"),
        "{problem}"
    );
    admin
        .problem(
            "DELETE",
            &format!("{stages_path}/{new}?moveCardsTo={won}"),
            None,
            409,
        )
        .await;
    admin
        .problem("DELETE", &format!("{stages_path}/{won}"), None, 409)
        .await;
    admin
        .problem(
            "POST",
            &stages_path,
            Some(json!({"name": "Won again", "color": "#00ff00", "kind": "success"})),
            409,
        )
        .await;
    admin
        .problem(
            "PATCH",
            &format!("{stages_path}/{won}"),
            Some(json!({"after": new})),
            409,
        )
        .await;
    // A stage that holds cards: 409 without moveCardsTo, deleted with it.
    admin
        .ok("PATCH", &card_path, Some(json!({"stageId": failure})), 200)
        .await;
    let problem = admin
        .problem("DELETE", &format!("{stages_path}/{failure}"), None, 409)
        .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("moveCardsTo"),
        "{problem}"
    );
    admin
        .problem(
            "DELETE",
            &format!("{stages_path}/{failure}?moveCardsTo=nope"),
            None,
            422,
        )
        .await;
    admin
        .ok(
            "DELETE",
            &format!("{stages_path}/{failure}?moveCardsTo={lost}"),
            None,
            204,
        )
        .await;
    let moved = admin.ok("GET", &card_path, None, 200).await;
    assert_eq!(moved["stageId"], lost);
    // Now Lost is the last failure stage.
    let problem = admin
        .problem(
            "DELETE",
            &format!("{stages_path}/{lost}?moveCardsTo={new}"),
            None,
            409,
        )
        .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("last failure"),
        "{problem}"
    );

    // Admins add, rename, recolour and move stages.
    let demo = admin
        .ok(
            "POST",
            &stages_path,
            Some(json!({"name": "Demo", "color": "#123456"})),
            201,
        )
        .await;
    let demo_id = demo["id"].as_str().unwrap();
    assert_eq!(demo["kind"], "progress");
    admin
        .problem(
            "POST",
            &stages_path,
            Some(json!({"name": "Bad", "color": "blue"})),
            422,
        )
        .await;
    let renamed = admin
        .ok(
            "PATCH",
            &format!("{stages_path}/{demo_id}"),
            Some(json!({"name": "Demo call", "color": "#abcdef", "after": new})),
            200,
        )
        .await;
    assert_eq!(
        (&renamed["name"], &renamed["color"]),
        (&json!("Demo call"), &json!("#abcdef"))
    );
    let listed = admin.ok("GET", &stages_path, None, 200).await;
    let names: Vec<&str> = listed["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "New",
            "Demo call",
            "Preparing documents",
            "Invoice sent",
            "In progress",
            "Won",
            "Lost"
        ]
    );
    admin
        .ok("DELETE", &format!("{stages_path}/{demo_id}"), None, 204)
        .await;
    admin
        .problem("DELETE", &format!("{stages_path}/{demo_id}"), None, 404)
        .await;
    drop(doc_client);
    server.stop().await;
}

#[tokio::test]
async fn rest_writes_reach_a_live_client_and_its_moves_show_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let local = Api {
        server: &server,
        bearer: None,
    };
    let (board, stages) = deal_board(&local).await;
    let cards = format!("/api/v1/boards/{board}/cards");
    let mut client = Client::connect(&server.url(&board)).await;
    let card = local
        .ok("POST", &cards, Some(json!({"title": "Acme"})), 201)
        .await;
    let id = card["id"].as_str().unwrap().to_owned();
    client.wait_for_card("Acme").await;
    // In local mode the actor is X-Funnel-User.
    let (status, _, body) = http_full(
        server.addr,
        "PATCH",
        &format!("{cards}/{id}"),
        &[("X-Funnel-User", "mia")],
        Some(r#"{"responsible": "mia"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    client
        .pump_until("the new responsible and its avatar", |c, _| {
            support::server_field(&c.doc, &id, "avatar") == Some(json!("mia"))
        })
        .await;
    // The client moves the card; the API shows it at once.
    let won = support::stage_id(&stages, "Won").to_owned();
    client
        .write(|txn| {
            funnel_protocol::board::move_card(
                txn,
                &id,
                &won,
                funnel_protocol::board::CardPlace::Top,
            )
            .unwrap()
        })
        .await;
    let fetched = local.ok("GET", &format!("{cards}/{id}"), None, 200).await;
    assert_eq!(fetched["stageId"], won.as_str());
    assert_eq!(
        funnel_protocol::board::card(&client.doc.transact(), &id)
            .unwrap()
            .responsible,
        "mia"
    );
    server.stop().await;
}

#[tokio::test]
async fn cards_written_over_rest_are_kept_in_postgres() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone();
    let start = |url: String| {
        let dir = dir.path().to_owned();
        async move { TestServer::start_with(&dir, |config| config.database_url = Some(url)).await }
    };
    let server = start(url.clone()).await;
    let api = Api {
        server: &server,
        bearer: None,
    };
    let (board, _) = deal_board(&api).await;
    let cards = format!("/api/v1/boards/{board}/cards");
    api.ok(
        "POST",
        &cards,
        Some(json!({"title": "Acme", "email": "a@acme.com"})),
        201,
    )
    .await;
    api.problem("POST", &cards, Some(json!({"title": ""})), 422)
        .await;
    server.stop().await;
    let server = start(url).await;
    let api = Api {
        server: &server,
        bearer: None,
    };
    let listed = api.ok("GET", &cards, None, 200).await;
    assert_eq!(titles(&listed), ["Acme"]);
    assert_eq!(listed["cards"][0]["email"], "a@acme.com");
    server.stop().await;
}

#[tokio::test]
async fn activities_are_added_and_completed_and_admins_change_settings_fields_and_forms() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path()).await;
    let admin = Api {
        server: &server,
        bearer: Some(token("root", Role::Admin)),
    };
    let member = Api {
        server: &server,
        bearer: Some(token("ann", Role::Member)),
    };
    let (board, _) = deal_board(&admin).await;
    let base = format!("/api/v1/boards/{board}");
    let card = member
        .ok(
            "POST",
            &format!("{base}/cards"),
            Some(json!({"title": "Acme"})),
            201,
        )
        .await;
    let card_id = card["id"].as_str().unwrap();
    let activities = format!("{base}/cards/{card_id}/activities");

    // A planned call far ahead: the counter counts it, planned.
    let deadline = 4_000_000_000_000_i64;
    let call = member
        .ok(
            "POST",
            &activities,
            Some(json!({"kind": "call", "subject": "Intro", "deadline": deadline})),
            201,
        )
        .await;
    assert_eq!(
        (&call["direction"], &call["responsible"], &call["done"]),
        (&json!("outgoing"), &json!("ann"), &json!(false))
    );
    let card_now = member
        .ok("GET", &format!("{base}/cards/{card_id}"), None, 200)
        .await;
    assert_eq!(card_now["counter"]["state"], "planned", "{card_now}");
    member
        .problem(
            "POST",
            &activities,
            Some(json!({"kind": "call", "direction": "sideways"})),
            422,
        )
        .await;
    member
        .problem(
            "POST",
            &format!("{base}/cards/nope/activities"),
            Some(json!({"kind": "call"})),
            404,
        )
        .await;
    let listed = member.ok("GET", &activities, None, 200).await;
    assert_eq!(listed["activities"].as_array().unwrap().len(), 1);
    // Completed: the counter is idle again.
    let call_id = call["id"].as_str().unwrap();
    let done = member
        .ok(
            "PATCH",
            &format!("{activities}/{call_id}"),
            Some(json!({"done": true})),
            200,
        )
        .await;
    assert_eq!(done["done"], true);
    let card_now = member
        .ok("GET", &format!("{base}/cards/{card_id}"), None, 200)
        .await;
    assert_eq!(card_now["counter"]["state"], "idle", "{card_now}");
    member
        .problem(
            "PATCH",
            &format!("{activities}/nope"),
            Some(json!({"done": true})),
            404,
        )
        .await;

    // Settings, fields and forms: admins only.
    member
        .problem("PATCH", &base, Some(json!({"name": "Mine"})), 403)
        .await;
    let settings = admin
        .ok(
            "PATCH",
            &base,
            Some(json!({"name": "Enterprise", "currency": "EUR", "counterThresholdMin": 30})),
            200,
        )
        .await;
    assert_eq!(
        settings,
        json!({
            "name": "Enterprise", "entity": "deal", "currency": "EUR", "counterThresholdMin": 30,
            "lostReasons": [], "archived": false, "archivedAt": null
        })
    );
    assert_eq!(
        admin.ok("GET", &base, None, 200).await["name"],
        "Enterprise"
    );
    admin
        .problem(
            "PATCH",
            &base,
            Some(json!({"counterThresholdMin": -1})),
            422,
        )
        .await;
    member
        .problem(
            "POST",
            &format!("{base}/fields"),
            Some(json!({"label": "Source", "type": "string"})),
            403,
        )
        .await;
    let field = admin
        .ok(
            "POST",
            &format!("{base}/fields"),
            Some(json!({"label": "Source", "type": "enum", "options": ["web", "phone"]})),
            201,
        )
        .await;
    let field_id = field["id"].as_str().unwrap();
    admin
        .problem(
            "POST",
            &format!("{base}/fields"),
            Some(json!({"label": "Bad", "type": "colour"})),
            422,
        )
        .await;
    let fields = member.ok("GET", &format!("{base}/fields"), None, 200).await;
    assert_eq!(fields["fields"][0]["options"], json!(["web", "phone"]));
    let form = format!("{base}/forms/quickCreate");
    admin
        .problem(
            "PUT",
            &form,
            Some(json!({"fields": ["title", "nope"]})),
            422,
        )
        .await;
    admin
        .ok(
            "PUT",
            &form,
            Some(json!({"fields": ["title", field_id]})),
            200,
        )
        .await;
    assert_eq!(
        member.ok("GET", &form, None, 200).await,
        json!({"fields": ["title", field_id]})
    );
    // The form now asks for the custom field.
    let problem = member
        .problem(
            "POST",
            &format!("{base}/cards"),
            Some(json!({"title": "Bare"})),
            422,
        )
        .await;
    assert_eq!(problem["errors"][0]["field"], field_id);
    let made = member
        .ok(
            "POST",
            &format!("{base}/cards"),
            Some(json!({"title": "Sourced", "fields": {field_id: "web"}})),
            201,
        )
        .await;
    assert_eq!(
        (&made["fields"][field_id], &made["currency"]),
        (&json!("web"), &json!("EUR"))
    );
    server.stop().await;
}
