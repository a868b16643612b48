//! The report of a run, and of a comparison of runs: a table for the terminal, JSON, and a
//! self-contained HTML page whose charts are inline SVG drawn here (nothing is fetched when the
//! page is viewed).

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One scenario against one target.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub target: String,
    pub urls: Vec<String>,
    pub params: serde_json::Value,
    pub boards: u64,
    /// Clients on the boards from the start.
    pub clients: u64,
    /// Storm newcomers.
    pub joiners: u64,
    pub connected: u64,
    pub synced: u64,
    pub joiners_synced: u64,
    pub move_seconds: f64,
    pub moves_sent: u64,
    /// Moves sent × the other clients of the sender's board (storm newcomers not included).
    pub moves_expected: u64,
    /// Moves received by clients on the board from the start; a frame merging several moves
    /// counts as several.
    pub moves_delivered: u64,
    pub moves_delivered_to_joiners: u64,
    pub duplicates: u64,
    pub rebalances: u64,
    /// Updates doc-holding clients received before their initial step 2 (applied after it).
    pub updates_before_sync: u64,
    pub delivered_per_second: f64,
    pub all_delivered: bool,
    /// Fan-out latency: a move's send → its arrival at another client.
    pub latency_us: Latency,
    /// The same, of moves received on another server than their sender's (several `--url`).
    pub cross_instance_latency_us: Option<Latency>,
    /// Each server's share, with several `--url` (`cluster`).
    pub instances: Vec<InstanceReport>,
    /// The same, for moves sent while a storm was joining.
    pub storm_latency_us: Option<Latency>,
    /// Initial sync: connect → step 2 applied.
    pub sync_us: Latency,
    pub joiner_sync_us: Option<Latency>,
    /// From the storm's start until its last newcomer synced.
    pub storm_all_synced_s: Option<f64>,
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub error_total: u64,
    pub errors: BTreeMap<String, u64>,
    pub disconnects: BTreeMap<String, u64>,
    /// Only when clients reconnect (the `roll` scenario).
    pub reconnects: Option<Reconnects>,
    pub convergence: Convergence,
    pub server: Option<ProcessStats>,
    pub idle_memory: Option<IdleMemory>,
    /// The load tester's own CPU time during the run and its peak RSS so far (the process's
    /// peak: with `bench`, the first run's peak carries into the second). It shares the
    /// machine with the server.
    pub loadtest_cpu_s: f64,
    pub loadtest_peak_rss_kib: u64,
    pub wall_seconds: f64,
}

/// How clients came back after servers restarted under them.
#[derive(Debug, Clone, Serialize)]
pub struct Reconnects {
    /// The closes they reconnected after, by code.
    pub closes: BTreeMap<String, u64>,
    /// Attempts refused (a draining or stopped server) before one was taken.
    pub failed_attempts: u64,
    /// Moves first seen in a re-sync rather than live (made while the client was away).
    pub moves_delivered_on_resync: u64,
    /// Close → re-synced, per reconnect.
    pub gap_us: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// (percentile, µs) points of the percentile curve.
    pub curve: Vec<(f64, u64)>,
    /// (upper bound µs, count) of power-of-two buckets.
    pub buckets: Vec<(u64, u64)>,
}

const CURVE: [f64; 22] = [
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 97.0, 98.0,
    99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let at = |q: f64| h.value_at_quantile(q);
        let mut buckets = Vec::new();
        if !h.is_empty() {
            let mut low = 0u64;
            let mut high = 16u64;
            while low <= h.max() {
                buckets.push((high, h.count_between(low, high.saturating_sub(1))));
                low = high;
                high = high.saturating_mul(2);
            }
        }
        Self {
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: h.max(),
            curve: if h.is_empty() {
                Vec::new()
            } else {
                CURVE.iter().map(|p| (*p, at(p / 100.0))).collect()
            },
            buckets,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Convergence {
    pub doc_clients: u64,
    pub boards_checked: u64,
    pub diverged_boards: Vec<String>,
    pub clients_missing_cards: u64,
    pub converged: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcessStats {
    /// CPU seconds (user + system) from the run's start to its end.
    pub cpu_s_total: f64,
    /// CPU seconds of the move phase (storm and drain included).
    pub cpu_s_move: f64,
    /// VmHWM at the end: the peak since the process started.
    pub peak_rss_kib: u64,
    pub rss_end_kib: u64,
    /// VmRSS once every client was connected and the board seeded.
    pub rss_loaded_kib: u64,
}

/// One server of a run over several `--url`.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    pub url: String,
    pub pid: Option<u32>,
    /// Steady clients connected to it.
    pub clients: u64,
    /// Moves its clients received.
    pub delivered: u64,
    /// CPU seconds over the move phase and the drain (`None`: its process is not known).
    pub cpu_s_move: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    /// `cpu_s_move` per move its clients received, in µs.
    pub cpu_us_per_delivered: Option<f64>,
    /// `cpu_s_move` per move made anywhere in the run (each instance applies every move: its
    /// own clients' to store, the others' from the bus), in µs.
    pub cpu_us_per_move: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdleMemory {
    pub connections: u64,
    pub rss_one_connection_kib: u64,
    pub rss_all_connections_kib: u64,
    pub kib_per_connection: f64,
}

/// funnel, the bare relay and the durable relay on the same scenario, in rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub machine: Machine,
    /// Every run, round by round.
    pub rounds: Vec<Round>,
    /// Each target's medians over the rounds.
    pub medians: Vec<Summary>,
    /// funnel ÷ the bare relay, of the medians.
    pub ratios: Ratios,
    /// funnel ÷ the durable relay (every update stored before it is forwarded), of the medians.
    pub ratios_durable: Ratios,
    pub targets: Vec<TargetCheck>,
    /// The flush latency of funnel's data directory, probed before the runs (`--disk-probe`).
    pub disk: Option<crate::disk::DiskReport>,
}

/// One round of a comparison: each target once, in `order`.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub order: Vec<String>,
    /// funnel first, then the relay and the durable relay (whatever the order they ran in).
    pub runs: Vec<RunReport>,
    /// funnel ÷ the bare relay in this round.
    pub ratios: Ratios,
    /// funnel ÷ the durable relay in this round.
    pub ratios_durable: Ratios,
}

/// One target's figures over one or more runs: medians, and whether every run was clean.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub target: String,
    pub runs: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub storm_p99_us: Option<f64>,
    pub cpu_s_move: Option<f64>,
    pub peak_rss_kib: Option<f64>,
    pub storm_all_synced_s: Option<f64>,
    pub kib_per_connection: Option<f64>,
    /// Over every run: moves delivered of those expected.
    pub moves_delivered: u64,
    pub moves_expected: u64,
    pub all_delivered: bool,
    pub converged: bool,
    pub doc_clients: u64,
    pub diverged_boards: usize,
    pub all_synced: bool,
    pub error_total: u64,
}

/// The median of some values (the mean of the middle two of an even count).
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        f64::midpoint(v[mid - 1], v[mid])
    })
}

impl Summary {
    /// The medians of `runs` (all of one target).
    pub fn of(runs: &[&RunReport]) -> Self {
        let all = |f: &dyn Fn(&RunReport) -> Option<f64>| -> Option<f64> {
            let values: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
            if values.len() == runs.len() {
                median(values)
            } else {
                None
            }
        };
        Self {
            target: runs.first().map(|r| r.target.clone()).unwrap_or_default(),
            runs: runs.len(),
            p50_us: all(&|r| Some(r.latency_us.p50 as f64)).unwrap_or(0.0),
            p99_us: all(&|r| Some(r.latency_us.p99 as f64)).unwrap_or(0.0),
            p999_us: all(&|r| Some(r.latency_us.p999 as f64)).unwrap_or(0.0),
            storm_p99_us: all(&|r| r.storm_latency_us.as_ref().map(|l| l.p99 as f64)),
            cpu_s_move: all(&|r| r.server.map(|s| s.cpu_s_move)),
            peak_rss_kib: all(&|r| r.server.map(|s| s.peak_rss_kib as f64)),
            storm_all_synced_s: all(&|r| r.storm_all_synced_s),
            kib_per_connection: all(&|r| r.idle_memory.map(|m| m.kib_per_connection)),
            moves_delivered: runs.iter().map(|r| r.moves_delivered).sum(),
            moves_expected: runs.iter().map(|r| r.moves_expected).sum(),
            all_delivered: runs.iter().all(|r| r.all_delivered && r.moves_sent > 0),
            converged: runs.iter().all(|r| r.convergence.converged),
            doc_clients: runs.iter().map(|r| r.convergence.doc_clients).sum(),
            diverged_boards: runs
                .iter()
                .map(|r| r.convergence.diverged_boards.len())
                .sum(),
            all_synced: runs
                .iter()
                .all(|r| r.synced == r.clients && r.joiners_synced == r.joiners),
            error_total: runs.iter().map(|r| r.error_total).sum(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_mib: u64,
}

impl Machine {
    pub fn this() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            memory_mib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub storm_p99: Option<f64>,
    pub cpu_move: Option<f64>,
    pub peak_rss: Option<f64>,
    pub storm_all_synced: Option<f64>,
}

impl Ratios {
    /// `a` ÷ `b`, run against run.
    pub fn of(a: &RunReport, b: &RunReport) -> Self {
        Self::between(&Summary::of(&[a]), &Summary::of(&[b]))
    }

    /// `a` ÷ `b`, figure by figure.
    pub fn between(a: &Summary, b: &Summary) -> Self {
        let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
            _ => None,
        };
        Self {
            p50: ratio(Some(a.p50_us), Some(b.p50_us)),
            p99: ratio(Some(a.p99_us), Some(b.p99_us)),
            storm_p99: ratio(a.storm_p99_us, b.storm_p99_us),
            cpu_move: ratio(a.cpu_s_move, b.cpu_s_move),
            peak_rss: ratio(a.peak_rss_kib, b.peak_rss_kib),
            storm_all_synced: ratio(a.storm_all_synced_s, b.storm_all_synced_s),
        }
    }
}

/// One target of the issue, measured.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub name: String,
    pub measured: String,
    pub limit: String,
    pub pass: bool,
}

impl TargetCheck {
    pub(crate) fn new(name: &str, measured: String, limit: String, pass: bool) -> Self {
        Self {
            name: name.into(),
            measured,
            limit,
            pass,
        }
    }
}

/// The targets for one run of `funnel`, compared with one run of `relay` if given.
pub fn targets(scenario: &str, funnel: &RunReport, relay: Option<&RunReport>) -> Vec<TargetCheck> {
    let relay = relay.map(|r| Summary::of(&[r]));
    let rounds: Vec<Ratios> = relay
        .iter()
        .map(|r| Ratios::between(&Summary::of(&[funnel]), r))
        .collect();
    let mut checks = summary_targets(
        scenario,
        &Summary::of(&[funnel]),
        relay.as_ref(),
        None,
        &rounds,
    );
    if scenario == "roll" {
        roll_targets(funnel, &mut checks);
    }
    checks
}

/// The targets for funnel's medians, against the bare relay's and the durable relay's
/// medians; `rounds` are each round's ratios to the bare relay (the storm's target holds in
/// every round).
pub fn summary_targets(
    scenario: &str,
    funnel: &Summary,
    relay: Option<&Summary>,
    durable: Option<&Summary>,
    rounds: &[Ratios],
) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    let to_relay = relay
        .map(|r| Ratios::between(funnel, r))
        .unwrap_or_default();
    let to_durable = durable
        .map(|r| Ratios::between(funnel, r))
        .unwrap_or_default();
    let fmt_ratio = |r: Option<f64>| r.map_or("n/a".into(), |r| format!("{r:.2}×"));
    let with_ms = |r: Option<f64>, other: Option<&Summary>| {
        format!(
            "{} ({} vs {})",
            fmt_ratio(r),
            ms(funnel.p99_us as u64),
            other.map_or("n/a".into(), |o| ms(o.p99_us as u64))
        )
    };
    let peak_mib = funnel.peak_rss_kib.map(|k| k / 1024.0);
    let peak = |checks: &mut Vec<TargetCheck>, mb: f64| {
        checks.push(TargetCheck::new(
            &format!("peak RSS < {mb:.0} MB"),
            peak_mib.map_or("n/a".into(), |m| format!("{m:.1} MiB")),
            format!("< {mb:.0} MB ({:.1} MiB)", mb * 1e6 / 1_048_576.0),
            peak_mib.is_some_and(|m| m * 1_048_576.0 < mb * 1e6),
        ));
    };
    let delivered = |checks: &mut Vec<TargetCheck>| {
        checks.push(TargetCheck::new(
            "every move reaches every observer",
            format!("{} of {}", funnel.moves_delivered, funnel.moves_expected),
            "all".into(),
            funnel.all_delivered,
        ));
        checks.push(TargetCheck::new(
            "replicas converged",
            format!(
                "{} doc clients, {} diverged boards",
                funnel.doc_clients, funnel.diverged_boards
            ),
            "all equal".into(),
            funnel.converged,
        ));
    };
    match scenario {
        "board" | "cluster" => {
            checks.push(TargetCheck::new(
                "p99 fan-out ≤ 1.2× the durable relay",
                with_ms(to_durable.p99, durable),
                "≤ 1.20×".into(),
                to_durable.p99.is_some_and(|r| r <= 1.2),
            ));
            delivered(&mut checks);
            checks.push(TargetCheck::new(
                "server CPU ≤ 1.5× the relay",
                fmt_ratio(to_relay.cpu_move),
                "≤ 1.50×".into(),
                to_relay.cpu_move.is_some_and(|r| r <= 1.5),
            ));
            peak(&mut checks, 40.0);
        }
        "rooms" => {
            checks.push(TargetCheck::new(
                "p99 fan-out ≤ 1.5× the durable relay",
                with_ms(to_durable.p99, durable),
                "≤ 1.50×".into(),
                to_durable.p99.is_some_and(|r| r <= 1.5),
            ));
            delivered(&mut checks);
            peak(&mut checks, 150.0);
        }
        "storm" => {
            let each: Vec<f64> = rounds.iter().filter_map(|r| r.storm_all_synced).collect();
            let worst = each
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
            checks.push(TargetCheck::new(
                "all newcomers synced within 1.1× the cached relay's time, every round",
                format!(
                    "{} (rounds: {}; median {} vs {})",
                    fmt_ratio(worst),
                    each.iter()
                        .map(|r| format!("{r:.2}×"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    secs(funnel.storm_all_synced_s),
                    secs(relay.and_then(|r| r.storm_all_synced_s))
                ),
                "≤ 1.10×".into(),
                !each.is_empty()
                    && each.len() == rounds.len()
                    && worst.is_some_and(|r| r <= 1.1)
                    && funnel.all_synced,
            ));
            peak(&mut checks, 250.0);
            let storm_p99 = funnel.storm_p99_us;
            checks.push(TargetCheck::new(
                "draggers' p99 during the storm < 50 ms",
                storm_p99.map_or("n/a".into(), |p| ms(p as u64)),
                "< 50 ms".into(),
                storm_p99.is_some_and(|p| p < 50_000.0),
            ));
        }
        "idle" => {
            let per = funnel.kib_per_connection;
            checks.push(TargetCheck::new(
                "RSS per idle connection ≤ 12 KiB",
                per.map_or("n/a".into(), |k| format!("{k:.1} KiB")),
                "≤ 12 KiB".into(),
                per.is_some_and(|k| k <= 12.0) && funnel.all_synced,
            ));
        }
        _ => {}
    }
    checks.push(TargetCheck::new(
        "no errors or disconnects",
        funnel.error_total.to_string(),
        "0".into(),
        funnel.error_total == 0,
    ));
    checks
}

/// The roll's own targets (a single run).
fn roll_targets(funnel: &RunReport, checks: &mut Vec<TargetCheck>) {
    let errors = checks.pop();
    checks.push(TargetCheck::new(
        "draggers' p99 fan-out through the roll < 100 ms",
        ms(funnel.latency_us.p99),
        "< 100 ms".into(),
        funnel.latency_us.count > 0 && funnel.latency_us.p99 < 100_000,
    ));
    let reconnected = funnel
        .reconnects
        .as_ref()
        .map_or(0, |c| c.closes.values().sum::<u64>());
    checks.push(TargetCheck::new(
        "clients reconnected after 1012 and re-synced",
        format!(
            "{reconnected} reconnects, {} re-syncs",
            funnel.reconnects.as_ref().map_or(0, |c| c.gap_us.count)
        ),
        "every reconnect re-synced".into(),
        reconnected > 0
            && funnel
                .reconnects
                .as_ref()
                .is_some_and(|c| c.gap_us.count == reconnected),
    ));
    checks.push(TargetCheck::new(
        "nothing lost: replicas converged",
        format!(
            "{} doc clients, {} diverged boards, {} missing cards",
            funnel.convergence.doc_clients,
            funnel.convergence.diverged_boards.len(),
            funnel.convergence.clients_missing_cards
        ),
        "all equal".into(),
        funnel.convergence.converged,
    ));
    checks.extend(errors);
}

/// The rounds of a comparison and the medians, as a terminal table.
pub fn rounds_table(comparison: &Comparison) -> String {
    let mut table = comfy_table::Table::new();
    table.set_header(rounds_header());
    for row in rounds_rows(comparison) {
        table.add_row(row);
    }
    table.to_string()
}

fn rounds_header() -> Vec<String> {
    [
        "round",
        "order",
        "p99 funnel / relay / durable (ms)",
        "funnel ÷ durable p99",
        "funnel ÷ relay p99",
        "funnel ÷ relay CPU",
        "funnel ÷ relay synced",
        "peak RSS funnel (MiB)",
    ]
    .map(String::from)
    .to_vec()
}

fn rounds_rows(comparison: &Comparison) -> Vec<Vec<String>> {
    let r = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.2}×"));
    let p99s = |summaries: &[Summary]| {
        summaries
            .iter()
            .map(|s| format!("{:.2}", s.p99_us / 1000.0))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let mut rows = Vec::new();
    for (i, round) in comparison.rounds.iter().enumerate() {
        let summaries: Vec<Summary> = round.runs.iter().map(|r| Summary::of(&[r])).collect();
        rows.push(vec![
            (i + 1).to_string(),
            round.order.join(" → "),
            p99s(&summaries),
            r(round.ratios_durable.p99),
            r(round.ratios.p99),
            r(round.ratios.cpu_move),
            r(round.ratios.storm_all_synced),
            summaries
                .first()
                .and_then(|s| s.peak_rss_kib)
                .map_or("n/a".into(), |k| format!("{:.1}", k / 1024.0)),
        ]);
    }
    rows.push(vec![
        "median".into(),
        String::new(),
        p99s(&comparison.medians),
        r(comparison.ratios_durable.p99),
        r(comparison.ratios.p99),
        r(comparison.ratios.cpu_move),
        r(comparison.ratios.storm_all_synced),
        comparison
            .medians
            .first()
            .and_then(|s| s.peak_rss_kib)
            .map_or("n/a".into(), |k| format!("{:.1}", k / 1024.0)),
    ]);
    rows
}

/// The rounds table as HTML.
pub fn rounds_html(comparison: &Comparison) -> String {
    let mut page = String::from("<h2>Rounds</h2><table><tr>");
    for h in rounds_header() {
        let _ = write!(page, "<th>{}</th>", escape(&h));
    }
    page.push_str("</tr>");
    for row in rounds_rows(comparison) {
        page.push_str("<tr>");
        for cell in row {
            let _ = write!(page, "<td>{}</td>", escape(&cell));
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
    page
}

fn secs(s: Option<f64>) -> String {
    s.map_or("n/a".into(), |s| format!("{s:.2} s"))
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Rows of the summary: (label, one value per run).
fn rows(runs: &[&RunReport]) -> Vec<(String, Vec<String>)> {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&RunReport) -> String| {
        rows.push((label.into(), runs.iter().map(|r| f(r)).collect()));
    };
    row("clients (boards)", &|r| {
        if r.joiners > 0 {
            format!("{} + {} newcomers ({})", r.clients, r.joiners, r.boards)
        } else {
            format!("{} ({})", r.clients, r.boards)
        }
    });
    row("synced", &|r| {
        format!("{} + {}", r.synced, r.joiners_synced)
    });
    row("moves sent", &|r| r.moves_sent.to_string());
    row("moves delivered / expected", &|r| {
        format!("{} / {}", r.moves_delivered, r.moves_expected)
    });
    row("delivered per second", &|r| {
        format!("{:.0}", r.delivered_per_second)
    });
    row("fan-out p50", &|r| ms(r.latency_us.p50));
    row("fan-out p90", &|r| ms(r.latency_us.p90));
    row("fan-out p99", &|r| ms(r.latency_us.p99));
    row("fan-out p99.9", &|r| ms(r.latency_us.p999));
    row("fan-out max", &|r| ms(r.latency_us.max));
    if runs.iter().any(|r| r.cross_instance_latency_us.is_some()) {
        row(
            "across servers: p50 / p99 / p99.9 (moves)",
            &|r| match &r.cross_instance_latency_us {
                Some(l) => format!(
                    "{} / {} / {} ({})",
                    ms(l.p50),
                    ms(l.p99),
                    ms(l.p999),
                    l.count
                ),
                None => "-".into(),
            },
        );
    }
    row("initial sync p50 / p99 / max", &|r| {
        format!(
            "{} / {} / {}",
            ms(r.sync_us.p50),
            ms(r.sync_us.p99),
            ms(r.sync_us.max)
        )
    });
    if runs.iter().any(|r| r.joiner_sync_us.is_some()) {
        row(
            "newcomers' sync p50 / p99 / max",
            &|r| match &r.joiner_sync_us {
                Some(l) => format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.max)),
                None => "-".into(),
            },
        );
        row("all newcomers synced after", &|r| {
            secs(r.storm_all_synced_s)
        });
        row("fan-out p99 during the storm", &|r| {
            r.storm_latency_us
                .as_ref()
                .map_or("-".into(), |l| format!("{} ({} moves)", ms(l.p99), l.count))
        });
    }
    if runs.iter().any(|r| r.reconnects.is_some()) {
        row("reconnects (closes seen)", &|r| match &r.reconnects {
            Some(c) if !c.closes.is_empty() => c
                .closes
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            Some(_) => "0".into(),
            None => "-".into(),
        });
        row("refused attempts before one was taken", &|r| {
            r.reconnects
                .as_ref()
                .map_or("-".into(), |c| c.failed_attempts.to_string())
        });
        row("close → re-synced p50 / p99 / max", &|r| {
            r.reconnects.as_ref().map_or("-".into(), |c| {
                format!(
                    "{} / {} / {}",
                    ms(c.gap_us.p50),
                    ms(c.gap_us.p99),
                    ms(c.gap_us.max)
                )
            })
        });
        row("moves first seen in a re-sync", &|r| {
            r.reconnects
                .as_ref()
                .map_or("-".into(), |c| c.moves_delivered_on_resync.to_string())
        });
    }
    row("errors + disconnects", &|r| {
        if r.error_total == 0 {
            "0".into()
        } else {
            let all: Vec<String> = r
                .errors
                .iter()
                .chain(&r.disconnects)
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{} ({})", r.error_total, all.join("; "))
        }
    });
    row("converged", &|r| {
        format!(
            "{} ({} doc clients)",
            if r.convergence.converged { "yes" } else { "NO" },
            r.convergence.doc_clients
        )
    });
    row("server CPU (move phase / run)", &|r| {
        r.server.map_or("-".into(), |s| {
            format!("{:.2} s / {:.2} s", s.cpu_s_move, s.cpu_s_total)
        })
    });
    row("server peak RSS", &|r| {
        r.server.map_or("-".into(), |s| mib(s.peak_rss_kib))
    });
    if runs.iter().any(|r| r.idle_memory.is_some()) {
        row("RSS per idle connection", &|r| {
            r.idle_memory.map_or("-".into(), |m| {
                format!(
                    "{:.2} KiB ({} → {})",
                    m.kib_per_connection,
                    mib(m.rss_one_connection_kib),
                    mib(m.rss_all_connections_kib)
                )
            })
        });
    }
    row("load tester CPU / peak RSS", &|r| {
        format!(
            "{:.1} s / {}",
            r.loadtest_cpu_s,
            mib(r.loadtest_peak_rss_kib)
        )
    });
    row("wall time", &|r| format!("{:.1} s", r.wall_seconds));
    rows
}

/// The terminal table of some runs (and targets, if any).
pub fn table(runs: &[&RunReport], targets: &[TargetCheck]) -> String {
    use comfy_table::Table;
    let mut table = Table::new();
    let mut header = vec![format!(
        "{}",
        runs.first().map_or("", |r| r.scenario.as_str())
    )];
    header.extend(runs.iter().map(|r| r.target.clone()));
    table.set_header(header);
    for (label, values) in rows(runs) {
        let mut cells = vec![label];
        cells.extend(values);
        table.add_row(cells);
    }
    let mut out = table.to_string();
    if !targets.is_empty() {
        let mut t = Table::new();
        t.set_header(vec!["target", "measured", "limit", "met"]);
        for c in targets {
            t.add_row(vec![
                c.name.clone(),
                c.measured.clone(),
                c.limit.clone(),
                if c.pass { "yes" } else { "NO" }.into(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.to_string());
    }
    out
}

const COLORS: [&str; 4] = ["#d9480f", "#1971c2", "#2f9e44", "#7048e8"];

/// A self-contained HTML page: the summary, targets, and inline SVG charts.
pub fn html(title: &str, runs: &[&RunReport], targets: &[TargetCheck], json: &str) -> String {
    html_with(title, runs, targets, "", json)
}

/// [`html`] with a section of prepared HTML after the targets.
pub fn html_with(
    title: &str,
    runs: &[&RunReport],
    targets: &[TargetCheck],
    section: &str,
    json: &str,
) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:980px}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         .no{{color:#c92a2a;font-weight:bold}}.yes{{color:#2b8a3e}}svg{{background:#fff;border:1px solid #ddd}}\
         details pre{{font-size:11px;max-height:30em;overflow:auto}}</style></head><body><h1>{t}</h1>",
        t = escape(title)
    );
    page.push_str("<table><tr><th></th>");
    for r in runs {
        let _ = write!(page, "<th>{}</th>", escape(&r.target));
    }
    page.push_str("</tr>");
    for (label, values) in rows(runs) {
        let _ = write!(page, "<tr><td>{}</td>", escape(&label));
        for v in values {
            let _ = write!(page, "<td>{}</td>", escape(&v));
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
    if !targets.is_empty() {
        page.push_str("<h2>Targets</h2><table><tr><th>target</th><th>measured</th><th>limit</th><th>met</th></tr>");
        for c in targets {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&c.name),
                escape(&c.measured),
                escape(&c.limit),
                if c.pass { "yes" } else { "no" },
                if c.pass { "yes" } else { "NO" }
            );
        }
        page.push_str("</table>");
    }
    page.push_str(section);
    let legend: Vec<(&str, &str)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.target.as_str(), COLORS[i % COLORS.len()]))
        .collect();
    page.push_str("<h2>Fan-out latency by percentile</h2>");
    page.push_str(&percentile_chart(
        &runs.iter().map(|r| &r.latency_us).collect::<Vec<_>>(),
        &legend,
    ));
    page.push_str("<h2>Fan-out latency distribution</h2>");
    page.push_str(&histogram_chart(
        &runs.iter().map(|r| &r.latency_us).collect::<Vec<_>>(),
        &legend,
    ));
    if runs.iter().any(|r| r.joiner_sync_us.is_some()) {
        page.push_str("<h2>Newcomers' initial sync by percentile</h2>");
        let empty = Latency::from_histogram(&crate::metrics::new_histogram());
        let series: Vec<&Latency> = runs
            .iter()
            .map(|r| r.joiner_sync_us.as_ref().unwrap_or(&empty))
            .collect();
        page.push_str(&percentile_chart(&series, &legend));
    }
    page.push_str("<h2>Initial sync by percentile</h2>");
    page.push_str(&percentile_chart(
        &runs.iter().map(|r| &r.sync_us).collect::<Vec<_>>(),
        &legend,
    ));
    let _ = write!(
        page,
        "<details><summary>JSON report</summary><pre>{}</pre></details></body></html>",
        escape(json)
    );
    page
}

const W: f64 = 760.0;
const H: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 50.0;

/// x: percentile on a "nines" scale (0, 90, 99, 99.9, 99.99, 100 evenly spaced); y: log10 ms.
fn percentile_chart(series: &[&Latency], legend: &[(&str, &str)]) -> String {
    let nines = |p: f64| -> f64 {
        if p >= 100.0 {
            5.0
        } else {
            (-(1.0 - p / 100.0).log10()).min(4.0)
        }
    };
    let x = |p: f64| LEFT + nines(p) / 5.0 * (W - LEFT - RIGHT);
    let (lo, hi) = log_range(series.iter().flat_map(|l| l.curve.iter().map(|c| c.1)));
    let y = |us: u64| {
        let v = (us.max(1) as f64 / 1000.0).log10();
        TOP + (1.0 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM)
    };
    let mut svg = svg_open();
    for (label, p) in [
        ("0", 0.0),
        ("90", 90.0),
        ("99", 99.0),
        ("99.9", 99.9),
        ("99.99", 99.99),
        ("max", 100.0),
    ] {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1:.1}\" stroke=\"#eee\"/>\
             <text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\" font-size=\"11\">{label}</text>",
            x(p),
            H - BOTTOM,
            H - BOTTOM + 16.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">percentile</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 12.0
    );
    y_axis(&mut svg, lo, hi);
    for (i, l) in series.iter().enumerate() {
        let points: Vec<String> = l
            .curve
            .iter()
            .map(|(p, us)| format!("{:.1},{:.1}", x(*p), y(*us)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"{}\" points=\"{}\"/>",
            COLORS[i % COLORS.len()],
            points.join(" ")
        );
    }
    legend_and_close(svg, legend)
}

/// x: log2 latency buckets; y: share of the samples in each bucket.
fn histogram_chart(series: &[&Latency], legend: &[(&str, &str)]) -> String {
    let buckets = series
        .iter()
        .map(|l| l.buckets.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| LEFT + i as f64 / buckets as f64 * (W - LEFT - RIGHT);
    let y = |share: f64| TOP + (1.0 - share) * (H - TOP - BOTTOM);
    let mut svg = svg_open();
    for i in (0..=buckets).step_by(2) {
        let upper = 16u64 << i.min(40);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
            x(i),
            H - BOTTOM + 16.0,
            if i == 0 {
                "0".into()
            } else {
                short_us(upper / 2)
            }
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">latency (bucket lower bound)</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 12.0
    );
    for share in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#eee\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\" font-size=\"11\">{4:.0}%</text>",
            W - RIGHT,
            y(share),
            LEFT - 6.0,
            y(share) + 4.0,
            share * 100.0
        );
    }
    for (s, l) in series.iter().enumerate() {
        let total: u64 = l.buckets.iter().map(|b| b.1).sum();
        if total == 0 {
            continue;
        }
        let mut points = vec![format!("{:.1},{:.1}", x(0), y(0.0))];
        for (i, (_, count)) in l.buckets.iter().enumerate() {
            let share = *count as f64 / total as f64;
            points.push(format!("{:.1},{:.1}", x(i), y(share)));
            points.push(format!("{:.1},{:.1}", x(i + 1), y(share)));
        }
        points.push(format!("{:.1},{:.1}", x(l.buckets.len()), y(0.0)));
        let color = COLORS[s % COLORS.len()];
        let _ = write!(
            svg,
            "<polyline fill=\"{color}\" fill-opacity=\"0.15\" stroke-width=\"2\" stroke=\"{color}\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    legend_and_close(svg, legend)
}

fn short_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=999_999 => format!("{}ms", us / 1000),
        _ => format!("{}s", us / 1_000_000),
    }
}

/// log10(ms) bounds, widened to whole decades.
fn log_range(values: impl Iterator<Item = u64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for us in values {
        let v = (us.max(1) as f64 / 1000.0).log10();
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (-1.0, 2.0);
    }
    let (lo, hi) = (lo.floor(), hi.ceil());
    if hi - lo < 1.0 {
        (lo, lo + 1.0)
    } else {
        (lo, hi)
    }
}

fn y_axis(svg: &mut String, lo: f64, hi: f64) {
    let y = |v: f64| TOP + (1.0 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM);
    let mut decade = lo;
    while decade <= hi + 1e-9 {
        let ms = 10f64.powf(decade);
        let label = if ms >= 1.0 {
            format!("{ms:.0} ms")
        } else {
            format!("{ms} ms")
        };
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#eee\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\" font-size=\"11\">{label}</text>",
            W - RIGHT,
            y(decade),
            LEFT - 6.0,
            y(decade) + 4.0
        );
        decade += 1.0;
    }
}

fn svg_open() -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    )
}

fn legend_and_close(mut svg: String, legend: &[(&str, &str)]) -> String {
    for (i, (label, color)) in legend.iter().enumerate() {
        let y = TOP + 14.0 + i as f64 * 16.0;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"4\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            LEFT + 10.0,
            y - 4.0,
            LEFT + 28.0,
            y,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the JSON and HTML files asked for; returns the JSON text.
pub fn write_outputs(
    title: &str,
    value: &impl Serialize,
    runs: &[&RunReport],
    targets: &[TargetCheck],
    json_path: Option<&std::path::Path>,
    html_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    write_outputs_with(title, value, runs, targets, "", json_path, html_path)
}

/// [`write_outputs`] with a section of prepared HTML in the page.
pub fn write_outputs_with(
    title: &str,
    value: &impl Serialize,
    runs: &[&RunReport],
    targets: &[TargetCheck],
    section: &str,
    json_path: Option<&std::path::Path>,
    html_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = serde_json::to_string_pretty(value).context("encoding the report as JSON")?;
    if let Some(path) = json_path {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = html_path {
        std::fs::write(path, html_with(title, runs, targets, section, &json))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_odd_and_even_counts_and_of_nothing() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(std::iter::empty()), None);
    }

    fn summary(p99_us: f64, synced_s: Option<f64>) -> Summary {
        Summary {
            target: "t".into(),
            runs: 1,
            p50_us: p99_us / 2.0,
            p99_us,
            p999_us: p99_us,
            storm_p99_us: None,
            cpu_s_move: Some(1.0),
            peak_rss_kib: Some(10_240.0),
            storm_all_synced_s: synced_s,
            kib_per_connection: None,
            moves_delivered: 10,
            moves_expected: 10,
            all_delivered: true,
            converged: true,
            doc_clients: 2,
            diverged_boards: 0,
            all_synced: true,
            error_total: 0,
        }
    }

    fn met(checks: &[TargetCheck], name: &str) -> bool {
        checks
            .iter()
            .find(|c| c.name.starts_with(name))
            .unwrap_or_else(|| panic!("no target {name}: {checks:?}"))
            .pass
    }

    #[test]
    fn the_board_target_is_against_the_durable_relay_and_the_storm_holds_in_every_round() {
        let funnel = summary(6_000.0, None);
        let checks = summary_targets(
            "board",
            &funnel,
            Some(&summary(1_000.0, None)),
            Some(&summary(5_500.0, None)),
            &[],
        );
        assert!(met(&checks, "p99 fan-out ≤ 1.2× the durable relay"));
        let checks = summary_targets(
            "board",
            &funnel,
            Some(&summary(1_000.0, None)),
            Some(&summary(4_000.0, None)),
            &[],
        );
        assert!(!met(&checks, "p99 fan-out ≤ 1.2× the durable relay"));
        // No durable relay: not met, never a pass by default.
        let checks = summary_targets("board", &funnel, None, None, &[]);
        assert!(!met(&checks, "p99 fan-out"));

        let storm = summary(1_000.0, Some(5.0));
        let relay = summary(1_000.0, Some(5.0));
        let round = |r: f64| Ratios {
            storm_all_synced: Some(r),
            ..Ratios::default()
        };
        let good = [round(1.0), round(1.05), round(0.9)];
        let checks = summary_targets("storm", &storm, Some(&relay), None, &good);
        assert!(met(&checks, "all newcomers synced"));
        let one_bad = [round(1.0), round(1.2), round(0.9)];
        let checks = summary_targets("storm", &storm, Some(&relay), None, &one_bad);
        assert!(!met(&checks, "all newcomers synced"), "{checks:?}");
    }
}
