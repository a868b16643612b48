//! The room's side of its board's lease: the one owner of the lease a room holds, the attempt
//! to take it that runs beside the room, and the timer between attempts. The room task awaits
//! [`LeaseKeeper::next`] in its `select!` and hears only what changes its upkeep: the lease
//! was taken, or it was lost.
//!
//! Exactly one holder maintains a board's counters and avatars. In one process the lease is
//! only busy while a previous room of the board is still unloading, in a cluster while another
//! instance holds it: either way it is retried on a timer, every [`LEASE_RETRY_EVERY`].

use crate::lease::{Lease, Leases};
use funnel_protocol::BoardId;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often a room without the board's lease tries to take it: a board whose scheduler died
/// gets a new one within the lease's TTL plus this. Not after every batch: in a cluster that
/// would cost a Redis round trip per batch on every instance but the holder.
pub const LEASE_RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the room hears from its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The lease was taken: the room runs the board's upkeep, its writes fenced by
    /// [`LeaseKeeper::token`].
    Acquired,
    /// The lease was lost (it could not be renewed): the upkeep stops; the keeper retries.
    Lost,
}

/// A board's lease as one room holds it, or tries to.
pub struct LeaseKeeper {
    board: BoardId,
    leases: Arc<dyn Leases>,
    stage: Stage,
}

/// Where the keeper is; exactly one at a time.
enum Stage {
    /// Held: the upkeep runs, fenced by the lease's token. Dropping it releases the lease.
    Held(Lease),
    /// Not held; the next attempt starts at this instant.
    Waiting(Instant),
    /// An attempt runs beside the room: with Redis unreachable one can take a while (200 ms),
    /// which the board's clients must not wait for. The task owns nothing of the room's; if the
    /// keeper drops meanwhile, a lease it takes is dropped, hence released, with the task.
    Acquiring(JoinHandle<Option<Lease>>),
}

impl LeaseKeeper {
    /// The keeper of `board`'s lease. In one process the first attempt is made here (it
    /// answers at once, and the room then starts with its upkeep); in a cluster it starts at
    /// once but beside the room: Redis may be down.
    pub async fn start(board: BoardId, leases: Arc<dyn Leases>, clustered: bool) -> Self {
        let stage = if clustered {
            Stage::Waiting(Instant::now())
        } else {
            match leases.try_acquire(&board).await {
                Some(lease) => Stage::Held(lease),
                None => Stage::retry_later(),
            }
        };
        Self {
            board,
            leases,
            stage,
        }
    }

    /// The fencing token of the lease while it is held (the upkeep's appends carry it).
    pub fn token(&self) -> Option<u64> {
        match &self.stage {
            Stage::Held(lease) => Some(lease.token()),
            Stage::Waiting(_) | Stage::Acquiring(_) => None,
        }
    }

    /// Storage refused an append fenced by [`Self::token`]: a newer holder wrote, so this
    /// lease is worth nothing any more. It is dropped and taken again later.
    pub fn fenced_out(&mut self) {
        if let Stage::Held(_) = self.stage {
            self.stage = Stage::retry_later();
        }
    }

    /// The next change the room must act on. Attempts that find the lease busy are retried
    /// in here, unseen by the room.
    ///
    /// Cancel-safe: every await (the lease's loss, the retry's sleep, the attempt's task)
    /// leaves the stage as it was when cancelled, and each stage changes only after its await
    /// completed, with no await in between.
    pub async fn next(&mut self) -> LeaseEvent {
        loop {
            match &mut self.stage {
                Stage::Held(lease) => {
                    lease.lost().await;
                    tracing::warn!(board = %self.board, "lost the board's lease; its counters are left to the next holder");
                    self.stage = Stage::retry_later();
                    return LeaseEvent::Lost;
                }
                Stage::Waiting(at) => {
                    tokio::time::sleep_until(*at).await;
                    let (leases, board) = (Arc::clone(&self.leases), self.board.clone());
                    self.stage =
                        Stage::Acquiring(tokio::spawn(
                            async move { leases.try_acquire(&board).await },
                        ));
                }
                Stage::Acquiring(attempt) => {
                    // A panicked attempt counts as a busy lease: retried later.
                    let acquired = attempt.await.ok().flatten();
                    match acquired {
                        Some(lease) => {
                            tracing::debug!(board = %self.board, token = lease.token(), "took the board's lease");
                            self.stage = Stage::Held(lease);
                            return LeaseEvent::Acquired;
                        }
                        None => self.stage = Stage::retry_later(),
                    }
                }
            }
        }
    }
}

impl Stage {
    fn retry_later() -> Self {
        Stage::Waiting(Instant::now() + LEASE_RETRY_EVERY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::LocalLeases;

    fn board() -> BoardId {
        BoardId::parse("b").unwrap()
    }

    #[tokio::test]
    async fn one_process_holds_the_lease_from_the_start() {
        let keeper = LeaseKeeper::start(board(), Arc::new(LocalLeases::default()), false).await;
        assert!(keeper.token().is_some());
    }

    #[tokio::test]
    async fn a_busy_lease_is_taken_once_its_holder_lets_go() {
        let leases = LocalLeases::default();
        let holder = leases.try_acquire(&board()).await.unwrap();
        let mut keeper = LeaseKeeper::start(board(), Arc::new(leases), false).await;
        assert_eq!(keeper.token(), None);
        // Busy: retried every second without a word to the room.
        let past_one_retry = LEASE_RETRY_EVERY + Duration::from_millis(200);
        let quiet = tokio::time::timeout(past_one_retry, keeper.next()).await;
        assert!(quiet.is_err());
        let released = holder.token();
        drop(holder);
        assert_eq!(keeper.next().await, LeaseEvent::Acquired);
        assert!(keeper.token().is_some_and(|token| token > released));
    }

    /// Grants every attempt; each lease is held until the test flips its switch.
    #[derive(Default)]
    struct Switched {
        switches: std::sync::Mutex<Vec<tokio::sync::watch::Sender<bool>>>,
        tokens: std::sync::atomic::AtomicU64,
    }

    #[async_trait::async_trait]
    impl Leases for Switched {
        async fn try_acquire(&self, board: &BoardId) -> Option<Lease> {
            let (switch, held) = tokio::sync::watch::channel(true);
            self.switches.lock().unwrap().push(switch);
            let token = 1 + self
                .tokens
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(Lease::new(board.clone(), token, held, || {}))
        }
    }

    #[tokio::test]
    async fn a_lost_lease_is_reported_and_taken_again() {
        let leases = Arc::new(Switched::default());
        let mut keeper = LeaseKeeper::start(board(), Arc::clone(&leases) as _, true).await;
        assert_eq!(keeper.next().await, LeaseEvent::Acquired);
        assert_eq!(keeper.token(), Some(1));
        leases.switches.lock().unwrap()[0].send(false).unwrap();
        assert_eq!(keeper.next().await, LeaseEvent::Lost);
        assert_eq!(keeper.token(), None);
        let lost_at = Instant::now();
        assert_eq!(keeper.next().await, LeaseEvent::Acquired);
        assert!(lost_at.elapsed() >= LEASE_RETRY_EVERY);
        assert_eq!(keeper.token(), Some(2));
    }

    #[tokio::test]
    async fn a_cluster_room_takes_the_lease_beside_the_room_and_again_after_a_fence() {
        let mut keeper = LeaseKeeper::start(board(), Arc::new(LocalLeases::default()), true).await;
        assert_eq!(
            keeper.token(),
            None,
            "the first attempt runs beside the room"
        );
        assert_eq!(keeper.next().await, LeaseEvent::Acquired);
        let first = keeper.token().unwrap();
        keeper.fenced_out();
        assert_eq!(keeper.token(), None);
        let started = Instant::now();
        assert_eq!(keeper.next().await, LeaseEvent::Acquired);
        assert!(started.elapsed() >= LEASE_RETRY_EVERY);
        assert!(keeper.token().unwrap() > first);
    }
}
