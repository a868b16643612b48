//! Presence and closes through the real server (issue 22): what a client that keeps sending
//! sees when it is closed, and presence that does not parse or is not the sender's.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use bytes::Bytes;
use funnel_protocol::wire;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use support::{Client, TestServer, WAIT};
use tokio_tungstenite::tungstenite::Message;

async fn start() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.max_frame_bytes = 64 * 1024;
        config.message_rate = 20;
        config.message_burst = 20;
    })
    .await;
    (server, dir)
}

fn awareness(client: u64, clock: u32, json: &str) -> Bytes {
    wire::client::encode_awareness_state(client, clock, json)
}

/// Sends `first` and many small frames without reading, as a busy client does (a
/// Node client's event loop reads nothing while it sends), waits, then reads: the close must
/// be there to read, not lost to a reset that the server's unread input caused.
async fn close_seen_while_sending(url: &str, first: Bytes) -> (u16, String) {
    let mut client = Client::connect_raw(url).await;
    let small = wire::client::encode_query_awareness();
    let mut frames = std::iter::once(first).chain(std::iter::repeat_n(small, 50_000));
    for frame in frames.by_ref() {
        if client.ws.feed(Message::Binary(frame)).await.is_err() {
            break;
        }
    }
    let _ = client.ws.flush().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::time::timeout(WAIT, async {
        loop {
            match client.ws.next().await {
                Some(Ok(Message::Close(Some(close)))) => {
                    return (u16::from(close.code), close.reason.to_string());
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close in time")
}

/// Issue 22: 4429 and 1009 (now 4414) reached a client that was still sending as 1006 (a reset), so
/// stock clients reconnected instead of stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_reads_its_close_frame() {
    let (server, _dir) = start().await;
    let url = server.url("closes");
    let _owner = Client::connect(&url).await; // creates the board

    let step1 = wire::client::encode_sync_step1(&yrs::StateVector::default());
    let (code, reason) = close_seen_while_sending(&url, step1).await;
    assert_eq!(code, 4429, "{reason}");

    let oversize = Bytes::from(vec![0u8; 65 * 1024]);
    let (code, reason) = close_seen_while_sending(&url, oversize).await;
    assert_eq!(code, 4414, "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_that_does_not_parse_or_is_not_the_senders_never_reaches_others() {
    let (server, _dir) = start().await;
    let url = server.url("presence");
    let mut ann = Client::connect(&url).await;
    let mut observer = Client::connect(&url).await;
    let state = r##"{"user":{"id":"ann","name":"Ann","color":"#123456"},"dragging":null}"##;
    ann.send(awareness(11, 1, state)).await;
    observer
        .pump_until("Ann's presence", |c, _| c.awareness.contains_key(&11))
        .await;

    // Bad JSON: refused with 4400 and a reason; nobody hears of it.
    let mut bad = Client::connect(&url).await;
    bad.send(awareness(12, 1, "{\"user\": nope")).await;
    let (code, reason) = bad.expect_close().await;
    assert_eq!(code, 4400, "{reason}");
    assert!(reason.contains("awareness state of client 12"), "{reason}");

    // Another connection's client id: dropped, its own goes through.
    let mut eve = Client::connect(&url).await;
    eve.send(awareness(11, 9, "null")).await;
    eve.send(awareness(13, 1, "{}")).await;
    observer
        .pump_until("Eve's presence", |c, _| c.awareness.contains_key(&13))
        .await;
    assert!(!observer.awareness.contains_key(&12));
    assert_eq!(
        observer.awareness[&11], state,
        "Ann's presence is untouched"
    );
}
