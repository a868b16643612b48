//! The hub through the real server: real sockets, real SQLite, Rust y-websocket clients.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use bytes::Bytes;
use funnel_protocol::wire;
use futures_util::SinkExt;
use support::{Client, ProcessServer, TestServer, add_card, card_titles, doc_state, stage_names};
use tokio_tungstenite::tungstenite::Message;

const DEAL_STAGES: [&str; 7] = [
    "New",
    "Preparing documents",
    "Invoice sent",
    "In progress",
    "Won",
    "Lost",
    "Failure analysis",
];

#[tokio::test]
async fn a_new_board_starts_with_the_default_deal_stages() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let client = Client::connect(&server.url("pipeline-1")).await;
    assert_eq!(stage_names(&client.doc), DEAL_STAGES);
    server.stop().await;
}

#[tokio::test]
async fn two_clients_converge_and_a_late_joiner_gets_the_full_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = server.url("b");
    let mut a = Client::connect(&url).await;
    let mut b = Client::connect(&url).await;

    a.write(|txn| add_card(txn, "c1", "from a")).await;
    b.write(|txn| add_card(txn, "c2", "from b")).await;
    a.wait_for_card("from b").await;
    b.wait_for_card("from a").await;
    assert_eq!(a.card_titles(), ["from a", "from b"]);
    assert_eq!(b.card_titles(), a.card_titles());

    let late = Client::connect(&url).await;
    assert_eq!(late.card_titles(), ["from a", "from b"]);
    assert_eq!(stage_names(&late.doc), DEAL_STAGES);
    server.stop().await;
}

#[tokio::test]
async fn boards_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut a = Client::connect(&server.url("one")).await;
    a.write(|txn| add_card(txn, "c1", "only on one")).await;
    let mut same = Client::connect(&server.url("one")).await;
    same.wait_for_card("only on one").await;
    let other = Client::connect(&server.url("two")).await;
    assert!(other.card_titles().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn what_was_written_before_a_clean_shutdown_is_there_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = server.url("b");
    let mut a = Client::connect(&url).await;
    for i in 0..50 {
        a.write(|txn| add_card(txn, &format!("c{i}"), &format!("card {i:02}")))
            .await;
    }
    // The last write is stored once another client sees it.
    let mut b = Client::connect(&url).await;
    b.wait_for_card("card 49").await;
    let before = card_titles(&b.doc);

    let stopping = tokio::spawn(server.stop());
    // Shutdown closes every socket with 1012 (restart): stock clients reconnect and resync.
    let (code, _) = a.expect_close().await;
    assert_eq!(code, 1012);
    stopping.await.unwrap();

    let server = TestServer::start(dir.path()).await;
    let c = Client::connect(&server.url("b")).await;
    assert_eq!(card_titles(&c.doc), before);
    assert_eq!(before.len(), 50);
    server.stop().await;
}

#[tokio::test]
async fn compaction_keeps_every_update() {
    let dir = tempfile::tempdir().unwrap();
    // Compact every 10 updates, so 100 writes compact many times while clients write.
    let server = TestServer::start_with(dir.path(), |c| c.compact_after = 10).await;
    let url = server.url("b");
    let mut a = Client::connect(&url).await;
    for i in 0..100 {
        a.write(|txn| add_card(txn, &format!("c{i}"), &format!("card {i:03}")))
            .await;
    }
    let mut b = Client::connect(&url).await;
    b.wait_for_card("card 099").await;
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    let c = Client::connect(&server.url("b")).await;
    assert_eq!(card_titles(&c.doc).len(), 100);
    assert_eq!(card_titles(&c.doc), card_titles(&b.doc));
    server.stop().await;
}

#[tokio::test]
async fn nothing_broadcast_is_lost_when_the_server_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let server = ProcessServer::spawn(dir.path(), &[]);
    let url = server.url("b");
    let mut writer = Client::connect(&url).await;
    let mut observer = Client::connect(&url).await;
    for i in 0..30 {
        writer
            .write(|txn| add_card(txn, &format!("c{i}"), &format!("card {i:02}")))
            .await;
    }
    // Whatever the observer received had been broadcast, hence stored.
    observer.wait_for_card("card 29").await;
    let seen = card_titles(&observer.doc);
    server.kill_9();

    let server = ProcessServer::spawn(dir.path(), &[]);
    let after = Client::connect(&server.url("b")).await;
    assert_eq!(card_titles(&after.doc), seen);
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1012_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = ProcessServer::spawn(dir.path(), &[]);
    let mut client = Client::connect(&server.url("b")).await;
    client.write(|txn| add_card(txn, "c", "kept")).await;
    let mut observer = Client::connect(&server.url("b")).await;
    observer.wait_for_card("kept").await;
    let exiting = std::thread::spawn(move || server.terminate());
    let (code, reason) = client.expect_close().await;
    assert_eq!(code, 1012, "{reason}");
    assert!(exiting.join().unwrap().success());

    let server = ProcessServer::spawn(dir.path(), &[]);
    let after = Client::connect(&server.url("b")).await;
    assert_eq!(after.card_titles(), ["kept"]);
}

/// One bad input: the offender is closed with `code`, a bystander keeps syncing with a third
/// client, and the stored board is unchanged.
async fn assert_refused(server: &TestServer, board: &str, bad: Message, code: u16) {
    let url = server.url(board);
    let mut bystander = Client::connect(&url).await;
    bystander
        .write(|txn| add_card(txn, "before", "before"))
        .await;
    let mut witness = Client::connect(&url).await;
    witness.wait_for_card("before").await;
    witness.wait_for_upkeep("before").await;
    let stored_before = doc_state(&witness.doc);

    let mut offender = Client::connect(&url).await;
    offender.ws.send(bad).await.unwrap();
    let (got, reason) = offender.expect_close().await;
    assert_eq!(got, code, "close reason: {reason}");
    assert!(!reason.is_empty(), "a refusal says why");

    // Nothing stored changed: a fresh client sees exactly what the witness saw.
    let fresh = Client::connect(&url).await;
    assert_eq!(doc_state(&fresh.doc), stored_before);
    // Everyone else carries on.
    bystander.write(|txn| add_card(txn, "after", "after")).await;
    witness.wait_for_card("after").await;
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |c| c.max_frame_bytes = 64 * 1024).await;
    let update = {
        let doc = yrs::Doc::new();
        let mut txn = yrs::Transact::transact_mut(&doc);
        add_card(&mut txn, "x", "never stored");
        txn.encode_update_v1()
    };
    let truncated = wire::client::encode_update(&update).slice(..update.len() / 2);
    let mut undecodable = vec![wire::MSG_SYNC, wire::MSG_SYNC_UPDATE, 8];
    undecodable.extend_from_slice(&[1, 200, 200, 200, 200, 200, 200, 7]);
    // Two messages in a frame are read in order, but a malformed second one refuses the frame.
    let mut bad_second = wire::client::encode_query_awareness().to_vec();
    bad_second.extend_from_slice(&truncated);
    let too_many = vec![wire::MSG_QUERY_AWARENESS; wire::MAX_MESSAGES_PER_FRAME + 1];
    let mut oversize = wire::client::encode_update(&vec![0u8; 100 * 1024]).to_vec();
    oversize.truncate(80 * 1024);

    // An update that builds on a change the server never got is not bad input: it is held
    // until that change arrives (room/state.rs tests, issue 17 item 4).
    let cases: Vec<(&str, Message, u16)> = vec![
        ("truncated", Message::Binary(truncated), 1007),
        (
            "undecodable-update",
            Message::Binary(Bytes::from(undecodable)),
            1007,
        ),
        (
            "malformed-second-message",
            Message::Binary(Bytes::from(bad_second)),
            1007,
        ),
        (
            "too-many-messages",
            Message::Binary(Bytes::from(too_many)),
            1007,
        ),
        ("empty", Message::Binary(Bytes::new()), 1007),
        (
            "unknown-type",
            Message::Binary(Bytes::from_static(&[42, 0])),
            4400,
        ),
        (
            "auth-from-client",
            Message::Binary(Bytes::from_static(&[2, 0, 0])),
            4400,
        ),
        ("text", Message::text("hello"), 1003),
        ("oversize", Message::Binary(Bytes::from(oversize)), 4414),
    ];
    for (board, bad, code) in cases {
        assert_refused(&server, board, bad, code).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_board_id_is_refused_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = Client::connect_raw(&server.url(&"x".repeat(65))).await;
    let (code, reason) = client.expect_close().await;
    assert_eq!(code, 4400);
    assert!(reason.contains("board id"), "{reason}");
    let mut client = Client::connect_raw(&server.url("a.b")).await;
    assert_eq!(client.expect_close().await.0, 4400);
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_connections_rooms_updates_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut a = Client::connect(&server.url("b")).await;
    a.write(|txn| add_card(txn, "c", "counted")).await;
    let mut b = Client::connect(&server.url("b")).await;
    b.wait_for_card("counted").await;
    b.wait_for_upkeep("c").await;
    let mut bad = Client::connect(&server.url("b")).await;
    bad.ws.send(Message::text("no")).await.unwrap();
    assert_eq!(bad.expect_close().await.0, 1003);
    let (status, text) = support::http(server.addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    // The card and the server's counter and avatar for it.
    for line in [
        "funnel_rooms 1",
        "funnel_updates_stored_total 2",
        "funnel_closes_total{code=\"1003\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    let connections: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("funnel_connections "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=3).contains(&connections), "{connections} connections");
    // Every batch's wait for storage is in the histogram (one instance: one append a batch).
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .parse()
            .unwrap()
    };
    let batches = value("funnel_store_batches_total");
    assert!(batches >= 1.0, "{batches} batches");
    assert_eq!(value("funnel_store_seconds_count"), batches);
    assert!(value("funnel_store_seconds_sum") > 0.0);
    server.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
        let (status, response) = support::http(server.addr, "GET", path, None).await;
        assert_eq!(status, 200, "{path}: {response}");
        assert!(response.ends_with(body), "{path}: {response}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_silent_peer_is_dropped_and_a_live_one_is_kept() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    // 250 ms pings: a peer is gone after 750 ms of silence. (At 100 ms, a live client on a
    // loaded machine could stall past the 300 ms limit and be dropped too.)
    let server = TestServer::start_with(dir.path(), |c| {
        c.ping_interval = std::time::Duration::from_millis(250)
    })
    .await;
    let url = server.url("b");
    // A raw socket that completes the upgrade and then never sends a byte, not even a pong
    // (a WebSocket library would answer pings while reading).
    let silent = tokio::spawn(raw_silent_peer(server.addr, "/ws/boards/b"));
    let mut live = Client::connect(&url).await;
    // The live client keeps reading, and so answering pings, for well over three intervals.
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(2000);
    while let Ok(frame) = tokio::time::timeout_at(until, live.ws.next()).await {
        assert!(
            matches!(frame, Some(Ok(Message::Ping(_)))),
            "the live client only hears pings, got {frame:?}"
        );
    }
    assert_eq!(silent.await.unwrap(), 1001);
    live.write(|txn| add_card(txn, "c", "still here")).await;
    let mut other = Client::connect(&url).await;
    other.wait_for_card("still here").await;
    server.stop().await;
}

/// Upgrades, then only reads until the server ends the connection; returns the close code the
/// server sent.
async fn raw_silent_peer(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};
    let mut peer = RawPeer::upgrade(addr, path, &[]).await;
    assert!(
        !peer.read_until(&|_| false).await,
        "the server drops a silent peer"
    );
    assert!(peer.bytes.starts_with(b"HTTP/1.1 101"));
    let (_, payload) = peer
        .frames
        .iter()
        .find(|(opcode, _)| *opcode == OpCode::Control(Control::Close))
        .expect("the connection ended without a close frame");
    u16::from_be_bytes([payload[0], payload[1]])
}

/// What the server's writer sends besides the room's frames: the answers to the client's own
/// control frames (made by the socket's reader and written in order with everything else), one
/// close frame and nothing after it; and a plain GET of a socket URL is refused, not upgraded.
#[tokio::test]
async fn pings_are_answered_and_a_client_close_gets_one_close_back() {
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, body) = support::http(server.addr, "GET", "/ws/boards/b", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("upgrade"), "{body}");

    // A client's frames are masked (RFC 6455, 5.3); tungstenite masks what it formats.
    let masked = |mut frame: Frame| {
        frame.header_mut().mask = Some([7, 1, 9, 3]);
        let mut bytes = Vec::new();
        frame.format(&mut bytes).unwrap();
        bytes
    };
    let mut pings = masked(Frame::ping(Bytes::from_static(b"are you there")));
    pings.extend(masked(Frame::ping(Bytes::from_static(b"still?"))));
    // Sent with the upgrade request itself: what hyper read past the request reaches the reader.
    let mut peer = RawPeer::upgrade(server.addr, "/ws/boards/b", &pings).await;
    let pong = |frames: &[RawFrame]| {
        frames.iter().any(|(opcode, payload)| {
            *opcode == OpCode::Control(Control::Pong) && payload == b"still?"
        })
    };
    assert!(peer.read_until(&pong).await, "the latest ping is answered");
    let head = String::from_utf8_lossy(&peer.bytes[..peer.head_end.unwrap()]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // The accept key of RFC 6455's own example.
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let close = masked(Frame::close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })));
    peer.stream.write_all(&close).await.unwrap();
    assert!(
        !peer.read_until(&|_| false).await,
        "the server ends the connection"
    );
    assert_eq!(peer.parsed, peer.bytes.len(), "only whole frames");
    let frames = peer.frames;
    let closes: Vec<_> = frames
        .iter()
        .enumerate()
        .filter(|(_, (opcode, _))| *opcode == OpCode::Control(Control::Close))
        .collect();
    assert_eq!(closes.len(), 1, "one close frame: {frames:?}");
    let (at, (_, payload)) = closes[0];
    assert_eq!(
        at,
        frames.len() - 1,
        "nothing follows the close: {frames:?}"
    );
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1000);
    server.stop().await;
}

/// A frame as the server sent it: its opcode and payload.
type RawFrame = (
    tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode,
    Vec<u8>,
);

/// A hand-made WebSocket client's view of what the server sent: the response head, then the
/// server's frames, parsed as they come.
struct RawPeer {
    stream: tokio::net::TcpStream,
    bytes: Vec<u8>,
    head_end: Option<usize>,
    /// How far `bytes` is parsed into `frames`.
    parsed: usize,
    frames: Vec<RawFrame>,
}

type FramesDone<'a> = &'a (dyn Fn(&[RawFrame]) -> bool + Sync);

impl RawPeer {
    /// Connects and sends an upgrade request for `path` (its `Connection` header a list), with
    /// `then` right behind it.
    async fn upgrade(addr: std::net::SocketAddr, path: &str, then: &[u8]) -> Self {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut sent = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .into_bytes();
        sent.extend_from_slice(then);
        stream.write_all(&sent).await.unwrap();
        Self {
            stream,
            bytes: Vec::new(),
            head_end: None,
            parsed: 0,
            frames: Vec::new(),
        }
    }

    /// Reads until `done` holds of the frames so far (true) or the server ends the connection
    /// (false), for at most [`support::WAIT`].
    async fn read_until(&mut self, done: FramesDone<'_>) -> bool {
        use tokio::io::AsyncReadExt;
        use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
        let deadline = tokio::time::Instant::now() + support::WAIT;
        loop {
            if self.head_end.is_none() {
                self.head_end = self
                    .bytes
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|at| at + 4);
                self.parsed = self.head_end.unwrap_or(0);
            }
            if self.head_end.is_some() {
                loop {
                    let mut cursor = std::io::Cursor::new(&self.bytes[self.parsed..]);
                    let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() else {
                        break;
                    };
                    let start = self.parsed + usize::try_from(cursor.position()).unwrap();
                    let end = start + usize::try_from(len).unwrap();
                    if end > self.bytes.len() {
                        break;
                    }
                    assert!(header.mask.is_none(), "a server's frames are not masked");
                    self.frames
                        .push((header.opcode, self.bytes[start..end].to_vec()));
                    self.parsed = end;
                }
                if done(&self.frames) {
                    return true;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("the server answers, or ends the connection, in time")
                .unwrap();
            if n == 0 {
                return false;
            }
            self.bytes.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A client that sends a burst of updates and resets its socket at once (a killed tab, a script
/// that writes and exits): the server's first write to it fails while most of the burst still
/// waits unread in the socket. Every update it sent is read, stored and relayed all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_sent_just_before_a_reset_are_all_stored() {
    const CARDS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |c| {
        c.message_rate = 10_000;
        c.message_burst = 10_000;
    })
    .await;
    let url = server.url("reset");
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // A zero linger: closing sends a reset instead of a FIN.
    tcp.set_zero_linger().unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .unwrap();
    let doc = yrs::Doc::new();
    ws.feed(Message::Binary(wire::client::encode_sync_step1(
        &yrs::StateVector::default(),
    )))
    .await
    .unwrap();
    for i in 0..CARDS {
        let update = {
            let mut txn = yrs::Transact::transact_mut(&doc);
            add_card(&mut txn, &format!("r{i}"), &format!("burst {i}"));
            txn.encode_update_v1()
        };
        ws.feed(Message::Binary(wire::client::encode_update(&update)))
            .await
            .unwrap();
    }
    ws.flush().await.unwrap();
    drop(ws);

    let mut reader = Client::connect(&url).await;
    reader.wait_for_card(&format!("burst {}", CARDS - 1)).await;
    let burst = reader
        .card_titles()
        .into_iter()
        .filter(|t| t.starts_with("burst "))
        .count();
    assert_eq!(burst, CARDS);
    server.stop().await;
}
