//! Clients other than stock Yjs through the real server (issue 17): a yrs client, which packs
//! several messages in one frame, syncs and hears others; a client that sends back every update
//! it receives (pycrdt, ypy) is not charged for those echoes.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use funnel_protocol::wire::{self, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use support::{Client, TestServer, WAIT};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::Awareness;
use yrs::sync::protocol::{DefaultProtocol, Message, Protocol, SyncMessage};
use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
use yrs::{Doc, Transact};

/// A client written as a yrs application writes one: `DefaultProtocol` over a WebSocket, every
/// frame it receives handled with `Protocol::handle` and its answers sent back in one frame.
struct YrsClient {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    awareness: Awareness,
}

impl YrsClient {
    async fn connect(url: &str, state: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut awareness = Awareness::new(Doc::new());
        awareness.set_local_state_raw(state);
        let mut client = Self { ws, awareness };
        // Sync step 1 and the client's awareness, in one frame.
        let mut encoder = EncoderV1::new();
        DefaultProtocol
            .start(&client.awareness, &mut encoder)
            .unwrap();
        client.send(encoder.to_vec()).await;
        client
    }

    async fn send(&mut self, frame: Vec<u8>) {
        self.ws.send(WsMessage::Binary(frame.into())).await.unwrap();
    }

    fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    /// Handles frames until `done` holds, or panics after [`WAIT`].
    async fn pump_until(&mut self, what: &str, done: impl Fn(&Doc) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self.doc()) {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("connection ended while waiting for {what}"))
                .unwrap();
            let WsMessage::Binary(frame) = frame else {
                assert!(!matches!(frame, WsMessage::Close(_)), "closed: {frame:?}");
                continue;
            };
            let answers = DefaultProtocol.handle(&mut self.awareness, &frame).unwrap();
            if !answers.is_empty() {
                let mut encoder = EncoderV1::new();
                for answer in answers {
                    answer.encode(&mut encoder);
                }
                self.send(encoder.to_vec()).await;
            }
        }
    }

    async fn add_card(&mut self, id: &str, title: &str) {
        let update = {
            let mut txn = self.doc().transact_mut();
            support::add_card(&mut txn, id, title);
            txn.encode_update_v1()
        };
        let mut encoder = EncoderV1::new();
        Message::Sync(SyncMessage::Update(update)).encode(&mut encoder);
        self.send(encoder.to_vec()).await;
    }
}

fn has_card(doc: &Doc, title: &str) -> bool {
    support::card_titles(doc).iter().any(|t| t == title)
}

/// yrs' `DefaultProtocol::start` sends its step 1 and its awareness in one frame: the server
/// handles both (it used to close such a frame with 1007), answers with the board, and relays
/// the presence; the yrs client then hears another client's update and is heard by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yrs_client_syncs_a_board_and_hears_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = server.url("yrs-client");
    let mut ann = Client::connect(&url).await;
    ann.write(|txn| support::add_card(txn, "c1", "Before"))
        .await;

    let state = r##"{"user":{"id":"yrs","name":"Yrs","color":"#123456"},"dragging":null}"##;
    let mut yrs_client = YrsClient::connect(&url, state).await;
    // The board comes in causally ordered pieces: Ann's card may arrive before the stages
    // the server wrote when it created the board, so wait for both.
    yrs_client
        .pump_until("the board", |doc| {
            has_card(doc, "Before") && !support::stage_names(doc).is_empty()
        })
        .await;

    let id = yrs_client.doc().client_id().get();
    ann.pump_until("the yrs client's presence", |c, _| {
        c.awareness.get(&id).is_some_and(|json| json == state)
    })
    .await;

    ann.write(|txn| support::add_card(txn, "c2", "From Ann"))
        .await;
    yrs_client
        .pump_until("Ann's card", |doc| has_card(doc, "From Ann"))
        .await;

    yrs_client.add_card("c3", "From yrs").await;
    ann.wait_for_card("From yrs").await;
    server.stop().await;
}

/// A rate of 20 messages a second, a burst of 20.
async fn start_slow() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |config| {
        config.message_rate = 20;
        config.message_burst = 20;
    })
    .await;
    (server, dir)
}

/// Reads for `quiet` after the last frame, sending back every update it receives as pycrdt does;
/// returns how many it echoed. Panics on a close.
async fn echo_for(client: &mut Client, quiet: Duration) -> usize {
    let mut echoed = 0;
    while let Ok(frame) = tokio::time::timeout(quiet, client.ws.next()).await {
        let frame = frame.expect("the connection stays open").unwrap();
        let WsMessage::Binary(bytes) = frame else {
            assert!(!matches!(frame, WsMessage::Close(_)), "closed: {frame:?}");
            continue;
        };
        if let ServerMessage::SyncStep2(update) | ServerMessage::Update(update) =
            wire::decode_server_frame(&bytes).unwrap()
        {
            let decoded = wire::decode_update_v1(&update).unwrap();
            client.doc.transact_mut().apply_update(decoded).unwrap();
            client.send(wire::client::encode_update(&update)).await;
            echoed += 1;
        }
    }
    echoed
}

/// An echoing client hears 60 updates (three times its burst) in a few hundred milliseconds
/// and sends each back: the room finds nothing new in them and refunds their budget, so it
/// stays connected and can still write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_of_received_updates_cost_no_message_budget() {
    let (server, _dir) = start_slow().await;
    let url = server.url("echoes");
    let mut echo = Client::connect(&url).await;
    // Writers, each under its own burst, together well over the echo client's.
    for w in 0..4 {
        let mut writer = Client::connect(&url).await;
        for i in 0..15 {
            let (id, title) = (format!("w{w}-{i}"), format!("card {w}-{i}"));
            writer
                .write(|txn| support::add_card(txn, &id, &title))
                .await;
        }
        writer.wait_for_card(&format!("card {w}-14")).await;
    }
    let echoed = echo_for(&mut echo, Duration::from_millis(500)).await;
    assert!(echoed >= 60, "echoed {echoed}");
    assert_eq!(echo.card_titles().len(), 60);
    // Still connected, and its own new writes still go through.
    echo.write(|txn| support::add_card(txn, "mine", "From the echo client"))
        .await;
    let mut reader = Client::connect(&url).await;
    reader.wait_for_card("From the echo client").await;
    server.stop().await;
}

/// New updates over the rate still close with 4429, and so does replaying an update the client
/// was never sent (a refund is owed only for updates the server sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_updates_or_replays_over_the_rate_still_close_4429() {
    let (server, _dir) = start_slow().await;
    let url = server.url("over-rate");
    let mut writer = Client::connect(&url).await;
    for i in 0..40 {
        let (id, title) = (format!("c{i}"), format!("card {i}"));
        writer
            .write(|txn| support::add_card(txn, &id, &title))
            .await;
    }
    let (code, reason) = writer.expect_close().await;
    assert_eq!(code, 4429, "{reason}");

    let mut replayer = Client::connect(&url).await;
    let update = replayer
        .write(|txn| support::add_card(txn, "r", "replayed"))
        .await;
    for _ in 0..40 {
        replayer.send(wire::client::encode_update(&update)).await;
    }
    let (code, reason) = replayer.expect_close().await;
    assert_eq!(code, 4429, "{reason}");
    server.stop().await;
}
