//! When a quiet room lets go of its board and what wakes it (the task's part; the state's is in
//! `state/hibernation.rs`, and docs/storage.md, "Hibernation", says what keeps each guarantee).
//! The sweep hibernates a room after `RoomConfig::hibernate_after` with nothing that read or
//! wrote its board; every command, bus event and timer that needs the board calls
//! [`Room::wake_up`] first.

use super::{LoadError, Room, RoomCommand, state, stored_bytes};
use crate::bus::{BusEvent, BusPayload};
use funnel_protocol::wire::CloseCode;
use std::ops::ControlFlow;
use tokio::time::Instant;
use yrs::Doc;

impl Room {
    /// The sweep's check: a room that had nothing to do for its board for
    /// `config.hibernate_after` lets go of it (see `state/hibernation.rs`), unless something
    /// waits to be stored or delivered.
    pub(super) fn hibernate_if_quiet(&mut self) {
        let after = self.config.hibernate_after;
        if after.is_zero() || self.state.is_hibernating() || self.last_active.elapsed() < after {
            return;
        }
        if !self.timeline_replies.is_empty() || !self.api_replies.is_empty() {
            return;
        }
        if self.state.hibernate() {
            self.metrics.rooms_hibernating.inc();
            tracing::debug!(board = %self.state.board(), "room hibernates");
        }
    }

    /// Something reads or writes the board: a hibernating room takes it back from storage
    /// first, with what other instances stored meanwhile relayed to its members. Breaks, after
    /// closing everyone, when the board cannot be loaded.
    pub(super) async fn wake_up(&mut self) -> ControlFlow<()> {
        self.last_active = Instant::now();
        let Some(client_id) = self.state.hibernated_client_id() else {
            return ControlFlow::Continue(());
        };
        let board = self.state.board().clone();
        let loaded = match self.storage.load(&board).await {
            Ok(Some(stored)) => stored
                .apply_to(&board, Doc::with_client_id(client_id.get()))
                .map(|doc| (doc, stored_bytes(&stored), stored.last_seq()))
                .map_err(LoadError::from),
            Ok(None) => Err(LoadError::Vanished {
                board: board.clone(),
            }),
            Err(e) => Err(e.into()),
        };
        match loaded {
            Ok((doc, stored_bytes, last_seq)) => {
                self.state
                    .wake(doc, stored_bytes, last_seq > self.applied_seq);
                self.applied_seq = self.applied_seq.max(last_seq);
                self.metrics.rooms_hibernating.dec();
                self.metrics.room_wakes.inc();
                tracing::debug!(board = %board, "room woke");
                ControlFlow::Continue(())
            }
            Err(e) => {
                // Still hibernating: `run` counts it out as the room ends.
                tracing::error!(board = %board, error = %e, "reloading a hibernating board failed");
                self.state
                    .close_all(CloseCode::InternalError, "board reload failed; reconnect");
                ControlFlow::Break(())
            }
        }
    }

    /// The periodic catch-up of a hibernating room (cluster): it wakes only when the log holds
    /// entries it has not applied (a bus message it missed); otherwise it stays asleep.
    pub(super) async fn wake_if_behind(&mut self) -> ControlFlow<()> {
        let board = self.state.board().clone();
        match self.storage.load_since(&board, self.applied_seq).await {
            Ok(Some(stored)) if !stored.entries.is_empty() => self.wake_up().await,
            Ok(_) => ControlFlow::Continue(()),
            Err(e) => {
                tracing::warn!(board = %board, error = %e, "cannot catch up from storage; retrying later");
                ControlFlow::Continue(())
            }
        }
    }
}

/// Whether a command reads or writes the board (a hibernating room wakes for it). A leave and
/// presence do not.
pub(super) fn needs_board(command: &RoomCommand) -> bool {
    match command {
        RoomCommand::Message { message, .. } => state::needs_board(message),
        RoomCommand::Leave { .. } => false,
        RoomCommand::Join { .. }
        | RoomCommand::Wake
        | RoomCommand::Timeline { .. }
        | RoomCommand::Api { .. } => true,
    }
}

/// Whether what the bus brings needs the board: another instance's updates or a gap in them;
/// presence does not.
pub(super) fn bus_event_needs_board(event: &BusEvent) -> bool {
    match event {
        BusEvent::Gap => true,
        BusEvent::Message(message) => matches!(message.payload, BusPayload::Updates { .. }),
    }
}
