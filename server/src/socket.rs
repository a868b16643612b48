//! A board socket's two halves, after funnel's own WebSocket upgrade.
//!
//! The reader is tokio-tungstenite on the socket's read half: it unmasks, reassembles and
//! limits what the client sends, and answers its pings and its close. What it writes (those
//! answers, already framed) does not touch the socket: it goes to the connection's outbox
//! ([`ControlSender`]), and the writer sends it in order with everything else.
//!
//! The writer ([`SocketWriter`]) owns the write half and frames the outbox's payloads itself:
//! one `writev` carries many frames, each a header of 2 to 10 bytes and the room's shared
//! `Bytes`, so a frame relayed to a thousand members is never copied per member, and no
//! connection keeps a write buffer (BENCHMARKS.md, History, "The gathered writer").

use crate::outbox::ControlSender;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::io::{self, Cursor, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::frame::coding::{CloseCode as WireCloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};
use tungstenite::protocol::{Role, WebSocketConfig};

/// The upgraded connection, as hyper hands it over.
type Io = TokioIo<Upgraded>;

/// The reading side of a board socket: tungstenite's messages.
pub type SocketReader = WebSocketStream<ReadSide>;

/// A WebSocket upgrade request (RFC 6455, 4.2.1), checked as axum's own extractor checks it,
/// with the same refusals: funnel takes the upgraded connection itself so that its writer owns
/// the socket's write half.
pub struct SocketUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request to a socket URL is not a WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnUpgrade {
    status: StatusCode,
    reason: &'static str,
}

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        (self.status, self.reason).into_response()
    }
}

impl NotAnUpgrade {
    const fn new(status: StatusCode, reason: &'static str) -> Self {
        Self { status, reason }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SocketUpgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotAnUpgrade> {
        let key = upgrade_key(parts.version, &parts.method, &parts.headers)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotAnUpgrade::new(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ))?;
        Ok(Self { key, on_upgrade })
    }
}

/// The request's `Sec-WebSocket-Key`, once it is a valid HTTP/1.1 upgrade to WebSocket 13.
fn upgrade_key(
    version: Version,
    method: &Method,
    headers: &HeaderMap,
) -> Result<HeaderValue, NotAnUpgrade> {
    if version > Version::HTTP_11 {
        return Err(NotAnUpgrade::new(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "board sockets are HTTP/1.1 upgrades",
        ));
    }
    if method != Method::GET {
        return Err(NotAnUpgrade::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request method must be `GET`",
        ));
    }
    let connection_upgrades = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrades {
        return Err(NotAnUpgrade::new(
            StatusCode::BAD_REQUEST,
            "Connection header did not include 'upgrade'",
        ));
    }
    let is = |name, value: &str| {
        headers
            .get(name)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
    };
    if !is(header::UPGRADE, "websocket") {
        return Err(NotAnUpgrade::new(
            StatusCode::BAD_REQUEST,
            "`Upgrade` header did not include 'websocket'",
        ));
    }
    if !is(header::SEC_WEBSOCKET_VERSION, "13") {
        return Err(NotAnUpgrade::new(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Version` header did not include '13'",
        ));
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or(NotAnUpgrade::new(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` header missing",
        ))
}

impl SocketUpgrade {
    /// The 101 response; once hyper has sent it, `serve` gets the socket (on its own task).
    pub fn on_upgrade<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(Socket(TokioIo::new(upgraded))).await,
                Err(e) => tracing::debug!(error = %e, "the WebSocket upgrade failed"),
            }
        });
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
                (
                    header::SEC_WEBSOCKET_ACCEPT,
                    HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
                ),
            ],
        )
            .into_response()
    }
}

/// Each connection's read buffer. tungstenite's default (128 KiB) is what an idle connection
/// would cost; client frames are small (a move is ~100 bytes, ten of them fit), and larger ones
/// grow the buffer as they come (read this much at a time: a 200 KB seed batch takes 200
/// reads). 4 KiB was a third of an idle connection's memory (BENCHMARKS.md, `idle`).
const READ_BUFFER_BYTES: usize = 1024;

/// An upgraded board socket, not yet split.
pub struct Socket(Io);

impl Socket {
    /// The reader (tungstenite, refusing messages and frames over `max_frame_bytes`; the
    /// control frames it answers with go to `control`) and the writer.
    pub async fn split(
        self,
        max_frame_bytes: usize,
        control: ControlSender,
    ) -> (SocketReader, SocketWriter) {
        let (read, write) = tokio::io::split(self.0);
        // tungstenite's own write buffer holds only a pong or a close reply on its way to the
        // outbox.
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_frame_bytes))
            .max_frame_size(Some(max_frame_bytes))
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0);
        let reader = WebSocketStream::from_raw_socket(
            ReadSide { read, control },
            Role::Server,
            Some(config),
        )
        .await;
        (reader, SocketWriter::new(write))
    }
}

/// The read half under tungstenite: reads come from the socket, writes (its control answers)
/// go to the outbox, always whole.
pub struct ReadSide {
    read: ReadHalf<Io>,
    control: ControlSender,
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    /// Takes all of `buf`: tungstenite writes whole frames from its buffer, so each piece the
    /// writer gets is whole frames too, never cut where another frame could come between.
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.control.send(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What one `writev` carries at most: Linux takes 1,024 slices (`IOV_MAX`), two a frame.
pub const FRAMES_PER_WRITE: usize = 512;

/// The longest header of a frame the server sends (unmasked, a 64-bit length).
const MAX_HEADER_BYTES: usize = 10;

/// One thing for the writer to send.
#[derive(Debug)]
pub enum Wire {
    /// A binary message's payload: framed here.
    Binary(Bytes),
    /// Frames already made (the reader's control answers).
    Framed(Bytes),
}

impl Wire {
    /// The bytes of the payload (or of the frames).
    pub fn len(&self) -> usize {
        match self {
            Wire::Binary(bytes) | Wire::Framed(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The writing side of a board socket. Once a close frame has gone (its own or the reader's
/// reply to the client's), it sends nothing more.
///
/// A write can be cut short: the connection's writer drops it when a close is requested while
/// the socket is full (a client that does not read). What the write had sent stays recorded
/// here, so that the next write (the close frame) first finishes the frame it was in: the peer
/// would otherwise read the close frame as the rest of that frame. Frames after it are dropped.
pub struct SocketWriter<W = WriteHalf<Io>> {
    io: W,
    closed: bool,
    /// The write in progress, in order: frame headers (slices of one buffer) and payloads.
    pieces: Vec<Bytes>,
    /// Where each piece ends, and where each frame ends, in bytes from the write's start.
    piece_ends: Vec<usize>,
    frame_ends: Vec<usize>,
    /// The bytes of the write in progress the socket has taken.
    written: usize,
}

impl<W: AsyncWrite + Unpin> SocketWriter<W> {
    fn new(io: W) -> Self {
        Self {
            io,
            closed: false,
            pieces: Vec::new(),
            piece_ends: Vec::new(),
            frame_ends: Vec::new(),
            written: 0,
        }
    }

    /// Writes every item, in order, in as few `writev`s as the socket takes.
    pub async fn send(&mut self, items: &[Wire]) -> io::Result<()> {
        self.finish_cut_frame().await?;
        for chunk in items.chunks(FRAMES_PER_WRITE) {
            if self.closed {
                return Ok(());
            }
            self.plan(chunk);
            let end = self.frame_ends.last().copied().unwrap_or(0);
            self.write_until(end).await?;
            self.forget();
        }
        self.io.flush().await
    }

    /// Records a write of `items` (nothing after a close frame among them).
    fn plan(&mut self, items: &[Wire]) {
        // Every header in one buffer, each frame's split off it: no allocation a frame, and
        // nothing kept once the write is out (an idle connection holds no buffer).
        let mut headers = BytesMut::with_capacity(MAX_HEADER_BYTES * items.len());
        let mut at = 0;
        for item in items {
            let mut push = |piece: Bytes| {
                at += piece.len();
                self.pieces.push(piece);
                self.piece_ends.push(at);
            };
            let closes = match item {
                Wire::Binary(payload) => {
                    binary_header(payload.len(), &mut headers);
                    push(headers.split().freeze());
                    if !payload.is_empty() {
                        push(payload.clone());
                    }
                    false
                }
                Wire::Framed(framed) => {
                    push(framed.clone());
                    holds_close(framed)
                }
            };
            self.frame_ends.push(at);
            if closes {
                // Nothing may follow a close frame.
                self.closed = true;
                break;
            }
        }
        self.written = 0;
    }

    /// Drops the record of the write in progress.
    fn forget(&mut self) {
        self.pieces = Vec::new();
        self.piece_ends = Vec::new();
        self.frame_ends = Vec::new();
        self.written = 0;
    }

    /// `writev`s the write in progress until `end` bytes of it are out. Cancel-safe: what each
    /// `writev` took is recorded before the next await.
    async fn write_until(&mut self, end: usize) -> io::Result<()> {
        while self.written < end {
            let first = self.piece_ends.partition_point(|&e| e <= self.written);
            let last = self.piece_ends.partition_point(|&e| e < end);
            let skip = self.written - first.checked_sub(1).map_or(0, |i| self.piece_ends[i]);
            let mut slices = Vec::with_capacity(last + 1 - first);
            slices.push(IoSlice::new(&self.pieces[first][skip..]));
            slices.extend(
                self.pieces[first + 1..=last]
                    .iter()
                    .map(|p| IoSlice::new(p)),
            );
            let n = self.io.write_vectored(&slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += n;
        }
        Ok(())
    }

    /// Finishes the frame a cut-short write was in, and forgets the frames after it.
    async fn finish_cut_frame(&mut self) -> io::Result<()> {
        if self.pieces.is_empty() {
            return Ok(());
        }
        let at = self.frame_ends.partition_point(|&e| e <= self.written);
        let started = at.checked_sub(1).map_or(0, |i| self.frame_ends[i]);
        if let Some(&end) = self.frame_ends.get(at)
            && self.written > started
        {
            self.write_until(end).await?;
        }
        self.forget();
        Ok(())
    }

    /// An empty ping.
    pub async fn ping(&mut self) -> io::Result<()> {
        self.control(Frame::ping(Bytes::new()), false).await
    }

    /// The close frame, unless one has gone already.
    pub async fn close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        let frame = Frame::close(Some(CloseFrame {
            code: WireCloseCode::from(code),
            reason: reason.into(),
        }));
        self.control(frame, true).await
    }

    /// A control frame of the writer's own (`closes`: a close frame), after the frame a
    /// cut-short write was in, and nothing once a close frame has gone.
    async fn control(&mut self, frame: Frame, closes: bool) -> io::Result<()> {
        self.finish_cut_frame().await?;
        if self.closed {
            return Ok(());
        }
        self.closed = closes;
        let mut framed = Vec::with_capacity(frame.len());
        frame.format(&mut framed).map_err(io::Error::other)?;
        self.io.write_all(&framed).await?;
        self.io.flush().await
    }
}

/// The header of a final, unmasked binary frame of `len` bytes.
fn binary_header(len: usize, out: &mut BytesMut) {
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Binary),
        ..FrameHeader::default()
    };
    // Writing to memory cannot fail.
    let _ = header.format(len as u64, &mut (&mut *out).writer());
}

/// Whether frames made by tungstenite include a close frame.
fn holds_close(framed: &[u8]) -> bool {
    let mut cursor = Cursor::new(framed);
    while let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) {
        if header.opcode == OpCode::Control(Control::Close) {
            return true;
        }
        cursor.set_position(cursor.position().saturating_add(len));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// The frames in `bytes`, as (opcode, payload); panics on a frame cut short.
    fn frames(bytes: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
        let mut cursor = Cursor::new(bytes);
        let mut out = Vec::new();
        while let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
            let start = usize::try_from(cursor.position()).unwrap();
            let end = start + usize::try_from(len).unwrap();
            assert!(end <= bytes.len(), "a frame cut short at the end");
            out.push((header.opcode, bytes[start..end].to_vec()));
            cursor.set_position(end as u64);
        }
        assert_eq!(
            cursor.position() as usize,
            bytes.len(),
            "bytes after the last frame"
        );
        out
    }

    #[tokio::test]
    async fn frames_go_out_whole_and_in_order() {
        let (io, mut peer) = tokio::io::duplex(1 << 20);
        let mut writer = SocketWriter::new(io);
        let big = Bytes::from(vec![7u8; 70_000]);
        let items = [
            Wire::Binary(Bytes::from_static(b"move")),
            Wire::Binary(Bytes::new()),
            Wire::Framed(Bytes::from_static(&[0x8a, 0x02, b'h', b'i'])),
            Wire::Binary(big.clone()),
        ];
        writer.send(&items).await.unwrap();
        writer.close(1000, "bye").await.unwrap();
        writer.send(&items).await.unwrap();
        drop(writer);
        let mut bytes = Vec::new();
        peer.read_to_end(&mut bytes).await.unwrap();
        let got = frames(&bytes);
        let binary = OpCode::Data(Data::Binary);
        assert_eq!(got.len(), 5, "nothing after the close");
        assert_eq!(got[0], (binary, b"move".to_vec()));
        assert_eq!(got[1], (binary, Vec::new()));
        assert_eq!(got[2], (OpCode::Control(Control::Pong), b"hi".to_vec()));
        assert_eq!(got[3], (binary, big.to_vec()));
        assert_eq!(got[4].0, OpCode::Control(Control::Close));
        assert_eq!(&got[4].1[..2], &1000u16.to_be_bytes());
    }

    #[tokio::test]
    async fn a_write_cut_short_is_finished_to_its_frame_before_the_close() {
        // A pipe that takes 1,000 bytes and then blocks: a peer that stopped reading.
        let (io, mut peer) = tokio::io::duplex(1_000);
        let mut writer = SocketWriter::new(io);
        let frame = Bytes::from(vec![1u8; 600]);
        let items = [
            Wire::Binary(frame.clone()),
            Wire::Binary(frame.clone()),
            Wire::Binary(frame.clone()),
        ];
        let cut = tokio::time::timeout(Duration::from_millis(50), writer.send(&items)).await;
        assert!(cut.is_err(), "the pipe is full: the write is cut short");
        // The peer reads again: the second frame is finished, the third dropped, then the close.
        let reading = tokio::spawn(async move {
            let mut bytes = Vec::new();
            peer.read_to_end(&mut bytes).await.unwrap();
            bytes
        });
        writer.close(1013, "slow consumer").await.unwrap();
        drop(writer);
        let got = frames(&reading.await.unwrap());
        let binary = OpCode::Data(Data::Binary);
        assert_eq!(
            got.len(),
            3,
            "{:?}",
            got.iter().map(|f| f.0).collect::<Vec<_>>()
        );
        assert_eq!(got[0], (binary, frame.to_vec()));
        assert_eq!(got[1], (binary, frame.to_vec()));
        assert_eq!(got[2].0, OpCode::Control(Control::Close));
    }

    #[test]
    fn a_close_is_found_among_control_frames() {
        let mut pong_then_close = vec![0x8a, 0x00];
        Frame::close(Some(CloseFrame {
            code: WireCloseCode::Normal,
            reason: "".into(),
        }))
        .format(&mut pong_then_close)
        .unwrap();
        assert!(holds_close(&pong_then_close));
        assert!(!holds_close(&[0x8a, 0x00]));
        assert!(!holds_close(&[]));
    }
}
