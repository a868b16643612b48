//! The command-line client (`funnel boards`, `funnel watch`, errors) run as the binary against
//! a real server.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::wire;
use serde_json::Value;
use std::process::Stdio;
use support::{Client, TestServer, WAIT, add_card, http};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use yrs::{Map, ReadTxn, Transact};

fn funnel() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_funnel"));
    command
        .env_remove("FUNNEL_TOKEN")
        .env_remove("FUNNEL_URL")
        .kill_on_drop(true);
    command
}

async fn run(args: &[&str]) -> (bool, String, String) {
    let output = tokio::time::timeout(WAIT, funnel().args(args).output())
        .await
        .expect("the command ends in time")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn boards_are_listed_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/boards",
        Some(r#"{"entity":"deal","name":"Big deals"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("http://{}", server.addr);

    let (ok, table, err) = run(&["boards", "--url", &url]).await;
    assert!(ok, "{err}");
    let header = table.lines().next().unwrap();
    assert!(header.contains("ID") && header.contains("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&id) && l.contains("Big deals") && l.contains("deal")),
        "{table}"
    );

    let (ok, json, err) = run(&["boards", "--json", "--url", &url]).await;
    assert!(ok, "{err}");
    let boards: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(boards[0]["id"], id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn failures_say_why_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.auth_secret = Some("s".repeat(32));
    })
    .await;
    let url = format!("http://{}", server.addr);
    // A bad token: the problem's detail, not a stack of JSON.
    let (ok, _, err) = run(&["boards", "--url", &url, "--token", "nonsense"]).await;
    assert!(!ok);
    assert!(err.contains("the server answered 401"), "{err}");
    // Nobody listening.
    let (ok, _, err) = run(&["boards", "--url", "http://127.0.0.1:1"]).await;
    assert!(!ok);
    assert!(err.contains("cannot reach http://127.0.0.1:1"), "{err}");
    let (ok, _, err) = run(&["boards", "--url", "ftp://x"]).await;
    assert!(!ok);
    assert!(err.contains("http://"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_a_line_per_change_with_its_author() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let board = "watched";
    // Opening the board creates it (local mode is an admin).
    let mut ann = Client::connect(&server.url(board)).await;
    let url = format!("http://{}", server.addr);
    let mut watch = funnel()
        .args(["watch", board, "--url", &url, "--count", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(watch.stderr.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, stderr.next_line())
        .await
        .expect("watch says it is watching")
        .unwrap()
        .unwrap_or_default();
    assert!(ready.starts_with("watching watched"), "{ready}");

    // ann says who she is, then adds a card and moves it.
    let client = ann.doc.client_id().get();
    ann.send(wire::client::encode_awareness_state(
        client,
        1,
        r##"{"user":{"id":"ann","name":"ann","color":"#ff0000"},"dragging":null,"viewing":null}"##,
    ))
    .await;
    ann.pump_until("ann's own awareness echo", |c, _| {
        c.awareness.contains_key(&client)
    })
    .await;
    ann.write(|txn| add_card(txn, "c1", "Acme")).await;
    let stages = funnel_protocol::board::stages(&ann.doc.transact());
    let won = stages.iter().find(|s| s.name == "Won").unwrap().id.clone();
    ann.write(|txn| {
        let cards = txn.get_map("cards").unwrap();
        let Some(yrs::Out::YMap(card)) = cards.get(txn, "c1") else {
            panic!("no card c1");
        };
        card.insert(txn, "stage", won.as_str());
    })
    .await;

    let output = tokio::time::timeout(WAIT, watch.wait_with_output())
        .await
        .expect("watch stops after its two events")
        .unwrap();
    assert!(output.status.success());
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        ["Acme added to New by ann", "Acme moved New → Won by ann"]
    );
    server.stop().await;
}

#[tokio::test]
async fn cards_are_added_listed_moved_and_edited() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, body) = http(
        server.addr,
        "POST",
        "/api/v1/boards",
        Some(r#"{"entity":"deal","name":"Deals"}"#),
    )
    .await;
    let board = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("http://{}", server.addr);
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--url".to_owned(), url.clone()]);
        all
    };
    let run_owned = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs).await
    };

    let add = cli(&[
        "cards",
        "add",
        &board,
        "--title",
        "Acme",
        "--amount",
        "120050",
        "--client",
        "Acme GmbH",
        "--idempotency-key",
        "acme-1",
        "--json",
    ]);
    let (ok, out, err) = run_owned(add.clone()).await;
    assert!(ok, "{err}");
    let card: Value = serde_json::from_str(&out).unwrap();
    let id = card["id"].as_str().unwrap().to_owned();
    // The same key again adds nothing.
    let (ok, again, err) = run_owned(add).await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap()["id"],
        id.as_str()
    );

    let (ok, table, err) = run_owned(cli(&["cards", "list", &board])).await;
    assert!(ok, "{err}");
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(
        rows[0].contains("Acme") && rows[0].contains("New") && rows[0].contains("1200.50"),
        "{table}"
    );

    let (ok, moved, err) = run_owned(cli(&["cards", "move", &board, &id, "won"])).await;
    assert!(ok, "{err}");
    assert!(moved.contains("Won"), "{moved}");
    let (ok, out, err) = run_owned(cli(&[
        "cards",
        "edit",
        &board,
        &id,
        "--title",
        "Acme Corp",
        "--json",
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["title"],
        "Acme Corp"
    );
    let (ok, out, err) =
        run_owned(cli(&["cards", "list", &board, "--stage", "Won", "--json"])).await;
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // Refusals print the problem's detail and fail.
    let (ok, _, err) = run_owned(cli(&["cards", "move", &board, &id, "Nowhere"])).await;
    assert!(!ok);
    assert!(err.contains("no stage \"Nowhere\""), "{err}");
    let (ok, _, err) = run_owned(cli(&["cards", "edit", &board, "missing", "--title", "x"])).await;
    assert!(!ok);
    assert!(err.contains("the server answered 404"), "{err}");
    server.stop().await;
}
