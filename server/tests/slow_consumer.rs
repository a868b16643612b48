//! A client that never reads must not make the server hold its traffic: it is closed with 1013
//! and the server's memory stays bounded.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use support::{Client, ProcessServer, WAIT};
use tokio_tungstenite::tungstenite::Message;
use yrs::ClientID;
use yrs::sync::AwarenessUpdate;
use yrs::sync::awareness::AwarenessUpdateEntry;

/// Each awareness frame sent: as many states as a connection may hold, each near the largest
/// state, about 16 KB.
const CLIENTS: u64 = funnel_server::room::state::MAX_AWARENESS_CLIENTS as u64;
const PAD_BYTES: usize = funnel_protocol::presence::MAX_STATE_BYTES - 32;
const STATE_BYTES: usize = CLIENTS as usize * PAD_BYTES;
/// How many: 6,400 × 16 KB = 100 MB relayed to a client that reads none of it.
const STATES: u32 = 6400;

fn awareness_frame(clock: u32) -> Bytes {
    let json = format!(r#"{{"pad":"{}","n":{clock}}}"#, "x".repeat(PAD_BYTES));
    let mut clients = HashMap::new();
    for client in 0..CLIENTS {
        clients.insert(
            ClientID::new(77 + client),
            AwarenessUpdateEntry {
                clock,
                json: json.as_str().into(),
            },
        );
    }
    funnel_protocol::wire::client::encode_awareness(&AwarenessUpdate { clients })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // The flooder sends far over the default message rate: lift it, this test is about the
    // reader that never reads.
    let server = ProcessServer::spawn(
        dir.path(),
        &[
            "--outbox-bytes",
            "1048576",
            "--message-rate",
            "1000000",
            "--message-burst",
            "1000000",
        ],
    );
    let url = server.url("b");
    let mut slow = Client::connect(&url).await; // from now on, it reads nothing
    let flooder = Client::connect(&url).await;
    let baseline_kib = server.memory_kib("VmRSS");

    // The flooder is a well-behaved client: it keeps at most WINDOW states in flight and reads
    // its own echoes, so only the slow client's queue can fill. Once the last echo is back, the
    // server has relayed everything.
    const WINDOW: u32 = 8;
    let (mut sink, mut stream) = flooder.ws.split();
    let (mut sent, mut echoed) = (0u32, 0u32);
    while echoed < STATES {
        if sent < STATES && sent - echoed < WINDOW {
            sent += 1;
            sink.send(Message::Binary(awareness_frame(sent)))
                .await
                .unwrap();
            continue;
        }
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Ok(Message::Binary(frame)))) if frame.len() > STATE_BYTES => echoed += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("flooder lost its connection after {echoed} echoes: {other:?}"),
        }
    }

    let peak_kib = server.memory_kib("VmHWM");
    let relayed_kib = u64::from(STATES) * STATE_BYTES as u64 / 1024;
    assert!(
        peak_kib < baseline_kib + relayed_kib / 2,
        "peak RSS {peak_kib} KiB from a baseline of {baseline_kib} KiB while {relayed_kib} KiB \
         went to a client that never read"
    );

    // The slow client reads at last: after what fitted in its socket, the close.
    let (code, reason) = slow.expect_close().await;
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("slow consumer"), "{reason}");
}
