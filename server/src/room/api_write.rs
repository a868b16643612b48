//! The board API's path through the room: reads and writes of cards, stages, activities and
//! settings made over HTTP (`crate::api`), done by the room task like everything that touches the
//! document.
//!
//! A write is a function over one transaction of the client origin, judged by the same
//! `policy::check` as a socket update with the caller's role ([`RoomState::apply_api_write`]):
//! refused, nothing of it stays (the room reloads the stored board, as for a refused socket
//! update). Taken, it is stored and delivered exactly as a client's update (to every connection
//! and, in a cluster, the bus) at the end of the turn, after the upkeep (counters, avatars) ran;
//! only then is the reply made, from the document as stored, so the caller sees the server's
//! fields too. A read is answered at the same point, so it sees every write before it.
//!
//! [`RoomState::apply_api_write`]: super::state::RoomState::apply_api_write

use super::Room;
use crate::auth::Principal;
use funnel_protocol::board::BoardError;
use funnel_protocol::policy::Refusal;
use serde_json::Value;
use tokio::sync::oneshot;
use yrs::{Transact, Transaction, TransactionMut};

/// Changes the board in the caller's transaction; returns the id of what the reply reads.
pub type ApiWriteFn =
    Box<dyn FnOnce(&mut TransactionMut<'_>) -> Result<String, ApiWriteError> + Send>;

/// Reads the reply (the target's JSON) from the document, given the id the write returned (or
/// the read's target).
pub type ApiReadFn = Box<dyn FnOnce(&Transaction<'_>, &str) -> Result<Value, ApiWriteError> + Send>;

/// Where the reply goes: the target's JSON once what the request wrote is stored.
pub type ApiReply = oneshot::Sender<Result<Value, ApiWriteError>>;

/// What the API asks of a room.
pub enum ApiRequest {
    /// Reads `target` with `read`.
    Read { target: String, read: ApiReadFn },
    /// Writes as `principal` (their role is judged, their user is the actor), then reads what
    /// the write names.
    Write {
        principal: Principal,
        /// Where the write comes from, as its change events say (`Api`; `Email` for mail).
        origin: crate::feed::Origin,
        write: ApiWriteFn,
        read: ApiReadFn,
    },
}

/// Why an API request to a room failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ApiWriteError {
    /// The policy refused the change for the caller's role (or it broke a stage invariant).
    #[error(transparent)]
    Refused(Refusal),
    /// A typed write refused it (a missing card or stage, a bad value, an invariant).
    #[error(transparent)]
    Board(#[from] BoardError),
    /// Fields of the request are wrong in a way only the document shows: (field, message).
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// The board's state forbids it (a stage that holds cards).
    #[error("{0}")]
    Conflict(String),
    /// What the request names is not on the board.
    #[error("{0}")]
    NotFound(String),
    #[error("the board is at its size limit ({max} bytes): nothing was written")]
    BoardFull { max: usize },
    #[error("storing the change failed; try again")]
    Storage,
}

impl ApiWriteError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiWriteError::Invalid(vec![(field.to_owned(), message.into())])
    }
}

impl Room {
    /// Takes an API request: a write is applied now (and refused at once if it may not be), the
    /// reply waits for the end of the turn ([`Room::answer_api`]).
    pub(super) fn api(&mut self, request: ApiRequest, reply: ApiReply) {
        match request {
            ApiRequest::Read { target, read } => self.api_replies.push((reply, read, target)),
            ApiRequest::Write {
                principal,
                origin: _,
                write,
                read,
            } => match self.state.apply_api_write(&principal, write) {
                Ok(target) => {
                    tracing::debug!(board = %self.state.board(), user = principal.user, target, "api write");
                    self.api_replies.push((reply, read, target));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
        }
    }

    /// Answers the turn's API requests, once its changes are stored (`stored`) or failed to be.
    pub(super) fn answer_api(&mut self, stored: bool) {
        if self.api_replies.is_empty() {
            return;
        }
        let doc = self.state.doc().clone();
        let txn = doc.transact();
        for (reply, read, target) in self.api_replies.drain(..) {
            let answer = if stored {
                read(&txn, &target)
            } else {
                Err(ApiWriteError::Storage)
            };
            let _ = reply.send(answer);
        }
    }
}
