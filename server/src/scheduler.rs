//! The scheduler task: sleeps until the earliest board wake-up in [`Wakeups`] and wakes that
//! board's room (loading it if nobody has it open), so that a reminder lights its counter and
//! moves its avatar at the right moment. Wake-ups are persisted by the rooms, and loaded here at
//! startup, so a restart before a reminder loses nothing.
//!
//! In a cluster a board's wake-ups are recorded by the instance that holds its lease. When that
//! instance dies, the others [take over](Takeover) what it left overdue in storage.

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::room::RoomCommand;
use crate::rooms::Rooms;
use crate::storage::Storage;
use crate::wakeups::Wakeups;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest the scheduler sleeps at once: it re-reads the wall clock at least this often, so
/// a clock that jumps (NTP, a suspended host) delays a reminder by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How a cluster instance takes over the wake-ups of an instance that died: every `every` it
/// reads the recorded wake-ups and wakes the boards whose wake-up is overdue by more than
/// `grace`. A live holder records a board's next wake-up right after it ran the upkeep, so a
/// wake-up that stays in storage past its time is one nobody runs: its room is then loaded here,
/// takes the lease (once the dead holder's expired) and fires the reminder. Both derive from the
/// lease TTL: `every` = 3 × TTL (30 s by default: one read of the wake-ups per instance), `grace`
/// = 2 × TTL (the dead holder's lease expires within one TTL).
#[derive(Clone)]
pub struct Takeover {
    pub storage: Arc<dyn Storage>,
    pub every: Duration,
    pub grace: Duration,
}

impl Takeover {
    pub fn for_lease_ttl(storage: Arc<dyn Storage>, ttl: Duration) -> Self {
        Self {
            storage,
            every: ttl * 3,
            grace: ttl * 2,
        }
    }

    /// The boards whose recorded wake-up is overdue by more than `grace` at `now`.
    async fn overdue(&self, now: i64) -> Vec<funnel_protocol::BoardId> {
        let grace = self.grace.as_millis() as i64;
        match self.storage.wakeups().await {
            Ok(recorded) => recorded
                .into_iter()
                .filter(|(_, at)| at.saturating_add(grace) < now)
                .map(|(board, _)| board)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the recorded wake-ups; retrying later");
                Vec::new()
            }
        }
    }
}

pub async fn run(
    wakeups: Wakeups,
    rooms: Rooms,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    shutdown: CancellationToken,
    takeover: Option<Takeover>,
) {
    let mut takeover_at = takeover
        .as_ref()
        .map(|t| tokio::time::Instant::now() + t.every);
    loop {
        if let (Some(takeover), Some(at)) = (&takeover, takeover_at)
            && at <= tokio::time::Instant::now()
        {
            for board in takeover.overdue(clock.now_ms()).await {
                metrics.scheduler_wakeups.inc();
                tracing::info!(board = %board, "waking a board whose wake-up is overdue (its scheduler's instance is gone?)");
                let _ = rooms.get_or_spawn(&board).send(RoomCommand::Wake).await;
            }
            takeover_at = Some(tokio::time::Instant::now() + takeover.every);
        }
        let now = clock.now_ms();
        if let Some(due) = wakeups.earliest().filter(|at| *at <= now) {
            metrics.scheduler_late_ms.set(now - due);
        }
        for board in wakeups.take_due(now) {
            metrics.scheduler_wakeups.inc();
            tracing::debug!(board = %board, "waking a board for its reminders");
            let room = rooms.get_or_spawn(&board);
            // A room that is unloading right now refuses it; the next room of the board
            // recomputes everything at load anyway.
            let _ = room.send(RoomCommand::Wake).await;
        }
        metrics
            .scheduler_queue
            .set(i64::try_from(wakeups.len()).unwrap_or(i64::MAX));
        let sleep = wakeups
            .earliest()
            .map(|at| Duration::from_millis(at.saturating_sub(clock.now_ms()).max(0) as u64))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        let sleep = match takeover_at {
            Some(at) => sleep.min(at.saturating_duration_since(tokio::time::Instant::now())),
            None => sleep,
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wakeups.changed() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}
