//! A graceful stop that does not make every client reconnect at the same instant.
//!
//! On the stop signal, `/readyz` answers 503 at once, so load balancers stop sending new
//! clients here; after `--drain-delay` (the time they take to notice) the open sockets are
//! closed with 1012 in jittered waves spread over `--drain-window`, so their clients reconnect
//! to the other instances a few at a time instead of in one storm. Then the server stops as
//! before: rooms finish storing, storage closes. With both durations zero (the default, one
//! machine) the stop is immediate.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The drain's state, shared by `/readyz` and every connection.
#[derive(Clone, Debug)]
pub struct Drain {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Set when the stop signal came: readiness fails from then on.
    draining: AtomicBool,
    /// Cancelled when the waves start (after the delay), at `waves_at`.
    waves: CancellationToken,
    waves_at: std::sync::OnceLock<tokio::time::Instant>,
    window: Duration,
    /// Keyed at random per process, so each connection's place in the window is its own.
    spread: std::collections::hash_map::RandomState,
}

impl Drain {
    pub fn new(window: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                draining: AtomicBool::new(false),
                waves: CancellationToken::new(),
                waves_at: std::sync::OnceLock::new(),
                window,
                spread: std::collections::hash_map::RandomState::new(),
            }),
        }
    }

    /// True from the stop signal on: the instance takes no new clients.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// True once sockets are being closed: a new socket is closed at once.
    pub fn closing(&self) -> bool {
        self.inner.waves.is_cancelled()
    }

    /// Resolves at connection `key`'s turn to close: once the waves started, after its own
    /// offset within the window (uniform over the window, by a keyed hash of `key`). The
    /// instant is fixed, so a `select!` loop may make this future anew on every turn.
    pub async fn turn(&self, key: u64) {
        self.inner.waves.cancelled().await;
        let Some(start) = self.inner.waves_at.get() else {
            return;
        };
        let window = self.inner.window.as_nanos();
        if window > 0 {
            let offset = u128::from(self.inner.spread.hash_one(key)) % window;
            let offset = Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
            tokio::time::sleep_until(*start + offset).await;
        }
    }

    /// Waits for `signal`, then drains: readiness fails, `delay` passes, the waves run over the
    /// window, and `stop` (what every task of the server stops on) is cancelled.
    pub async fn follow(self, signal: CancellationToken, delay: Duration, stop: CancellationToken) {
        tokio::select! {
            () = signal.cancelled() => {}
            () = stop.cancelled() => return,
        }
        if delay.is_zero() && self.inner.window.is_zero() {
            stop.cancel();
            return;
        }
        self.inner.draining.store(true, Ordering::Relaxed);
        tracing::info!(
            delay = ?delay,
            window = ?self.inner.window,
            "draining: not ready from now on; sockets close in waves after the delay"
        );
        tokio::time::sleep(delay).await;
        tracing::info!("draining: closing sockets in waves");
        let _ = self.inner.waves_at.set(tokio::time::Instant::now());
        self.inner.waves.cancel();
        tokio::time::sleep(self.inner.window).await;
        stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_fall_within_the_window_and_spread_over_it() {
        let drain = Drain::new(Duration::from_secs(10));
        let signal = CancellationToken::new();
        let stop = CancellationToken::new();
        tokio::spawn(
            drain
                .clone()
                .follow(signal.clone(), Duration::from_secs(2), stop.clone()),
        );
        assert!(!drain.is_draining());
        signal.cancel();
        tokio::task::yield_now().await;
        assert!(drain.is_draining(), "readiness fails at the signal");
        assert!(!drain.closing(), "no socket closes during the delay");
        let start = tokio::time::Instant::now();
        let mut turns = Vec::new();
        for key in 0..200u64 {
            let drain = drain.clone();
            turns.push(tokio::spawn(async move {
                drain.turn(key).await;
                start.elapsed()
            }));
        }
        let mut at = Vec::new();
        for turn in turns {
            at.push(turn.await.unwrap());
        }
        assert!(at.iter().all(|t| *t >= Duration::from_secs(2)));
        assert!(at.iter().all(|t| *t < Duration::from_secs(12)));
        let first_half = at.iter().filter(|t| **t < Duration::from_secs(7)).count();
        assert!(
            (50..150).contains(&first_half),
            "turns spread over the window: {first_half} of 200 in its first half"
        );
        stop.cancelled().await;
        assert!(start.elapsed() >= Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn without_delay_or_window_the_stop_is_immediate() {
        let drain = Drain::new(Duration::ZERO);
        let signal = CancellationToken::new();
        let stop = CancellationToken::new();
        let follow = tokio::spawn(drain.clone().follow(
            signal.clone(),
            Duration::ZERO,
            stop.clone(),
        ));
        signal.cancel();
        follow.await.unwrap();
        assert!(stop.is_cancelled());
        assert!(!drain.is_draining());
    }
}
