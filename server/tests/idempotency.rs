//! `Idempotency-Key` through the real server: the same key twice makes one board, across a
//! restart on the same data directory, and across two instances sharing PostgreSQL; a key
//! reused for another body is a 422, a key whose first request is still running a 409.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_server::storage::postgres::PostgresStorage;
use funnel_server::storage::{KeyClaim, KeyRequest, Storage};
use serde_json::Value;
use std::net::SocketAddr;
use support::{TestDatabase, TestServer, http, http_full};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A header's value in a response head, by lowercase name.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim().eq_ignore_ascii_case(name)).then(|| value.trim().to_owned())
    })
}

async fn post_board(addr: SocketAddr, key: &str, body: &str) -> (u16, String, String) {
    http_full(
        addr,
        "POST",
        "/api/v1/boards",
        &[("Idempotency-Key", key)],
        Some(body),
    )
    .await
}

async fn board_count(addr: SocketAddr) -> usize {
    let (status, body) = http(addr, "GET", "/api/v1/boards", None).await;
    assert_eq!(status, 200, "{body}");
    json(&body)["boards"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_same_key_twice_makes_one_board_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let body = r#"{"entity":"deal","name":"Once"}"#;
    let (status, head, first) = post_board(server.addr, "key-1", body).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(header(&head, "idempotent-replayed"), None);
    let (status, head, again) = post_board(server.addr, "key-1", body).await;
    assert_eq!((status, json(&again)), (201, json(&first)));
    assert_eq!(
        header(&head, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&head, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(board_count(server.addr).await, 1);

    // Another body under the same key: refused, nothing written.
    let (status, head, refused) = post_board(server.addr, "key-1", r#"{"entity":"lead"}"#).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        header(&head, "content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(
        json(&refused)["type"],
        "urn:funnel:problem:idempotency-key-reused"
    );
    // Another key is another request; no key at all too.
    assert_eq!(post_board(server.addr, "key-2", body).await.0, 201);
    assert_eq!(
        http(server.addr, "POST", "/api/v1/boards", Some(body))
            .await
            .0,
        201
    );
    assert_eq!(board_count(server.addr).await, 3);

    // A refused request (bad JSON: 400) keeps nothing: the key then serves a good request.
    assert_eq!(post_board(server.addr, "key-3", "{").await.0, 400);
    assert_eq!(post_board(server.addr, "key-3", body).await.0, 201);
    assert_eq!(board_count(server.addr).await, 4);
    // A malformed key is a 400 problem.
    let (status, _, bad) = post_board(server.addr, " ", body).await;
    assert_eq!(status, 400, "{bad}");

    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    let (status, head, after_restart) = post_board(server.addr, "key-1", body).await;
    assert_eq!((status, json(&after_restart)), (201, json(&first)));
    assert_eq!(
        header(&head, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(board_count(server.addr).await, 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_share_their_keys() {
    let db = TestDatabase::new().await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut servers = Vec::new();
    for dir in &dirs {
        let url = db.url.clone();
        servers.push(
            TestServer::start_with(dir.path(), |config| config.database_url = Some(url)).await,
        );
    }
    let (a, b) = (servers[0].addr, servers[1].addr);
    let body = r#"{"entity":"lead","name":"Shared"}"#;
    let (status, _, first) = post_board(a, "cluster-key", body).await;
    assert_eq!(status, 201, "{first}");
    let (status, head, again) = post_board(b, "cluster-key", body).await;
    assert_eq!((status, json(&again)), (201, json(&first)));
    assert_eq!(
        header(&head, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!((board_count(a).await, board_count(b).await), (1, 1));

    // A request still running on another instance holds its key: this one is told to wait.
    let other = PostgresStorage::open(&db.url).await.unwrap();
    let running = KeyRequest {
        caller: funnel_server::auth::LOCAL_USER.into(),
        key: "running".into(),
        fingerprint: "elsewhere".into(),
        token: "t".into(),
        now: funnel_server::clock::Clock::now_ms(&funnel_server::clock::SystemClock),
    };
    assert_eq!(other.claim_key(&running).await.unwrap(), KeyClaim::Claimed);
    let (status, _, busy) = post_board(b, "running", body).await;
    // The other request was another body (its fingerprint differs): 422; the same body: 409.
    assert_eq!(status, 422, "{busy}");
    other
        .release_key(&running.caller, "running", "t")
        .await
        .unwrap();
    let same = KeyRequest {
        fingerprint: funnel_server::api::fingerprint("POST", "/api/v1/boards", body.as_bytes()),
        ..running.clone()
    };
    assert_eq!(other.claim_key(&same).await.unwrap(), KeyClaim::Claimed);
    let (status, _, busy) = post_board(b, "running", body).await;
    assert_eq!(status, 409, "{busy}");
    assert_eq!(
        json(&busy)["type"],
        "urn:funnel:problem:idempotency-key-in-flight"
    );
    assert_eq!(board_count(a).await, 1, "nothing written meanwhile");
    other
        .release_key(&running.caller, "running", "t")
        .await
        .unwrap();
    let (status, _, ran) = post_board(b, "running", body).await;
    assert_eq!(status, 201, "{ran}");
    assert_eq!(board_count(a).await, 2);
    other.close().await;
    for server in servers {
        server.stop().await;
    }
}
