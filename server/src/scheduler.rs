//! The scheduler task: sleeps until the earliest board wake-up in [`Wakeups`] and wakes that
//! board's room (loading it if nobody has it open), so that a reminder lights its counter and
//! moves its avatar at the right moment. Wake-ups are persisted by the rooms, and loaded here at
//! startup, so a restart before a reminder loses nothing.

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::room::RoomCommand;
use crate::rooms::Rooms;
use crate::wakeups::Wakeups;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest the scheduler sleeps at once: it re-reads the wall clock at least this often, so
/// a clock that jumps (NTP, a suspended host) delays a reminder by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(60);

pub async fn run(
    wakeups: Wakeups,
    rooms: Rooms,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    loop {
        let now = clock.now_ms();
        for board in wakeups.take_due(now) {
            metrics.scheduler_wakeups.inc();
            tracing::debug!(board = %board, "waking a board for its reminders");
            let room = rooms.get_or_spawn(&board);
            // A room that is unloading right now refuses it; the next room of the board
            // recomputes everything at load anyway.
            let _ = room.send(RoomCommand::Wake).await;
        }
        let sleep = wakeups
            .earliest()
            .map(|at| Duration::from_millis(at.saturating_sub(clock.now_ms()).max(0) as u64))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wakeups.changed() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}
