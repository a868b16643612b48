//! What the clients of one run share: phase, counters and histograms, plus readings of a
//! process's CPU time and memory from /proc.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio::sync::watch;

/// Where a run is. Clients watch it; only the orchestrator moves it forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Clients connect and complete their initial sync.
    Connect,
    /// The seeding clients write the cards; everyone waits for the last seed batch.
    Seed,
    /// Draggers move cards (and, in a storm, the newcomers join).
    Move,
    /// Moves have stopped; waiting for what is in flight to arrive.
    Drain,
    /// Doc-holding clients report their final state and everyone closes.
    Finish,
}

/// The slowest latency a histogram records (longer ones are clamped): 10 minutes, in µs.
pub const HISTOGRAM_MAX_US: u64 = 600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    // 3 significant figures: 0.1 % precision from 1 µs to 10 minutes.
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("static histogram bounds are valid")
}

/// A doc-holding client's final state, for the convergence check.
#[derive(Debug, Clone)]
pub struct FinalState {
    pub room: usize,
    /// The state vector as sorted (client, clock) pairs: yrs encodes its map in hash order, so
    /// encoded bytes of equal vectors can differ.
    pub state_vector: Vec<(u64, u32)>,
    /// A hash of every card's (id, stage, pos), sorted by id.
    pub cards_hash: u64,
    pub cards: usize,
}

/// Counters and samples shared by every client of a run.
#[derive(Debug)]
pub struct Shared {
    pub phase: watch::Sender<Phase>,
    pub connected: AtomicU64,
    pub synced: AtomicU64,
    pub joiners_synced: AtomicU64,
    /// Steady clients / storm newcomers that synced or gave up: the orchestrator waits for
    /// these, not for the synced ones alone.
    pub settled: AtomicU64,
    pub joiners_settled: AtomicU64,
    /// Steady clients (not the seeders) that saw the last seed batch.
    pub seeded: AtomicU64,
    /// Moves sent, per room.
    pub moves_sent: Vec<AtomicU64>,
    /// Moves received by clients that were on the board before moves began (each move counts
    /// once per receiver, whatever frame it came in).
    pub delivered_steady: AtomicU64,
    /// Moves received by storm newcomers.
    pub delivered_joiners: AtomicU64,
    /// The same move received twice by one client.
    pub duplicates: AtomicU64,
    /// Moves that needed a column rebalance (the neighbours' keys could not be split).
    pub rebalances: AtomicU64,
    /// Draggers whose move ticker runs (a move may be on its way).
    pub active_draggers: AtomicI64,
    /// Updates a doc-holding client received before its initial step 2 (kept, then applied
    /// after it).
    pub updates_before_sync: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Closes and ends of stream before the run finished, by reason.
    pub disconnects: Mutex<BTreeMap<String, u64>>,
    /// Closes a client reconnected after (a restart's 1012, a drain), by reason: not errors.
    pub reconnects: Mutex<BTreeMap<String, u64>>,
    /// Connection attempts of reconnecting clients that failed (a draining or stopped server
    /// refused the upgrade) before one succeeded.
    pub failed_attempts: AtomicU64,
    /// Moves a steady client first saw in the answer to its re-sync, not live.
    pub delivered_on_resync: AtomicU64,
    /// Close → re-synced (µs) of each reconnect.
    pub resync_gap: Mutex<Histogram<u64>>,
    /// Fan-out latency (µs) seen by steady clients, all moves.
    pub latency: Mutex<Histogram<u64>>,
    /// Fan-out latency (µs) of moves that reached a client on another server than their
    /// sender's (several `--url`, no reconnects: see `ClientPlan::instances`).
    pub cross_latency: Mutex<Histogram<u64>>,
    /// Moves delivered to steady clients, by the server (`--url`) the receiver is on.
    pub delivered_by_instance: Vec<AtomicU64>,
    /// Fan-out latency (µs) of moves sent while a storm was joining.
    pub storm_latency: Mutex<Histogram<u64>>,
    /// Storm window on the clock of `clock::now_us` (0 when unset).
    pub storm_from_us: AtomicU64,
    pub storm_until_us: AtomicU64,
    /// Initial sync time (µs, connect → step 2 applied) of the steady clients.
    pub sync_steady: Mutex<Histogram<u64>>,
    /// The same for storm newcomers.
    pub sync_joiners: Mutex<Histogram<u64>>,
    pub final_states: Mutex<Vec<FinalState>>,
}

impl Shared {
    /// Counters for a run of `rooms` boards on `instances` servers.
    pub fn new(rooms: usize, instances: usize) -> Self {
        let (phase, _) = watch::channel(Phase::Connect);
        Self {
            phase,
            connected: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            joiners_synced: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            joiners_settled: AtomicU64::new(0),
            seeded: AtomicU64::new(0),
            moves_sent: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            delivered_steady: AtomicU64::new(0),
            delivered_joiners: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
            active_draggers: AtomicI64::new(0),
            updates_before_sync: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            disconnects: Mutex::new(BTreeMap::new()),
            reconnects: Mutex::new(BTreeMap::new()),
            failed_attempts: AtomicU64::new(0),
            delivered_on_resync: AtomicU64::new(0),
            resync_gap: Mutex::new(new_histogram()),
            latency: Mutex::new(new_histogram()),
            cross_latency: Mutex::new(new_histogram()),
            delivered_by_instance: (0..instances.max(1)).map(|_| AtomicU64::new(0)).collect(),
            storm_latency: Mutex::new(new_histogram()),
            storm_from_us: AtomicU64::new(0),
            storm_until_us: AtomicU64::new(0),
            sync_steady: Mutex::new(new_histogram()),
            sync_joiners: Mutex::new(new_histogram()),
            final_states: Mutex::new(Vec::new()),
        }
    }

    /// A client synced or gave up (exactly once per client).
    pub fn settle(&self, joiner: bool) {
        let counter = if joiner {
            &self.joiners_settled
        } else {
            &self.settled
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self, what: impl Into<String>) {
        bump(&self.errors, what.into());
    }

    pub fn disconnect(&self, why: impl Into<String>) {
        bump(&self.disconnects, why.into());
    }

    pub fn reconnect(&self, why: impl Into<String>) {
        bump(&self.reconnects, why.into());
    }

    pub fn error_count(&self) -> u64 {
        total(&self.errors) + total(&self.disconnects)
    }

    pub fn moves_sent_total(&self) -> u64 {
        self.moves_sent
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .sum()
    }

    /// Records a latency in µs into `hist`, clamped into the histogram's range.
    pub fn record(hist: &Mutex<Histogram<u64>>, value_us: u64) {
        let value = value_us.clamp(1, HISTOGRAM_MAX_US);
        lock(hist).saturating_record(value);
    }
}

/// Locks a mutex, carrying on with the data if a client task panicked while holding it (the
/// counters stay meaningful).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: String) {
    *lock(map).entry(key).or_insert(0) += 1;
}

fn total(map: &Mutex<BTreeMap<String, u64>>) -> u64 {
    lock(map).values().sum()
}

/// CPU time and memory of a process, read from /proc (Linux only).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// utime + stime, in seconds.
    pub cpu_s: f64,
    /// VmRSS in KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS since the process started) in KiB.
    pub hwm_kib: u64,
}

/// Reads /proc/PID/stat and /proc/PID/status; `None` if the process is gone.
pub fn sample_process(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_s: (utime + stime) as f64 / clock_ticks_per_second(),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// The kernel's USER_HZ: `getconf CLK_TCK`, which is 100 on every Linux we run on (asked once;
/// 100 if `getconf` is missing).
fn clock_ticks_per_second() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|hz| *hz > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_sampled() {
        let sample = sample_process(std::process::id()).unwrap();
        assert!(sample.rss_kib > 0);
        assert!(sample.hwm_kib >= sample.rss_kib);
        assert!(sample.cpu_s >= 0.0);
    }
}
