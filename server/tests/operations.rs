//! What operators rely on, through the real binary: the drain on SIGTERM, `funnel healthcheck`,
//! `funnel backup`, request ids and JSON logs.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Client, ProcessServer, WAIT, add_card, http, http_full};

fn funnel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `funnel healthcheck` against `url`: its exit success and its stderr.
fn healthcheck(url: &str) -> (bool, String) {
    let out = funnel()
        .args(["healthcheck", "--url", url, "--timeout", "2s"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_off_then_closes_sockets_in_waves() {
    let dir = tempfile::tempdir().unwrap();
    let server = ProcessServer::spawn(
        dir.path(),
        &["--drain-delay", "600ms", "--drain-window", "1500ms"],
    );
    let readyz = format!("http://{}/readyz", server.addr);
    assert_eq!(healthcheck(&readyz), (true, String::new()));

    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(Client::connect(&server.url("drain")).await);
    }
    sigterm(server.pid());
    let signalled = Instant::now();
    let mut closes = Vec::new();
    for mut client in clients {
        closes.push(tokio::spawn(async move {
            let (code, _) = client.expect_close().await;
            (code, Instant::now())
        }));
    }
    // Not ready at once, while every socket is still open (the delay is 600 ms).
    let (status, body) = http(server.addr, "GET", "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    let (ok, stderr) = healthcheck(&readyz);
    assert!(!ok && stderr.contains("503"), "{stderr}");
    assert!(
        closes.iter().all(|close| !close.is_finished()),
        "no socket closes during the drain delay"
    );

    let mut at = Vec::new();
    for close in closes {
        let (code, when) = close.await.unwrap();
        assert_eq!(code, 1012, "a drained socket is told to reconnect");
        at.push(when.duration_since(signalled));
    }
    at.sort();
    assert!(
        at[0] >= Duration::from_millis(500),
        "first close at {:?}",
        at[0]
    );
    let spread = at[at.len() - 1] - at[0];
    assert!(
        spread >= Duration::from_millis(300),
        "closes spread over the window, not at once: {at:?}"
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_fails_clearly_when_nothing_answers() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = unused.local_addr().unwrap();
    drop(unused);
    let (ok, stderr) = healthcheck(&format!("http://{addr}/readyz"));
    assert!(!ok);
    assert!(stderr.contains("does not answer"), "{stderr}");
    let (ok, stderr) = healthcheck("not a url");
    assert!(!ok && !stderr.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_running_server_and_the_copy_serves_the_board() {
    let live = tempfile::tempdir().unwrap();
    let server = ProcessServer::spawn(live.path(), &[]);
    let mut writer = Client::connect(&server.url("backed-up")).await;
    writer.write(|txn| add_card(txn, "c1", "Acme")).await;
    writer.wait_for_card("Acme").await;
    // Stored before the write is relayed: a second client seeing it means it is durable.
    let mut reader = Client::connect(&server.url("backed-up")).await;
    reader.wait_for_card("Acme").await;

    let copies = tempfile::tempdir().unwrap();
    let target = copies.path().join("funnel.db");
    let out = funnel()
        .arg("backup")
        .arg("--data-dir")
        .arg(live.path())
        .arg("--to")
        .arg(&target)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("100 %"), "progress is shown: {stderr}");
    assert!(stderr.contains("written"), "{stderr}");

    // A second backup to the same file is refused and leaves the first intact.
    let again = funnel()
        .arg("backup")
        .arg("--data-dir")
        .arg(live.path())
        .arg("--to")
        .arg(&target)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    drop(writer);
    drop(reader);
    server.kill_9();

    let restored = ProcessServer::spawn(copies.path(), &[]);
    let mut client = Client::connect(&restored.url("backed-up")).await;
    client.wait_for_card("Acme").await;
    assert_eq!(client.card_titles(), vec!["Acme".to_owned()]);

    let empty = tempfile::tempdir().unwrap();
    let nothing = funnel()
        .arg("backup")
        .arg("--data-dir")
        .arg(empty.path())
        .arg("--to")
        .arg(empty.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no database"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_an_id_and_json_logs_carry_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = funnel()
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_json = || -> serde_json::Value {
        let line = lines_rx.recv_timeout(WAIT).expect("a log line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let addr: std::net::SocketAddr = loop {
        let entry = next_json();
        if let Some(rest) = entry["fields"]["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("listening on "))
        {
            break rest.parse().unwrap();
        }
    };

    let (status, head, _) = http_full(addr, "GET", "/healthz", &[], None).await;
    assert_eq!(status, 200);
    let id = head
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .expect("a request id in the response");
    assert!(uuid_like(id), "{id}");

    let (_, head, _) = http_full(
        addr,
        "GET",
        "/readyz",
        &[("X-Request-Id", "from-the-balancer-42")],
        None,
    )
    .await;
    assert!(
        head.contains("x-request-id: from-the-balancer-42"),
        "{head}"
    );
    let logged = (0..200).find_map(|_| {
        let entry = next_json();
        let spans = entry["spans"].as_array()?.clone();
        spans
            .iter()
            .any(|span| span["request_id"] == "from-the-balancer-42")
            .then_some(entry)
    });
    assert!(logged.is_some(), "the request's log line carries its id");
    let _ = child.kill();
    let _ = child.wait();
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_queue_is_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::TestServer::start(dir.path()).await;
    let metric = |text: &str, name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .map(str::to_owned)
    };
    let (_, text) = http(server.addr, "GET", "/metrics", None).await;
    assert_eq!(
        metric(&text, "funnel_scheduler_queue").as_deref(),
        Some("0")
    );
    assert!(
        metric(&text, "funnel_scheduler_late_ms").is_some(),
        "{text}"
    );

    let mut client = Client::connect(&server.url("reminded")).await;
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    client
        .write(|txn| {
            add_card(txn, "c1", "Acme");
            support::add_call(txn, "a1", "c1", in_an_hour);
        })
        .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = http(server.addr, "GET", "/metrics", None).await;
        if metric(&text, "funnel_scheduler_queue").as_deref() == Some("1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the board's reminder is queued: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
    server.stop().await;
}
