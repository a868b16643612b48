//! Who maintains a board's counters and avatars (its scheduler). Exactly one holder per board at
//! a time: in one process that is the board's room ([`LocalLeases`]); in a cluster, the room of
//! the instance that holds the board's distributed lease ([`redis::RedisLeases`]).
//!
//! Every lease carries a fencing token, strictly increasing per board. A holder can lose its
//! lease without knowing at once (a pause, a partition); it then stops writing when
//! [`Lease::is_held`] turns false, and storage refuses appends whose token is lower than one it
//! has already seen for the board, so a holder that wakes up late cannot overwrite the work of
//! the next one.
//!
//! Modules: [`redis`] (the distributed lease).

pub mod redis;

use async_trait::async_trait;
use funnel_protocol::BoardId;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// The lease of `board`, if nobody holds it (`None` also when the lease service cannot be
    /// reached: the caller retries later). It is released when the [`Lease`] drops.
    async fn try_acquire(&self, board: &BoardId) -> Option<Lease>;
}

/// A held lease of one board. Dropping it releases it (best effort for a distributed lease: if
/// the release does not reach the service, the lease expires after its TTL).
pub struct Lease {
    board: BoardId,
    token: u64,
    /// True while the lease is held; the holder's renewal task owns the sending end (for a local
    /// lease, the release closure does). A dropped sender counts as lost.
    held: watch::Receiver<bool>,
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Lease {
    /// A lease of `board` with fencing `token`, held while `held` is true; `release` runs on
    /// drop.
    pub fn new(
        board: BoardId,
        token: u64,
        held: watch::Receiver<bool>,
        release: impl FnOnce() + Send + Sync + 'static,
    ) -> Self {
        Self {
            board,
            token,
            held,
            release: Some(Box::new(release)),
        }
    }

    pub fn board(&self) -> &BoardId {
        &self.board
    }

    /// The fencing token: pass it with every write made under this lease
    /// (`Storage::append_fenced`).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Whether the lease is still held. Once false it stays false: stop writing, drop the
    /// lease and acquire again.
    pub fn is_held(&self) -> bool {
        *self.held.borrow() && self.held.has_changed().is_ok()
    }

    /// Resolves when the lease is lost (at once if it already is). Cancel-safe.
    pub async fn lost(&self) {
        let mut held = self.held.clone();
        let _ = held.wait_for(|held| !*held).await;
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("board", &self.board)
            .field("token", &self.token)
            .field("held", &self.is_held())
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// Leases within one process: never lost while held. Tokens come from one counter that starts
/// at the wall-clock time in milliseconds, so they also increase across restarts (a fenced
/// storage keeps accepting a restarted single instance), as long as fewer than one lease per
/// millisecond is taken on average.
#[derive(Clone)]
pub struct LocalLeases {
    held: Arc<Mutex<HashSet<BoardId>>>,
    next_token: Arc<AtomicU64>,
}

impl Default for LocalLeases {
    fn default() -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        Self {
            held: Arc::default(),
            next_token: Arc::new(AtomicU64::new(now_ms.max(1))),
        }
    }
}

impl LocalLeases {
    fn acquire(&self, board: &BoardId) -> Option<Lease> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(board.clone()) {
            return None;
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (still_held, held_rx) = watch::channel(true);
        let all = Arc::clone(&self.held);
        let key = board.clone();
        Some(Lease::new(board.clone(), token, held_rx, move || {
            // The sender lives as long as the lease: a local lease is never lost.
            drop(still_held);
            all.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        }))
    }
}

#[async_trait]
impl Leases for LocalLeases {
    async fn try_acquire(&self, board: &BoardId) -> Option<Lease> {
        self.acquire(board)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_board_until_it_lets_go() {
        let leases = LocalLeases::default();
        let a = BoardId::parse("a").unwrap();
        let first = leases.try_acquire(&a).await.unwrap();
        assert!(first.is_held());
        assert!(leases.try_acquire(&a).await.is_none());
        let other = leases.try_acquire(&BoardId::parse("b").unwrap()).await;
        assert!(other.is_some());
        let first_token = first.token();
        drop(first);
        let again = leases.try_acquire(&a).await.unwrap();
        assert!(again.token() > first_token);
        assert!(again.is_held());
    }

    #[tokio::test]
    async fn a_local_lease_is_never_lost_while_held() {
        let leases = LocalLeases::default();
        let lease = leases
            .try_acquire(&BoardId::parse("a").unwrap())
            .await
            .unwrap();
        let lost = tokio::time::timeout(std::time::Duration::from_millis(50), lease.lost()).await;
        assert!(lost.is_err());
        assert!(lease.is_held());
    }
}
