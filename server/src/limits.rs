//! Limits on what one client may cost the server: messages a second per connection (a token
//! bucket), open connections per user and per address (counted, released on drop), and
//! requests per caller (`CallerRate`: every API call, and timeline posts on their own), and the
//! backoff of an address whose client keeps sending what is refused (`RefusalBackoff`).
//! Frame and board sizes are enforced where they are known (the socket, the room).

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Timeline posts a caller may make a minute on average, and at once.
pub const TIMELINE_POSTS_PER_MINUTE: u32 = 60;
pub const TIMELINE_POSTS_BURST: u32 = 20;

/// Distinct callers remembered before the idle ones are forgotten.
const CALLER_RATE_KEYS: usize = 10_000;

/// A rate of requests per caller (a token's user, or an address without one), shared by every
/// request: the API's calls (`--api-rate`), and timeline posts on their own.
pub struct CallerRate {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl CallerRate {
    /// `per_minute` requests a minute on average, `burst` at once (both at least 1).
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
        }
    }

    /// Takes one request for `key`; over the rate, how long until the next one is allowed.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        if self.limiter.len() > CALLER_RATE_KEYS {
            self.limiter.retain_recent();
        }
        let key = key.to_owned();
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The wait after the second refusal that a reconnect cannot cure (a frame over the size
/// limit) from one address on one board; each further one doubles it, up to [`BACKOFF_MAX`].
/// The first refusal costs no wait: a current stock client stops at its 44xx, and others
/// behind the same address (an office's NAT) are not turned away for one mistake.
/// Longer than a refused client takes to see its close and come back (the server lingers up to
/// `connection::CLOSE_LINGER` after a frame over the limit), so its next attempt meets the wait.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Addresses and boards remembered at once; past it the forgotten ones are those whose wait
/// ended longest ago, so memory stays bounded under a spread of addresses.
const BACKOFF_KEYS: usize = 10_000;

/// Old y-websocket clients ignore a 44xx close and reconnect every ~100 ms, re-uploading the
/// same oversized update each time; every attempt would cost a join (a board load, a step 1,
/// the presence). After a second such refusal the address is turned away for that board before the
/// upgrade (HTTP 429 with `Retry-After`, which also grows the provider's own backoff, since
/// the socket never opens), for a wait that doubles with each refusal.
///
/// Not `governor`: its keyed limiter cannot be read without taking a cell, and what is wanted
/// here is a growing wait per strike, not a rate.
#[derive(Default)]
pub struct RefusalBackoff {
    strikes: Mutex<HashMap<(IpAddr, String), Strikes>>,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    until: Instant,
}

impl RefusalBackoff {
    /// Records a refusal of `address` on `board` at `now`; returns how long it now waits.
    pub fn strike(&self, address: IpAddr, board: &str, now: Instant) -> Duration {
        let mut strikes = self.strikes.lock().unwrap_or_else(|p| p.into_inner());
        if strikes.len() >= BACKOFF_KEYS {
            // Those whose wait and its memory have passed, then the ones that ended first.
            strikes.retain(|_, s| now < s.until + BACKOFF_MAX);
            while strikes.len() >= BACKOFF_KEYS {
                let Some(oldest) = strikes
                    .iter()
                    .min_by_key(|(_, s)| s.until)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                strikes.remove(&oldest);
            }
        }
        let entry = strikes
            .entry((address, board.to_owned()))
            .or_insert(Strikes {
                count: 0,
                until: now,
            });
        // A client that stayed away for a whole `BACKOFF_MAX` after its wait starts over.
        if now >= entry.until + BACKOFF_MAX {
            entry.count = 0;
        }
        let wait = match entry.count {
            0 => Duration::ZERO,
            n => BACKOFF_FIRST
                .saturating_mul(1u32 << (n - 1).min(16))
                .min(BACKOFF_MAX),
        };
        entry.count = entry.count.saturating_add(1);
        entry.until = now + wait;
        wait
    }

    /// Whether `address` may open `board` at `now`; if not, how long until it may.
    pub fn check(&self, address: IpAddr, board: &str, now: Instant) -> Result<(), Duration> {
        let strikes = self.strikes.lock().unwrap_or_else(|p| p.into_inner());
        match strikes.get(&(address, board.to_owned())) {
            Some(s) if now < s.until => Err(s.until - now),
            _ => Ok(()),
        }
    }
}

/// A token bucket: `rate` messages a second on average, `burst` at once.
#[derive(Debug)]
pub struct MessageBudget {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl MessageBudget {
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Gives back `messages` taken for updates that brought nothing new (see
    /// `Outbox::judged`), up to the burst.
    pub fn refund(&mut self, messages: usize) {
        if messages > 0 {
            self.tokens = (self.tokens + messages as f64).min(self.burst);
        }
    }

    /// Takes one message at `now`; false when the connection is over its budget.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open connections per user and per client address, shared by every connection.
#[derive(Clone, Default)]
pub struct ConnectionCounts {
    per_user: Counter<String>,
    per_address: Counter<IpAddr>,
}

/// What went over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverLimit {
    #[error("too many connections for this user (at most {0})")]
    User(usize),
    #[error("too many connections from this address (at most {0})")]
    Address(usize),
}

impl ConnectionCounts {
    /// Counts one more connection of `user` (None: local mode, not counted per user) from
    /// `address`, unless that takes either over its limit (0: no limit). The slot is released
    /// when dropped.
    pub fn admit(
        &self,
        user: Option<&str>,
        address: IpAddr,
        max_per_user: usize,
        max_per_address: usize,
    ) -> Result<ConnectionSlot, OverLimit> {
        let address_slot = self
            .per_address
            .admit(address, max_per_address)
            .ok_or(OverLimit::Address(max_per_address))?;
        let user_slot = match user {
            Some(user) => Some(
                self.per_user
                    .admit(user.to_owned(), max_per_user)
                    .ok_or(OverLimit::User(max_per_user))?,
            ),
            None => None,
        };
        Ok(ConnectionSlot {
            _address: address_slot,
            _user: user_slot,
        })
    }
}

/// One admitted connection; counted out on drop.
pub struct ConnectionSlot {
    _address: Slot<IpAddr>,
    _user: Option<Slot<String>>,
}

struct Counter<K: Eq + Hash>(Arc<Mutex<HashMap<K, usize>>>);

impl<K: Eq + Hash> Clone for Counter<K> {
    fn clone(&self) -> Self {
        Counter(Arc::clone(&self.0))
    }
}

impl<K: Eq + Hash> Default for Counter<K> {
    fn default() -> Self {
        Counter(Arc::default())
    }
}

impl<K: Eq + Hash + Clone> Counter<K> {
    fn admit(&self, key: K, max: usize) -> Option<Slot<K>> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // max ≥ 1 here whenever the entry stays at 0, so no empty entry is left behind.
        let count = counts.entry(key.clone()).or_insert(0);
        if max != 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            counter: self.clone(),
            key,
        })
    }
}

struct Slot<K: Eq + Hash> {
    counter: Counter<K>,
    key: K,
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counter.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// A wait as a `Retry-After` header says it: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_caller_rate_allows_a_burst_per_caller_then_says_how_long_to_wait() {
        let rate = CallerRate::new(60, 3);
        assert!((0..3).all(|_| rate.take("ann").is_ok()));
        let wait = rate.take("ann").unwrap_err();
        // One a second on average: the next one within a second.
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        assert!(
            rate.take("bob").is_ok(),
            "another caller has a budget of its own"
        );
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
    }

    #[test]
    fn the_budget_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(10, 5);
        assert!((0..5).all(|_| budget.take(start)));
        assert!(!budget.take(start));
        // 10 a second: one more after 100 ms.
        assert!(budget.take(start + Duration::from_millis(100)));
        assert!(!budget.take(start + Duration::from_millis(100)));
    }

    #[test]
    fn a_refund_gives_messages_back_up_to_the_burst() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(10, 5);
        assert!((0..5).all(|_| budget.take(start)));
        budget.refund(2);
        assert!(budget.take(start) && budget.take(start));
        assert!(!budget.take(start));
        budget.refund(100);
        assert_eq!((0..10).filter(|_| budget.take(start)).count(), 5);
    }

    #[test]
    fn a_refused_address_waits_longer_after_each_refusal_on_that_board_only() {
        let backoff = RefusalBackoff::default();
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        let start = Instant::now();
        assert_eq!(backoff.check(here, "b1", start), Ok(()));
        assert_eq!(
            backoff.strike(here, "b1", start),
            Duration::ZERO,
            "the first is free"
        );
        assert_eq!(backoff.check(here, "b1", start), Ok(()));
        assert_eq!(backoff.strike(here, "b1", start), BACKOFF_FIRST);
        assert_eq!(backoff.check(here, "b1", start), Err(BACKOFF_FIRST));
        assert_eq!(backoff.check(here, "b2", start), Ok(()), "another board");
        assert_eq!(backoff.check(there, "b1", start), Ok(()), "another address");
        let later = start + BACKOFF_FIRST;
        assert_eq!(backoff.check(here, "b1", later), Ok(()));
        assert_eq!(backoff.strike(here, "b1", later), BACKOFF_FIRST * 2);
        assert_eq!(backoff.strike(here, "b1", later), BACKOFF_FIRST * 4);
        for _ in 0..40 {
            backoff.strike(here, "b1", later);
        }
        assert_eq!(backoff.check(here, "b1", later), Err(BACKOFF_MAX));
        // Forgotten after staying away for a whole BACKOFF_MAX past the wait.
        let much_later = later + BACKOFF_MAX * 2;
        assert_eq!(backoff.strike(here, "b1", much_later), Duration::ZERO);
    }

    #[test]
    fn the_backoff_remembers_a_bounded_number_of_addresses() {
        let backoff = RefusalBackoff::default();
        let start = Instant::now();
        for i in 0..(BACKOFF_KEYS + 10) {
            let address = IpAddr::from(std::net::Ipv4Addr::from(i as u32));
            let at = start + Duration::from_millis(i as u64);
            backoff.strike(address, "b", at);
            backoff.strike(address, "b", at);
        }
        assert!(backoff.strikes.lock().unwrap().len() <= BACKOFF_KEYS);
        let last = IpAddr::from(std::net::Ipv4Addr::from((BACKOFF_KEYS + 9) as u32));
        assert!(
            backoff.check(last, "b", start).is_err(),
            "the newest is kept"
        );
    }

    #[test]
    fn connections_are_counted_per_user_and_address_and_released_on_drop() {
        let counts = ConnectionCounts::default();
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        let a = counts.admit(Some("ann"), here, 2, 3).unwrap();
        let _b = counts.admit(Some("ann"), there, 2, 3).unwrap();
        assert_eq!(
            counts.admit(Some("ann"), here, 2, 3).err(),
            Some(OverLimit::User(2))
        );
        let _c = counts.admit(Some("bob"), here, 2, 3).unwrap();
        let _d = counts.admit(None, here, 2, 3).unwrap();
        assert_eq!(
            counts.admit(None, here, 2, 3).err(),
            Some(OverLimit::Address(3))
        );
        drop(a);
        assert!(counts.admit(Some("ann"), there, 2, 0).is_ok());
        assert!(counts.admit(None, here, 0, 0).is_ok(), "0 is no limit");
    }
}
