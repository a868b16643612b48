//! The registry of loaded rooms: hands out a board's room, creating it atomically, so that two
//! first joins never load two copies of one document. A room leaves it through its
//! [`room::Registration`], so the room never names the registry.

use crate::room::{self, ROOM_QUEUE, Registration, RoomCommand, RoomContext};
use funnel_protocol::BoardId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

struct Loaded {
    generation: u64,
    tx: mpsc::Sender<RoomCommand>,
}

#[derive(Clone)]
pub struct Rooms {
    /// Senders of the loaded rooms' command channels; each room task holds the receiver and
    /// removes its own entry when it unloads. Held only for map operations, never across an await.
    loaded: Arc<Mutex<HashMap<BoardId, Loaded>>>,
    /// Tells one room task of a board from the next one.
    generations: Arc<AtomicU64>,
    ctx: RoomContext,
    tracker: TaskTracker,
}

impl Rooms {
    pub fn new(ctx: RoomContext, tracker: TaskTracker) -> Self {
        Self {
            loaded: Arc::default(),
            generations: Arc::default(),
            ctx,
            tracker,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BoardId, Loaded>> {
        // The map stays consistent even if a holder panicked: every operation is one insert or
        // one remove.
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sender of `board`'s room, spawning the room if it is not loaded.
    pub fn get_or_spawn(&self, board: &BoardId) -> mpsc::Sender<RoomCommand> {
        let mut loaded = self.lock();
        if let Some(room) = loaded.get(board)
            && !room.tx.is_closed()
        {
            return room.tx.clone();
        }
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        loaded.insert(
            board.clone(),
            Loaded {
                generation,
                tx: tx.clone(),
            },
        );
        let span = tracing::info_span!("room", board = %board);
        self.tracker.spawn(
            room::run(
                board.clone(),
                rx,
                Registered {
                    rooms: self.clone(),
                    board: board.clone(),
                    generation,
                },
                self.ctx.clone(),
            )
            .instrument(span),
        );
        tx
    }

    /// How many rooms are loaded.
    pub fn loaded_count(&self) -> usize {
        self.lock().len()
    }
}

/// A room task's place in the registry: its board's entry, as long as it has this
/// `generation` (a later room of the board has another).
struct Registered {
    rooms: Rooms,
    board: BoardId,
    generation: u64,
}

impl Registration for Registered {
    fn leave(
        &self,
        rx: &mut mpsc::Receiver<RoomCommand>,
        may_go: fn(&mpsc::Receiver<RoomCommand>) -> bool,
    ) -> bool {
        let mut loaded = self.rooms.lock();
        let ours = loaded
            .get(&self.board)
            .is_some_and(|room| room.generation == self.generation);
        if !may_go(rx) {
            return false;
        }
        if ours {
            loaded.remove(&self.board);
        }
        // Refuse new commands from handles given out before the removal.
        rx.close();
        true
    }
}
