//! Runs a scenario against one target: plans the clients, moves the run through its phases
//! (connect → seed → move → drain → finish), shows progress every second and builds the
//! report. Every wait is bounded; the run stops by itself.

use crate::client::{self, ClientPlan, SeedPlan};
use crate::clock::now_us;
use crate::metrics::{self, Phase, ProcSample, Shared, lock};
use crate::report::{self, Convergence, IdleMemory, ProcessStats, RunReport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Where the clients connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// How the report names it: `funnel`, `relay`, `relay (cached join)`, or the URL.
    pub label: String,
    /// URL templates: `{board}` is replaced by the board id. Clients are spread over them
    /// round-robin.
    pub urls: Vec<String>,
    /// The server's process, for CPU time and memory (Linux /proc).
    pub server_pid: Option<u32>,
    /// With several `urls`: the process behind each, in the same order, for each instance's
    /// CPU time and memory (empty: not known, e.g. servers in this process).
    pub instance_pids: Vec<u32>,
}

/// One board of a run.
#[derive(Debug, Clone)]
pub struct RoomPlan {
    pub board: String,
    pub cards: usize,
    /// Clients on the board from the start (the seeder and the draggers among them).
    pub clients: usize,
    pub draggers: usize,
    /// Moves per second of each dragger.
    pub rate: f64,
}

/// Newcomers that join the first board at once, while its draggers keep moving.
#[derive(Debug, Clone, Copy)]
pub struct StormPlan {
    pub joiners: usize,
    /// How long into the move phase they join.
    pub after: Duration,
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    /// `board`, `rooms`, `storm`, `cluster` or `idle`.
    pub scenario: String,
    pub rooms: Vec<RoomPlan>,
    /// Length of the move phase (for `idle`: how long the connections are held).
    pub duration: Duration,
    pub storm: Option<StormPlan>,
    /// Share of clients holding a yrs document (draggers and seeders always do).
    pub doc_share: f64,
    /// Cards per seed transaction.
    pub seed_batch: usize,
    /// Steady clients connecting (and syncing) at the same time.
    pub connect_parallel: usize,
    /// Each client announces a presence after its sync.
    pub awareness: bool,
    /// How long to wait for moves in flight after the move phase.
    pub drain: Duration,
    /// Bound on each of the connect and seed phases.
    pub setup_timeout: Duration,
    /// Log a progress line every second.
    pub progress: bool,
    /// Clients reconnect, to the other URLs first, when a server closes with a restart code
    /// (1001, 1012, 1013), and re-sync: the `roll` scenario. Otherwise such a close ends the
    /// client and counts as a disconnect.
    pub reconnect: bool,
    /// The scenario's parameters as given, for the report.
    pub params: serde_json::Value,
}

/// A unique prefix for board ids, so that runs against one long-lived server never share a
/// board: `lt` and the start time in base 36.
pub fn run_prefix() -> String {
    let mut n = now_us() / 1000;
    let mut digits = Vec::new();
    while n > 0 {
        let d = (n % 36) as u8;
        digits.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        n /= 36;
    }
    digits.reverse();
    format!("lt{}", String::from_utf8_lossy(&digits))
}

/// Replaces `{board}` in a URL template.
pub fn board_url(template: &str, board: &str) -> String {
    template.replace("{board}", board)
}

/// Runs `plan` against `target` and reports.
pub async fn run(plan: &RunPlan, target: &Target) -> anyhow::Result<RunReport> {
    run_observed(plan, target, None).await
}

/// [`run`], telling `move_started` when the move phase begins (the `roll` scenario restarts
/// servers from then on).
pub async fn run_observed(
    plan: &RunPlan,
    target: &Target,
    move_started: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<RunReport> {
    anyhow::ensure!(!target.urls.is_empty(), "give at least one --url");
    anyhow::ensure!(!plan.rooms.is_empty(), "a run needs at least one board");
    let started = Instant::now();
    let shared = Arc::new(Shared::new(plan.rooms.len(), target.urls.len()));
    let (steady, joiners) = plan_clients(plan, target);
    let storm_joiners = joiners.len();
    // Long enough for every phase at its bound; clients give up by themselves after it.
    let deadline = started + plan.setup_timeout * 2 + plan.duration + plan.drain * 2 + SLACK;
    let server_start = target.server_pid.and_then(metrics::sample_process);
    let own_start = metrics::sample_process(std::process::id());
    if target.server_pid.is_some() && server_start.is_none() {
        anyhow::bail!("cannot read /proc for the server's pid: is it running?");
    }
    let mut progress = Progress::new(plan.progress, Arc::clone(&shared), target, started);
    let mut tasks = JoinSet::new();
    // The storm's newcomers, on their own runtime (see `crowd_runtime`).
    let mut crowd: Option<tokio::runtime::Runtime> = None;

    // Connect: the first client alone (it loads or creates the board), then the others, a
    // bounded number connecting at a time.
    let steady_count = steady.len() as u64;
    let mut baseline = None;
    for (n, client_plan) in steady.into_iter().enumerate() {
        let limit = if n <= 1 {
            1
        } else {
            plan.connect_parallel.max(1)
        } as u64;
        let spawned = n as u64;
        wait_until(&mut progress, "connecting", plan.setup_timeout, || {
            spawned - shared.settled.load(Ordering::Relaxed) < limit
        })
        .await;
        if n == 1 {
            baseline = target.server_pid.and_then(metrics::sample_process);
        }
        tasks.spawn(client::run(client_plan, Arc::clone(&shared), deadline));
    }
    let all_settled = wait_until(&mut progress, "connecting", plan.setup_timeout, || {
        shared.settled.load(Ordering::Relaxed) >= steady_count
    })
    .await;
    if !all_settled {
        shared.error("initial sync not finished within the setup timeout");
    }

    // Seed: each board's first client writes its cards; the others wait for the last batch.
    let waiters: u64 = plan
        .rooms
        .iter()
        .filter(|r| r.cards > 0)
        .map(|r| r.clients.saturating_sub(1) as u64)
        .sum();
    if plan.rooms.iter().any(|r| r.cards > 0) {
        shared.phase.send_replace(Phase::Seed);
        let seeded = wait_until(&mut progress, "seeding", plan.setup_timeout, || {
            shared.seeded.load(Ordering::Relaxed) >= waiters
        })
        .await;
        if !seeded {
            shared.error("seed not confirmed by every client within the setup timeout");
        }
    }
    let loaded = target.server_pid.and_then(metrics::sample_process);

    // Move (and storm).
    let move_start = Instant::now();
    let server_move_start = target.server_pid.and_then(metrics::sample_process);
    let instances_move_start = sample_all(&target.instance_pids);
    shared.phase.send_replace(Phase::Move);
    if let Some(tell) = move_started {
        let _ = tell.send(());
    }
    let move_end = move_start + plan.duration;
    let mut storm_all_synced = None;
    if let Some(storm) = plan.storm.filter(|s| s.joiners > 0) {
        wait_until(&mut progress, "moving", storm.after, || false).await;
        let storm_start = Instant::now();
        shared.storm_from_us.store(now_us(), Ordering::Relaxed);
        let crowd = crowd.insert(crowd_runtime()?);
        for joiner in joiners {
            tasks.spawn_on(
                client::run(joiner, Arc::clone(&shared), deadline),
                crowd.handle(),
            );
        }
        let limit = move_end
            .saturating_duration_since(Instant::now())
            .max(plan.setup_timeout);
        let settled = wait_until(&mut progress, "storm", limit, || {
            shared.joiners_settled.load(Ordering::Relaxed) >= storm_joiners as u64
        })
        .await;
        shared.storm_until_us.store(now_us(), Ordering::Relaxed);
        if settled {
            storm_all_synced = Some(storm_start.elapsed());
        } else {
            shared.error("storm newcomers not all synced in time");
        }
    }
    let remaining = move_end.saturating_duration_since(Instant::now());
    wait_until(&mut progress, "moving", remaining, || false).await;
    let move_seconds = move_start.elapsed().as_secs_f64();

    // Drain: until every move reached every steady observer, or the bound.
    shared.phase.send_replace(Phase::Drain);
    let expected = || -> u64 {
        plan.rooms
            .iter()
            .enumerate()
            .map(|(r, room)| {
                shared.moves_sent[r].load(Ordering::Relaxed) * room.clients.saturating_sub(1) as u64
            })
            .sum()
    };
    wait_until(&mut progress, "draining", plan.drain, || {
        shared.active_draggers.load(Ordering::Relaxed) <= 0
            && shared.delivered_steady.load(Ordering::Relaxed)
                + shared.delivered_on_resync.load(Ordering::Relaxed)
                >= expected()
    })
    .await;
    let server_move_end = target.server_pid.and_then(metrics::sample_process);
    let instances_move_end = sample_all(&target.instance_pids);

    // Finish: doc-holding clients report their state; everyone closes.
    shared.phase.send_replace(Phase::Finish);
    let finish_by = Instant::now() + FINISH_TIMEOUT;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(finish_by, tasks.join_next()).await {
            Ok(Some(Err(e))) if e.is_panic() => shared.error("a client task panicked"),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                shared.error(format!("{} clients did not close in time", tasks.len()));
                tasks.abort_all();
                break;
            }
        }
    }
    let server_end = target.server_pid.and_then(metrics::sample_process);
    progress.line("done");
    if let Some(crowd) = crowd {
        // Its tasks are done (or aborted); a runtime may not be dropped inside another one.
        crowd.shutdown_background();
    }

    let idle_memory = (plan.scenario == "idle")
        .then(|| idle_memory(baseline, loaded, steady_count))
        .flatten();
    let server = match (server_start, server_end) {
        (Some(start), Some(end)) => Some(ProcessStats {
            cpu_s_total: end.cpu_s - start.cpu_s,
            cpu_s_move: match (server_move_start, server_move_end) {
                (Some(a), Some(b)) => b.cpu_s - a.cpu_s,
                _ => 0.0,
            },
            peak_rss_kib: end.hwm_kib,
            rss_end_kib: end.rss_kib,
            rss_loaded_kib: loaded.map(|s| s.rss_kib).unwrap_or(0),
        }),
        _ => None,
    };
    let expected = expected();
    Ok(build_report(
        plan,
        target,
        &shared,
        Facts {
            steady_count,
            storm_joiners: storm_joiners as u64,
            expected,
            move_seconds,
            storm_all_synced,
            server,
            idle_memory,
            instance_cpu: instances_move_start
                .iter()
                .zip(&instances_move_end)
                .map(|(a, b)| match (a, b) {
                    (Some(a), Some(b)) => Some((b.cpu_s - a.cpu_s, b.hwm_kib)),
                    _ => None,
                })
                .collect(),
            own_cpu_start_s: own_start.map_or(0.0, |s| s.cpu_s),
            wall_seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

/// The runtime of a storm's newcomers, apart from the live clients'. In one runtime, a live
/// client's socket would wait behind a thousand newcomers' frames in the load tester's own task
/// queue, and the draggers' latency during the storm would measure the load tester, not the
/// server: in a real storm the people already on the board sit at other machines than the
/// crowd. The two runtimes still share the machine's cores with the server.
fn crowd_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("crowd")
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the newcomers' runtime: {e}"))
}

/// Extra time before the clients' own deadline, past every phase's bound.
const SLACK: Duration = Duration::from_secs(30);
/// How long the clients may take to report and close.
const FINISH_TIMEOUT: Duration = Duration::from_secs(20);

/// The clients of a run: the steady ones, board by board, and the storm newcomers.
fn plan_clients(plan: &RunPlan, target: &Target) -> (Vec<ClientPlan>, Vec<ClientPlan>) {
    let mut steady = Vec::new();
    let mut next_id = 0u32;
    let instances = target.urls.len();
    let mut url = |board: &str| {
        let instance = next_id as usize % instances;
        let id = next_id;
        next_id += 1;
        (id, instance, board_url(&target.urls[instance], board))
    };
    // A reconnecting client moves to another server: its id no longer tells which it is on.
    let known = if plan.reconnect { 1 } else { instances };
    // The other servers, in the order after the client's own.
    let failover = |own: &str, board: &str| -> Vec<String> {
        if !plan.reconnect {
            return Vec::new();
        }
        let urls: Vec<String> = target.urls.iter().map(|t| board_url(t, board)).collect();
        let at = urls.iter().position(|u| u == own).unwrap_or(0);
        let mut order: Vec<String> = urls[at + 1..].iter().chain(&urls[..at]).cloned().collect();
        order.retain(|u| u != own);
        if order.is_empty() {
            // One server: come back to it.
            order.push(own.to_owned());
        }
        order
    };
    let share = plan.doc_share.clamp(0.0, 1.0);
    for (r, room) in plan.rooms.iter().enumerate() {
        let doc_clients = (share * room.clients as f64).ceil() as usize;
        for i in 0..room.clients {
            let (id, instance, url) = url(&room.board);
            let seeds = i == 0 && room.cards > 0;
            steady.push(ClientPlan {
                id,
                room: r,
                instance,
                instances: known,
                failover: failover(&url, &room.board),
                url,
                holds_doc: seeds || i < room.draggers || i < doc_clients,
                joiner: false,
                drag_rate: (i < room.draggers).then_some(room.rate),
                seed: seeds.then(|| SeedPlan {
                    cards: room.cards,
                    batch: plan.seed_batch,
                    board_name: format!("Load test {}", room.board),
                }),
                cards: room.cards,
                waits_for_seed: i > 0 && room.cards > 0,
                awareness: plan.awareness,
                rng_seed: u64::from(id) * 7 + 1,
            });
        }
    }
    let mut joiners = Vec::new();
    if let Some(storm) = plan.storm {
        let room = &plan.rooms[0];
        let doc_clients = (share * storm.joiners as f64).ceil() as usize;
        for j in 0..storm.joiners {
            let (id, instance, url) = url(&room.board);
            joiners.push(ClientPlan {
                id,
                room: 0,
                instance,
                instances: known,
                failover: failover(&url, &room.board),
                url,
                holds_doc: j < doc_clients,
                joiner: true,
                drag_rate: None,
                seed: None,
                cards: room.cards,
                waits_for_seed: false,
                awareness: plan.awareness,
                rng_seed: u64::from(id) * 7 + 1,
            });
        }
    }
    (steady, joiners)
}

fn idle_memory(
    baseline: Option<ProcSample>,
    loaded: Option<ProcSample>,
    connections: u64,
) -> Option<IdleMemory> {
    let (baseline, loaded) = (baseline?, loaded?);
    let added = connections.saturating_sub(1).max(1);
    Some(IdleMemory {
        connections,
        rss_one_connection_kib: baseline.rss_kib,
        rss_all_connections_kib: loaded.rss_kib,
        kib_per_connection: loaded.rss_kib.saturating_sub(baseline.rss_kib) as f64 / added as f64,
    })
}

struct Facts {
    steady_count: u64,
    storm_joiners: u64,
    expected: u64,
    move_seconds: f64,
    storm_all_synced: Option<Duration>,
    server: Option<ProcessStats>,
    idle_memory: Option<IdleMemory>,
    /// Each instance's CPU seconds over the move phase and drain, and its peak RSS (KiB).
    instance_cpu: Vec<Option<(f64, u64)>>,
    own_cpu_start_s: f64,
    wall_seconds: f64,
}

fn build_report(plan: &RunPlan, target: &Target, shared: &Shared, facts: Facts) -> RunReport {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let delivered = load(&shared.delivered_steady);
    let convergence = convergence(plan, &lock(&shared.final_states));
    let errors = lock(&shared.errors).clone();
    let disconnects = lock(&shared.disconnects).clone();
    let own = metrics::sample_process(std::process::id());
    RunReport {
        scenario: plan.scenario.clone(),
        target: target.label.clone(),
        urls: target.urls.clone(),
        params: plan.params.clone(),
        boards: plan.rooms.len() as u64,
        clients: facts.steady_count,
        joiners: facts.storm_joiners,
        connected: load(&shared.connected),
        synced: load(&shared.synced),
        joiners_synced: load(&shared.joiners_synced),
        move_seconds: facts.move_seconds,
        moves_sent: shared.moves_sent_total(),
        moves_expected: facts.expected,
        moves_delivered: delivered,
        moves_delivered_to_joiners: load(&shared.delivered_joiners),
        duplicates: load(&shared.duplicates),
        rebalances: load(&shared.rebalances),
        updates_before_sync: load(&shared.updates_before_sync),
        delivered_per_second: delivered as f64 / facts.move_seconds.max(1e-9),
        all_delivered: delivered == facts.expected,
        latency_us: report::Latency::from_histogram(&lock(&shared.latency)),
        cross_instance_latency_us: (target.urls.len() > 1 && !plan.reconnect)
            .then(|| report::Latency::from_histogram(&lock(&shared.cross_latency))),
        instances: instances(plan, target, shared, &facts),
        storm_latency_us: plan
            .storm
            .map(|_| report::Latency::from_histogram(&lock(&shared.storm_latency))),
        sync_us: report::Latency::from_histogram(&lock(&shared.sync_steady)),
        joiner_sync_us: plan
            .storm
            .map(|_| report::Latency::from_histogram(&lock(&shared.sync_joiners))),
        storm_all_synced_s: facts.storm_all_synced.map(|d| d.as_secs_f64()),
        frames_in: load(&shared.frames_in),
        bytes_in: load(&shared.bytes_in),
        frames_out: load(&shared.frames_out),
        bytes_out: load(&shared.bytes_out),
        error_total: errors.values().sum::<u64>() + disconnects.values().sum::<u64>(),
        errors,
        disconnects,
        reconnects: plan.reconnect.then(|| report::Reconnects {
            closes: lock(&shared.reconnects).clone(),
            failed_attempts: load(&shared.failed_attempts),
            moves_delivered_on_resync: load(&shared.delivered_on_resync),
            gap_us: report::Latency::from_histogram(&lock(&shared.resync_gap)),
        }),
        convergence,
        server: facts.server,
        idle_memory: facts.idle_memory,
        loadtest_cpu_s: own.map_or(0.0, |s| s.cpu_s - facts.own_cpu_start_s),
        loadtest_peak_rss_kib: own.map(|s| s.hwm_kib).unwrap_or(0),
        wall_seconds: facts.wall_seconds,
    }
}

/// Each server's share of a run over several `--url`: its clients, the moves they received,
/// and (when its process is known) its CPU time per delivered update and per move.
fn instances(
    plan: &RunPlan,
    target: &Target,
    shared: &Shared,
    facts: &Facts,
) -> Vec<report::InstanceReport> {
    if target.urls.len() < 2 {
        return Vec::new();
    }
    let n = target.urls.len();
    let moves = shared.moves_sent_total();
    let mut clients = vec![0u64; n];
    let mut id = 0usize;
    for room in &plan.rooms {
        for _ in 0..room.clients {
            clients[id % n] += 1;
            id += 1;
        }
    }
    target
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let delivered = shared
                .delivered_by_instance
                .get(i)
                .map_or(0, |c| c.load(Ordering::Relaxed));
            let cpu = facts.instance_cpu.get(i).copied().flatten();
            report::InstanceReport {
                url: url.clone(),
                pid: target.instance_pids.get(i).copied(),
                clients: clients[i],
                delivered,
                cpu_s_move: cpu.map(|(s, _)| s),
                peak_rss_kib: cpu.map(|(_, kib)| kib),
                cpu_us_per_delivered: cpu
                    .filter(|_| delivered > 0)
                    .map(|(s, _)| s * 1e6 / delivered as f64),
                cpu_us_per_move: cpu
                    .filter(|_| moves > 0)
                    .map(|(s, _)| s * 1e6 / moves as f64),
            }
        })
        .collect()
}

fn sample_all(pids: &[u32]) -> Vec<Option<ProcSample>> {
    pids.iter()
        .map(|&pid| metrics::sample_process(pid))
        .collect()
}

/// Every doc-holding client of a board must end with the same state vector and the same cards
/// (id, stage, pos), holding all the board's cards.
fn convergence(plan: &RunPlan, states: &[metrics::FinalState]) -> Convergence {
    let mut by_room: BTreeMap<usize, Vec<&metrics::FinalState>> = BTreeMap::new();
    for state in states {
        by_room.entry(state.room).or_default().push(state);
    }
    let mut diverged = Vec::new();
    let mut missing_cards = 0;
    for (room, states) in &by_room {
        let first = states[0];
        let differ = states
            .iter()
            .filter(|s| s.state_vector != first.state_vector || s.cards_hash != first.cards_hash);
        let count = differ.count();
        if count > 0 {
            diverged.push(format!(
                "{}: {count} of {} differ",
                plan.rooms[*room].board,
                states.len()
            ));
        }
        missing_cards += states
            .iter()
            .filter(|s| s.cards < plan.rooms[*room].cards)
            .count();
    }
    // Nothing to compare when no client holds a document and no board has cards (idle).
    let nothing_to_check = states.is_empty() && plan.rooms.iter().all(|r| r.cards == 0);
    Convergence {
        doc_clients: states.len() as u64,
        boards_checked: by_room.len() as u64,
        diverged_boards: diverged,
        clients_missing_cards: missing_cards as u64,
        converged: nothing_to_check
            || !states.is_empty()
                && by_room.values().all(|states| {
                    states.iter().all(|s| {
                        s.state_vector == states[0].state_vector
                            && s.cards_hash == states[0].cards_hash
                    })
                })
                && missing_cards == 0,
    }
}

/// Polls `done` every 10 ms until it holds or `limit` passes (returns whether it held), showing
/// progress meanwhile.
async fn wait_until(
    progress: &mut Progress,
    phase: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        progress.tick(phase);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One line a second: elapsed, phase, clients, moves sent and delivered, errors, server RSS.
struct Progress {
    enabled: bool,
    shared: Arc<Shared>,
    server_pid: Option<u32>,
    started: Instant,
    next: Instant,
}

impl Progress {
    fn new(enabled: bool, shared: Arc<Shared>, target: &Target, started: Instant) -> Self {
        Self {
            enabled,
            shared,
            server_pid: target.server_pid,
            started,
            next: started + Duration::from_secs(1),
        }
    }

    fn tick(&mut self, phase: &str) {
        if Instant::now() >= self.next {
            self.next += Duration::from_secs(1);
            self.line(phase);
        }
    }

    fn line(&self, phase: &str) {
        if !self.enabled {
            return;
        }
        let s = &self.shared;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let server = self
            .server_pid
            .and_then(metrics::sample_process)
            .map(|p| {
                format!(
                    " server_cpu={:.1}s server_rss={}MiB",
                    p.cpu_s,
                    p.rss_kib / 1024
                )
            })
            .unwrap_or_default();
        tracing::info!(
            "{:>5.1}s {phase}: connected={} synced={}+{} sent={} delivered={} errors={}{server}",
            self.started.elapsed().as_secs_f64(),
            load(&s.connected),
            load(&s.synced),
            load(&s.joiners_synced),
            s.moves_sent_total(),
            load(&s.delivered_steady) + load(&s.delivered_joiners),
            s.error_count(),
        );
    }
}
