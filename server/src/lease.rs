//! Who maintains a board's counters and avatars. Exactly one holder per board at a time: in
//! one process that is the board's room; in a cluster a distributed lease (with fencing) will
//! implement the same trait.

use funnel_protocol::BoardId;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub trait Leases: Send + Sync + 'static {
    /// The lease of `board`, if nobody holds it. It is released when the guard drops.
    fn try_acquire(&self, board: &BoardId) -> Option<LeaseGuard>;
}

/// Holds a board's lease; releases it on drop.
pub struct LeaseGuard {
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl LeaseGuard {
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self {
            release: Some(Box::new(release)),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// Leases within one process.
#[derive(Clone, Default)]
pub struct LocalLeases {
    held: Arc<Mutex<HashSet<BoardId>>>,
}

impl Leases for LocalLeases {
    fn try_acquire(&self, board: &BoardId) -> Option<LeaseGuard> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(board.clone()) {
            return None;
        }
        let all = Arc::clone(&self.held);
        let board = board.clone();
        Some(LeaseGuard::new(move || {
            all.lock().unwrap_or_else(|p| p.into_inner()).remove(&board);
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_board_until_it_lets_go() {
        let leases = LocalLeases::default();
        let a = BoardId::parse("a").unwrap();
        let first = leases.try_acquire(&a).unwrap();
        assert!(leases.try_acquire(&a).is_none());
        assert!(leases.try_acquire(&BoardId::parse("b").unwrap()).is_some());
        drop(first);
        assert!(leases.try_acquire(&a).is_some());
    }
}
