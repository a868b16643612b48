//! Clients other than stock Yjs through the real server (issue 17): a yrs client, which packs
//! several messages in one frame, syncs and hears others.

#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod support;

use futures_util::{SinkExt, StreamExt};
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
    yrs_client
        .pump_until("the board", |doc| has_card(doc, "Before"))
        .await;
    assert!(!support::stage_names(yrs_client.doc()).is_empty());

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
