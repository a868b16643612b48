//! The SMTP listener (`--smtp-listen`): mail for `{boardId}@any-domain` (with tokens on,
//! `{boardId}+{secret}@...`) is taken by [`super::take`], and answered 250 only once it is stored.
//!
//! The protocol's state machine is `mailin`'s (commands, order, replies); the I/O around it is
//! ours, on tokio, with every line bounded ([`MAX_COMMAND_LINE`], [`MAX_TEXT_LINE`]), every read
//! timed out ([`COMMAND_TIMEOUT`]), the whole session bounded ([`SESSION_LIMIT`]) and at most
//! [`MAX_SESSIONS`] sessions at once. `mailin`'s handler is synchronous, so the asynchronous
//! decisions are made around it: a recipient is resolved (board exists, secret right) before its
//! `RCPT` line reaches the state machine, and a complete message is taken before the reply to
//! its final `.` is written (in place of the state machine's own).
//!
//! Replies: 550 for an unknown board or a wrong secret, 552 for a message over
//! `--max-mail-bytes`, 554 for a malformed one, 451 when storage or the board is busy (the
//! sender retries), 250 once stored. No TLS and no AUTH: the address's secret is the
//! credential, so put a TLS-terminating MTA in front of it on an open network.

use super::{MailError, MailSender, RecipientError};
use crate::app_state::AppState;
use funnel_protocol::BoardId;
use mailin::{Action, Handler, Response, SessionBuilder};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The longest command line (RFC 5321 4.5.3.1.4 says 512; we allow a few extensions' worth).
pub const MAX_COMMAND_LINE: usize = 1024;
/// The longest line of a message (RFC 5321 says 1000; lenient for senders that break it).
pub const MAX_TEXT_LINE: usize = 16 * 1024;
/// How long the server waits for each line (RFC 5321 4.5.3.2 suggests minutes).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a session may last, whatever it sends.
pub const SESSION_LIMIT: Duration = Duration::from_secs(15 * 60);
/// Sessions at once; one more is answered 421 and closed.
pub const MAX_SESSIONS: usize = 64;
/// Recipients per message (RFC 5321 asks servers to take at least 100).
pub const MAX_RECIPIENTS: usize = 100;

/// Serves SMTP on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) {
    let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
    loop {
        let (socket, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "smtp: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&sessions).try_acquire_owned() else {
            tokio::spawn(async move {
                let mut socket = socket;
                let _ = socket
                    .write_all(b"421 4.3.2 too many connections, try again later\r\n")
                    .await;
            });
            continue;
        };
        let state = state.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit; // released when the session ends, however it ends
            let (read, write) = socket.into_split();
            let session = Session::new(state, peer);
            tokio::select! {
                () = stop.cancelled() => {}
                ended = tokio::time::timeout(SESSION_LIMIT, session.run(read, write)) => {
                    match ended {
                        Ok(Ok(())) => tracing::debug!(%peer, "smtp: session ended"),
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "smtp: session failed"),
                        Err(_) => tracing::info!(%peer, "smtp: session over its time limit, closed"),
                    }
                }
            }
        });
    }
}

/// What the synchronous handler and the asynchronous loop share about the current message.
#[derive(Default)]
struct Envelope {
    /// Each recipient the loop resolved before its RCPT line reached the state machine.
    verdicts: HashMap<String, Result<BoardId, RecipientError>>,
    /// The board the message's recipients name (one board per message).
    board: Option<BoardId>,
    recipients: usize,
    data: Vec<u8>,
    too_large: bool,
    /// What the final `.` of a message ended with, waiting for the loop to answer it.
    complete: Option<Finished>,
    max_bytes: usize,
}

impl Envelope {
    fn reset(&mut self) {
        self.board = None;
        self.recipients = 0;
        self.data.clear();
        self.too_large = false;
        self.complete = None;
    }
}

/// How a message's DATA ended.
enum Finished {
    /// A whole message for a board: taken, then answered.
    Take(BoardId, Vec<u8>),
    /// Refused as it stands: this reply line.
    Refuse(String),
}

struct MailHandler(Arc<Mutex<Envelope>>);

impl MailHandler {
    fn envelope(&self) -> std::sync::MutexGuard<'_, Envelope> {
        // Poisoned only if a holder panicked; the envelope is plain data, still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Handler for MailHandler {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.envelope().reset();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let mut envelope = self.envelope();
        let verdict = envelope
            .verdicts
            .get(to)
            .cloned()
            .unwrap_or(Err(RecipientError::NotABoard));
        match verdict {
            Err(e) => Response::custom(550, format!("5.1.1 {e}")),
            Ok(_) if envelope.recipients >= MAX_RECIPIENTS => {
                Response::custom(452, "4.5.3 too many recipients".into())
            }
            Ok(board) => match &envelope.board {
                Some(first) if *first != board => Response::custom(
                    452,
                    "4.5.3 one board per message: send it to the other board separately".into(),
                ),
                _ => {
                    envelope.board = Some(board);
                    envelope.recipients += 1;
                    mailin::response::OK
                }
            },
        }
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut envelope = self.envelope();
        if envelope.data.len() + buf.len() > envelope.max_bytes {
            // Keep reading to the final `.`, then refuse (a reply now would be read as the
            // answer to the whole message).
            envelope.too_large = true;
            envelope.data.clear();
        } else if !envelope.too_large {
            envelope.data.extend_from_slice(buf);
        }
        Ok(())
    }

    /// Always OK to the state machine, which the loop's own reply replaces: `mailin` 0.6 keeps
    /// a session in its DATA state after an error reply here, reading every later command as
    /// message text.
    fn data_end(&mut self) -> Response {
        let mut envelope = self.envelope();
        let finished = if envelope.too_large {
            Finished::Refuse(format!(
                "552 5.3.4 the message is larger than {} bytes\r\n",
                envelope.max_bytes
            ))
        } else {
            match envelope.board.clone() {
                Some(board) => Finished::Take(board, std::mem::take(&mut envelope.data)),
                None => Finished::Refuse("554 5.5.1 no valid recipient\r\n".into()),
            }
        };
        envelope.reset();
        envelope.complete = Some(finished);
        mailin::response::OK
    }
}

struct Session {
    state: AppState,
    peer: SocketAddr,
    envelope: Arc<Mutex<Envelope>>,
}

impl Session {
    fn new(state: AppState, peer: SocketAddr) -> Self {
        let envelope = Envelope {
            max_bytes: state.mail.max_bytes,
            ..Envelope::default()
        };
        Session {
            state,
            peer,
            envelope: Arc::new(Mutex::new(envelope)),
        }
    }

    async fn run(
        self,
        read: impl AsyncRead + Unpin,
        mut write: impl AsyncWrite + Unpin,
    ) -> io::Result<()> {
        let mut reader = BufReader::new(read);
        let name = if self.state.mail.domain.is_empty() {
            "funnel".to_owned()
        } else {
            self.state.mail.domain.clone()
        };
        let mut smtp = SessionBuilder::new(name)
            .build(self.peer.ip(), MailHandler(Arc::clone(&self.envelope)));
        send(&mut write, &smtp.greeting()).await?;
        let mut in_data = false;
        let mut line = Vec::with_capacity(256);
        loop {
            let max = if in_data {
                MAX_TEXT_LINE
            } else {
                MAX_COMMAND_LINE
            };
            line.clear();
            let read = tokio::time::timeout(
                COMMAND_TIMEOUT,
                (&mut reader)
                    .take(max as u64 + 1)
                    .read_until(b'\n', &mut line),
            )
            .await;
            let n = match read {
                Err(_) => {
                    write
                        .write_all(b"421 4.4.2 idle too long, closing\r\n")
                        .await?;
                    return Ok(());
                }
                Ok(read) => read?,
            };
            if n == 0 {
                return Ok(()); // the client went away
            }
            if !line.ends_with(b"\n") {
                let reply = if line.len() > max {
                    "500 5.5.2 line too long, closing\r\n"
                } else {
                    "421 4.4.2 unterminated line, closing\r\n"
                };
                write.write_all(reply.as_bytes()).await?;
                linger(&mut reader, &mut write).await;
                return Ok(());
            }
            // A bare LF ends a line too (some senders); the state machine expects CRLF.
            if !line.ends_with(b"\r\n") {
                line.pop();
                line.extend_from_slice(b"\r\n");
            }
            if in_data {
                if line == b".\r\n" {
                    in_data = false;
                }
            } else if let Some(recipient) = rcpt_address(&line) {
                let verdict = self.resolve(&recipient).await;
                let mut envelope = self.envelope.lock().unwrap_or_else(|p| p.into_inner());
                if envelope.verdicts.len() >= MAX_RECIPIENTS * 2 {
                    envelope.verdicts.clear();
                }
                envelope.verdicts.insert(recipient, verdict);
            }
            let response = smtp.process(&line);
            let complete = self
                .envelope
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .complete
                .take();
            if let Some(finished) = complete {
                let reply = match finished {
                    Finished::Take(board, message) => self.take(&board, &message).await,
                    Finished::Refuse(reply) => reply,
                };
                write.write_all(reply.as_bytes()).await?;
                continue;
            }
            if response.code == 354 {
                in_data = true;
            }
            match response.action {
                Action::Reply => send(&mut write, &response).await?,
                Action::Close => {
                    send(&mut write, &response).await?;
                    return Ok(());
                }
                Action::NoReply => {}
                Action::UpgradeTls => {
                    // STARTTLS is not offered, so the state machine never asks for it.
                    write.write_all(b"454 4.7.0 TLS not available\r\n").await?;
                }
            }
        }
    }

    /// Whether `recipient` names a board that exists, with the right secret.
    async fn resolve(&self, recipient: &str) -> Result<BoardId, RecipientError> {
        let board = self.state.mail.board_of_recipient(recipient)?;
        match self.state.storage.meta(&board).await {
            Ok(Some(_)) => Ok(board),
            Ok(None) => Err(RecipientError::NotABoard),
            Err(e) => {
                tracing::warn!(error = %e, "smtp: cannot look the board up");
                Err(RecipientError::NotABoard)
            }
        }
    }

    /// Takes a complete message; the reply line to its final `.`.
    async fn take(&self, board: &BoardId, message: &[u8]) -> String {
        let outcome = super::take(&self.state, board, message, MailSender::smtp(board)).await;
        match outcome {
            // Taken, so the sender does not try again; an automatic message about no card is
            // dropped (a bounce or an out-of-office reply makes no deal).
            Ok(outcome) => {
                let action = match outcome.action {
                    super::MailAction::Created => "created",
                    super::MailAction::Appended => "appended",
                    super::MailAction::Duplicate => "duplicate",
                    super::MailAction::Ignored => "ignored (an automatic message about no card)",
                };
                match outcome.card_id {
                    Some(card) => format!(
                        "250 2.0.0 {action} card {card} message {}\r\n",
                        outcome.message_id
                    ),
                    None => format!("250 2.0.0 {action} message {}\r\n", outcome.message_id),
                }
            }
            Err(e) => {
                tracing::info!(board = %board, peer = %self.peer, error = %e, "smtp: message refused");
                let (code, status) = match &e {
                    MailError::Malformed(_) => (554, "5.6.0"),
                    MailError::TooLarge { .. } | MailError::BoardFull { .. } => (552, "5.3.4"),
                    MailError::NoSuchBoard(_) => (550, "5.1.1"),
                    MailError::Refused(_) => (554, "5.7.1"),
                    MailError::RateLimited { .. } => (451, "4.7.1"),
                    MailError::InFlight(_) | MailError::Storage(_) | MailError::Busy => {
                        (451, "4.3.0")
                    }
                };
                // One line: the message must not carry a line break into the reply.
                let text = e.to_string().replace(['\r', '\n'], " ");
                format!("{code} {status} {text}\r\n")
            }
        }
    }
}

/// How long, and how much, a refused client's unread input is drained before the socket closes.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 256 * 1024;

/// Ends our side, then reads what the client had already sent (bounded): a socket closed with
/// unread input is reset, and the reset can destroy the refusal before the client reads it.
async fn linger(read: &mut (impl AsyncRead + Unpin), write: &mut (impl AsyncWrite + Unpin)) {
    let _ = write.shutdown().await;
    let mut sink = tokio::io::sink();
    let _ = tokio::time::timeout(
        LINGER,
        tokio::io::copy(&mut read.take(LINGER_BYTES), &mut sink),
    )
    .await;
}

async fn send(write: &mut (impl AsyncWrite + Unpin), response: &Response) -> io::Result<()> {
    let bytes = response.buffer()?;
    write.write_all(&bytes).await
}

/// The address of a `RCPT TO:<address>` line, as `mailin` hands it to the handler.
fn rcpt_address(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let lower = text.to_ascii_lowercase();
    if !lower.starts_with("rcpt") {
        return None;
    }
    let start = lower.find("to:<")? + 4;
    let end = start + text[start..].find('>')?;
    Some(text[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcpt_lines_give_their_address() {
        assert_eq!(
            rcpt_address(b"RCPT TO:<b1+abc@crm.example>\r\n").as_deref(),
            Some("b1+abc@crm.example")
        );
        assert_eq!(
            rcpt_address(b"rcpt to:<b1@x> NOTIFY=NEVER\r\n").as_deref(),
            Some("b1@x")
        );
        assert_eq!(rcpt_address(b"MAIL FROM:<a@b>\r\n"), None);
        assert_eq!(rcpt_address(b"RCPT TO:<unterminated\r\n"), None);
    }
}
