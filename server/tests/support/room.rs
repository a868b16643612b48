//! Test support for tests that drive rooms directly (no sockets): joining a room as a
//! connection, sending it a client frame, reading what it sends back. Every wait is bounded.
//! Included with `#[path = "support/room.rs"] mod room_support;` (it needs nothing else of
//! `support`).

#![allow(dead_code)] // each test file uses a different part of this module

use funnel_protocol::BoardId;
use funnel_protocol::wire::{self, ServerMessage};
use funnel_server::outbox::{Next, OutboxLimits, OutboxReceiver, outbox};
use funnel_server::room::{ConnId, RoomCommand};
use funnel_server::rooms::Rooms;
use std::time::Duration;
use tokio::sync::mpsc;

/// A test connection's outbox.
const LIMITS: OutboxLimits = OutboxLimits {
    max_frames: 64,
    max_bytes: 1 << 20,
};

/// The longest a test waits for a room's next frame.
const WAIT: Duration = Duration::from_secs(10);

/// Joins `board` as connection `conn` (the local admin); returns the room and what it sends.
pub async fn join(
    rooms: &Rooms,
    board: &BoardId,
    conn: u64,
) -> (mpsc::Sender<RoomCommand>, OutboxReceiver) {
    let (tx, rx) = outbox(LIMITS);
    let room = rooms.get_or_spawn(board);
    room.send(RoomCommand::Join {
        conn: ConnId(conn),
        outbox: tx,
        principal: Box::new(funnel_server::auth::Principal::local_admin()),
    })
    .await
    .unwrap();
    (room, rx)
}

/// Every message of a client frame, in order, as connection `conn`'s.
pub async fn send(room: &mpsc::Sender<RoomCommand>, conn: u64, frame: bytes::Bytes) {
    for message in wire::decode_client_frame(&frame).unwrap() {
        room.send(RoomCommand::Message {
            conn: ConnId(conn),
            message: Box::new(message),
        })
        .await
        .unwrap();
    }
}

/// The next frame the room sends, decoded.
pub async fn next_message(rx: &mut OutboxReceiver) -> ServerMessage {
    match tokio::time::timeout(WAIT, rx.next()).await {
        Ok(Next::Frame(frame)) => wire::decode_server_frame(&frame).unwrap(),
        other => panic!("expected a frame, got {other:?}"),
    }
}
