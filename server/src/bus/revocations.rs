//! Revocations across the cluster: a person disabled, a role lowered, a sign-out or a board
//! archived closes the matching sockets on every instance, not only on the one that served the
//! request (docs/accounts.md, "Closing sockets").
//!
//! The instance that revokes closes its own sockets at once and publishes the revocation on one
//! bus channel ([`CHANNEL_BOARD`]'s); every instance subscribes to it at start ([`subscribe`])
//! and hands what it hears to its own connections ([`listen`]). Redis pub/sub may lose a
//! message while an instance is cut off: storage still refuses the ended session at its next
//! request, and the instance logs the gap.

use super::{Bus, BusEvent, BusPayload, Subscription};
use crate::auth::Revocations;
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
