//! Revocations across the cluster: a person disabled, a role lowered or changed, a sign-out or
//! a board archived closes the matching sockets on every instance, not only on the one that served the
//! request (docs/accounts.md, "Closing sockets").
//!
//! The instance that revokes closes its own sockets at once and publishes the revocation on one
//! bus channel ([`CHANNEL_BOARD`]'s); every instance subscribes to it at start ([`subscribe`])
//! and hands what it hears to its own connections ([`listen`]). Redis pub/sub may lose a
//! message while an instance is cut off: storage still refuses the ended session at its next
//! request, and the instance logs the gap.

use super::{
    Bus, BusEvent, BusPayload, DecodeError, Subscription, put_varint, take_bytes, take_len, take_u8,
};
use crate::auth::{Revocation, Revocations};
use bytes::{BufMut, Bytes, BytesMut};
use funnel_protocol::BoardId;
use tokio_util::sync::CancellationToken;

/// The id whose bus channel carries revocations (`funnel:board:_funnel_revocations` on Redis).
/// It is a valid board id, so that the bus needs no second kind of channel; a board that took
/// it would share the channel harmlessly: its rooms skip revocations, [`listen`] skips updates.
pub const CHANNEL_BOARD: &str = "_funnel_revocations";

/// [`CHANNEL_BOARD`] as the bus names channels.
pub fn channel() -> BoardId {
    // A constant made of letters and underscores: always a valid id.
    BoardId::parse(CHANNEL_BOARD).unwrap_or_else(|_| unreachable!("{CHANNEL_BOARD} is valid"))
}

const REVOKE_DISABLED: u8 = 1;
const REVOKE_ROLE_LOWERED: u8 = 2;
const REVOKE_SESSION_ENDED: u8 = 3;
const REVOKE_BOARD_REOPENED: u8 = 4;
const REVOKE_ROLE_CHANGED: u8 = 5;

/// Subscribes to the revocations of the other instances: call it before serving, so that none
/// sent after the server is up is missed.
pub async fn subscribe(bus: &dyn Bus) -> Subscription {
    bus.subscribe(&channel()).await
}

/// Hands every revocation another instance publishes to this instance's connections, until
/// `shutdown`.
pub async fn listen(
    mut subscription: Subscription,
    revocations: Revocations,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = subscription.recv() => event,
        };
        match event {
            None => return,
            Some(BusEvent::Message(message)) => match message.payload {
                BusPayload::Revocation(revocation) => {
                    tracing::debug!(from = %message.origin, ?revocation, "revocation from another instance");
                    revocations.close_here(revocation);
                }
                // A board that took the channel's id (see `CHANNEL_BOARD`): not ours.
                BusPayload::Updates { .. } | BusPayload::Awareness(_) => {}
            },
            Some(BusEvent::Gap) => tracing::warn!(
                "revocations from other instances may have been missed (the bus was down or \
                 behind): sockets of sessions ended meanwhile stay open until they reconnect"
            ),
        }
    }
}

fn put_text(out: &mut BytesMut, text: &str) {
    put_varint(out, text.len() as u64);
    out.put_slice(text.as_bytes());
}

/// A revocation's part of a bus message (the layout is in `bus::encode`'s doc).
pub(super) fn put(out: &mut BytesMut, revocation: &Revocation) {
    match revocation {
        Revocation::Disabled { user } => {
            out.put_u8(REVOKE_DISABLED);
            put_text(out, user);
        }
        Revocation::RoleLowered { user, board } => {
            out.put_u8(REVOKE_ROLE_LOWERED);
            put_role_of(out, user, board.as_ref());
        }
        Revocation::RoleChanged { user, board } => {
            out.put_u8(REVOKE_ROLE_CHANGED);
            put_role_of(out, user, board.as_ref());
        }
        Revocation::SessionEnded { session } => {
            out.put_u8(REVOKE_SESSION_ENDED);
            put_text(out, session);
        }
        Revocation::BoardReopened { board } => {
            out.put_u8(REVOKE_BOARD_REOPENED);
            put_text(out, board.as_str());
        }
    }
}

/// A person and the board of their role (`None`: the default one).
fn put_role_of(out: &mut BytesMut, user: &str, board: Option<&BoardId>) {
    put_text(out, user);
    match board {
        Some(board) => {
            out.put_u8(1);
            put_text(out, board.as_str());
        }
        None => out.put_u8(0),
    }
}

/// What [`put_role_of`] wrote.
fn take_role_of(buf: &mut Bytes) -> Result<(String, Option<BoardId>), DecodeError> {
    let user = take_text(buf)?;
    let board = match take_u8(buf)? {
        0 => None,
        1 => Some(take_board(buf)?),
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok((user, board))
}

fn take_text(buf: &mut Bytes) -> Result<String, DecodeError> {
    let len = take_len(buf)?;
    let bytes = take_bytes(buf, len)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadText)
}

fn take_board(buf: &mut Bytes) -> Result<BoardId, DecodeError> {
    BoardId::parse(&take_text(buf)?).map_err(|_| DecodeError::BadBoard)
}

/// The revocation [`put`] wrote; never panics on any input.
pub(super) fn take(buf: &mut Bytes) -> Result<Revocation, DecodeError> {
    Ok(match take_u8(buf)? {
        REVOKE_DISABLED => Revocation::Disabled {
            user: take_text(buf)?,
        },
        REVOKE_ROLE_LOWERED => {
            let (user, board) = take_role_of(buf)?;
            Revocation::RoleLowered { user, board }
        }
        REVOKE_ROLE_CHANGED => {
            let (user, board) = take_role_of(buf)?;
            Revocation::RoleChanged { user, board }
        }
        REVOKE_SESSION_ENDED => Revocation::SessionEnded {
            session: std::sync::Arc::from(take_text(buf)?.as_str()),
        },
        REVOKE_BOARD_REOPENED => Revocation::BoardReopened {
            board: take_board(buf)?,
        },
        other => return Err(DecodeError::UnknownKind(other)),
    })
}
