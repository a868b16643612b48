//! The distributed lease: exactly one instance of the cluster runs a board's scheduler, and its
//! writes carry a fencing token.
//!
//! Keys, per board: `funnel:lease:{board}` holds `"<instance>:<token>"` with a TTL
//! ([`LEASE_TTL`]); `funnel:lease:{board}:fence` is the token counter, never expiring.
//! - Acquire (one script, so atomic): if the lease key is free, `INCR` the counter and
//!   `SET key "<instance>:<token>" NX PX ttl`. Atomic on purpose: with `INCR` then `SET NX` as
//!   two commands, a slow acquirer could take the lease after a faster one with a *higher* token
//!   already held and released it, and then every write of the slow one would be refused.
//!   The counter never goes below the wall-clock time in milliseconds (the script raises it), so
//!   tokens keep increasing even if Redis loses its data (a restart without persistence).
//! - Renew every ttl/3 with a script that extends the TTL only if the value is still ours; a
//!   failed attempt is retried every ttl/10.
//! - Release (on drop) with a compare-and-delete script; best effort, the TTL covers a failure.
//!
//! The holder considers the lease lost when a renewal answers that the key is no longer ours,
//! or when its local deadline passes first: the send time of the last successful renewal + ttl
//! − [a safety margin](safety_margin). Measured from the send time, so the deadline falls before
//! the key can expire in Redis, and the holder stops writing before another instance can
//! acquire.
//!
//! Why a paused process (a long GC-like stall, a frozen VM, a partition) still cannot write
//! after losing the lease: it may wake up believing it holds the lease and send a write before
//! it looks at its deadline. But once its key expired, the next holder got a strictly higher
//! token, and storage (`Storage::append_fenced`) records the highest token it has seen per board
//! and refuses an append with a lower one. The stale holder's write is refused; it then drops
//! its lease. The deadline keeps the normal case clean; the fence makes the rare one safe.

use super::{Lease, Leases};
use crate::bus::InstanceId;
use async_trait::async_trait;
use funnel_protocol::BoardId;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a lease lives without renewal. A crashed holder's boards go without a scheduler
/// for at most this long (reminders are minute-grained, so 10 s is invisible to users), while a
/// holder gets about two renewal attempts (every ttl/3, retried every ttl/10 up to its deadline)
/// through a Redis failover or a network blip of a few seconds before it gives the lease up.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

/// How long, after finding a board's lease held by another instance (or Redis unreachable),
/// [`RedisLeases`] answers `None` again without asking Redis: the room retries after every
/// batch, and a busy board must not cost a Redis round trip per batch on every other instance.
pub const RETRY_BUSY_AFTER: Duration = Duration::from_secs(1);

/// The part of the TTL the holder gives up early: covers the time between sending a renewal
/// and Redis executing it being counted twice, timer lateness in this process, and Redis's
/// expiry precision (1 ms). A fifth of the TTL (2 s of 10 s) is generous for all three.
pub fn safety_margin(ttl: Duration) -> Duration {
    ttl / 5
}

const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Least time between two attempts to open the lease connection.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// How long `acquire` waits for the connection to open: Redis on a sane network answers in a
/// millisecond, and a room asking for a lease must not stall on an unreachable one.
const ACQUIRE_CONNECT_WAIT: Duration = Duration::from_millis(200);
/// How long a release on drop may take before it is left to the TTL.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// KEYS: lease, fence. ARGV: instance, ttl ms, token floor (wall-clock ms). Returns the token,
/// or 0 when the lease is held.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local token = redis.call('INCR', KEYS[2])
        local floor = tonumber(ARGV[3])
        if token < floor then
            redis.call('SET', KEYS[2], ARGV[3])
            token = floor
        end
        redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', token), 'NX', 'PX', ARGV[2])
        return token
        ",
    )
});

/// KEYS: lease. ARGV: our value, ttl ms. Returns 1 when extended, 0 when the key is not ours.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        ",
    )
});

/// KEYS: lease. ARGV: our value. Deletes the key only if it is still ours.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
        end
        return 0
        ",
    )
});

/// The lease key of a board.
pub fn lease_key(board: &BoardId) -> String {
    format!("funnel:lease:{board}")
}

/// The fencing-token counter of a board.
pub fn fence_key(board: &BoardId) -> String {
    format!("funnel:lease:{board}:fence")
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("invalid redis url: {0}; use redis://host:port/")]
    Url(#[source] redis::RedisError),
    #[error("redis lease service: {0}; check that redis is reachable")]
    Redis(#[from] redis::RedisError),
    #[error("not connected to redis; retrying in the background")]
    NotConnected,
}

/// Distributed leases over Redis. Create it inside a tokio runtime.
#[derive(Clone)]
pub struct RedisLeases {
    inner: Arc<Inner>,
}

struct Inner {
    instance: InstanceId,
    ttl: Duration,
    retry_busy_after: Duration,
    connection: Arc<LazyConnection>,
    /// When each board was last found held by another instance.
    busy: Mutex<HashMap<BoardId, Instant>>,
}

/// The timings of [`RedisLeases`]; the defaults are [`LEASE_TTL`] and [`RETRY_BUSY_AFTER`]
/// (tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct LeaseTimings {
    pub ttl: Duration,
    pub retry_busy_after: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        Self {
            ttl: LEASE_TTL,
            retry_busy_after: RETRY_BUSY_AFTER,
        }
    }
}

impl RedisLeases {
    /// Leases on `url` for `instance` (the process's id, as on the bus). Connects on first use,
    /// and again after a connection error.
    pub fn new(url: &str, instance: InstanceId, timings: LeaseTimings) -> Result<Self, LeaseError> {
        let client = redis::Client::open(url).map_err(LeaseError::Url)?;
        Ok(Self {
            inner: Arc::new(Inner {
                instance,
                ttl: timings.ttl,
                retry_busy_after: timings.retry_busy_after,
                connection: Arc::new(LazyConnection::new(
                    client,
                    format!("funnel-lease-{instance}"),
                )),
                busy: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The `CLIENT SETNAME` of this client's connection.
    pub fn connection_name(&self) -> &str {
        &self.inner.connection.name
    }

    /// The lease of `board` if it is free (`Ok(None)` when another instance holds it).
    pub async fn acquire(&self, board: &BoardId) -> Result<Option<Lease>, LeaseError> {
        let inner = &self.inner;
        if let Some(at) = inner.lock_busy().get(board)
            && at.elapsed() < inner.retry_busy_after
        {
            return Ok(None);
        }
        let (generation, mut conn) = match inner.connection.get(ACQUIRE_CONNECT_WAIT).await {
            Ok(connected) => connected,
            Err(e) => {
                inner.lock_busy().insert(board.clone(), Instant::now());
                return Err(e);
            }
        };
        let floor = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let sent = Instant::now();
        let token: u64 = match ACQUIRE
            .key(lease_key(board))
            .key(fence_key(board))
            .arg(inner.instance.to_string())
            .arg(inner.ttl.as_millis() as u64)
            .arg(floor)
            .invoke_async(&mut conn)
            .await
        {
            Ok(token) => token,
            Err(e) => {
                inner.connection.forget(generation);
                inner.lock_busy().insert(board.clone(), Instant::now());
                return Err(e.into());
            }
        };
        if token == 0 {
            inner.lock_busy().insert(board.clone(), Instant::now());
            return Ok(None);
        }
        inner.lock_busy().remove(board);
        let (held, held_rx) = watch::channel(true);
        let stop = CancellationToken::new();
        let value = format!("{}:{token}", inner.instance);
        tokio::spawn(keep_renewed(
            Arc::clone(inner),
            board.clone(),
            value,
            sent,
            held,
            stop.clone(),
        ));
        tracing::debug!(board = %board, token, "lease acquired");
        Ok(Some(Lease::new(board.clone(), token, held_rx, move || {
            stop.cancel()
        })))
    }
}

#[async_trait]
impl Leases for RedisLeases {
    async fn try_acquire(&self, board: &BoardId) -> Option<Lease> {
        match self.acquire(board).await {
            Ok(lease) => lease,
            Err(e) => {
                // The room retries after its next batch; the bus logs Redis outages at warn.
                tracing::debug!(board = %board, error = %e, "cannot acquire the board's lease");
                None
            }
        }
    }
}

impl Inner {
    fn lock_busy(&self) -> std::sync::MutexGuard<'_, HashMap<BoardId, Instant>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The renewal task of one held lease: renews until stopped (the lease dropped: release) or
/// lost (then `held` turns false).
async fn keep_renewed(
    inner: Arc<Inner>,
    board: BoardId,
    value: String,
    mut last_renewal_sent: Instant,
    held: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let ttl = inner.ttl;
    let lifetime = ttl.saturating_sub(safety_margin(ttl));
    let mut next_attempt = last_renewal_sent + ttl / 3;
    let lost_because = loop {
        let deadline = last_renewal_sent + lifetime;
        tokio::select! {
            () = stop.cancelled() => {
                release(&inner, &board, &value).await;
                return;
            }
            () = tokio::time::sleep_until(deadline) => break "no renewal succeeded before the deadline",
            () = tokio::time::sleep_until(next_attempt) => {}
        }
        let sent = Instant::now();
        let attempt = async {
            let (generation, mut conn) = inner.connection.get(RESPONSE_TIMEOUT).await?;
            let renewed = RENEW
                .key(lease_key(&board))
                .arg(&value)
                .arg(ttl.as_millis() as u64)
                .invoke_async::<i64>(&mut conn)
                .await;
            if renewed.is_err() {
                inner.connection.forget(generation);
            }
            Ok::<_, LeaseError>(renewed?)
        };
        let outcome = tokio::select! {
            () = stop.cancelled() => {
                release(&inner, &board, &value).await;
                return;
            }
            outcome = tokio::time::timeout_at(deadline, attempt) => outcome,
        };
        match outcome {
            Ok(Ok(1)) => {
                last_renewal_sent = sent;
                next_attempt = sent + ttl / 3;
            }
            Ok(Ok(_)) => break "the lease expired or another instance holds it",
            Ok(Err(e)) => {
                tracing::debug!(board = %board, error = %e, "lease renewal failed; retrying");
                next_attempt = Instant::now() + ttl / 10;
            }
            Err(_) => break "no renewal succeeded before the deadline",
        }
    };
    held.send_replace(false);
    tracing::warn!(board = %board, reason = lost_because,
        "board lease lost: this instance stops running the board's scheduler");
    // If the key is still ours (Redis answers again), free it for the next holder now.
    release(&inner, &board, &value).await;
}

async fn release(inner: &Inner, board: &BoardId, value: &str) {
    let attempt = async {
        let (generation, mut conn) = inner.connection.get(RESPONSE_TIMEOUT).await?;
        let released = RELEASE
            .key(lease_key(board))
            .arg(value)
            .invoke_async::<i64>(&mut conn)
            .await;
        if released.is_err() {
            inner.connection.forget(generation);
        }
        Ok::<_, LeaseError>(released?)
    };
    match tokio::time::timeout(RELEASE_TIMEOUT, attempt).await {
        Ok(Ok(_)) => tracing::debug!(board = %board, "lease released"),
        Ok(Err(e)) => {
            tracing::debug!(board = %board, error = %e, "lease release failed; it expires")
        }
        Err(_) => tracing::debug!(board = %board, "lease release timed out; it expires"),
    }
}

/// One connection shared by every lease of the process. It is opened by a background task, on
/// first use and again after an error (at most once per [`RECONNECT_AFTER`]); a caller waits for
/// it only briefly, so a room asking for a lease while Redis is unreachable is not held up.
struct LazyConnection {
    client: redis::Client,
    name: String,
    state: Mutex<ConnectionState>,
    /// Signalled (to every waiter) when a connection attempt ends.
    attempted: Notify,
}

#[derive(Default)]
struct ConnectionState {
    /// The open connection and its generation (so that a failure on an old one does not drop a
    /// newer one).
    current: Option<(u64, MultiplexedConnection)>,
    connecting: bool,
    last_attempt: Option<Instant>,
    generation: u64,
}

impl LazyConnection {
    fn new(client: redis::Client, name: String) -> Self {
        Self {
            client,
            name,
            state: Mutex::default(),
            attempted: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnectionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, waiting at most `wait` for one to be opened.
    async fn get(
        self: &Arc<Self>,
        wait: Duration,
    ) -> Result<(u64, MultiplexedConnection), LeaseError> {
        let attempted = self.attempted.notified();
        tokio::pin!(attempted);
        // Registered before the state is read, so an attempt ending meanwhile is not missed.
        attempted.as_mut().enable();
        {
            let mut state = self.lock();
            if let Some((generation, conn)) = &state.current {
                return Ok((*generation, conn.clone()));
            }
            let may_retry = state
                .last_attempt
                .is_none_or(|at| at.elapsed() >= RECONNECT_AFTER);
            if !state.connecting && may_retry {
                state.connecting = true;
                state.last_attempt = Some(Instant::now());
                tokio::spawn(Arc::clone(self).connect());
            } else if !state.connecting {
                return Err(LeaseError::NotConnected);
            }
        }
        let _ = tokio::time::timeout(wait, attempted).await;
        match &self.lock().current {
            Some((generation, conn)) => Ok((*generation, conn.clone())),
            None => Err(LeaseError::NotConnected),
        }
    }

    async fn connect(self: Arc<Self>) {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connected = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(&self.name)
                .query_async::<()>(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let connected = tokio::time::timeout(CONNECT_TIMEOUT * 2, connected).await;
        {
            let mut state = self.lock();
            state.connecting = false;
            match connected {
                Ok(Ok(conn)) => {
                    state.generation += 1;
                    state.current = Some((state.generation, conn));
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "lease connection to redis failed");
                }
                Err(_) => tracing::debug!("lease connection to redis timed out"),
            }
        }
        self.attempted.notify_waiters();
    }

    /// Drops the connection of `generation` if it is still the current one.
    fn forget(&self, generation: u64) {
        let mut state = self.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|(g, _)| *g == generation)
        {
            state.current = None;
        }
    }
}
