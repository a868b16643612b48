//! Revocations across a cluster (docs/accounts.md, "Closing sockets"): two instances on one
//! PostgreSQL and a real Redis. A lowered role, a sign-out and a disabled person, each asked of
//! the first instance, close the person's open sockets on the second; an archived board closes
//! every socket on it there, which reopens read-only.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::policy::Role;
use funnel_protocol::wire;
use funnel_server::auth::{Auth, claims_for};
use serde_json::json;
use std::time::Duration;
use support::{Client, RedisServer, TestDatabase, TestServer, json_call_with as call};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn token(user: &str, role: Role) -> String {
    let claims = claims_for(user, None, role, &[], Duration::from_secs(600));
    Auth::with_secret(SECRET).issue(&claims).unwrap().unwrap()
}

/// The `name=value` of the response's session cookie.
fn session_cookie(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in {head}"));
    line["set-cookie:".len()..]
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A socket on `board` of instance `server` with these headers, synced.
async fn socket(server: &TestServer, board: &str, headers: &[(&str, &str)]) -> Client {
    let mut client = Client::connect_raw_with(&server.url(board), headers).await;
    client
        .send(wire::client::encode_sync_step1(&Default::default()))
        .await;
    client.wait_for_card("Acme").await;
    client
}

async fn sign_in(server: &TestServer) -> String {
    let (status, head, body) = call(
        server.addr,
        "POST",
        "/api/v1/session",
        &[],
        Some(json!({"email": "ann@example.com", "password": "a long enough passphrase"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    session_cookie(&head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_close_sockets_on_every_instance() {
    let db = TestDatabase::new().await;
    let redis = RedisServer::start();
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
    let (here, there) = (&servers[0], &servers[1]);
    let admin = format!("Bearer {}", token("root", Role::Admin));
    let auth = [("Authorization", admin.as_str())];

    // Ann is invited as a member on the first instance and signs in there.
    let (status, _, invite) = call(
        here.addr,
        "POST",
        "/api/v1/invites",
        &auth,
        Some(json!({"email": "ann@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{invite}");
    let ann = invite["person"]["id"].as_str().unwrap().to_owned();
    let secret = invite["link"].as_str().unwrap().split_once('#').unwrap().1;
    let (status, _, _) = call(
        here.addr,
        "POST",
        &format!("/api/v1/invites/{secret}/accept"),
        &[],
        Some(json!({"password": "a long enough passphrase"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, board) = call(
        here.addr,
        "POST",
        "/api/v1/boards",
        &auth,
        Some(json!({"entity": "deal"})),
    )
    .await;
    assert_eq!(status, 201);
    let board = board["id"].as_str().unwrap().to_owned();
    let (status, _, _) = call(
        here.addr,
        "POST",
        &format!("/api/v1/boards/{board}/cards"),
        &auth,
        Some(json!({"title": "Acme"})),
    )
    .await;
    assert_eq!(status, 201);

    // A lowered role, asked of the first instance, closes her socket on the second.
    let cookie = sign_in(here).await;
    let mut ann_there = socket(there, &board, &[("Cookie", &cookie)]).await;
    let person = format!("/api/v1/people/{ann}");
    let (status, _, body) = call(
        here.addr,
        "PATCH",
        &person,
        &auth,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (code, reason) = ann_there.expect_close().await;
    assert_eq!(code, 4403, "{reason}");

    // Signing out on the first instance closes that session's socket on the second.
    let mut ann_there = socket(there, &board, &[("Cookie", &cookie)]).await;
    let (status, _, _) = call(
        here.addr,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (code, reason) = ann_there.expect_close().await;
    assert_eq!(code, 4401, "{reason}");

    // Disabled on the first instance: her socket on the second closes at once.
    let cookie = sign_in(there).await;
    let mut ann_there = socket(there, &board, &[("Cookie", &cookie)]).await;
    let (status, _, body) = call(
        here.addr,
        "PATCH",
        &person,
        &auth,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (code, reason) = ann_there.expect_close().await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("disabled"), "{reason}");

    // Archiving the board on the first instance reopens a token's socket on the second.
    let bearer_url = format!("{}?token={}", there.url(&board), token("bob", Role::Member));
    let mut bob_there = Client::connect(&bearer_url).await;
    bob_there.wait_for_card("Acme").await;
    let (status, _, body) = call(
        here.addr,
        "PATCH",
        &format!("/api/v1/boards/{board}"),
        &auth,
        Some(json!({"archived": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (code, reason) = bob_there.expect_close().await;
    assert_eq!(code, 1012, "{reason}");

    for server in servers {
        server.stop().await;
    }
}
