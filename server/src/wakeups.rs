//! The server's one timer structure for boards: when each board must next be woken up to
//! update its counters (a reminder). Rooms record their next instant here; the scheduler task
//! (`scheduler.rs`) sleeps until the earliest and wakes that board, loaded or not. One entry per
//! board, so its size is bounded by the number of boards, and no board is ever scanned.

use funnel_protocol::BoardId;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Wakeups {
    inner: Arc<Mutex<Timers>>,
    /// Signals the scheduler that the earliest instant may have moved.
    changed: Arc<Notify>,
}

#[derive(Default)]
struct Timers {
    /// The instant of each board; the heap may hold outdated entries, checked against this.
    at: HashMap<BoardId, i64>,
    heap: BinaryHeap<Reverse<(i64, BoardId)>>,
}

impl Wakeups {
    fn lock(&self) -> std::sync::MutexGuard<'_, Timers> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets (or with `None` clears) when `board` must next be woken up.
    pub fn set(&self, board: &BoardId, at: Option<i64>) {
        let mut timers = self.lock();
        match at {
            Some(at) => {
                if timers.at.insert(board.clone(), at) != Some(at) {
                    timers.heap.push(Reverse((at, board.clone())));
                    // Outdated heap entries are dropped lazily; rebuild if they pile up.
                    if timers.heap.len() > 2 * timers.at.len() + 64 {
                        let fresh = timers
                            .at
                            .iter()
                            .map(|(board, at)| Reverse((*at, board.clone())))
                            .collect();
                        timers.heap = fresh;
                    }
                }
            }
            None => {
                timers.at.remove(board);
            }
        }
        drop(timers);
        self.changed.notify_one();
    }

    /// How many boards have a wake-up pending.
    pub fn len(&self) -> usize {
        self.lock().at.len()
    }

    /// True when no board has a wake-up pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The earliest instant of any board.
    pub fn earliest(&self) -> Option<i64> {
        let mut timers = self.lock();
        timers.drop_outdated();
        timers.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes every board due at `now` (their entries are removed: a woken room records its next
    /// instant itself).
    pub fn take_due(&self, now: i64) -> Vec<BoardId> {
        let mut timers = self.lock();
        let mut due = Vec::new();
        loop {
            timers.drop_outdated();
            match timers.heap.peek() {
                Some(Reverse((at, _))) if *at <= now => {
                    if let Some(Reverse((_, board))) = timers.heap.pop() {
                        timers.at.remove(&board);
                        due.push(board);
                    }
                }
                _ => return due,
            }
        }
    }

    /// Resolves when [`Wakeups::set`] was called since the last time.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

impl Timers {
    fn drop_outdated(&mut self) {
        while let Some(Reverse((at, board))) = self.heap.peek() {
            if self.at.get(board) == Some(at) {
                return;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> BoardId {
        BoardId::parse(s).unwrap()
    }

    #[test]
    fn boards_come_due_in_order_and_a_new_instant_replaces_the_old() {
        let wakeups = Wakeups::default();
        wakeups.set(&id("a"), Some(30));
        wakeups.set(&id("b"), Some(10));
        wakeups.set(&id("c"), Some(20));
        wakeups.set(&id("b"), Some(40)); // b moved later
        wakeups.set(&id("c"), None); // c has nothing planned any more
        assert_eq!(wakeups.earliest(), Some(30));
        assert!(wakeups.take_due(29).is_empty());
        assert_eq!(wakeups.take_due(35), [id("a")]);
        assert_eq!(wakeups.take_due(100), [id("b")]);
        assert_eq!(wakeups.earliest(), None);
    }

    #[test]
    fn outdated_entries_do_not_pile_up() {
        let wakeups = Wakeups::default();
        for at in 0..10_000 {
            wakeups.set(&id("a"), Some(at));
        }
        // One live entry: the heap stays under the rebuild bound (2 × live + 64), plus one.
        assert!(wakeups.lock().heap.len() <= 2 + 64 + 1);
        assert_eq!(wakeups.take_due(i64::MAX), [id("a")]);
    }
}
