//! The wire: the y-websocket protocol, unchanged, so that stock Yjs clients and the `y-websocket`
//! provider connect as they are.
//!
//! The server sends exactly one message per binary frame (y-websocket 3.x reads only the first
//! message of a frame, so the server never packs two). A client's frame may hold several, read
//! in order (yrs' `DefaultProtocol::start` sends its sync step 1 and its awareness in one frame),
//! at most [`MAX_MESSAGES_PER_FRAME`]. A message is a varint type followed by its payload:
//!
//! | type | name            | payload                                                       |
//! |------|-----------------|---------------------------------------------------------------|
//! | 0    | sync            | varint sub-type: 0 step 1 (state vector), 1 step 2 (update), 2 update |
//! | 1    | awareness       | var-buffer holding an awareness update                         |
//! | 2    | auth            | server to client only: permission denied + reason             |
//! | 3    | query-awareness | nothing                                                       |
//! | 100  | funnel          | var-buffer: varint kind, then the kind's fields (below)         |
//!
//! Types 100 and above are reserved for funnel's own extensions. Type 100 wraps its payload in
//! one var-buffer, the way yrs' `Message::Custom` reads an unknown type, so yrs clients skip it
//! whole. Its kinds:
//!
//! | kind | name      | direction | fields                                                    |
//! |------|-----------|-----------|-----------------------------------------------------------|
//! | 0    | notices   | client → server | none: "send me funnel's notices on this connection" (browsers put `?notices=1` on the URL instead, which an older server ignores rather than refuses) |
//! | 1    | recovered | server → client | var-buffer: a state vector (the board's clocks before the client's step 2, for each author it brought changes of that the board lacked); varint n, then n var-strings (what the role may not write that was taken back, [`TakenBack`]) |
//!
//! A stock y-websocket client logs a console error for a type it does not know, so the server
//! sends notices only to a connection that asked for them. Any other type, or kind, from a
//! client is refused as unknown.
//!
//! Incoming frames are decoded into a sequence of [`ClientMessage`], one closed enum; the server's frames are
//! built by the `encode_*` functions, once per message, and the same bytes go to every recipient.

use crate::presence;
use bytes::Bytes;
use yrs::encoding::read::{Cursor, Read};
use yrs::encoding::write::Write;
use yrs::sync::AwarenessUpdate;
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
use yrs::{StateVector, Update};

pub const MSG_SYNC: u8 = 0;
pub const MSG_AWARENESS: u8 = 1;
pub const MSG_AUTH: u8 = 2;
pub const MSG_QUERY_AWARENESS: u8 = 3;
pub const MSG_SYNC_STEP_1: u8 = 0;
pub const MSG_SYNC_STEP_2: u8 = 1;
pub const MSG_SYNC_UPDATE: u8 = 2;
/// funnel's own extension messages (kinds below).
pub const MSG_FUNNEL: u8 = 100;
/// Client → server: send me funnel's notices.
pub const FUNNEL_NOTICES: u8 = 0;
/// Server → client: your step 2 brought the board changes it lacked (see [`Recovered`]).
pub const FUNNEL_RECOVERED: u8 = 1;

/// The most messages one client frame may hold. yrs and y-sync clients pack at most their start
/// (a step 1 and their awareness) and an answer queued with it; stock Yjs clients send one. Each
/// message costs one unit of the connection's message budget, but the budget is checked once
/// the frame is decoded: without this bound one frame of one-byte query-awareness messages
/// would be decoded into a million messages before the budget could refuse it.
pub const MAX_MESSAGES_PER_FRAME: usize = 16;

/// A message a client sends, decoded and validated.
#[derive(Debug)]
pub enum ClientMessage {
    /// "Here is what I have; send me what I lack."
    SyncStep1(StateVector),
    /// The answer to the server's step 1: what the server lacks.
    SyncStep2(IncomingUpdate),
    /// A change the client just made.
    Update(IncomingUpdate),
    /// The client's presence (who, what it drags or views), to relay to everyone on the board.
    Awareness(IncomingAwareness),
    /// "Send me everyone's presence."
    QueryAwareness,
    /// "Send me funnel's notices" (a [`Recovered`] after a step 2 that brought the board
    /// changes it lacked). The web client asks with `?notices=1` on its URL instead, which the
    /// server turns into this message before any frame of the connection.
    WantsNotices,
}

/// What the server tells a client that asked for notices after its step 2 brought the board
/// changes it lacked: the board's clocks before, for each author of those changes. A client
/// that had received from the server changes beyond those clocks (everything the server sends
/// was stored first) learns that the server lost part of its history (a restore from a backup,
/// a wipe, a lost tail) and that its copy brought it back; a client that only brought its own
/// offline edits finds nothing it had received. `taken_back` says what of it the client's role
/// may not write and the server took back.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    pub held: StateVector,
    pub taken_back: Vec<TakenBack>,
}

/// A part of the board a client's update wrote that its role may not, and that the server took
/// back (the names the web client turns into words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TakenBack {
    /// The board's settings (name, entity, currency, threshold).
    Settings,
    Stages,
    Fields,
    Forms,
    /// Other people's display forms.
    Views,
    /// Cards and activities (what a viewer's copy held).
    Cards,
    /// The values the server computes (counters, avatars): recomputed, never taken from a client.
    ServerFields,
}

impl TakenBack {
    pub fn as_str(self) -> &'static str {
        match self {
            TakenBack::Settings => "settings",
            TakenBack::Stages => "stages",
            TakenBack::Fields => "fields",
            TakenBack::Forms => "forms",
            TakenBack::Views => "views",
            TakenBack::Cards => "cards",
            TakenBack::ServerFields => "serverFields",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            TakenBack::Settings,
            TakenBack::Stages,
            TakenBack::Fields,
            TakenBack::Forms,
            TakenBack::Views,
            TakenBack::Cards,
            TakenBack::ServerFields,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// A document update as received: decoded (so it is known to be well formed) and as raw bytes
/// (so that it is stored and relayed exactly as it came, without re-encoding).
#[derive(Debug)]
pub struct IncomingUpdate {
    pub update: Update,
    /// The lib0 v1 encoded update, a slice of the frame it came in.
    pub raw: Bytes,
}

/// An awareness update as received: decoded, every state checked (`null`, or an object of the
/// schema's shape, see [`presence`]), and the whole frame for relaying as it is.
#[derive(Debug)]
pub struct IncomingAwareness {
    pub update: AwarenessUpdate,
    pub frame: Bytes,
}

/// Why a frame is not a valid client message. Each maps to one close code.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty frame")]
    Empty,
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        #[source]
        source: yrs::encoding::read::Error,
    },
    #[error("unknown message type {0}")]
    UnknownType(u64),
    #[error("unknown sync message type {0}")]
    UnknownSyncType(u64),
    #[error("unknown funnel message kind {0}")]
    UnknownFunnelKind(u64),
    #[error("auth messages go from the server to clients only")]
    AuthFromClient,
    #[error("{0} bytes follow the document update")]
    TrailingBytes(usize),
    #[error("more than {MAX_MESSAGES_PER_FRAME} messages in one frame")]
    TooManyMessages,
    /// An awareness state that stock clients would choke on or that breaks the schema's shape
    /// (see `presence`): the client sends the same again on reconnect, so it should stop.
    #[error(transparent)]
    Presence(#[from] presence::StateError),
    #[error("malformed {what}: it counts {count} entries in {bytes} bytes")]
    CountTooLarge {
        what: &'static str,
        count: u64,
        bytes: usize,
    },
}

impl DecodeError {
    pub fn close_code(&self) -> CloseCode {
        match self {
            // A type we do not speak: retrying will not help, so the client should stop.
            DecodeError::UnknownType(_)
            | DecodeError::UnknownSyncType(_)
            | DecodeError::UnknownFunnelKind(_)
            | DecodeError::AuthFromClient
            | DecodeError::Presence(_) => CloseCode::BadRequest,
            DecodeError::Empty
            | DecodeError::Malformed { .. }
            | DecodeError::TrailingBytes(_)
            | DecodeError::TooManyMessages
            | DecodeError::CountTooLarge { .. } => CloseCode::InvalidPayload,
        }
    }
}

fn malformed(what: &'static str) -> impl FnOnce(yrs::encoding::read::Error) -> DecodeError {
    move |source| DecodeError::Malformed { what, source }
}

/// Decodes one binary frame into its client messages, in order. The frame is refused whole if
/// any message in it is malformed, so nothing of a bad frame reaches the room.
pub fn decode_client_frame(frame: &Bytes) -> Result<Vec<ClientMessage>, DecodeError> {
    if frame.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut cursor = Cursor::new(frame);
    let mut messages = Vec::with_capacity(1);
    while cursor.next < frame.len() {
        if messages.len() == MAX_MESSAGES_PER_FRAME {
            return Err(DecodeError::TooManyMessages);
        }
        messages.push(decode_message(frame, &mut cursor)?);
    }
    Ok(messages)
}

/// Decodes the message at the cursor, leaving the cursor after it.
fn decode_message(frame: &Bytes, cursor: &mut Cursor<'_>) -> Result<ClientMessage, DecodeError> {
    let start = cursor.next;
    let message_type: u64 = cursor.read_var().map_err(malformed("message type"))?;
    let message = match message_type {
        t if t == u64::from(MSG_SYNC) => {
            let sync_type: u64 = cursor.read_var().map_err(malformed("sync message type"))?;
            match sync_type {
                t if t == u64::from(MSG_SYNC_STEP_1) => {
                    let buf = cursor.read_buf().map_err(malformed("sync step 1"))?;
                    check_count("state vector", buf)?;
                    let sv = StateVector::decode_v1(buf).map_err(malformed("state vector"))?;
                    ClientMessage::SyncStep1(sv)
                }
                t if t == u64::from(MSG_SYNC_STEP_2) => {
                    let buf = cursor.read_buf().map_err(malformed("sync step 2"))?;
                    ClientMessage::SyncStep2(decode_update(frame, buf)?)
                }
                t if t == u64::from(MSG_SYNC_UPDATE) => {
                    let buf = cursor.read_buf().map_err(malformed("sync update"))?;
                    ClientMessage::Update(decode_update(frame, buf)?)
                }
                other => return Err(DecodeError::UnknownSyncType(other)),
            }
        }
        t if t == u64::from(MSG_AWARENESS) => {
            let buf = cursor.read_buf().map_err(malformed("awareness message"))?;
            check_count("awareness update", buf)?;
            let update = AwarenessUpdate::decode_v1(buf).map_err(malformed("awareness update"))?;
            for (client, entry) in &update.clients {
                presence::check_state(client.get(), &entry.json)?;
            }
            ClientMessage::Awareness(IncomingAwareness {
                update,
                // This message alone, a frame to relay as it is.
                frame: frame.slice(start..cursor.next),
            })
        }
        t if t == u64::from(MSG_AUTH) => return Err(DecodeError::AuthFromClient),
        t if t == u64::from(MSG_QUERY_AWARENESS) => ClientMessage::QueryAwareness,
        t if t == u64::from(MSG_FUNNEL) => {
            let buf = cursor.read_buf().map_err(malformed("funnel message"))?;
            let mut payload = Cursor::new(buf);
            let kind: u64 = payload
                .read_var()
                .map_err(malformed("funnel message kind"))?;
            if kind != u64::from(FUNNEL_NOTICES) {
                return Err(DecodeError::UnknownFunnelKind(kind));
            }
            if payload.next < buf.len() {
                return Err(DecodeError::TrailingBytes(buf.len() - payload.next));
            }
            ClientMessage::WantsNotices
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok(message)
}

fn decode_update(frame: &Bytes, buf: &[u8]) -> Result<IncomingUpdate, DecodeError> {
    let update = decode_update_v1(buf)?;
    Ok(IncomingUpdate {
        update,
        raw: frame.slice_ref(buf),
    })
}

/// Decodes a lib0 v1 update and insists that it is consumed whole: yrs' own `decode_v1` stops at
/// the end of the update and would accept trailing garbage.
pub fn decode_update_v1(buf: &[u8]) -> Result<Update, DecodeError> {
    check_count("document update", buf)?;
    let mut decoder = DecoderV1::from(buf);
    let update = Update::decode(&mut decoder).map_err(malformed("document update"))?;
    let rest = decoder
        .read_to_end()
        .map_err(malformed("document update"))?
        .len();
    if rest > 0 {
        return Err(DecodeError::TrailingBytes(rest));
    }
    Ok(update)
}

/// yrs reserves room for as many entries as a message's leading count claims before it reads
/// them: a few bytes claiming billions would make the server allocate gigabytes (found by the
/// `decode_frame` fuzz target). Every entry takes at least one byte, so a count above the bytes
/// that follow is malformed, and what yrs reserves stays proportional to the frame.
fn check_count(what: &'static str, buf: &[u8]) -> Result<(), DecodeError> {
    let mut cursor = Cursor::new(buf);
    let count: u64 = cursor.read_var().map_err(malformed(what))?;
    let bytes = buf.len() - cursor.next;
    if count > bytes as u64 {
        return Err(DecodeError::CountTooLarge { what, count, bytes });
    }
    Ok(())
}

fn frame_with(build: impl FnOnce(&mut EncoderV1)) -> Bytes {
    let mut encoder = EncoderV1::new();
    build(&mut encoder);
    Bytes::from(encoder.to_vec())
}

/// Server → client: the server's state vector ("send me what I lack").
pub fn encode_sync_step1(sv: &StateVector) -> Bytes {
    frame_with(|e| {
        e.write_var(MSG_SYNC);
        e.write_var(MSG_SYNC_STEP_1);
        e.write_buf(sv.encode_v1());
    })
}

/// Server → client: what the client lacks, answering its step 1.
pub fn encode_sync_step2(update_v1: &[u8]) -> Bytes {
    frame_with(|e| {
        e.write_var(MSG_SYNC);
        e.write_var(MSG_SYNC_STEP_2);
        e.write_buf(update_v1);
    })
}

/// Whether a frame this module encoded is a sync step 2 (the end of a sync answer): both tags
/// are single-byte varints, so the first two bytes tell.
pub fn is_sync_step2(frame: &[u8]) -> bool {
    frame.starts_with(&[MSG_SYNC, MSG_SYNC_STEP_2])
}

/// Server → client: a change made by someone else (or by the server).
pub fn encode_update(update_v1: &[u8]) -> Bytes {
    frame_with(|e| {
        e.write_var(MSG_SYNC);
        e.write_var(MSG_SYNC_UPDATE);
        e.write_buf(update_v1);
    })
}

/// Server → client: presence of some clients (a `null` state means the client left).
pub fn encode_awareness(update: &AwarenessUpdate) -> Bytes {
    frame_with(|e| {
        e.write_var(MSG_AWARENESS);
        e.write_buf(update.encode_v1());
    })
}

/// Server → client: a [`Recovered`] notice.
pub fn encode_recovered(recovered: &Recovered) -> Bytes {
    let mut payload = EncoderV1::new();
    payload.write_var(FUNNEL_RECOVERED);
    payload.write_buf(recovered.held.encode_v1());
    payload.write_var(recovered.taken_back.len());
    for kind in &recovered.taken_back {
        payload.write_string(kind.as_str());
    }
    funnel_frame(&payload.to_vec())
}

fn funnel_frame(payload: &[u8]) -> Bytes {
    frame_with(|e| {
        e.write_var(MSG_FUNNEL);
        e.write_buf(payload);
    })
}

fn decode_recovered(payload: &[u8]) -> Result<ServerMessage, DecodeError> {
    let mut cursor = Cursor::new(payload);
    let kind: u64 = cursor
        .read_var()
        .map_err(malformed("funnel message kind"))?;
    if kind != u64::from(FUNNEL_RECOVERED) {
        return Err(DecodeError::UnknownFunnelKind(kind));
    }
    let buf = cursor.read_buf().map_err(malformed("recovered notice"))?;
    check_count("state vector", buf)?;
    let held = StateVector::decode_v1(buf).map_err(malformed("state vector"))?;
    let count: usize = cursor.read_var().map_err(malformed("recovered notice"))?;
    let mut taken_back = Vec::new();
    for _ in 0..count.min(payload.len()) {
        let name = cursor
            .read_string()
            .map_err(malformed("recovered notice"))?;
        // A name this build does not know yet is skipped, not an error.
        taken_back.extend(TakenBack::parse(name));
    }
    Ok(ServerMessage::Recovered(Recovered { held, taken_back }))
}

/// Client → server frames, for Rust clients (tests, the load tester).
pub mod client {
    use super::*;

    pub fn encode_sync_step1(sv: &StateVector) -> Bytes {
        super::encode_sync_step1(sv)
    }

    pub fn encode_sync_step2(update_v1: &[u8]) -> Bytes {
        super::encode_sync_step2(update_v1)
    }

    pub fn encode_update(update_v1: &[u8]) -> Bytes {
        super::encode_update(update_v1)
    }

    pub fn encode_awareness(update: &AwarenessUpdate) -> Bytes {
        super::encode_awareness(update)
    }

    /// An awareness frame that sets one client's state: `json` at `clock` (`"null"` removes it).
    pub fn encode_awareness_state(client: u64, clock: u32, json: &str) -> Bytes {
        let entry = yrs::sync::awareness::AwarenessUpdateEntry {
            clock,
            json: json.into(),
        };
        let clients = std::iter::once((yrs::block::ClientID::new(client), entry)).collect();
        super::encode_awareness(&AwarenessUpdate { clients })
    }

    pub fn encode_query_awareness() -> Bytes {
        frame_with(|e| e.write_var(MSG_QUERY_AWARENESS))
    }

    /// "Send me funnel's notices."
    pub fn encode_wants_notices() -> Bytes {
        super::funnel_frame(&[FUNNEL_NOTICES])
    }
}

/// A message the server sends, decoded: what a Rust client reads.
#[derive(Debug)]
pub enum ServerMessage {
    SyncStep1(StateVector),
    SyncStep2(Vec<u8>),
    Update(Vec<u8>),
    Awareness(AwarenessUpdate),
    /// Permission denied, with the reason.
    AuthDenied(String),
    QueryAwareness,
    /// funnel's notice after a step 2 that brought the board changes it lacked.
    Recovered(Recovered),
}

/// Decodes a frame sent by the server (for Rust clients).
pub fn decode_server_frame(frame: &[u8]) -> Result<ServerMessage, DecodeError> {
    use yrs::sync::{Message, SyncMessage};
    if frame.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut decoder = DecoderV1::from(frame);
    let message = Message::decode(&mut decoder).map_err(malformed("server message"))?;
    Ok(match message {
        Message::Sync(SyncMessage::SyncStep1(sv)) => ServerMessage::SyncStep1(sv),
        Message::Sync(SyncMessage::SyncStep2(u)) => ServerMessage::SyncStep2(u),
        Message::Sync(SyncMessage::Update(u)) => ServerMessage::Update(u),
        Message::Awareness(u) => ServerMessage::Awareness(u),
        Message::Auth(reason) => ServerMessage::AuthDenied(reason.unwrap_or_default()),
        Message::AwarenessQuery => ServerMessage::QueryAwareness,
        Message::Custom(MSG_FUNNEL, payload) => decode_recovered(&payload)?,
        Message::Custom(tag, _) => return Err(DecodeError::UnknownType(u64::from(tag))),
    })
}

/// WebSocket close codes the server uses, and what each tells a stock y-websocket client.
///
/// Codes 4400–4499 make the client stop retrying (the request itself is wrong); the others make
/// it reconnect and resync, which is what a restart or an overload wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// A clean close.
    Normal,
    /// The server is going away for good (not used for restarts).
    GoingAway,
    /// A text frame: the protocol is binary only.
    UnsupportedData,
    /// A frame that does not decode, or an update that cannot be applied.
    InvalidPayload,
    /// A frame over `--max-frame-bytes`. Not 1009: a stock client reconnects after 1009 and
    /// uploads the same update again, forever; a 44xx stops it.
    FrameTooLarge,
    /// Something failed on the server (storage); reconnecting is the cure.
    InternalError,
    /// The server is restarting (graceful shutdown): reconnect and resync.
    ServiceRestart,
    /// Slow consumer: the connection's outgoing queue was full. Reconnect and resync.
    TryAgainLater,
    /// The request is wrong in a way retrying will not fix (bad board id, unknown message type).
    BadRequest,
    /// No valid token.
    Unauthenticated,
    /// The token does not allow this.
    Forbidden,
    /// No such board, and the caller may not create it.
    NotFound,
    /// The board is at its size limit: the update was refused.
    BoardTooLarge,
    /// Over a limit on messages a second, or on connections per user or per address.
    TooMany,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::UnsupportedData => 1003,
            CloseCode::InvalidPayload => 1007,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::BadRequest => 4400,
            CloseCode::Unauthenticated => 4401,
            CloseCode::Forbidden => 4403,
            CloseCode::NotFound => 4404,
            CloseCode::BoardTooLarge => 4413,
            CloseCode::FrameTooLarge => 4414,
            CloseCode::TooMany => 4429,
        }
    }
}

/// The longest close reason a WebSocket close frame can carry (125 bytes minus the 2-byte code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Cuts a close reason to what fits in a close frame, on a character boundary.
pub fn close_reason(reason: &str) -> String {
    if reason.len() <= MAX_CLOSE_REASON_BYTES {
        return reason.to_owned();
    }
    let mut end = MAX_CLOSE_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, GetString, ReadTxn, Text, Transact};

    /// Decodes a frame that must hold one message.
    fn decode_one(frame: &Bytes) -> Result<ClientMessage, DecodeError> {
        let mut messages = decode_client_frame(frame)?;
        assert_eq!(messages.len(), 1, "{messages:?}");
        Ok(messages.remove(0))
    }

    fn some_update() -> Vec<u8> {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "hello");
        txn.encode_update_v1()
    }

    /// Found by the `decode_frame` fuzz target: an awareness frame whose count claimed about two
    /// billion entries made yrs reserve gigabytes before reading any.
    #[test]
    fn counts_larger_than_their_message_are_refused_before_yrs_allocates() {
        let frame = Bytes::from_static(&[
            1, 57, 252, 157, 178, 193, 191, 6, 1, 49, 123, 34, 117, 115, 101, 114, 34, 58, 7, 1,
            119, 2, 115, 50, 34, 117, 49, 34, 44, 34, 110, 97, 109, 101, 34, 58, 34, 65, 110, 110,
            34, 125, 44, 34, 100, 114, 97, 103, 103, 105, 110, 103, 34, 58, 34, 99, 49, 34, 125,
        ]);
        let err = decode_one(&frame).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::CountTooLarge {
                    what: "awareness update",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.close_code(), CloseCode::InvalidPayload);
        // The same for a sync step 1 and an update claiming more clients than bytes.
        for frame in [[0u8, 0, 3, 0xff, 0xff, 0x7f], [0, 2, 3, 0xff, 0xff, 0x7f]] {
            let err = decode_one(&Bytes::copy_from_slice(&frame)).unwrap_err();
            assert!(matches!(err, DecodeError::CountTooLarge { .. }), "{err}");
        }
    }

    #[test]
    fn only_a_step2_frame_is_a_step2() {
        let update = some_update();
        assert!(is_sync_step2(&encode_sync_step2(&update)));
        assert!(is_sync_step2(&encode_sync_step2(&[])));
        assert!(!is_sync_step2(&encode_update(&update)));
        assert!(!is_sync_step2(&encode_sync_step1(&StateVector::default())));
        assert!(!is_sync_step2(&client::encode_query_awareness()));
        assert!(!is_sync_step2(&[]));
    }

    #[test]
    fn an_update_round_trips_and_keeps_its_raw_bytes() {
        let update = some_update();
        let frame = client::encode_update(&update);
        let ClientMessage::Update(incoming) = decode_one(&frame).unwrap() else {
            panic!("expected an update")
        };
        assert_eq!(&incoming.raw[..], &update[..]);
        let doc = Doc::new();
        doc.transact_mut().apply_update(incoming.update).unwrap();
        let text = doc.get_or_insert_text("t");
        assert_eq!(text.get_string(&doc.transact()), "hello");
    }

    #[test]
    fn step1_round_trips() {
        let doc = Doc::new();
        let sv = doc.transact().state_vector();
        let frame = client::encode_sync_step1(&sv);
        assert!(matches!(decode_one(&frame), Ok(ClientMessage::SyncStep1(got)) if got == sv));
        assert!(matches!(
            decode_server_frame(&frame),
            Ok(ServerMessage::SyncStep1(_))
        ));
    }

    #[test]
    fn query_awareness_is_one_byte() {
        let frame = client::encode_query_awareness();
        assert_eq!(&frame[..], &[MSG_QUERY_AWARENESS]);
        assert!(matches!(
            decode_one(&frame),
            Ok(ClientMessage::QueryAwareness)
        ));
    }

    #[test]
    fn the_notices_request_decodes_and_an_unknown_funnel_kind_is_refused() {
        let frame = client::encode_wants_notices();
        assert_eq!(&frame[..], &[MSG_FUNNEL, 1, FUNNEL_NOTICES]);
        assert!(matches!(
            decode_one(&frame),
            Ok(ClientMessage::WantsNotices)
        ));
        let unknown = Bytes::from_static(&[MSG_FUNNEL, 1, 7]);
        let err = decode_one(&unknown).unwrap_err();
        assert!(matches!(err, DecodeError::UnknownFunnelKind(7)), "{err}");
        assert_eq!(err.close_code(), CloseCode::BadRequest);
        let trailing = Bytes::from_static(&[MSG_FUNNEL, 2, FUNNEL_NOTICES, 0]);
        assert!(matches!(
            decode_one(&trailing),
            Err(DecodeError::TrailingBytes(1))
        ));
    }

    #[test]
    fn a_recovered_notice_round_trips_and_yrs_reads_it_as_a_custom_message() {
        let mut held = StateVector::default();
        held.set_max(yrs::block::ClientID::new(7), 3);
        held.set_max(yrs::block::ClientID::new(9), 0);
        let notice = Recovered {
            held,
            taken_back: vec![TakenBack::Stages, TakenBack::ServerFields],
        };
        let frame = encode_recovered(&notice);
        let mut one = StateVector::default();
        one.set_max(yrs::block::ClientID::new(7), 3);
        let one_kind = encode_recovered(&Recovered {
            held: one,
            taken_back: vec![TakenBack::Stages],
        });
        // The bytes clients/web/test/history.test.ts reads.
        assert_eq!(
            &one_kind[..],
            &[
                100, 13, 1, 3, 1, 7, 3, 1, 6, b's', b't', b'a', b'g', b'e', b's'
            ]
        );
        let Ok(ServerMessage::Recovered(decoded)) = decode_server_frame(&frame) else {
            panic!("not a recovered notice");
        };
        assert_eq!(decoded, notice);
        // What a yrs client (y-sync, `DefaultProtocol`) makes of it: one custom message.
        let mut decoder = DecoderV1::from(frame.as_ref());
        let message = yrs::sync::Message::decode(&mut decoder).unwrap();
        assert!(matches!(message, yrs::sync::Message::Custom(MSG_FUNNEL, _)));
    }

    #[test]
    fn bad_frames_are_refused_with_the_right_code() {
        let update = some_update();
        let truncated = client::encode_update(&update).slice(..5);
        let mut bad_second = client::encode_query_awareness().to_vec();
        bad_second.extend_from_slice(&truncated);
        let too_many = vec![MSG_QUERY_AWARENESS; MAX_MESSAGES_PER_FRAME + 1];
        let mut garbage_update = vec![MSG_SYNC, MSG_SYNC_UPDATE, 4];
        garbage_update.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let cases: Vec<(Bytes, CloseCode)> = vec![
            (Bytes::new(), CloseCode::InvalidPayload),
            (truncated, CloseCode::InvalidPayload),
            // A malformed second message refuses the whole frame.
            (Bytes::from(bad_second), CloseCode::InvalidPayload),
            (Bytes::from(too_many), CloseCode::InvalidPayload),
            (Bytes::from(garbage_update), CloseCode::InvalidPayload),
            (Bytes::from_static(&[0xff]), CloseCode::InvalidPayload),
            (Bytes::from_static(&[7]), CloseCode::BadRequest),
            (Bytes::from_static(&[101, 0]), CloseCode::BadRequest),
            // A funnel message without its kind.
            (
                Bytes::from_static(&[MSG_FUNNEL, 0]),
                CloseCode::InvalidPayload,
            ),
            (Bytes::from_static(&[MSG_SYNC, 9, 0]), CloseCode::BadRequest),
            (Bytes::from_static(&[MSG_AUTH, 0, 0]), CloseCode::BadRequest),
        ];
        for (frame, code) in cases {
            let err = decode_client_frame(&frame).expect_err(&format!("{frame:?} must be refused"));
            assert_eq!(err.close_code(), code, "{frame:?}: {err}");
        }
    }

    /// yrs' `DefaultProtocol::start` writes a step 1 and the client's awareness in one frame:
    /// both are decoded, in order, and the awareness keeps only its own bytes to relay.
    #[test]
    fn a_frame_of_several_messages_decodes_each_in_order() {
        let sv = Doc::new().transact().state_vector();
        let presence = awareness("null");
        let update = some_update();
        let mut frame = client::encode_sync_step1(&sv).to_vec();
        frame.extend_from_slice(&presence);
        frame.extend_from_slice(&client::encode_update(&update));
        frame.extend_from_slice(&client::encode_query_awareness());
        let messages = decode_client_frame(&Bytes::from(frame)).unwrap();
        let [
            ClientMessage::SyncStep1(got),
            ClientMessage::Awareness(incoming),
            ClientMessage::Update(incoming_update),
            ClientMessage::QueryAwareness,
        ] = &messages[..]
        else {
            panic!("{messages:?}")
        };
        assert_eq!(got, &sv);
        assert_eq!(incoming.frame, presence);
        assert_eq!(&incoming_update.raw[..], &update[..]);
        let most = vec![MSG_QUERY_AWARENESS; MAX_MESSAGES_PER_FRAME];
        assert_eq!(
            decode_client_frame(&Bytes::from(most)).unwrap().len(),
            MAX_MESSAGES_PER_FRAME
        );
        // The fuzz seed of that start frame, as yrs writes it for an empty document.
        let seed = include_bytes!("../../fuzz/corpus/decode_frame/yrs-start-step1-awareness");
        let messages = decode_client_frame(&Bytes::from_static(seed)).unwrap();
        assert!(
            matches!(
                &messages[..],
                [ClientMessage::SyncStep1(_), ClientMessage::Awareness(_)]
            ),
            "{messages:?}"
        );
    }

    fn awareness(json: &str) -> Bytes {
        let mut clients = std::collections::HashMap::new();
        clients.insert(
            yrs::ClientID::new(5),
            yrs::sync::awareness::AwarenessUpdateEntry {
                clock: 1,
                json: json.into(),
            },
        );
        client::encode_awareness(&AwarenessUpdate { clients })
    }

    /// A state that y-protocols' `JSON.parse` throws on stopped every stock client on the board
    /// (issue 22): such an awareness update is refused at decoding, with a 4400 and a reason.
    #[test]
    fn awareness_states_that_break_the_schema_are_refused_at_decoding() {
        let ok = r##"{"user":{"id":"u","name":"Ann","color":"#fff"},"dragging":null}"##;
        assert!(matches!(
            decode_one(&awareness(ok)),
            Ok(ClientMessage::Awareness(_))
        ));
        assert!(decode_client_frame(&awareness("null")).is_ok());
        for json in ["{oops", r#"{"dragging":1}"#, "[]"] {
            let err = decode_client_frame(&awareness(json)).expect_err(json);
            assert_eq!(err.close_code(), CloseCode::BadRequest, "{json}");
            assert!(
                err.to_string().starts_with("awareness state of client 5"),
                "{err}"
            );
        }
    }

    /// The fuzz corpus's awareness seeds are what their names say.
    #[test]
    fn the_awareness_fuzz_seeds_decode_as_named() {
        let seed = |bytes: &'static [u8]| decode_one(&Bytes::from_static(bytes));
        macro_rules! seeds {
            ($($name:literal),*) => { [$(($name, seed(include_bytes!(concat!("../../fuzz/corpus/decode_frame/", $name))))),*] };
        }
        let accepted = seeds!(
            "awareness-ours",
            "awareness-removal",
            "awareness-extra-keys",
            "awareness-two-clients"
        );
        for (name, decoded) in accepted {
            assert!(
                matches!(decoded, Ok(ClientMessage::Awareness(_))),
                "{name}: {decoded:?}"
            );
        }
        let refused = seeds!(
            "awareness-not-json",
            "awareness-spaced-null",
            "awareness-wrong-types",
            "awareness-too-large",
            "awareness-deep-nesting"
        );
        for (name, decoded) in refused {
            assert!(
                matches!(decoded, Err(DecodeError::Presence(_))),
                "{name}: {decoded:?}"
            );
        }
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON_BYTES);
        assert!(long.starts_with(&cut));
    }
}
